"""The model zoo, a catalogue: a ModelCard per network (what it is: family, task, paper,
licence, labels, notes; where it comes from: a `sources.Source`). The cards are made on
first use, not at import. Adding a network is one `register(ModelCard(...))`; opening one
is `visattn.open_network(name)` (loader.py loads and caches it).
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Optional

import torch
import torch.nn as nn

from . import labels as label_lists
from . import loader, registry, weights
from .device import DeviceLike
from .loader import build, fetch_verified  # noqa: F401  (their old home, kept one release)
from .preprocess import Preprocess
from .sources import (MANIFEST, Source, bundled_source, mmseg_source, pytorchcv_source,  # noqa: F401
                      timm_source, triplet_source)
from .weights import Progress, WeightFile

Task = Literal["classify", "segment"]
Availability = Literal["bundled", "cached", "download", "random"]


@dataclass(frozen=True)
class ModelCard:
    name: str
    family: str
    task: Task
    source: Source
    paper: str
    summary: str
    licence: str
    labels: str = "imagenet"  # which class-name list in assets/labels the outputs use
    notes: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def palette(self):
        """(K, 3) RGB colours of the classes (segmentation networks), else None."""
        return label_lists.palette(self.labels) if self.task == "segment" else None

    @cached_property
    def preprocess(self) -> Preprocess:
        return self.source.preprocess()

    @cached_property
    def weights(self) -> Optional[WeightFile]:
        return self.source.weights()

    @cached_property
    def class_names(self) -> tuple[str, ...]:
        return label_lists.load(self.labels)

    @cached_property
    def download_mb(self) -> float:
        """Approximate download size: fp32 parameters and buffers, counted on a meta-device
        build (nothing allocated)."""
        with torch.device("meta"):
            model = self.source.build()
        tensors = list(model.parameters()) + list(model.buffers())
        return sum(t.numel() * 4 for t in tensors) / 1e6

    def availability(self) -> Availability:
        """bundled (ships in assets/), cached (on this machine and verified: its hash was
        checked, once per file version), download (needs network, or a file here not yet
        verified), random (no published weights)."""
        if self.weights is None:
            return "random"
        if isinstance(self.weights, weights.BundledFile):
            return "bundled"
        return "cached" if weights.verified(self.weights) is not None else "download"


_CARDS: "OrderedDict[str, ModelCard]" = OrderedDict()


_MADE = threading.Event()
_MAKING = threading.RLock()  # re-entered by the built-in cards' own register() calls
_BUSY: list[bool] = []


def _ensure_cards() -> None:
    """Make the built-in cards once (other threads wait until all are in)."""
    if _MADE.is_set():
        return
    with _MAKING:
        if _MADE.is_set() or _BUSY:
            return
        _BUSY.append(True)
        try:
            _builtin_cards()
        finally:
            _BUSY.clear()
        _MADE.set()


def register(card: ModelCard) -> ModelCard:
    _ensure_cards()
    if card.name in _CARDS:
        raise ValueError(f"a model card named {card.name!r} exists already")
    _CARDS[card.name] = card
    return card


def get(name: str) -> ModelCard:
    _ensure_cards()
    try:
        return _CARDS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(_CARDS)}") from None


def cards(family: Optional[str] = None) -> list[ModelCard]:
    _ensure_cards()
    return [c for c in _CARDS.values() if family is None or c.family == family]


def load(name: str, pretrained: bool = True, progress: Optional[Progress] = None,
         device: DeviceLike = "cpu") -> nn.Module:
    """The shared model of a card (see loader.load); open networks with
    visattn.open_network, which calls this."""
    return loader.load(get(name), pretrained, progress, device)


# ----- the cards --------------------------------------------------------------------------
def _family_paper(tag: str) -> str:
    """The paper of a registered attention family (typed once, in its registry entry)."""
    return registry.family(tag).link


_TIMM_LICENCE = "Apache-2.0 (timm weights, trained by Ross Wightman / timm unless noted)"

# VisAttn's own networks, trained on generated scenes (tools/train.py), bundled
PLAIN = ("Plain", "https://arxiv.org/abs/1512.03385")  # no attention module: ResNet's paper


def attention_family(model: nn.Module) -> tuple[str, str]:
    """(family tag, paper link) of a network built from one registered attention family,
    or PLAIN for a network without attention."""
    found = {e.family.tag: e.family.link for _, _, e in registry.registered(model)}
    if len(found) > 1:
        raise ValueError(f"a network of several attention families: {', '.join(found)}")
    return next(iter(found.items()), PLAIN)


def _bundled_family(entry: dict) -> tuple[str, str]:
    """The family of a bundled network, read from the modules it is built from."""
    with torch.device("meta"):
        return attention_family(bundled_source(entry).build())


SCENES_NOTE = ("Trained by VisAttn on generated scenes (6 textured shapes in clutter), not on "
               "photos: on a photo its prediction means nothing, but its maps show what it "
               "learned to look for. Try the generated example scenes.")

TWINS_NOTE = ("Trained by VisAttn to label every pixel of a generated scene as background, "
              "unique object, or one of two identical objects (twins): an object's label "
              "depends on what is painted elsewhere, so only the Non-local block can tell. "
              "Try the twins_*.png example scenes.")


def _twin_card(entry: dict) -> ModelCard:
    """A twin-scene labeller (with or without its Non-local block) from its manifest entry."""
    what = "with a Non-local block" if entry["attention"] == "nl" else "without attention (the control)"
    family, paper = _bundled_family(entry)
    return ModelCard(
        entry["name"], family, "segment", bundled_source(entry), paper,
        f"Tiny twin-scene labeller {what} ({entry['parameters'] / 1e6:.2f} M parameters); "
        f"tells twin from unique objects on {entry['val_twin_vs_unique_accuracy']:.1%} of "
        "held-out object pixels.",
        "Same licence as VisAttn (trained by the project)", labels="twins", notes=(TWINS_NOTE,))



def _library_cards() -> None:
    """Networks whose weights a library or its authors publish."""
    for _name, _family, _src, _paper, _licence, _summary in [
        ("seresnet50", "SE", timm_source("seresnet50.ra2_in1k"), _family_paper("SE"),
         _TIMM_LICENCE, "SE-ResNet-50 (timm, RandAugment recipe): one channel gate per block."),
        ("legacy_seresnet50", "SE", timm_source("legacy_seresnet50.in1k"),
         _family_paper("SE"), "Apache-2.0 code; weights ported from the SENet "
         "authors' Caffe models (Cadene pretrainedmodels)",
         "SE-ResNet-50 with the SENet authors' own ImageNet weights (timm legacy)."),
        ("cbam_resnet50", "CBAM", pytorchcv_source("cbam_resnet50"),
         _family_paper("CBAM"), "MIT (pytorchcv / imgclsmob)",
         "CBAM-ResNet-50 (pytorchcv): channel gate then spatial gate in every block."),
        ("bam_resnet50", "BAM", pytorchcv_source("bam_resnet50"),
         _family_paper("BAM"), "MIT (pytorchcv / imgclsmob)",
         "BAM-ResNet-50 (pytorchcv): one 3-D gate between stages."),
        ("ecaresnet50d", "ECA", timm_source("ecaresnet50d.miil_in1k"),
         _family_paper("ECA"), _TIMM_LICENCE + "; weights by Alibaba MIIL",
         "ECA-ResNet-50-D (timm): channel gate from a 1-D convolution."),
        ("gcresnet50t", "GC", timm_source("gcresnet50t.ra2_in1k"),
         _family_paper("GC"), _TIMM_LICENCE,
         "GC-ResNet-50-T (timm): global-context map and channel add term per block."),
        ("skresnet34", "SK", timm_source("skresnet34.ra_in1k"),
         _family_paper("SK"), _TIMM_LICENCE,
         "SK-ResNet-34 (timm): per-channel choice between kernel branches."),
        ("resnest50d", "ResNeSt", timm_source("resnest50d.in1k"),
         _family_paper("ResNeSt"), "Apache-2.0; weights by the ResNeSt authors, ported",
         "ResNeSt-50-D (timm): split attention over radix groups."),
        ("botnet26t_256", "BoT", timm_source("botnet26t_256.c1_in1k"),
         _family_paper("BoT"), _TIMM_LICENCE,
         "BoTNet-26-T (timm): multi-head self-attention with relative positions, 256 px input."),
    ]:
        register(ModelCard(_name, _family, "classify", _src, _paper, _summary, _licence))

    register(ModelCard(
        "triplet_resnet50", "Triplet", "classify", triplet_source(), _family_paper("Triplet"),
        "ResNet-50 with triplet attention in every block (the authors' ImageNet weights): gates "
        "over (C, W), (H, C) and (H, W).", "MIT (landskape-ai/triplet-attention)",
        notes=("Weights from the authors' Google Drive, which publishes no hash: the download "
               "is checked by loading every key strictly.",)))

    # Non-local, CCNet and DANet: mmsegmentation's ADE20K scene parsers (150 classes)
    _MMSEG = "https://download.openmmlab.com/mmsegmentation/v0.5/"
    _MMSEG_LICENCE = "Apache-2.0 (mmsegmentation weights)"
    for _head, _family, _path, _paper, _summary in [
        ("nonlocal", "Non-local", "nonlocal_net/nonlocal_r50-d8_512x512_80k_ade20k/"
         "nonlocal_r50-d8_512x512_80k_ade20k_20200615_015801-5ae0aa33.pth",
         _family_paper("Non-local"),
         "NonLocalNet R-50-D8 (mmsegmentation, ADE20K): one embedded-Gaussian Non-local block "
         "on stride-8 features; click a pixel to see its row."),
        ("dnl", "Non-local", "dnlnet/dnl_r50-d8_512x512_80k_ade20k/"
         "dnl_r50-d8_512x512_80k_ade20k_20200826_183354-1cf6e0c1.pth",
         "https://arxiv.org/abs/2006.06668",
         "DNLNet R-50-D8 (mmsegmentation, ADE20K, 41.76 mIoU): a disentangled Non-local block, "
         "a whitened pairwise row per pixel plus one unary map shared by all pixels."),
        ("ccnet", "CCNet", "ccnet/ccnet_r50-d8_512x512_80k_ade20k/"
         "ccnet_r50-d8_512x512_80k_ade20k_20200615_014848-aa37f61e.pth",
         _family_paper("CCNet"),
         "CCNet R-50-D8 (mmsegmentation, ADE20K): criss-cross attention run twice; each pass "
         "sees a row and a column, the two together the whole image."),
        ("danet", "DANet", "danet/danet_r50-d8_512x512_80k_ade20k/"
         "danet_r50-d8_512x512_80k_ade20k_20200615_015125-edb18e08.pth",
         _family_paper("DANet"),
         "DANet R-50-D8 (mmsegmentation, ADE20K): position attention over all pixels (and "
         "channel attention)."),
    ]:
        register(ModelCard(f"{_head}_r50_d8_ade20k", _family, "segment", mmseg_source(_head, _MMSEG + _path),
                           _paper, _summary, _MMSEG_LICENCE, labels="ade20k"))


def _bundled_cards() -> None:
    """VisAttn's own networks, from the training manifest in assets/weights."""
    for _entry in (json.loads(MANIFEST.read_text()).values() if MANIFEST.exists() else []):
        if _entry.get("task") == "segment":
            register(_twin_card(_entry))
            continue
        _family, _paper_link = _bundled_family(_entry)
        register(ModelCard(
            _entry["name"], _family, "classify", bundled_source(_entry), _paper_link,
            f"Tiny {_family} ResNet ({_entry['parameters'] / 1e6:.2f} M parameters) "
            f"trained on generated scenes; held-out accuracy {_entry['val_accuracy']:.1%}.",
            "Same licence as VisAttn (trained by the project)", labels="scenes",
            notes=(SCENES_NOTE,)))


def _builtin_cards() -> None:
    _library_cards()
    _bundled_cards()
