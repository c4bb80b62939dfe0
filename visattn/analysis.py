"""Derived views of attention: faithfulness against ground-truth masks.

All functions take maps in image space (H, W), e.g. `Geometry.grid_to_image(values)`;
NaN marks pixels the model did not see and is left out. Masks are boolean, same shape.
"""
from __future__ import annotations

import numpy as np


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


def roc_auc(values: np.ndarray, mask: np.ndarray) -> float:
    """Probability that a random object pixel scores above a random background pixel
    (ties count half): Mann-Whitney U / (n_obj * n_bg)."""
    v, m = _valid(values, mask)
    n_pos, n_neg = int(m.sum()), int((~m).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v), np.float64)
    sorted_v = v[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_v)) + 1]
    ends = np.r_[starts[1:], len(v)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0  # 1-based mean rank of the tie block
    u = ranks[m].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def pointing_game(values: np.ndarray, mask: np.ndarray) -> bool:
    """Does the map's highest pixel lie on the object?"""
    v = np.where(np.isfinite(values), values, -np.inf)
    return bool(mask.flat[int(np.argmax(v))])
