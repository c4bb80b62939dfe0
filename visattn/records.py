"""What a forward pass leaves behind: one record per attention quantity, and the Trace.

Records hold plain float32 numpy arrays (no torch, no autograd), so they can live in a
Gradio session, be pickled and be written to NPZ. `Affinity` is lazy: it keeps the query
and key embeddings and computes one softmax row per request; the N x N matrix is never
built.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import (ClassVar, Iterator, Literal, Optional, Protocol, Sequence, TypeVar, Union,
                    runtime_checkable)

import numpy as np

from .geometry import Geometry, Grid

ValueKind = Literal["gate", "logit", "probability", "vector"]
# gate: in (0, 1), multiplies features; logit: before a sigmoid; probability: sums to 1
# over positions or branches; vector: an additive term (unbounded).

View = Literal["channel", "spatial", "branch", "axes", "channel_affinity", "pairwise", "custom"]

KINDS: dict[str, type] = {}  # every record kind and part a saved Trace may hold, by name


def kind_name(cls: type) -> str:
    """The name a kind is saved under: the class name for VisAttn's own, module:qualname
    for anyone else's."""
    own = cls.__module__.startswith(__package__ + ".") if __package__ else False
    return cls.__name__ if own else f"{cls.__module__}:{cls.__qualname__}"


def register_kind(cls: type) -> type:
    """Make a dataclass savable inside a Trace (records register themselves; a record's
    nested part, such as RelativePosition, registers with this decorator)."""
    KINDS.setdefault(kind_name(cls), cls)
    return cls


@dataclass(frozen=True, kw_only=True, eq=False)
class Record:
    """One attention quantity of one call of one block. Subclasses hold float32 numpy
    arrays whose shapes their docstrings state."""
    layer: str  # module path of the attention block, e.g. "layer3.2.se"
    family: str  # "SE", "ECA", "CBAM", "BAM", "GC", "SK", "ResNeSt", "Non-local", "BoT", ...
    name: str  # what this quantity is, e.g. "channel gate", "spatial gate"
    grid: Grid  # (H, W) of the feature map this block attends over
    stage: Optional[int] = None  # 1-based network stage parsed from the layer path
    call: int = 0  # which call of the block within one forward (blocks run twice, e.g. CCNet)

    # The contract of a kind, said once. What it is made of: its dataclass fields (arrays,
    # scalars, nested parts and other records), read by `arrays()` and by trace_file's
    # save/load. How it is drawn: `view` picks the drawing in render, export and the tabs
    # (a subclass draws as its parent); `page_row` names the page's JavaScript row function
    # that mirrors `row()` (None: the page asks the server), read on the exact class only,
    # never inherited by a user's subclass that may compute its rows differently.
    view: ClassVar[View] = "custom"
    page_row: ClassVar[Optional[str]] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_kind(cls)

    def page_kind(self) -> Optional[str]:
        """The page's row function for this record, None if the page cannot mirror it."""
        return type(self).__dict__.get("page_row")

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays this record is made of, by field name; a nested part's arrays by
        their own field names; none for the records it is made of (a TwoHop's hops)."""
        out: dict[str, np.ndarray] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                out[f.name] = value
            elif dataclasses.is_dataclass(value) and not isinstance(value, Record):
                out.update((g.name, getattr(value, g.name)) for g in dataclasses.fields(value)
                           if isinstance(getattr(value, g.name), np.ndarray))
        return out

    @property
    def key(self) -> str:
        """Unique within a Trace: 'layer:name', with '#call' for repeated calls."""
        return f"{self.layer}:{self.name}" + (f"#{self.call}" if self.call else "")

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))


@dataclass(frozen=True, kw_only=True, eq=False)
class ChannelWeights(Record):
    """One weight per channel, (C,). Where the block's input is known, the feature maps of
    the top channels (highest weight first) are kept too: `top_channels` (k,), indices
    into C, and `top_features` (k, H, W), the block input at those channels."""
    view: ClassVar[View] = "channel"
    values: np.ndarray
    value_kind: ValueKind = "gate"
    top_channels: Optional[np.ndarray] = None
    top_features: Optional[np.ndarray] = None

    def __post_init__(self):
        _check_ndim(self, 1)


