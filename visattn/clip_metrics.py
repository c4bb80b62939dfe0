"""Do space-time rows follow an object across frames? Scores on moving clips
(visattn.scenes.moving_clip), where the answer is known.

All in the record's key grid (T', H', W'): `coverage` says which fraction of each key cell
(its frames and its pixels, tiling the model input uniformly) object k covers.

  cross-frame mass ratio   from a query on object k in frame t: the row's mass on object k
                           in the other frames / that region's share of all key cells
                           (1 = no better than uniform; all mass there = 1 / share)
  query dependence         mean Jensen-Shannon divergence (bits, 0..1) of the query's row
                           to the rows of fixed reference cells in every time cell
                           (`reference_cells`): 0 = every query looks at the same places
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .metrics import query_dependence, reference_cells  # noqa: F401  (the same for clips)
from .records_video import SpaceTimeAffinity

BARS = {"cross_frame_mass_ratio": (">=", 5.0), "query_dependence": (">=", 0.5)}


def coverage(masks: np.ndarray, key_grid: tuple[int, int, int]) -> np.ndarray:
    """masks (T_in, K, H_in, W_in) bool on the model input -> (K, T', H', W') float: the
    fraction of each key cell's frames x pixels covered by each object (cells tile the
    frames and the pixels uniformly)."""
    t_in, k, h_in, w_in = masks.shape
    kt, kh, kw = key_grid
    ti = np.arange(t_in) * kt // t_in
    yi = np.arange(h_in) * kh // h_in
    xi = np.arange(w_in) * kw // w_in
    out = np.zeros((k, kt, kh, kw), np.float64)
    counts = np.zeros((kt, kh, kw), np.float64)
    np.add.at(counts, (ti[:, None, None], yi[None, :, None], xi[None, None, :]), 1.0)
    for obj in range(k):
        np.add.at(out[obj], (ti[:, None, None], yi[None, :, None], xi[None, None, :]),
                  masks[:, obj].astype(np.float64))
    return out / counts


def cross_frame_mass_ratio(row: np.ndarray, cover: np.ndarray, t: int) -> float:
    """row (T', H', W') summing to 1; cover (T', H', W') one object's coverage; t the
    query's time cell. Mass on the object outside time cell t over its area share there."""
    other = cover.copy()
    other[t] = 0.0
    share = other.sum() / other.size
    if share <= 0:
        return float("nan")
    return float((row * other).sum() / share)


@dataclass
class ClipRows:
    """Per-query scores, pooled over clips."""
    cross_frame_mass_ratio: list = field(default_factory=list)
    query_dependence: list = field(default_factory=list)
    clips: int = 0

    def medians(self) -> dict:
        return {k: float(np.median(getattr(self, k))) for k in BARS} | {"clips": self.clips}


def score_clip(rec: SpaceTimeAffinity, masks: np.ndarray, out: ClipRows,
               rng: np.random.Generator, per_object: int = 2) -> None:
    """Add one clip's scores: masks (T_in, K, H_in, W_in) bool on the model input. For each
    object seen in more than one time cell, `per_object` query cells drawn from the cells
    it covers most (>= half) in each time cell it is seen in."""
    qcover = coverage(masks, rec.grid)  # on the query grid
    kcover = coverage(masks, rec.key_grid)
    t_n, h, w = rec.grid
    kt = rec.key_grid[0]
    for k in range(masks.shape[1]):
        times = [t for t in range(t_n) if qcover[k, t].max() >= 0.5]
        if len({t * kt // t_n for t in times}) < 2:
            continue
        for t in times:
            cells = np.flatnonzero(qcover[k, t].ravel() >= 0.5)
            for c in rng.choice(cells, min(per_object, len(cells)), replace=False):
                i = t * h * w + int(c)
                out.cross_frame_mass_ratio.append(
                    cross_frame_mass_ratio(rec.row(i), kcover[k], t * kt // t_n))
                out.query_dependence.append(query_dependence(rec, i))
    out.clips += 1


def entry_preprocess(entry: dict) -> dict:
    """The input a bundled clip network was trained on (its clips.json entry): the frames
    as they are, normalised with the training set's mean and std."""
    side = int(entry["input_size"])
    return {"size": (side, side), "mode": "crop", "crop_pct": 1.0, "interpolation": "bilinear",
            "mean": tuple(entry["mean"]), "std": tuple(entry["std"])}


def clip_rows(model, entry: dict, n: int, seed: int = 0, layer: Optional[str] = None) -> ClipRows:
    """Score a clip network's space-time rows on the first n held-out moving clips of its
    manifest entry (`val_data_seed`), each run through visattn.analyze_video (a module of
    yours gets the entry's preprocessing)."""
    from . import scenes
    from .pipeline import analyze_video
    rng, out = np.random.default_rng(seed), ClipRows()
    pre = None if isinstance(model, str) else entry_preprocess(entry)
    for j in range(n):
        clip = scenes.moving_clip(entry["val_data_seed"] * 1_000_003 + j)
        trace = analyze_video(clip.frames, model, preprocess=pre)
        recs = [r for r in trace if isinstance(r, SpaceTimeAffinity)
                and (layer is None or r.key == layer)]
        if not recs:
            raise ValueError(f"no space-time record {layer or ''} in this network")
        score_clip(recs[0], clip.masks[trace.clip.indices], out, rng)
    return out
