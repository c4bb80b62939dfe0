"""Do pairwise rows follow the query? Measured on twin scenes (visattn.scenes.twin_scene),
where the right answer is known: a pixel of one twin should look at the other twin.

Per query, in image space (rows resampled by `Geometry.grid_to_image`):
  twin mass ratio        from a pixel of twin i: row mass on twin j / j's area fraction
                         (1 = no better than uniform; 1 / area = all mass on j)
  query dependence       `metrics.query_dependence` of the query's cell (bits, 0..1), at
                         object pixels
  background twin ratio  from a background pixel: row mass on both twins / their area
                         fraction (a row that is not asked about the twins should not
                         single them out)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch.nn as nn

from .metrics import mass_ratio, query_dependence
from .geometry import Geometry

BARS = {"twin_mass_ratio": (">=", 5.0), "query_dependence": (">=", 0.5),
        "background_twin_ratio": ("<=", 2.0)}  # medians the issue asks for


@dataclass
class TwinRows:
    """Per-query scores, pooled over scenes."""
    twin_mass_ratio: list = field(default_factory=list)
    query_dependence: list = field(default_factory=list)
    background_twin_ratio: list = field(default_factory=list)
    scenes: int = 0

    def medians(self) -> dict:
        return {k: float(np.median(getattr(self, k))) for k in BARS} | {"scenes": self.scenes}


def _pixels(mask: np.ndarray, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    ys, xs = np.nonzero(mask)
    picks = rng.choice(len(ys), min(n, len(ys)), replace=False)
    return [(int(xs[k]), int(ys[k])) for k in picks]


def score_scene(rec, geo: Geometry, masks: np.ndarray, twins: Sequence[tuple[int, int]],
                out: TwinRows, rng: np.random.Generator, per_object: int = 2,
                background: int = 4) -> None:
    """Add one scene's scores to `out`. rec: a pairwise record (row(i) -> (H, W) on its
    grid); masks (K, H0, W0) bool in photo pixels; twins: pairs of object indices."""
    row_at = lambda x, y: geo.grid_to_image(rec.row(geo.to_grid(x, y, rec.grid, clamp=True)))  # noqa: E731
    partner = {i: j for a, b in twins for i, j in ((a, b), (b, a))}
    for k, mask in enumerate(masks):
        for x, y in _pixels(mask, per_object, rng):
            out.query_dependence.append(query_dependence(rec, geo.to_grid(x, y, rec.grid, clamp=True)))
            if k in partner:
                out.twin_mass_ratio.append(mass_ratio(row_at(x, y), masks[partner[k]]))
    paired = np.zeros(masks.shape[1:], bool)
    for k in partner:
        paired |= masks[k]
    for x, y in _pixels(~masks.any(0), background, rng):
        out.background_twin_ratio.append(mass_ratio(row_at(x, y), paired))
    out.scenes += 1


def twin_rows(model: Union[str, nn.Module], images: np.ndarray, masks: np.ndarray,
              twins: np.ndarray, layer: Optional[str] = None, seed: int = 0,
              **analyze_kwargs) -> TwinRows:
    """Score a network's pairwise rows on twin scenes: images (n, H, W, 3) uint8, masks
    (n, K, H, W) bool, twins (n, 2) the twin pair of each scene. `layer` picks one pairwise
    record by key (default: the first). Queries are drawn with a fixed seed."""
    from .pipeline import analyze
    from .records import Pairwise
    rng, out = np.random.default_rng(seed), TwinRows()
    for image, scene_masks, pair in zip(images, masks, twins):
        trace = analyze(image, model, **analyze_kwargs)
        recs = [r for r in trace if isinstance(r, Pairwise) and (layer is None or r.key == layer)]
        if not recs:
            raise ValueError(f"no pairwise record {layer or ''} in this network")
        score_scene(recs[0], trace.geometry, scene_masks, [tuple(pair)], out, rng)
    return out