@dataclass(frozen=True, kw_only=True, eq=False)
class SpatialMap(Record):
    """One value per position of the feature grid, (H, W)."""
    view: ClassVar[View] = "spatial"
    values: np.ndarray
    value_kind: ValueKind = "gate"

    def __post_init__(self):
        _check_ndim(self, 2)


@dataclass(frozen=True, kw_only=True, eq=False)
class BranchWeights(Record):
    """Per-channel selection among K branches (SK kernels, ResNeSt splits), (K, C);
    sums to 1 over K."""
    view: ClassVar[View] = "branch"
    values: np.ndarray
    value_kind: ValueKind = "probability"

    def __post_init__(self):
        _check_ndim(self, 2)


class LogitTerm(Protocol):
    """An extra additive term of an affinity's logits for one query (relative positions,
    masks). Returns (H, W) logits for the query at cell (r, c) with embedding q."""

    def logits(self, q: np.ndarray, r: int, c: int, grid: Grid) -> np.ndarray: ...


@register_kind
@dataclass(frozen=True, eq=False)
class RelativePosition:
    """BoTNet/HaloNet-style relative position logits: for query (r, c) and key (r', c'),
    q . height_rel[r' - r + H - 1] + q . width_rel[c' - c + W - 1]."""
    height_rel: np.ndarray  # (2H - 1, d)
    width_rel: np.ndarray  # (2W - 1, d)

    def logits(self, q: np.ndarray, r: int, c: int, grid: Grid) -> np.ndarray:
        h, w = grid
        rows = self.height_rel[h - 1 - r: 2 * h - 1 - r] @ q  # (H,)
        cols = self.width_rel[w - 1 - c: 2 * w - 1 - c] @ q  # (W,)
        return rows[:, None] + cols[None, :]


@dataclass(frozen=True, kw_only=True, eq=False)
class Affinity(Record):
    """Pairwise attention over the grid: row i, (H, W), is where position i looks;
    queries and keys (heads, N, d) with N = H * W.

    logits_i = scale * keys q_i  (+ extra.logits(q_i))      (times scale too if extra_scaled)
    row_i    = softmax(logits_i) over all N = H * W keys.
    """
    view: ClassVar[View] = "pairwise"
    page_row: ClassVar[Optional[str]] = "affinity"
    queries: np.ndarray  # (heads, N, d)
    keys: np.ndarray  # (heads, N, d)
    scale: float
    extra: Optional[LogitTerm] = None
    extra_scaled: bool = False  # BoTNet with scale_pos_embed: scale * (qk + rel)
    value_kind: ValueKind = "probability"

    def __post_init__(self):
        n = self.grid[0] * self.grid[1]
        q, k = self.queries, self.keys
        if q.ndim != 3 or q.shape[1] != n or k.shape[:2] != q.shape[:2]:
            raise ValueError(f"{self.key}: queries {q.shape} / keys {k.shape} "
                             f"do not fit a {self.grid} grid")

    @property
    def heads(self) -> int:
        return self.queries.shape[0]

    def page_kind(self) -> Optional[str]:
        """Mirrored in the page without an extra term or with relative positions only."""
        mirrored = self.extra is None or type(self.extra) is RelativePosition
        return super().page_kind() if mirrored else None

    def logits(self, i: int, head: int) -> np.ndarray:
        """(H, W) pre-softmax logits of query cell i for one head."""
        h, w = self.grid
        q = self.queries[head, i]
        out = (self.keys[head] @ q).reshape(h, w)
        if self.extra is None:
            return out * self.scale
        extra = self.extra.logits(q, *divmod(i, w), self.grid)
        return (out + extra) * self.scale if self.extra_scaled else out * self.scale + extra

    def row(self, i: int, head: Optional[int] = None) -> np.ndarray:
        """(H, W) softmax row of query cell i; with several heads and head=None, the mean
        of the heads' rows (still sums to 1)."""
        n = self.grid[0] * self.grid[1]
        if not 0 <= i < n:
            raise IndexError(f"cell {i} is outside the {self.grid} grid of {self.key}")
        heads = range(self.heads) if head is None else [head]
        rows = [_softmax(self.logits(i, h)) for h in heads]
        return rows[0] if len(rows) == 1 else np.mean(rows, axis=0)


