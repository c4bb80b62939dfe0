"""Drawing: records, traces and arrays in, pictures out. The only module that imports
matplotlib (its figures are made here and returned as pictures, or as figures by the
`*_figure` functions for callers that draw into them).

Every picture here is RGB (never BGR), uint8, (H, W, 3). Which drawing a record gets is
its kind's `view` (records.Record.view), looked up in one table per use (thumbnail,
picture).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

import cv2
import numpy as np

from .geometry import Box
from .records import (AxisGate, BranchWeights, ChannelAffinity, ChannelWeights, Record,
                      Segmentation, SpatialMap, Trace, view_of)

DISPLAY_CAP = 768  # longest side of any image shown in the UI
NAN_GREY = np.array([128, 128, 128], np.uint8)
MARKER = (255, 0, 255)  # magenta: on no colour map we offer
COLORMAPS = ("jet", "viridis", "inferno", "turbo")  # the colour maps every view offers


@lru_cache(maxsize=16)
def lut(cmap: str = "jet") -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a matplotlib colormap."""
    import matplotlib
    rgba = matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def _encoded(rgb: np.ndarray, suffix: str, params: list) -> bytes:
    """A grey, RGB or RGBA uint8 image encoded by OpenCV (which takes BGR: converted here,
    the one place that does)."""
    bgr = rgb if rgb.ndim == 2 else cv2.cvtColor(
        rgb, cv2.COLOR_RGB2BGR if rgb.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, data = cv2.imencode(suffix, bgr, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} {rgb.dtype} image as {suffix}")
    return data.tobytes()


def png_bytes(rgb: np.ndarray) -> bytes:
    """A grey, RGB or RGBA uint8 image as PNG: zlib level 1 after the 'up' filter, lossless,
    about twice as fast as Pillow's fastest for the same size (a 640x480 photo: 10 ms)."""
    return _encoded(rgb, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 1,
                                  cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP])


JPEG_QUALITY = 90  # the pictures the page is sent as JPEG: the hover view's photo, the Overview's maps


def jpeg_bytes(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """A grey or RGB uint8 image as JPEG at `quality`."""
    return _encoded(rgb, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)])


