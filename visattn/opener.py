"""The one way to open a network: a name, a card, "package.module:function" or an nn.Module
(+ weights, device) -> a `Network`: the loaded module with its preprocessing, class names,
task and notes. `analyze`, the statistics, the command line and the app all open networks
here; nothing else calls the zoo's loader.

    net = visattn.open_network("cbam_resnet50")                      # published weights
    net = visattn.open_network("tiny_nl", device="cuda")
    net = visattn.open_network("my_pkg.nets:build", weights="my.safetensors")
    net = visattn.open_network(my_module, preprocess={"size": (320, 320)})
    trace = visattn.analyze("cat.jpg", net)
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Mapping, Optional, Sequence, Union

import numpy as np
import torch.nn as nn

from . import usermodel
from .device import DeviceLike, of_module
from .device import resolve as resolve_device
from .preprocess import Preprocess
from .records import Segmentation, Trace
from .weights import Progress, WeightsError

if TYPE_CHECKING:
    from .zoo import ModelCard

RANDOM_NOTE = ("Random weights (architecture only): the maps show how the modules are wired, "
               "not what a trained network attends to.")

PreprocessLike = Union[Preprocess, Mapping[str, object], None]  # a mapping: fields changed


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """A network ready to run and what a Trace of it is completed with."""
    module: nn.Module  # on its device (a zoo network in eval mode; yours as you gave it)
    name: str  # the card's name, or the module's class name
    preprocess: Preprocess
    labels: tuple[str, ...]
    task: Optional[str]  # "classify" | "segment"; None: a user's network, told by its output
    pretrained: bool  # False: random weights (said in `notes`)
    notes: tuple[str, ...] = ()
    palette: Optional[np.ndarray] = None  # (K, 3) RGB class colours of a segmentation card
    card: Optional["ModelCard"] = None

    @property
    def device(self):
        return of_module(self.module)

    def complete(self, trace: Trace, rgb: np.ndarray, image_notes: Sequence[str] = ()) -> Trace:
        """A Trace of this network gets the photo, the preprocessing, the notes and the
        class colours."""
        if isinstance(trace.prediction, Segmentation) and self.palette is not None:
            trace.prediction = dataclasses.replace(trace.prediction, palette=self.palette)
        trace.image, trace.preprocess = rgb, self.preprocess
        trace.notes = list(image_notes) + list(self.notes)
        return trace


def _preprocess(own: Preprocess, given: PreprocessLike) -> Preprocess:
    if given is None:
        return own
    if isinstance(given, Preprocess):
        return given
    return dataclasses.replace(own, **{k: v for k, v in given.items() if v is not None})


def _from_card(card: "ModelCard", weights, pretrained: bool, device: DeviceLike,
               preprocess: PreprocessLike, labels: Optional[Sequence[str]],
               progress: Optional[Progress]) -> Network:
    from . import loader
    if weights is not None:
        raise ValueError(f"{card.name} loads its own published weights; weights= goes with a "
                         "network of your own (package.module:function or an nn.Module).")
    module = loader.load(card, pretrained, progress, device)
    notes = tuple(card.notes) + (() if pretrained else (RANDOM_NOTE,))
    return Network(module, card.name, _preprocess(card.preprocess, preprocess),
                   tuple(labels) if labels else card.class_names, card.task, pretrained,
                   notes, card.palette, card)


def _from_module(module: nn.Module, weights, pretrained: bool, device: DeviceLike,
                 preprocess: PreprocessLike, labels: Optional[Sequence[str]]) -> Network:
    if weights is not None:
        usermodel.load_strictly(module, weights)
    if device is not None:
        module.to(resolve_device(device))
    own = usermodel.preprocess_of(module)
    return Network(module, type(module).__name__, _preprocess(own, preprocess),
                   tuple(labels) if labels else usermodel.labels_of(module), None, pretrained,
                   () if pretrained else (RANDOM_NOTE,))


def open_network(model: Union[str, "ModelCard", nn.Module, Network], *, weights=None,
                 pretrained: bool = True, device: DeviceLike = None,
                 preprocess: PreprocessLike = None, labels: Optional[Sequence[str]] = None,
                 progress: Optional[Progress] = None) -> Network:
    """Open a network.

    model: a zoo name ("seresnet50"), a ModelCard, "package.module:function" (your factory;
    give `weights`, or pretrained=False for random weights), an nn.Module (used as it is,
    `weights` loaded into it strictly if given), or a Network (returned as it is).
    pretrained: a zoo network's published weights (downloaded and verified on first use,
    `progress(done, total)`; WeightsError if they cannot be had); False: random weights.
    device: "cpu", "cuda", "cuda:1", ...; None: CUDA when torch sees one for a zoo network,
    where its parameters are for a module of yours.
    preprocess: a Preprocess, or a mapping of fields to change in the network's own (for a
    module of yours: its pretrained_cfg dict, timm's keys, else ImageNet 224 px).
    labels: class names (default: the card's, or the module's `label_names`).
    Raises KeyError for an unknown name, ValueError for a factory that cannot be used,
    WeightsError for weights that cannot be had or do not fit.
    """
    if isinstance(model, Network):
        return model
    if isinstance(model, nn.Module):
        return _from_module(model, weights, pretrained, device, preprocess, labels)
    if isinstance(model, str) and usermodel.is_factory_spec(model):
        if weights is None and pretrained:
            raise WeightsError(f"{model[:80]} is your own network: give its weights file, or "
                               "use random weights (pretrained=False, --random).")
        from .loader import seeded
        with seeded(model):  # random weights (no file) the same in every process
            module = usermodel.load_model(model, weights)
        return _from_module(module, None, weights is not None, device, preprocess, labels)
    from . import zoo
    card = zoo.get(model) if isinstance(model, str) else model
    return _from_card(card, weights, pretrained, device, preprocess, labels, progress)
