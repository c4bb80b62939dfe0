"""Geometry: original pixels <-> model input <-> feature grids, for both preprocessing modes."""
import math

import numpy as np
import pytest
import torchvision.transforms.functional as TF
from hypothesis import given, settings, strategies as st
from PIL import Image

from visattn.geometry import Geometry
from visattn.preprocess import Preprocess, prepare

sizes = st.tuples(st.integers(1, 2500), st.integers(1, 2500))
grids = st.tuples(st.integers(1, 70), st.integers(1, 70))


@st.composite
def geometries(draw):
    w, h = draw(sizes)
    if draw(st.booleans()):
        crop = draw(st.tuples(st.integers(8, 512), st.integers(8, 512)))
        pct = draw(st.floats(0.5, 1.0))
        return Geometry.center_crop((w, h), math.floor(max(crop) / pct), crop)
    short = draw(st.integers(8, 1024))
    return Geometry.keep_ratio((w, h), short, draw(st.integers(short, 4096)))


def centre_in_input(geo: Geometry, x: int, y: int) -> tuple[float, float]:
    """Float reference: where pixel (x, y)'s centre lands in model-input coordinates."""
    (w0, h0), (wr, hr), (ox, oy) = geo.image_size, geo.resized, geo.offset
    return (x + 0.5) * wr / w0 - ox, (y + 0.5) * hr / h0 - oy


@st.composite
def geometry_and_grid(draw):
    """A geometry with either an arbitrary grid (uniform tiling) or a CNN-like strided
    grid: floor or ceil of the input size over a stride."""
    geo = draw(geometries())
    if draw(st.booleans()):
        return geo, draw(grids)
    s = draw(st.sampled_from([1, 2, 4, 8, 16, 32]))
    rnd = draw(st.sampled_from([math.floor, math.ceil]))
    win, hin = geo.input_size
    return geo, (max(1, rnd(hin / s)), max(1, rnd(win / s)))


@settings(max_examples=500, deadline=None)
@given(geometry_and_grid(), st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True))
def test_every_pixel_maps_to_the_cell_whose_box_contains_it(geo_grid, fx, fy):
    geo, grid = geo_grid
    w0, h0 = geo.image_size
    x, y = int(fx * w0), int(fy * h0)
    cell = geo.to_grid(x, y, grid)
    u, v = centre_in_input(geo, x, y)  # float reference, in cell widths below
    cu, cv = (t * q / p for t, (p, q) in ((u, geo.cell_width(0, grid[1])),
                                          (v, geo.cell_width(1, grid[0]))))
    win, hin = geo.input_size
    if cell is None:  # cropped away, or in the strip a floor-mode grid drops
        inside = 0 <= u < win and 0 <= v < hin and 0 <= cu < grid[1] and 0 <= cv < grid[0]
        near_border = any(_on_border(t, n) for t, n in ((u, win), (v, hin), (cu, grid[1]),
                                                         (cv, grid[0])))
        assert not inside or near_border
        clamped = geo.to_grid(x, y, grid, clamp=True)
        assert 0 <= clamped < grid[0] * grid[1]
        return
    x0, y0, x1, y1 = geo.cell_box(cell, grid)
    assert x0 <= x < x1 and y0 <= y < y1
    r, c = divmod(cell, grid[1])
    # and the cell agrees with the float picture up to rounding at the border
    assert abs(cu - (c + 0.5)) <= 0.5 + 1e-6 and abs(cv - (r + 0.5)) <= 0.5 + 1e-6


def _on_border(t: float, n: int) -> bool:
    return abs(t) < 1e-6 or abs(t - n) < 1e-6


def test_strided_grids_use_the_stride_not_uniform_stretching():
    geo = Geometry.keep_ratio((500, 211), 160, 512)  # input 379 x 160
    assert geo.input_size == (379, 160)
    assert geo.cell_width(0, 94) == (4, 1)  # floor(379 / 4): cell j = input [4j, 4j + 4)
    assert geo.cell_width(0, 95) == (4, 1)  # ceil(379 / 4)
    assert geo.cell_width(0, 50) == (379, 50)  # not a stride: uniform
    assert geo.cell_width(0, 9) == (379, 9)  # 379 / 9 ~ 42: not a power of two
    # input column 227 (original x ~ 300) is in cell 56 = [224, 228), not 56.3 -> 56 by luck
    x = 302  # centre at input 229.3 -> cell 57 with stride 4 (uniform tiling says 56)
    assert geo.to_grid(x, 100, (40, 94)) % 94 == 57


@settings(max_examples=150, deadline=None)
@given(geometry_and_grid())
def test_cell_boxes_tile_the_seen_part_of_the_image(geo_grid):
    geo, grid = geo_grid
    hg, wg = grid
    xs = [geo.cell_box(c, grid)[0::2] for c in range(wg)]  # first row: (x0, x1)
    ys = [geo.cell_box(r * wg, grid)[1::2] for r in range(hg)]
    for spans in (xs, ys):
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert a1 == b0  # no gap, no overlap
    bx0, by0, bx1, by1 = geo.input_box()
    assert (xs[0][0], ys[0][0]) == (bx0, by0)
    for end, box_end, axis, n in ((xs[-1][1], bx1, 0, wg), (ys[-1][1], by1, 1, hg)):
        p, q = geo.cell_width(axis, n)
        if n * p >= geo.input_size[axis] * q:  # the grid covers the whole input
            assert end == box_end
        else:  # a floor-mode grid drops less than one cell (and a pixel) at the far edge
            assert box_end - (p / q) * geo.image_size[axis] / geo.resized[axis] - 1 <= end <= box_end