def normalize(values: np.ndarray, from_zero: bool = False) -> np.ndarray:
    """Min-max to [0, 1], ignoring NaN; a constant map becomes 0.5. `from_zero`: 0 to the
    maximum instead, so a nearly flat map is not stretched into full colour."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.full(values.shape, np.nan, np.float32)
    lo, hi = float(values[finite].min()), float(values[finite].max())
    lo = min(lo, 0.0) if from_zero else lo
    if hi - lo < 1e-12:
        return np.where(finite, 0.5, np.nan).astype(np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


def colorize(values01: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """[0, 1] values (NaN allowed) -> RGB; NaN is grey."""
    values01 = np.asarray(values01, np.float32)
    finite = np.isfinite(values01)
    idx = cv2.convertScaleAbs(np.where(finite, values01, 0.0), alpha=255.0)  # round + clip
    out = cv2.LUT(cv2.merge([idx, idx, idx]), lut(cmap).reshape(256, 1, 3))
    if not finite.all():
        out[~finite] = NAN_GREY
    return out


def display_size(width: int, height: int, cap: int = DISPLAY_CAP,
                 enlarge: bool = False) -> tuple[int, int]:
    """(W, H) scaled so the longest side is at most `cap` (exactly `cap` with enlarge)."""
    s = cap / max(width, height)
    s = s if enlarge else min(1.0, s)
    return max(1, round(width * s)), max(1, round(height * s))


_LAST_FIT: tuple = (None, None, None)  # (image, (cap, enlarge), its fitted copy): the gallery
#                                      fits one photo for each of its maps


def fit(image: np.ndarray, cap: int = DISPLAY_CAP, enlarge: bool = False) -> np.ndarray:
    """Resize for display: area-averaged down, or (enlarge) nearest-neighbour up, so a
    64 px scene stays crisp. A resized result is read-only (the last one is kept for the
    next call with the same image); an image already at that size is returned as it is."""
    global _LAST_FIT
    h, w = image.shape[:2]
    size = display_size(w, h, cap, enlarge)
    if size == (w, h):
        return image
    last, how, fitted = _LAST_FIT
    if last is image and how == (cap, enlarge):
        return fitted
    down = size[0] < w
    fitted = cv2.resize(image, size, interpolation=cv2.INTER_AREA if down else cv2.INTER_NEAREST)
    fitted.setflags(write=False)
    _LAST_FIT = (image, (cap, enlarge), fitted)
    return fitted


def keep_top_mass(heat01: np.ndarray, fraction: float) -> np.ndarray:
    """The highest pixels of a non-negative map that together hold `fraction` of its mass
    (True = keep). fraction >= 1 keeps every seen pixel."""
    finite = np.isfinite(heat01)
    if fraction >= 1.0:
        return finite
    v = np.where(finite, heat01, 0.0).ravel()
    order = np.argsort(-v, kind="stable")
    cum = np.cumsum(v[order])
    n_keep = int(np.searchsorted(cum, fraction * cum[-1]) + 1) if cum[-1] > 0 else v.size
    keep = np.zeros(v.size, bool)
    keep[order[:n_keep]] = True
    return keep.reshape(heat01.shape) & finite


def overlay(image: np.ndarray, heat01: np.ndarray, alpha: float = 0.5,
            cmap: str = "jet", keep: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend a [0, 1] heat map (same H, W as image; NaN = not seen by the model, shown
    darkened) over an RGB image; pixels outside `keep` show the photo uncoloured."""
    out = cv2.addWeighted(image, 1.0 - alpha, colorize(heat01, cmap), alpha, 0.0)
    if keep is not None:
        np.copyto(out, image, where=~keep[..., None])
    unseen = ~np.isfinite(heat01)
    if unseen.any():
        np.copyto(out, cv2.convertScaleAbs(image, alpha=0.35), where=unseen[..., None])
    return out


