"""The Non-local tab: the hover view (visattn/static/hover.js draws the row of the pixel
under the pointer from `hover.payload`, sent once per analysis with the first layer's
inputs; the view asks for another layer's inputs when it is opened, `hover.layer_inputs`,
once per layer), pinned queries, and /affinity, the server's row of a pixel for API
clients and for record kinds the page cannot compute."""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Optional

import gradio as gr
import numpy as np

from .. import hover, metrics, render
from .analyse_button import crop_note
from ..export import Query, outside_photo, pin
from ..render import centre_cell
from ..records import Pairwise, Trace
from .common import (FAST, MEAN_OF_HEADS, COLORMAPS, Page, Session, head_choice, head_index, keys,
                     need, quoted, readable)


NO_PAIRWISE = ("This network has no pairwise (Non-local) attention, so there is no pixel to "
               "point at here; its maps are on the Overview tab. Networks with pairwise "
               "attention: tiny_nl, BoTNet (botnet26t_256) and the ADE20K Non-local, CCNet and "
               "DANet networks.")  # plain text: the view shows it as text


QUERY_DEPENDENCE_NOTE = (
    "Trained Non-local blocks often give nearly the same row for every query pixel (the "
    "observation behind GCNet): a score near 0 means this row would look alike wherever "
    "you click, near 1 that it is specific to this pixel.")


PIN_NOTE = ("Point at the photo (on a phone: touch or drag): the row of the pixel under the "
            "pointer is computed in your browser. Click, press Enter, long-press or use “Pin "
            "this query” to pin a query: pinned queries are marked on the photo, listed here "
            "and saved in the export.")


UNARY_NOTE = ("Left: this pixel's whitened pairwise row; right: DNL's unary map, one "
              "softmax over positions that every pixel adds in alike.")


NONLOCAL_NOTES = {  # what a network's Non-local block was trained for, said on its tab
    "tiny_nl_twins": "`tiny_nl_twins` was trained to tell, for every pixel, whether its object "
                     "has an identical twin elsewhere in the scene, so a pixel on one twin has "
                     "learned to look at the other.",
    "dnl_r50_d8_ade20k": "DNL splits its attention in two: the row under the pointer is the "
                         "whitened pairwise term; the unary map, one softmax over positions "
                         "added in alike for every pixel, is shown beside a pinned pixel's row "
                         "(and on the Spatial tab)."}


@readable
def nonlocal_tab(session: Optional[Session], alpha: float, cmap: str):
    """The Non-local tab opened: send the page the hover payload of this analysis, once
    -> (hover payload, pinned-queries text, fallback image, session)."""
    if session is None:
        return None, "", gr.update(visible=False), session
    if session.hover_sent:
        return gr.skip(), gr.skip(), gr.skip(), session
    session.hover_sent = True
    if not keys(session.trace, Pairwise):
        return {"message": NO_PAIRWISE}, "", gr.update(visible=False), session
    first = hover.default_layer(session.trace)
    session.hover_layers = hover.needed(session.trace, first)
    return (hover.payload(session.trace, alpha, cmap, inputs=first, analysis=session.analysis),
            pinned_text(session), gr.update(visible=False), session)


MAX_ASKED = 256  # layer keys one request may name


@readable
def send_layers(session: Optional[Session], evt: gr.EventData):
    """The view opened layers whose inputs it lacks: send them (and the hops they need), each
    once per analysis; a request for an earlier analysis is ignored -> (layers message,
    session)."""
    data = getattr(evt, "_data", None) or {}
    asked = data.get("keys")
    if session is None or data.get("analysis") != session.analysis or not isinstance(asked, list):
        return gr.skip(), session
    message = hover.layer_inputs(session.trace, [str(k)[:300] for k in asked[:MAX_ASKED]],
                                 session.analysis, sent=session.hover_layers)
    if not message["layers"]:
        return gr.skip(), session
    session.hover_layers |= {layer["key"] for layer in message["layers"]}
    return message, session


