"""Pure rendering: arrays in, RGB uint8 images out. The only module that imports matplotlib.

Every image here is RGB (never BGR), uint8, (H, W, 3).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import cv2
import numpy as np

from .geometry import Box
from .records import Affinity, BranchWeights, ChannelWeights, Record, SpatialMap, Trace

DISPLAY_CAP = 768  # longest side of any image shown in the UI
NAN_GREY = np.array([128, 128, 128], np.uint8)
MARKER = (255, 0, 0)


@lru_cache(maxsize=16)
def lut(cmap: str = "jet") -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a matplotlib colormap."""
    import matplotlib
    rgba = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def normalize(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1], ignoring NaN; a constant map becomes 0.5."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.full(values.shape, np.nan, np.float32)
    lo, hi = float(values[finite].min()), float(values[finite].max())
    if hi - lo < 1e-12:
        return np.where(finite, 0.5, np.nan).astype(np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def colorize(values01: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """[0, 1] values (NaN allowed) -> RGB; NaN is grey."""
    finite = np.isfinite(values01)
    idx = np.clip(np.round(np.where(finite, values01, 0) * 255), 0, 255).astype(np.uint8)
    out = lut(cmap)[idx]
    out[~finite] = NAN_GREY
    return out


def display_size(width: int, height: int, cap: int = DISPLAY_CAP,
                 enlarge: bool = False) -> tuple[int, int]:
    """(W, H) scaled so the longest side is at most `cap` (exactly `cap` with enlarge)."""
    s = cap / max(width, height)
    s = s if enlarge else min(1.0, s)
    return max(1, round(width * s)), max(1, round(height * s))


def fit(image: np.ndarray, cap: int = DISPLAY_CAP, enlarge: bool = False) -> np.ndarray:
    """Resize for display: area-averaged down, or (enlarge) nearest-neighbour up, so a
    64 px scene stays crisp."""
    h, w = image.shape[:2]
    size = display_size(w, h, cap, enlarge)
    if size == (w, h):
        return image
    down = size[0] < w
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if down else cv2.INTER_NEAREST)


def overlay(image: np.ndarray, heat01: np.ndarray, alpha: float = 0.5,
            cmap: str = "jet") -> np.ndarray:
    """Blend a [0, 1] heat map (same H, W as image; NaN = not seen by the model, shown
    darkened) over an RGB image."""
    colour = colorize(heat01, cmap).astype(np.float32)
    base = image.astype(np.float32)
    out = (1 - alpha) * base + alpha * colour
    unseen = ~np.isfinite(heat01)
    out[unseen] = base[unseen] * 0.35
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def map_on_image(trace: Trace, values: np.ndarray, cap: int = DISPLAY_CAP,
                 alpha: float = 0.5, cmap: str = "jet", enlarge: bool = False) -> np.ndarray:
    """A (Hg, Wg) map of this trace's geometry, normalised and overlaid on its image."""
    shown = fit(trace.image, cap, enlarge)
    heat = trace.geometry.grid_to_image(values, (shown.shape[1], shown.shape[0]))
    return overlay(shown, normalize(heat), alpha, cmap)


def draw_box(image: np.ndarray, box: Box, scale: float, color=MARKER) -> np.ndarray:
    """Outline an original-pixel box on an image displayed at `scale` x original size."""
    x0, y0, x1, y1 = (int(np.floor(v * scale)) for v in box)
    x1, y1 = max(x1 - 1, x0), max(y1 - 1, y0)
    out = image.copy()
    cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness=max(1, round(2 * min(1, scale) + 0.5)))
    return out


def bars(values: np.ndarray, width: int = 384, height: int = 120,
         lo: Optional[float] = None, hi: Optional[float] = None) -> np.ndarray:
    """A bar chart of one value per channel: bars coloured by value, white background."""
    v = np.asarray(values, np.float64)
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    frac = np.clip((v - lo) / (hi - lo), 0, 1) if hi > lo else np.full(v.shape, 0.5)
    cols = np.minimum((np.arange(width) * len(v)) // width, len(v) - 1)
    tops = np.round((1 - frac[cols]) * (height - 1)).astype(int)
    out = np.full((height, width, 3), 255, np.uint8)
    rows = np.arange(height)[:, None]
    mask = rows >= tops[None, :]
    colour = lut("viridis")[np.round(frac[cols] * 255).astype(int)]
    out[mask] = np.broadcast_to(colour[None, :, :], (height, width, 3))[mask]
    return out


def heatmap(values: np.ndarray, width: int = 384, row_height: int = 24,
            cmap: str = "viridis") -> np.ndarray:
    """Rows x columns matrix (e.g. K branches x C channels) as a colour image."""
    img = colorize(normalize(np.asarray(values, np.float32)), cmap)
    return cv2.resize(img, (width, row_height * values.shape[0]), interpolation=cv2.INTER_NEAREST)


def thumbnail(trace: Trace, rec: Record, cap: int = 256) -> np.ndarray:
    """A small picture of one record: maps on the photo, gates as bars."""
    if isinstance(rec, SpatialMap):
        return map_on_image(trace, rec.values, cap, enlarge=True)
    if isinstance(rec, Affinity):
        h, w = rec.grid
        cell = (h // 2) * w + w // 2
        shown = map_on_image(trace, rec.row(cell), cap, enlarge=True)
        scale = shown.shape[1] / trace.image.shape[1]
        return draw_box(shown, trace.geometry.cell_box(cell, rec.grid), scale)
    if isinstance(rec, ChannelWeights):
        return bars(rec.values, width=cap, height=cap // 2)
    if isinstance(rec, BranchWeights):
        return heatmap(rec.values, width=cap, row_height=max(8, cap // (2 * len(rec.values))))
    raise TypeError(f"no thumbnail for {type(rec).__name__}")


def caption(rec: Record) -> str:
    extra = f" (centre query, {rec.heads} heads)" if isinstance(rec, Affinity) else ""
    return f"{rec.layer} · {rec.name}{extra} · {rec.grid[0]}×{rec.grid[1]}"


def gallery(trace: Trace, cap: int = 256) -> list[tuple[np.ndarray, str]]:
    """Every record of the trace, in network order, as (thumbnail, caption)."""
    return [(thumbnail(trace, rec, cap), caption(rec)) for rec in trace]
