"""The model zoo: a registry of ModelCards and a small process-wide cache of loaded models.

A card says what a network is (family, task, paper, licence), which library builds it,
where its pretrained weights live and how its input is prepared. Preprocessing and
weight locations are read from the library's own metadata (timm's pretrained_cfg,
pytorchcv's model_metainfos.csv), never retyped. Adding a network is one `register(...)`.
"""
from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Literal, Optional

import torch
import torch.nn as nn

from . import labels as label_lists
from . import registry, weights
from .device import DeviceLike
from .device import resolve as resolve_device
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from .weights import BundledFile, HubFile, Progress, UrlFile, WeightFile, WeightsError

Task = Literal["classify", "segment"]
Availability = Literal["bundled", "cached", "download", "random"]


@dataclass(frozen=True)
class Source:
    """Where a network comes from: `library` builds `arch`; its metadata gives the
    preprocessing and the published weight file."""
    library: str  # "timm" | "pytorchcv" | ...
    arch: str  # the library's own name, e.g. "seresnet50.ra2_in1k"
    build: Callable[[], nn.Module]  # random-init network
    preprocess: Callable[[], Preprocess]
    weights: Callable[[], Optional[WeightFile]]
    extra_keys_ok: bool = False  # the library's own loader drops checkpoint extras
    adapt: Optional[Callable[[dict], dict]] = None  # checkpoint keys -> the model's


def timm_source(arch: str, revision: Optional[str] = None) -> Source:
    """A timm network; `revision` pins its Hub repository to a commit (without one, the
    commit of the first verified download is kept, see weights.pinned)."""
    def build() -> nn.Module:
        import timm
        return timm.create_model(arch, pretrained=False)

    def cfg():
        from timm.models import get_pretrained_cfg
        return get_pretrained_cfg(arch)

    def preprocess() -> Preprocess:
        c = cfg()
        return Preprocess(size=tuple(c.input_size[1:]), mode="crop", crop_pct=c.crop_pct,
                          interpolation=c.interpolation, mean=tuple(c.mean), std=tuple(c.std))

    def weight_file() -> Optional[WeightFile]:
        c = cfg()
        if c.hf_hub_id:
            return HubFile(c.hf_hub_id, c.hf_hub_filename or "model.safetensors", revision)
        if c.url:  # torch-hub style name: <name>-<sha256 prefix>.<ext>
            m = re.search(r"-([0-9a-f]{8,})\.[a-z.]+$", c.url)
            return UrlFile(c.url, m.group(1), "sha256") if m else None
        return None

    return Source("timm", arch, build, preprocess, weight_file)


def _pytorchcv_meta(arch: str) -> dict:
    """Row of pytorchcv's own model_metainfos.csv (error code, sha1, release, size, crop)."""
    from pytorchcv.models.common.model_store import get_model_metainfos_file_path, load_csv
    rows = load_csv(get_model_metainfos_file_path())
    for row in rows[1:]:
        if row[0] == arch:
            return dict(zip(rows[0], row))
    raise KeyError(f"pytorchcv publishes no weights for {arch!r}")


