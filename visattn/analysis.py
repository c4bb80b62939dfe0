"""Derived views of attention: faithfulness against ground-truth masks, class separation
of channel gates.

All functions take maps in image space (H, W), e.g. `Geometry.grid_to_image(values)`;
NaN marks pixels the model did not see and is left out. Masks are boolean, same shape.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

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


@dataclass
class Faithfulness:
    """Per-record-key lists of scores over a set of images with masks."""
    auc: dict = field(default_factory=lambda: defaultdict(list))
    energy: dict = field(default_factory=lambda: defaultdict(list))
    pointing: dict = field(default_factory=lambda: defaultdict(list))
    row_object: dict = field(default_factory=lambda: defaultdict(list))
    row_background: dict = field(default_factory=lambda: defaultdict(list))
    gates: dict = field(default_factory=lambda: defaultdict(list))
    labels: list = field(default_factory=list)
    correct: int = 0

    def summary(self) -> dict:
        mean = lambda d: {k: float(np.nanmean(v)) for k, v in d.items()}  # noqa: E731
        y = np.array(self.labels)
        return {"accuracy": self.correct / max(1, len(self.labels)), "images": len(self.labels),
                "spatial_auc": mean(self.auc), "spatial_energy_ratio": mean(self.energy),
                "pointing_game": mean(self.pointing),
                "affinity_object_query": mean(self.row_object),
                "affinity_background_query": mean(self.row_background),
                "gate_class_separation": {k: class_separation(np.stack(v), y)
                                          for k, v in self.gates.items()}}


def faithfulness(model, images, masks, labels, queries_per_image: int = 4,
                 seed: int = 0, **analyze_kwargs) -> Faithfulness:
    """Score a model's attention against ground-truth object masks, image by image
    (memory does not grow with the set, beyond the scores and one gate vector per block
    per image). For affinities, rows are queried at random object and background pixels."""
    from .pipeline import analyze
    from .records import PAIRWISE, ChannelWeights, SpatialMap
    rng = np.random.default_rng(seed)
    out = Faithfulness()
    for image, mask, label in zip(images, masks, labels):
        trace = analyze(image, model, **analyze_kwargs)
        out.labels.append(int(label))
        out.correct += int(np.argmax(trace.prediction.probs) == label)
        geo = trace.geometry
        for rec in trace.select(SpatialMap):
            heat = geo.grid_to_image(rec.values)
            out.auc[rec.key].append(roc_auc(heat, mask))
            out.energy[rec.key].append(energy_ratio(heat, mask))
            out.pointing[rec.key].append(pointing_game(heat, mask))
        for rec in trace.select(ChannelWeights):
            out.gates[rec.key].append(rec.values)
        for rec in [r for r in trace if isinstance(r, PAIRWISE)]:
            for where, store in ((mask, out.row_object), (~mask, out.row_background)):
                ys, xs = np.nonzero(where)
                for k in rng.choice(len(ys), min(queries_per_image, len(ys)), replace=False):
                    cell = geo.to_grid(xs[k], ys[k], rec.grid, clamp=True)
                    store[rec.key].append(mass_ratio(geo.grid_to_image(rec.row(cell)), mask))
    return out


QUERY_DEPENDENCE_NOTE = (
    "Trained Non-local blocks often give nearly the same row for every query pixel (the "
    "observation behind GCNet): a score near 0 means this row would look alike wherever "
    "you click, near 1 that it is specific to this pixel.")


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two distributions, in bits (0..1)."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = lambda a: np.sum(np.where(a > 0, a * np.log2(a / m), 0.0))  # noqa: E731
        return float(0.5 * kl(p) + 0.5 * kl(q))


def reference_cells(grid, per_axis: int = 4) -> list[int]:
    """The fixed cells every query is compared with: the centres of a per_axis x per_axis
    lattice over the grid (fewer on small grids), row-major. The page's hover view gets
    this list and scores with the same cells."""
    h, w = grid
    rows = sorted({(2 * k + 1) * h // (2 * per_axis) for k in range(per_axis)})
    cols = sorted({(2 * k + 1) * w // (2 * per_axis) for k in range(per_axis)})
    return [r * w + c for r in rows for c in cols]


def query_dependence(aff, cell: int, head=None) -> float:
    """How different the row of `cell` is from the rows of the reference cells
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
    from .records import PAIRWISE, ChannelWeights, SpatialMap
    at = [r for r in trace if r.stage == stage]
    spatial = [r for r in at if isinstance(r, SpatialMap) and "branch" not in r.name]
    if spatial:
        return spatial[-1].values, f"{spatial[-1].layer} · {spatial[-1].name}"
    aff = [r for r in at if isinstance(r, PAIRWISE)]
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
