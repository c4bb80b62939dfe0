"""Export one analysis as a zip or a folder: every record's picture as PNG, the Trace itself
as arrays.npz (visattn.load reads it back; the rows of the queries are stored beside it),
metadata as JSON, and the offline hover view."""
from __future__ import annotations

import dataclasses
import fnmatch
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Optional, Sequence

from . import hover, metrics, names, render, trace_file
from .render import centre_cell  # noqa: F401  (where callers have long found it)
from .records import Pairwise, Segmentation, Trace, view_of


MAX_PINS = 50  # pinned queries kept per analysis (the oldest go first)


@dataclass(frozen=True)
class Query:
    """A clicked photo pixel on one affinity layer (head None = mean of heads)."""
    layer: str  # Affinity record key
    x: int
    y: int
    head: Optional[int] = None
    frame: Optional[int] = None  # a clip's frame (index into trace.clip.frames); None for photos


def outside_photo(x: float, y: float, size: tuple[int, int]) -> Optional[str]:
    """None for a pixel inside a photo of `size` (W, H), else the sentence saying where
    pixels are (the app's and the command line's refusal)."""
    w, h = size
    if 0 <= x < w and 0 <= y < h:
        return None
    return (f"({x:g}, {y:g}) is outside the {w}×{h} photo: x from 0 to {w - 1}, "
            f"y from 0 to {h - 1}.")


def pin(queries: Sequence[Query], query: Query) -> list[Query]:
    """The pinned queries with `query` last: no repeat, at most MAX_PINS."""
    return [q for q in queries if q != query][-(MAX_PINS - 1):] + [query]


def safe_name(key: str) -> str:
    """A record key as one safe file name (names.safe_name)."""
    return names.safe_name(key, "record")


def _record_meta(rec) -> dict:
    """meta.json's line of a record: what it is and its scalars (arrays are in arrays.npz)."""
    out = {"key": rec.key, "kind": type(rec).__name__, "family": rec.family,
           "layer": rec.layer, "name": rec.name, "grid": list(rec.grid), "stage": rec.stage,
           "call": rec.call, "value_kind": rec.value_kind}
    if view_of(rec) == "pairwise":
        out["heads"] = rec.heads
    for name in ("axes", "scale"):
        if hasattr(rec, name):
            value = getattr(rec, name)
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _with_automatic(trace: Trace, queries: Sequence[Query], layers: str) -> list[tuple[Query, bool]]:
    """The queries without repeats, in order; a pairwise layer nobody queried gets its
    centre cell's pixel, marked automatic."""
    out = [(q, False) for q in dict.fromkeys(queries)]
    asked = {q.layer for q in queries}
    for rec in trace:
        if isinstance(rec, Pairwise) and rec.key not in asked and fnmatch.fnmatchcase(rec.key, layers):
            x, y = trace.geometry.cell_centre(centre_cell(rec), rec.grid)
            out.append((Query(rec.key, x, y), True))
    return out


def _query_files(trace: Trace, q: Query, automatic: bool, cmap: str, cap: int):
    """One query -> (PNG name, PNG, row name, row, meta)."""
    rec = trace[q.layer]
    cell = trace.geometry.to_grid(q.x, q.y, rec.grid, clamp=True)
    tag = f"x{q.x}_y{q.y}" + (f"_head{q.head}" if q.head is not None else "")
    png = render.png_bytes(render.affinity_view(trace, rec, cell, q.head, cap=cap, cmap=cmap))
    meta = {**dataclasses.asdict(q), "cell": cell, "automatic": automatic,
            "cell_box": list(trace.geometry.cell_box(cell, rec.grid)),
            "query_dependence": metrics.query_dependence(rec, cell, q.head)}
    return (f"queries/{safe_name(q.layer)}_{tag}.png", png, f"{q.layer}/row_{tag}",
            rec.row(cell, q.head), meta)


def export_files(trace: Trace, queries: Sequence[Query] = (), cmap: str = "jet",
                 layers: str = "*", viewer: bool = False) -> dict[str, bytes]:
    """Every export file by relative path: overlays/*.png (network order), queries/*.png
    (each query once; a pairwise layer without one gets its centre pixel, marked automatic
    in meta.json), segmentation.png, arrays.npz, meta.json, and with `viewer` viewer.html
    (the hover view of every pairwise layer in one offline file). Maps on the photo are at
    the photo's own size. `layers` is a shell pattern on record keys."""
    cap = max(trace.image.shape[:2])
    kept = [rec for rec in trace if fnmatch.fnmatchcase(rec.key, layers)]
    files: dict[str, bytes] = {}
    for n, rec in enumerate(trace, 1):
        picture = render.picture(trace, rec, cap, cmap) \
            if fnmatch.fnmatchcase(rec.key, layers) else None
        if picture is not None:
            files[f"overlays/{n:03d}_{safe_name(rec.key)}.png"] = render.png_bytes(picture)
    if isinstance(trace.prediction, Segmentation):
        files["segmentation.png"] = render.png_bytes(render.segmentation_view(trace, cap=cap))
    rows, query_meta = {}, []
    for q, automatic in _with_automatic(trace, queries, layers):
        png_name, png, row_name, row, meta = _query_files(trace, q, automatic, cmap, cap)
        files[png_name], rows[row_name] = png, row
        query_meta.append(meta)
    meta = {
        "model": trace.model,
        "preprocess": dataclasses.asdict(trace.preprocess) if trace.preprocess else None,
        "geometry": dataclasses.asdict(trace.geometry),
        "prediction": trace.prediction.top(5) if trace.prediction else None,
        "elapsed_s": trace.elapsed_s, "notes": trace.notes,
        "records": [_record_meta(rec) for rec in kept], "queries": query_meta,
    }
    files["arrays.npz"] = trace_file.to_bytes(dataclasses.replace(trace, records=kept), rows)
    files["meta.json"] = json.dumps(meta, indent=2).encode()
    if viewer and any(isinstance(r, Pairwise) for r in trace):
        files["viewer.html"] = hover.viewer_html(trace, cmap=cmap, pins=queries).encode()
    return files


def export_zip(trace: Trace, queries: Sequence[Query] = (), cmap: str = "jet") -> bytes:
    """All of export_files in one zip (the app's download), with viewer.html."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in export_files(trace, queries, cmap, viewer=True).items():
            zf.writestr(name, data)
    return out.getvalue()


def export_folder(trace: Trace, folder, queries: Sequence[Query] = (), cmap: str = "jet",
                  layers: str = "*", viewer: bool = False) -> list:
    """All of export_files written under `folder` (the command line's output)."""
    from pathlib import Path
    written = []
    for name, data in export_files(trace, queries, cmap, layers, viewer).items():
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written
