"""The upload flow as one call: image (or clip) in, Trace out (the network opened by opener)."""
from __future__ import annotations

import time
from typing import Optional, Sequence, Union

import torch.nn as nn

from . import capture
from .device import DeviceLike, of_module, on_zerogpu
from .image import DEFAULT_MAX_PIXELS, ImageSource, load_image
from .opener import RANDOM_NOTE, Network, PreprocessLike, open_network  # noqa: F401 (RANDOM_NOTE: its old home)
from .preprocess import prepare
from .records import Trace
from .video import MAX_BYTES, ClipSource, Sampling, load_clip, sampling_for
from .weights import Progress


def _run_on_model_device(net: nn.Module, x, **kwargs) -> Trace:
    """capture.run with the input moved to the network's device (inside the GPU call)."""
    return capture.run(net, x.to(of_module(net)), **kwargs)


def _run_batch_on_model_device(net: nn.Module, x, **kwargs) -> list[Trace]:
    return capture.run_batch(net, x.to(of_module(net)), **kwargs)


_forward = on_zerogpu(_run_on_model_device)  # on a ZeroGPU Space, the forward borrows a GPU
_forward_batch = on_zerogpu(_run_batch_on_model_device)


def analyze(image: ImageSource, model: Union[str, nn.Module, Network], *,
            pretrained: bool = True, progress: Optional[Progress] = None,
            preprocess: PreprocessLike = None, labels: Sequence[str] = (),
            max_pixels: int = DEFAULT_MAX_PIXELS, device: DeviceLike = None) -> Trace:
    """Run `model` on `image` and capture every attention map.

    >>> trace = visattn.analyze("cat.jpg", "cbam_resnet50")
    >>> trace.prediction.top(5); trace.select(SpatialMap)[0].values

    `model` is anything `visattn.open_network` opens (a zoo name, a card,
    "package.module:function", an nn.Module, or an opened Network); `pretrained`,
    `progress`, `preprocess`, `labels` and `device` are passed to it. A zoo name loads the
    card's pretrained weights (downloaded and verified on first use; WeightsError if they
    cannot be had); `pretrained=False` builds the architecture with random weights. The
    records are numpy arrays on the CPU on any device.
    """
    start = time.perf_counter()
    image_notes: list[str] = []  # what decoding did to the pixels (transparency filled)
    rgb = load_image(image, max_pixels=max_pixels, notes=image_notes)
    net = open_network(model, pretrained=pretrained, progress=progress,
                       preprocess=preprocess, labels=labels or None, device=device)
    x, geometry = prepare(rgb, net.preprocess)
    trace = _forward(net.module, x, geometry=geometry, labels=net.labels, name=net.name)
    net.complete(trace, rgb, image_notes)
    trace.elapsed_s = time.perf_counter() - start
    return trace


def analyze_batch(x, images: Sequence, geometries: Sequence,
                  model: Union[str, nn.Module, Network], *, pretrained: bool = True,
                  preprocess: PreprocessLike = None, labels: Sequence[str] = (),
                  device: DeviceLike = None) -> list[Trace]:
    """`analyze` for a batch already prepared with the network's preprocessing (a
    DataLoader's): x (B, 3, H, W), the decoded photos (H, W, 3) and their Geometry -> one
    Trace each, equal to analyze() of each photo alone."""
    net = open_network(model, pretrained=pretrained, preprocess=preprocess,
                       labels=labels or None, device=device)
    traces = _forward_batch(net.module, x, geometries=geometries, labels=net.labels,
                            name=net.name)
    for trace, rgb in zip(traces, images):
        net.complete(trace, rgb)
    return traces


def analyze_video(source: ClipSource, model, *, pretrained: bool = True,
                  sampling: Optional[Sampling] = None, device=None, progress=None,
                  preprocess=None, max_bytes: int = MAX_BYTES):
    """Run a video network on a clip and capture every attention map: a Trace whose
    space-time records (`SpaceTimeAffinity`) have (T, h, w) query grids, `trace.clip`
    the sampled frames (and which frames they were), `trace.geometry` one frame's mapping
    to the model input.

    >>> trace = visattn.analyze_video("clip.mp4", "i3d_nl_r50_kinetics400")
    >>> rec = trace.select(visattn.SpaceTimeAffinity)[0]; rec.row(rec.cell(1, 7, 7))

    `sampling` defaults to the network's own (I3D: 32x2x1); `model` is anything
    `visattn.open_network` opens (`pretrained`, `device`, `progress`, `preprocess` are
    passed to it; each frame is prepared like a photo).
    """
    import torch

    from . import zoo_video
    start = time.perf_counter()
    zoo_video.ensure_cards()
    net = open_network(model, pretrained=pretrained, progress=progress, device=device,
                       preprocess=preprocess)
    clip = load_clip(source, sampling or sampling_for(net.name), max_bytes)
    tensors, geometry = [], None
    for rgb in clip.frames:
        x, geometry = prepare(rgb, net.preprocess)
        tensors.append(x)
    x = torch.stack(tensors, dim=2)  # (1, 3, T, H, W)
    param = next(net.module.parameters(), None)
    if param is not None:
        x = x.to(param.device)
    trace = capture.run_batch(net.module, x, geometries=[geometry], labels=net.labels,
                              name=net.name)[0]
    net.complete(trace, clip.frames[0])
    trace.clip = clip
    trace.elapsed_s = time.perf_counter() - start
    return trace
