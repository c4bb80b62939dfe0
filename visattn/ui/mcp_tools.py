"""VisAttn for agents: three typed tools that Gradio's MCP server (`python app.py`, on by
default; GRADIO_MCP_SERVER=False turns it off) lists at /gradio_api/mcp/. They are JSON
endpoints (`gr.api`): numbers in, numbers out, so an agent reads the maps, not pictures.

    list_networks()                         which networks, which attention family each has
    analyze_photo(image, model, pretrained) every attention map: key, family, kind, shape, numbers
    attention_row(layer, head, x, y, analysis_id)   where photo pixel (x, y) looks

Each answers JSON text (MCP passes a tool's answer on as text). Gradio's MCP transport is
stateless (no session between calls), so analyze_photo answers an analysis_id and
attention_row reads that analysis: the last 8 analyses are kept, each for `visitors.TTL_S`
seconds. The functions `networks`, `photo_analysis` and `row_at` give the same as dicts.
"""
from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections import OrderedDict
import gradio as gr
import numpy as np

from .. import metrics, render, visitors, zoo
from ..records import Pairwise
from .common import MODEL, readable

KEEP = 8  # analyses kept for attention_row, all MCP sessions together
THUMBNAIL = 192  # px, long side of each map's picture in analyze_photo's answer
_kept: "OrderedDict[str, tuple[float, object]]" = OrderedDict()
_lock = threading.Lock()


def _families() -> str:
    """One line per attention family the registry knows: what it attends to."""
    from ..registry import entries
    seen, lines = set(), []
    for e in entries():
        f = e.family
        if f.tag in seen:
            continue
        seen.add(f.tag)
        lines.append(f"- {f.name or f.tag} ({f.tag}): {f.attends_to or e.kind}"
                     + (f"; {f.paper}" if f.paper else ""))
    return "\n".join(lines)


def _keep(key: str, trace) -> None:
    with _lock:
        now = time.monotonic()
        for k in [k for k, (t, _) in _kept.items() if now - t > visitors.TTL_S]:
            del _kept[k]
        _kept[key] = (now, trace)
        _kept.move_to_end(key)
        while len(_kept) > KEEP:
            _kept.popitem(last=False)


def _kept_trace(key: str):
    with _lock:
        if key and key in _kept:
            return _kept[key][1]
    raise gr.Error(f"No analysis {str(key)[:40]!r} here (kept: the last {KEEP}, "
                   f"{visitors.TTL_S / 60:.0f} minutes); call analyze_photo and pass the "
                   "analysis_id it answers.")


def _photo(image: str) -> bytes:
    text = (image or "").strip()
    if text.startswith("data:"):
        from ..image import bytes_from_data_url
        return bytes_from_data_url(text)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise gr.Error("image is the photo's file as a data: URL (data:image/png;base64,...) "
                       "or as plain base64; paths and web addresses are not read.") from None


def _numbers(rec) -> dict:
    """Summary numbers of one record's main array."""
    arrays = rec.arrays()
    if isinstance(rec, Pairwise):
        return {"heads": int(rec.heads), "grid": list(rec.grid), "positions": int(np.prod(rec.grid)),
                "row_of_centre_query": "use attention_row(layer, head, x, y)"}
    name, values = next(iter(arrays.items()))
    v = np.asarray(values, np.float64)
    out = {"array": name, "min": float(v.min()), "max": float(v.max()),
           "mean": float(v.mean()), "std": float(v.std())}
    if v.ndim == 1:
        top = np.argsort(-v, kind="stable")[:5]
        out["top_channels"] = [[int(i), float(v[i])] for i in top]
    elif v.ndim == 2:
        r, c = np.unravel_index(int(np.argmax(v)), v.shape)
        out["peak_cell"] = [int(r), int(c)]
    return out


def _jpeg(rgb: np.ndarray) -> str:
    from PIL import Image
    img = Image.fromarray(rgb)
    img.thumbnail((THUMBNAIL, THUMBNAIL))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def networks() -> list:
    """The networks VisAttn can analyse: for each, its name, attention family, task
    (classify or segment), paper and availability (bundled: ships with VisAttn; cached:
    weights downloaded; download: weights fetched on first use; random: no published
    weights)."""
    return [{"name": c.name, "family": c.family, "task": c.task, "paper": c.paper,
             "summary": c.summary, "availability": c.availability()} for c in zoo.cards()]