@dataclass(frozen=True, kw_only=True, eq=False)
class CrissCross(Affinity):
    """Criss-cross attention (CCNet): the query at (r, c) attends over its column and its
    row only (itself once), one softmax over those H + W - 1 cells. Rows are computed on
    the cross alone, O((H + W) d); the (H, W) row is zero off the cross."""
    view: ClassVar[View] = "pairwise"
    page_row: ClassVar[Optional[str]] = "crisscross"

    def logits(self, i: int, head: int) -> np.ndarray:
        h, w = self.grid
        r, c = divmod(i, w)
        q = self.queries[head, i]
        keys = self.keys[head].reshape(h, w, -1)
        out = np.full((h, w), -np.inf, np.float32)
        out[:, c] = keys[:, c] @ q * self.scale
        out[r, :] = keys[r, :] @ q * self.scale
        return out


@dataclass(frozen=True, kw_only=True, eq=False)
class TwoHop(Record):
    """Where a query reaches through two stacked sparse attentions (CCNet's recurrence):
    row_i = sum_j second.row(i)[j] * first.row(j), an (H, W) distribution. Lazy; the
    second hop's row is sparse (a cross), so a row costs (H + W) first-hop rows."""
    view: ClassVar[View] = "pairwise"
    page_row: ClassVar[Optional[str]] = "twohop"
    first: Affinity
    second: Affinity
    value_kind: ValueKind = "probability"

    @property
    def heads(self) -> int:
        return 1

    @property
    def nbytes(self) -> int:
        return 0  # shares the embeddings of its two hops

    def row(self, i: int, head: Optional[int] = None) -> np.ndarray:
        via = self.second.row(i).ravel()
        out = np.zeros(self.grid, np.float64)
        for j in np.flatnonzero(via):
            out += via[j] * self.first.row(int(j))
        return out.astype(np.float32)


@dataclass(frozen=True, kw_only=True, eq=False)
class AxisGate(Record):
    """A gate over two axes that are not the feature grid (Triplet attention's C x W and
    H x C branches): values (A, B) with axes naming them, e.g. ("C", "W")."""
    view: ClassVar[View] = "axes"
    values: np.ndarray
    axes: tuple[str, str]
    value_kind: ValueKind = "gate"

    def __post_init__(self):
        _check_ndim(self, 2)


@dataclass(frozen=True, kw_only=True, eq=False)
class ChannelAffinity(AxisGate):
    """A channel x channel affinity (DANet's channel attention): values (A, B) with
    A = B = C, an AxisGate over ("C", "C"); row c the weights (summing to 1) with which
    channel c takes its features from every channel.
    Drawn as a matrix with labelled axes and its strongest pairs, never as a gate chart or
    as feature maps."""
    view: ClassVar[View] = "channel_affinity"
    axes: tuple[str, str] = ("C", "C")
    value_kind: ValueKind = "probability"

    def strongest(self, count: int = 8, off_diagonal: bool = True) -> list[tuple[int, int, float]]:
        """The `count` largest entries as (row channel, column channel, weight), strongest
        first; `off_diagonal`: a channel with itself left out."""
        values = self.values.astype(np.float64)
        if off_diagonal and values.shape[0] == values.shape[1]:
            values = values.copy()
            np.fill_diagonal(values, -np.inf)
        flat = np.argsort(-values, axis=None, kind="stable")[:count]
        rows, cols = np.unravel_index(flat, values.shape)
        return [(int(r), int(c), float(self.values[r, c])) for r, c in zip(rows, cols)
                if np.isfinite(values[r, c])]


@dataclass(frozen=True, kw_only=True, eq=False)
class Distribute(Record):
    """A^2-Nets double attention as (H, W) rows from gather and distribute, (n, N) each:
    position i takes descriptor k with weight
    distribute[k, i], and descriptor k gathered position j with weight gather[k, j], so
    row_i = distribute[:, i] @ gather, a distribution over all positions (rank <= n)."""
    view: ClassVar[View] = "pairwise"
    page_row: ClassVar[Optional[str]] = "distribute"
    gather: np.ndarray  # (n, N), each row sums to 1 over positions
    distribute: np.ndarray  # (n, N), each column sums to 1 over descriptors
    value_kind: ValueKind = "probability"

    @property
    def heads(self) -> int:
        return 1

    def row(self, i: int, head: Optional[int] = None) -> np.ndarray:
        n_pos = self.grid[0] * self.grid[1]
        if not 0 <= i < n_pos:
            raise IndexError(f"cell {i} is outside the {self.grid} grid of {self.key}")
        return (self.distribute[:, i] @ self.gather).reshape(self.grid)


