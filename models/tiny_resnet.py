"""Tiny attention ResNets (~0.3-0.6 M parameters) for 64 x 64 inputs, built from the *same
attention module classes* as the pretrained networks (timm SEModule, EcaModule,
GlobalContext, SelectiveKernel, NonLocalAttn; pytorchcv CbamBlock, BamBlock), so the
probes that read the big networks read these too.

Layout: 3x3 stem (stride 2) -> four stages of basic blocks at 32, 16, 8, 4 px grids ->
global pool -> linear. Per-block attention sits on the residual branch before the add
(SE/CBAM/ECA/GC papers); BAM sits between stages (BAM paper); SK replaces each block's
first 3x3 conv (SKNet); one Non-local block, or one A^2 double-attention block, follows
stage 2, at the 16 x 16 grid. Triplet attention and GSoP sit in every block like SE.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch.nn as nn

WIDTHS = (16, 32, 64, 128)
DEPTHS = (1, 1, 2, 1)
ATTENTIONS = ("none", "se", "cbam", "bam", "nl", "eca", "gc", "sk", "triplet", "a2", "gsop")

Factory = Callable[[int], nn.Module]


def _se(ch: int) -> nn.Module:
    from timm.layers.squeeze_excite import SEModule
    return SEModule(ch, rd_ratio=1 / 4, rd_divisor=4)


def _eca(ch: int) -> nn.Module:
    from timm.layers.eca import EcaModule
    return EcaModule(ch)


def _gc(ch: int) -> nn.Module:
    from timm.layers.global_context import GlobalContext
    return GlobalContext(ch, fuse_add=True, fuse_scale=False, rd_ratio=1 / 4)  # timm 'gca'


def _cbam(ch: int) -> nn.Module:
    from pytorchcv.models.cbamresnet import CbamBlock
    return CbamBlock(ch, reduction_ratio=4)


def _bam(ch: int) -> nn.Module:
    """pytorchcv's BamBlock with the branch reduction set to 4 (its default 16 would leave
    one or two channels in a network this narrow)."""
    from pytorchcv.models.bamresnet import BamBlock, ChannelGate, SpatialGate
    block = BamBlock(ch)
    block.ch_att = ChannelGate(ch, reduction_ratio=4)
    block.sp_att = SpatialGate(ch, reduction_ratio=4)
    return block


def _non_local(ch: int) -> nn.Module:
    from timm.layers.non_local_attn import NonLocalAttn
    return NonLocalAttn(ch, rd_ratio=1 / 2)


def _triplet(ch: int) -> nn.Module:
    from .triplet import TripletAttention
    return TripletAttention(ch)


def _gsop(ch: int) -> nn.Module:
    from .gsop import GSoP
    return GSoP(ch, reduced=max(8, ch // 2))


def _double(ch: int) -> nn.Module:
    from .a2net import DoubleAttention
    return DoubleAttention(ch, m=ch // 2, n=8)


BLOCK_ATTN: dict[str, Optional[Factory]] = {"se": _se, "cbam": _cbam, "eca": _eca, "gc": _gc,
                                           "triplet": _triplet, "gsop": _gsop}


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, attn: Optional[Factory], sk: bool):
        super().__init__()
        if sk:
            from timm.layers.selective_kernel import SelectiveKernel
            self.conv1 = SelectiveKernel(cin, cout, stride=stride, rd_ratio=1 / 4, rd_divisor=4)
            self.bn1 = nn.Identity()  # SelectiveKernel ends with BN + ReLU itself
            self.act1 = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.attn = attn(cout) if attn else nn.Identity()
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                         nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else nn.Identity())
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.attn(self.bn2(self.conv2(y)))
        return self.act2(y + self.downsample(x))


class TinyResNet(nn.Module):
    def __init__(self, attention: str = "none", num_classes: int = 6,
                 widths=WIDTHS, depths=DEPTHS):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, not {attention!r}")
        self.attention = attention
        block_attn = BLOCK_ATTN.get(attention)
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages, cin = [], widths[0]
        for i, (w, d) in enumerate(zip(widths, depths)):
            blocks = [BasicBlock(cin if j == 0 else w, w, 2 if (i > 0 and j == 0) else 1,
                                 block_attn, attention == "sk") for j in range(d)]
            stages.append(nn.Sequential(*blocks))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # between-stage and non-local attention, named after the stage they follow
        self.bam1 = _bam(widths[0]) if attention == "bam" else nn.Identity()
        self.bam2 = _bam(widths[1]) if attention == "bam" else nn.Identity()
        self.bam3 = _bam(widths[2]) if attention == "bam" else nn.Identity()
        self.nl2 = _non_local(widths[1]) if attention == "nl" else nn.Identity()
        self.dbl2 = _double(widths[1]) if attention == "a2" else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.bam1(self.layer1(self.stem(x)))
        x = self.dbl2(self.nl2(self.bam2(self.layer2(x))))
        x = self.bam3(self.layer3(x))
        x = self.layer4(x)
        return self.fc(self.pool(x).flatten(1))


def tiny_resnet(attention: str, num_classes: int = 6) -> TinyResNet:
    return TinyResNet(attention, num_classes)