def pytorchcv_source(arch: str) -> Source:
    """pytorchcv's weights: imgclsmob GitHub releases, a .pth zipped, sha1 of the .pth."""
    def build() -> nn.Module:
        from pytorchcv.model_provider import get_model
        return get_model(arch, pretrained=False)

    def preprocess() -> Preprocess:
        meta = _pytorchcv_meta(arch)
        size = int(meta["img_size"])
        return Preprocess(size=(size, size), mode="crop", crop_pct=float(meta["img_scale"]),
                          interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def weight_file() -> WeightFile:
        from pytorchcv.models.common.model_store import imgclsmob_repo_url
        meta = _pytorchcv_meta(arch)
        sha1 = meta["checksum"]
        name = f"{arch}-{meta['error_value']}-{sha1[:8]}.pth"
        url = f"{imgclsmob_repo_url}/releases/download/{meta['repo_release_tag']}/{name}.zip"
        return UrlFile(url, sha1, "sha1", member=name)

    return Source("pytorchcv", arch, build, preprocess, weight_file, extra_keys_ok=True)


def mmseg_source(head: str, url: str, short_side: int = 512) -> Source:
    """mmsegmentation's R-50-D8 ADE20K networks, re-implemented in models/mmseg_r50d8 with
    mmseg's module names. Test pipeline: keep-ratio resize to (2048, 512) scaled to
    `short_side` (cv2 bilinear), RGB mean/std, whole-image inference (checked against
    mmseg by tests/test_mmseg_parity.py). The URL is the one mmseg's metafile publishes;
    its file name ends in the checkpoint's sha256 prefix."""
    def build() -> nn.Module:
        from .models.mmseg_r50d8 import SegmentorR50D8
        return SegmentorR50D8(head)

    def preprocess() -> Preprocess:
        return Preprocess(size=(short_side, 4 * short_side), mode="keep_ratio",
                          interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def adapt(state: dict) -> dict:
        from .models.mmseg_r50d8 import adapt_state_dict
        return adapt_state_dict(state)

    digest = re.search(r"-([0-9a-f]{8,})\.pth$", url).group(1)
    return Source("mmseg", f"{head}_r50-d8_512x512_80k_ade20k", build, preprocess,
                  lambda: UrlFile(url, digest, "sha256"), adapt=adapt)


def triplet_source() -> Source:
    """Triplet attention ResNet-50 with the authors' ImageNet weights (landskape-ai/
    triplet-attention, k = 7; Google Drive, no hash published): a timm ResNet-50 whose
    blocks carry models/triplet.TripletAttention; their checkpoint keys are renamed onto
    it by models.triplet.map_authors_checkpoint. Their evaluation: resize 256, centre crop
    224, bilinear, ImageNet mean/std."""
    def build() -> nn.Module:
        import timm
        from .models.triplet import TripletAttention
        return timm.create_model("resnet50", pretrained=False,
                                 block_args=dict(attn_layer=TripletAttention))

    def adapt(state: dict) -> dict:
        from .models.triplet import map_authors_checkpoint
        return map_authors_checkpoint(state)

    drive = "1ptKswHzVmULGbE3DuX6vMCjEbqwUvGiG"
    url = f"https://drive.usercontent.google.com/download?id={drive}&export=download&confirm=t"
    return Source("triplet-attention (authors)", "resnet50 + triplet attention (k=7)", build,
                  lambda: Preprocess((224, 224), "crop", 0.875, "bilinear"),
                  lambda: UrlFile(url, None, name="triplet_attention_resnet50_k7.pth.tar"),
                  adapt=adapt)


MANIFEST = weights.ASSETS / "weights" / "manifest.json"


def bundled_source(entry: dict) -> Source:
    """VisAttn's own tiny networks: architecture in models/, weights and input statistics
    from the training manifest in assets/weights."""
    attention, n_classes = entry["attention"], len(entry["classes"])

    def build() -> nn.Module:
        if entry.get("task") == "segment":  # the twin-scene labellers (python -m visattn.train_twins)
            from .models.tiny_twins import tiny_twin_net
            return tiny_twin_net(non_local=attention == "nl")
        from .models.tiny_resnet import tiny_resnet
        return tiny_resnet(attention, n_classes)

    def preprocess() -> Preprocess:
        side = int(entry["input_size"])
        return Preprocess(size=(side, side), mode="crop", crop_pct=1.0, interpolation="bilinear",
                          mean=tuple(entry["mean"]), std=tuple(entry["std"]))

    return Source("visattn", entry["name"], build, preprocess,
                  lambda: BundledFile(f"weights/{entry['file']}", entry["sha256"]))


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


def register(card: ModelCard) -> ModelCard:
    if card.name in _CARDS:
        raise ValueError(f"a model card named {card.name!r} exists already")
    _CARDS[card.name] = card
    return card


def get(name: str) -> ModelCard:
    try:
        return _CARDS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(_CARDS)}") from None


def cards(family: Optional[str] = None) -> list[ModelCard]:
    return [c for c in _CARDS.values() if family is None or c.family == family]


def build(card: ModelCard, pretrained: bool = True,
          progress: Optional[Progress] = None) -> nn.Module:
    """A new eval-mode model; with `pretrained`, its published weights fetched, verified
    and loaded strictly (a missing or unexpected key is an error, never a silent skip)."""
    model = card.source.build()
    if pretrained:
        if card.weights is None:
            raise WeightsError(f"{card.name}: no pretrained weights are published for this "
                               "network; use random weights (architecture only).")
        path = weights.fetch(card.weights, progress, who=card.name)
        try:
            _load_strictly(card, model, path)
        except WeightsError as exc:
            weights.discard(card.weights, path)
            gone = "" if isinstance(card.weights, BundledFile) else \
                " The file was deleted; the next use downloads it again."
            raise WeightsError(f"{card.name}: {exc.public}{gone}",
                               str(exc)[len(exc.public):].strip()) from None
        weights.vouch(card.weights, path)
    return model.eval()


def _load_strictly(card: ModelCard, model: nn.Module, path) -> None:
    state = weights.load_state_dict(path)
    if card.source.adapt is not None:
        state = card.source.adapt(state)
    result = model.load_state_dict(state, strict=False)
    # BN's step counter predates some checkpoints and does not affect inference
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    unexpected = [] if card.source.extra_keys_ok else result.unexpected_keys
    if missing or unexpected:
        raise WeightsError(f"the weights file does not fit {card.source.library} "
                           f"{card.source.arch}: {len(missing)} keys missing {missing[:3]}, "
                           f"{len(unexpected)} unexpected {unexpected[:3]}.")


def fetch_verified(card: ModelCard, progress: Optional[Progress] = None):
    """The card's weight file, downloaded if needed and verified: by its hash, or, for a
    file without a published hash, by one strict load of every key (which records its
    sha256). Raises WeightsError."""
    if card.weights is None:
        raise WeightsError(f"{card.name}: no pretrained weights are published for this network.")
    path = weights.fetch(card.weights, progress, who=card.name)
    if weights.check(path, card.weights) is None:
        build(card, pretrained=True)
    return path


class _ModelCache:
    """Loaded models, least recently used dropped first; one load per key at a time."""

    def __init__(self, size: int = 3):
        self.size = size
        self._models: "OrderedDict[tuple, nn.Module]" = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, make: Callable[[], nn.Module]) -> nn.Module:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = make()
            with self._lock:
                self._models[key] = model
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
            return model


_MODELS = _ModelCache()


def load(name: str, pretrained: bool = True, progress: Optional[Progress] = None,
         device: DeviceLike = "cpu") -> nn.Module:
    """The shared, eval-mode model of a card on `device` (None: CUDA if available, else
    the CPU), kept in a small LRU keyed by name, weights and device. Raises WeightsError
    (within seconds, never hanging) when pretrained weights cannot be had."""
    card, dev = get(name), resolve_device(device)
    return _MODELS.get((name, pretrained, str(dev)),
                       lambda: build(card, pretrained, progress).to(dev))


# ----- the cards --------------------------------------------------------------------------
def _family_paper(tag: str) -> str:
    """The paper of a registered attention family (typed once, in its registry entry)."""
    return registry.family(tag).link


_TIMM_LICENCE = "Apache-2.0 (timm weights, trained by Ross Wightman / timm unless noted)"

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

# VisAttn's own networks, trained on generated scenes (python -m visattn.train), bundled
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
