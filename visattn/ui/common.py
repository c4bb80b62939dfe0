"""What every part of the page shares: the per-visitor Session, the Page's shared components,
event options, and errors said as sentences."""
from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import gradio as gr
import numpy as np

from .. import launch, render, visitors
from ..export import Query
from ..image import ImageError
from ..records import Trace
from ..weights import WeightsError

COLORMAPS = list(render.COLORMAPS)
MEAN_OF_HEADS = "mean of heads"
FAST = dict(concurrency_id="view", concurrency_limit=8, api_visibility="private")  # no forward
# a refresh the visitor did not ask for (tabs not open, the picker's statuses): no progress
# shown, and none tracked by Gradio's page (ui.progress)
QUIET = dict(FAST, show_progress="hidden")
MODEL = dict(concurrency_id="model", concurrency_limit=1)  # runs a network: one at a time


@dataclass
class Session:
    """One visitor's analysis: the Trace (display-size photo + records), pinned queries,
    and what the other tabs computed from it (so restyling never re-runs a network)."""
    trace: Trace
    queries: list[Query] = field(default_factory=list)
    pretrained: bool = True
    hover_sent: bool = False  # the page holds this trace's hover payload
    hover_layers: set = field(default_factory=set)  # layers whose row inputs the page holds
    analysis: str = field(default_factory=lambda: uuid.uuid4().hex[:16])  # the hover payload's token
    compared: list = field(default_factory=list)  # (Trace, values, caption) per network
    gradcam: Optional[tuple] = None  # (attention, cam, text) of the last comparison


@dataclass
class Page:
    """The components every tab reads, and the hooks tabs register on: `refreshers` run
    after each new analysis, `restylers` when opacity or colour map change."""
    session: Any
    tab_open: Any
    image: Any
    model: Any
    pretrained: Any
    seg_size: Any
    alpha: Any
    cmap: Any
    top5: Any
    clip: Any = None  # the clip input (ui.clip_input)
    source: Any = None  # State: 'photo' | 'clip', the input given last (Analyse analyses it)
    refreshers: list = field(default_factory=list)
    restylers: list = field(default_factory=list)

    def after_analysis(self, fn: Callable, inputs: list, outputs: list) -> None:
        self.refreshers.append((fn, inputs, outputs))

    def on_restyle(self, tab: str, fn: Callable, inputs: list, outputs: list) -> None:
        """Redraw with the new opacity / colour map when `tab` is open (the others redraw
        when opened)."""
        def when_open(open_tab, *args):
            if open_tab != tab:
                return gr.skip() if len(outputs) == 1 else tuple(gr.skip() for _ in outputs)
            return fn(*args)
        self.restylers.append((when_open, [self.tab_open, *inputs], outputs))


def keys(trace: Optional[Trace], *kinds) -> list[str]:
    """Record keys of the given kinds, in network order."""
    return [r.key for r in trace if isinstance(r, kinds)] if trace else []


def head_index(choice: Optional[str]) -> Optional[int]:
    return None if not choice or choice == MEAN_OF_HEADS else int(choice.split()[-1])


def head_choice(head: Optional[int]) -> str:
    return MEAN_OF_HEADS if head is None else f"head {head}"


def md_text(text) -> str:
    """A name, key, note or file name as literal text in a gr.Markdown: HTML escaped and
    Markdown's marks backslashed (Gradio's sanitiser would drop a tag; this shows it)."""
    import html
    import re
    return re.sub(r"([\\`*_{}\[\]#+!|~>-])", r"\\\1", html.escape(str(text), quote=False))


