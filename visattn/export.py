"""Export one analysis as a zip: every overlay as PNG, raw arrays as NPZ, metadata as JSON."""
from __future__ import annotations

import dataclasses
import fnmatch
import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from . import analysis, hover, render
from .render import centre_cell  # noqa: F401  (where callers have long found it)
from .records import (Affinity, AxisGate, BranchWeights, ChannelWeights, Distribute, Pairwise,
                      Segmentation, SpatialMap, Trace)


@dataclass(frozen=True)
class Query:
    """A clicked photo pixel on one affinity layer (head None = mean of heads)."""
    layer: str  # Affinity record key
    x: int
    y: int
    head: Optional[int] = None


def safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_")


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG", compress_level=1)  # 4-5x faster, ~20 % larger
    return buf.getvalue()


def _record_files(trace: Trace, rec, stem: str, cmap: str, cap: int):
    """One record -> (its PNG files, its arrays, extra meta)."""
    files, arrays, extra = {}, {}, {}
    if isinstance(rec, SpatialMap):
        files[stem + ".png"] = _png(render.spatial_view(trace, rec, cap=cap, cmap=cmap))
        arrays[rec.key] = rec.values
    elif isinstance(rec, (ChannelWeights, BranchWeights)):
        chart = render.gate_chart(rec.values, rec.value_kind, rec.key) \
            if isinstance(rec, ChannelWeights) else render.branch_chart(rec)
        files[stem + ".png"] = _png(chart)
        arrays[rec.key] = rec.values
        if isinstance(rec, ChannelWeights) and rec.top_channels is not None:
            arrays[rec.key + "/top_channels"] = rec.top_channels
            arrays[rec.key + "/top_features"] = rec.top_features
    elif isinstance(rec, AxisGate):
        files[stem + ".png"] = _png(render.axis_gate_view(rec))
        arrays[rec.key] = rec.values
        extra["axes"] = list(rec.axes)
    elif isinstance(rec, Pairwise):
        extra["heads"] = rec.heads
        if isinstance(rec, Affinity):  # TwoHop rows are made from its two hops' arrays
            arrays[rec.key + "/queries"], arrays[rec.key + "/keys"] = rec.queries, rec.keys
            extra["scale"] = rec.scale
        if isinstance(rec, Distribute):
            arrays[rec.key + "/gather"] = rec.gather
            arrays[rec.key + "/distribute"] = rec.distribute
    return files, arrays, extra


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
    png = _png(render.affinity_view(trace, rec, cell, q.head, cap=cap, cmap=cmap))
    meta = {**dataclasses.asdict(q), "cell": cell, "automatic": automatic,
            "cell_box": list(trace.geometry.cell_box(cell, rec.grid)),
            "query_dependence": analysis.query_dependence(rec, cell, q.head)}
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
    arrays: dict[str, np.ndarray] = {"image": trace.image}
    files: dict[str, bytes] = {}
    records = []
    for n, rec in enumerate(trace, 1):
        if not fnmatch.fnmatchcase(rec.key, layers):
            continue
        more, data, extra = _record_files(trace, rec, f"overlays/{n:03d}_{safe_name(rec.key)}",
                                          cmap, cap)
        files.update(more)
        arrays.update(data)
        records.append({"key": rec.key, "kind": type(rec).__name__, "family": rec.family,
                        "layer": rec.layer, "name": rec.name, "grid": list(rec.grid),
                        "stage": rec.stage, "call": rec.call, "value_kind": rec.value_kind,
                        **extra})
    if isinstance(trace.prediction, Segmentation):
        files["segmentation.png"] = _png(render.segmentation_view(trace, cap=cap))
        arrays["class_map"] = trace.prediction.class_map
    query_meta = []
    for q, automatic in _with_automatic(trace, queries, layers):
        png_name, png, row_name, row, meta = _query_files(trace, q, automatic, cmap, cap)
        files[png_name], arrays[row_name] = png, row
        query_meta.append(meta)
    npz = io.BytesIO()
    np.savez_compressed(npz, **arrays)
    meta = {
        "model": trace.model,
        "preprocess": dataclasses.asdict(trace.preprocess) if trace.preprocess else None,
        "geometry": dataclasses.asdict(trace.geometry),
        "prediction": trace.prediction.top(5) if trace.prediction else None,
        "elapsed_s": trace.elapsed_s, "notes": trace.notes,
        "records": records, "queries": query_meta,
    }
    files["arrays.npz"] = npz.getvalue()
    files["meta.json"] = json.dumps(meta, indent=2).encode()
    if viewer and any(isinstance(r, Pairwise) for r in trace):
        files["viewer.html"] = hover.viewer_html(trace, cmap=cmap).encode()
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
