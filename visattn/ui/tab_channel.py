"""The Channel tab: one block's weights on labelled axes, all blocks x channels, and the
feature maps of the most-weighted channels; a channel affinity (DANet) as its own matrix.
What is drawn, and which boxes are shown, follows each record's `view`; a box with
nothing to show is hidden, never left empty."""
from __future__ import annotations

from typing import Optional

import gradio as gr

from .. import render
from ..records import BranchWeights, ChannelWeights, view_of
from .common import FAST, Page, Session, readable

CHANNEL_VIEWS = ("channel", "branch", "axes", "channel_affinity")  # the records this tab draws

NO_CHANNEL = ("This network has no channel gates or branch weights: try SE, ECA, CBAM, "
              "GSoP, SK or ResNeSt networks (`tiny_se`, `seresnet50`, ...), or DANet's channel "
              "attention. The ADE20K Non-local, DNL and CCNet heads attend over positions: see "
              "the Non-local tab.")
CHART = "Weights of this block, channel by channel"
AFFINITY = ("Channel affinity: row c is where channel c takes its features from (each row "
            "sums to 1)")
AXES = "This block's gate over its two axes"
AFFINITY_NOTE = ("**{key}** is a channel × channel affinity (DANet's channel attention): "
                 "channel c is replaced by a weighted sum of all {c} channels, with row c's "
                 "weights ({spread}). It has no map on the photo and no gate per channel. "
                 "Strongest pairs (channel ← from: weight): {pairs}.")


def _image(value, label: str) -> dict:
    return gr.update(value=value, label=label, visible=value is not None)


def _gallery(items: list) -> dict:
    return gr.update(value=items, visible=bool(items))


def _nothing():
    return _image(None, CHART), _image(None, ""), _gallery([]), ""


@readable
def show_channels(session: Optional[Session], key: str, alpha: float = 0.6, cmap: str = "viridis"):
    """(the block's picture, blocks x channels matrix, feature maps, a note), each box
    hidden when this kind of record has nothing for it."""
    if session is None or not key:
        return _nothing()
    trace, rec = session.trace, session.trace[key]
    view = view_of(rec)
    peers = [r for r in trace if view_of(r) == view and r.name == rec.name]
    if view == "channel_affinity":
        pairs = "; ".join(render.strongest_pairs_text(rec, 5))
        return (_image(render.channel_affinity_view(rec), AFFINITY), _image(None, ""),
                _gallery([]), AFFINITY_NOTE.format(key=rec.key, c=rec.values.shape[0], pairs=pairs,
                                                   spread=" ".join(render.spread_text(rec).split())))
    if view == "axes":
        others = [(render.axis_gate_view(r, 384), r.key) for r in peers if r is not rec]
        return (_image(render.axis_gate_view(rec), AXES), _image(None, ""),
                _gallery_labelled(others, "The same gate in the other blocks"), "")
    if view == "branch":
        return (_image(render.branch_chart(rec), "Branch weights of this block"),
                _matrix([first_branch(r) for r in peers]), _gallery([]), "")
    return (_image(render.gate_chart(rec.values, rec.value_kind, f"{rec.layer} · {rec.name}"), CHART),
            _matrix(peers), _gallery_labelled(render.feature_tiles(trace, rec, cmap=cmap, alpha=alpha),
                                              TILES), "")


TILES = "Feature maps of the most-weighted channels (block input)"
MATRIX = "Blocks × channels (rows: blocks in network order)"


def _matrix(records: list) -> dict:
    """Blocks x channels, shown only where there are at least two blocks to set side by side."""
    return _image(render.gate_matrix(records) if len(records) > 1 else None, MATRIX)


def _gallery_labelled(items: list, label: str) -> dict:
    return gr.update(value=items, label=label, visible=bool(items))


@readable
def show_tiles(session: Optional[Session], key: str, alpha: float, cmap: str):
    """Only the feature maps (what opacity and colour map change)."""
    rec = session.trace[key] if session is not None and key else None
    if rec is None or view_of(rec) != "channel":
        return gr.skip()
    return _gallery_labelled(render.feature_tiles(session.trace, rec, cmap=cmap, alpha=alpha), TILES)


def first_branch(rec: BranchWeights) -> ChannelWeights:
    """A branch-weight record as one row per channel: the weight of branch 0."""
    return ChannelWeights(values=rec.values[0], layer=rec.layer, family=rec.family,
                          name=rec.name, grid=rec.grid, stage=rec.stage, call=rec.call,
                          value_kind="probability")


def refresh(session: Optional[Session], tab: str, alpha: float, cmap: str):
    """A new analysis -> (block picker, its views if the tab is open, what it shows or why
    it is empty)."""
    trace = session.trace if session else None
    found = [r.key for r in trace if view_of(r) in CHANNEL_VIEWS] if trace else []
    first = found[0] if found else None
    views = show_channels(session, first, alpha, cmap) if first and tab == "channel" \
        else _nothing()
    note = NO_CHANNEL if session is not None and not found else views[3]
    return gr.Dropdown(choices=found, value=first, visible=bool(found) or session is None), \
        *views[:3], note


def build_channel_tab(page: Page) -> gr.Tab:
    with gr.Tab("Channel", id="channel") as tab:
        record = gr.Dropdown([], label="Block", elem_id="ch-record")
        note = gr.Markdown(elem_id="ch-note")
        chart = gr.Image(label=CHART, interactive=False, visible=False, elem_id="ch-chart")
        matrix = gr.Image(label=MATRIX, interactive=False, visible=False, elem_id="ch-matrix")
        tiles = gr.Gallery(label=TILES, columns=4, height="auto", format="jpeg", visible=False,
                           elem_id="ch-tiles")
    inputs, views = [page.session, record, page.alpha, page.cmap], [chart, matrix, tiles, note]
    page.after_analysis(refresh, [page.session, page.tab_open, page.alpha, page.cmap],
                        [record, chart, matrix, tiles, note])
    page.on_restyle("channel", show_tiles, inputs, [tiles])
    tab.select(lambda: "channel", None, page.tab_open, **FAST).then(show_channels, inputs, views, **FAST)
    record.input(show_channels, inputs, views, **FAST)
    return tab
