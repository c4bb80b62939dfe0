"""What the page needs to draw every pairwise row itself: the hover view's payload.

Each pairwise record is reduced to the smallest exact inputs of its rows (query/key
embeddings and scale, BoTNet's relative-position tables, A^2's gather and distribute
matrices; a two-hop record names its two hops). The page gets them per layer, when the
layer is opened: the first message (`payload`, fields `SCHEMA`) holds the photo or clip,
every layer's description and the inputs of the layer shown first; the others' inputs come
in a layers message (`layer_inputs`, fields `LAYERS_SCHEMA`) when the visitor picks one
(all of them when the all-layers view is opened), once per layer per analysis. Version
`SCHEMA_VERSION`; this is the one place that says what the fields are.

The page's JavaScript, `script()`, is three files of visattn/static loaded in order:
  hover_math.js   no page needed (also a Node module): `Geometry`'s pixel <-> cell arithmetic,
                  each record kind's `row()`, `metrics.query_dependence`, `nearly_uniform`,
                  and the newest payload version it understands
  hover_paint.js  `grid_to_image`'s bilinear resampling, `render.overlay`'s colour lookup and
                  blend, `render.draw_box`: a hovered row looks like the server's `/affinity`
                  image of the same pixel
  hover.js        the view: controls, pointer and keys, its info text, mounting in Gradio or
                  in viewer.html; it refuses a payload newer than it understands, saying so
"""
from __future__ import annotations

import base64
import dataclasses
import html
import json
from functools import lru_cache
from importlib import resources
from typing import Optional

import numpy as np

from . import render
from .metrics import reference_cells
from .records import Affinity, Pairwise, RelativePosition, SpatialMap, Trace, TwoHop
from .records_video import SpaceTimeAffinity

MAX_FLOAT32_BYTES = 2 ** 18  # a layer's inputs up to 256 kB go as float32, larger ones as
#                             float16 where their rows stay within FLOAT16_ROW_TOLERANCE (BoTNet's
#                             first layer: 560 kB, 20-25 ms of the wait after Analyse)
UNSEEN_GAIN = 0.35  # render.overlay darkens pixels the model did not see by this factor
NEARLY_UNIFORM = 0.01  # a row is nearly uniform when max - min < this fraction of its max
FLOAT16_ROW_TOLERANCE = 2e-3  # float16 only where the rows stay this close (of the row max)
CLIP_ROW_PX = render.DISPLAY_CAP  # a clip's frames are shown this wide together, per row of the grid (as a photo)
CLIP_COLUMNS = 8  # at most this many frames per row
EXACT_PIXELS = 256 * 256  # photos (or frames) sent with up to this many pixels go as PNG,
# larger ones as JPEG (render.JPEG_QUALITY): a 640x480 photo 526 -> 77 kB, encoded in 1 ms
# instead of 13 (rows, the colour tables and the blend stay exact)
SCRIPTS = ("hover_math.js", "hover_paint.js", "hover.js")  # the page's JavaScript, in order

SCHEMA_VERSION = 6  # raise when a field is removed or changes meaning; hover_math.js's
#                     PAYLOAD_VERSION says the newest it understands

# The payload, field by field, "type: meaning"; a dict is an object, [dict] a list of them,
# a name ending in "?" is there only where its meaning says, "*" stands for any name, and
# "array ..." is an `encode`d array, the object ARRAY.
ARRAY = {"dtype": "'f4' | 'f2' | 'u1': float32, float16 or uint8",
         "shape": "[int]: the array's shape",
         "data": "str: base64 of its little-endian bytes, row-major"}
