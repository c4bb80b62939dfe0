"""Attention metrics, pure functions of arrays and records (no model is run here; the
drivers that run models over image sets live in `faithfulness.py`): faithfulness scores
against ground-truth masks, class separation of channel gates, query dependence of
pairwise rows, one comparable map per stage.

Map scores take maps in image space (H, W), e.g. `Geometry.grid_to_image(values)`; NaN
marks pixels the model did not see and is left out. Masks are boolean, same shape.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .records import ChannelWeights, Pairwise, SpatialMap


def _valid(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if values.shape != mask.shape:
        raise ValueError(f"map {values.shape} and mask {mask.shape} differ in shape")
    seen = np.isfinite(values)
    return values[seen].astype(np.float64), mask[seen].astype(bool)


def mass_ratio(values: np.ndarray, mask: np.ndarray) -> float:
    """(share of a non-negative map's mass inside the mask) / (mask's share of the area).
    1 = no better than uniform; > 1 = concentrated on the object. For an affinity row
    (a probability over positions) queried at an object pixel, this is the row's mass on
    the object relative to the object's area fraction."""
    v, m = _valid(values, mask)
    if not m.any() or m.all():
        return float("nan")
    if (v < 0).any():
        raise ValueError("mass_ratio needs a non-negative map; use energy_ratio")
    total = v.sum()
    return float((v[m].sum() / total) / m.mean()) if total > 0 else 1.0


def energy_ratio(values: np.ndarray, mask: np.ndarray) -> float:
    """mass_ratio of the map shifted to start at 0 (min subtracted), so gates and logits
    of any sign can be compared."""
    finite = np.isfinite(values)
    lo = values[finite].min() if finite.any() else 0.0
    return mass_ratio(values - lo, mask)


def ranks(v: np.ndarray) -> np.ndarray:
    """1-based ranks of the values, ties sharing their mean rank."""
    order = np.argsort(v, kind="mergesort")
    out = np.empty(len(v), np.float64)
    sorted_v = v[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_v)) + 1]
    ends = np.r_[starts[1:], len(v)]
    for s, e in zip(starts, ends):
        out[order[s:e]] = (s + e + 1) / 2.0
    return out


def roc_auc(values: np.ndarray, mask: np.ndarray) -> float:
    """Probability that a random object pixel scores above a random background pixel
    (ties count half): Mann-Whitney U / (n_obj * n_bg)."""
    v, m = _valid(values, mask)
    n_pos, n_neg = int(m.sum()), int((~m).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    u = ranks(v)[m].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def pointing_game(values: np.ndarray, mask: np.ndarray) -> bool:
    """Does the map's highest pixel lie on the object?"""
    v = np.where(np.isfinite(values), values, -np.inf)
    return bool(mask.flat[int(np.argmax(v))])


def class_separation(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Between-class spread / within-class spread of per-image vectors (e.g. one block's
    channel gates): mean squared distance of class means to the grand mean, over the mean
    squared distance of vectors to their class mean. Large = the gates are class-specific."""
    vectors = np.asarray(vectors, np.float64)
    classes = np.unique(labels)
    grand = vectors.mean(0)
    means = {c: vectors[labels == c].mean(0) for c in classes}
    between = np.mean([np.sum((means[c] - grand) ** 2) for c in classes])
    within = np.mean([np.sum((v - means[c]) ** 2) for v, c in zip(vectors, labels)])
    return float(between / within) if within > 0 else float("inf")


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two distributions, in bits (0..1)."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = lambda a: np.sum(np.where(a > 0, a * np.log2(a / m), 0.0))  # noqa: E731
        return float(0.5 * kl(p) + 0.5 * kl(q))


def reference_cells(grid, per_axis: int = 4) -> list[int]:
    """The fixed cells every query is compared with: the centres of a per_axis x per_axis
    lattice over an (H, W) grid (fewer on small grids), in every time cell of a (T, H, W)
    grid, row-major. The page's hover view gets this list and scores with the same cells."""
    *frames, h, w = grid
    rows = sorted({(2 * k + 1) * h // (2 * per_axis) for k in range(per_axis)})
    cols = sorted({(2 * k + 1) * w // (2 * per_axis) for k in range(per_axis)})
    return [(t * h + r) * w + c for t in range(frames[0] if frames else 1)
            for r in rows for c in cols]


def query_dependence(aff: Pairwise, cell: int, head: Optional[int] = None) -> float:
    """How different the row of `cell` (a cell of a photo's or a clip's grid) is from the
    rows of the reference cells
    (`reference_cells`, the query itself left out): their mean Jensen-Shannon divergence
    in bits, 0..1. 0 = every query looks at the same places."""
    refs = [j for j in reference_cells(aff.grid) if j != cell]
    if not refs:
        return 0.0
    row = aff.row(cell, head).ravel().astype(np.float64)
    return float(np.mean([_js_divergence(row, aff.row(j, head).ravel().astype(np.float64))
                          for j in refs]))


def stage_map(trace, stage: int) -> Optional[tuple[np.ndarray, str]]:
    """One (H, W) map that shows where a network attends at a stage, for comparing
    families side by side: the stage's last spatial map (CBAM/BAM gates, GC context);
    else the mean affinity row (where the layer looks on average); else the block input's
    top channels weighted by their gates (channel-only families). None if the stage has
    no attention."""
    at = [r for r in trace if r.stage == stage]
    spatial = [r for r in at if isinstance(r, SpatialMap) and "branch" not in r.name]
    if spatial:
        return spatial[-1].values, f"{spatial[-1].layer} · {spatial[-1].name}"
    aff = [r for r in at if isinstance(r, Pairwise)]
    if aff:
        rec = aff[-1]
        n = rec.grid[0] * rec.grid[1]
        rows = [rec.row(i) for i in range(0, n, max(1, n // 64))]
        return np.mean(rows, axis=0), f"{rec.layer} · mean affinity row"
    gated = [r for r in at if isinstance(r, ChannelWeights) and r.top_features is not None]
    if gated:
        rec = gated[-1]
        weights = rec.values[rec.top_channels][:, None, None]
        return (weights * np.abs(rec.top_features)).sum(0), \
            f"{rec.layer} · top channels weighted by {rec.name}"
    return None
