"""The Overview's maps for a gr.Gallery, as JPEG files Gradio serves as they are.

Given arrays, Gradio turns each into a PIL image, encodes it, hashes the bytes and writes a
file, one after the other, before the answer leaves; given files, it checks and copies (or
registers) each, twice. For CBAM's 32 maps that was 35-90 ms of the wait after Analyse.
OpenCV writes the pictures into one folder that Gradio serves as static files (`serve`,
once per process), which it passes through untouched. Files older than a session's life
(visitors.TTL_S) are deleted as new ones are written, at most once a minute."""
from __future__ import annotations

import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr

from .. import render, visitors
from ..records import Trace

FOLDER = Path(tempfile.gettempdir()) / "visattn_maps"  # not "visattn-*": visitors.sweep's
SWEEP_EVERY_S = 60.0
WRITERS = 2  # threads writing files (the machines this runs on have 2 cores and up)
_state = {"served": False, "swept": 0.0}
_lock = threading.Lock()


def serve() -> None:
    """Have Gradio serve FOLDER's files directly (gr.set_static_paths), once per process,
    FOLDER first among the static paths (`_first`)."""
    FOLDER.mkdir(parents=True, exist_ok=True)  # again each time: a cleaner may have taken it
    with _lock:
        if not _state["served"]:
            gr.set_static_paths([FOLDER])
            _first(FOLDER.resolve())
            _state["served"] = True


def _first(folder: Path) -> None:
    """Put `folder` first in Gradio's list of static paths. Gradio tries each file of each
    answer against that list in order, twice per answer, resolving both paths each time,
    and `import gradio` lists two of its icons deep in site-packages: a triplet_resnet50
    Overview's 48 maps took 35 ms of checks behind them, 6 ms in front. The list is Gradio's
    own (gradio.data_classes._StaticFiles, Gradio 6): where it is not, nothing changes."""
    from gradio import data_classes
    paths = getattr(getattr(data_classes, "_StaticFiles", None), "all_paths", None)
    if isinstance(paths, list) and folder in paths:
        paths[:] = [folder] + [p for p in paths if p != folder]


def sweep(now: float, keep_s: float = visitors.TTL_S) -> int:
    """Delete the maps written over `keep_s` before `now`; returns how many."""
    return visitors.remove_older(FOLDER.glob("*.jpg"), now - keep_s)


def gallery_files(trace: Trace, alpha: float = 0.5, cmap: str = "jet") -> list[tuple[str, str]]:
    """render.gallery's (picture, caption) pairs, each picture a JPEG file's path."""
    items = render.gallery(trace, alpha=alpha, cmap=cmap)
    if not items:
        return []
    serve()
    now = time.time()
    with _lock:
        due = now - _state["swept"] > SWEEP_EVERY_S
        if due:
            _state["swept"] = now
    if due:
        sweep(now)
    stem = uuid.uuid4().hex
    paths = [str(FOLDER / f"{stem}-{k:03d}.jpg") for k in range(len(items))]
    with ThreadPoolExecutor(WRITERS) as pool:  # OpenCV lets go of the GIL while it encodes
        list(pool.map(_write, paths, [rgb for rgb, _ in items]))
    return [(path, caption) for path, (_, caption) in zip(paths, items)]


def _write(path: str, rgb) -> None:
    Path(path).write_bytes(render.jpeg_bytes(rgb))
