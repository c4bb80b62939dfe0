"""Alignment, independent of training: a network with *planted* weights whose attention is
known analytically (a CBAM spatial gate and a Non-local block that both respond to
redness) looks at a photo with a red object. The rendered overlay's peak and the row of a
clicked object pixel must land on the object in original-image coordinates, for
non-square photos and both preprocessing modes. A flip, transpose, off-by-one-cell or
BGR/RGB error anywhere between hook and screen moves the peak off the object."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from pytorchcv.models.cbamresnet import CbamBlock
from timm.layers.non_local_attn import NonLocalAttn

import visattn
from visattn import render
from visattn.preprocess import Preprocess
from visattn.records import Affinity, SpatialMap

C = 4


class Planted(nn.Module):
    """features: channel 0 = redness (R - (G + B) / 2 of the normalised input), the rest 0;
    CBAM spatial gate = sigmoid(k * max over channels); NL with theta = phi = redness."""

    def __init__(self):
        super().__init__()
        self.feat = nn.Conv2d(3, C, 1)
        self.pool = nn.AvgPool2d(4)
        self.cbam = CbamBlock(C, reduction_ratio=2)
        self.nl = NonLocalAttn(C, rd_ratio=1.0, rd_divisor=1)
        self.head = nn.Linear(C, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
            self.feat.weight[0, :, 0, 0] = torch.tensor([1.0, -0.5, -0.5])
            conv = self.cbam.sp_gate.conv
            conv.conv.weight[0, 0, 3, 3] = 4.0  # channel 0 of the [max, mean] input, centre tap
            conv.bn.weight.fill_(1.0)
            conv.bn.running_var.fill_(1.0)
            conv.bn.running_mean.zero_()
            self.nl.t.weight[0, 0] = 3.0
            self.nl.p.weight[0, 0] = 3.0
        self.eval()

    def forward(self, x):
        x = self.pool(self.feat(x))
        x = self.nl(self.cbam(x))
        return self.head(x.mean((2, 3)))


def photo(w: int, h: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Grey-green noise with a red rectangle at box = (x0, y0, x1, y1)."""
    rng = np.random.default_rng(w * 7 + h)
    img = np.empty((h, w, 3), np.uint8)
    img[...] = rng.integers(90, 140, (h, w, 1)) + np.array([0, 30, 0])
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = (220, 30, 30)
    return img


CASES = [  # (photo size, red box) x preprocessing; boxes sit inside what a centre crop keeps
    ((360, 240), (200, 60, 250, 110)),
    ((240, 380), (40, 200, 90, 250)),
    ((500, 211), (300, 120, 345, 170)),
]
MODES = [Preprocess((224, 224), "crop", 0.875), Preprocess((160, 512), "keep_ratio")]


def in_box(x: int, y: int, box, scale: float = 1.0, slack: float = 0.0) -> bool:
    x0, y0, x1, y1 = (v * scale for v in box)
    return x0 - slack <= x + 0.5 <= x1 + slack and y0 - slack <= y + 0.5 <= y1 + slack


def rendered_peak(shown: np.ndarray) -> tuple[int, int]:
    """Where a jet overlay drawn at alpha 1 is hottest: the pixel nearest jet(1.0)."""
    hot = render.lut("jet")[-1].astype(int)
    dist = np.abs(shown.astype(int) - hot).sum(2)
    y, x = np.unravel_index(np.argmin(dist), dist.shape)
    return int(x), int(y)


@pytest.fixture(scope="module")
def model():
    return Planted()


@pytest.mark.parametrize("pre", MODES, ids=["crop", "keep_ratio"])
@pytest.mark.parametrize("size, box", CASES, ids=[f"{w}x{h}" for (w, h), _ in CASES])
def test_spatial_gate_overlay_peaks_on_the_object(model, size, box, pre):
    img = photo(*size, box)
    trace = visattn.analyze(img, model, preprocess=pre)
    gate = trace.select(SpatialMap, name="spatial gate")[0]
    shown = render.map_on_image(trace, gate.values, cap=300, alpha=1.0, cmap="jet")
    scale = shown.shape[1] / size[0]
    x, y = rendered_peak(shown)
    assert in_box(x, y, box, scale), (x, y, box, scale)


@pytest.mark.parametrize("pre", MODES, ids=["crop", "keep_ratio"])
@pytest.mark.parametrize("size, box", CASES, ids=[f"{w}x{h}" for (w, h), _ in CASES])
def test_clicked_object_pixel_row_lands_on_the_object(model, size, box, pre):
    img = photo(*size, box)
    trace = visattn.analyze(img, model, preprocess=pre)
    aff = trace.select(Affinity)[0]
    x0, y0, x1, y1 = box
    for click in [((x0 + x1) // 2, (y0 + y1) // 2), (x0 + 2, y1 - 3)]:
        cell = trace.geometry.to_grid(*click, aff.grid)
        cx0, cy0, cx1, cy1 = trace.geometry.cell_box(cell, aff.grid)
        assert cx0 <= click[0] < cx1 and cy0 <= click[1] < cy1  # the marker holds the click
        row = aff.row(cell)
        heat = trace.geometry.grid_to_image(row)
        inside = np.zeros(heat.shape, bool)
        inside[y0:y1, x0:x1] = True
        mass = np.nansum(heat[inside]) / np.nansum(heat)
        assert mass / inside.mean() > 5  # the row is concentrated on the red object
        shown = render.map_on_image(trace, row, cap=300, alpha=1.0, cmap="jet")
        px, py = rendered_peak(shown)
        assert in_box(px, py, box, shown.shape[1] / size[0], slack=1.0)


def test_swapping_colour_channels_moves_the_peak_off_the_object(model):
    """Negative control: the same photo in BGR order puts the 'red' object in blue."""
    size, box = CASES[0]
    img = photo(*size, box)[:, :, ::-1].copy()
    trace = visattn.analyze(img, model, preprocess=MODES[0])
    gate = trace.select(SpatialMap, name="spatial gate")[0]
    shown = render.map_on_image(trace, gate.values, cap=300, alpha=1.0)
    x, y = rendered_peak(shown)
    assert not in_box(x, y, box, shown.shape[1] / size[0])
