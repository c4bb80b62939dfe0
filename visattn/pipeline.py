"""The upload flow as one call: image in, Trace out."""
from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence, Union

import torch.nn as nn

from . import capture, usermodel, zoo
from .device import DeviceLike, of_module, on_zerogpu
from .device import resolve as resolve_device
from .image import DEFAULT_MAX_PIXELS, ImageSource, load_image
from .preprocess import Preprocess, prepare
from .records import Segmentation, Trace
from .weights import Progress


RANDOM_NOTE = ("Random weights (architecture only): the maps show how the modules are wired, "
               "not what a trained network attends to.")


def _run_on_model_device(net: nn.Module, x, **kwargs) -> Trace:
    """capture.run with the input moved to the network's device (inside the GPU call)."""
    return capture.run(net, x.to(of_module(net)), **kwargs)


def _run_batch_on_model_device(net: nn.Module, x, **kwargs) -> list[Trace]:
    return capture.run_batch(net, x.to(of_module(net)), **kwargs)


_forward = on_zerogpu(_run_on_model_device)  # on a ZeroGPU Space, the forward borrows a GPU
_forward_batch = on_zerogpu(_run_batch_on_model_device)


def analyze(image: ImageSource, model: Union[str, nn.Module], *,
            pretrained: bool = True, progress: Optional[Progress] = None,
            preprocess: Optional[Preprocess] = None, labels: Sequence[str] = (),
            max_pixels: int = DEFAULT_MAX_PIXELS, device: DeviceLike = None) -> Trace:
    """Run `model` (a zoo name or any nn.Module) on `image` and capture every attention map.

    >>> trace = visattn.analyze("cat.jpg", "cbam_resnet50")
    >>> trace.prediction.top(5); trace.select(SpatialMap)[0].values

    A zoo name loads the card's pretrained weights (downloaded and verified on first use,
    `progress(bytes_done, bytes_total)` reports it; WeightsError if they cannot be had);
    `pretrained=False` builds the architecture with random weights. For a module of
    your own, `preprocess` and `labels` default to its `pretrained_cfg` dict (timm's keys,
    `label_names`), else ImageNet 224 px centre crop and class numbers.

    `device`: "cpu", "cuda", "cuda:1", "mps", ...; None runs a zoo network on CUDA when
    torch sees a GPU, else on the CPU, and a module of your own where its parameters are.
    The records are numpy arrays on the CPU either way.
    """
    start = time.perf_counter()
    image_notes: list[str] = []  # what decoding did to the pixels (transparency filled)
    rgb = load_image(image, max_pixels=max_pixels, notes=image_notes)
    run = _open(model, pretrained, progress, preprocess, labels, device)
    x, geometry = prepare(rgb, run.preprocess)
    trace = _forward(run.net, x, geometry=geometry, labels=run.labels, name=run.name)
    run.complete(trace, rgb, image_notes)
    trace.elapsed_s = time.perf_counter() - start
    return trace


def analyze_batch(x, images: Sequence, geometries: Sequence, model: Union[str, nn.Module], *,
                  pretrained: bool = True, preprocess: Optional[Preprocess] = None,
                  labels: Sequence[str] = (), device: DeviceLike = None) -> list[Trace]:
    """`analyze` for a batch already prepared with `preprocess` (a DataLoader's): x
    (B, 3, H, W), the decoded photos (H, W, 3) and their Geometry -> one Trace each, equal
    to analyze() of each photo alone."""
    run = _open(model, pretrained, None, preprocess, labels, device)
    traces = _forward_batch(run.net, x, geometries=geometries, labels=run.labels, name=run.name)
    for trace, rgb in zip(traces, images):
        run.complete(trace, rgb, [])
    return traces


@dataclasses.dataclass
class _Run:
    """A network ready to run, with what a Trace of it is completed with."""
    model: Union[str, nn.Module]
    net: nn.Module
    name: str
    preprocess: Preprocess
    labels: Sequence[str]
    notes: list[str]

    def complete(self, trace: Trace, rgb, image_notes: list[str]) -> None:
        if isinstance(trace.prediction, Segmentation) and isinstance(self.model, str):
            trace.prediction = dataclasses.replace(trace.prediction,
                                                   palette=zoo.get(self.model).palette)
        trace.image, trace.notes, trace.preprocess = rgb, image_notes + self.notes, self.preprocess


def _open(model: Union[str, nn.Module], pretrained: bool, progress: Optional[Progress],
          preprocess: Optional[Preprocess], labels: Sequence[str], device: DeviceLike) -> _Run:
    """A zoo name (its card's preprocessing, labels and notes) or a module of your own."""
    if isinstance(model, str):
        card = zoo.get(model)
        notes = list(card.notes) + ([] if pretrained else [RANDOM_NOTE])
        return _Run(model, zoo.load(model, pretrained, progress, device), card.name,
                    preprocess or card.preprocess, labels or card.class_names, notes)
    if device is not None:
        model.to(resolve_device(device))
    return _Run(model, model, type(model).__name__, preprocess or usermodel.preprocess_of(model),
                labels or usermodel.labels_of(model), [])
