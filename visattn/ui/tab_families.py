"""The Families page: the twelve attention families, each with its paper, what it attends
to, its networks, and one click to its example."""
from __future__ import annotations

import functools

import gradio as gr

from .. import families, zoo
from .maps import gallery_files
from ..opener import open_network
from ..weights import WeightsError
from .analyse_button import analyse_photo
from .analyse_page import signature_tab
from .clip_input import analyse_clip, choose_for
from .common import FAST, MODEL, Page
from .inputs import SEG_DEFAULT


def family_row(fam: families.Family) -> str:
    pretrained, own = families.networks(fam)
    names = lambda cards: ", ".join(f"`{c.name}`" for c in cards) or "none"  # noqa: E731
    also = "".join(f"  \nalso: **{f.name}** — [{f.paper}]({f.link}), {f.attends_to}"
                   for f in families.shown_under(fam))
    return (f"**{fam.name}** — [{fam.paper}]({fam.link})  \n"
            f"attends to: {fam.attends_to} · pretrained: {names(pretrained)} · "
            f"trained by VisAttn: {names(own)}" + also + (f"  \n_{fam.note}_" if fam.note else ""))


def family_inputs(name: str):
    """Step 1 of Open: the picker lists the example's kind of networks and shows its network
    (before the example is shown, so the input's change event reads the new network)
    -> (picker, the input given last)."""
    model, example = example_of(name)
    kind = input_kind(example)
    return choose_for(kind, model, True), kind


def input_kind(example: str) -> str:
    return "clip" if families.is_clip(example) else "photo"


def family_example(name: str):
    """Step 2: the example in its input -> (photo, clip)."""
    _, example = example_of(name)
    return (gr.skip(), example) if input_kind(example) == "clip" else (example, gr.skip())


def open_family(name: str, seg_size: int = SEG_DEFAULT, alpha: float = 0.5, cmap: str = "jet",
                progress: gr.Progress = gr.Progress()):
    """Step 3, the analysis: the family's example network on its sample photo or clip, with
    pretrained weights where they are on this machine or can be fetched, else random
    weights, said plainly; the network's own view opens (the Non-local hover view for a
    clip). -> (session, top-5, summary, gallery, picker (again: an earlier event may have
    set it meanwhile), pretrained box, the open tab's id, tabs)."""
    model, example = example_of(name)
    pretrained = fetched(model)
    if input_kind(example) == "clip":
        session, top, summary = analyse_clip(example, model, pretrained, progress)
    else:
        session, top, summary = analyse_photo(example, model, pretrained, seg_size, progress)
    if not pretrained:
        summary += "\n\n> (Its pretrained weights could not be fetched here.)"
    tab = signature_tab(session.trace)
    maps = gallery_files(session.trace, alpha=alpha, cmap=cmap) if tab == "overview" else []
    return (session, top, summary, maps, choose_for(input_kind(example), model, pretrained),
            gr.Checkbox(value=pretrained), tab, gr.Tabs(selected=tab))


def example_of(name: str) -> tuple[str, str]:
    """(network, example file) of the family called `name`."""
    fam = next(f for f in families.FAMILIES if f.name == name)
    model, example = families.example(fam)
    if model is None:
        raise gr.Error(f"No {name} network is available in this installation.")
    return model, example


def fetched(model: str) -> bool:
    """Are the network's pretrained weights here, or fetched now where there is network?"""
    if zoo.get(model).availability() in ("bundled", "cached"):
        return True
    try:
        open_network(model, pretrained=True)
        return True
    except WeightsError:
        return False


def build_families_tab(page: Page, analysed_outputs: list, tabs) -> list:
    """The page of families; returns the events of its Open buttons (each a new analysis)."""
    events = []
    with gr.Tab("Families", id="families", elem_id="tab-families"):
        gr.Markdown("The twelve attention families of the survey VisAttn follows. "
                    "**Open** runs a network of the family on a sample image (Non-local: on a "
                    "generated clip whose objects reappear in other frames).")
        for fam in families.FAMILIES:
            with gr.Row(equal_height=True):
                gr.Markdown(family_row(fam), elem_classes="family-row")
                slug = fam.name.lower().replace("²", "2").replace("-", "")
                button = gr.Button(f"Open {fam.name}", elem_id=f"family-{slug}", scale=0,
                                   min_width=160)
            shown = button.click(functools.partial(family_inputs, fam.name), None,
                                 [page.model, page.source], **FAST,
                                 js="() => { window.visattnPage?.analysing?.(); return []; }").then(
                functools.partial(family_example, fam.name), None, [page.image, page.clip], **FAST)
            opened = shown.then(
                functools.partial(open_family, fam.name), [page.seg_size, page.alpha, page.cmap],
                [*analysed_outputs[:4], page.model, page.pretrained, page.tab_open, tabs],
                api_visibility="private", **MODEL)
            opened.success(None, None, None,  # its view drawn, brought into the viewport
                           js="() => { window.visattnPage?.bringIntoView?.(8000, true); return []; }")
            events.append(opened)
    return events
