"""The Gradio page: glue between events and the library, nothing else.

Per-user state is one `Session` in a gr.State (with a time-to-live): the Trace of the last
analysis (records with cached embeddings) and the queries clicked since. A click never
runs the network: it reads the cached embeddings.
"""
from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import gradio as gr

from . import analysis, families, hover, render, sessions, zoo
from .export import Query, centre_cell, export_zip, safe_name
from .image import DEFAULT_MAX_BYTES, ImageError, bytes_from_data_url
from .pipeline import analyze
from .records import (AxisGate, BranchWeights, ChannelWeights, Pairwise, Segmentation, SpatialMap,
                      Trace)
from .weights import ASSETS, WeightsError

TITLE = "VisAttn — see what attention modules inside CNNs do"
INTRO = ("Upload a photo, choose a network, and see every attention map it computes: "
         "channel gates, spatial maps, branch weights and self-attention rows, in network "
         "order. On the **Non-local** tab, click anywhere on the photo to see where that "
         "pixel looks.")
_STATUS = {"bundled": "bundled", "cached": "ready", "download": "downloads {mb:.0f} MB",
           "random": "no weights published"}
EXAMPLES = sorted((ASSETS / "examples").glob("*.jpg")) + sorted((ASSETS / "examples").glob("*.png"))
OWN_MODELS_NOTE = ("No pretrained weights are cached on this machine, so VisAttn starts on its "
                   "own small networks, trained on generated scenes and shipped with it (no "
                   "download): try them on the example scenes. Choosing a pretrained network "
                   "downloads its weights where there is network.")
PREFERRED_OWN = "tiny_cbam"
MAX_UPLOAD = f"{DEFAULT_MAX_BYTES // 2**20}mb"  # refused by the server before anything is decoded
LAUNCH_OPTIONS = dict(max_file_size=MAX_UPLOAD, state_session_capacity=sessions.MAX_SESSIONS)
COLORMAPS = list(render.COLORMAPS)
MEAN_OF_HEADS = "mean of heads"


def photo_upload(**kwargs) -> gr.Image:
    """A gr.Image whose every input reaches VisAttn's own loader untouched: an uploaded
    file as its path, a `data:` URL (paste, webcam, API clients) as its bytes, refused by
    size before its base64 is decoded. Gradio's own decoder never runs, so a broken or
    hostile file gets load_image's sentence and caps, and 16-bit, alpha, CMYK and EXIF
    behave as in the library. (Replacing the instance's preprocess, not subclassing:
    Gradio writes a .pyi stub beside every module defining a component.)"""
    image = gr.Image(type="filepath", **kwargs)
    image.preprocess = photo_input
    return image


def photo_input(payload) -> Optional[Union[str, bytes]]:
    """The Image component's payload -> a file path or the bytes of a data: URL."""
    if payload is None:
        return None
    url = payload.url or ""
    if url.startswith("data:"):
        try:
            return bytes_from_data_url(url)
        except ImageError as exc:
            raise gr.Error(str(exc)) from None
    if payload.path:
        return payload.path
    raise gr.Error("The photo did not arrive; upload it again.")


@dataclass
class Session:
    trace: Trace
    queries: list[Query] = field(default_factory=list)
    pretrained: bool = True
    hover_sent: bool = False  # the page holds this trace's hover payload


# ----- choices ----------------------------------------------------------------------------

def default_model() -> tuple[str, str]:
    """(model, note): the first pretrained network already cached, else VisAttn's own
    bundled model, with a sentence saying why."""
    cards = zoo.cards()
    for card in cards:
        if card.source.library != "visattn" and card.availability() == "cached":
            return card.name, ""
    own = [c.name for c in cards if c.availability() == "bundled"]
    if own:
        return (PREFERRED_OWN if PREFERRED_OWN in own else own[0]), OWN_MODELS_NOTE
    return cards[0].name, ""


def model_choices() -> list[tuple[str, str]]:
    """Dropdown entries 'FAMILY · name — status', grouped by family in registry order."""
    families = list(dict.fromkeys(c.family for c in zoo.cards()))
    return [(f"{c.family} · {c.name} — {_STATUS[c.availability()].format(mb=c.download_mb)}", c.name)
            for fam in families for c in zoo.cards(fam)]


def _keys(trace: Optional[Trace], *kinds) -> list[str]:
    return [r.key for r in trace if isinstance(r, kinds)] if trace else []


def _heads(rec) -> list[str]:
    return [MEAN_OF_HEADS] + [f"head {h}" for h in range(rec.heads)] if rec and rec.heads > 1 \
        else [MEAN_OF_HEADS]


def _head(choice: Optional[str]) -> Optional[int]:
    return None if not choice or choice == MEAN_OF_HEADS else int(choice.split()[-1])


# ----- handlers ---------------------------------------------------------------------------

