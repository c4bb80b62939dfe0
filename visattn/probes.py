"""The probe table: for each attention-module class, which submodules to tap and how the
tapped tensors become records.

A probe is declarative: `taps` name submodule paths inside the attention block ("" is
the block itself) and what to keep of each output (`take`, applied before the copy so an
expanded view is never materialised). After the block's forward, `build` turns the kept
tensors into records through a `BlockCall`, which fills in layer path, grid, stage and
call index. Gates that a library applies inline (softmax inside forward) are re-applied
here from the hooked pre-gate tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

import numpy as np
import torch
import torch.nn as nn

from pytorchcv.models.bamresnet import BamBlock
from pytorchcv.models.cbamresnet import CbamBlock
from pytorchcv.models.common.att import SABlock, SEBlock
from timm.layers.bottleneck_attn import BottleneckAttn
from timm.layers.cbam import CbamModule
from timm.layers.eca import CecaModule, EcaModule
from timm.layers.global_context import GlobalContext
from timm.layers.non_local_attn import NonLocalAttn
from timm.layers.selective_kernel import SelectiveKernelAttn
from timm.layers.split_attn import SplitAttn
from timm.layers.squeeze_excite import SEModule
from timm.models.senet import SEModule as LegacySEModule

from models.a2net import DoubleAttention
from models.gsop import GSoP
from models.mmseg_r50d8 import PAM, CrissCrossAttention, DisentangledNonLocal2d, NonLocal2d
from models.triplet import TripletAttention

from .records import (Affinity, AxisGate, BranchWeights, ChannelWeights, CrissCross, Distribute,
                      Record, RelativePosition, SpatialMap, TwoHop, ValueKind)


TOP_K = 8  # channel feature maps kept per channel-weight record


def _np(t: torch.Tensor) -> np.ndarray:
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

    def _common(self, name: str) -> dict:
        return dict(layer=self.layer, family=self.family, name=name, grid=self.grid,
                    stage=self.stage, call=self.call)

    def channel(self, name: str, values: torch.Tensor, kind: ValueKind = "gate",
                features: bool = True) -> Record:
        """Channel weights; with `features`, also the block input's feature maps at the
        TOP_K highest-weighted channels (when the input has one map per channel)."""
        v = values.reshape(-1)
        top = feats = None
        x = self.input
        if features and x is not None and x.ndim == 4 and x.shape[1] == v.numel():
            idx = torch.argsort(v, descending=True)[:TOP_K]
            top, feats = idx.numpy().astype(np.int64), _np(x[0, idx])
        return ChannelWeights(values=_np(v), value_kind=kind, top_channels=top,
                              top_features=feats, **self._common(name))

    def spatial(self, name: str, values: torch.Tensor, kind: ValueKind = "gate") -> Record:
        return SpatialMap(values=_np(values.reshape(self.grid)), value_kind=kind,
                          **self._common(name))

    def branch(self, name: str, values: torch.Tensor, k: int) -> Record:
        return BranchWeights(values=_np(values.reshape(k, -1)), **self._common(name))

    def affinity(self, name: str, queries: torch.Tensor, keys: torch.Tensor, scale: float,
                 kind: type = Affinity, **extra) -> Record:
        """queries, keys: (heads, d, N) as convolutions produce them."""
        return kind(queries=_np(queries.transpose(1, 2)).copy(order="C"),
                        keys=_np(keys.transpose(1, 2)).copy(order="C"),
                        scale=float(scale), **extra, **self._common(name))


Build = Callable[[BlockCall], list[Record]]
Finish = Callable[[list[Record]], list[Record]]


@dataclass(frozen=True)
class Probe:
    family: str
    taps: tuple[Tap, ...]
    build: Build
    grid_from: Literal["input", "output"] = "input"  # which tensor of the block has the grid
    finish: Optional[Finish] = None  # after the forward: records from all calls of the block


# ----- builders ---------------------------------------------------------------------------

def _gate(path: str, name: str = "channel gate") -> Build:
    """A module that outputs a channel gate of any shape (B, C, 1, 1), (B, 1, C), (B, C)."""
    return lambda c: [c.channel(name, c.out(path))]


def _cbam(ch: str, sp: str) -> Build:
    return lambda c: [c.channel("channel gate", c.out(ch)), c.spatial("spatial gate", c.out(sp))]


def _global_context(c: BlockCall) -> list[Record]:
    """GCNet: context weights = softmax over H*W of conv_attn logits (inline softmax)."""
    recs = []
    logits = c.out("conv_attn")
    if logits is not None:
        recs.append(c.spatial("context weights", torch.softmax(logits.reshape(-1), 0),
                              "probability"))
    if c.out("mlp_add") is not None:
        recs.append(c.channel("channel add", c.out("mlp_add"), "vector", features=False))
    if c.out("gate") is not None:
        recs.append(c.channel("channel gate", c.out("gate")))
    return recs


def _split_attn(path: str, radix_of: Callable[[nn.Module], int]) -> Build:
    """ResNeSt split attention: softmax over radix splits, per channel; sigmoid if radix 1."""
    def build(c: BlockCall) -> list[Record]:
        radix = radix_of(c.module)
        if radix == 1:
            return [c.channel("channel gate", c.out(path))]
        return [c.branch("split weights", c.out(path), radix)]
    return build


def _bam(c: BlockCall) -> list[Record]:
    """BAM: gate = sigmoid(Mc * Ms) (C, H, W), applied as x * (1 + gate)."""
    return [c.channel("channel branch", c.out("ch_att"), "logit"),
            c.spatial("spatial branch", c.out("sp_att"), "logit"),
            c.spatial("gate (channel mean)", c.out("sigmoid"))]


def _non_local(c: BlockCall) -> list[Record]:
    """timm NonLocalAttn: softmax(scale * t^T p), scale = in_channels ** -0.5."""
    t, p = c.out("t"), c.out("p")
    return [c.affinity("affinity", t.flatten(1)[None], p.flatten(1)[None], c.module.scale)]


def _bottleneck_attn(c: BlockCall) -> list[Record]:
    """BoTNet MHSA: per head softmax(scale * q.k + q.rel) from the qkv projection."""
    m: BottleneckAttn = c.module
    qkv = c.out("qkv").flatten(1)  # (2 * heads * dqk + heads * dv, N)
    q, k = qkv[:m.dim_out_qk], qkv[m.dim_out_qk:2 * m.dim_out_qk]
    heads = m.num_heads
    rel = RelativePosition(_np(m.pos_embed.height_rel), _np(m.pos_embed.width_rel))
    return [c.affinity("affinity", q.reshape(heads, m.dim_head_qk, -1),
                       k.reshape(heads, m.dim_head_qk, -1), m.scale, extra=rel,
                       extra_scaled=m.scale_pos_embed)]


def _embedded_gaussian(q: str, k: str, scaled: bool, kind: type = Affinity) -> Build:
    """Pairwise softmax(q^T k [/ sqrt(d)]) rows from two 1 x 1 projections."""
    def build(c: BlockCall) -> list[Record]:
        queries, keys = c.out(q).flatten(1), c.out(k).flatten(1)
        scale = queries.shape[0] ** -0.5 if scaled else 1.0
        name = "criss-cross" if kind is CrissCross else "affinity"
        return [c.affinity(name, queries[None], keys[None], scale, kind=kind)]
    return build


def _disentangled(c: BlockCall) -> list[Record]:
    """DNLNet: whitened pairwise rows softmax((theta_i - mean theta) . (Phi - mean phi)
    [/ sqrt(d)] / T), means over positions, and the unary map softmax(conv_mask) over
    positions (one map shared by every query)."""
    m = c.module
    theta, phi = c.out("theta").flatten(1), c.out("phi").flatten(1)  # (d, N)
    theta = theta - theta.mean(1, keepdim=True)
    phi = phi - phi.mean(1, keepdim=True)
    scale = (theta.shape[0] ** -0.5 if m.use_scale else 1.0) / m.temperature
    return [c.affinity("whitened pairwise", theta[None], phi[None], scale),
            c.spatial("unary map", torch.softmax(c.out("conv_mask").reshape(-1), 0),
                      "probability")]


def _two_hop(records: list[Record]) -> list[Record]:
    """CCNet runs its criss-cross twice: compose consecutive calls into full-image reach."""
    out = []
    for first, second in zip(records, records[1:]):
        out.append(TwoHop(first=first, second=second, layer=second.layer, family=second.family,
                          name=f"two-hop reach (calls {first.call}+{second.call})",
                          grid=second.grid, stage=second.stage, call=second.call))
    return out


def _triplet(c: BlockCall) -> list[Record]:
    """Triplet attention: gates over (C, W) and (H, C) from the rotated branches, and the
    spatial (H, W) gate."""
    common = c._common
    return [AxisGate(values=_np(c.out("cw.sigmoid")[0]), axes=("C", "W"), **common("C×W gate")),
            AxisGate(values=_np(c.out("hc.sigmoid")[0]), axes=("H", "C"), **common("H×C gate")),
            c.spatial("spatial gate", c.out("hw.sigmoid"))]


def _double_attention(c: BlockCall) -> list[Record]:
    """A^2: each gather map (a distribution over positions) and the distribute rows."""
    gather, distribute = _np(c.out("gather_softmax")), _np(c.out("distribute_softmax"))
    recs = [c.spatial(f"gather map {k}", torch.from_numpy(g), "probability")
            for k, g in enumerate(gather)]
    recs.append(Distribute(gather=gather, distribute=distribute, **c._common("distribute rows")))
    return recs


def _first_channel(t: torch.Tensor) -> torch.Tensor:
    return t[:, :1]


def _pixel(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, :1, :1]


def _channel_mean(t: torch.Tensor) -> torch.Tensor:
    return t.mean(1, keepdim=True)


# ----- the table --------------------------------------------------------------------------

PROBES: dict[type, Probe] = {
    # timm
    SEModule: Probe("SE", (Tap("gate"),), _gate("gate")),
    LegacySEModule: Probe("SE", (Tap("sigmoid"),), _gate("sigmoid")),
    EcaModule: Probe("ECA", (Tap("gate"),), _gate("gate")),
    CecaModule: Probe("ECA", (Tap("gate"),), _gate("gate")),
    CbamModule: Probe("CBAM", (Tap("channel.gate"), Tap("spatial.gate")),
                      _cbam("channel.gate", "spatial.gate")),
    GlobalContext: Probe("GC", (Tap("conv_attn"), Tap("mlp_add"), Tap("gate")), _global_context),
    SelectiveKernelAttn: Probe("SK", (Tap(""),),
                               lambda c: [c.branch("kernel weights", c.out(""), c.module.num_paths)]),
    SplitAttn: Probe("ResNeSt", (Tap("rsoftmax"),), _split_attn("rsoftmax", lambda m: m.radix),
                     grid_from="output"),
    NonLocalAttn: Probe("Non-local", (Tap("t"), Tap("p")), _non_local),
    BottleneckAttn: Probe("BoT", (Tap("qkv"),), _bottleneck_attn),
    # pytorchcv
    SEBlock: Probe("SE", (Tap("sigmoid"),), _gate("sigmoid")),
    CbamBlock: Probe("CBAM", (Tap("ch_gate.sigmoid"), Tap("sp_gate.sigmoid")),
                     _cbam("ch_gate.sigmoid", "sp_gate.sigmoid")),
    BamBlock: Probe("BAM", (Tap("ch_att", _pixel), Tap("sp_att", _first_channel),
                            Tap("sigmoid", _channel_mean)), _bam),
    SABlock: Probe("ResNeSt", (Tap("softmax"),), _split_attn("softmax", lambda m: m.radix)),
    # models/mmseg_r50d8 (mmsegmentation's layout, plain PyTorch)
    NonLocal2d: Probe("Non-local", (Tap("theta"), Tap("phi")),
                      _embedded_gaussian("theta", "phi", scaled=True)),
    DisentangledNonLocal2d: Probe("Non-local", (Tap("theta"), Tap("phi"), Tap("conv_mask")),
                                  _disentangled),
    CrissCrossAttention: Probe("CCNet", (Tap("query_conv"), Tap("key_conv")),
                               _embedded_gaussian("query_conv", "key_conv", False, CrissCross),
                               finish=_two_hop),
    PAM: Probe("DANet", (Tap("query_project"), Tap("key_project")),
               _embedded_gaussian("query_project", "key_project", scaled=False)),
    # models/triplet, a2net, gsop (written from the papers)
    TripletAttention: Probe("Triplet", (Tap("cw.sigmoid"), Tap("hc.sigmoid"), Tap("hw.sigmoid")),
                            _triplet),
    DoubleAttention: Probe("A2", (Tap("gather_softmax"), Tap("distribute_softmax")),
                           _double_attention),
    GSoP: Probe("GSoP", (Tap("sigmoid"),), _gate("sigmoid")),
}


def probe_for(module: nn.Module) -> Optional[Probe]:
    """The probe of the module's class or its nearest base class in the table."""
    for cls in type(module).__mro__:
        if cls in PROBES:
            return PROBES[cls]
    return None
