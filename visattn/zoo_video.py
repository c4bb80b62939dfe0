"""The video networks' cards: mmaction2's I3D ResNet-50 with Non-local blocks (Kinetics-400)
and VisAttn's moving-clip labellers (bundled, trained by tools/train_clips.py, their
manifest is assets/weights/clips.json). Each card also registers the frames its network
was trained on (`video.register_sampling`).

They join the zoo when a clip is first analysed (`ensure_cards()`, called by
analyze_video), not with the photo networks: the photo pages and commands list
`zoo.cards()` and cannot run a clip network on a photo.
"""
from __future__ import annotations

import json
import threading

import torch.nn as nn

from . import weights
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from .video import Sampling, register_sampling
from .weights import BundledFile, UrlFile

I3D_NAME = "i3d_nl_r50_kinetics400"
I3D_CONFIG = "i3d_imagenet-pretrained-r50-nl-embedded-gaussian_8xb8-32x2x1-100e_kinetics400-rgb"
I3D_URL = ("https://download.openmmlab.com/mmaction/v1.0/recognition/i3d/" + I3D_CONFIG + "/"
           + I3D_CONFIG + "_20220812-afd8f562.pth")  # mmaction2's README / metafile
I3D_SAMPLING = Sampling(clip_len=32, frame_interval=2)  # 32x2x1
CLIPS_MANIFEST = weights.ASSETS / "weights" / "clips.json"

CLIPS_NOTE = ("Trained by VisAttn to label every pixel of a generated 4-frame clip with the "
              "class of its object, shown by a coloured tag ring; an object that comes back "
              "later comes back untagged, elsewhere, and each frame is convolved alone, so "
              "only the space-time Non-local block can label it (by finding its tagged "
              "appearance in another frame).")

_DONE = threading.Lock()
_MADE: list[bool] = []


def _source_class():
    try:
        from .sources import Source
    except ImportError:  # before the zoo's split into catalogue / sources / loader
        from .zoo import Source
    return Source


def i3d_source():
    Source = _source_class()

    def build() -> nn.Module:
        from .models.i3d_nl import i3d_nl_r50
        return i3d_nl_r50()

    def adapt(state: dict) -> dict:
        from .models.i3d_nl import adapt_state_dict
        return adapt_state_dict(state)

    # mmaction2's val pipeline: Resize(-1, 256), CenterCrop(224), ImageNet mean/std (RGB)
    pre = Preprocess(size=(224, 224), mode="crop", crop_pct=224 / 256, interpolation="bilinear",
                     mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return Source("mmaction2", I3D_CONFIG, build, lambda: pre,
                  lambda: UrlFile(I3D_URL, "afd8f562", "sha256"), adapt=adapt)


def clip_source(entry: dict):
    Source = _source_class()

    def build() -> nn.Module:
        from .models.tiny_clips import tiny_clip_net
        return tiny_clip_net(non_local=entry["attention"] == "nl")

    side = int(entry["input_size"])
    pre = Preprocess(size=(side, side), mode="crop", crop_pct=1.0, interpolation="bilinear",
                     mean=tuple(entry["mean"]), std=tuple(entry["std"]))
    return Source("visattn", entry["name"], build, lambda: pre,
                  lambda: BundledFile(f"weights/{entry['file']}", entry["sha256"]))


def clip_entries() -> dict:
    return json.loads(CLIPS_MANIFEST.read_text()) if CLIPS_MANIFEST.exists() else {}


def cards() -> list:
    """The video networks' ModelCards (not registered)."""
    from .zoo import ModelCard
    out = [ModelCard(
        I3D_NAME, "Non-local", "classify", i3d_source(), "https://arxiv.org/abs/1711.07971",
        "I3D ResNet-50 with 5 space-time Non-local blocks (embedded Gaussian; keys pooled "
        "2 x 2) in layer2 and layer3 (mmaction2, Kinetics-400, 74.7 % top-1 at 10 x 3 views); "
        "32 frames, every second one.", "Apache-2.0 (mmaction2 weights)", labels="kinetics400",
        notes=("A clip network: give it a video (visattn.analyze_video).",))]
    for entry in clip_entries().values():
        what = "with a space-time Non-local block" if entry["attention"] == "nl" \
            else "without attention (the control)"
        out.append(ModelCard(
            entry["name"], "Non-local" if entry["attention"] == "nl" else "Plain", "segment",
            clip_source(entry), "https://arxiv.org/abs/1711.07971",
            f"Tiny moving-clip labeller {what} ({entry['parameters'] / 1e6:.2f} M parameters); "
            f"labels {entry['val_untagged_accuracy']:.1%} of held-out untagged object pixels "
            "(chance 33 %).", "Same licence as VisAttn (trained by the project)",
            labels="clips", notes=(CLIPS_NOTE,)))
    return out


def names() -> tuple[str, ...]:
    """The clip networks' names, in their cards' order."""
    return tuple(card.name for card in cards())


def is_clip_network(name: str) -> bool:
    """Does `name` take clips (its inputs go through analyze_video), not photos?"""
    return name in names()


def register_samplings() -> None:
    register_sampling(I3D_NAME, I3D_SAMPLING)
    for entry in clip_entries().values():
        register_sampling(entry["name"], Sampling(int(entry["frames"]), 1))


def ensure_cards() -> None:
    """Register the video cards in the zoo once, with their samplings (a card of that name
    already there is left as it is)."""
    with _DONE:
        if _MADE:
            return
        from . import zoo
        register_samplings()
        for card in cards():
            try:
                zoo.get(card.name)
            except KeyError:
                zoo.register(card)
        _MADE.append(True)


def forget_cards() -> None:
    """Take the video cards out of the zoo again (tests that must leave the catalogue as
    they found it)."""
    with _DONE:
        from . import zoo
        for card in cards():
            zoo._CARDS.pop(card.name, None)
        _MADE.clear()
