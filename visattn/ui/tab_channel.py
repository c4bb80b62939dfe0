"""The Channel tab: one block's gates on labelled axes, all blocks x channels, and the
feature maps of the most-weighted channels."""
from __future__ import annotations

from typing import Optional

import gradio as gr

from .. import render
from ..records import BranchWeights, ChannelWeights, view_of
from .common import FAST, Page, Session, readable

CHANNEL_VIEWS = ("channel", "branch", "axes")  # the records this tab draws

NO_CHANNEL = ("This network has no channel gates or branch weights: try SE, ECA, CBAM, "
              "GSoP, SK or ResNeSt networks (`tiny_se`, `seresnet50`, ...), or DANet's channel "
              "attention. The ADE20K Non-local, DNL and CCNet heads attend over positions: see "
              "the Non-local tab.")


@readable
def show_channels(session: Optional[Session], key: str, alpha: float = 0.6, cmap: str = "viridis"):
    """(chart of the block's weights, blocks x channels matrix, top-channel feature maps)."""
    if session is None or not key:
        return None, None, []
    trace, rec = session.trace, session.trace[key]
    peers = [r for r in trace if view_of(r) == view_of(rec) and r.name == rec.name]
    if view_of(rec) == "axes":
        return render.axis_gate_view(rec), None, [(render.axis_gate_view(r, 384), r.key)
                                                  for r in peers]
    if view_of(rec) == "branch":
        return render.branch_chart(rec), render.gate_matrix([first_branch(r) for r in peers]), []
    return (render.gate_chart(rec.values, rec.value_kind, f"{rec.layer} · {rec.name}"),
            render.gate_matrix(peers), render.feature_tiles(trace, rec, cmap=cmap, alpha=alpha))


@readable
def show_tiles(session: Optional[Session], key: str, alpha: float, cmap: str):
    """Only the feature maps (what opacity and colour map change)."""
    rec = session.trace[key] if session is not None and key else None
    return render.feature_tiles(session.trace, rec, cmap=cmap, alpha=alpha) \
        if rec is not None and view_of(rec) == "channel" else []


def first_branch(rec: BranchWeights) -> ChannelWeights:
    """A branch-weight record as one row per channel: the weight of branch 0."""
    return ChannelWeights(values=rec.values[0], layer=rec.layer, family=rec.family,
                          name=rec.name, grid=rec.grid, stage=rec.stage, call=rec.call,
                          value_kind="probability")


def refresh(session: Optional[Session], tab: str, alpha: float, cmap: str):
    """A new analysis -> (block picker, its views if the tab is open, why it is empty)."""
    trace = session.trace if session else None
    found = [r.key for r in trace if view_of(r) in CHANNEL_VIEWS] if trace else []
    first = found[0] if found else None
    views = show_channels(session, first, alpha, cmap) if first and tab == "channel" \
        else (None, None, [])
    note = NO_CHANNEL if session is not None and not found else ""
    return gr.Dropdown(choices=found, value=first), *views, note


def build_channel_tab(page: Page) -> gr.Tab:
    with gr.Tab("Channel", id="channel") as tab:
        record = gr.Dropdown([], label="Block", elem_id="ch-record")
        note = gr.Markdown(elem_id="ch-note")
        chart = gr.Image(label="Weights of this block, channel by channel", interactive=False,
                         elem_id="ch-chart")
        matrix = gr.Image(label="Blocks × channels (rows: blocks in network order)",
                          interactive=False, elem_id="ch-matrix")
        tiles = gr.Gallery(label="Feature maps of the most-weighted channels (block input)",
                           columns=4, height="auto", format="jpeg", elem_id="ch-tiles")
    inputs, views = [page.session, record, page.alpha, page.cmap], [chart, matrix, tiles]
    page.after_analysis(refresh, [page.session, page.tab_open, page.alpha, page.cmap],
                        [record, *views, note])
    page.on_restyle("channel", show_tiles, inputs, [tiles])
    tab.select(lambda: "channel", None, page.tab_open, **FAST).then(show_channels, inputs, views, **FAST)
    record.input(show_channels, inputs, views, **FAST)
    return tab