def readable(fn):
    """Errors reach the user as a sentence, never as a stack trace."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except WeightsError as exc:
            raise gr.Error(weights_message(exc), duration=None) from None
        except (ImageError, KeyError, ValueError, IndexError) as exc:
            raise gr.Error(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
        except Exception as exc:  # noqa: BLE001 - last resort, still a sentence
            detail = type(exc).__name__ if on_space() else f"{type(exc).__name__}: {exc}"
            raise gr.Error(f"Something went wrong ({detail}). Try again, or another photo "
                           "or network.") from None
    return wrapper


def on_space() -> bool:
    """Running as a Hugging Face Space: visitors cannot see this machine or run commands."""
    return bool(os.environ.get("SPACE_ID") or os.environ.get("SYSTEM") == "spaces")


def weights_message(exc: WeightsError) -> str:
    """Missing or broken weights, said for the audience: a Space visitor hears what they
    can do in the page; someone running VisAttn locally also gets the paths and the fetch
    command."""
    if on_space():
        return (f"{exc.public} Choose a network marked “ready” or “bundled”, or untick "
                "'Pretrained weights' to explore this architecture with random weights.")
    return f"{exc} Or untick 'Pretrained weights' to explore the architecture with random weights."


def _need(session: Optional[Session]) -> Session:
    if session is None:
        if sessions.VISITORS.had_analysis(_session_id()):
            raise gr.Error(sessions.DROPPED)
        raise gr.Error("Analyse a photo first.")
    return session


def _session_id() -> Optional[str]:
    """The visitor's session id inside an event handler (None outside one)."""
    from gradio.context import LocalContext
    return getattr(LocalContext.request.get(None), "session_hash", None)


def _gradio_session(session_id: Optional[str]):
    """Gradio's own record of a visitor's session (inside an event handler), or None."""
    from gradio.context import LocalContext
    holder = getattr(LocalContext.blocks.get(None), "state_holder", None)
    return getattr(holder, "session_data", {}).get(session_id)


def session_closed(request: gr.Request) -> None:
    """A visitor closed the page: free the session within the app's time-to-live, not
    Gradio's hour for closed sessions."""
    state = _gradio_session(getattr(request, "session_hash", None))
    if state is not None:
        state.STATE_TTL_WHEN_CLOSED = sessions.TTL_S


def forget_inline_photos(session_id: Optional[str]) -> int:
    """Gradio keeps each input's last value in the session's page config, a photo sent as a
    data: URL included (up to 33 MB of text, for as long as the session record lives):
    drop those once the photo has been read. Returns how many were dropped."""
    state = _gradio_session(session_id)
    dropped = 0
    for config in getattr(state, "config_values", {}).values():
        value = (config or {}).get("props", {}).get("value")
        if isinstance(value, dict) and str(value.get("url") or "").startswith("data:"):
            config["props"]["value"] = None
            dropped += 1
    return dropped


SEG_SIZES = [512, 384, 256]  # short side; 512 is mmsegmentation's test size (short side 512)
SEG_DEFAULT = 512
SEG_CHOICES = [(f"{size} px" + (" (published test size)" if size == SEG_DEFAULT
                                else " (faster, approximate)"), size) for size in SEG_SIZES]


def seg_size_note(size: int) -> str:
    """Which size the segmentation maps were computed at, in one clause."""
    return (f"computed at short side {size} px, the networks' published test size"
            if int(size) == SEG_DEFAULT else
            f"computed at short side {size} px (faster, approximate: the networks were "
            f"evaluated at {SEG_DEFAULT})")


@readable
def run_analysis(image_path: Optional[Union[str, bytes]], model_name: str, pretrained: bool = True,
                 seg_size: int = SEG_DEFAULT, progress: gr.Progress = gr.Progress()):
    """Upload + model -> (session, top-5, summary, gallery, model picker refreshed).
    `seg_size` is the short side segmentation networks process (mmseg tests at 512)."""
    if not image_path:
        raise gr.Error("Upload a photo first (or pick an example).")
    card = zoo.get(model_name)
    preprocess = None
    scaled = card.task == "segment" and card.preprocess.mode == "keep_ratio"  # not fixed-size labellers
    if scaled:
        preprocess = dataclasses.replace(card.preprocess, size=(int(seg_size), 4 * int(seg_size)))

    def report(done: int, total: Optional[int]) -> None:
        if total:
            progress(done / total, desc=f"Downloading {model_name} weights: "
                                        f"{done / 1e6:.0f} of {total / 1e6:.0f} MB")

    try:
        trace = analyze(image_path, model_name, pretrained=pretrained, progress=report,
                        preprocess=preprocess)
    except WeightsError as exc:
        raise gr.Error(weights_message(exc), duration=None) from None
    top = dict(trace.prediction.top(5)) if trace.prediction else {}
    kind = ("classes by share of the photo" + ("; " + seg_size_note(seg_size) if scaled else "")) \
        if isinstance(trace.prediction, Segmentation) else ""
    w, h = trace.geometry.image_size
    maps = f"{len(trace)} map" + ("" if len(trace) == 1 else "s")
    lines = [f"**{trace.model}** on a {w}×{h} image: {maps} captured "
             f"in {trace.elapsed_s * 1000:.0f} ms" + (f" (prediction: {kind})" if kind else "")
             + "."] + [f"> {n}" for n in trace.notes]
    if not len(trace):
        lines.append("This network has no attention modules (it is the baseline).")
    picker = gr.Dropdown(choices=model_choices(), value=model_name)
    kept = sessions.display_copy(trace)  # what the views need, not the full photo
    del trace
    sessions.release_memory()  # the decoded photo and the forward's buffers
    sessions.VISITORS.analysed(_session_id())
    forget_inline_photos(_session_id())
    return Session(kept, pretrained=pretrained), top, "\n\n".join(lines), render.gallery(kept), picker


