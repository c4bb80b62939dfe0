"""The model zoo: a registry of ModelCards and a small process-wide cache of built models.

A card says what a network is (family, task, paper), which library builds it, and how
its input is prepared. Preprocessing is read from the library's own metadata (timm's
pretrained_cfg), never retyped. Adding a network is one `register(...)` call.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Literal, Optional

import torch.nn as nn

from .preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess

Task = Literal["classify", "segment"]


@dataclass(frozen=True)
class Source:
    """Where a network comes from: `library` builds `arch`."""
    library: str  # "timm" | "pytorchcv" | ...
    arch: str  # the library's own name, e.g. "seresnet50.ra2_in1k"
    build: Callable[[], nn.Module]  # random-init network
    preprocess: Callable[[], Preprocess]


def timm_source(arch: str) -> Source:
    def build() -> nn.Module:
        import timm
        return timm.create_model(arch, pretrained=False)

    def preprocess() -> Preprocess:
        from timm.models import get_pretrained_cfg
        cfg = get_pretrained_cfg(arch)
        return Preprocess(size=tuple(cfg.input_size[1:]), mode="crop", crop_pct=cfg.crop_pct,
                          interpolation=cfg.interpolation, mean=tuple(cfg.mean),
                          std=tuple(cfg.std))

    return Source("timm", arch, build, preprocess)


def pytorchcv_source(arch: str) -> Source:
    """pytorchcv's ImageNet models are evaluated (imgclsmob eval scripts) with a bilinear
    resize of the short side to in_size / 0.875, centre crop in_size, ImageNet mean/std."""
    def build() -> nn.Module:
        from pytorchcv.model_provider import get_model
        return get_model(arch, pretrained=False)

    def preprocess() -> Preprocess:
        from pytorchcv.model_provider import get_model
        in_size = tuple(getattr(get_model(arch, pretrained=False), "in_size", (224, 224)))
        return Preprocess(size=in_size, mode="crop", crop_pct=0.875, interpolation="bilinear",
                          mean=IMAGENET_MEAN, std=IMAGENET_STD)

    return Source("pytorchcv", arch, build, preprocess)


@dataclass(frozen=True)
class ModelCard:
    name: str
    family: str
    task: Task
    source: Source
    paper: str
    summary: str
    labels: str = "imagenet"  # which class-name list the outputs use
    notes: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def preprocess(self) -> Preprocess:
        return self.source.preprocess()

    @cached_property
    def class_names(self) -> tuple[str, ...]:
        return class_names(self.labels)


def class_names(labels: str) -> tuple[str, ...]:
    if labels == "imagenet":
        from timm.data import ImageNetInfo
        info = ImageNetInfo()
        return tuple(info.index_to_description(i) for i in range(info.num_classes()))
    raise KeyError(f"unknown label set {labels!r}")


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


class _ModelCache:
    """Built models, least recently used dropped first; one build per name at a time."""

    def __init__(self, size: int = 3):
        self.size = size
        self._models: "OrderedDict[str, nn.Module]" = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def get(self, name: str) -> nn.Module:
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            build_lock = self._building.setdefault(name, threading.Lock())
        with build_lock:
            with self._lock:
                if name in self._models:
                    return self._models[name]
            model = get(name).source.build().eval()
            with self._lock:
                self._models[name] = model
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
            return model


_MODELS = _ModelCache()


def load(name: str) -> nn.Module:
    """The shared, eval-mode model of a card (built once, kept in a small LRU)."""
    return _MODELS.get(name)


# ----- the cards --------------------------------------------------------------------------
_RANDOM = ("Random-initialised weights for now: the maps show the architecture, "
           "not what a trained network attends to.",)

for _name, _family, _src, _paper, _summary in [
    ("seresnet50", "SE", timm_source("seresnet50.ra2_in1k"),
     "https://arxiv.org/abs/1709.01507", "SE-ResNet-50 (timm): one channel gate per block."),
    ("legacy_seresnet50", "SE", timm_source("legacy_seresnet50.in1k"),
     "https://arxiv.org/abs/1709.01507", "SE-ResNet-50 in the SENet authors' layout (timm legacy)."),
    ("cbam_resnet50", "CBAM", pytorchcv_source("cbam_resnet50"),
     "https://arxiv.org/abs/1807.06521", "CBAM-ResNet-50 (pytorchcv): channel then spatial gate."),
    ("bam_resnet50", "BAM", pytorchcv_source("bam_resnet50"),
     "https://arxiv.org/abs/1807.06514", "BAM-ResNet-50 (pytorchcv): one 3-D gate per stage."),
    ("ecaresnet50d", "ECA", timm_source("ecaresnet50d.miil_in1k"),
     "https://arxiv.org/abs/1910.03151", "ECA-ResNet-50-D (timm): 1-D conv channel gate."),
    ("gcresnet50t", "GC", timm_source("gcresnet50t.ra2_in1k"),
     "https://arxiv.org/abs/1904.11492", "GC-ResNet-50-T (timm): global context map + channel add."),
    ("skresnet34", "SK", timm_source("skresnet34.ra_in1k"),
     "https://arxiv.org/abs/1903.06586", "SK-ResNet-34 (timm): per-channel choice of kernel."),
    ("resnest50d", "ResNeSt", timm_source("resnest50d.in1k"),
     "https://arxiv.org/abs/2004.08955", "ResNeSt-50-D (timm): split attention over radix groups."),
    ("botnet26t_256", "BoT", timm_source("botnet26t_256.c1_in1k"),
     "https://arxiv.org/abs/2101.11605",
     "BoTNet-26-T (timm): multi-head self-attention with relative positions, 256 px input."),
]:
    register(ModelCard(_name, _family, "classify", _src, _paper, _summary, notes=_RANDOM))