def map_on_image(trace: Trace, values: np.ndarray, cap: int = DISPLAY_CAP,
                 alpha: float = 0.5, cmap: str = "jet", enlarge: bool = False,
                 keep_mass: float = 1.0, from_zero: bool = False) -> np.ndarray:
    """A (Hg, Wg) map of this trace's geometry, normalised and overlaid on its image;
    `keep_mass` < 1 colours only the top pixels holding that share of the map's mass."""
    shown = fit(trace.image, cap, enlarge)
    heat = normalize(trace.geometry.grid_to_image(values, (shown.shape[1], shown.shape[0])),
                     from_zero)
    keep = keep_top_mass(heat, keep_mass) if keep_mass < 1.0 else None
    return overlay(shown, heat, alpha, cmap, keep)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.4,
          color=(20, 20, 20)) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def colorbar(cmap: str, width: int, lo: float, hi: float, label: str = "",
             height: int = 34) -> np.ndarray:
    """A horizontal colour scale from lo (left) to hi (right) with its numbers."""
    bar = np.full((height, width, 3), 255, np.uint8)
    ramp = lut(cmap)[np.linspace(0, 255, width).astype(int)]
    bar[2:14] = ramp[None]
    _text(bar, f"{lo:.3g}", (2, 28))
    hi_text = f"{hi:.3g}"
    _text(bar, hi_text, (width - 8 * len(hi_text) - 2, 28))
    if label:
        _text(bar, label, (max(2, width // 2 - 4 * len(label)), 28))
    return bar


def with_colorbar(image: np.ndarray, values: np.ndarray, cmap: str, label: str = "",
                  from_zero: bool = False) -> np.ndarray:
    """Stack a colorbar for the value range of `values` (from 0 with `from_zero`) under an
    overlay."""
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    lo = min(lo, 0.0) if from_zero else lo
    return np.vstack([image, colorbar(cmap, image.shape[1], lo, hi, label)])


def spatial_view(trace: Trace, rec: SpatialMap, cap: int = DISPLAY_CAP, alpha: float = 0.5,
                 cmap: str = "jet", keep_mass: float = 1.0) -> np.ndarray:
    """A spatial map on the photo with a colorbar labelled in the map's own values."""
    shown = map_on_image(trace, rec.values, cap, alpha, cmap, enlarge=True, keep_mass=keep_mass)
    return with_colorbar(shown, rec.values, cmap, rec.value_kind)


def affinity_view(trace: Trace, rec, cell: int, head: Optional[int] = None,
                  cap: int = DISPLAY_CAP, alpha: float = 0.5, cmap: str = "jet",
                  from_zero: bool = False) -> np.ndarray:
    """Row `cell` of an affinity on the photo, the query cell outlined; colours from the
    row's minimum to its maximum, or from 0 (`from_zero`)."""
    row = rec.row(cell, head)
    shown = map_on_image(trace, row, cap, alpha, cmap, enlarge=True, from_zero=from_zero)
    scale = shown.shape[1] / trace.geometry.image_size[0]  # the photo may be a display copy
    boxed = draw_box(shown, trace.geometry.cell_box(cell, rec.grid), scale)
    return with_colorbar(boxed, row, cmap, "attention weight", from_zero)


VALUE_LABELS = {"gate": "gate (1 = kept)", "probability": "weight (sums to 1)",
                "logit": "logit (before the sigmoid)", "vector": "added value"}


def value_axis(values: np.ndarray, value_kind: str) -> tuple[float, float, str]:
    """(lo, hi, label) of the axis a chart of these values should use: 0..1 for gates and
    probabilities, so 0.4 never looks like 'off'; otherwise from 0 (or the minimum, if
    negative) to the maximum."""
    v = np.asarray(values, np.float64)
    if value_kind in ("gate", "probability"):
        return 0.0, 1.0, VALUE_LABELS[value_kind]
    lo, hi = min(0.0, float(v.min())), max(0.0, float(v.max()))
    return lo, (hi if hi > lo else lo + 1.0), VALUE_LABELS.get(value_kind, value_kind)


def _figure(width: int, height: int):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(width / 100, height / 100), dpi=100)


def gate_figure(values: np.ndarray, value_kind: str = "gate", title: str = "",
                width: int = 768, height: int = 240):
    """A bar per channel on a labelled axis (`value_axis`), channel index below; bars
    coloured by value on the same scale. -> (figure, axes)."""
    lo, hi, label = value_axis(values, value_kind)
    fig, ax = _figure(width, height)
    v = np.asarray(values, np.float64)
    colours = lut("viridis")[np.clip(np.round((v - lo) / (hi - lo) * 255), 0, 255).astype(int)] / 255
    ax.bar(np.arange(len(v)), v, width=1.0, color=colours, linewidth=0)
    ax.set_xlim(-0.5, len(v) - 0.5)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"channel (0-{len(v) - 1})", fontsize=8)
    ax.set_ylabel(label, fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig, ax


def gate_chart(values: np.ndarray, value_kind: str = "gate", title: str = "",
               width: int = 768, height: int = 240) -> np.ndarray:
    """`gate_figure` as an RGB image."""
    return _figure_rgb(gate_figure(values, value_kind, title, width, height)[0])


def matrix_figure(m: np.ndarray, row_labels: list, value_kind: str, columns_label: tuple,
                  width: int = 768):
    """A matrix as a heat map with every row labelled, its colour bar in the values' own
    units (`value_axis`). -> (figure, axes)."""
    lo, hi, label = value_axis(m, value_kind)
    fig, ax = _figure(width, 80 + 14 * len(row_labels))
    shown = ax.imshow(m, aspect="auto", cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_yticks(range(len(row_labels)))
    ax.set_yticklabels(row_labels, fontsize=6)
    ax.set_xticks([0, m.shape[1] - 1])
    ax.set_xticklabels(columns_label, fontsize=7)
    bar = fig.colorbar(shown, ax=ax, fraction=0.03, pad=0.01)
    bar.set_label(label.split(" (")[0], fontsize=7)  # the unit, without the explanation
    bar.ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig, ax


def gate_matrix(records: list, width: int = 768, columns: int = 256) -> np.ndarray:
    """Blocks x channels: one row per channel-weight record (network order, labelled by its
    block), each block's channels resampled to `columns`, on one colour scale."""
    rows = [np.asarray(r.values, np.float32)[np.minimum(
        (np.arange(columns) * len(r.values)) // columns, len(r.values) - 1)] for r in records]
    fig, _ = matrix_figure(np.stack(rows), [r.layer for r in records], records[0].value_kind,
                           ("first channel", "last channel"), width)
    return _figure_rgb(fig)


def branch_chart(rec: BranchWeights, width: int = 768) -> np.ndarray:
    """Branches x channels of one SK / ResNeSt block, rows labelled by branch."""
    k, c = rec.values.shape
    fig, _ = matrix_figure(rec.values, [f"branch {i}" for i in range(k)], rec.value_kind,
                           ("channel 0", f"channel {c - 1}"), width)
    return _figure_rgb(fig)


def feature_tiles(trace: Trace, rec: ChannelWeights, cap: int = 192, cmap: str = "viridis",
                  alpha: float = 0.6) -> list[tuple[np.ndarray, str]]:
    """The block-input feature maps of a record's most-weighted channels, on the photo."""
    if rec.top_features is None:
        return []
    return [(map_on_image(trace, feat, cap, alpha, cmap, enlarge=True),
             f"channel {int(ch)} · weight {rec.values[ch]:.3f}")
            for ch, feat in zip(rec.top_channels, rec.top_features)]


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


def segmentation_view(trace: Trace, cap: int = DISPLAY_CAP, alpha: float = 0.55,
                      legend_rows: int = 8) -> np.ndarray:
    """The class map in its palette over the photo (a clip's: over each frame, side by
    side), with a legend of the classes that cover most of it (share of pixels)."""
    seg: Segmentation = trace.prediction
    palette = seg.palette if seg.palette is not None else lut("tab20")[
        (np.arange(len(seg.labels)) * 13) % 256]
    if seg.class_map.ndim == 3:  # a clip: one map per frame, the frames side by side
        width = max(64, cap // len(seg.class_map))
        views = [_classes_over(fit(frame, width, enlarge=True), classes, palette, alpha)
                 for frame, classes in zip(trace.clip.frames, seg.class_map)]
        gap = np.full((views[0].shape[0], 4, 3), 255, np.uint8)
        out = np.hstack([part for v in views for part in (v, gap)][:-1])
    else:
        out = _classes_over(fit(trace.image, cap, enlarge=True), seg.class_map, palette, alpha)
    top = seg.top(legend_rows)
    legend = np.full((18 * len(top) + 6, out.shape[1], 3), 255, np.uint8)
    for n, (name, share) in enumerate(top):
        k = list(seg.labels).index(name)
        y = 4 + 18 * n
        legend[y:y + 14, 4:24] = palette[k]
        _text(legend, f"{name}  {share:.0%}", (30, y + 11))
    return np.vstack([out, legend])


def _classes_over(shown: np.ndarray, class_map: np.ndarray, palette: np.ndarray,
                  alpha: float) -> np.ndarray:
    """One (H, W) class map in its palette over the picture it labels (unseen: darkened)."""
    classes = cv2.resize(class_map, (shown.shape[1], shown.shape[0]),
                         interpolation=cv2.INTER_NEAREST)
    out = cv2.addWeighted(shown, 1.0 - alpha, palette[np.clip(classes, 0, None)], alpha, 0.0)
    unseen = classes < 0
    if unseen.any():
        out[unseen] = cv2.convertScaleAbs(shown[unseen], alpha=0.35)
    return out


def axis_gate_view(rec: AxisGate, width: int = 768, cmap: str = "viridis") -> np.ndarray:
    """A gate over two non-spatial axes (e.g. C x W) as a heat map, rows = the first axis."""
    a, b = rec.values.shape
    height = max(16, min(width, round(width * a / b)))
    img = cv2.resize(colorize(normalize(rec.values), cmap), (width, height),
                     interpolation=cv2.INTER_NEAREST)
    return with_colorbar(img, rec.values, cmap, f"rows {rec.axes[0]}, columns {rec.axes[1]}")


def strongest_pairs_text(rec: ChannelAffinity, count: int = 8) -> list[str]:
    """The strongest channel pairs of a channel affinity, one line each: 'c 12 ← c 40: 0.0031'
    (channel 12 takes that weight of its features from channel 40)."""
    return [f"c {r} ← c {c}: {w:.4g}" for r, c, w in rec.strongest(count)]


def spread_text(rec: ChannelAffinity) -> str:
    """How far the weights stray from uniform (1/C), in a line or two."""
    v = np.asarray(rec.values, np.float64)
    uniform = 1.0 / v.shape[1]
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    text = f"weights {lo:.4g} to {hi:.4g}\n(uniform: 1/C = {uniform:.4g})"
    if (hi - lo) < 0.05 * uniform:
        text += "\nnearly uniform: every channel\ntakes from all almost equally"
    return text


def channel_affinity_view(rec: ChannelAffinity, width: int = 768, cmap: str = "viridis",
                          pairs: int = 8) -> np.ndarray:
    """A C x C channel affinity as a matrix with labelled axes (rows: the channel that takes
    features, columns: the channel it takes them from), its colour bar in the weights' own
    range (with the uniform weight 1/C marked), and its strongest pairs listed beside it."""
    v = np.asarray(rec.values, np.float64)
    c_rows, c_cols = v.shape
    finite = v[np.isfinite(v)]
    # colours span the 1st to 99th percentile, so a few outliers do not flatten the rest
    lo, hi = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99))) \
        if finite.size else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1e-12
    height = max(300, int(width * 0.58))
    fig, _ = _figure(width, height)
    fig.clf()
    grid = fig.add_gridspec(1, 2, width_ratios=[3, 1.25])
    ax, side = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    shown = ax.imshow(v, cmap=cmap, vmin=lo, vmax=hi, interpolation="antialiased",
                      aspect="equal")
    ax.set_xlabel(f"channel it takes features from (0–{c_cols - 1})", fontsize=8)
    ax.set_ylabel(f"channel (0–{c_rows - 1})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{rec.layer} · {rec.name}: {c_rows}×{c_cols}, each row sums to 1", fontsize=9)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    bar.set_label("weight (1st to 99th percentile)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    uniform = 1.0 / c_cols
    if lo <= uniform <= hi:
        bar.ax.axhline(uniform, color="white", linewidth=1.2)
        bar.ax.text(1.05, uniform, " 1/C", transform=bar.ax.get_yaxis_transform(),
                    fontsize=6, va="center")
    side.axis("off")
    lines = strongest_pairs_text(rec, pairs)
    side.text(0.0, 1.0, spread_text(rec) + "\n\nStrongest pairs\n(channel ← from: weight)\n\n"
              + "\n".join(lines),
              va="top", ha="left", fontsize=8, family="monospace", transform=side.transAxes)
    fig.tight_layout()
    return _figure_rgb(fig)


def _channel_affinity_thumbnail(rec: ChannelAffinity, cap: int, cmap: str = "viridis") -> np.ndarray:
    """A small C x C matrix (area-averaged) with its colour bar."""
    img = cv2.resize(colorize(normalize(rec.values), cmap), (cap, cap), interpolation=cv2.INTER_AREA)
    return with_colorbar(img, rec.values, cmap, "C×C")


def centre_cell(rec) -> int:
    """The cell in the middle of a record's grid (the query shown before anyone points)."""
    h, w = rec.grid
    return (h // 2) * w + w // 2


def _pairwise_thumbnail(trace: Trace, rec, cap: int, alpha: float, cmap: str) -> np.ndarray:
    """The row of the centre query, its cell outlined."""
    cell = centre_cell(rec)
    shown = map_on_image(trace, rec.row(cell), cap, alpha, cmap, enlarge=True)
    scale = shown.shape[1] / trace.geometry.image_size[0]  # the photo may be a display copy
    return draw_box(shown, trace.geometry.cell_box(cell, rec.grid), scale)


def _bars_thumbnail(rec, cap: int) -> np.ndarray:
    lo, hi, _ = value_axis(rec.values, rec.value_kind)
    return bars(rec.values, width=cap, height=cap // 2, lo=lo, hi=hi)


_THUMBNAILS = {  # records.Record.view -> a small picture
    "spatial": lambda trace, rec, cap, alpha, cmap: map_on_image(trace, rec.values, cap, alpha,
                                                                 cmap, enlarge=True),
    "pairwise": _pairwise_thumbnail,
    "channel": lambda trace, rec, cap, alpha, cmap: _bars_thumbnail(rec, cap),
    "branch": lambda trace, rec, cap, alpha, cmap: heatmap(
        rec.values, width=cap, row_height=max(8, cap // (2 * len(rec.values)))),
    "axes": lambda trace, rec, cap, alpha, cmap: axis_gate_view(rec, cap),
    "channel_affinity": lambda trace, rec, cap, alpha, cmap: _channel_affinity_thumbnail(rec, cap),
}

_PICTURES = {  # records.Record.view -> the full picture export writes (pairwise: per query)
    "spatial": lambda trace, rec, cap, cmap: spatial_view(trace, rec, cap=cap, cmap=cmap),
    "channel": lambda trace, rec, cap, cmap: gate_chart(rec.values, rec.value_kind, rec.key),
    "branch": lambda trace, rec, cap, cmap: branch_chart(rec),
    "axes": lambda trace, rec, cap, cmap: axis_gate_view(rec),
    "channel_affinity": lambda trace, rec, cap, cmap: channel_affinity_view(rec),
}


def thumbnail(trace: Trace, rec: Record, cap: int = 256, alpha: float = 0.5,
              cmap: str = "jet") -> np.ndarray:
    """A small picture of one record: maps on the photo, gates as bars."""
    draw = _THUMBNAILS.get(view_of(rec))
    if draw is None:
        raise TypeError(f"no thumbnail for {type(rec).__name__}")
    return draw(trace, rec, cap, alpha, cmap)


def picture(trace: Trace, rec: Record, cap: int = DISPLAY_CAP,
            cmap: str = "jet") -> Optional[np.ndarray]:
    """The record's picture as export writes it; None for pairwise records (drawn per
    query) and kinds without one."""
    draw = _PICTURES.get(view_of(rec))
    return None if draw is None else draw(trace, rec, cap, cmap)


def shown_name(rec: Record, trace: Optional[Trace] = None) -> str:
    """'layer · name' as the page says it: a block called more than once says which pass
    ('criss-cross, pass 2'), a two-hop record which passes it composes."""
    name = re.sub(r"\(calls (\d+)\+(\d+)\)",
                  lambda m: f"(passes {int(m[1]) + 1} and {int(m[2]) + 1})", rec.name)
    if trace is not None and any(r is not rec and r.layer == rec.layer and r.name == rec.name
                                 for r in trace):
        name += f", pass {rec.call + 1}"
    return f"{rec.layer} · {name}"


def caption(rec: Record, trace: Optional[Trace] = None) -> str:
    """A gallery thumbnail's caption: the record as the page names it (`shown_name`), what
    the thumbnail shows and its grid."""
    extra = ""
    if view_of(rec) == "pairwise":
        extra = f" (centre query, {rec.heads} head{'s' if rec.heads != 1 else ''})"
    if view_of(rec) == "channel_affinity":
        shape = rec.values.shape
        return f"{shown_name(rec, trace)} · {shape[0]}×{shape[1]} channels"
    return f"{shown_name(rec, trace)}{extra} · {rec.grid[0]}×{rec.grid[1]}"


def gallery(trace: Trace, cap: int = 256, alpha: float = 0.5,
            cmap: str = "jet") -> list[tuple[np.ndarray, str]]:
    """The Overview: every record of the trace that has a still picture, in network order,
    as (thumbnail, caption); for a segmentation network the class map with its legend comes
    first; a clip's frames (as the network saw them) come last, its space-time rows having
    no still picture (they are drawn per query on the Non-local tab)."""
    items = [(thumbnail(trace, rec, cap, alpha, cmap), caption(rec, trace)) for rec in trace
             if view_of(rec) in _THUMBNAILS]
    clip = getattr(trace, "clip", None)
    if isinstance(trace.prediction, Segmentation):
        items.insert(0, (segmentation_view(trace, cap=2 * cap),
                         "classes in each frame, with legend" if clip is not None else
                         "classes with legend"))
    if clip is not None:
        items += [(f, f"frame {k}") for k, f in enumerate(clip.frames)]
    return items


def _figure_rgb(fig) -> np.ndarray:
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    import matplotlib.pyplot as plt
    plt.close(fig)
    return rgb


def divergence_plot(stats) -> np.ndarray:
    """Class divergence of the channel gates, block by block in network order (the curve
    that shows where gates become class-specific), with stage boundaries marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = stats.blocks()
    values = [stats.divergence(k) for k in keys]
    fig, ax = plt.subplots(figsize=(7.5, 3.2), dpi=100)
    ax.plot(range(len(keys)), values, marker="o", color="#d9480f")
    stages = [stats.stages[k] for k in keys]
    for i in range(1, len(keys)):
        if stages[i] != stages[i - 1]:
            ax.axvline(i - 0.5, color="#999", lw=0.8, ls="--")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([k.split(":")[0] for k in keys], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("between / within-class spread")
    ax.set_title(f"Channel gates, {stats.images} images: where do they become class-specific?",
                 fontsize=9)
    fig.tight_layout()
    return _figure_rgb(fig)


def excitation_figure(stats, classes: list[int]) -> np.ndarray:
    """SENet's excitation figure: for the last channel-gate block of each stage, the mean
    gate of every channel for each chosen class and over all images (dashed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = stats.stage_blocks()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], keys):
        for c in classes:
            if (key, c) in stats.sums:
                ax.plot(stats.sums[(key, c)].mean(), lw=0.8, label=stats.class_name(c)[:24])
        ax.plot(stats.overall_mean(key), lw=0.8, color="black", ls="--", label="all")
        ax.set_title(f"stage {stats.stages[key]}: {key.split(':')[0]}", fontsize=8)
        ax.set_xlabel("channel index", fontsize=7)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("mean excitation", fontsize=7)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    fig.suptitle(f"Channel gates per class, {stats.images} images", fontsize=9)
    fig.tight_layout()
    return _figure_rgb(fig)


def attention_beside_cam(trace: Trace, attention: np.ndarray, cam: np.ndarray,
                         alpha: float = 0.6, cmap: str = "jet", cap: int = 384) -> np.ndarray:
    """A block's attention map (left) and its Grad-CAM (right) on the photo, same size. An
    empty (all-zero) Grad-CAM is the photo under a band saying so, never a flat colour."""
    left, right = (map_on_image(trace, m, cap, alpha, cmap, enlarge=True) for m in (attention, cam))
    finite = np.asarray(cam)[np.isfinite(cam)]
    if finite.size == 0 or float(np.abs(finite).max()) <= 1e-6:
        right = fit(trace.image, cap, enlarge=True).copy()
        band = np.full((24, right.shape[1], 3), 255, np.uint8)
        _text(band, "Grad-CAM is empty (zero everywhere)", (4, 16))
        right = np.vstack([band, right])
    return side_by_side(left, right)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two RGB images next to each other (heights padded to match), white between."""
    h = max(left.shape[0], right.shape[0])
    pad = lambda im: np.vstack([im, np.full((h - im.shape[0], im.shape[1], 3), 255, np.uint8)])  # noqa: E731
    return np.hstack([pad(left), np.full((h, gap, 3), 255, np.uint8), pad(right)])