def head_name(rec, head: Optional[int]) -> str:
    """As the view's head list says it: 'the only head' of a one-head layer."""
    if head is not None:
        return f"head {head}"
    return MEAN_OF_HEADS if rec.heads > 1 else "the only head"


def pinned_text(session: Session) -> str:
    """The pinned queries with the server's numbers for each."""
    trace, lines = session.trace, [PIN_NOTE]
    if trace.model in NONLOCAL_NOTES:
        lines.insert(0, NONLOCAL_NOTES[trace.model])
    crop = crop_note(trace)
    if crop:  # the dimmed edges of the view, as the summary says
        lines.insert(0, f"> {crop}")
    if session.queries:
        lines.append("**Pinned queries** (in the export):")
    for n, q in enumerate(session.queries, 1):
        rec = trace[q.layer]
        if len(rec.grid) == 3:  # a clip's space-time layer (ui.clip_input)
            lines.append(clip_pin_line(trace, rec, q, n))
            continue
        cell = trace.geometry.to_grid(q.x, q.y, rec.grid, clamp=True)
        r, c = divmod(cell, rec.grid[1])
        head = head_name(rec, q.head)
        lines.append(f"{n}. pixel ({q.x}, {q.y}) on `{q.layer}`, {head} → cell (row {r}, col {c}), "
                     f"query dependence {metrics.query_dependence(rec, cell, q.head):.3f}")
    return "\n".join(lines)


@readable
def pin_query(session: Optional[Session], alpha: float, cmap: str, evt: gr.EventData):
    """A click on the hover view pins its query: add it to the session's queries (export,
    numbers). For a layer the page cannot compute, the server draws the row instead."""
    session = need(session)
    data = getattr(evt, "_data", None) or {}
    layer, head = str(data.get("layer", ""))[:200], data.get("head")
    rec = pairwise_record(session, layer)
    x, y = int(data.get("x", -1)), int(data.get("y", -1))
    refusal = outside_photo(x, y, session.trace.geometry.image_size)
    if refusal:
        raise gr.Error(f"The pinned pixel {refusal}")
    if head is not None and not (isinstance(head, int) and 0 <= head < rec.heads):
        raise gr.Error(f"{layer} has {rec.heads} head(s); head {head!r} does not exist.")
    frame = data.get("frame")
    clip = getattr(session.trace, "clip", None)
    if clip is not None and not (isinstance(frame, int) and 0 <= frame < len(clip.frames)):
        raise gr.Error(f"The pinned frame is one of 0 to {len(clip.frames) - 1}.")
    query = Query(rec.key, x, y, head, frame if clip is not None else None)
    session.queries = pin(session.queries, query)
    fallback = gr.update(visible=False)
    if not hover.mirrored(rec):
        image, _, session = show_affinity(session, rec.key, head_choice(head), (x, y), alpha, cmap)
        fallback = gr.update(value=image, visible=True)
    return pinned_text(session), fallback, session


def clip_pin_line(trace: Trace, rec, q: Query, n: int) -> str:
    """A pinned query of a clip with the server's numbers: its cell, the frames its row
    peaks in, its query dependence across time."""
    from ..clip_metrics import query_dependence
    frames = len(trace.clip.frames)
    t = trace.clip.time_cell(q.frame or 0, rec.grid[0])
    s = trace.geometry.to_grid(q.x, q.y, rec.frame_grid, clamp=True)
    cell = rec.cell(t, *divmod(s, rec.grid[2]))
    row = rec.row(cell, q.head)
    peak = int(np.unravel_index(int(np.argmax(row)), row.shape)[0])
    a, b = trace.clip.frame_span(peak, rec.key_grid[0])
    where = f"frame {a}" if b - a == 1 else f"frames {a}–{b - 1}"
    return (f"{n}. pixel ({q.x}, {q.y}) of frame {q.frame} on `{q.layer}`, {head_name(rec, q.head)} "
            f"→ cell (time {t}, row {s // rec.grid[2]}, col {s % rec.grid[2]}); its row peaks in "
            f"{where} of {frames}, query dependence {query_dependence(rec, cell, q.head):.3f}")


