"""I3D ResNet-50 with space-time Non-local blocks, as mmaction2 1.x publishes it for
Kinetics-400 (`i3d_imagenet-pretrained-r50-nl-embedded-gaussian_8xb8-32x2x1-100e_
kinetics400-rgb`), in plain PyTorch with mmaction2's module names, so its checkpoint's
state dict loads with no renaming.

Structure (from mmaction2's config and its ResNet3d documentation):
  input (B, 3, 32, 224, 224), RGB, ImageNet mean/std;
  conv1: (5, 7, 7) conv, stride (2, 2, 2), BN, ReLU; maxpool (1, 3, 3) stride (2, 2, 2);
  layer1..layer4: Bottleneck3d blocks (3, 4, 6, 3), spatial strides (1, 2, 2, 2), pytorch
  style (the stride on the 3 x 3 conv); an "inflated" block's first conv is (3, 1, 1), the
  others (1, 1, 1), its second conv (1, 3, 3); inflate per block
  ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0));
  pool2: max-pool (2, 1, 1) over time after layer1;
  Non-local blocks (mmcv NonLocal3d, embedded Gaussian, no 1/sqrt(d) scale, sub-sampled
  keys and values) after blocks 1 and 3 of layer2 and blocks 1, 3, 5 of layer3;
  head: global average pool, dropout (off in eval), fc_cls 2048 -> 400.
Feature volumes at 32 x 224^2 in: layer2 (4, 28, 28), layer3 (4, 14, 14); the Non-local
keys are pooled (1, 2, 2): (4, 14, 14) and (4, 7, 7).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mmseg_r50d8 import ConvModule

NUM_CLASSES = 400
INFLATE = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
NON_LOCAL = ((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0))
DEPTHS = (3, 4, 6, 3)


def _triple(k):
    return (k, k, k) if isinstance(k, int) else tuple(k)


class ConvModule3d(ConvModule):
    """mmcv's ConvModule with Conv3d: `conv` (no bias when normed), `bn` (BN3d), ReLU; the
    forward is the 2-D module's."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0, norm: bool = True,
                 act: bool = True):
        nn.Module.__init__(self)
        self.conv = nn.Conv3d(cin, cout, _triple(kernel), _triple(stride), _triple(padding),
                              bias=not norm)
        self.bn = nn.BatchNorm3d(cout) if norm else None
        self.activate = nn.ReLU(inplace=True) if act else None


class NonLocal3d(nn.Module):
    """mmcv's NonLocal3d, embedded Gaussian: with `sub_sample`, `g` and `phi` are each
    followed by a (1, 2, 2) max-pool (nn.Sequential(conv, pool): keys `g.0.conv.*`).

    y = x + conv_out(softmax(theta_x phi_x [/ sqrt(C')]) g_x), rows are queries over the
    (pooled) keys; conv_out is a 1x1x1 conv + BN3d.
    """

    def __init__(self, channels: int, reduction: int = 2, sub_sample: bool = True,
                 use_scale: bool = False):
        super().__init__()
        self.inter_channels = max(channels // reduction, 1)
        self.use_scale = use_scale
        self.sub_sample = sub_sample
        c = self.inter_channels
        self.g = ConvModule3d(channels, c, 1, norm=False, act=False)
        self.theta = ConvModule3d(channels, c, 1, norm=False, act=False)
        self.phi = ConvModule3d(channels, c, 1, norm=False, act=False)
        self.conv_out = ConvModule3d(c, channels, 1, act=False)
        if sub_sample:
            self.g = nn.Sequential(self.g, nn.MaxPool3d((1, 2, 2)))
            self.phi = nn.Sequential(self.phi, nn.MaxPool3d((1, 2, 2)))

    @property
    def scale(self) -> float:
        """The factor on theta . phi before the softmax."""
        return self.inter_channels ** -0.5 if self.use_scale else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> same shape."""
        n = x.shape[0]
        g = self.g(x).reshape(n, self.inter_channels, -1).transpose(1, 2)  # (n, M, C')
        theta = self.theta(x).reshape(n, self.inter_channels, -1).transpose(1, 2)  # (n, N, C')
        phi = self.phi(x).reshape(n, self.inter_channels, -1)  # (n, C', M)
        attn = torch.softmax(theta @ phi * self.scale, dim=-1)  # (n, N, M)
        y = (attn @ g).transpose(1, 2).reshape(n, self.inter_channels, *x.shape[2:])
        return x + self.conv_out(y)


class Bottleneck3d(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, inflate: bool, non_local: bool,
                 downsample: Optional[nn.Module]):
        super().__init__()
        k1, p1 = ((3, 1, 1), (1, 0, 0)) if inflate else (1, 0)
        self.conv1 = ConvModule3d(cin, planes, k1, 1, p1)
        self.conv2 = ConvModule3d(planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1))
        self.conv3 = ConvModule3d(planes, planes * 4, 1, act=False)
        self.downsample = downsample
        self.relu = nn.ReLU(inplace=True)
        if non_local:
            self.non_local_block = NonLocal3d(planes * 4)

    def forward(self, x):
        out = self.conv3(self.conv2(self.conv1(x)))
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(out + identity)
        block = getattr(self, "non_local_block", None)
        return out if block is None else block(out)


class ResNet3d(nn.Module):
    def __init__(self, depths: Sequence[int] = DEPTHS, inflate=INFLATE, non_local=NON_LOCAL):
        super().__init__()
        self.conv1 = ConvModule3d(3, 64, (5, 7, 7), (2, 2, 2), (2, 3, 3))
        self.maxpool = nn.MaxPool3d((1, 3, 3), (2, 2, 2), (0, 1, 1))
        self.pool2 = nn.MaxPool3d((2, 1, 1), (2, 1, 1))
        cin = 64
        for i, n in enumerate(depths):
            planes, stride = 64 * 2 ** i, (1, 2, 2, 2)[i]
            down = None
            if stride != 1 or cin != planes * 4:
                down = ConvModule3d(cin, planes * 4, 1, (1, stride, stride), act=False)
            blocks = []
            for b in range(n):
                blocks.append(Bottleneck3d(cin, planes, stride if b == 0 else 1,
                                           bool(inflate[i][b]), bool(non_local[i][b]),
                                           down if b == 0 else None))
                cin = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.pool2(self.layer1(x))
        for i in range(2, 5):
            x = getattr(self, f"layer{i}")(x)
        return x


class I3DHead(nn.Module):
    def __init__(self, channels: int = 2048, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.dropout = nn.Dropout(0.5)
        self.fc_cls = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool3d(x, 1).flatten(1)
        return self.fc_cls(self.dropout(x))


class I3DNonLocal(nn.Module):
    """mmaction2's Recognizer3D: `backbone` + `cls_head`; (B, 3, T, H, W) -> (B, 400)
    class logits (mmaction2's test averages softmax over clips; one clip here)."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.backbone = ResNet3d()
        self.cls_head = I3DHead(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.backbone(x))


def i3d_nl_r50(num_classes: int = NUM_CLASSES) -> I3DNonLocal:
    return I3DNonLocal(num_classes)


def adapt_state_dict(state: dict) -> dict:
    """An mmaction2 checkpoint's state dict (under "state_dict", maybe with a data
    preprocessor's mean/std buffers) -> this module's keys."""
    state = state.get("state_dict", state)
    return {k: v for k, v in state.items() if not k.startswith("data_preprocessor.")}
