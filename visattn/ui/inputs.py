"""The page's inputs: the photo door, the network picker, the pretrained box, the
segmentation processing size, and where the page starts."""
from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Optional, Union

import gradio as gr

from .. import visitors, weights, zoo
from ..image import ImageError, bytes_from_data_url
from ..weights import ASSETS, TOFU_NOTE, HubFile, UrlFile, trusted_on_first_use

EXAMPLES = sorted((ASSETS / "examples").glob("*.jpg")) + sorted((ASSETS / "examples").glob("*.png"))
STATUS = {"bundled": "bundled", "cached": "ready", "download": "downloads {mb:.0f} MB",
          "random": "no weights published",
          "unavailable": "weights not here and {why}: {then}"}
ANALYSE_THEN = "runs with random weights"  # what Analyse does with such a network
COMPARE_THEN = "not compared"  # what Compare does
REACH_WAIT_S = 1.0  # the longest a status lookup waits for a download server to answer
REACH_TTL_S = 60.0  # how long an answer is remembered
_REACHED: dict[tuple[str, int], tuple[float, bool]] = {}  # (host, port) -> (when, answered)
_REACH_LOCK = threading.Lock()
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
    from ..zoo_video import names as clip_names
    cards = [c for c in zoo.cards() if c.name not in clip_names()]  # a photo's networks
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


def model_choices(pretrained: bool = True, then: str = ANALYSE_THEN,
                  clips: bool = False) -> list[tuple[str, str]]:
    """Dropdown entries 'FAMILY · name — status', grouped by family in registry order; with
    the pretrained box unticked, networks with published weights say 'random weights';
    `then`: what happens to a network whose weights cannot be had now. `clips`: the clip
    networks (ui.clip_input), else the photo networks."""
    from ..zoo_video import names as clip_names
    video = set(clip_names())  # once: it reads the clip networks' manifest
    takes = (lambda c: c.name in video) if clips else (lambda c: c.name not in video)
    families = list(dict.fromkeys(c.family for c in zoo.cards() if takes(c)))
    return [(f"{c.family} · {c.name} — {_status(c, pretrained, then)}", c.name)
            for fam in families for c in zoo.cards(fam) if takes(c)]


def _status(card, pretrained: bool, then: str = ANALYSE_THEN) -> str:
    state = weights_state(card)
    if not pretrained and state in ("cached", "download", "unavailable"):
        return "random weights"
    if state == "cached" and trusted_on_first_use(card.weights):
        return TOFU_STATUS
    return STATUS[state].format(mb=card.download_mb, why=short_reason(card), then=then)


# ----- can the weights be had now? ----------------------------------------------------------

def weights_state(card) -> str:
    """The card's availability, with "download" split: "unavailable" where its weights are
    not here and cannot be downloaded now (network access off, or its server does not
    answer a quick, remembered check)."""
    state = card.availability()
    if state == "download" and unavailable_reason(card):
        return "unavailable"
    return state


def unavailable_reason(card) -> str:
    """Why the card's weights cannot be downloaded now, as a clause; '' if they can."""
    if weights.offline():
        return "network access is off (VISATTN_OFFLINE / HF_HUB_OFFLINE)"
    address = server_address(card.weights)
    if address is not None and not reachable(address):
        return f"its download server ({address[0]}) cannot be reached"
    return ""


def short_reason(card) -> str:
    """The picker's few words for `unavailable_reason`."""
    why = unavailable_reason(card)
    return "offline" if "network access" in why else \
        (f"{server_address(card.weights)[0]} unreachable" if why else "")


def server_address(spec) -> Optional[tuple[str, int]]:
    """(host, port) a download of `spec` connects to first: the proxy where one is set for
    it, else the Hub (HF_ENDPOINT) or the URL's host; None for bundled files."""
    if isinstance(spec, HubFile):
        url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    elif isinstance(spec, UrlFile):
        url = spec.url
    else:
        return None
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def reachable(address: tuple[str, int]) -> bool:
    """Does the server accept a TCP connection? Remembered for REACH_TTL_S; a lookup waits
    at most REACH_WAIT_S (a server still silent then counts as unreachable until the check,
    which goes on in the background, says otherwise)."""
    now = time.monotonic()
    with _REACH_LOCK:
        known = _REACHED.get(address)
        if known is not None and now - known[0] < REACH_TTL_S:
            return known[1]
        pending = _REACHED[address] = (now, False)  # one check at a time per server
    done = threading.Event()

    def check() -> None:
        try:
            socket.create_connection(address, timeout=weights.STALL_S).close()
            answered = True
        except OSError:
            answered = False
        with _REACH_LOCK:
            if _REACHED.get(address) is pending:  # not forgotten or checked again meanwhile
                _REACHED[address] = (time.monotonic(), answered)
        done.set()

    threading.Thread(target=check, name=f"reach {address[0]}", daemon=True).start()
    done.wait(REACH_WAIT_S)
    with _REACH_LOCK:
        return _REACHED.get(address, (0.0, False))[1]


def forget_reachability() -> None:
    """Check every server again at the next lookup."""
    with _REACH_LOCK:
        _REACHED.clear()


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
    from ..zoo_video import is_clip_network
    return gr.Dropdown(choices=model_choices(bool(ticked), clips=is_clip_network(name)), value=name)


def seg_size_note(size: int) -> str:
    """Which size the segmentation maps were computed at, in one clause."""
    return (f"computed at short side {size} px, the networks' published test size"
            if int(size) == SEG_DEFAULT else
            f"computed at short side {size} px (faster, approximate: the networks were "
            f"evaluated at {SEG_DEFAULT})")
