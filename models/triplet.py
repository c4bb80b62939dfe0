"""Triplet attention (Misra et al., "Rotate to Attend", WACV 2021), written from the paper.

Three branches look at the (C, H, W) tensor along different pairs of axes. Each rotates the
tensor so the axis left out comes first, squeezes it with Z-pool (max and mean along it),
convolves the 2-channel result (k x k, then BN) and turns it into a sigmoid gate over the
remaining two axes:
  branch "cw": leaves out H -> gate over (C, W)
  branch "hc": leaves out W -> gate over (H, C)
  branch "hw": leaves out C -> gate over (H, W) (the spatial gate)
The output is the mean of the three gated tensors.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class ZPool(nn.Module):
    """(B, A, X, Y) -> (B, 2, X, Y): max and mean over the first axis after the batch."""

    def forward(self, x):
        return torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)


class ConvBN(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x):
        return self.bn(self.conv(x))


class AttentionGate(nn.Module):
    """Z-pool -> conv + BN -> sigmoid; multiplies its (rotated) input by the gate."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.compress = ZPool()
        self.conv = ConvBN(kernel_size)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.conv(self.compress(x)))


class TripletAttention(nn.Module):
    # the permutation that brings the left-out axis of each branch first (B, C, H, W)
    ROTATIONS = {"cw": (0, 2, 1, 3), "hc": (0, 3, 2, 1), "hw": (0, 1, 2, 3)}

    def __init__(self, channels: int = 0, kernel_size: int = 7, **_):  # channel-free; timm
        super().__init__()                                              # passes device/dtype
        self.cw = AttentionGate(kernel_size)
        self.hc = AttentionGate(kernel_size)
        self.hw = AttentionGate(kernel_size)

    def forward(self, x):
        out = 0
        for name, perm in self.ROTATIONS.items():
            if name == "hw":  # leaves out C: Z-pool over channels, gate over (H, W)
                out = out + self.hw(x)
            else:  # a permutation of two axes is its own inverse
                out = out + getattr(self, name)(x.permute(*perm)).permute(*perm)
        return out / 3.0


# the authors' module names -> ours (their TripletAttention and its gates' submodules)
AUTHORS_GATES = {"ChannelGateH": "cw", "ChannelGateW": "hc", "SpatialGate": "hw"}
AUTHORS_PARTS = {"spatial": "conv"}  # their BasicConv(conv, bn) is our ConvBN(conv, bn)


def map_authors_checkpoint(state: dict) -> dict:
    """The authors' ResNet + triplet attention checkpoint (landskape-ai/triplet-attention,
    saved from DataParallel as {'state_dict', 'optimizer', 'epoch'}) onto a timm ResNet
    whose blocks carry this TripletAttention as `se`. Their keys read
    `module.layerK.J.triplet_attention.<Gate>.spatial.{conv,bn}.*`: strip `module.`, rename
    the gate (`ChannelGateH` leaves H out: our "cw"; `ChannelGateW` leaves W out: our "hc";
    `SpatialGate`: our "hw") and their gate's `spatial` (conv + BN) to our `conv`. The rest
    of their ResNet (conv1, bn1, layerK.J.conv1..bn3, downsample.0/1, fc) has timm's names."""
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if ".triplet_attention." in key:
            head, tail = key.split(".triplet_attention.")
            gate, part, rest = tail.split(".", 2)
            key = f"{head}.se.{AUTHORS_GATES[gate]}.{AUTHORS_PARTS.get(part, part)}.{rest}"
        out[key] = value
    return out