def quoted(text: str, limit: int = 40) -> str:
    """User input quoted in a message, never long."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def on_space() -> bool:
    """Running as a Hugging Face Space: visitors cannot see this machine or run commands."""
    return launch.on_space(os.environ)


def weights_message(exc: WeightsError) -> str:
    """Missing or broken weights, said for the audience: a Space visitor hears what they
    can do in the page; someone running VisAttn locally also gets the paths and the fetch
    command."""
    if on_space():
        return (f"{exc.public} Choose a network marked “ready” or “bundled”, or untick "
                "'Pretrained weights' to explore this architecture with random weights.")
    return f"{exc} Or untick 'Pretrained weights' to explore the architecture with random weights."


MAX_MESSAGE = 200  # characters in a refusal
NOT_FINITE = "A number sent is not finite (NaN or infinity); send ordinary numbers."
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _finite(value) -> bool:
    try:
        return not isinstance(value, (float, np.floating)) or bool(np.isfinite(value))
    except (TypeError, ValueError):
        return True


def _ours(exc: BaseException) -> bool:
    """Raised by VisAttn's own code (its message is a sentence), not inside Python or a
    library (whose text is internal: "unhashable type", "Exceeds the limit ...")."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return bool(last) and os.path.abspath(last).startswith(_PACKAGE)


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def public_message(exc: BaseException) -> str:
    """One sentence of at most MAX_MESSAGE characters for a refusal."""
    from .. import guard
    if guard.is_disk_trouble(exc):
        return guard.disk_full(exc)
    if isinstance(exc, ImageError) or (isinstance(exc, (KeyError, ValueError, IndexError))
                                       and _ours(exc)):
        return clip(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
    if isinstance(exc, (KeyError, ValueError, IndexError, TypeError, OverflowError)):
        return (f"This input cannot be used here ({type(exc).__name__}); check the numbers and "
                "names sent.")
    detail = type(exc).__name__ if on_space() else f"{type(exc).__name__}: {exc}"
    return clip(f"Something went wrong ({clip(detail, 80)}). Try again, or another photo or "
                "network.")


def readable(fn):
    """Errors reach the user as a sentence (at most MAX_MESSAGE characters, never Python's
    internal text), never as a stack trace; NaN or infinite numbers are refused first."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not all(_finite(v) for v in (*args, *kwargs.values())):
            raise gr.Error(NOT_FINITE)
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            if len(str(exc.message)) > MAX_MESSAGE:
                raise gr.Error(clip(exc.message), duration=exc.duration) from None
            raise
        except WeightsError as exc:
            raise gr.Error(weights_message(exc), duration=None) from None
        except Exception as exc:  # noqa: BLE001 - every refusal is a sentence
            raise gr.Error(public_message(exc)) from None
    return wrapper


def guarded_preprocess(component) -> None:
    """Gradio's own checks of an input (a dropdown value not among its choices, a number
    that is not one) echo the whole value or say nothing: say one short sentence instead,
    quoting at most 40 characters of what was sent."""
    original = component.preprocess
    label = getattr(component, "label", None) or "An input"

    def preprocess(payload):
        if not _finite(payload):
            raise gr.Error(f"{label}: {NOT_FINITE}")
        try:
            return original(payload)
        except gr.Error as exc:
            if len(str(exc.message)) <= MAX_MESSAGE and len(str(payload)) <= 40:
                raise
            raise gr.Error(clip(f"{label}: {quoted(payload)} is not accepted here.")) from None
        except Exception:  # noqa: BLE001
            raise gr.Error(clip(f"{label}: {quoted(payload)} is not accepted here.")) from None
    component.preprocess = preprocess


def need(session: Optional[Session]) -> Session:
    if session is None:
        if visitors.VISITORS.had_analysis(session_id()):
            raise gr.Error(visitors.DROPPED)
        raise gr.Error("Analyse a photo first.")
    return session


def session_id() -> Optional[str]:
    """The visitor's session id inside an event handler (None outside one)."""
    from gradio.context import LocalContext
    return getattr(LocalContext.request.get(None), "session_hash", None)


def gradio_session(sid: Optional[str]):
    """Gradio's own record of a visitor's session (inside an event handler), or None."""
    from gradio.context import LocalContext
    holder = getattr(LocalContext.blocks.get(None), "state_holder", None)
    return getattr(holder, "session_data", {}).get(sid)


def session_closed(request: gr.Request) -> None:
    """A visitor closed the page: free the session within the app's time-to-live, not
    Gradio's hour for closed sessions."""
    state = gradio_session(getattr(request, "session_hash", None))
    if state is not None:
        state.STATE_TTL_WHEN_CLOSED = visitors.TTL_S


def forget_inline_photos(sid: Optional[str] = None) -> int:
    """Gradio keeps each input's last value in the session's page config, a photo sent as a
    data: URL included (up to 33 MB of text, for as long as the session record lives):
    drop those once the photo has been read. `sid` None: every session's (the photo's
    preprocess runs where the session is not known; a value is never read back from
    there once its event has started). Returns how many were dropped."""
    if sid is not None:
        states = [gradio_session(sid)]
    else:
        from gradio.context import LocalContext
        holder = getattr(LocalContext.blocks.get(None), "state_holder", None)
        states = list(getattr(holder, "session_data", {}).values())
    dropped = 0
    for state in states:
        for config in list(getattr(state, "config_values", {}).values()):
            value = (config or {}).get("props", {}).get("value")
            if isinstance(value, dict) and str(value.get("url") or "").startswith("data:"):
                config["props"]["value"] = None
                dropped += 1
    return dropped
