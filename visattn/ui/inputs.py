"""The page's inputs: the photo door, the network picker, the pretrained box, the
segmentation processing size, and where the page starts."""
from __future__ import annotations

from typing import Optional, Union

import gradio as gr

from .. import visitors, zoo
from ..image import ImageError, bytes_from_data_url
from ..weights import ASSETS, TOFU_NOTE, trusted_on_first_use

EXAMPLES = sorted((ASSETS / "examples").glob("*.jpg")) + sorted((ASSETS / "examples").glob("*.png"))
STATUS = {"bundled": "bundled", "cached": "ready", "download": "downloads {mb:.0f} MB",
          "random": "no weights published"}
TOFU_STATUS = "ready, trusted on first use only (no checksum published)"
OWN_MODELS_NOTE = ("No pretrained weights are cached on this machine, so VisAttn starts on its "
                   "own small networks, trained on generated scenes and shipped with it (no "
                   "download): point at one of the twin diamonds on the Non-local tab. Choosing "
                   "a pretrained network downloads its weights where there is network.")
PREFERRED_OWN = "tiny_nl_twins"  # shows the most: Non-local rows that follow the query
START_EXAMPLE = ASSETS / "examples" / "twins_10.png"
SEG_SIZES = [512, 384, 256]  # short side; 512 is mmsegmentation's test size (short side 512)
SEG_DEFAULT = 512
SEG_CHOICES = [(f"{size} px" + (" (published test size)" if size == SEG_DEFAULT
                                else " (faster, approximate)"), size) for size in SEG_SIZES]


def photo_upload(**kwargs) -> gr.Image:
    """A gr.Image whose every input reaches VisAttn's own loader untouched: an uploaded
    file as its path, a `data:` URL (paste, webcam, API clients) as its bytes, refused by
    size before its base64 is decoded. Gradio's own decoder never runs, so a broken or
    hostile file gets load_image's sentence and caps, and 16-bit, alpha, CMYK and EXIF
    behave as in the library. (Replacing the instance's preprocess, not subclassing:
    Gradio writes a .pyi stub beside every module defining a component.)"""
    image = gr.Image(type="filepath", **kwargs)
    image.preprocess = photo_input
    return image


def photo_input(payload) -> Optional[Union[str, bytes]]:
    """The Image component's payload -> a file path or the bytes of a data: URL. Gradio
    keeps the last value of every input in the session's record: an inline photo (up to
    33 MB of text) is dropped from it here, on every path, refused or not."""
    if payload is None:
        return None
    url = payload.url or ""
    if url.startswith("data:"):
        from .common import forget_inline_photos
        forget_inline_photos()
        payload.url = None
        try:
            return bytes_from_data_url(url)
        except ImageError as exc:
            del url, payload
            visitors.release_memory()  # the request's copies of the refused text
            raise gr.Error(str(exc)) from None
    if payload.path:
        return payload.path
    raise gr.Error("The photo did not arrive; upload it again.")


def default_model() -> tuple[str, str]:
    """(model, note): the first pretrained network already cached, else VisAttn's own
    bundled network that shows the most, with a sentence saying why."""
    cards = zoo.cards()
    for card in cards:
        if card.source.library != "visattn" and card.availability() == "cached":
            return card.name, ""
    own = [c.name for c in cards if c.availability() == "bundled"]
    if own:
        return (PREFERRED_OWN if PREFERRED_OWN in own else own[0]), OWN_MODELS_NOTE
    return cards[0].name, ""


def start_example(model: str) -> str:
    """The photo the page opens with: a twin scene for the twin network, else a photo."""
    scenes = zoo.get(model).source.library == "visattn"
    photos = [p for p in EXAMPLES if p.suffix == ".jpg"]
    return str(START_EXAMPLE if scenes and START_EXAMPLE.exists() else (photos or EXAMPLES)[0])


def published(name: str) -> bool:
    """Does the network have published weights (so the pretrained box means something)?"""
    return zoo.get(name).availability() in ("cached", "download")


def uses_pretrained(name: str, ticked: bool) -> bool:
    """Bundled networks always run with their weights, networks without published weights
    never; the box decides for the rest."""
    state = zoo.get(name).availability()
    return state == "bundled" or (state != "random" and bool(ticked))


def model_choices(pretrained: bool = True) -> list[tuple[str, str]]:
    """Dropdown entries 'FAMILY · name — status', grouped by family in registry order; with
    the pretrained box unticked, networks with published weights say 'random weights'."""
    families = list(dict.fromkeys(c.family for c in zoo.cards()))
    return [(f"{c.family} · {c.name} — {_status(c, pretrained)}", c.name)
            for fam in families for c in zoo.cards(fam)]


def _status(card, pretrained: bool) -> str:
    state = card.availability()
    if not pretrained and state in ("cached", "download"):
        return "random weights"
    if state == "cached" and trusted_on_first_use(card.weights):
        return TOFU_STATUS
    return STATUS[state].format(mb=card.download_mb)


def trust_note(name: str) -> str:
    """A sentence for the summary where the network's weights are trusted on first use only
    (no checksum published), else ''."""
    card = zoo.get(name)
    if not trusted_on_first_use(card.weights):
        return ""
    return f"{card.name}'s weights: {TOFU_NOTE}."


def pretrained_box(name: str, ticked: bool):
    """The pretrained box for a network: shown only where weights are published."""
    return gr.Checkbox(value=bool(ticked), visible=published(name))


def picker(name: str, ticked: bool):
    """The network picker with statuses that follow the pretrained box."""
    return gr.Dropdown(choices=model_choices(bool(ticked)), value=name)


def seg_size_note(size: int) -> str:
    """Which size the segmentation maps were computed at, in one clause."""
    return (f"computed at short side {size} px, the networks' published test size"
            if int(size) == SEG_DEFAULT else
            f"computed at short side {size} px (faster, approximate: the networks were "
            f"evaluated at {SEG_DEFAULT})")
