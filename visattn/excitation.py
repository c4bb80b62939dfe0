"""Excitation statistics over an image set (the SENet paper's per-class excitation plots):
for every channel-gate block, the mean and spread of each channel's gate per predicted
class, and a class-divergence number per block (between-class over within-class spread)
that shows where gates become class-specific. Images stream through one at a time; the
running sums are all that is kept, so memory does not grow with the set."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np

from .records import ChannelWeights, Trace


@dataclass
class _Sums:
    n: int = 0
    total: Optional[np.ndarray] = None
    squares: Optional[np.ndarray] = None

    def add(self, v: np.ndarray) -> None:
        v = v.astype(np.float64)
        if self.total is None:
            self.total, self.squares = np.zeros_like(v), np.zeros_like(v)
        self.n += 1
        self.total += v
        self.squares += v * v

    def mean(self) -> np.ndarray:
        return self.total / self.n

    def var(self) -> np.ndarray:
        return np.maximum(self.squares / self.n - self.mean() ** 2, 0.0)


@dataclass
class ExcitationStats:
    """Running per-(block, class) sums of channel gates."""
    labels: list
    sums: dict = field(default_factory=dict)  # (key, class) -> _Sums
    stages: dict = field(default_factory=dict)  # key -> stage
    images: int = 0

    def add(self, trace: Trace) -> None:
        """Fold in one analysis (its predicted class, its channel gates)."""
        cls = int(np.argmax(trace.prediction.probs))
        self.images += 1
        for rec in trace.select(ChannelWeights):
            if rec.value_kind != "gate":
                continue
            self.stages[rec.key] = rec.stage
            self.sums.setdefault((rec.key, cls), _Sums()).add(rec.values)

    def blocks(self) -> list[str]:
        return list(self.stages)

    def classes(self, key: str) -> list[int]:
        return sorted(c for k, c in self.sums if k == key)

    def mean_std(self, key: str, cls: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.sums[(key, cls)]
        return s.mean(), np.sqrt(s.var())

    def divergence(self, key: str) -> float:
        """Between-class spread of the class means over the mean within-class spread, with
        every image weighted equally (the same number visattn.analysis.class_separation
        gives on the stored vectors)."""
        parts = [self.sums[(key, c)] for c in self.classes(key)]
        n = sum(p.n for p in parts)
        grand = sum(p.total for p in parts) / n
        means = [p.mean() for p in parts]
        between = np.mean([np.sum((m - grand) ** 2) for m in means])
        within = sum(np.sum(p.var()) * p.n for p in parts) / n
        return float(between / within) if within > 0 else float("inf")

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["block", "stage", "class", "images", "channel", "mean", "std"])
        for key in self.blocks():
            for c in self.classes(key):
                mean, std = self.mean_std(key, c)
                name = self.labels[c] if c < len(self.labels) else str(c)
                for ch, (m, s) in enumerate(zip(mean, std)):
                    w.writerow([key, self.stages[key], name, self.sums[(key, c)].n, ch,
                                f"{m:.6g}", f"{s:.6g}"])
        return out.getvalue()


def collect(traces: Iterable[Trace], labels) -> ExcitationStats:
    """Stream analyses into statistics (pass a generator: one trace alive at a time)."""
    stats = ExcitationStats(labels=list(labels))
    for trace in traces:
        stats.add(trace)
    return stats
