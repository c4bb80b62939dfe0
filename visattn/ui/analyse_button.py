"""The Analyse button: photo + network -> a new Session (ui.common), the prediction, the summary and
(for /analyze) the overview gallery."""
from __future__ import annotations

import dataclasses
import re
from typing import Optional, Union

import gradio as gr

from .. import visitors, zoo
from .maps import gallery_files
from ..opener import RANDOM_NOTE
from ..pipeline import analyze
from ..records import Segmentation, Trace
from ..weights import WeightsError
from .common import (Session, forget_inline_photos, on_space, readable, session_id,
                     md_text, weights_message)
from .inputs import SEG_DEFAULT, seg_size_note, trust_note, unavailable_reason, uses_pretrained

RANDOM_PREDICTION = "Prediction — random weights: meaningless"
SUBSTITUTED_PREDICTION = "Prediction — random weights (pretrained ones cannot be had now): meaningless"
SUBSTITUTED = "Random weights instead of pretrained ones"


def substituted_note(name: str, why: str) -> str:
    """The summary's sentence for an analysis that ran with random weights because the
    pretrained ones cannot be had (`why`: a clause or the weights error's public sentence);
    someone running VisAttn locally also hears how to fetch them."""
    why = why.strip().rstrip(".")
    if why.startswith(f"{name}: "):
        why = why[len(name) + 2:]
    fetch = "" if on_space() else \
        f" `python -m visattn download {name}` fetches them where there is network."
    return (f"**{SUBSTITUTED}**: {name}'s pretrained weights cannot be had now ({why}), so "
            "this analysis ran the architecture with random weights; its prediction and maps "
            "say nothing about a trained network." + fetch)


@readable
def run_analysis(image_path: Optional[Union[str, bytes]], model_name: str, pretrained: bool = True,
                 seg_size: int = SEG_DEFAULT, alpha: float = 0.5, cmap: str = "jet",
                 progress: gr.Progress = gr.Progress()):
    """Upload + model -> (session, top-5, summary, gallery, the network's name): /analyze's
    answers. `seg_size` is the short side segmentation networks process (mmseg tests at
    512); bundled networks always use their own weights."""
    session, top, text = analyse_photo(image_path, model_name, pretrained, seg_size, progress)
    return session, top, text, gallery_files(session.trace, alpha=alpha, cmap=cmap), model_name


def analyse_photo(image_path: Optional[Union[str, bytes]], model_name: str, pretrained: bool = True,
                  seg_size: int = SEG_DEFAULT, progress: Optional[gr.Progress] = None):
    """Upload + model -> (session, top-5, summary), no view drawn (the page draws the open
    one: ui.analyse_page)."""
    if not image_path:
        raise gr.Error("Upload a photo first (or pick an example).")
    card = zoo.get(model_name)
    pretrained = uses_pretrained(model_name, pretrained)
    scaled = card.task == "segment" and card.preprocess.mode == "keep_ratio"  # not fixed-size labellers
    preprocess = dataclasses.replace(card.preprocess, size=(int(seg_size), 4 * int(seg_size))) \
        if scaled else None

    trace, pretrained = weights_or_random(
        lambda ticked, report: analyze(image_path, model_name, pretrained=ticked,
                                       progress=report, preprocess=preprocess),
        card, pretrained, progress or gr.Progress())
    text = summary(trace, seg_size_note(seg_size) if scaled else "")
    top = dict(trace.prediction.top(5)) if trace.prediction else {}
    kept = visitors.display_copy(trace)  # what the views need, not the full photo
    del trace
    visitors.release_memory()  # the decoded photo and the forward's buffers
    visitors.VISITORS.analysed(session_id())
    forget_inline_photos(session_id())
    return Session(kept, pretrained=pretrained), top, text


def substituted(trace: Trace) -> bool:
    """Did this analysis run with random weights because pretrained ones cannot be had?"""
    return any(note.startswith(f"**{SUBSTITUTED}**") for note in trace.notes)


