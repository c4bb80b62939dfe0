"""The page's Analyse (issue 20): one server event that analyses, opens the network's own view
and draws it, so the visitor waits for one round trip.

- The open view follows the network: Non-local for a network with pairwise layers, else the
  Overview (when the network changed, or when one of those two was open); the page then
  brings it into the viewport (static/page.js).
- Before it, the page itself clears the old prediction, summary and gallery (a JavaScript-only
  event: no round trip), so an error leaves no stale outputs.
- The analysis event carries what the visitor waits for: the prediction with its heading (a
  Label's value and label in one update), the summary, the Overview's gallery only when the
  Overview is open, and the Non-local tab's refresher (its view drawn only when open). The
  other tabs' refreshers and the picker's statuses follow in one event once the open view
  is drawn; tabs that are not open are drawn when opened.
- A network chosen while another is analysed is said to be queued under the button, and is
  analysed next (page.js presses Analyse again), so the picker and the tabs never disagree.

/analyze stays what it was (`run_analysis` on a hidden button, with its parameters); this
event is the page's own."""
from __future__ import annotations

import threading
from typing import Optional

import gradio as gr

from .. import zoo
from .maps import gallery_files
from ..records import Pairwise
from .analyse_button import analyse_photo, prediction_heading
from .clip_input import analyse_clip
from .common import MODEL, QUIET, Page, keys, readable, session_id
from .inputs import picker

SIGNATURE_TABS = ("nonlocal", "overview")
FIRST_VIEWS = ("nl-hover",)  # elem_ids of the views refreshed in the analysis event itself
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


class Refreshers:
    """Several tabs' refreshers run as one handler: its inputs and outputs (the given ones
    first, then each refresher's, every component once; the session is never an output of
    a refresher here, as they change the session object itself)."""

    def __init__(self, page: Page, inputs: list, outputs: list, plans: list):
        self.page, self.inputs, self.outputs, self.plans = page, list(inputs), list(outputs), plans
        for _fn, ins, outs in plans:
            self.inputs += [c for c in ins if all(c._id != k._id for k in self.inputs)]
            self.outputs += [c for c in outs if c._id != page.session._id
                             and all(c._id != k._id for k in self.outputs)]
        self._in = {c._id: k for k, c in enumerate(self.inputs)}
        self._out = {c._id: k for k, c in enumerate(self.outputs)}

    def run(self, values, out: list, now: dict) -> list:
        """Each refresher on this handler's `values` (`now`: {component id: value} read
        instead); their answers written into `out`."""
        for fn, ins, outs in self.plans:
            result = fn(*[now.get(c._id, values[self._in[c._id]]) for c in ins])
            for c, value in zip(outs, result if isinstance(result, tuple) else (result,)):
                if c._id in self._out and c._id != self.page.session._id:
                    out[self._out[c._id]] = value
        return out


def first_views(page: Page) -> tuple[list, list]:
    """The refreshers split: (those of the views the analysis event draws, the others)."""
    first = [r for r in page.refreshers if any(getattr(c, "elem_id", None) in FIRST_VIEWS for c in r[2])]
    return first, [r for r in page.refreshers if r not in first]


def wire_analyse(page: Page, go, tabs, summary, maps, analysed_model, queue_note):
    """The Analyse button's events (the page's, not /analyze). Returns the analysis event."""
    first, rest = first_views(page)
    main = Refreshers(page, [page.image, page.model, page.pretrained, page.seg_size, page.alpha,
                             page.cmap, page.tab_open, page.session, page.clip, page.source],
                      [page.session, page.top5, summary, maps, analysed_model, page.tab_open, tabs,
                       queue_note], first)
    later = Refreshers(page, [page.session, page.model, page.pretrained], [page.model], rest)

    @readable
    def analyse(*values):
        image, model, pretrained, seg_size, alpha, cmap, open_tab, old, clip, source = values[:10]
        sid = session_id()
        with _LOCK:
            _RUNNING[sid] = model
        try:
            if source == "clip":  # the input given last (ui.clip_input)
                session, top, text = analyse_clip(clip, model, pretrained)
            else:
                session, top, text = analyse_photo(image, model, pretrained, seg_size)
            name = model
        finally:
            with _LOCK:
                _RUNNING.pop(sid, None)
        tab = next_tab(old, session, open_tab)
        # the Overview's gallery drawn only where it is seen
        gallery = gallery_files(session.trace, alpha=alpha, cmap=cmap) if tab == "overview" else []
        heading = prediction_heading(session)  # a Label update costs Gradio a config rebuild
        label = top if heading == prediction_heading(old) else gr.Label(value=top, label=heading)
        out = [gr.skip()] * len(main.outputs)
        out[:8] = [session, label, text,
                   gallery, name, tab, gr.Tabs(selected=tab),
                   ""]  # the queued network, if any, is analysed next
        return tuple(main.run(values, out, {page.session._id: session, page.tab_open._id: tab}))

    @readable
    def refresh_rest(session, model, pretrained, *values):
        """The tabs not drawn by the analysis event, and the picker's statuses now (a
        download makes a network ready)."""
        out = [picker(model, pretrained)] + [gr.skip()] * (len(later.outputs) - 1)
        return tuple(later.run((session, model, pretrained, *values), out, {}))

    # stale outputs cleared in the page, no round trip (the Label to an empty value: after a
    # null, Gradio 6's Label no longer redraws its bars)
    cleared = go.click(None, None, [page.top5, summary, maps, queue_note],
                       js="() => { window.visattnPage?.analysing?.(); "
                          "return [{label: null, confidences: []}, '', [], '']; }")
    event = cleared.then(analyse, main.inputs, main.outputs, api_visibility="private",
                         show_progress_on=[page.top5, summary], **MODEL)
    drawn = event.success(None, [page.model, analysed_model], None,
                          js="async (m, a) => { window.visattnPage?.runQueued?.(m, a); "
                             "await window.visattnPage?.drawn?.(); return []; }")
    release = "() => { window.visattnPage?.releaseTabs?.(); return []; }"  # held tab clicks
    drawn.then(refresh_rest, later.inputs, later.outputs, **QUIET).then(None, None, None, js=release)
    event.failure(None, None, None, js=release)
    return event
