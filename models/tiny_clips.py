"""A tiny dense labeller for moving clips (T frames of 64 x 64 px): each pixel is
background or the class of the object on it. An object's class is shown by a coloured tag
ring, but an object that comes back in a later frame comes back untagged, somewhere else;
each frame is convolved on its own, so only a block that relates positions across frames
can label it.

Layout: per frame, 3x3 stem (stride 2, 32 x 32) -> basic block (stride 2, 16 x 16) ->
basic block; then [a space-time Non-local block over (T, 16, 16): mmcv's NonLocal3d, the
class I3D-NL uses, with its keys and values max-pooled (1, 2, 2) to (T, 8, 8) as I3D's
are] -> per frame 1 x 1 head -> logits upsampled (bilinear) to the input size.
`non_local=False` is the same network without the block (the control): it sees one frame
at a time and can only guess an untagged object's class.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .i3d_nl import NonLocal3d
from .tiny_twins import WIDTHS, labeller_parts


class TinyClipNet(nn.Module):
    def __init__(self, non_local: bool = True, num_classes: int = 4, widths=WIDTHS):
        super().__init__()
        for name, part in labeller_parts(num_classes, widths).items():
            setattr(self, name, part)
        self.nl = NonLocal3d(widths[2], sub_sample=True, use_scale=True) if non_local \
            else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, num_classes, T, H, W) per-pixel logits."""
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        y = self.layer2(self.layer1(self.stem(frames)))  # (B T, C, h, w)
        y = y.reshape(b, t, *y.shape[1:]).transpose(1, 2)  # (B, C, T, h, w)
        y = self.nl(y).transpose(1, 2).reshape(b * t, -1, *y.shape[3:])
        out = F.interpolate(self.head(y), size=(h, w), mode="bilinear", align_corners=False)
        return out.reshape(b, t, -1, h, w).transpose(1, 2)


def tiny_clip_net(non_local: bool = True) -> TinyClipNet:
    return TinyClipNet(non_local)