def pairwise_record(session: Session, layer: str):
    try:
        rec = session.trace[layer]
    except KeyError:
        rec = None
    if not isinstance(rec, Pairwise):
        raise gr.Error("Choose one of this analysis' pairwise layers.")
    return rec


@readable
def show_affinity(session: Optional[Session], layer: str, head: str,
                  xy: Optional[tuple[int, int]], alpha: float, cmap: str, from_zero: bool = False):
    """The row of photo pixel xy (the centre cell when None) -> (image, info, session)."""
    session = need(session)
    trace, rec = session.trace, session.trace[layer]
    if not isinstance(rec, Pairwise):
        raise gr.Error(f"{layer} is not a pairwise attention layer.")
    h = head_index(head)
    if xy is None:
        xy = trace.geometry.cell_centre(centre_cell(rec), rec.grid)
    x, y = int(xy[0]), int(xy[1])
    refusal = outside_photo(x, y, trace.geometry.image_size)
    if refusal:
        raise gr.Error(refusal)
    cell = trace.geometry.to_grid(x, y, rec.grid)
    outside = cell is None
    if outside:
        cell = trace.geometry.to_grid(x, y, rec.grid, clamp=True)
    start = time.perf_counter()
    image = render.affinity_view(trace, rec, cell, h, alpha=alpha, cmap=cmap, from_zero=from_zero)
    unary = hover.companion(trace, rec)
    if unary is not None:  # DNL: the pixel's pairwise row beside the unary map
        image = render.side_by_side(image, render.spatial_view(trace, unary, alpha=alpha,
                                                               cmap=cmap))
    score = metrics.query_dependence(rec, cell, h)
    ms = (time.perf_counter() - start) * 1000
    r, c = divmod(cell, rec.grid[1])
    info = (f"Query pixel **({x}, {y})** → cell (row {r}, col {c}) of the {rec.grid[0]}×"
            f"{rec.grid[1]} grid, box {trace.geometry.cell_box(cell, rec.grid)}"
            + (" — outside the region the model saw; the nearest cell is shown" if outside else "")
            + f". Query dependence **{score:.2f}** (0 = same row for every pixel, 1 = specific). "
            f"{QUERY_DEPENDENCE_NOTE} _Drawn in {ms:.0f} ms, no forward pass._"
            + (f" {UNARY_NOTE}" if unary is not None else "")
            + (f" {NONLOCAL_NOTES[trace.model]}" if trace.model in NONLOCAL_NOTES else ""))
    return image, info, session


def affinity_args(trace: Trace, layer, head, x, y) -> tuple[str, Optional[int], int, int]:
    """Checked /affinity arguments -> (layer key, head index or None for the mean, x, y);
    each mistake is a sentence listing what is allowed, echoing at most 40 characters."""
    layers = keys(trace, Pairwise)
    if not layers:
        raise gr.Error("This analysis has no pairwise (Non-local) layer; analyse with a "
                       "network that has one, e.g. tiny_nl or botnet26t_256.")
    layer = str(layer or "") or layers[0]
    if layer not in layers:
        raise gr.Error(f"No pairwise layer {quoted(layer)} in this analysis; layer is one of: "
                       + ", ".join(layers[:12]) + (" …" if len(layers) > 12 else "") + ".")
    heads = trace[layer].heads
    text = str(head or MEAN_OF_HEADS).strip()
    index = None
    if text != MEAN_OF_HEADS:
        parts = text.split()
        if len(parts) != 2 or parts[0] != "head" or not parts[1].isdigit() or int(parts[1]) >= heads:
            raise gr.Error(f"head {quoted(text)} does not exist: {layer} has {heads} head(s); "
                           f"give '{MEAN_OF_HEADS}' or 'head N' with N from 0 to {heads - 1}.")
        index = int(parts[1])
    try:
        px, py = float(x), float(y)
    except (TypeError, ValueError):
        raise gr.Error("x and y are photo pixel coordinates (numbers).") from None
    if not (np.isfinite(px) and np.isfinite(py)):
        raise gr.Error("x and y must be finite numbers (photo pixels).")
    refusal = outside_photo(px, py, trace.geometry.image_size)
    if refusal:
        raise gr.Error(refusal)
    return layer, index, int(px), int(py)


