"""The Compare tab: the same photo through several networks, each one's map at one stage."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import gradio as gr
import numpy as np

from .. import metrics, render, zoo
from ..pipeline import analyze
from ..records import Trace
from ..weights import WeightsError
from .common import FAST, MODEL, Page, Session, need, public_message, readable
from .inputs import COMPARE_THEN, model_choices, unavailable_reason, uses_pretrained


@lru_cache(maxsize=None)
def stages_with_attention(name: str) -> frozenset:
    """The stages at which a bundled network has something to compare (one 64 px forward)."""
    trace = analyze(np.full((64, 64, 3), 128, np.uint8), name)
    return frozenset(s for s in range(1, 5) if metrics.stage_map(trace, s) is not None)


def default_networks(stage: int, count: int = 3) -> list[str]:
    """Bundled networks of different families, each with attention at `stage`."""
    own = [c for c in zoo.cards() if c.availability() == "bundled" and c.task == "classify"]
    return [c.name for c in own if stage in stages_with_attention(c.name)][:count]


@readable
def compare(session: Optional[Session], models: list[str], stage: int, pretrained: bool,
            alpha: float, cmap: str, progress: gr.Progress = gr.Progress()):
    """Run each chosen network (at most 4) on the session's photo; keep each one's map at
    the stage so opacity and colour map redraw without running them again."""
    session = need(session)
    if not models:
        raise gr.Error("Choose at least one network to compare.")
    session.compared = []
    left_out: dict[str, list[str]] = {}  # why -> the networks that could not run
    for name in progress.tqdm(models[:4], desc="Running networks"):
        card = zoo.get(name)
        use = uses_pretrained(name, pretrained)
        why = unavailable_reason(card) if use and card.availability() == "download" else ""
        if why:
            why = f"their pretrained weights cannot be had now: {why}"
        else:
            try:
                trace = analyze(session.trace.image, name, pretrained=use)
            except WeightsError as exc:
                why = exc.public.removeprefix(f"{name}: ").rstrip(".")
            except Exception as exc:  # noqa: BLE001 - one network's failure, said, not fatal
                why = public_message(exc).rstrip(".")
        if why:
            left_out.setdefault(why, []).append(name)
            continue
        found = metrics.stage_map(trace, int(stage))
        light = Trace(trace.model, [], trace.geometry, image=trace.image)
        values, what = found if found is not None else (None, f"no attention at stage {stage}")
        session.compared.append((light, values, f"{card.family} · {name} · stage {stage}: {what}"))
    return compared_tiles(session, alpha, cmap), not_compared(left_out), session


def not_compared(left_out: dict) -> str:
    """One sentence naming the networks that could not be compared and why, or ''."""
    if not left_out:
        return ""
    parts = [f"{_names(names)} ({why})" for why, names in left_out.items()]
    return "Not compared: " + "; ".join(parts) + "."


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def compared_tiles(session: Optional[Session], alpha: float, cmap: str):
    """The kept comparison drawn with the current opacity and colour map."""
    if session is None:
        return []
    return [(render.map_on_image(t, v, 384, alpha, cmap, enlarge=True) if v is not None
             else render.fit(t.image, 384), caption) for t, v, caption in session.compared]


def fresh(pretrained: bool):
    """A new analysis: the old comparison is gone, and the networks' statuses are now's."""
    return [], "", gr.Dropdown(choices=model_choices(bool(pretrained), COMPARE_THEN))


def build_compare_tab(page: Page) -> gr.Tab:
    with gr.Tab("Compare", id="compare") as tab:
        with gr.Row():
            models = gr.Dropdown(model_choices(then=COMPARE_THEN), value=default_networks(3),
                                 multiselect=True,
                                 max_choices=4, label="Networks", elem_id="cmp-models")
            stage = gr.Slider(1, 4, 3, step=1, label="Stage", elem_id="cmp-stage")
        go = gr.Button("Compare on this photo", elem_id="cmp-go")
        note = gr.Markdown(elem_id="cmp-note")
        tiles = gr.Gallery(columns=4, height="auto", format="jpeg", elem_id="cmp-maps")
    go.click(compare, [page.session, models, stage, page.pretrained, page.alpha, page.cmap],
             [tiles, note, page.session], api_visibility="private", **MODEL)
    page.after_analysis(fresh, [page.pretrained], [tiles, note, models])  # a new photo
    page.on_restyle("compare", compared_tiles, [page.session, page.alpha, page.cmap], [tiles])
    tab.select(lambda: "compare", None, page.tab_open, **FAST).then(
        compared_tiles, [page.session, page.alpha, page.cmap], [tiles], **FAST)
    return tab
