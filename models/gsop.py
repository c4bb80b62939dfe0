"""GSoP block (Gao et al., "Global Second-order Pooling Convolutional Networks", CVPR 2019),
written from the paper: channel reduction (1 x 1 conv, BN, ReLU) to C', covariance pooling
of the C' channels over positions (C' x C'), row-wise convolution (each covariance row
convolved on its own: a grouped conv) to 4 C', ReLU, a 1 x 1 conv to C, and a sigmoid:
one weight per channel that scales the input (second-order channel attention)."""
from __future__ import annotations

import torch
import torch.nn as nn


class GSoP(nn.Module):
    def __init__(self, channels: int, reduced: int = 0):
        super().__init__()
        c = reduced or max(8, channels // 4)
        self.reduce = nn.Sequential(nn.Conv2d(channels, c, 1, bias=False), nn.BatchNorm2d(c),
                                    nn.ReLU(inplace=True))
        self.row_conv = nn.Conv2d(c, 4 * c, kernel_size=(c, 1), groups=c, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Conv2d(4 * c, channels, 1, bias=True)
        self.sigmoid = nn.Sigmoid()

    @staticmethod
    def covariance(x: torch.Tensor) -> torch.Tensor:
        """(B, C', H, W) -> (B, C', C') covariance of the channels over positions."""
        f = x.flatten(2)
        f = f - f.mean(-1, keepdim=True)
        return f @ f.transpose(1, 2) / f.shape[-1]

    def forward(self, x):
        cov = self.covariance(self.reduce(x))  # (B, C', C')
        rows = self.row_conv(cov.unsqueeze(-1))  # each row i of cov: channel i, kernel (C', 1)
        return x * self.sigmoid(self.fc(self.act(rows)))