@readable
def affinity_api(session: Optional[Session], layer: str, head: str, x: float, y: float,
                 alpha: float = 0.5, cmap: str = "jet", from_zero: bool = False,
                 frame: float = 0):
    """API twin of a click: explicit photo pixel (x, y) -> (image, numbers). `layer` is an
    affinity record key ('' = the first), `head` 'mean of heads' (or '') or 'head N';
    `from_zero` colours from 0 instead of the row's minimum (for nearly uniform rows);
    `frame`: for a clip, the frame of the pixel (0 to frames - 1; photos ignore it)."""
    session = need(session)
    layer, head_index, x, y = affinity_args(session.trace, layer, head, x, y)
    head = MEAN_OF_HEADS if head_index is None else f"head {head_index}"
    if cmap not in COLORMAPS or not (0.0 <= float(alpha) <= 1.0):
        raise gr.Error(f"cmap is one of {', '.join(COLORMAPS)} and alpha lies in 0..1.")
    if len(session.trace[layer].grid) == 3:  # a clip's space-time layer
        return clip_affinity(session, layer, head_index, x, y, frame, alpha, cmap, bool(from_zero))
    image, info, session = show_affinity(session, layer, head, (x, y), alpha, cmap, bool(from_zero))
    rec, q = session.trace[layer], Query(layer, x, y, head_index)
    session.queries = pin(session.queries, q)
    cell = session.trace.geometry.to_grid(q.x, q.y, rec.grid, clamp=True)
    row = rec.row(cell, q.head)
    numbers = {"layer": layer, "x": q.x, "y": q.y, "head": q.head, "grid": list(rec.grid),
               "cell": cell, "cell_box": list(session.trace.geometry.cell_box(cell, rec.grid)),
               "query_dependence": metrics.query_dependence(rec, cell, q.head),
               "nearly_uniform": hover.nearly_uniform(row),
               "row": row.astype(float).tolist()}
    return image, numbers, session



def clip_affinity(session: Session, layer: str, head: Optional[int], x: int, y: int, frame,
                  alpha: float, cmap: str, from_zero: bool):
    """/affinity for a clip: the row of pixel (x, y) of `frame` over every frame's keys
    -> (that frame with its time cell's part of the row, its own colour scale, the query cell
    outlined; numbers with the whole row, (T', h', w') row-major)."""
    trace, rec = session.trace, session.trace[layer]
    frames = len(trace.clip.frames)
    try:
        f = float(frame)
    except (TypeError, ValueError):
        f = -1.0
    if not (np.isfinite(f) and f == int(f) and 0 <= f < frames):
        raise gr.Error(f"frame is a whole number from 0 to {frames - 1} (the clip's frames).")
    f = int(f)
    t_n, h, w = rec.grid
    s = trace.geometry.to_grid(x, y, (h, w), clamp=True)
    cell = rec.cell(trace.clip.time_cell(f, t_n), *divmod(s, w))
    row = rec.row(cell, head)
    part = row[trace.clip.time_cell(f, rec.key_grid[0])]
    shown = render.map_on_image(dataclasses.replace(trace, image=trace.clip.frames[f]), part,
                                alpha=alpha, cmap=cmap, enlarge=True, from_zero=from_zero)
    scale = shown.shape[1] / trace.geometry.image_size[0]
    image = render.with_colorbar(render.draw_box(shown, trace.geometry.cell_box(s, (h, w)), scale),
                                 part, cmap, "attention weight (this frame's part of the row)",
                                 from_zero)
    session.queries = pin(session.queries, Query(layer, x, y, head, f))
    peak = int(np.argmax(row)) // (row.size // rec.key_grid[0])
    from ..clip_metrics import query_dependence
    numbers = {"layer": layer, "x": x, "y": y, "frame": f, "head": head, "grid": list(rec.grid),
               "key_grid": list(rec.key_grid), "cell": cell,
               "cell_box": list(trace.geometry.cell_box(s, (h, w))),
               "peak_frames": list(trace.clip.frame_span(peak, rec.key_grid[0])),
               "query_dependence": query_dependence(rec, cell, head),
               "nearly_uniform": hover.nearly_uniform(row), "row": row.astype(float).ravel().tolist()}
    return image, numbers, session


