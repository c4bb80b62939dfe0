"""Faithfulness of a network's attention over a set of images with object masks: the
driver that runs the model image by image and scores each map with `metrics`."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .metrics import class_separation, energy_ratio, mass_ratio, pointing_game, roc_auc
from .pipeline import analyze
from .records import ChannelWeights, Pairwise, SpatialMap


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
        for rec in [r for r in trace if isinstance(r, Pairwise)]:
            for where, store in ((mask, out.row_object), (~mask, out.row_background)):
                ys, xs = np.nonzero(where)
                for k in rng.choice(len(ys), min(queries_per_image, len(ys)), replace=False):
                    cell = geo.to_grid(xs[k], ys[k], rec.grid, clamp=True)
                    store[rec.key].append(mass_ratio(geo.grid_to_image(rec.row(cell)), mask))
    return out