@runtime_checkable
class Pairwise(Protocol):
    """A record that gives a row per query cell: where position i looks, a distribution
    over the grid. `Affinity`, `CrissCross`, `TwoHop` and `Distribute` are Pairwise, and
    so is any record type of a user that has these members:
    `isinstance(rec, Pairwise)` selects the clickable records of a Trace."""
    grid: Grid  # (H, W)
    key: str

    @property
    def heads(self) -> int: ...

    def row(self, i: int, head: Optional[int] = None) -> np.ndarray:
        """(H, W) row of query cell i (0 <= i < H * W), summing to 1; head=None: the mean
        of the heads' rows."""
        ...


def __getattr__(name: str):
    """PAIRWISE, the old tuple of row-giving record types, is deprecated: it misses a user's
    own Pairwise records."""
    if name == "PAIRWISE":
        import warnings
        warnings.warn("visattn.records.PAIRWISE is deprecated; use isinstance(rec, Pairwise)",
                      DeprecationWarning, stacklevel=2)
        return (Affinity, TwoHop, Distribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def view_of(rec) -> View:
    """How a record is drawn: its kind's `view`; "pairwise" for any record that gives rows
    (a user's Pairwise that is not a Record included)."""
    view = getattr(rec, "view", "custom")
    return "pairwise" if view == "custom" and isinstance(rec, Pairwise) else view


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _check_ndim(rec: Record, ndim: int) -> None:
    if rec.values.ndim != ndim:
        raise ValueError(f"{type(rec).__name__} {rec.key} needs {ndim}-D values, "
                         f"got shape {rec.values.shape}")


@register_kind
@dataclass(frozen=True)
class Prediction:
    """Class probabilities of a classifier, (num_classes,), with their names."""
    probs: np.ndarray
    labels: Sequence[str]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        idx = np.argsort(-self.probs)[:k]
        return [(self.labels[i] if i < len(self.labels) else str(i), float(self.probs[i]))
                for i in idx]


@register_kind
@dataclass(frozen=True)
class Segmentation:
    """Per-pixel classes of a segmentation network on the photo (or a scaled view of it):
    class_map (H, W) int16, -1 where the model did not look; for a clip, (T, H, W), one map
    per frame the network saw."""
    class_map: np.ndarray
    labels: Sequence[str]
    palette: Optional[np.ndarray] = None  # (K, 3) uint8 RGB

    def shares(self) -> np.ndarray:
        seen = self.class_map[self.class_map >= 0]
        return np.bincount(seen, minlength=len(self.labels)) / max(1, seen.size)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The classes covering most of the photo (or clip), with their share of its pixels."""
        share = self.shares()
        idx = [i for i in np.argsort(-share)[:k] if share[i] > 0]
        return [(self.labels[i], float(share[i])) for i in idx]


R = TypeVar("R", bound=Record)


@dataclass
class Trace:
    """Everything one analysis captured, records in network order."""
    model: str
    records: list[Record]
    geometry: Geometry
    prediction: Optional[Union[Prediction, Segmentation]] = None
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    image: Optional[np.ndarray] = None  # the RGB image analysed, (H0, W0, 3) uint8
    preprocess: Optional[object] = None  # the Preprocess that made the model input
    clip: Optional[object] = None  # a video's frames and sampling (records_video.Clip)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> Record:
        for rec in self.records:
            if rec.key == key:
                return rec
        raise KeyError(f"no record {key!r}; have {[r.key for r in self.records][:8]}...")

    def select(self, kind: type[R] = Record, layer: str = "*", name: str = "*") -> list[R]:
        """Records of a kind whose layer path and name match shell-style patterns."""
        return [r for r in self.records if isinstance(r, kind)
                and fnmatch.fnmatchcase(r.layer, layer) and fnmatch.fnmatchcase(r.name, name)]

    @property
    def nbytes(self) -> int:
        """Bytes held by the records (not the image)."""
        return sum(r.nbytes for r in self.records)
