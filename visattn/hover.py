"""What the page needs to draw every pairwise row itself: the hover view's payload.

Once per analysis, each pairwise record is reduced to the smallest exact inputs of its
rows (query/key embeddings and scale, BoTNet's relative-position tables, A^2's gather and
distribute matrices; a two-hop record names its two hops). `static/hover.js` mirrors each
record kind's `row()`, `Geometry`'s pixel <-> cell arithmetic, `grid_to_image`'s bilinear
resampling, and `render.overlay`'s colour lookup and blend, so a hovered row looks like the
server's `/affinity` image of the same pixel. Arrays travel as base64 little-endian
float32, or float16 where a layer's float32 inputs would pass `max_float32_bytes`.
"""
from __future__ import annotations

import base64
import dataclasses
import io
import json
from functools import lru_cache
from importlib import resources
from typing import Optional

import numpy as np
from PIL import Image

from . import render
from .analysis import reference_cells
from .records import (Affinity, CrissCross, Distribute, Pairwise, RelativePosition, SpatialMap,
                      Trace, TwoHop)

MAX_FLOAT32_BYTES = 2 * 2 ** 20  # a layer's inputs up to this size go as float32
UNSEEN_GAIN = 0.35  # render.overlay darkens pixels the model did not see by this factor


def encode(array: np.ndarray, float16: bool = False) -> dict:
    """An array as {'dtype': 'f2' | 'f4', 'shape', 'data': base64 of little-endian bytes}."""
    a = np.ascontiguousarray(array, dtype="<f2" if float16 else "<f4")
    return {"dtype": a.dtype.str[1:], "shape": list(a.shape),
            "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _arrays(rec) -> dict[str, np.ndarray]:
    """The arrays a record's rows are made of (empty for a record made of others)."""
    if isinstance(rec, Affinity):
        out = {"queries": rec.queries, "keys": rec.keys}
        if isinstance(rec.extra, RelativePosition):
            out.update(height_rel=rec.extra.height_rel, width_rel=rec.extra.width_rel)
        return out
    if isinstance(rec, Distribute):
        return {"gather": rec.gather, "distribute": rec.distribute}
    return {}


def _kind(rec) -> Optional[str]:
    """The JavaScript row function for a record, None if the page cannot mirror it."""
    if type(rec) is CrissCross:
        return "crisscross"
    if type(rec) is Affinity and (rec.extra is None or isinstance(rec.extra, RelativePosition)):
        return "affinity"
    if type(rec) is TwoHop:
        return "twohop"
    if type(rec) is Distribute:
        return "distribute"
    return None


def companion(trace: Trace, rec) -> Optional[SpatialMap]:
    """A map the block made beside its rows, shown next to them: a disentangled Non-local
    block's (DNL) unary map, one softmax over positions that every pixel adds in alike."""
    return next((r for r in trace if isinstance(r, SpatialMap) and r.layer == rec.layer
                 and r.name == "unary map"), None)


def mirrored(rec) -> bool:
    """Can the page compute this record's rows itself?"""
    return _kind(rec) is not None


def layer_payload(rec, max_float32_bytes: int = MAX_FLOAT32_BYTES) -> dict:
    """One pairwise record for the page: its kind, grid, heads, the reference cells of the
    query-dependence score, and the inputs of its rows."""
    out = {"key": rec.key, "layer": rec.layer, "name": rec.name, "family": rec.family,
           "grid": list(rec.grid), "heads": int(rec.heads),
           "refs": reference_cells(rec.grid), "kind": _kind(rec)}
    if out["kind"] is None:
        out.update(kind="server", reason=f"{type(rec).__name__} rows are not computed in the "
                                         "page; click a pixel to have the server draw its row.")
        return out
    arrays = _arrays(rec)
    made_of = _arrays(rec.first) if isinstance(rec, TwoHop) else arrays  # its hops' inputs
    float16 = sum(a.size for a in made_of.values()) * 4 > max_float32_bytes
    out["precision"] = "float16" if float16 else "float32"
    if arrays:
        out["arrays"] = {name: encode(a, float16) for name, a in arrays.items()}
    if isinstance(rec, Affinity):
        out.update(scale=float(rec.scale), extra_scaled=bool(rec.extra_scaled),
                   relative=isinstance(rec.extra, RelativePosition))
    if isinstance(rec, TwoHop):
        out.update(first=rec.first.key, second=rec.second.key)
    return out


def _png_data_url(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def payload(trace: Trace, alpha: float = 0.5, cmap: str = "jet",
            max_float32_bytes: int = MAX_FLOAT32_BYTES) -> dict:
    """Everything the hover view needs for one analysis: the photo as the server displays
    it, the Geometry, the colour lookup tables, and every pairwise layer (with the hidden
    hops of two-hop records, so each can be computed)."""
    shown = render.fit(trace.image, render.DISPLAY_CAP, enlarge=True)
    records = [r for r in trace if isinstance(r, Pairwise)]
    layers = [layer_payload(r, max_float32_bytes) for r in records]
    for layer, rec in zip(layers, records):
        beside = companion(trace, rec)
        if beside is not None and list(beside.grid) == layer["grid"]:
            layer["beside"] = {"title": "unary map (the same for every pixel)",
                               "values": encode(beside.values)}
    have = {r.key for r in records}
    for rec in records:
        for hop in ((rec.first, rec.second) if isinstance(rec, TwoHop) else ()):
            if hop.key not in have:
                layers.append({**layer_payload(hop, max_float32_bytes), "hidden": True})
                have.add(hop.key)
    return {"version": 1, "model": trace.model,
            "photo": {"src": _png_data_url(shown), "width": int(shown.shape[1]),
                      "height": int(shown.shape[0])},
            "geometry": {k: list(v) for k, v in dataclasses.asdict(trace.geometry).items()},
            "luts": {name: render.lut(name).ravel().tolist() for name in render.COLORMAPS},
            "marker": list(render.MARKER), "unseen_gain": UNSEEN_GAIN,
            "alpha": float(alpha), "cmap": cmap, "layers": layers}


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """A file of visattn/static (the page's JavaScript, CSS and HTML skeleton)."""
    return resources.files("visattn").joinpath("static", name).read_text(encoding="utf-8")


def viewer_html(trace: Trace, alpha: float = 0.5, cmap: str = "jet",
                max_float32_bytes: int = 0) -> str:
    """A self-contained page (no network) with the hover view of every pairwise layer of
    this analysis: photo and rows' inputs embedded. Float16 by default (say so)."""
    data = payload(trace, alpha, cmap, max_float32_bytes)
    doc = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    precisions = sorted({layer.get("precision", "server") for layer in data["layers"]})
    title = f"VisAttn — {trace.model}: where does each pixel look?"
    return asset("viewer.html").format(
        title=title, css=asset("hover.css"), skeleton=asset("hover.html"),
        js=asset("hover.js"), payload=doc, precision=" and ".join(precisions),
        model=trace.model, size="{}×{}".format(*trace.geometry.image_size))
