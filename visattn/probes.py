"""Probes: which submodules of an attention block to tap and how the tapped tensors become
records. The registry (`registry.py`) holds one probe per attention-module class.

A probe is declarative: `taps` name submodule paths inside the attention block ("" is
the block itself) and what to keep of each output (`take`, applied before the copy so an
expanded view is never materialised). After the block's forward, `build` turns the kept
tensors into records through a `BlockCall`, which fills in layer path, grid, stage and
call index. Gates that a library applies inline (softmax inside forward) are re-applied
here from the hooked pre-gate tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional, Union

import numpy as np
import torch
import torch.nn as nn

from .records import Affinity, BranchWeights, ChannelWeights, Record, SpatialMap, ValueKind


TOP_K = 8  # channel feature maps kept per channel-weight record


def as_array(t: torch.Tensor) -> np.ndarray:
    """A tensor as a float32 numpy array (detached, on the CPU)."""
    return t.detach().float().cpu().numpy()


@dataclass(frozen=True)
class Tap:
    path: str  # submodule path inside the block; "" = the block's own output
    take: Optional[Callable[[torch.Tensor], torch.Tensor]] = None  # slice before copying


@dataclass
class BlockCall:
    """One call of one attention block: what its taps produced, and record factories."""
    layer: str
    family: str
    module: nn.Module
    grid: tuple[int, int]
    stage: Optional[int]
    call: int
    outputs: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    input: Optional[torch.Tensor] = None  # the block's input (B, C, H, W), not copied

    def out(self, path: str) -> Optional[torch.Tensor]:
        """The tap's output in this call (batch item 0); None if the tap did not fire."""
        got = self.outputs.get(path)
        if not got:
            return None
        if len(got) > 1:
            raise RuntimeError(f"{self.layer}.{path} fired {len(got)} times in one call")
        return got[0][0]

    def need(self, path: str) -> torch.Tensor:
        """The tap's output (batch item 0); a sentence naming block and tap if it did not fire."""
        got = self.out(path)
        if got is None:
            raise RuntimeError(f"{type(self.module).__name__} at {self.layer!r}: its tap "
                               f"{path!r} did not fire (no such submodule, or the block's "
                               "forward does not call it)")
        return got

    def common(self, name: str) -> dict:
        """The fields every record of this call shares (layer, family, grid, stage, call),
        with its `name`: `MyRecord(values=..., **call.common("my map"))` in a builder."""
        return dict(layer=self.layer, family=self.family, name=name, grid=self.grid,
                    stage=self.stage, call=self.call)

    _common = common  # the old private name, kept for one release

    def channel(self, name: str, values: torch.Tensor, kind: ValueKind = "gate",
                features: bool = True) -> Record:
        """Channel weights; with `features`, also the block input's feature maps at the
        TOP_K highest-weighted channels (when the input has one map per channel)."""
        v = values.reshape(-1)
        top = feats = None
        x = self.input
        if features and x is not None and x.ndim == 4 and x.shape[1] == v.numel():
            idx = torch.argsort(v, descending=True)[:TOP_K]
            top, feats = idx.numpy().astype(np.int64), as_array(x[0, idx])
        return ChannelWeights(values=as_array(v), value_kind=kind, top_channels=top,
                              top_features=feats, **self.common(name))

    def spatial(self, name: str, values: torch.Tensor, kind: ValueKind = "gate") -> Record:
        return SpatialMap(values=as_array(values.reshape(self.grid)), value_kind=kind,
                          **self.common(name))

    def branch(self, name: str, values: torch.Tensor, k: int) -> Record:
        return BranchWeights(values=as_array(values.reshape(k, -1)), **self.common(name))

    def affinity(self, name: str, queries: torch.Tensor, keys: torch.Tensor, scale: float,
                 kind: type = Affinity, **extra) -> Record:
        """queries, keys: (heads, d, N) as convolutions produce them."""
        return kind(queries=as_array(queries.transpose(1, 2)).copy(order="C"),
                        keys=as_array(keys.transpose(1, 2)).copy(order="C"),
                        scale=float(scale), **extra, **self.common(name))


Build = Callable[[BlockCall], list[Record]]
Finish = Callable[[list[Record]], list[Record]]


@dataclass(frozen=True)
class Probe:
    family: str
    taps: tuple[Tap, ...]
    build: Build
    grid_from: Literal["input", "output"] = "input"  # which tensor of the block has the grid
    finish: Optional[Finish] = None  # after the forward: records from all calls of the block


# ----- builders for the kinds register_attention knows ------------------------------------

Scale = Union[None, float, Callable[[nn.Module], float]]  # None: d ** -0.5 (d = query width)


def channel_gate(path: str, name: str = "channel gate") -> Build:
    """A tap whose output is one gate per channel, any shape with C values per image:
    (B, C, 1, 1), (B, 1, C), (B, C) -> ChannelWeights (C,)."""
    return lambda c: [c.channel(name, c.need(path))]


def spatial_gate(path: str, name: str = "spatial gate") -> Build:
    """A tap whose output is one gate per position, (B, 1, H, W) or (B, H, W), on the
    block input's grid -> SpatialMap (H, W)."""
    return lambda c: [c.spatial(name, c.need(path))]


def branch_weights(path: str, name: str = "branch weights") -> Build:
    """A tap whose output weighs K branches per channel, (B, K, C, ...) -> BranchWeights
    (K, C)."""
    return lambda c: [c.branch(name, c.need(path), c.need(path).shape[0])]


def _scale_of(scale: Scale, module: nn.Module, d: int) -> float:
    if scale is None:
        return d ** -0.5
    return float(scale(module) if callable(scale) else scale)


def embedded_gaussian(query: str, key: str, scale: Scale = None, kind: type = Affinity,
                      name: str = "affinity") -> Build:
    """Pairwise rows softmax(scale * q_i . K) from two taps whose outputs are the query
    and key embeddings, (B, d, H, W) each (1 x 1 projections) -> lazy `kind` rows."""
    def build(c: BlockCall) -> list[Record]:
        queries, keys = c.need(query).flatten(1), c.need(key).flatten(1)
        s = _scale_of(scale, c.module, queries.shape[0])
        return [c.affinity(name, queries[None], keys[None], s, kind=kind)]
    return build