def photo_analysis(image: str, model: str = "tiny_se", pretrained: bool = True) -> dict:
    """Run one network on a photo and return every attention map it computes, in network order.

    Args:
        image: the photo file (JPEG, PNG, WebP, ...) as a data: URL or plain base64.
        model: a network name from list_networks, e.g. tiny_se, tiny_nl, cbam_resnet50.
        pretrained: published weights (True) or random ones (False; no download).

    Returns a JSON object: model; prediction (top 5 labels and probabilities); analysis_id;
    maps, one per captured record: key (layer:name, what attention_row's layer takes),
    family, kind, value_kind (gate: 0..1 multiplier; probability: sums to 1; logit;
    vector), grid, shape of each array, and summary numbers; images: each map as a small
    JPEG data: URL over the photo."""
    from ..pipeline import analyze
    if model not in {c.name for c in zoo.cards()}:
        raise gr.Error(f"unknown model {str(model)[:40]!r}; list_networks names them.")
    trace = analyze(_photo(image), model, pretrained=bool(pretrained))
    analysis_id = uuid.uuid4().hex[:12]
    _keep(analysis_id, trace)
    maps = [{"key": rec.key, "family": rec.family, "kind": type(rec).__name__,
             "value_kind": rec.value_kind, "grid": list(rec.grid) if rec.grid else None,
             "shape": {k: list(a.shape) for k, a in rec.arrays().items()},
             "summary": _numbers(rec)} for rec in trace]
    top = trace.prediction.top(5) if hasattr(trace.prediction, "top") else []
    return {"model": trace.model, "analysis_id": analysis_id,
            "prediction": [{"label": lab, "probability": float(p)} for lab, p in top],
            "maps": maps,
            "images": [{"caption": cap, "jpeg": _jpeg(rgb)} for rgb, cap in render.gallery(trace)]}


def row_at(layer: str, head: int, x: float, y: float, analysis_id: str) -> dict:
    """Where one photo pixel looks in a pairwise (Non-local, BoTNet, CCNet, DANet) layer of
    an analysis analyze_photo made: the softmax row of the query cell under (x, y).

    Args:
        layer: a map key from analyze_photo whose kind is pairwise ('' = the first such layer).
        head: the attention head, or -1 for the mean of the heads' rows.
        x: photo pixel column (0 = left), in the photo's own pixels.
        y: photo pixel row (0 = top).
        analysis_id: the analysis_id analyze_photo answered.

    Returns a JSON object: layer, head, grid (h, w), cell (the query's index, row-major),
    cell_box (photo pixels x0, y0, x1, y1), row (h*w weights summing to 1, row-major),
    peak_cell, query_dependence (bits; near 0: the row ignores the query) and nearly_uniform."""
    from .tab_nonlocal import affinity_args
    trace = _kept_trace(analysis_id)
    head_name = "" if head is None or int(head) < 0 else f"head {int(head)}"
    key, head_index, px, py = affinity_args(trace, layer, head_name, x, y)
    rec = trace[key]
    cell = trace.geometry.to_grid(px, py, rec.grid, clamp=True)
    row = rec.row(cell, head_index)
    from .. import hover
    return {"layer": key, "head": -1 if head_index is None else head_index, "x": px, "y": py,
            "grid": list(rec.grid), "cell": int(cell),
            "cell_box": list(trace.geometry.cell_box(cell, rec.grid)),
            "row": np.asarray(row, float).ravel().tolist(),
            "peak_cell": int(np.argmax(row)),
            "query_dependence": float(metrics.query_dependence(rec, cell, head_index)),
            "nearly_uniform": bool(hover.nearly_uniform(row))}


@readable
def list_networks() -> str:
    return json.dumps(networks())


@readable
def analyze_photo(image: str, model: str = "tiny_se", pretrained: bool = True) -> str:
    return json.dumps(photo_analysis(image, model, pretrained))


@readable
def attention_row(layer: str, head: int, x: float, y: float, analysis_id: str) -> str:
    return json.dumps(row_at(layer, head, x, y, analysis_id))


for _tool, _fn in ((list_networks, networks), (analyze_photo, photo_analysis), (attention_row, row_at)):
    _tool.__doc__ = _fn.__doc__.replace("Returns a JSON object", "Returns JSON text")


def register() -> None:
    """The three tools as API endpoints of the Blocks being built (inside `with Blocks`);
    Gradio's MCP server lists every public endpoint as a tool."""
    if "Attention families" not in analyze_photo.__doc__:
        analyze_photo.__doc__ = analyze_photo.__doc__.replace(
            "Run one network", "Attention families VisAttn captures:\n" + _families()
            + "\n\nRun one network", 1)
    gr.api(list_networks, api_name="list_networks", concurrency_id="view", concurrency_limit=8)
    gr.api(analyze_photo, api_name="analyze_photo", **MODEL)
    gr.api(attention_row, api_name="attention_row", concurrency_id="view", concurrency_limit=8)
