"""The Analyse button: photo + network -> a new Session (ui.common), the prediction, the summary and
the overview gallery."""
from __future__ import annotations

import dataclasses
from typing import Optional, Union

import gradio as gr

from .. import render, visitors, zoo
from ..pipeline import analyze
from ..records import Segmentation, Trace
from ..weights import WeightsError
from .common import Session, forget_inline_photos, readable, session_id, weights_message
from .inputs import SEG_DEFAULT, seg_size_note, uses_pretrained

RANDOM_PREDICTION = "Prediction — random weights: meaningless"


@readable
def run_analysis(image_path: Optional[Union[str, bytes]], model_name: str, pretrained: bool = True,
                 seg_size: int = SEG_DEFAULT, alpha: float = 0.5, cmap: str = "jet",
                 progress: gr.Progress = gr.Progress()):
    """Upload + model -> (session, top-5, summary, gallery, the network's name). `seg_size`
    is the short side
    segmentation networks process (mmseg tests at 512); bundled networks always use their
    own weights."""
    if not image_path:
        raise gr.Error("Upload a photo first (or pick an example).")
    card = zoo.get(model_name)
    pretrained = uses_pretrained(model_name, pretrained)
    scaled = card.task == "segment" and card.preprocess.mode == "keep_ratio"  # not fixed-size labellers
    preprocess = dataclasses.replace(card.preprocess, size=(int(seg_size), 4 * int(seg_size))) \
        if scaled else None

    def report(done: int, total: Optional[int]) -> None:
        if total:
            progress(done / total, desc=f"Downloading {model_name} weights: "
                                        f"{done / 1e6:.0f} of {total / 1e6:.0f} MB")

    try:
        trace = analyze(image_path, model_name, pretrained=pretrained, progress=report,
                        preprocess=preprocess)
    except WeightsError as exc:
        raise gr.Error(weights_message(exc), duration=None) from None
    text = summary(trace, seg_size_note(seg_size) if scaled else "")
    top = dict(trace.prediction.top(5)) if trace.prediction else {}
    kept = visitors.display_copy(trace)  # what the views need, not the full photo
    del trace
    visitors.release_memory()  # the decoded photo and the forward's buffers
    visitors.VISITORS.analysed(session_id())
    forget_inline_photos(session_id())
    return (Session(kept, pretrained=pretrained), top, text,
            render.gallery(kept, alpha=alpha, cmap=cmap), model_name)


def prediction_label(session: Optional[Session]):
    """The prediction's heading: said to be meaningless for a classifier with random weights."""
    meaningless = session is not None and not session.pretrained and \
        zoo.get(session.trace.model).task == "classify"
    return gr.Label(label=RANDOM_PREDICTION if meaningless else "Prediction")


def summary(trace: Trace, size_note: str = "") -> str:
    """What was analysed, how, and what to keep in mind, in a few sentences."""
    kind = ("classes by share of the photo" + (f"; {size_note}" if size_note else "")) \
        if isinstance(trace.prediction, Segmentation) else ""
    w, h = trace.geometry.image_size
    maps = f"{len(trace)} map" + ("" if len(trace) == 1 else "s")
    lines = [f"**{trace.model}** on a {w}×{h} image: {maps} captured "
             f"in {trace.elapsed_s * 1000:.0f} ms" + (f" (prediction: {kind})" if kind else "")
             + "."] + [f"> {n}" for n in trace.notes]
    enlarged = min(trace.geometry.resized) / min(w, h)
    if enlarged >= 2:
        lines.append(f"> This {w}×{h} photo was enlarged {enlarged:.0f}× to the network's input: "
                     "its maps show how the network responds to a few pixels, blown up.")
    if not len(trace):
        lines.append("This network has no attention modules (it is the baseline).")
    return "\n\n".join(lines)