SCHEMA = {
    "version": "int: SCHEMA_VERSION of the code that made it",
    "model": "str: the network's name",
    "analysis?": "str: this analysis' token: the page names it when it asks for more layers, "
                 "and takes a layers message (LAYERS_SCHEMA) only for it",
    "photo": {"src": "str: data: URL of the photo as the server shows it (render.fit to "
                     "render.DISPLAY_CAP, enlarged when small): a PNG (exact) up to "
                     "EXACT_PIXELS pixels sent or when asked for (exact_photo), else a JPEG of "
                     "quality render.JPEG_QUALITY; an image smaller than width x height is the photo "
                     "before its enlargement, which the page enlarges as render.fit does "
                     "(nearest neighbour, OpenCV's mapping)",
              "width": "int: its width in pixels as shown",
              "height": "int: its height in pixels as shown"},
    "geometry": {"image_size": "[W0, H0]: the original photo's size (Geometry)",
                 "resized": "[Wr, Hr]: the whole photo after resizing",
                 "offset": "[ox, oy]: top-left of the model input in resized pixels",
                 "input_size": "[Win, Hin]: the model input's size"},
    "luts": {"*": "array u1 (256, 3): render.lut(name), RGB rows, for each name of "
                  "render.COLORMAPS (an array, not a list of numbers: Gradio's page copies a "
                  "value's lists number by number on every status change)"},
    "marker": "[r, g, b]: render.MARKER, the colour of the query cell's outline",
    "unseen_gain": "float: UNSEEN_GAIN, how much render.overlay darkens unseen pixels",
    "nearly_uniform": "float: NEARLY_UNIFORM, the spread (max - min over max) under which a "
                      "row is called nearly uniform",
    "alpha": "float: opacity of the row over the photo, 0..1",
    "cmap": "str: the colour map to start with, a key of luts",
    "clip?": {"frames": "[str]: data: URLs, the clip's sampled frames as shown (each "
                        "render.fit to CLIP_ROW_PX / columns, enlarged when small; photo is the first; "
                        "PNG or JPEG and a smaller image enlarged by the page, as photo.src)",
              "width": "int: a shown frame's width in pixels",
              "height": "int: a shown frame's height in pixels",
              "columns": "int: frames per row of the view's grid",
              "indices": "[int]: the decoded frame number of each (the sampling)",
              "fps": "float: the source's frames per second, 0 when unknown"},
    "pins?": [{"layer": "str: a layer's key", "head": "int | null: the head, null the mean",
               "x": "int", "y": "int: the pinned photo pixel (export.Query), in pinning order",
               "frame?": "int: the pinned pixel's frame of a clip"}],
    "layers": [{
        "key": "str: the record's key in the trace (trace[key])",
        "layer": "str: the module it was captured from",
        "name": "str: the record's name",
        "title?": "str: the layer as the view names it (render.shown_name): the pass of a block "
                  "called more than once",
        "family": "str: the attention family",
        "grid": "[h, w]: the query/key grid; a row is h * w long, row-major; [T, h, w] (kind "
                "spacetime): the query grid of a clip, time cells tiling the frames uniformly",
        "key_grid?": "[T', h', w'] (kind spacetime): the keys the block uses (pooled keys stay "
                     "pooled); a row is T' * h' * w' long, time cell t' covering frames "
                     "[t' * F // T', (t' + 1) * F // T') of F",
        "heads": "int: attention heads (several: a row per head, or their mean)",
        "refs": "[int]: metrics.reference_cells(grid), the cells query dependence compares with",
        "centre_cell": "int: render.centre_cell, the query shown before anyone points",
        "kind": "'affinity' | 'crisscross' | 'twohop' | 'distribute' | 'spacetime' | 'server': the row "
                "function the page uses; 'server': the page cannot compute these rows",
        "reason?": "str (kind server): why, said in the view",
        "pending?": "true: its row inputs (precision, arrays, beside) are not in this message; "
                    "the page asks for them (a layers message, LAYERS_SCHEMA) when it is opened",
        "precision?": "'float32' | 'float16' (kind not server, not pending): how its (or its "
                      "hops') arrays travel; float16 only where the float32 inputs pass "
                      "MAX_FLOAT32_BYTES and rows stay within FLOAT16_ROW_TOLERANCE of their maximum",
        "arrays?": {"queries?": "array (heads, h*w, d) (affinity, crisscross); (heads, T*h*w, d) "
                                "(spacetime)",
                    "keys?": "array (heads, h*w, d) (affinity, crisscross); (heads, T'*h'*w', d) "
                             "(spacetime)",
                    "height_rel?": "array (2h - 1, d) when relative",
                    "width_rel?": "array (2w - 1, d) when relative",
                    "gather?": "array (m, h*w) (distribute): row_i = distribute[:, i] @ gather",
                    "distribute?": "array (m, h*w) (distribute)"},
        "scale?": "float (affinity, crisscross, spacetime): logits = scale * keys q",
        "extra_scaled?": "bool (affinity, crisscross): relative logits are scaled too",
        "relative?": "bool (affinity, crisscross): height_rel and width_rel add BoTNet's "
                     "relative-position logits",
        "first?": "str (twohop): key of the first hop's layer",
        "second?": "str (twohop): key of the second hop's layer",
        "hidden?": "true: a two-hop record's hop that the trace does not list, sent only to "
                   "compute the two-hop rows",
        "beside?": {"title": "str: caption of a map the block made beside its rows (DNL's "
                             "unary map), drawn beside them",
                    "values": "array (h, w)"},
    }],
}
# The answer to the page's request for more layers (ui.tab_nonlocal): full layers, never pending.
LAYERS_SCHEMA = {
    "version": SCHEMA["version"],
    "layers_of": "str: the analysis token (SCHEMA's analysis) these layers belong to",
    "layers": SCHEMA["layers"],
}