@pytest.mark.parametrize("size", [(640, 480), (333, 517), (1000, 37), (224, 224), (5, 3)])
@pytest.mark.parametrize("resize_short, crop", [(256, (224, 224)), (292, (256, 256)), (230, (224, 200))])
def test_center_crop_matches_torchvision(size, resize_short, crop):
    geo = Geometry.center_crop(size, resize_short, crop)
    img = Image.new("RGB", size)
    resized = TF.resize(img, resize_short)
    assert resized.size == geo.resized
    # where torchvision's centre crop cuts: crop a marker image and find the marker
    marker = np.zeros((geo.resized[1], geo.resized[0]), np.uint8)
    ox, oy = geo.offset
    if 0 <= ox < geo.resized[0] and 0 <= oy < geo.resized[1]:
        marker[oy, ox] = 255
        cut = np.asarray(TF.center_crop(Image.fromarray(marker), list(crop)))
        assert cut[0, 0] == 255


def test_keep_ratio_matches_mmcv_rule():
    # short side to 512 unless the long side would exceed 2048
    assert Geometry.keep_ratio((640, 480), 512, 2048).resized == (int(640 * 512 / 480 + .5), 512)
    wide = Geometry.keep_ratio((5000, 500), 512, 2048)
    assert wide.resized == (2048, int(500 * 2048 / 5000 + .5))
    assert Geometry.keep_ratio((1, 20000), 512, 2048).resized[0] == 1  # never 0 px


@pytest.mark.parametrize("size", [(640, 480), (333, 517), (1000, 37), (225, 224)])
@pytest.mark.parametrize("interp, crop_pct, side", [("bicubic", 0.95, 224), ("bilinear", 0.875, 224),
                                                    ("bicubic", 0.9, 256), ("bicubic", 1.0, 224)])
def test_prepare_equals_timm_eval_transform(size, interp, crop_pct, side):
    from timm.data import create_transform
    rng = np.random.default_rng(0)
    rgb = np.cumsum(rng.integers(0, 256, (size[1], size[0], 3)), axis=1).astype(np.uint8)
    pre = Preprocess((side, side), "crop", crop_pct, interp)
    ref = create_transform(input_size=(3, side, side), interpolation=interp, crop_pct=crop_pct,
                           mean=pre.mean, std=pre.std)(Image.fromarray(rgb))
    x, geo = prepare(rgb, pre)
    assert x.shape == (1, 3, side, side) and geo.input_size == (side, side)
    # PIL resamples only the cropped box; its fixed-point filter can round a level apart
    level = 1 / 255 / min(pre.std)
    diff = (x[0] - ref).abs()
    assert diff.max() <= 2 * level + 1e-6
    assert (diff > 1e-5).float().mean() < 0.005


def test_prepare_keep_ratio_is_opencv_resize_and_normalise():
    import cv2
    rgb = np.random.default_rng(2).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    pre = Preprocess((256, 1024), "keep_ratio", interpolation="bilinear",
                     mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    x, geo = prepare(rgb, pre)
    assert geo.input_size == geo.resized == (427, 256)
    ref = cv2.resize(rgb, (427, 256), interpolation=cv2.INTER_LINEAR) / 255.0
    ref = (ref - np.array(pre.mean)) / np.array(pre.std)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), ref, atol=1e-5)


def test_extreme_strip_is_prepared_without_building_the_whole_resize():
    rgb = np.zeros((1, 20000, 3), np.uint8)  # full resize would be 256 x 5.1 M pixels
    x, geo = prepare(rgb, Preprocess((224, 224), "crop", 0.875))
    assert x.shape == (1, 3, 224, 224) and geo.resized == (5120000, 256)


@pytest.mark.parametrize("geo", [Geometry.center_crop((400, 300), 256, (224, 224)),
                                 Geometry.keep_ratio((400, 300), 240, 1000)])
def test_grid_to_image_puts_each_cell_where_its_box_is(geo):
    grid = (7, 9)
    w0, h0 = geo.image_size
    for cell in (0, 8, 31, 62):
        onehot = np.zeros(grid, np.float32)
        onehot.flat[cell] = 1.0
        img = geo.grid_to_image(onehot)
        assert img.shape == (h0, w0)
        y, x = np.unravel_index(np.nanargmax(img), img.shape)
        x0, y0, x1, y1 = geo.cell_box(cell, grid)
        assert x0 <= x < x1 and y0 <= y < y1
    # outside what the cells cover (the centre crop) nothing is drawn; inside everything is
    bx0, by0 = geo.cell_box(0, grid)[:2]
    bx1, by1 = geo.cell_box(grid[0] * grid[1] - 1, grid)[2:]
    seen = np.isfinite(geo.grid_to_image(np.ones(grid, np.float32)))
    assert seen[by0:by1, bx0:bx1].all() and seen.sum() == (bx1 - bx0) * (by1 - by0)
