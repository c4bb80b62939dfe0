"""Recorder: attach the probes to a model, run one forward, return a Trace, detach.

Hooks are registered for one call and always removed, also when the forward raises.
Each call has its own sink, and a hook writes only when the thread running it has that
sink active (a ContextVar), so one model object can serve concurrent requests: hooks
that another thread's call attached meanwhile see a different sink and do nothing.

Hooks keep the tapped tensors where the model runs; after the forward they are copied to
the CPU together (one transfer per dtype, not one per record), and only then do the probes
build records, per batch item (`run_batch`: the item's records equal those of a run on
that image alone).
"""
from __future__ import annotations

import contextvars
import dataclasses
import re
import time
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from .geometry import Geometry
from .probes import BlockCall, Probe
from .records import Prediction, Record, Segmentation, Trace
from .registry import registered

_ACTIVE: contextvars.ContextVar[Optional["_Sink"]] = contextvars.ContextVar(
    "visattn_sink", default=None)

_STAGE_PATTERNS = ((re.compile(r"(?:^|\.)layer(\d+)\."), 0),  # torchvision/timm ResNet
                   (re.compile(r"(?:^|\.)stages?\.(\d+)\."), 1),  # timm byobnet: 0-based
                   (re.compile(r"(?:^|\.)stage(\d+)\."), 0),  # pytorchcv: 1-based
                   (re.compile(r"^(?:bam|nl|dbl)(\d+)\."), 0),  # models/tiny_resnet: after stage N
                   (re.compile(r"^decode_(head)\."), None))  # segmentation heads: stage 4 features


def stage_of(layer: str) -> Optional[int]:
    """1-based stage number from a module path, e.g. 'layer3.1.se' -> 3."""
    for pattern, shift in _STAGE_PATTERNS:
        m = pattern.search(layer + ".")
        if m:
            return 4 if shift is None else int(m.group(1)) + shift
    return None


class _Sink:
    """Everything one forward call collects."""

    def __init__(self, features: bool = True):
        self.features = features  # keep block inputs (top channel feature maps)
        self.done: list[tuple[Probe, BlockCall]] = []  # finished calls, in network order
        self.open: dict[str, list[BlockCall]] = {}  # layer -> stack of running calls
        self.calls: dict[str, int] = {}  # layer -> calls seen so far

    def active(self) -> bool:
        return _ACTIVE.get() is self


def attachable(model: nn.Module) -> list[tuple[str, nn.Module, Probe]]:
    """Every (path, module, probe) of a registered attention class, in module order."""
    return [(path, module, entry.probe) for path, module, entry in registered(model)]


def _attach(probes: list[tuple[str, nn.Module, Probe]],
            sink: _Sink) -> list[torch.utils.hooks.RemovableHandle]:
    handles = []
    for layer, block, probe in probes:
        handles += _attach_block(layer, block, probe, sink)
    return handles


def _attach_block(layer: str, block: nn.Module, probe: Probe, sink: _Sink):
    def pre(module, args):
        if not sink.active():
            return
        call = sink.calls.get(layer, 0)
        sink.calls[layer] = call + 1
        grid = tuple(args[0].shape[-2:]) if probe.grid_from == "input" else None
        sink.open.setdefault(layer, []).append(BlockCall(
            layer, probe.family, module, grid, stage_of(layer), call,
            input=args[0] if sink.features else None))

    def keep(tap, output):
        kept = tap.take(output) if tap.take else output
        sink.open[layer][-1].outputs.setdefault(tap.path, []).append(kept.detach().clone())

    def make_tap(tap):
        def hook(module, args, output):
            if sink.active() and sink.open.get(layer):
                keep(tap, output)
        return hook

    own = [tap for tap in probe.taps if tap.path == ""]

    def post(module, args, output):
        if not sink.active() or not sink.open.get(layer):
            return
        for tap in own:
            keep(tap, output)
        call = sink.open[layer].pop()
        if call.grid is None:
            call.grid = tuple(output.shape[-2:])
        sink.done.append((probe, call))

    handles = [block.register_forward_pre_hook(pre)]
    for tap in probe.taps:
        if tap.path and _has(block, tap.path):
            handles.append(block.get_submodule(tap.path).register_forward_hook(make_tap(tap)))
    handles.append(block.register_forward_hook(post))
    return handles


def _has(block: nn.Module, path: str) -> bool:
    """True if the submodule exists and is a module (timm sets unused ones to None)."""
    try:
        block.get_submodule(path)
    except AttributeError:
        return False
    return True