def refresh_views(session: Optional[Session], tab: str, alpha: float, cmap: str, keep: float):
    """After an analysis: fill the layer pickers, and draw the first view of the tab that
    is open (the others are drawn when opened: a faster first answer)."""
    trace = session.trace if session else None
    nl = _keys(trace, Pairwise)
    sp = _keys(trace, SpatialMap)
    ch = _keys(trace, ChannelWeights, BranchWeights, AxisGate)
    nl_view = nonlocal_tab(session, alpha, cmap) if tab == "nonlocal" else \
        (None, "", gr.update(visible=False), session)  # sent when the tab is opened
    return (*nl_view,
            gr.Dropdown(choices=sp, value=sp[0] if sp else None),
            show_spatial(session, sp[0], alpha, cmap, keep) if sp and tab == "spatial" else None,
            gr.Dropdown(choices=ch, value=ch[0] if ch else None),
            *(show_channels(session, ch[0]) if ch and tab == "channel" else (None, None, [])),
            gr.Dropdown(choices=sp + nl, value=(sp + nl)[0] if sp + nl else None))


NO_PAIRWISE = ("This network has no pairwise (Non-local) attention: try `tiny_nl`, BoTNet "
               "(`botnet26t_256`) or the ADE20K Non-local, CCNet and DANet networks.")
QUERY_DEPENDENCE_NOTE = (
    "Trained Non-local blocks often give nearly the same row for every query pixel (the "
    "observation behind GCNet): a score near 0 means this row would look alike wherever "
    "you click, near 1 that it is specific to this pixel.")
PIN_NOTE = ("Point at the photo: the row of the pixel under the pointer is computed in your "
            "browser. Click (or press Enter) to pin a query: pinned queries are listed here "
            "and saved in the export.")


@readable
def nonlocal_tab(session: Optional[Session], alpha: float, cmap: str):
    """The Non-local tab opened: send the page the hover payload of this analysis, once
    -> (hover payload, pinned-queries text, fallback image, session)."""
    if session is None:
        return None, "", gr.update(visible=False), session
    if session.hover_sent:
        return gr.skip(), gr.skip(), gr.skip(), session
    session.hover_sent = True
    if not _keys(session.trace, Pairwise):
        return {"message": NO_PAIRWISE}, "", gr.update(visible=False), session
    return (hover.payload(session.trace, alpha, cmap), pinned_text(session),
            gr.update(visible=False), session)


def pinned_text(session: Session) -> str:
    """The pinned queries with the server's numbers for each."""
    trace, lines = session.trace, [PIN_NOTE]
    if trace.model in NONLOCAL_NOTES:
        lines.insert(0, NONLOCAL_NOTES[trace.model])
    if session.queries:
        lines.append("**Pinned queries** (in the export):")
    for n, q in enumerate(session.queries, 1):
        rec = trace[q.layer]
        cell = trace.geometry.to_grid(q.x, q.y, rec.grid, clamp=True)
        r, c = divmod(cell, rec.grid[1])
        head = "mean of heads" if q.head is None else f"head {q.head}"
        lines.append(f"{n}. pixel ({q.x}, {q.y}) on `{q.layer}`, {head} → cell (row {r}, col {c}), "
                     f"query dependence {analysis.query_dependence(rec, cell, q.head):.3f}")
    return "\n".join(lines)


@readable
def pin_query(session: Optional[Session], alpha: float, cmap: str, evt: gr.EventData):
    """A click on the hover view pins its query: add it to the session's queries (export,
    numbers). For a layer the page cannot compute, the server draws the row instead."""
    session = _need(session)
    data = getattr(evt, "_data", None) or {}
    layer, head = str(data.get("layer", ""))[:200], data.get("head")
    rec = _pairwise(session, layer)
    w0, h0 = session.trace.geometry.image_size
    x, y = int(data.get("x", -1)), int(data.get("y", -1))
    if not (0 <= x < w0 and 0 <= y < h0):
        raise gr.Error(f"The pinned pixel is outside the {w0}×{h0} photo.")
    if head is not None and not (isinstance(head, int) and 0 <= head < rec.heads):
        raise gr.Error(f"{layer} has {rec.heads} head(s); head {head!r} does not exist.")
    query = Query(rec.key, x, y, head)
    session.queries = [q for q in session.queries if q != query][-49:] + [query]
    fallback = gr.update(visible=False)
    if not hover.mirrored(rec):
        image, _, session = show_affinity(session, rec.key, _head_choice(head), (x, y), alpha, cmap)
        fallback = gr.update(value=image, visible=True)
    return pinned_text(session), fallback, session


