"""The Gradio page: glue between events and the library, nothing else."""
from __future__ import annotations

import gradio as gr

from . import render, zoo
from .image import ImageError
from .weights import ASSETS
from .pipeline import analyze
from .weights import WeightsError

TITLE = "VisAttn — see what attention modules inside CNNs do"
INTRO = ("Upload a photo, choose a network, and see every attention map it computes: "
         "channel gates, spatial maps, branch weights and self-attention rows, in network order.")
_STATUS = {"bundled": "bundled", "cached": "ready", "download": "downloads {mb:.0f} MB",
           "random": "no weights published"}


EXAMPLES = sorted((ASSETS / "examples").glob("*.png"))
OWN_MODELS_NOTE = ("No pretrained weights are cached on this machine, so VisAttn starts on its "
                   "own small networks, trained on generated scenes and shipped with it (no "
                   "download): try them on the example scenes. Choosing a pretrained network "
                   "downloads its weights where there is network.")
PREFERRED_OWN = "tiny_cbam"


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


def run_analysis(image_path: str | None, model_name: str, pretrained: bool = True,
                 progress: gr.Progress = gr.Progress()):
    """Upload + model -> (top-5 label dict, summary markdown, gallery items, the model
    picker with refreshed download states)."""
    if not image_path:
        raise gr.Error("Upload a photo first.")

    def report(done: int, total: int | None) -> None:
        if total:
            progress(done / total, desc=f"Downloading {model_name} weights: "
                                        f"{done / 1e6:.0f} of {total / 1e6:.0f} MB")

    try:
        trace = analyze(image_path, model_name, pretrained=pretrained, progress=report)
    except ImageError as exc:
        raise gr.Error(str(exc)) from None
    except WeightsError as exc:
        raise gr.Error(f"{exc} Or untick 'Pretrained weights' to explore the architecture "
                       "with random weights.", duration=None) from None
    top = dict(trace.prediction.top(5)) if trace.prediction else {}
    w, h = trace.geometry.image_size
    lines = [f"**{trace.model}** on a {w}×{h} photo: {len(trace)} maps captured "
             f"in {trace.elapsed_s * 1000:.0f} ms."] + [f"> {n}" for n in trace.notes]
    picker = gr.Dropdown(choices=model_choices(), value=model_name)
    return top, "\n\n".join(lines), render.gallery(trace), picker


def build() -> gr.Blocks:
    start, note = default_model()
    with gr.Blocks(title="VisAttn", analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(type="filepath", label="Photo", elem_id="photo")
                if EXAMPLES:
                    gr.Examples([[str(p)] for p in EXAMPLES], [image], label="Example scenes",
                                examples_per_page=12)
                model = gr.Dropdown(model_choices(), value=start, label="Network",
                                    elem_id="model")
                gr.Markdown(note, visible=bool(note), elem_id="start-note")
                pretrained = gr.Checkbox(value=True, label="Pretrained weights",
                                         info="Untick to see the architecture with random "
                                              "weights (no download).", elem_id="pretrained")
                go = gr.Button("Analyse", variant="primary", elem_id="analyse")
            with gr.Column(scale=1):
                top5 = gr.Label(num_top_classes=5, label="Prediction", elem_id="top5")
                summary = gr.Markdown(elem_id="summary")
        maps = gr.Gallery(label="Captured maps (network order)", columns=4, height="auto",
                          object_fit="contain", format="jpeg", elem_id="maps")
        go.click(run_analysis, [image, model, pretrained], [top5, summary, maps, model],
                 api_name="analyze", concurrency_id="cpu")
    demo.queue(default_concurrency_limit=1, max_size=32)
    return demo
