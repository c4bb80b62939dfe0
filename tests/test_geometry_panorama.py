"""Issue 21, item 2: every photo the loader accepts can be mapped back onto, a 32800 x 427
panorama (14 MP, under the 40 MP cap) included: OpenCV's remap refuses SHRT_MAX pixels a
side, so grid_to_image works in strips, with results identical to one remap on normal
photos."""
import cv2
import numpy as np
import pytest

import visattn
from visattn.geometry import Geometry
from visattn.image import DEFAULT_MAX_PIXELS


def one_remap(geo: Geometry, values: np.ndarray, out_size=None) -> np.ndarray:
    """grid_to_image as it was: one cv2.remap over the whole output."""
    hg, wg = values.shape
    ow, oh = out_size or geo.image_size
    gx, inside_x = geo._display_to_grid(ow, 0, wg)
    gy, inside_y = geo._display_to_grid(oh, 1, hg)
    map_x = np.broadcast_to(gx[None, :], (oh, ow)).astype(np.float32)
    map_y = np.broadcast_to(gy[:, None], (oh, ow)).astype(np.float32)
    out = cv2.remap(np.ascontiguousarray(values, dtype=np.float32), map_x, map_y,
                    interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out[~(inside_y[:, None] & inside_x[None, :])] = np.nan
    return out


def bilinear(geo: Geometry, values: np.ndarray) -> np.ndarray:
    """Exact bilinear interpolation between cell centres (edges replicated), in float64."""
    hg, wg = values.shape
    gx, _ = geo._display_to_grid(geo.image_size[0], 0, wg)
    gy, _ = geo._display_to_grid(geo.image_size[1], 1, hg)

    def weights(g, n):
        g = np.clip(g, 0, n - 1)
        lo = np.minimum(np.floor(g).astype(int), n - 1)
        hi = np.minimum(lo + 1, n - 1)
        return lo, hi, g - lo

    x0, x1, fx = weights(gx, wg)
    y0, y1, fy = weights(gy, hg)
    v = values.astype(np.float64)
    rows = v[:, x0] * (1 - fx) + v[:, x1] * fx
    return rows[y0] * (1 - fy)[:, None] + rows[y1] * fy[:, None]


@pytest.mark.parametrize("size,geo", [
    ((640, 480), lambda s: Geometry.center_crop(s, 256, (224, 224))),
    ((4000, 3000), lambda s: Geometry.keep_ratio(s, 512, 2048)),
    ((300, 1200), lambda s: Geometry.center_crop(s, 232, (224, 224))),
])
def test_normal_photos_give_exactly_what_one_remap_gave(size, geo):
    g = geo(size)
    values = np.random.default_rng(1).random((14, 14)).astype(np.float32)
    np.testing.assert_array_equal(g.grid_to_image(values), one_remap(g, values))
    np.testing.assert_array_equal(g.grid_to_image(values, (320, 240)),
                                  one_remap(g, values, (320, 240)))


@pytest.mark.parametrize("size", [(32800, 427), (427, 32800), (40000, 1000)])
def test_a_panorama_under_the_pixel_cap_maps_back(size):
    assert size[0] * size[1] <= DEFAULT_MAX_PIXELS
    g = Geometry.keep_ratio(size, 512, 2048)
    values = np.random.default_rng(2).random((8, 40) if size[0] > size[1] else (40, 8))
    out = g.grid_to_image(values.astype(np.float32))
    assert out.shape == (size[1], size[0]) and np.isfinite(out).all()
    # OpenCV interpolates with 1/32-pixel weights: within that of exact bilinear
    np.testing.assert_allclose(out, bilinear(g, values), atol=1 / 32 + 1e-6)


def test_the_panorama_is_analysed_and_drawn_at_full_size():
    from visattn import render
    img = np.random.default_rng(3).integers(0, 256, (427, 32800, 3), dtype=np.uint8)
    trace = visattn.analyze(img, "tiny_cbam")
    spatial = next(r for r in trace if type(r).__name__ == "SpatialMap")
    full = trace.geometry.grid_to_image(spatial.values)
    x0, y0, x1, y1 = trace.geometry.input_box()  # a centre crop: NaN outside it
    assert full.shape == (427, 32800) and np.isfinite(full[y0:y1, x0:x1]).all()
    assert np.isnan(full[:, :x0]).all()
    assert len(render.gallery(trace)) == len(trace)
