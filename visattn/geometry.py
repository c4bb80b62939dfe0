"""Geometry: the exact mapping original pixels <-> model input <-> any feature grid.

The model input is a window of the resized image: the image of size (W0, H0) is
resized to (Wr, Hr) and the window of size (Win, Hin) at offset (ox, oy) is cut out
(centre crop), or the window is the whole resized image (keep-ratio resize).

A feature grid (Hg, Wg) is what a CNN makes of the model input: when Wg is the floor or
ceiling of Win / s for a power-of-two stride s, cell j covers input pixels [j*s, (j+1)*s)
(a floor-mode grid drops the last few input pixels, a ceil-mode grid's last cell runs
past the edge); otherwise the grid tiles the input uniformly. An original pixel belongs
to the cell that contains its centre. All cell arithmetic is done in integers, so
`to_grid` and `cell_box` agree exactly, with no rounding at cell borders.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

Grid = tuple[int, int]  # (rows, cols) of a feature map
Box = tuple[int, int, int, int]  # x0, y0, x1, y1: half-open, original pixels
REMAP_MAX = 16384  # cv2.remap refuses a map or an output of SHRT_MAX (32767) px a side


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Geometry:
    image_size: tuple[int, int]  # (W0, H0) original pixels
    resized: tuple[int, int]  # (Wr, Hr) whole image after resize
    offset: tuple[int, int]  # (ox, oy) top-left of the model input in resized pixels
    input_size: tuple[int, int]  # (Win, Hin) model input

    # ----- construction ---------------------------------------------------------------
    @classmethod
    def center_crop(cls, image_size: tuple[int, int], resize_short: int,
                    crop: tuple[int, int]) -> "Geometry":
        """torchvision `Resize(resize_short)` then `CenterCrop(crop)`; crop is (H, W)."""
        w0, h0 = image_size
        if w0 <= h0:
            wr, hr = resize_short, int(resize_short * h0 / w0)
        else:
            wr, hr = int(resize_short * w0 / h0), resize_short
        ch, cw = crop
        oy, ox = int(round((hr - ch) / 2.0)), int(round((wr - cw) / 2.0))
        return cls((w0, h0), (wr, hr), (ox, oy), (cw, ch))

    @classmethod
    def keep_ratio(cls, image_size: tuple[int, int], short: int, long_max: int) -> "Geometry":
        """mmcv-style keep-ratio rescale: the short side reaches `short` unless the long
        side would pass `long_max`; no crop."""
        w0, h0 = image_size
        s = min(long_max / max(w0, h0), short / min(w0, h0))
        wr, hr = max(1, int(w0 * s + 0.5)), max(1, int(h0 * s + 0.5))
        return cls((w0, h0), (wr, hr), (0, 0), (wr, hr))

    # ----- pixel <-> cell ---------------------------------------------------------------
    def cell_width(self, axis: int, n: int) -> tuple[int, int]:
        """Width of one of n cells along an axis, in input pixels, as a fraction (p, q):
        the stride when the grid is a strided view of the input (a power of two s with
        n = floor or ceil of Win / s), else Win / n."""
        size_in = self.input_size[axis]
        s = 2 ** max(0, round(math.log2(size_in / n)))
        if n in (size_in // s, _ceil_div(size_in, s)):
            return s, 1
        return size_in, n

    def _axis_cell(self, x: int, axis: int, n: int) -> int:
        """Cell index along one axis: -1 or n when the pixel's centre is outside the model
        input (cropped away) or in the strip a floor-mode grid drops."""
        size0, sizer, off, size_in = (self.image_size[axis], self.resized[axis],
                                      self.offset[axis], self.input_size[axis])
        twice_u = (2 * x + 1) * sizer - 2 * off * size0  # 2 * size0 * (input coordinate)
        if not 0 <= twice_u < 2 * size0 * size_in:
            return -1 if twice_u < 0 else n
        p, q = self.cell_width(axis, n)
        return min(twice_u * q // (2 * size0 * p), n)

    def _first_pixel(self, axis: int, a: int, b: int) -> int:
        """The smallest original pixel whose centre lies at input coordinate >= a / b."""
        size0, sizer, off = self.image_size[axis], self.resized[axis], self.offset[axis]
        return _ceil_div(2 * a * size0 + 2 * off * size0 * b - sizer * b, 2 * sizer * b)

    def _clip(self, axis: int, lo: int, hi: int) -> tuple[int, int]:
        """Limit a pixel range to the model input and the image."""
        lo = max(lo, self._first_pixel(axis, 0, 1))
        hi = min(hi, self._first_pixel(axis, self.input_size[axis], 1))
        size0 = self.image_size[axis]
        return min(max(lo, 0), size0), min(max(hi, lo, 0), size0)

    def _axis_range(self, j: int, axis: int, n: int) -> tuple[int, int]:
        p, q = self.cell_width(axis, n)
        return self._clip(axis, self._first_pixel(axis, j * p, q),
                          self._first_pixel(axis, (j + 1) * p, q))

    def to_grid(self, x: float, y: float, grid: Grid, clamp: bool = False) -> Optional[int]:
        """Row-major cell index (r * Wg + c) of the cell holding original pixel (x, y).

        None when the pixel lies outside the model input (cropped away), unless
        `clamp`, which gives the nearest cell instead.
        """
        hg, wg = grid
        c = self._axis_cell(int(math.floor(x)), 0, wg)
        r = self._axis_cell(int(math.floor(y)), 1, hg)
        if not (0 <= c < wg and 0 <= r < hg):
            if not clamp:
                return None
            c, r = min(max(c, 0), wg - 1), min(max(r, 0), hg - 1)
        return r * wg + c

    def cell_box(self, cell: int, grid: Grid) -> Box:
        """The original pixels whose centres fall in `cell`, as a half-open box.

        The box is empty (x0 == x1) only where a cell is smaller than one original
        pixel (a small image enlarged to the model input).
        """
        hg, wg = grid
        r, c = divmod(int(cell), wg)
        if not (0 <= r < hg):
            raise IndexError(f"cell {cell} is outside a {hg} x {wg} grid")
        x0, x1 = self._axis_range(c, 0, wg)
        y0, y1 = self._axis_range(r, 1, hg)
        return x0, y0, x1, y1

    def cell_centre(self, cell: int, grid: Grid) -> tuple[int, int]:
        """The photo pixel at the middle of a cell's box (where a query of that cell sits)."""
        x0, y0, x1, y1 = self.cell_box(cell, grid)
        return (x0 + x1) // 2, (y0 + y1) // 2

    def input_box(self) -> Box:
        """The original pixels the model sees (everything, unless centre-cropped)."""
        (x0, x1), (y0, y1) = (self._clip(axis, 0, self.image_size[axis]) for axis in (0, 1))
        return x0, y0, x1, y1

    # ----- grid values -> image -----------------------------------------------------------
    def grid_to_image(self, values: np.ndarray, out_size: Optional[tuple[int, int]] = None
                      ) -> np.ndarray:
        """Resample a (Hg, Wg) map onto the original image, or onto `out_size` (W, H), a
        uniformly scaled view of it. Bilinear between cell centres; NaN where the model
        did not look (outside a centre crop). Any size the loader accepts: OpenCV's remap
        takes at most REMAP_MAX pixels a side, so a longer picture (a panorama) is
        resampled in strips; each output pixel depends only on its own coordinates, so
        the strips join exactly."""
        hg, wg = values.shape
        w0, h0 = self.image_size
        ow, oh = out_size or (w0, h0)
        gx, inside_x = self._display_to_grid(ow, 0, wg)
        gy, inside_y = self._display_to_grid(oh, 1, hg)
        src = np.ascontiguousarray(values, dtype=np.float32)
        out = np.empty((oh, ow), np.float32)
        for y0 in range(0, oh, REMAP_MAX):
            for x0 in range(0, ow, REMAP_MAX):
                xs, ys = gx[x0:x0 + REMAP_MAX], gy[y0:y0 + REMAP_MAX]
                map_x = np.broadcast_to(xs[None, :], (len(ys), len(xs))).astype(np.float32)
                map_y = np.broadcast_to(ys[:, None], (len(ys), len(xs))).astype(np.float32)
                out[y0:y0 + len(ys), x0:x0 + len(xs)] = cv2.remap(
                    src, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
        out[~(inside_y[:, None] & inside_x[None, :])] = np.nan
        return out

    def _display_to_grid(self, n_out: int, axis: int, n_grid: int):
        size0, sizer, off, size_in = (self.image_size[axis], self.resized[axis],
                                      self.offset[axis], self.input_size[axis])
        p, q = self.cell_width(axis, n_grid)
        centres = (np.arange(n_out, dtype=np.float64) + 0.5) * size0 / n_out  # original px
        u = centres * sizer / size0 - off  # model-input px
        inside = (u >= 0) & (u < min(size_in, n_grid * p / q))  # seen by some cell
        return u * q / p - 0.5, inside
