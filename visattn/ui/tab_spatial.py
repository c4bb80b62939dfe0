"""The Spatial tab: CBAM / BAM / GC / DNL maps on the photo, image left, controls right."""
from __future__ import annotations

from typing import Optional

import gradio as gr

from .. import render
from ..records import SpatialMap
from .analyse_button import crop_note
from .common import FAST, Page, Session, keys, readable

NO_SPATIAL = ("This network has no spatial attention map: try `tiny_cbam`, `tiny_bam`, "
              "`tiny_gc`, CBAM or BAM ResNet-50, or GCNet.")
WHAT = {  # records.ValueKind -> what the numbers of a spatial map are
    "gate": "a gate per position (0 to 1) that multiplies every channel of the block's "
            "features there: 1 keeps them, 0 silences them",
    "probability": "weights over positions that sum to 1: where the block pools one summary "
                   "of the whole image from",
    "logit": "a score per position before its sigmoid: higher keeps more of the features there",
    "vector": "a value added at each position",
}


def map_note(session: Optional[Session], key: str) -> str:
    """One line saying what the chosen map is, and the centre-crop sentence where the
    network saw only part of the photo (the dimmed area)."""
    if session is None or not key:
        return ""
    rec = session.trace[key]
    what = WHAT.get(rec.value_kind, rec.value_kind)
    line = (f"**{rec.layer} · {rec.name}** ({rec.family}, {rec.grid[0]}×{rec.grid[1]} grid, "
            f"stretched over the photo): {what}.")
    crop = crop_note(session.trace)
    return line + (f"\n\n{crop}" if crop else "")


@readable
def show_spatial(session: Optional[Session], key: str, alpha: float, cmap: str, keep: float):
    if session is None or not key:
        return None
    return render.spatial_view(session.trace, session.trace[key], alpha=alpha, cmap=cmap,
                               keep_mass=keep / 100.0)


def refresh(session: Optional[Session], tab: str, alpha: float, cmap: str, keep: float):
    """A new analysis -> (map picker, view if the tab is open, why it is empty)."""
    found = keys(session.trace if session else None, SpatialMap)
    first = found[0] if found else None
    view = show_spatial(session, first, alpha, cmap, keep) if first and tab == "spatial" else None
    note = NO_SPATIAL if session is not None and not found else map_note(session, first)
    return gr.Dropdown(choices=found, value=first), view, note


def build_spatial_tab(page: Page) -> gr.Tab:
    with gr.Tab("Spatial", id="spatial") as tab:
        with gr.Row():
            with gr.Column(scale=3):
                view = gr.Image(label="Spatial attention on the photo", interactive=False,
                                format="jpeg", height="62vh", elem_id="sp-view")
            with gr.Column(scale=2):
                record = gr.Dropdown([], label="Map", elem_id="sp-record")
                keep = gr.Slider(5, 100, 100, step=5, label="Keep top % of mass", elem_id="keep")
                note = gr.Markdown(elem_id="sp-note")
    inputs = [page.session, record, page.alpha, page.cmap, keep]
    page.after_analysis(refresh, [page.session, page.tab_open, page.alpha, page.cmap, keep],
                        [record, view, note])
    page.on_restyle("spatial", show_spatial, inputs, [view])
    tab.select(lambda: "spatial", None, page.tab_open, **FAST).then(show_spatial, inputs, [view], **FAST)
    for trigger in (record.input, keep.input):
        trigger(show_spatial, inputs, [view], trigger_mode="always_last", **FAST)
    record.input(map_note, [page.session, record], [note], trigger_mode="always_last", **FAST)
    return tab
