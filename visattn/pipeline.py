"""The upload flow as one call: image in, Trace out."""
from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence, Union

import torch.nn as nn

from . import capture, usermodel, zoo
from .image import DEFAULT_MAX_PIXELS, ImageSource, load_image
from .preprocess import Preprocess, prepare
from .records import Segmentation, Trace
from .weights import Progress


RANDOM_NOTE = ("Random weights (architecture only): the maps show how the modules are wired, "
               "not what a trained network attends to.")


def analyze(image: ImageSource, model: Union[str, nn.Module], *,
            pretrained: bool = True, progress: Optional[Progress] = None,
            preprocess: Optional[Preprocess] = None, labels: Sequence[str] = (),
            max_pixels: int = DEFAULT_MAX_PIXELS) -> Trace:
    """Run `model` (a zoo name or any nn.Module) on `image` and capture every attention map.

    >>> trace = visattn.analyze("cat.jpg", "cbam_resnet50")
    >>> trace.prediction.top(5); trace.select(SpatialMap)[0].values

    A zoo name loads the card's pretrained weights (downloaded and verified on first use,
    `progress(bytes_done, bytes_total)` reports it; WeightsError if they cannot be had);
    `pretrained=False` builds the architecture with random weights. For a module of
    your own, `preprocess` and `labels` default to its `pretrained_cfg` dict (timm's keys,
    `label_names`), else ImageNet 224 px centre crop and class numbers.
    """
    start = time.perf_counter()
    image_notes: list[str] = []  # what decoding did to the pixels (transparency filled)
    rgb = load_image(image, max_pixels=max_pixels, notes=image_notes)
    if isinstance(model, str):
        card = zoo.get(model)
        net, name = zoo.load(model, pretrained, progress), card.name
        preprocess = preprocess or card.preprocess
        labels = labels or card.class_names
        notes = list(card.notes) + ([] if pretrained else [RANDOM_NOTE])
    else:
        net, name, notes = model, type(model).__name__, []
        preprocess = preprocess or usermodel.preprocess_of(model)
        labels = labels or usermodel.labels_of(model)
    x, geometry = prepare(rgb, preprocess)
    trace = capture.run(net, x, geometry=geometry, labels=labels, name=name)
    if isinstance(trace.prediction, Segmentation) and isinstance(model, str):
        trace.prediction = dataclasses.replace(trace.prediction, palette=zoo.get(model).palette)
    trace.image, trace.notes, trace.preprocess = rgb, image_notes + notes, preprocess
    trace.elapsed_s = time.perf_counter() - start
    return trace
