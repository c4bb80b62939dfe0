"""The page's Analyse (issue 20): one event that analyses, opens the network's own view and
draws only the open tab, so the visitor waits for one round trip, not one per tab.

- The open view follows the network: Non-local for a network with pairwise layers, else the
  Overview (when the network changed, or when one of those two was open); the page then
  brings it into the viewport (static/page.js).
- Tabs that are not open are drawn when opened (each tab's refresher draws only for its own
  open tab; the Overview's gallery is sent only when it is open).
- A network chosen while another is analysed is said to be queued under the button, and is
  analysed next (page.js presses Analyse again), so the picker and the tabs never disagree.

/analyze stays what it was (`run_analysis` on a hidden button, with its parameters); this
event is the page's own."""
from __future__ import annotations

import threading
from typing import Optional

import gradio as gr

from .. import zoo
from ..records import Pairwise
from .analyse_button import prediction_label, run_analysis
from .clip_input import run_video_analysis
from .common import FAST, MODEL, Page, keys, readable, session_id

SIGNATURE_TABS = ("nonlocal", "overview")
_RUNNING: dict = {}  # session id -> the network being analysed for it
_LOCK = threading.Lock()


def signature_tab(trace) -> str:
    """The view a network is about: its pointable rows where it has pairwise layers."""
    return "nonlocal" if keys(trace, Pairwise) else "overview"


def next_tab(old, new, open_tab: str) -> str:
    """The tab to show after an analysis: the new network's own view when the network changed
    or one of the signature views was open; else the open tab stays."""
    changed = old is None or old.trace.model != new.trace.model
    return signature_tab(new.trace) if changed or open_tab in SIGNATURE_TABS else open_tab


def running(sid: Optional[str]) -> str:
    with _LOCK:
        return _RUNNING.get(sid, "")


def queued_note(model: str) -> str:
    """Under Analyse, when a network is chosen during another's analysis."""
    now = running(session_id())
    if not now or now == model:
        return ""
    return (f"Analysing {now} now; {model} is queued and will be analysed when it finishes "
            "(the tabs show one network at a time).")


def is_segmenter_with_sizes(name: str) -> bool:
    """Does the processing-size choice apply (segmentation networks that keep the ratio)?"""
    card = zoo.get(name)
    return card.task == "segment" and card.preprocess.mode == "keep_ratio"


def input_extras(model: str, start: str):
    """A network chosen: the processing size only where it applies, the start note only for
    the start network, the queue note."""
    try:
        sized = is_segmenter_with_sizes(model)
    except KeyError:
        sized = False
    return gr.update(visible=sized), gr.update(visible=model == start), queued_note(model)


def wire_analyse(page: Page, go, tabs, summary, maps, analysed_model, queue_note):
    """The Analyse button's events (the page's, not /analyze). Returns the analysis event."""
    base = [page.image, page.model, page.pretrained, page.seg_size, page.alpha, page.cmap,
            page.tab_open, page.session, page.clip, page.source]
    fixed = [page.session, page.top5, summary, maps, analysed_model, page.tab_open, tabs, queue_note]
    extra_in, plans, extra_out = [], [], []
    ids = lambda comps: [c._id for c in comps]  # noqa: E731
    for fn, inputs, outputs in page.refreshers:
        for c in inputs:
            if c._id not in ids(base) + ids(extra_in):
                extra_in.append(c)
        for c in outputs:
            if c._id not in ids(fixed) + ids(extra_out):
                extra_out.append(c)
        plans.append((fn, inputs, outputs))
    all_in, all_out = base + extra_in, fixed + extra_out
    where_in = {c._id: k for k, c in enumerate(all_in)}
    where_out = {c._id: k for k, c in enumerate(all_out)}

    @readable
    def analyse(*values):
        image, model, pretrained, seg_size, alpha, cmap, open_tab, old, clip, source = values[:10]
        sid = session_id()
        with _LOCK:
            _RUNNING[sid] = model
        try:
            if source == "clip":  # the input given last (ui.clip_input)
                session, top, text, gallery, name = run_video_analysis(clip, model, pretrained,
                                                                       alpha, cmap)
            else:
                session, top, text, gallery, name = run_analysis(image, model, pretrained,
                                                                 seg_size, alpha, cmap)
        finally:
            with _LOCK:
                _RUNNING.pop(sid, None)
        tab = next_tab(old, session, open_tab)
        out = [gr.skip()] * len(all_out)
        out[:8] = [session, top, text,
                   gallery if tab == "overview" else gr.skip(), name, tab, gr.Tabs(selected=tab),
                   ""]  # the queued network, if any, is analysed next
        now = {page.session._id: session, page.tab_open._id: tab}
        for fn, inputs, outputs in plans:
            args = [now.get(c._id, values[where_in[c._id]]) for c in inputs]
            result = fn(*args)
            result = result if isinstance(result, tuple) else (result,)
            for c, value in zip(outputs, result):
                if c._id == page.session._id:
                    continue  # the same session object
                out[where_out[c._id]] = value
        return tuple(out)

    cleared = go.click(lambda: (None, "", [], ""), None, [page.top5, summary, maps, queue_note],
                       js="() => { window.visattnPage?.analysing?.(); return []; }", **FAST)  # stale
    event = cleared.then(analyse, all_in, all_out, api_visibility="private", **MODEL)
    # the heading as its own update: Gradio 6 drops a label sent with a Label's new value
    event.success(prediction_label, [page.session], [page.top5], **FAST)
    event.success(None, [page.model, analysed_model], None,
                  js="(m, a) => { window.visattnPage?.runQueued?.(m, a); "
                     "window.visattnPage?.bringIntoView?.(); return []; }")
    return event
