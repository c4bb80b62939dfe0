"""Records of a clip: pairwise attention in space and time, and what a clip's Trace keeps of
the video.

A space-time Non-local block (mmcv's NonLocal3d) relates every position (t, y, x) of a
(T, H, W) feature volume to the positions it keeps as keys. With `sub_sample`, the keys
are max-pooled (1, 2, 2): the rows are over those (T', H', W') keys, never spread back onto
the query grid. `SpaceTimeAffinity.row(i)` is a (T', H', W') distribution; which input
frames a key's time index covers is `Clip.frame_span`, which pixels a key cell covers is the
Trace's per-frame `Geometry` with the key grid (H', W'), as for photos.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from .records import Record, ValueKind, View, _softmax, register_kind

Grid3 = tuple[int, int, int]  # (T, H, W)


@register_kind
@dataclass(frozen=True, eq=False)
class Clip:
    """The frames a network saw: frames (T, H0, W0, 3) uint8 RGB, as decoded (before the
    network's resize and crop; the Trace's Geometry maps them to the input); indices (T,)
    int64, the decoded frame number of each (the sampling); fps of the source (0 when
    unknown, e.g. a folder of frames); frame_count, the source's number of frames."""
    frames: np.ndarray
    indices: np.ndarray
    fps: float = 0.0
    frame_count: int = 0
    source: str = ""  # a short name: the file's name, "array", "folder", "zip"

    def frame_span(self, t: int, cells: int) -> tuple[int, int]:
        """The input frames [start, stop) that time cell t of a `cells`-long time axis
        covers (a CNN's temporal strides tile the frames uniformly)."""
        n = len(self.frames)
        if not 0 <= t < cells:
            raise IndexError(f"time cell {t} is outside a {cells}-cell time axis")
        return t * n // cells, (t + 1) * n // cells

    def time_cell(self, frame: int, cells: int) -> int:
        """The time cell (of `cells`) that input frame `frame` falls in."""
        n = len(self.frames)
        if not 0 <= frame < n:
            raise IndexError(f"frame {frame} is outside the clip's {n} frames")
        return frame * cells // n


@dataclass(frozen=True, kw_only=True, eq=False)
class SpaceTimeAffinity(Record):
    """Embedded-Gaussian attention over a (T, H, W) volume: query i (row-major over
    `grid` = (T, H, W)) looks at the M = T' * H' * W' keys of `key_grid` (the block's keys,
    sub-sampled by its pooling when it has one).

    logits_i = scale * keys @ q_i,  row_i = softmax(logits_i), a (T', H', W') array.
    queries (heads, N, d), N = T * H * W; keys (heads, M, d).
    """
    view: ClassVar[View] = "spacetime"  # type: ignore[assignment]
    page_row: ClassVar[Optional[str]] = "spacetime"
    queries: np.ndarray
    keys: np.ndarray
    key_grid: Grid3
    scale: float
    value_kind: ValueKind = "probability"

    def __post_init__(self):
        q, k = self.queries, self.keys
        n, m = int(np.prod(self.grid)), int(np.prod(self.key_grid))
        if len(self.grid) != 3 or len(self.key_grid) != 3:
            raise ValueError(f"{self.key}: a space-time record needs (T, H, W) grids, got "
                             f"{self.grid} and {self.key_grid}")
        if q.ndim != 3 or q.shape[1] != n or k.ndim != 3 or k.shape[1] != m \
                or k.shape[0] != q.shape[0] or k.shape[2] != q.shape[2]:
            raise ValueError(f"{self.key}: queries {q.shape} / keys {k.shape} do not fit the "
                             f"grids {self.grid} / {self.key_grid}")

    @property
    def heads(self) -> int:
        return self.queries.shape[0]

    @property
    def frame_grid(self) -> tuple[int, int]:
        """(H, W) of one frame of the query grid."""
        return self.grid[1], self.grid[2]

    @property
    def key_frame_grid(self) -> tuple[int, int]:
        """(H', W') of one frame of the key grid."""
        return self.key_grid[1], self.key_grid[2]

    def cell(self, t: int, r: int, c: int) -> int:
        """Query index of time cell t, row r, column c."""
        T, H, W = self.grid
        if not (0 <= t < T and 0 <= r < H and 0 <= c < W):
            raise IndexError(f"({t}, {r}, {c}) is outside the {self.grid} grid of {self.key}")
        return (t * H + r) * W + c

    def logits(self, i: int, head: int) -> np.ndarray:
        """(T', H', W') pre-softmax logits of query i for one head."""
        return (self.keys[head] @ self.queries[head, i] * self.scale).reshape(self.key_grid)

    def row(self, i: int, head: Optional[int] = None) -> np.ndarray:
        """(T', H', W') softmax row of query i over the block's keys; with several heads
        and head=None, the mean of the heads' rows (still sums to 1)."""
        if not 0 <= i < int(np.prod(self.grid)):
            raise IndexError(f"cell {i} is outside the {self.grid} grid of {self.key}")
        heads = range(self.heads) if head is None else [head]
        rows = [_softmax(self.logits(i, h)) for h in heads]
        return rows[0] if len(rows) == 1 else np.mean(rows, axis=0)

    def key_cell_of(self, i: int) -> int:
        """The key index at the query's own position (same time cell when T' == T; pooled
        cells contain their query cells)."""
        T, H, W = self.grid
        t, rem = divmod(i, H * W)
        r, c = divmod(rem, W)
        kt, kh, kw = self.key_grid
        return ((t * kt // T) * kh + r * kh // H) * kw + c * kw // W


def is_spacetime(rec) -> bool:
    return isinstance(rec, SpaceTimeAffinity)
