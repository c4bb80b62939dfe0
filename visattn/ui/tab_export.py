"""The Export tab: one zip of the shown analysis (overlays, arrays, meta, viewer.html)."""
from __future__ import annotations

from typing import Optional

import gradio as gr

from .. import visitors
from ..export import export_zip, safe_name
from ..records import Pairwise
from .common import FAST, Page, Session, keys, need, readable


def export_text(session: Optional[Session]) -> str:
    """What the zip holds for this analysis: viewer.html only where there are rows to point at."""
    viewer = session is None or bool(keys(session.trace, Pairwise))
    return ("Every map as PNG at the photo's size, the raw arrays as NPZ, a JSON of model, "
            "preprocessing, layers and your pinned queries (with their scores)"
            + (", and `viewer.html`, the hover view in one offline file with your pinned "
               "queries marked," if viewer else ",")
            + " in one zip."
            + ("" if viewer else " No `viewer.html`: this network has no pairwise layers to "
               "point at."))


@readable
def export(session: Optional[Session], cmap: str) -> str:
    session = need(session)
    data = export_zip(session.trace, session.queries[-20:], cmap=cmap)
    folder = visitors.temp_folder("export")
    path = folder / f"visattn_{safe_name(session.trace.model)}.zip"
    path.write_bytes(data)
    return str(path)


def build_export_tab(page: Page) -> gr.Tab:
    with gr.Tab("Export", id="export") as tab:
        text = gr.Markdown(export_text(None), elem_id="export-text")
        go = gr.Button("Build the zip", elem_id="export-go")
        file = gr.File(label="Download", elem_id="export-file")
    go.click(export, [page.session, page.cmap], [file], **FAST)
    page.after_analysis(lambda s: (None, export_text(s)), [page.session], [file, text])
    # (a zip of another photo is never offered)
    tab.select(lambda: "export", None, page.tab_open, **FAST)
    return tab
