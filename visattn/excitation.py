"""Excitation statistics over an image set (the SENet paper's per-class excitation plots):
for every channel-gate block, the mean and spread of each channel's gate per predicted
class, and a class-divergence number per block (between-class over within-class spread)
that shows where gates become class-specific. Images stream through one at a time; the
running sums are all that is kept, so memory does not grow with the set."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
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

    def add(self, trace: Trace, cls: Optional[int] = None) -> None:
        """Fold in one analysis: its channel gates under class `cls` (an index into
        `labels`; None: the predicted class)."""
        cls = int(np.argmax(trace.prediction.probs)) if cls is None else int(cls)
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
        every image weighted equally (the same number visattn.metrics.class_separation
        gives on the stored vectors)."""
        parts = [self.sums[(key, c)] for c in self.classes(key)]
        n = sum(p.n for p in parts)
        grand = sum(p.total for p in parts) / n
        means = [p.mean() for p in parts]
        between = np.mean([np.sum((m - grand) ** 2) for m in means])
        within = sum(np.sum(p.var()) * p.n for p in parts) / n
        return float(between / within) if within > 0 else float("inf")

    def overall_mean(self, key: str) -> np.ndarray:
        """A block's mean gate over every image, whatever its class."""
        parts = [self.sums[(key, c)] for c in self.classes(key)]
        return sum(p.total for p in parts) / sum(p.n for p in parts)

    def stage_blocks(self) -> list[str]:
        """The last channel-gate block of each stage, in network order (SENet's figure
        plots blocks such as SE_4_6, the last of its stage)."""
        last = {self.stages[k]: k for k in self.blocks()}
        return [k for k in self.blocks() if last[self.stages[k]] == k]

    def frequent_classes(self, count: int) -> list[int]:
        """The `count` classes with the most images (ties: lower index first)."""
        first = self.blocks()[0]
        seen = {c: s.n for (key, c), s in self.sums.items() if key == first}
        return sorted(seen, key=lambda c: (-seen[c], c))[:count]

    def class_name(self, cls: int) -> str:
        return self.labels[cls] if cls < len(self.labels) else str(cls)

    def figure_csv(self, classes: list[int]) -> str:
        """SENet's excitation figure as numbers: per stage (its last block), the mean gate
        of every channel for each chosen class and over all images."""
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["block", "stage", "class", "images", "channel", "mean"])
        for key in self.stage_blocks():
            rows = [(self.class_name(c), self.sums[(key, c)].n, self.sums[(key, c)].mean())
                    for c in classes if (key, c) in self.sums]
            rows.append(("all", sum(self.sums[(key, c)].n for c in self.classes(key)),
                         self.overall_mean(key)))
            for name, n, mean in rows:
                w.writerows([key, self.stages[key], name, n, ch, f"{m:.6g}"]
                            for ch, m in enumerate(mean))
        return out.getvalue()

    def save(self, path: Path, **extra) -> None:
        """The running sums (and `extra` JSON fields) to one .npz file, replaced atomically,
        so a run can resume from it."""
        entries = list(self.sums.items())
        meta = dict(extra, images=self.images, stages=self.stages,
                    entries=[[key, c, s.n] for (key, c), s in entries])
        arrays = {f"t{i}": s.total for i, (_, s) in enumerate(entries)}
        arrays.update({f"q{i}": s.squares for i, (_, s) in enumerate(entries)})
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, labels) -> tuple["ExcitationStats", dict]:
        """Sums saved by `save`, and the saved JSON fields."""
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            stats = cls(labels=list(labels), stages=meta.pop("stages"), images=meta.pop("images"))
            for i, (key, c, n) in enumerate(meta.pop("entries")):
                stats.sums[(key, c)] = _Sums(n, data[f"t{i}"].copy(), data[f"q{i}"].copy())
        return stats, meta

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["block", "stage", "class", "images", "channel", "mean", "std"])
        for key in self.blocks():
            for c in self.classes(key):
                mean, std = self.mean_std(key, c)
                name = self.class_name(c)
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
