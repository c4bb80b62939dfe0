"""A^2-Nets double attention (Chen et al., NeurIPS 2018), written from the paper.

Three 1 x 1 projections of the input x (C, H, W): features A (m maps), attention maps B
(n maps) and attention vectors V (n per position).
  gather:     G = A softmax_positions(B)^T      n global descriptors of m numbers each
  distribute: z_i = G softmax_descriptors(V_i)   each position takes a mix of descriptors
  out = x + W z  (1 x 1 conv back to C, then BN)
The gather maps (each a distribution over positions) and the distribute weights (each a
distribution over descriptors) are separate modules' outputs, so probes can read them.
"""
from __future__ import annotations

import torch.nn as nn


class DoubleAttention(nn.Module):
    def __init__(self, channels: int, m: int = 0, n: int = 8):
        super().__init__()
        m = m or max(8, channels // 4)
        self.m, self.n = m, n
        self.conv_a = nn.Conv2d(channels, m, 1)
        self.conv_b = nn.Conv2d(channels, n, 1)
        self.conv_v = nn.Conv2d(channels, n, 1)
        self.gather_softmax = nn.Softmax(dim=-1)  # over positions, per descriptor
        self.distribute_softmax = nn.Softmax(dim=1)  # over descriptors, per position
        self.conv_out = nn.Conv2d(m, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        b, _, h, w = x.shape
        a = self.conv_a(x).flatten(2)  # (b, m, N)
        gather = self.gather_softmax(self.conv_b(x).flatten(2))  # (b, n, N)
        descriptors = a @ gather.transpose(1, 2)  # (b, m, n)
        distribute = self.distribute_softmax(self.conv_v(x).flatten(2))  # (b, n, N)
        z = (descriptors @ distribute).reshape(b, self.m, h, w)
        return x + self.bn(self.conv_out(z))