def run(model: nn.Module, x: torch.Tensor, *, geometry: Optional[Geometry] = None,
        labels: Sequence[str] = (), name: str = "") -> Trace:
    """Run `model` on a (1, 3, H, W) tensor with every probe attached; return the Trace.

    The model is put in eval mode (if it is not already) and run under inference_mode, on
    the device of `x` (the model must be there too); the records are numpy on the CPU.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"capture.run takes one image, a (1, 3, H, W) tensor; got {tuple(x.shape)}")
    return run_batch(model, x, geometries=[geometry], labels=labels, name=name)[0]


def run_batch(model: nn.Module, x: torch.Tensor, *,
              geometries: Optional[Sequence[Optional[Geometry]]] = None,
              labels: Sequence[str] = (), name: str = "", features: bool = True) -> list[Trace]:
    """One forward of a (B, 3, H, W) batch -> one Trace per image, equal (up to the
    arithmetic of batched kernels) to `run` on each image alone. `features=False` skips the
    block inputs' top channel maps (what dataset statistics do not need)."""
    sink = _Sink(features)
    start = time.perf_counter()
    probes = attachable(model)
    handles = _attach(probes, sink)
    token = _ACTIVE.set(sink)
    try:
        if model.training:
            model.eval()
        with torch.inference_mode():
            out = model(x)
    finally:
        _ACTIVE.reset(token)
        for h in handles:
            h.remove()
    calls = [call for _, call in sink.done]
    _to_cpu(calls)
    out = out.detach().cpu() if isinstance(out, torch.Tensor) else out
    elapsed = (time.perf_counter() - start) / x.shape[0]
    traces = []
    for b, geometry in enumerate(geometries or [None] * x.shape[0]):
        records = _finish(probes, [r for probe, call in sink.done for r in probe.build(_item(call, b))])
        geometry = geometry or Geometry((x.shape[3], x.shape[2]), (x.shape[3], x.shape[2]),
                                        (0, 0), (x.shape[3], x.shape[2]))
        item = out[b:b + 1] if isinstance(out, torch.Tensor) else out
        traces.append(Trace(model=name or type(model).__name__, records=records, geometry=geometry,
                            prediction=_prediction(item, labels, geometry), elapsed_s=elapsed))
    return traces


def _item(call: BlockCall, b: int) -> BlockCall:
    """Batch item `b` of a block call, as a call of that image alone (item 0)."""
    return dataclasses.replace(
        call, outputs={path: [t[b:b + 1] for t in kept] for path, kept in call.outputs.items()},
        input=None if call.input is None else call.input[b:b + 1])


def _to_cpu(calls: list[BlockCall]) -> None:
    """Every tensor the calls kept, copied to the CPU at once: one transfer per dtype."""
    slots = [(c.outputs[p], i) for c in calls for p in c.outputs for i in range(len(c.outputs[p]))]
    inputs = [c for c in calls if c.input is not None]
    tensors = [kept[i] for kept, i in slots] + [c.input for c in inputs]
    if all(t.device.type == "cpu" for t in tensors):
        return
    moved = iter(_host_copies(tensors))
    for kept, i in slots:
        kept[i] = next(moved)
    for c in inputs:
        c.input = next(moved)


def _host_copies(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """CPU copies of `tensors` (in order), made by one device-to-host copy per device and
    dtype."""
    copies: list[Optional[torch.Tensor]] = [None] * len(tensors)
    for device, dtype in {(t.device, t.dtype) for t in tensors}:
        idx = [i for i, t in enumerate(tensors) if (t.device, t.dtype) == (device, dtype)]
        host = torch.cat([tensors[i].reshape(-1) for i in idx]).cpu()
        for i, part in zip(idx, host.split([tensors[i].numel() for i in idx])):
            copies[i] = part.view(tensors[i].shape)
    return copies


def _finish(probes: list[tuple[str, nn.Module, Probe]], records: list[Record]) -> list[Record]:
    """Probes with a `finish` step add records made from all calls of their block, right
    after that block's last record."""
    for layer, _, probe in probes:
        if probe.finish is None:
            continue
        mine = [i for i, r in enumerate(records) if r.layer == layer]
        if mine:
            extra = probe.finish([records[i] for i in mine])
            records[mine[-1] + 1:mine[-1] + 1] = extra
    return records


SEGMENT_CAP = 1024  # class maps are made at most this many pixels on their long side


def _prediction(out, labels: Sequence[str], geometry: Geometry):
    """Classifier logits (1, K) -> Prediction; segmentation logits (1, K, Hin, Win) at the
    model input's size -> Segmentation on the photo (bilinear per class, as mmseg resizes
    its logits, then argmax; capped at SEGMENT_CAP px, -1 outside the model's view); a clip
    labeller's (1, K, T, Hin, Win) -> Segmentation with one such map per frame."""
    if isinstance(out, torch.Tensor) and out.ndim == 2:
        probs = torch.softmax(out[0].float(), 0).cpu().numpy()
        return Prediction(probs=probs.astype(np.float32), labels=list(labels))
    if isinstance(out, torch.Tensor) and out.ndim == 4:
        return Segmentation(class_map=_class_map(out[0].float().cpu().numpy(), geometry),
                            labels=list(labels))
    if isinstance(out, torch.Tensor) and out.ndim == 5:
        planes = out[0].float().cpu().numpy()  # (K, T, H, W)
        return Segmentation(class_map=np.stack([_class_map(planes[:, t], geometry)
                                                for t in range(planes.shape[1])]),
                            labels=list(labels))
    return None


def _class_map(planes: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(K, Hin, Win) logits at the model input -> (H, W) int16 classes on the photo."""
    w0, h0 = geometry.image_size
    if geometry.image_size == geometry.resized == geometry.input_size == planes.shape[:0:-1] \
            and tuple(geometry.offset) == (0, 0) and w0 <= SEGMENT_CAP and h0 <= SEGMENT_CAP:
        return planes.argmax(0).astype(np.int16)  # the input is the photo: nothing to resample
    s = min(1.0, SEGMENT_CAP / max(w0, h0))
    size = (max(1, round(w0 * s)), max(1, round(h0 * s)))
    best = np.full((size[1], size[0]), -np.inf, np.float32)
    class_map = np.full((size[1], size[0]), -1, np.int16)
    for k, plane in enumerate(planes):
        v = geometry.grid_to_image(plane, size)
        better = v > best  # NaN (unseen) never wins
        best[better], class_map[better] = v[better], k
    return class_map
