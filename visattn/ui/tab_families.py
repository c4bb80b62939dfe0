"""The Families page: the twelve attention families, each with its paper, what it attends
to, its networks, and one click to its example."""
from __future__ import annotations

import functools

import gradio as gr

from .. import families, zoo
from ..opener import open_network
from ..weights import WeightsError
from .analyse_button import run_analysis
from .common import MODEL, Page
from .inputs import SEG_DEFAULT


def family_row(fam: families.Family) -> str:
    pretrained, own = families.networks(fam)
    names = lambda cards: ", ".join(f"`{c.name}`" for c in cards) or "none"  # noqa: E731
    also = "".join(f"  \nalso: **{f.name}** — [{f.paper}]({f.link}), {f.attends_to}"
                   for f in families.shown_under(fam))
    return (f"**{fam.name}** — [{fam.paper}]({fam.link})  \n"
            f"attends to: {fam.attends_to} · pretrained: {names(pretrained)} · "
            f"trained by VisAttn: {names(own)}" + also + (f"  \n_{fam.note}_" if fam.note else ""))


def open_family(name: str, seg_size: int = SEG_DEFAULT, alpha: float = 0.5, cmap: str = "jet",
                progress: gr.Progress = gr.Progress()):
    """One click: the family's example network on a sample image, with pretrained weights
    where they are on this machine or can be fetched, else random weights, said plainly.
    -> (session, top-5, summary, gallery, network, photo, pretrained box, tabs)."""
    fam = next(f for f in families.FAMILIES if f.name == name)
    model, image = families.example(fam)
    if model is None:
        raise gr.Error(f"No {name} network is available in this installation.")
    pretrained = zoo.get(model).availability() in ("bundled", "cached")
    if not pretrained:
        try:  # downloads where there is network
            open_network(model, pretrained=True)
            pretrained = True
        except WeightsError:
            pass
    session, top, summary, maps, _ = run_analysis(image, model, pretrained, seg_size, alpha,
                                                  cmap, progress)
    if not pretrained:
        summary += "\n\n> (Its pretrained weights could not be fetched here.)"
    return (session, top, summary, maps, model, image, gr.Checkbox(value=pretrained),
            gr.Tabs(selected="overview"))


def build_families_tab(page: Page, analysed_outputs: list, tabs) -> list:
    """The page of families; returns the events of its Open buttons (each a new analysis)."""
    events = []
    with gr.Tab("Families", id="families", elem_id="tab-families"):
        gr.Markdown("The twelve attention families of the survey VisAttn follows. "
                    "**Open** runs a network of the family on a sample image.")
        for fam in families.FAMILIES:
            with gr.Row(equal_height=True):
                gr.Markdown(family_row(fam), elem_classes="family-row")
                slug = fam.name.lower().replace("²", "2").replace("-", "")
                button = gr.Button(f"Open {fam.name}", elem_id=f"family-{slug}", scale=0,
                                   min_width=160)
            events.append(button.click(
                functools.partial(open_family, fam.name), [page.seg_size, page.alpha, page.cmap],
                [*analysed_outputs[:4], page.model, page.image, page.pretrained, tabs],
                api_visibility="private", **MODEL))
    return events
