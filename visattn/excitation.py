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


# Sums are kept exactly, as integers in units of 2^-56 (two int64 limbs: hi * 2^62 + lo,
# lo in [0, 2^62)): every float32 gate >= 2^-33 and its square are whole numbers of that
# unit, so adding images in any order, on any number of processes, gives the same bits.
# One float64 rounding happens when a mean is read. Gates must lie in (-2.8, 2.8).
_UNIT = 2.0 ** 56
_LIMB = 62
_LOW = (1 << _LIMB) - 1


class _Exact:
    """An exact running sum of float vectors (see above)."""

    def __init__(self, hi: np.ndarray, lo: np.ndarray):
        self.hi, self.lo = hi, lo

    @classmethod
    def zeros(cls, shape) -> "_Exact":
        return cls(np.zeros(shape, np.int64), np.zeros(shape, np.int64))

    @classmethod
    def of_float(cls, total: np.ndarray) -> "_Exact":
        """A float64 sum (a checkpoint written before sums were exact)."""
        total = np.asarray(total, np.float64)
        hi = np.floor(total / 2.0 ** (_LIMB - 56))
        return cls(hi.astype(np.int64), np.rint((total - hi * 2.0 ** (_LIMB - 56)) * _UNIT).astype(np.int64))

    def add(self, v: np.ndarray) -> None:
        if not np.all(np.abs(v) < 8.0):  # gates and their squares: |gate| < 2.8
            raise ValueError("channel gates beyond +-2.8 cannot be summed exactly")
        self.lo += np.rint(v * _UNIT).astype(np.int64)
        self.normalize()

    def normalize(self) -> None:
        carry = self.lo >> _LIMB
        self.hi += carry
        self.lo -= carry << _LIMB

    def value(self) -> np.ndarray:
        return self.hi * 2.0 ** (_LIMB - 56) + self.lo / _UNIT

    def merge(self, other: "_Exact") -> None:
        self.hi += other.hi
        self.lo += other.lo
        self.normalize()

    def limbs(self) -> np.ndarray:
        """(3, ...) int64 pieces that may be summed over up to 2^31 processes without
        overflow: hi, the top and bottom 31 bits of lo (see `from_limbs`)."""
        return np.stack([self.hi, self.lo >> 31, self.lo & ((1 << 31) - 1)])

    @classmethod
    def from_limbs(cls, limbs: np.ndarray) -> "_Exact":
        hi, top, bottom = (np.array(a, np.int64) for a in limbs)
        top += bottom >> 31
        bottom &= (1 << 31) - 1
        hi += top >> 31
        top &= (1 << 31) - 1
        return cls(hi, (top << 31) | bottom)


@dataclass
class _Sums:
    n: int = 0
    exact_total: Optional[_Exact] = None
    exact_squares: Optional[_Exact] = None

    def add(self, v: np.ndarray) -> None:
        v = v.astype(np.float64)  # float32 -> float64: exact, and so is the square
        if self.exact_total is None:
            self.exact_total, self.exact_squares = _Exact.zeros(v.shape), _Exact.zeros(v.shape)
        self.n += 1
        self.exact_total.add(v)
        self.exact_squares.add(v * v)

    def merge(self, other: "_Sums") -> None:
        if other.exact_total is None:
            return
        if self.exact_total is None:
            self.exact_total = _Exact.zeros(other.exact_total.hi.shape)
            self.exact_squares = _Exact.zeros(other.exact_total.hi.shape)
        self.n += other.n
        self.exact_total.merge(other.exact_total)
        self.exact_squares.merge(other.exact_squares)

    @property
    def total(self) -> np.ndarray:
        return self.exact_total.value()

    @property
    def squares(self) -> np.ndarray:
        return self.exact_squares.value()

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

    def merge(self, other: "ExcitationStats") -> None:
        """Add another set of sums (another process's, another part of the run): exact, so
        the order of merging never matters."""
        self.images += other.images
        for key, stage in other.stages.items():
            self.stages.setdefault(key, stage)
        for entry, sums in other.sums.items():
            self.sums.setdefault(entry, _Sums()).merge(sums)

    def layout(self) -> list:
        """[block, class, channels] of every (block, class) held, sorted."""
        return sorted([key, c, int(s.exact_total.hi.size)] for (key, c), s in self.sums.items())

    def packed(self, layout: list) -> np.ndarray:
        """Every number as one int64 vector laid out by `layout` (entries this process lacks
        are zeros): image count, then per entry its count and the limbs of its sums. Summing
        such vectors over processes (one all_reduce) sums the statistics exactly."""
        parts = [np.array([self.images], np.int64)]
        for key, c, channels in layout:
            s = self.sums.get((key, c))
            if s is None or s.exact_total is None:
                parts.append(np.zeros(1 + 6 * channels, np.int64))
            else:
                parts += [np.array([s.n], np.int64), s.exact_total.limbs().ravel(),
                          s.exact_squares.limbs().ravel()]
        return np.concatenate(parts)

    @classmethod
    def unpacked(cls, labels, stages: dict, layout: list, vector: np.ndarray) -> "ExcitationStats":
        """The statistics a (summed) `packed` vector holds."""
        stats = cls(labels=list(labels), stages=dict(stages), images=int(vector[0]))
        at = 1
        for key, c, channels in layout:
            n, t, q = vector[at], vector[at + 1:at + 1 + 3 * channels], vector[at + 1 + 3 * channels:at + 1 + 6 * channels]
            at += 1 + 6 * channels
            if n:
                stats.sums[(key, c)] = _Sums(int(n), _Exact.from_limbs(t.reshape(3, channels)),
                                             _Exact.from_limbs(q.reshape(3, channels)))
        return stats

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
        meta["exact"] = 1  # sums as integer limbs (see _Exact)
        arrays = {f"t{i}": s.exact_total.limbs() for i, (_, s) in enumerate(entries)}
        arrays.update({f"q{i}": s.exact_squares.limbs() for i, (_, s) in enumerate(entries)})
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, labels) -> tuple["ExcitationStats", dict]:
        """Sums saved by `save`, and the saved JSON fields."""
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            stats = cls(labels=list(labels), stages=meta.pop("stages"), images=meta.pop("images"))
            read = _Exact.from_limbs if meta.pop("exact", 0) else _Exact.of_float
            for i, (key, c, n) in enumerate(meta.pop("entries")):
                stats.sums[(key, c)] = _Sums(n, read(data[f"t{i}"]), read(data[f"q{i}"]))
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