def weights_or_random(run, card, pretrained: bool, progress) -> tuple[Trace, bool]:
    """run(pretrained, report) -> Trace, with the card's pretrained weights where they can be
    had (downloads reported to `progress`), else with random weights, said first in the
    notes (a bundled network's broken weights are an error, never substituted).
    -> (trace, whether pretrained weights were used)."""
    def report(done: int, total: Optional[int]) -> None:
        if total:
            progress(done / total, desc=f"Downloading {card.name} weights: "
                                        f"{done / 1e6:.0f} of {total / 1e6:.0f} MB")

    why = unavailable_reason(card) if pretrained and card.availability() == "download" else ""
    if not why:
        try:
            return run(pretrained, report), pretrained
        except WeightsError as exc:
            if card.availability() == "bundled":  # a broken installation: no substitute
                raise gr.Error(weights_message(exc), duration=None) from None
            why = exc.public
    trace = run(False, None)  # pretrained weights cannot be had: the architecture, said so
    # once: the substitution's sentence says what the plain random-weights note says, and why
    trace.notes[:] = [substituted_note(card.name, why)] + [n for n in trace.notes if n != RANDOM_NOTE]
    return trace, False


def prediction_heading(session: Optional[Session]) -> str:
    """The prediction's heading: said to be meaningless with random weights (classes or
    segments alike), and why where they stand in for pretrained ones that cannot be had."""
    if session is None or session.pretrained:
        return "Prediction"
    return SUBSTITUTED_PREDICTION if substituted(session.trace) else RANDOM_PREDICTION


def prediction_label(session: Optional[Session]):
    """The prediction's heading as an update of the Label (after /analyze)."""
    return gr.Label(label=prediction_heading(session))


def summary(trace: Trace, size_note: str = "") -> str:
    """What was analysed, how, and what to keep in mind, in a few sentences."""
    clip = getattr(trace, "clip", None)
    what = "clip" if clip is not None else "photo"
    kind = (f"classes by share of the {what}" + (f"; {size_note}" if size_note else "")) \
        if isinstance(trace.prediction, Segmentation) else ""
    w, h = trace.geometry.image_size
    maps = f"{len(trace)} map" + ("" if len(trace) == 1 else "s")
    name = trace.model if re.fullmatch(r"[\w.-]+", trace.model) else md_text(trace.model)
    seen = f"{len(clip.frames)} frames of a {w}×{h} clip" if clip is not None else f"a {w}×{h} image"
    lines = [f"**{name}** on {seen}: {maps} captured "
             f"in {trace.elapsed_s * 1000:.0f} ms" + (f" (prediction: {kind})" if kind else "")
             + "."] + [f"> {n}" for n in trace.notes]  # notes are the project's own sentences
    trust = trust_note(trace.model) if any(c.name == trace.model for c in zoo.cards()) else ""
    if trust:
        lines.append(f"> {trust}")
    crop = crop_note(trace)
    if crop:
        lines.append(f"> {crop}")
    enlarged = min(trace.geometry.resized) / min(w, h)
    if enlarged >= 2:
        lines.append(f"> This {w}×{h} photo was enlarged {enlarged:.0f}× to the network's input: "
                     "its maps show how the network responds to a few pixels, blown up.")
    if not len(trace):
        lines.append("This network has no attention modules (it is the baseline).")
    return "\n\n".join(lines)


def crop_note(trace: Trace) -> str:
    """One sentence where a fixed-size network saw only the centre of the photo (or of a
    clip's frames: the dimmed area of the maps), else ''."""
    g = trace.geometry
    x0, y0, x1, y1 = g.input_box()
    w, h = g.image_size
    if (x1 - x0, y1 - y0) == (w, h):
        return ""
    wide, tall = (w - (x1 - x0)) / w, (h - (y1 - y0)) / h  # the share cut away along each axis
    sides = {"left and right": wide, "top and bottom": tall}
    major, minor = sorted(sides, key=sides.get, reverse=True)
    cut = major if sides[minor] == 0 else f"{major} (and a thinner band at the {minor})" \
        if sides[minor] < sides[major] else "edges all round"
    what = "clip's frames" if getattr(trace, "clip", None) is not None else "photo"
    return (f"The network sees only the centre {x1 - x0}×{y1 - y0} px of this {w}×{h} {what} "
            f"(its fixed {g.input_size[0]}×{g.input_size[1]} input is a centre crop): the "
            f"dimmed {cut} were cut off and have no attention.")
