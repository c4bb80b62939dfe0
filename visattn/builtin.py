"""The built-in entries: every attention-module class VisAttn knows, one
`register_attention` call each, grouped by family in the survey's order (the Families
page's order). A family is described once, in its first entry; later entries name its tag.

To add a built-in family: write its entry here (a `Family` with its paper, the taps, the
records, the neutral value) and add the class to `tests/test_registry.py`'s examples.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from .models.a2net import DoubleAttention
from .models.gsop import GSoP
from .models.mmseg_r50d8 import CAM, PAM, CrissCrossAttention, DisentangledNonLocal2d, NonLocal2d
from .models.triplet import TripletAttention

from .neutral import uniform, uniform_radix
from .probes import BlockCall, Build, Tap, as_array, branch_weights, embedded_gaussian
from .records import AxisGate, ChannelAffinity, CrissCross, Distribute, Record, RelativePosition, TwoHop
from .registry import Family, register_attention

# ----- builders of the classes whose records are more than one gate ------------------------

def _cbam(ch: str, sp: str) -> Build:
    """CBAM: the channel gate (C,), then the spatial gate (H, W)."""
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


def _bottleneck_attn(c: BlockCall) -> list[Record]:
    """BoTNet MHSA: per head softmax(scale * q.k + q.rel) from the qkv projection."""
    m = c.module  # timm's BottleneckAttn
    qkv = c.out("qkv").flatten(1)  # (2 * heads * dqk + heads * dv, N)
    q, k = qkv[:m.dim_out_qk], qkv[m.dim_out_qk:2 * m.dim_out_qk]
    heads = m.num_heads
    rel = RelativePosition(as_array(m.pos_embed.height_rel), as_array(m.pos_embed.width_rel))
    return [c.affinity("affinity", q.reshape(heads, m.dim_head_qk, -1),
                       k.reshape(heads, m.dim_head_qk, -1), m.scale, extra=rel,
                       extra_scaled=m.scale_pos_embed)]


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
    common = c.common
    return [AxisGate(values=as_array(c.out("cw.sigmoid")[0]), axes=("C", "W"), **common("C×W gate")),
            AxisGate(values=as_array(c.out("hc.sigmoid")[0]), axes=("H", "C"), **common("H×C gate")),
            c.spatial("spatial gate", c.out("hw.sigmoid"))]


def _channel_attention(c: BlockCall) -> list[Record]:
    """DANet's channel attention: row c of softmax(max energy - energy) of the channel Gram
    matrix of the block input, where channel c takes its features from, (C, C)."""
    flat = c.input[0].flatten(1).double()  # (C, N)
    energy = flat @ flat.T
    rows = torch.softmax(energy.max(-1, keepdim=True)[0] - energy, dim=-1)
    return [ChannelAffinity(values=as_array(rows.float()), **c.common("channel affinity"))]


def _double_attention(c: BlockCall) -> list[Record]:
    """A^2: each gather map (a distribution over positions) and the distribute rows."""
    gather, distribute = as_array(c.out("gather_softmax")), as_array(c.out("distribute_softmax"))
    recs = [c.spatial(f"gather map {k}", torch.from_numpy(g), "probability")
            for k, g in enumerate(gather)]
    recs.append(Distribute(gather=gather, distribute=distribute, **c.common("distribute rows")))
    return recs


def _first_channel(t: torch.Tensor) -> torch.Tensor:
    return t[:, :1]


def _pixel(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, :1, :1]


def _channel_mean(t: torch.Tensor) -> torch.Tensor:
    return t.mean(1, keepdim=True)


# ----- the entries, family by family ------------------------------------------------------
# Classes of timm and pytorchcv are named by path: bound when a network of theirs is first
# met, so that importing visattn imports neither library.
BamBlock = "pytorchcv.models.bamresnet:BamBlock"
CbamBlock = "pytorchcv.models.cbamresnet:CbamBlock"
SABlock = "pytorchcv.models.common.att:SABlock"
SEBlock = "pytorchcv.models.common.att:SEBlock"
BottleneckAttn = "timm.layers.bottleneck_attn:BottleneckAttn"
CbamModule = "timm.layers.cbam:CbamModule"
EcaModule = "timm.layers.eca:EcaModule"
CecaModule = "timm.layers.eca:CecaModule"
GlobalContext = "timm.layers.global_context:GlobalContext"
NonLocalAttn = "timm.layers.non_local_attn:NonLocalAttn"
SelectiveKernelAttn = "timm.layers.selective_kernel:SelectiveKernelAttn"
SplitAttn = "timm.layers.split_attn:SplitAttn"
SEModule = "timm.layers.squeeze_excite:SEModule"
LegacySEModule = "timm.models.senet:SEModule"

_NO_PUBLIC_WEIGHTS = "No public pretrained weights exist; only the project-trained network."
_GATES_OFF = 1.0  # a multiplicative gate switched off

register_attention(NonLocalAttn, kind="pairwise", tap=("t", "p"), scale=lambda m: m.scale,
                   family=Family("Non-local", "Non-local",
                                 "Wang et al., 2018: Non-local Neural Networks",
                                 "https://arxiv.org/abs/1711.07971",
                                 "pairwise (every position to every position)",
                                 example=("tiny_nl_clips", "clip_*.webm")))
register_attention(NonLocal2d, family="Non-local", kind="pairwise", tap=("theta", "phi"))
register_attention(DisentangledNonLocal2d, family="Non-local", kind="custom",
                   taps=("theta", "phi", "conv_mask"), build=_disentangled, neutral="identity")

register_attention(SEModule, kind="channel", tap="gate",
                   family=Family("SE", "SE", "Hu et al., 2018: Squeeze-and-Excitation Networks",
                                 "https://arxiv.org/abs/1709.01507", "channel"))
register_attention(LegacySEModule, family="SE", kind="channel", tap="sigmoid")
register_attention(SEBlock, family="SE", kind="channel", tap="sigmoid")

register_attention(BamBlock, kind="custom", build=_bam, neutral={"sigmoid": 0.0},  # x * (1 + gate)
                   taps=(Tap("ch_att", _pixel), Tap("sp_att", _first_channel),
                         Tap("sigmoid", _channel_mean)),
                   family=Family("BAM", "BAM", "Park et al., 2018: BAM: Bottleneck Attention Module",
                                 "https://arxiv.org/abs/1807.06514",
                                 "channel and spatial (one 3-D gate)"))

register_attention(CbamModule, kind="custom", taps=("channel.gate", "spatial.gate"),
                   build=_cbam("channel.gate", "spatial.gate"),
                   neutral={"channel.gate": _GATES_OFF, "spatial.gate": _GATES_OFF},
                   family=Family("CBAM", "CBAM",
                                 "Woo et al., 2018: CBAM: Convolutional Block Attention Module",
                                 "https://arxiv.org/abs/1807.06521", "channel, then spatial"))
register_attention(CbamBlock, family="CBAM", kind="custom",
                   taps=("ch_gate.sigmoid", "sp_gate.sigmoid"),
                   build=_cbam("ch_gate.sigmoid", "sp_gate.sigmoid"),
                   neutral={"ch_gate.sigmoid": _GATES_OFF, "sp_gate.sigmoid": _GATES_OFF})

register_attention(DoubleAttention, kind="custom", taps=("gather_softmax", "distribute_softmax"),
                   build=_double_attention, neutral="identity",
                   family=Family("A2", "A²-Nets", "Chen et al., 2018: A²-Nets: Double Attention Networks",
                                 "https://arxiv.org/abs/1810.11579",
                                 "pairwise, low rank (gather, then distribute)",
                                 note=_NO_PUBLIC_WEIGHTS))

register_attention(GSoP, kind="channel", tap="sigmoid",
                   family=Family("GSoP", "GSoP-Net",
                                 "Gao et al., 2019: Global Second-order Pooling Convolutional Networks",
                                 "https://arxiv.org/abs/1811.12006",
                                 "channel (from channel covariances)", note=_NO_PUBLIC_WEIGHTS))

register_attention(GlobalContext, kind="custom", taps=("conv_attn", "mlp_add", "gate"),
                   build=_global_context, neutral={"mlp_add": 0.0, "gate": _GATES_OFF},
                   optional=("mlp_add", "gate"),  # timm leaves out the term it does not fuse
                   family=Family("GC", "GCNet",
                                 "Cao et al., 2019: GCNet: Non-local Networks Meet Squeeze-Excitation",
                                 "https://arxiv.org/abs/1904.11492",
                                 "spatial context (one map for all queries) + channel"))

register_attention(EcaModule, kind="channel", tap="gate",
                   family=Family("ECA", "ECA-Net", "Wang et al., 2020: ECA-Net: Efficient Channel Attention",
                                 "https://arxiv.org/abs/1910.03151", "channel"))
register_attention(CecaModule, family="ECA", kind="channel", tap="gate")

register_attention(SelectiveKernelAttn, kind="branch", tap="",
                   build=branch_weights("", "kernel weights"),
                   family=Family("SK", "SKNet", "Li et al., 2019: Selective Kernel Networks",
                                 "https://arxiv.org/abs/1903.06586",
                                 "branch (which kernel size, per channel)"))

register_attention(CrissCrossAttention, kind="pairwise", tap=("query_conv", "key_conv"), scale=1.0,
                   build=embedded_gaussian("query_conv", "key_conv", 1.0, CrissCross, "criss-cross"),
                   finish=_two_hop,
                   family=Family("CCNet", "CCNet",
                                 "Huang et al., 2019: CCNet: Criss-Cross Attention for Semantic Segmentation",
                                 "https://arxiv.org/abs/1811.11721",
                                 "pairwise, sparse (row and column, twice)"))

register_attention(SplitAttn, kind="custom", taps=("rsoftmax",), grid_from="output",
                   build=_split_attn("rsoftmax", lambda m: m.radix),
                   neutral={"rsoftmax": uniform_radix},
                   family=Family("ResNeSt", "ResNeSt", "Zhang et al., 2022: ResNeSt: Split-Attention Networks",
                                 "https://arxiv.org/abs/2004.08955",
                                 "branch (split attention, per channel)"))
register_attention(SABlock, family="ResNeSt", kind="custom", taps=("softmax",),
                   build=_split_attn("softmax", lambda m: m.radix), neutral={"softmax": uniform(1)})

register_attention(TripletAttention, kind="custom", taps=("cw.sigmoid", "hc.sigmoid", "hw.sigmoid"),
                   build=_triplet, neutral=dict.fromkeys(("cw.sigmoid", "hc.sigmoid", "hw.sigmoid"),
                                                         _GATES_OFF),
                   family=Family("Triplet", "Triplet",
                                 "Misra et al., 2021: Rotate to Attend: Triplet Attention",
                                 "https://arxiv.org/abs/2010.03045",
                                 "cross-dimension (C×W, H×C, H×W gates)"))

# shown in the Non-local row: multi-head self-attention and DANet's position attention
register_attention(BottleneckAttn, kind="custom", taps=("qkv",), build=_bottleneck_attn,
                   neutral=None,  # its attention *is* the block's convolution: nothing to switch off
                   family=Family("BoT", "BoTNet",
                                 "Srinivas et al., 2021: Bottleneck Transformers for Visual Recognition",
                                 "https://arxiv.org/abs/2101.11605",
                                 "pairwise, per head, with relative positions", shown_under="Non-local"))
register_attention(PAM, kind="pairwise", tap=("query_project", "key_project"), scale=1.0,
                   family=Family("DANet", "DANet",
                                 "Fu et al., 2019: Dual Attention Network for Scene Segmentation",
                                 "https://arxiv.org/abs/1809.02983",
                                 "pairwise (position attention)", shown_under="Non-local"))
register_attention(CAM, family="DANet", kind="custom", taps=("gamma",), build=_channel_attention,
                   neutral="identity")  # the block passes its input