def encode(array: np.ndarray, float16: bool = False) -> dict:
    """An array as {'dtype': 'f2' | 'f4' | 'u1', 'shape', 'data': base64 of little-endian
    bytes}: uint8 stays uint8, anything else becomes float32 (float16 if asked)."""
    a = np.ascontiguousarray(array, dtype="u1" if array.dtype == np.uint8 else
                             "<f2" if float16 else "<f4")
    return {"dtype": a.dtype.str[1:], "shape": list(a.shape),
            "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _arrays(rec) -> dict[str, np.ndarray]:
    """The arrays a mirrored record's rows are made of, as its kind declares them
    (records.Record.arrays; empty for a record made of others)."""
    return rec.arrays() if _kind(rec) is not None else {}


def _kind(rec) -> Optional[str]:
    """The JavaScript row function for a record (its kind's `page_row`), None if the page
    cannot mirror it."""
    page_kind = getattr(rec, "page_kind", None)
    return page_kind() if page_kind is not None else None


def nearly_uniform(row: np.ndarray) -> bool:
    """Is a row nearly uniform: its spread under NEARLY_UNIFORM of a positive maximum? (Its
    colours then stretch tiny differences; colours from 0 show it as it is.)"""
    hi, lo = float(np.max(row)), float(np.min(row))
    return hi > 0 and (hi - lo) / hi < NEARLY_UNIFORM


def companion(trace: Trace, rec) -> Optional[SpatialMap]:
    """A map the block made beside its rows, shown next to them: a disentangled Non-local
    block's (DNL) unary map, one softmax over positions that every pixel adds in alike."""
    return next((r for r in trace if isinstance(r, SpatialMap) and r.layer == rec.layer
                 and r.name == "unary map"), None)


def mirrored(rec) -> bool:
    """Can the page compute this record's rows itself?"""
    return _kind(rec) is not None


def _rounded(part):
    """A record (or a part of one, e.g. RelativePosition) with every array rounded to
    float16 and back, as the page decodes it; the records it is made of rounded too."""
    changes = {}
    for f in dataclasses.fields(part):
        value = getattr(part, f.name)
        if isinstance(value, np.ndarray):
            changes[f.name] = value.astype(np.float16).astype(value.dtype)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = _rounded(value)
    return dataclasses.replace(part, **changes)


def float16_rows_error(rec) -> float:
    """The largest difference, over the reference queries' rows (metrics.reference_cells)
    and heads, between the rows from float16-rounded inputs and the record's own, as a
    fraction of each row's maximum."""
    rough, worst = _rounded(rec), 0.0
    for cell in reference_cells(rec.grid):
        for head in range(rec.heads):
            exact = rec.row(cell, head).astype(np.float64)
            got = rough.row(cell, head).astype(np.float64)
            worst = max(worst, float(np.max(np.abs(exact - got)) / np.max(exact)))
    return worst


def _float16(rec, max_float32_bytes: int) -> bool:
    """Do this record's inputs travel as float16: larger than max_float32_bytes as float32,
    and rows within FLOAT16_ROW_TOLERANCE of their maximum from float16 inputs?"""
    made_of = rec.first if isinstance(rec, TwoHop) else rec  # a two-hop: as its hops
    size = sum(a.size for a in made_of.arrays().values()) * 4
    return size > max_float32_bytes and float16_rows_error(made_of) <= FLOAT16_ROW_TOLERANCE


def _description(rec) -> dict:
    """What the page knows of a layer before its inputs: kind, grids, heads, the reference
    cells of the query-dependence score, its scalars and the hops it is made of."""
    out = {"key": rec.key, "layer": rec.layer, "name": rec.name, "family": rec.family,
           "grid": list(rec.grid), "heads": int(rec.heads), "refs": reference_cells(rec.grid),
           "kind": _kind(rec)}
    if isinstance(rec, SpaceTimeAffinity):
        t_n, h, w = rec.grid
        out.update(centre_cell=((t_n // 2) * h + h // 2) * w + w // 2,
                   key_grid=list(rec.key_grid), scale=float(rec.scale))
        return out
    out["centre_cell"] = render.centre_cell(rec)
    if out["kind"] is None:
        out.update(kind="server", reason=f"{type(rec).__name__} rows are not computed in the "
                                         "page; click a pixel to have the server draw its row.")
        return out
    if isinstance(rec, Affinity):
        out.update(scale=float(rec.scale), extra_scaled=bool(rec.extra_scaled),
                   relative=isinstance(rec.extra, RelativePosition))
    if isinstance(rec, TwoHop):
        out.update(first=rec.first.key, second=rec.second.key)
    return out


def layer_payload(rec, max_float32_bytes: int = MAX_FLOAT32_BYTES, inputs: bool = True) -> dict:
    """One pairwise record for the page: its description and, with `inputs`, the inputs of
    its rows (float16 where `_float16` says); without, it is marked pending."""
    out = _description(rec)
    if out["kind"] == "server":
        return out
    if not inputs:
        return {**out, "pending": True}
    float16 = _float16(rec, max_float32_bytes)
    out["precision"] = "float16" if float16 else "float32"
    arrays = _arrays(rec)
    if arrays:
        out["arrays"] = {name: encode(a, float16) for name, a in arrays.items()}
    return out


def _shown_data_url(image: np.ndarray, shown: np.ndarray, exact: bool = False) -> str:
    """The image the page decodes to `shown` (= render.fit(image, ..., enlarge=True)): where
    fit enlarged (nearest neighbour), `image` itself, which the page enlarges the same way
    (hover_math.enlargeNearest): a 64 px scene shown at 768 px is 144 times fewer pixels.
    PNG when `exact` or at most EXACT_PIXELS pixels (scenes stay crisp), else JPEG."""
    enlarged = shown.shape[:2] != image.shape[:2] and shown.shape[1] >= image.shape[1]
    sent = image if enlarged else shown
    if exact or sent.shape[0] * sent.shape[1] <= EXACT_PIXELS:
        return _data_url("image/png", render.png_bytes(sent))
    return _data_url("image/jpeg", render.jpeg_bytes(sent))


def _data_url(kind: str, data: bytes) -> str:
    return f"data:{kind};base64," + base64.b64encode(data).decode("ascii")


def _layers(trace: Trace) -> list:
    """(record, hidden) of every layer the page gets, in network order: the pairwise
    records, then the hops of two-hop records that the trace does not list (hidden)."""
    records = [r for r in trace if isinstance(r, Pairwise)]
    have, out = {r.key for r in records}, [(r, False) for r in records]
    for rec in records:
        for hop in ((rec.first, rec.second) if isinstance(rec, TwoHop) else ()):
            if hop.key not in have:
                out.append((hop, True))
                have.add(hop.key)
    return out


def default_layer(trace: Trace) -> list[str]:
    """The key of the layer the view opens with (the first pairwise one), as a list."""
    return [r.key for r in trace if isinstance(r, Pairwise)][:1]


def needed(trace: Trace, keys) -> set[str]:
    """The layers whose inputs the rows of `keys` need: each key and a two-hop's hops."""
    out = set()
    for rec, _ in _layers(trace):
        if rec.key in keys:
            out.add(rec.key)
            if isinstance(rec, TwoHop):
                out |= {rec.first.key, rec.second.key}
    return out


def _entry(trace: Trace, rec, hidden: bool, inputs: bool, max_float32_bytes: int) -> dict:
    """A layer of SCHEMA['layers']: its payload, title, hidden flag, and the map beside it."""
    layer = layer_payload(rec, max_float32_bytes, inputs)
    if hidden:
        return {**layer, "hidden": True}
    layer["title"] = render.shown_name(rec, trace)
    beside = companion(trace, rec)
    if inputs and beside is not None and list(beside.grid) == layer["grid"]:
        layer["beside"] = {"title": "unary map (the same for every pixel)",
                           "values": encode(beside.values)}
    return layer


def payload(trace: Trace, alpha: float = 0.5, cmap: str = "jet",
            max_float32_bytes: int = MAX_FLOAT32_BYTES, pins=(), inputs=None,
            analysis: Optional[str] = None, exact_photo: bool = False) -> dict:
    """The hover view's first message for one analysis (`SCHEMA`): the photo (or clip) as
    the server displays it (`exact_photo`: always as PNG), the Geometry, the colour lookup
    tables, every pairwise layer (with the hidden hops of two-hop records) and the row
    inputs of the layers in `inputs` (keys; None: every layer, as viewer.html needs), the
    others pending."""
    clip = getattr(trace, "clip", None)
    shown_clip = clip_frames(clip, exact_photo) if clip is not None else None
    shown = shown_clip["shown"][0] if clip is not None else \
        render.fit(trace.image, render.DISPLAY_CAP, enlarge=True)
    sent = None if inputs is None else needed(trace, inputs)
    layers = [_entry(trace, rec, hidden, sent is None or rec.key in sent, max_float32_bytes)
              for rec, hidden in _layers(trace)]
    have = {layer["key"] for layer in layers}
    return {"version": SCHEMA_VERSION, "model": trace.model,
            **({"analysis": analysis} if analysis is not None else {}),
            "photo": {"src": shown_clip["frames"][0] if clip is not None else
                      _shown_data_url(trace.image, shown, exact_photo), "width": int(shown.shape[1]),
                      "height": int(shown.shape[0])},
            "geometry": {k: list(v) for k, v in dataclasses.asdict(trace.geometry).items()},
            "luts": {name: encode(render.lut(name)) for name in render.COLORMAPS},
            "marker": list(render.MARKER), "unseen_gain": UNSEEN_GAIN,
            "nearly_uniform": NEARLY_UNIFORM,
            "alpha": float(alpha), "cmap": cmap, "layers": layers,
            **({"clip": {k: v for k, v in shown_clip.items() if k != "shown"}}
               if clip is not None else {}),
            **({"pins": [{"layer": q.layer, "head": q.head, "x": int(q.x), "y": int(q.y),
                          **({"frame": int(q.frame)} if getattr(q, "frame", None) is not None
                             else {})}
                         for q in pins if q.layer in have]} if pins else {})}


def layer_inputs(trace: Trace, keys, analysis: str, sent=(),
                 max_float32_bytes: int = MAX_FLOAT32_BYTES) -> dict:
    """The page asked for layers `keys` of this analysis: a layers message (`LAYERS_SCHEMA`)
    with their inputs and those of the hops they need, leaving out the layers in `sent`
    (already in the page). Keys that are no layer of the trace are ignored."""
    want = needed(trace, set(keys)) - set(sent)
    return {"version": SCHEMA_VERSION, "layers_of": analysis,
            "layers": [_entry(trace, rec, hidden, True, max_float32_bytes)
                       for rec, hidden in _layers(trace) if rec.key in want]}


def clip_frames(clip, exact: bool = False) -> dict:
    """A clip's frames as the view shows them, CLIP_COLUMNS at most per row of a grid
    CLIP_ROW_PX wide ('shown': the arrays, the rest as in SCHEMA['clip?']; `exact`: PNGs)."""
    frames = clip.frames
    columns = min(len(frames), CLIP_COLUMNS)
    shown = [render.fit(f, max(32, CLIP_ROW_PX // columns), enlarge=True) for f in frames]
    return {"shown": shown, "frames": [_shown_data_url(f, s, exact) for f, s in zip(frames, shown)],
            "width": int(shown[0].shape[1]), "height": int(shown[0].shape[0]),
            "columns": int(columns), "indices": [int(i) for i in clip.indices],
            "fps": float(clip.fps)}


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """A file of visattn/static (the page's JavaScript, CSS and HTML skeleton)."""
    return resources.files("visattn").joinpath("static", name).read_text(encoding="utf-8")


def script() -> str:
    """The hover view's JavaScript: SCRIPTS joined in order, for a page to run as one."""
    return "\n".join(asset(name) for name in SCRIPTS)


def viewer_html(trace: Trace, alpha: float = 0.5, cmap: str = "jet",
                max_float32_bytes: int = 0, pins=(), exact_photo: bool = False) -> str:
    """A self-contained page (no network) with the hover view of every pairwise layer of
    this analysis: photo and rows' inputs embedded, the pinned queries (export.Query)
    marked. Float16 by default (say so), the photo as the page gets it (`exact_photo`: PNG)."""
    data = payload(trace, alpha, cmap, max_float32_bytes, pins, exact_photo=exact_photo)
    doc = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")  # no tag in <script>
    precisions = sorted({layer.get("precision", "server") for layer in data["layers"]})
    title = f"VisAttn — {trace.model}: where does each pixel look?"
    size = "{}×{}".format(*trace.geometry.image_size)
    clip = getattr(trace, "clip", None)
    subject, how = (f"a clip, {len(clip.frames)} frames of {size}", VIEWER_CLIP) if clip is not None \
        else (f"a {size} photo", VIEWER_PHOTO)
    return asset("viewer.html").format(  # every string that reaches the HTML escaped
        title=html.escape(title), css=asset("hover.css"), skeleton=asset("hover.html"),
        js=script(), payload=doc, precision=html.escape(" and ".join(precisions)),
        model=html.escape(trace.model), subject=subject, how=how)


VIEWER_PHOTO = ("Point at a pixel to see where it looks; arrow keys move the query one cell, a "
                "click pins it.")
VIEWER_CLIP = ("Point at a position in any frame to see where it looks in every frame at once; "
               "arrow keys move the query one cell, [ and ] one frame, a click pins it.")