def hover_view() -> gr.HTML:
    """The hover surface: photo + row of the pixel under the pointer, drawn by
    visattn/static/hover.js from the payload of `hover.payload` (its value)."""
    skeleton = json.dumps(hover.asset("hover.html")), json.dumps(hover.asset("hover.css"))
    return gr.HTML(None, html_template='<div class="va-mount"></div>',  # its templates are
                   # compiled at every change of the value: the markup and style come once
                   js_on_load=hover.script()
                   + "\nVisAttnHover.mountSkeleton(element, %s, %s);" % skeleton
                   + "\nVisAttnHover.mountGradio(element, props, trigger, watch); // 'pin', 'layers'",
                   elem_id="nl-hover")


def build_nonlocal_tab(page: Page) -> gr.Tab:
    """Hover view, pinned queries, the server's row for the rest, and /affinity."""
    with gr.Tab("Non-local", id="nonlocal", elem_id="tab-nonlocal") as tab:
        nl_hover = hover_view()
        nl_view = gr.Image(label="The server's row of the pinned pixel", interactive=False,
                           format="jpeg", visible=False, elem_id="nl-view")
        nl_info = gr.Markdown(elem_id="nl-info")
        with gr.Row(visible=False):  # API twin of a click (clients cannot send clicks)
            api_layer, api_head = gr.Textbox(label="layer"), gr.Textbox(label="head")
            api_x, api_y = gr.Number(precision=0, label="x"), gr.Number(precision=0, label="y")
            api_zero = gr.Checkbox(False, label="from_zero")
            api_frame = gr.Number(0, precision=0, label="frame")
            api_image, api_numbers = gr.Image(format="png"), gr.JSON()
            api_go = gr.Button("affinity")
    outputs = [nl_hover, nl_info, nl_view, page.session]
    page.after_analysis(refresh, [page.session, page.tab_open, page.alpha, page.cmap], outputs)
    tab.select(lambda: "nonlocal", None, page.tab_open, **FAST).then(
        nonlocal_tab, [page.session, page.alpha, page.cmap], outputs, **FAST)
    nl_hover.pin(pin_query, [page.session, page.alpha, page.cmap], [nl_info, nl_view, page.session],
                 **FAST)
    nl_hover.layers(send_layers, [page.session], [nl_hover, page.session], **FAST)
    page.alpha.change(None, [page.alpha], None, js="(a) => window.visattn?.setAlpha?.(a)")
    page.cmap.change(None, [page.cmap], None, js="(c) => window.visattn?.setColormap?.(c)")
    api_go.click(affinity_api, [page.session, api_layer, api_head, api_x, api_y, page.alpha,
                                page.cmap, api_zero, api_frame],
                 [api_image, api_numbers, page.session], api_name="affinity",
                 concurrency_id="view", concurrency_limit=8)
    return tab


def refresh(session: Optional[Session], tab: str, alpha: float, cmap: str):
    """A new analysis: its hover payload if the tab is open, else cleared until opened."""
    if tab == "nonlocal":
        return nonlocal_tab(session, alpha, cmap)
    return None, "", gr.update(visible=False), session
