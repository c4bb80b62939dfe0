"""A tiny dense labeller for twin scenes (64 x 64 px): each pixel is background, part of a
unique object, or part of one of two identical objects. Whether an object has a twin is
decided by what is painted elsewhere in the scene, beyond the convolutions' reach, so
only a block that relates distant positions can tell.

Layout: 3x3 stem (stride 2, 32 x 32) -> basic block (stride 2, 16 x 16) -> basic block ->
[Non-local block: mmseg's NonLocal2d, the class the pretrained NonLocalNet uses] ->
1 x 1 head -> logits upsampled (bilinear) to the input size. The convolutional part sees
31 x 31 px around a cell; `non_local=False` is the same network without the block (the
control), which can only guess.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .mmseg_r50d8 import NonLocal2d
from .tiny_resnet import BasicBlock

WIDTHS = (16, 32, 64)


def labeller_parts(num_classes: int, widths=WIDTHS) -> dict[str, nn.Module]:
    """The per-pixel labeller both tiny labellers share (the twins' here, the clips' in
    tiny_clips): a stride-2 stem, two basic blocks (stride 4 in all) and a 1x1 head; the
    attention block goes between layer2 and the head."""
    w0, w1, w2 = widths
    return {"stem": nn.Sequential(nn.Conv2d(3, w0, 3, 2, 1, bias=False), nn.BatchNorm2d(w0),
                                  nn.ReLU(inplace=True)),
            "layer1": BasicBlock(w0, w1, 2, None, False),
            "layer2": BasicBlock(w1, w2, 1, None, False),
            "head": nn.Sequential(nn.Conv2d(w2, w2, 1, bias=False), nn.BatchNorm2d(w2),
                                  nn.ReLU(inplace=True), nn.Conv2d(w2, num_classes, 1))}


class TinyTwinNet(nn.Module):
    def __init__(self, non_local: bool = True, num_classes: int = 3, widths=WIDTHS):
        super().__init__()
        for name, part in labeller_parts(num_classes, widths).items():
            setattr(self, name, part)
        self.nl = NonLocal2d(widths[2]) if non_local else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_classes, H, W) per-pixel logits."""
        y = self.nl(self.layer2(self.layer1(self.stem(x))))
        return F.interpolate(self.head(y), size=x.shape[2:], mode="bilinear", align_corners=False)


def tiny_twin_net(non_local: bool = True) -> TinyTwinNet:
    return TinyTwinNet(non_local)