def _pairwise(session: Session, layer: str):
    try:
        rec = session.trace[layer]
    except KeyError:
        rec = None
    if not isinstance(rec, Pairwise):
        raise gr.Error("Choose one of this analysis' pairwise layers.")
    return rec


def _head_choice(head: Optional[int]) -> str:
    return MEAN_OF_HEADS if head is None else f"head {head}"


@readable
def show_affinity(session: Optional[Session], layer: str, head: str,
                  xy: Optional[tuple[int, int]], alpha: float, cmap: str, from_zero: bool = False):
    """The row of photo pixel xy (the centre cell when None) -> (image, info, session)."""
    session = _need(session)
    trace, rec = session.trace, session.trace[layer]
    if not isinstance(rec, Pairwise):
        raise gr.Error(f"{layer} is not a pairwise attention layer.")
    h = _head(head)
    if xy is None:
        cell = centre_cell(rec)
        x0, y0, x1, y1 = trace.geometry.cell_box(cell, rec.grid)
        xy = ((x0 + x1) // 2, (y0 + y1) // 2)
    x, y = int(xy[0]), int(xy[1])
    w0, h0 = trace.geometry.image_size
    if not (0 <= x < w0 and 0 <= y < h0):
        raise gr.Error(f"({x}, {y}) is outside the {w0}×{h0} image.")
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
    score = analysis.query_dependence(rec, cell, h)
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


def _quoted(text: str, limit: int = 40) -> str:
    """User input quoted in a message, never long."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def affinity_args(trace: Trace, layer, head, x, y) -> tuple[str, Optional[int], int, int]:
    """Checked /affinity arguments -> (layer key, head index or None for the mean, x, y);
    each mistake is a sentence listing what is allowed, echoing at most 40 characters."""
    layers = _keys(trace, Pairwise)
    if not layers:
        raise gr.Error("This analysis has no pairwise (Non-local) layer; analyse with a "
                       "network that has one, e.g. tiny_nl or botnet26t_256.")
    layer = str(layer or "") or layers[0]
    if layer not in layers:
        raise gr.Error(f"No pairwise layer {_quoted(layer)} in this analysis; layer is one of: "
                       + ", ".join(layers[:12]) + (" …" if len(layers) > 12 else "") + ".")
    heads = trace[layer].heads
    text = str(head or MEAN_OF_HEADS).strip()
    index = None
    if text != MEAN_OF_HEADS:
        parts = text.split()
        if len(parts) != 2 or parts[0] != "head" or not parts[1].isdigit() or int(parts[1]) >= heads:
            raise gr.Error(f"head {_quoted(text)} does not exist: {layer} has {heads} head(s); "
                           f"give '{MEAN_OF_HEADS}' or 'head N' with N from 0 to {heads - 1}.")
        index = int(parts[1])
    try:
        px, py = float(x), float(y)
    except (TypeError, ValueError):
        raise gr.Error("x and y are photo pixel coordinates (numbers).") from None
    if not (np.isfinite(px) and np.isfinite(py)):
        raise gr.Error("x and y must be finite numbers (photo pixels).")
    w0, h0 = trace.geometry.image_size
    if not (0 <= px < w0 and 0 <= py < h0):
        raise gr.Error(f"({px:g}, {py:g}) is outside the {w0}×{h0} photo: x from 0 to "
                       f"{w0 - 1}, y from 0 to {h0 - 1}.")
    return layer, index, int(px), int(py)


@readable
def affinity_api(session: Optional[Session], layer: str, head: str, x: float, y: float,
                 alpha: float = 0.5, cmap: str = "jet", from_zero: bool = False):
    """API twin of a click: explicit photo pixel (x, y) -> (image, numbers). `layer` is an
    affinity record key ('' = the first), `head` 'mean of heads' (or '') or 'head N';
    `from_zero` colours from 0 instead of the row's minimum (for nearly uniform rows)."""
    session = _need(session)
    layer, head_index, x, y = affinity_args(session.trace, layer, head, x, y)
    head = MEAN_OF_HEADS if head_index is None else f"head {head_index}"
    if cmap not in COLORMAPS or not (0.0 <= float(alpha) <= 1.0):
        raise gr.Error(f"cmap is one of {', '.join(COLORMAPS)} and alpha lies in 0..1.")
    image, info, session = show_affinity(session, layer, head, (x, y), alpha, cmap, bool(from_zero))
    rec, q = session.trace[layer], Query(layer, x, y, head_index)
    session.queries = [p for p in session.queries if p != q][-49:] + [q]
    cell = session.trace.geometry.to_grid(q.x, q.y, rec.grid, clamp=True)
    row = rec.row(cell, q.head)
    numbers = {"layer": layer, "x": q.x, "y": q.y, "head": q.head, "grid": list(rec.grid),
               "cell": cell, "cell_box": list(session.trace.geometry.cell_box(cell, rec.grid)),
               "query_dependence": analysis.query_dependence(rec, cell, q.head),
               "nearly_uniform": bool(row.max() > 0 and (row.max() - row.min()) / row.max() < 0.01),
               "row": row.astype(float).tolist()}
    return image, numbers, session


@readable
def show_spatial(session: Optional[Session], key: str, alpha: float, cmap: str, keep: float):
    if session is None or not key:
        return None
    return render.spatial_view(session.trace, session.trace[key], alpha=alpha, cmap=cmap,
                               keep_mass=keep / 100.0)


@readable
def show_channels(session: Optional[Session], key: str):
    """(chart of the block's weights, blocks x channels matrix, top-channel feature maps)."""
    if session is None or not key:
        return None, None, []
    trace, rec = session.trace, session.trace[key]
    if isinstance(rec, AxisGate):
        peers = [r for r in trace if isinstance(r, AxisGate) and r.name == rec.name]
        return render.axis_gate_view(rec), None, [(render.axis_gate_view(r, 384), r.key)
                                                  for r in peers]
    if isinstance(rec, BranchWeights):
        chart = render.branch_chart(rec)
        peers = [r for r in trace if isinstance(r, BranchWeights) and r.name == rec.name]
        matrix = render.gate_matrix([_first_branch(r) for r in peers])
        return chart, matrix, []
    peers = [r for r in trace if isinstance(r, ChannelWeights) and r.name == rec.name]
    return (render.gate_chart(rec.values, rec.value_kind, f"{rec.layer} · {rec.name}"),
            render.gate_matrix(peers), render.feature_tiles(trace, rec))


def _first_branch(rec: BranchWeights) -> ChannelWeights:
    """A branch-weight record as one row per channel: the weight of branch 0."""
    return ChannelWeights(values=rec.values[0], layer=rec.layer, family=rec.family,
                          name=rec.name, grid=rec.grid, stage=rec.stage, call=rec.call)


@readable
def compare(session: Optional[Session], models: list[str], stage: int, pretrained: bool,
            alpha: float, cmap: str, progress: gr.Progress = gr.Progress()):
    """The same photo through several networks, each one's map at the same stage."""
    session = _need(session)
    if not models:
        raise gr.Error("Choose at least one network to compare.")
    tiles = []
    for name in progress.tqdm(models[:4], desc="Running networks"):
        card = zoo.get(name)
        trace = analyze(session.trace.image, name,
                        pretrained=pretrained or card.availability() == "bundled")
        found = analysis.stage_map(trace, int(stage))
        if found is None:
            tiles.append((render.fit(trace.image, 384), f"{card.family} · {name}: no attention "
                                                         f"at stage {stage}"))
            continue
        values, what = found
        tiles.append((render.map_on_image(trace, values, 384, alpha, cmap, enlarge=True),
                      f"{card.family} · {name} · stage {stage}: {what}"))
    return tiles


@readable
def export(session: Optional[Session], cmap: str) -> str:
    session = _need(session)
    data = export_zip(session.trace, session.queries[-20:], cmap=cmap)
    folder = sessions.temp_folder("export")
    path = folder / f"visattn_{safe_name(session.trace.model)}.zip"
    path.write_bytes(data)
    return str(path)


@readable
def run_stats(files, use_examples: bool, model_name: str, pretrained: bool,
              progress: gr.Progress = gr.Progress()):
    """Excitation statistics over uploaded images (or the shipped examples), streamed."""
    from .excitation import ExcitationStats
    paths = [f if isinstance(f, str) else f.name for f in (files or [])]
    if use_examples or not paths:
        paths += [str(p) for p in EXAMPLES]
    card = zoo.get(model_name)
    stats = ExcitationStats(labels=list(card.class_names))
    skipped = 0
    for path in progress.tqdm(paths, desc="Images"):
        try:
            stats.add(analyze(path, model_name, pretrained=pretrained))
        except ImageError:
            skipped += 1
    if not stats.blocks():
        raise gr.Error(f"{model_name} has no channel gates; choose SE, ECA, CBAM, GSoP, ...")
    folder = sessions.temp_folder("stats")
    csv_path = folder / f"excitation_{safe_name(model_name)}.csv"
    csv_path.write_text(stats.to_csv())
    top = max(stats.blocks(), key=stats.divergence)
    text = (f"{stats.images} images ({skipped} skipped). Gates are most class-specific at "
            f"**{top}** (divergence {stats.divergence(top):.2f}). The CSV holds every "
            "channel's mean and spread per block and predicted class.")
    return render.divergence_plot(stats), str(csv_path), text


@readable
def attention_vs_gradcam(session: Optional[Session], key: str, top_pct: float, cmap: str):
    """The block's own attention next to Grad-CAM of the predicted class at that block."""
    import json

    from .gradcam import agreement, gradcam, target_layer
    from .preprocess import prepare
    session = _need(session)
    trace = session.trace
    if not key:
        raise gr.Error("This network has no spatial attention map to compare.")
    rec = trace[key]
    card = zoo.get(trace.model)
    if card.task != "classify":
        raise gr.Error("Grad-CAM explains a class score: choose a classifier.")
    model = zoo.load(trace.model, pretrained=session.pretrained)
    x, geo = prepare(trace.image, trace.preprocess)
    cam = gradcam(model, x, target_layer(rec.layer))  # (H_in, W_in)
    if isinstance(rec, SpatialMap):
        attention = rec.values
    else:  # a pairwise layer: its mean row, where the layer looks on average
        n = rec.grid[0] * rec.grid[1]
        attention = np.mean([rec.row(i) for i in range(0, n, max(1, n // 64))], axis=0)
    import cv2
    attention_in = cv2.resize(attention.astype(np.float32), (cam.shape[1], cam.shape[0]),
                              interpolation=cv2.INTER_LINEAR)
    scores = agreement(attention_in, cam, top=top_pct / 100.0)
    left = render.map_on_image(trace, attention, 384, 0.6, cmap, enlarge=True)
    right = render.map_on_image(trace, cam, 384, 0.6, cmap, enlarge=True)
    folder = sessions.temp_folder("gradcam")
    report = folder / "agreement.json"
    report.write_text(json.dumps({"model": trace.model, "record": key,
                                  "gradcam_layer": target_layer(rec.layer), **scores}, indent=2))
    what = key if isinstance(rec, SpatialMap) else f"{key} (mean row)"
    text = (f"Left: **{what}**. Right: Grad-CAM of the predicted class at "
            f"`{target_layer(rec.layer)}`. Rank correlation **{scores['spearman']:.2f}**, "
            f"IoU of the top {top_pct:.0f} % **{scores['top_iou']:.2f}**.")
    return render.side_by_side(left, right), text, str(report)


@readable
def run_ablation(session: Optional[Session]):
    """Top-1 with each stage's attention switched off (hooks; the network is unchanged)."""
    from .ablation import stage_ablation
    session = _need(session)
    trace = session.trace
    card = zoo.get(trace.model)
    if card.task != "classify":
        raise gr.Error("Switching attention off compares class predictions: choose a classifier.")
    model = zoo.load(trace.model, pretrained=session.pretrained)
    rows = stage_ablation(model, trace.image, trace.preprocess, card.class_names)
    table = []
    for row in rows:
        what = "none (baseline)" if row.stage == 0 else \
            ("every stage" if row.stage is None else f"stage {row.stage}")
        label, p = row.top[0]
        table.append([what, row.switched, label, round(p, 4), "yes" if row.same_top1 else "NO",
                      round(row.baseline_prob_of_top1, 4)])
    return table


def family_row(fam: families.Family) -> str:
    pretrained, own = families.networks(fam)
    names = lambda cards: ", ".join(f"`{c.name}`" for c in cards) or "none"  # noqa: E731
    also = "".join(f"  \nalso: **{f.name}** — [{f.paper}]({f.link}), {f.attends_to}"
                   for f in families.shown_under(fam))
    return (f"**{fam.name}** — [{fam.paper}]({fam.link})  \n"
            f"attends to: {fam.attends_to} · pretrained: {names(pretrained)} · "
            f"trained by VisAttn: {names(own)}" + also + (f"  \n_{fam.note}_" if fam.note else ""))


def open_family(name: str, seg_size: int = SEG_DEFAULT, progress: gr.Progress = gr.Progress()):
    """One click: the family's example network on a sample image, with pretrained weights
    where they are on this machine or can be fetched, else random weights, said plainly."""
    fam = next(f for f in families.FAMILIES if f.name == name)
    model, image = families.example(fam)
    if model is None:
        raise gr.Error(f"No {name} network is available in this installation.")
    card = zoo.get(model)
    pretrained = card.availability() in ("bundled", "cached")
    if not pretrained:
        try:  # downloads where there is network
            zoo.load(model, pretrained=True, progress=None)
            pretrained = True
        except WeightsError:
            pass
    out = run_analysis(image, model, pretrained, seg_size, progress)
    if not pretrained:
        session, top, summary, maps, picker = out
        summary += "\n\n> (Its pretrained weights could not be fetched here.)"
        out = (session, top, summary, maps, picker)
    return (*out, image, gr.Checkbox(value=pretrained), gr.Tabs(selected="overview"))


# ----- page -------------------------------------------------------------------------------

def hover_view() -> gr.HTML:
    """The Non-local tab's hover surface: photo + row of the pixel under the pointer, drawn
    by visattn/static/hover.js from the payload of `hover.payload` (its value)."""
    return gr.HTML(None, html_template=hover.asset("hover.html"), css_template=hover.asset("hover.css"),
                   js_on_load=hover.asset("hover.js")
                   + "\nVisAttnHover.mountGradio(element, props, trigger, watch); // 'pin'",
                   elem_id="nl-hover")


def build() -> gr.Blocks:
    sessions.limit_heaps()  # freed session memory must go back to the system
    start, note = default_model()
    own = [c.name for c in zoo.cards() if c.availability() == "bundled"]
    with gr.Blocks(title="VisAttn", analytics_enabled=False,
                   delete_cache=(600, int(sessions.TTL_S))) as demo:
        session = gr.State(None, time_to_live=sessions.TTL_S,
                           delete_callback=sessions.session_ended)
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column(scale=3):
                image = photo_upload(label="Photo", elem_id="photo", height=340)
                if EXAMPLES:
                    gr.Examples([[str(p)] for p in EXAMPLES], [image], label="Examples",
                                examples_per_page=12)
            with gr.Column(scale=2):
                model = gr.Dropdown(model_choices(), value=start, label="Network",
                                    elem_id="model")
                gr.Markdown(note, visible=bool(note), elem_id="start-note")
                pretrained = gr.Checkbox(value=True, label="Pretrained weights",
                                         info="Untick to see the architecture with random "
                                              "weights (no download).", elem_id="pretrained")
                seg_size = gr.Radio(SEG_CHOICES, value=SEG_DEFAULT, label="Processing size "
                                    "(segmentation networks, short side)", elem_id="seg-size")
                go = gr.Button("Analyse", variant="primary", elem_id="analyse")
                top5 = gr.Label(num_top_classes=5, label="Prediction", elem_id="top5")
                summary = gr.Markdown(elem_id="summary")
        with gr.Row():
            alpha = gr.Slider(0.0, 1.0, 0.5, step=0.05, label="Overlay opacity", elem_id="alpha")
            cmap = gr.Radio(COLORMAPS, value="jet", label="Colour map", elem_id="cmap")
        tab_open = gr.State("overview")
        with gr.Tabs() as tabs:
            with gr.Tab("Overview", id="overview") as tab_overview:
                maps = gr.Gallery(label="Every captured map, in network order", columns=4,
                                  height="auto", object_fit="contain", format="jpeg",
                                  elem_id="maps")
            with gr.Tab("Non-local", id="nonlocal", elem_id="tab-nonlocal") as tab_nonlocal:
                nl_hover = hover_view()
                nl_view = gr.Image(label="The server's row of the pinned pixel", interactive=False,
                                   format="jpeg", visible=False, elem_id="nl-view")
                nl_info = gr.Markdown(elem_id="nl-info")
                with gr.Row(visible=False):  # API twin of a click (clients cannot send clicks)
                    api_layer = gr.Textbox(label="layer")
                    api_head = gr.Textbox(label="head")
                    api_x = gr.Number(precision=0, label="x")
                    api_y = gr.Number(precision=0, label="y")
                    api_zero = gr.Checkbox(False, label="from_zero")
                    api_image = gr.Image(format="png")
                    api_numbers = gr.JSON()
                    api_go = gr.Button("affinity")
            with gr.Tab("Spatial", id="spatial") as tab_spatial:
                with gr.Row():
                    sp_record = gr.Dropdown([], label="Map", elem_id="sp-record")
                    keep = gr.Slider(5, 100, 100, step=5, label="Keep top % of mass",
                                     elem_id="keep")
                sp_view = gr.Image(label="Spatial attention on the photo", interactive=False,
                                   format="jpeg", elem_id="sp-view")
            with gr.Tab("Channel", id="channel") as tab_channel:
                ch_record = gr.Dropdown([], label="Block", elem_id="ch-record")
                ch_chart = gr.Image(label="Weights of this block, channel by channel",
                                    interactive=False, elem_id="ch-chart")
                ch_matrix = gr.Image(label="Blocks × channels (rows: blocks in network order)",
                                     interactive=False, elem_id="ch-matrix")
                ch_tiles = gr.Gallery(label="Feature maps of the most-weighted channels "
                                            "(block input)", columns=4, height="auto",
                                      format="jpeg", elem_id="ch-tiles")
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    cmp_models = gr.Dropdown(model_choices(), value=own[:3], multiselect=True,
                                             max_choices=4, label="Networks", elem_id="cmp-models")
                    cmp_stage = gr.Slider(1, 4, 3, step=1, label="Stage", elem_id="cmp-stage")
                cmp_go = gr.Button("Compare on this photo", elem_id="cmp-go")
                cmp_maps = gr.Gallery(columns=4, height="auto", format="jpeg", elem_id="cmp-maps")
            with gr.Tab("Families", id="families", elem_id="tab-families"):
                gr.Markdown("The twelve attention families of the survey VisAttn follows. "
                            "**Open** runs a network of the family on a sample image.")
                family_buttons = []
                for fam in families.FAMILIES:
                    with gr.Row(equal_height=True):
                        gr.Markdown(family_row(fam), elem_classes="family-row")
                        slug = fam.name.lower().replace("²", "2").replace("-", "")
                        family_buttons.append((fam.name, gr.Button(
                            f"Open {fam.name}", elem_id=f"family-{slug}", scale=0, min_width=160)))
            with gr.Tab("Analyses", id="analyses"):
                gr.Markdown("### Excitation statistics over many images\nThe mean and spread of "
                            "every channel gate per block and predicted class, and where gates "
                            "become class-specific (SENet's excitation plots).")
                with gr.Row():
                    st_files = gr.File(file_count="multiple", file_types=["image"],
                                       label="Images (or use the examples)", elem_id="st-files")
                    st_examples = gr.Checkbox(value=True, label="Add the example images")
                st_go = gr.Button("Gather statistics with the chosen network", elem_id="st-go")
                st_text = gr.Markdown(elem_id="st-text")
                st_plot = gr.Image(label="Class divergence per block", interactive=False,
                                   elem_id="st-plot")
                st_csv = gr.File(label="excitation.csv", elem_id="st-csv")
                gr.Markdown("### Attention vs Grad-CAM\nThe block's own spatial attention next "
                            "to Grad-CAM of the predicted class at the same block.")
                with gr.Row():
                    gc_record = gr.Dropdown([], label="Attention map", elem_id="gc-record")
                    gc_top = gr.Slider(5, 50, 20, step=5, label="Top % for the IoU")
                gc_go = gr.Button("Compare with Grad-CAM", elem_id="gc-go")
                gc_text = gr.Markdown(elem_id="gc-text")
                gc_view = gr.Image(interactive=False, format="jpeg", elem_id="gc-view")
                gc_file = gr.File(label="agreement.json")
                gr.Markdown("### Switching attention off\nEach stage's attention set to neutral "
                            "(gates 1, BAM 0, Non-local branches off) with hooks; the network "
                            "itself is never changed.")
                ab_go = gr.Button("Switch attention off, stage by stage", elem_id="ab-go")
                ab_table = gr.Dataframe(headers=["attention off", "modules", "top-1",
                                                 "probability", "same top-1?",
                                                 "p(original top-1)"], elem_id="ab-table")
            with gr.Tab("Export", id="export"):
                gr.Markdown("Every overlay as PNG, the raw arrays as NPZ and a JSON of model, "
                            "preprocessing, layers and your clicked queries, in one zip.")
                ex_go = gr.Button("Build the zip", elem_id="export-go")
                ex_file = gr.File(label="Download", elem_id="export-file")

        view_outputs = [nl_hover, nl_info, nl_view, session, sp_record, sp_view,
                        ch_record, ch_chart, ch_matrix, ch_tiles, gc_record]
        go.click(run_analysis, [image, model, pretrained, seg_size],
                 [session, top5, summary, maps, model],
                 api_name="analyze", concurrency_id="model", concurrency_limit=1) \
            .success(refresh_views, [session, tab_open, alpha, cmap, keep], view_outputs,
                  api_visibility="private", concurrency_id="view", concurrency_limit=8)
        fast = dict(concurrency_id="view", concurrency_limit=8, api_visibility="private")
        tab_overview.select(lambda: "overview", None, tab_open, **fast)
        tab_nonlocal.select(lambda: "nonlocal", None, tab_open, **fast).then(
            nonlocal_tab, [session, alpha, cmap], [nl_hover, nl_info, nl_view, session], **fast)
        tab_spatial.select(lambda: "spatial", None, tab_open, **fast).then(
            show_spatial, [session, sp_record, alpha, cmap, keep], [sp_view], **fast)
        tab_channel.select(lambda: "channel", None, tab_open, **fast).then(
            show_channels, [session, ch_record], [ch_chart, ch_matrix, ch_tiles], **fast)
        nl_hover.pin(pin_query, [session, alpha, cmap], [nl_info, nl_view, session], **fast)
        alpha.change(None, [alpha], None, js="(a) => window.visattn?.setAlpha?.(a)")
        cmap.change(None, [cmap], None, js="(c) => window.visattn?.setColormap?.(c)")
        api_go.click(affinity_api, [session, api_layer, api_head, api_x, api_y, alpha, cmap, api_zero],
                     [api_image, api_numbers, session], api_name="affinity",
                     concurrency_id="view", concurrency_limit=8)
        for trigger in (sp_record.input, alpha.release, cmap.input, keep.release):
            trigger(show_spatial, [session, sp_record, alpha, cmap, keep], [sp_view], **fast)
        ch_record.input(show_channels, [session, ch_record], [ch_chart, ch_matrix, ch_tiles], **fast)
        cmp_go.click(compare, [session, cmp_models, cmp_stage, pretrained, alpha, cmap], [cmp_maps],
                     concurrency_id="model", concurrency_limit=1, api_visibility="private")
        ex_go.click(export, [session, cmap], [ex_file], concurrency_id="view",
                    concurrency_limit=8, api_visibility="private")
        st_go.click(run_stats, [st_files, st_examples, model, pretrained],
                    [st_plot, st_csv, st_text], concurrency_id="model", concurrency_limit=1,
                    api_visibility="private")
        gc_go.click(attention_vs_gradcam, [session, gc_record, gc_top, cmap],
                    [gc_view, gc_text, gc_file], concurrency_id="model", concurrency_limit=1,
                    api_visibility="private")
        ab_go.click(run_ablation, [session], [ab_table], concurrency_id="model",
                    concurrency_limit=1, api_visibility="private")
        for fam_name, button in family_buttons:
            button.click(functools.partial(open_family, fam_name), [seg_size],
                         [session, top5, summary, maps, model, image, pretrained, tabs],
                         concurrency_id="model", concurrency_limit=1, api_visibility="private") \
                .success(lambda: "overview", None, tab_open, **fast) \
                .success(refresh_views, [session, tab_open, alpha, cmap, keep], view_outputs, **fast)
    demo.unload(session_closed)
    demo.queue(default_concurrency_limit=1, max_size=64)
    return demo
