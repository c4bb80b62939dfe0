"""Clips on the page (issue 23): the video input beside the photo, which input Analyse
analyses (whichever was given last), the network list that follows the input, and
/analyze_video.

The picker lists the networks for the input given last: a photo lists the photo networks,
a clip lists the clip networks (tiny_nl_clips, i3d_nl_r50_kinetics400). Giving a clip while
a photo network is chosen switches to a clip network, and back for a photo; the list is
said under the inputs (CLIP_NOTE)."""
from __future__ import annotations

from typing import Optional

import gradio as gr

from .. import visitors, zoo
from .maps import gallery_files
from ..pipeline import analyze_video
from ..video import VideoError, unplayable_codec
from ..zoo_video import is_clip_network
from ..zoo_video import names as clip_names
from .analyse_button import summary, weights_or_random
from .common import Session, readable, session_id
from .inputs import uses_pretrained

START_CLIP_NETWORK = "tiny_nl_clips"  # bundled, trained here: rows that follow objects
CLIP_NOTE = ("**Photo or clip:** Analyse analyses whichever you gave last. The network list "
             "follows it: photo networks for a photo, clip networks (tiny_nl_clips, "
             "i3d_nl_r50_kinetics400) for a clip (mp4, webm or gif).")


def ensure_clip_cards() -> None:
    """The clip networks join the zoo (their statuses, pretrained box, analysis); once, as
    zoo_video.ensure_cards keeps count (they can be taken out again and come back)."""
    from ..zoo_video import ensure_cards
    ensure_cards()


def choose_for(source: str, model: str, pretrained: bool):
    """The input given last changed to `source` ('photo' | 'clip'): the picker lists that
    input's networks, switching network when the chosen one does not take it."""
    from .inputs import default_model, model_choices
    if source == "clip":
        ensure_clip_cards()
        name = model if is_clip_network(model) else START_CLIP_NETWORK
    else:
        name = default_model()[0] if is_clip_network(model) else model
    return gr.Dropdown(choices=model_choices(bool(pretrained), clips=source == "clip"), value=name)


@readable
def run_video_analysis(video_path: Optional[str], model_name: str, pretrained: bool = True,
                       alpha: float = 0.5, cmap: str = "jet", progress: gr.Progress = gr.Progress()):
    """Clip + clip network -> (session, top-5, summary, gallery, the network's name), as
    /analyze gives them for a photo. Every refusal is a sentence."""
    session, top, text = analyse_clip(video_path, model_name, pretrained, progress)
    return session, top, text, gallery_files(session.trace, alpha=alpha, cmap=cmap), model_name


def analyse_clip(video_path: Optional[str], model_name: str, pretrained: bool = True,
                 progress: Optional[gr.Progress] = None):
    """Clip + clip network -> (session, top-5, summary), no view drawn (the page draws the
    open one: ui.analyse_page)."""
    if not video_path:
        raise gr.Error("Give a clip first (mp4, webm or gif).")
    ensure_clip_cards()
    if not is_clip_network(model_name):
        raise gr.Error(f"{str(model_name)[:60]} is a photo network; for a clip choose one of "
                       f"{', '.join(clip_names())}.")
    card = zoo.get(model_name)
    pretrained = uses_pretrained(model_name, pretrained)
    try:
        trace, pretrained = weights_or_random(
            lambda ticked, report: analyze_video(video_path, model_name, pretrained=ticked,
                                                 progress=report),
            card, pretrained, progress or gr.Progress())
    except VideoError as exc:
        raise gr.Error(str(exc)) from None
    text = summary(trace) + "\n\n" + clip_sentence(trace.clip)
    top = dict(trace.prediction.top(5)) if getattr(trace.prediction, "top", None) else {}
    kept = visitors.display_copy(trace)
    del trace
    visitors.release_memory()
    visitors.VISITORS.analysed(session_id())
    return Session(kept, pretrained=pretrained), top, text


def clip_sentence(clip) -> str:
    """Which frames the network saw."""
    n = len(clip.frames)
    rate = f" at {clip.fps:.3g} frames per second" if clip.fps else ""
    return (f"> The network saw {n} frames of this clip of {clip.frame_count or n}{rate} "
            f"(decoded frames {', '.join(str(int(i)) for i in clip.indices[:8])}"
            f"{' …' if n > 8 else ''}); on the Non-local tab, point at any frame to see where "
            "that position looks in every frame.")


def video_input():
    """The clip input (elem_id 'clip') beside the photo."""
    return gr.Video(label="Clip (mp4, webm, gif)", sources=["upload"], elem_id="clip",
                    height=340, format=None)


def given(kind: str, value, model: str, pretrained: bool):
    """A photo or clip given (not cleared): it is the input given last, and the picker lists
    its networks. A clip the browser's player cannot show is said (Gradio's player only
    says "Video not playable")."""
    if not value:
        return gr.skip(), gr.skip()
    if kind == "clip":
        codec = unplayable_codec(value)
        if codec:
            gr.Warning(unplayable_note(codec), title="Clip not shown, still analysed")
    return kind, choose_for(kind, model, pretrained)


def unplayable_note(codec: str) -> str:
    return (f"Your browser cannot play this clip's {codec} video, so the player above stays "
            "blank; VisAttn decodes it itself: Analyse works, and the Non-local tab shows the "
            "frames the network saw.")


def wire_inputs(page) -> None:
    """The input given last is remembered (a new photo, example or clip), and the picker
    follows it."""
    opts = dict(api_visibility="private", concurrency_id="view", concurrency_limit=8)
    page.image.change(lambda m, p: given("photo", True, m, p), [page.model, page.pretrained],
                      [page.source, page.model], **opts)  # (the photo itself is not read here)
    page.clip.change(lambda v, m, p: given("clip", v, m, p), [page.clip, page.model, page.pretrained],
                     [page.source, page.model], **opts)
