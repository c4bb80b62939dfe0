"""Visitors of the web app: bounded per-visitor memory and temporary files (the app's
Session, what one visitor's analysis keeps, is visattn.ui.common.Session).

A session keeps only what its views need: the records and a display-size copy of the
photo (`display_copy`, at most DISPLAY_MAX px on the long side; every view draws at
768 px or less). Sessions live TTL_S seconds after the last event that stored them, also
after the visitor closes the tab (Gradio's own closed-session lifetime is an hour), and at most
MAX_SESSIONS are kept (the oldest is dropped first). `Visitors` remembers, by session id
only, who had an analysis, so a visitor whose session was dropped hears why.

Memory freed by a session goes back to the system: glibc keeps one heap per thread that
ever allocated (Gradio runs handlers on a pool of threads) and returns little of it, so
`limit_heaps()` caps the heaps at two and `release_memory()` trims them when a session
ends (measured by bench/session_memory.py: 24 MB per 12 MP session without, see
docs/PERFORMANCE.md).

Files made for download (export zips, statistics, Grad-CAM reports) go into
`temp_folder()`: Gradio copies a returned file into its own cache when it serves the
event, so `sweep()` deletes our folders once they are SERVED_GRACE_S old.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import cv2

from .records import Trace

DISPLAY_MAX = 1024  # long side of the photo a session keeps
TTL_S = float(os.environ.get("VISATTN_SESSION_TTL_S", 1800))
MAX_SESSIONS = int(os.environ.get("VISATTN_MAX_SESSIONS", 100))
TEMP_PREFIX = "visattn-"
SERVED_GRACE_S = 120.0  # a returned file is in Gradio's cache long before this


def display_copy(trace: Trace, long_side: Optional[int] = None) -> Trace:
    """The trace with its photo replaced by a copy of at most `long_side` px (default
    DISPLAY_MAX; area averaged); the Geometry still speaks original-photo pixels."""
    long_side = long_side or DISPLAY_MAX
    h, w = trace.image.shape[:2]
    if max(h, w) <= long_side:
        return trace
    s = long_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return dataclasses.replace(trace, image=cv2.resize(trace.image, size,
                                                       interpolation=cv2.INTER_AREA))


def temp_folder(kind: str) -> Path:
    """A new folder for files to be downloaded; old ones are swept first."""
    sweep()
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind}-"))


def sweep(older_than_s: float = SERVED_GRACE_S, root: Optional[Path] = None) -> int:
    """Delete our temporary folders older than `older_than_s`; returns how many."""
    root = Path(root or tempfile.gettempdir())
    folders = (path for path in root.glob(f"{TEMP_PREFIX}*") if path.is_dir())
    return remove_older(folders, time.time() - older_than_s)


def remove_older(paths, cutoff: float) -> int:
    """Delete the files and folders among `paths` last changed before `cutoff` (epoch
    seconds); returns how many."""
    gone = 0
    for path in paths:
        try:
            if path.stat().st_mtime < cutoff:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
                gone += 1
        except OSError:  # removed meanwhile by another worker
            continue
    return gone


@functools.cache  # find_library runs a program (ldconfig) every time it is asked
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


M_ARENA_MAX = -8  # glibc mallopt parameter


def limit_heaps(heaps: int = 2) -> bool:
    """Cap glibc's per-thread heaps (no-op elsewhere); True if applied."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, heaps))


def release_memory() -> None:
    """Give freed heap memory back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def session_ended(_session=None) -> None:
    """A session was freed (Gradio's State delete_callback): delete served download folders
    and return the memory."""
    sweep()
    release_memory()


class Visitors:
    """Session ids that had an analysis (ids only, a bounded number), so a visitor
    whose session was dropped gets a sentence instead of "analyse a photo first". Kept in
    a small file too (`path`, best-effort), so a visitor still hears it after the server
    restarted."""

    def __init__(self, size: int = 20 * MAX_SESSIONS, path: Optional[Path] = None):
        self.size, self.path = size, path
        self._seen: "OrderedDict[str, float]" = OrderedDict()
        self._lock = threading.Lock()
        for sid in self._load():
            self._seen[sid] = 0.0

    def _load(self) -> list[str]:
        try:
            lines = Path(self.path).read_text().split() if self.path else []
        except (OSError, UnicodeDecodeError):
            return []
        return lines[-self.size:]

    def _store(self, sid: str) -> None:
        if not self.path:
            return
        try:
            if len(self._seen) >= self.size or not Path(self.path).exists():
                Path(self.path).write_text("".join(f"{s}\n" for s in self._seen))
            else:
                with open(self.path, "a") as f:
                    f.write(f"{sid}\n")
        except OSError:  # a full or read-only disk: remembered in memory only
            pass

    def analysed(self, session_id: Optional[str]) -> None:
        if not session_id or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(session_id)):
            return
        with self._lock:
            self._seen[session_id] = time.time()
            self._seen.move_to_end(session_id)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
            self._store(session_id)

    def had_analysis(self, session_id: Optional[str]) -> bool:
        with self._lock:
            return bool(session_id) and session_id in self._seen


def visitors_file() -> Path:
    """VISATTN_VISITORS_FILE, else visattn-visitors.txt in the temporary folder."""
    return Path(os.environ.get("VISATTN_VISITORS_FILE")
                or Path(tempfile.gettempdir()) / "visattn-visitors.txt")


VISITORS = Visitors(path=visitors_file())

DROPPED = ("Your analysis is no longer kept on the server (it restarted, or sessions are freed "
           f"after {TTL_S / 60:.0f} minutes without use, at most {MAX_SESSIONS} kept). "
           "Press Analyse to run it again.")
