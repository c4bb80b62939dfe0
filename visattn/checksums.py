"""Remembered checksums: a weight file is hashed once, then known by its size and mtime.

`digest(path, algo)` hashes a file the first time and answers from a memo afterwards, as
long as the file's size and modification time are unchanged (a file replaced or edited
is hashed again). `recorded(name)` / `record(name, sha256)` keep the sha256 that vouches
for a file without a published hash, written at its first strict, complete load;
`pinned(repo)` / `pin(repo, commit)` the Hub commit a repository's files were first
downloaded and verified at, for sources that do not name one.

Both live in one JSON file in the weight cache (`VISATTN_CACHE/checksums.json`), written
atomically; a damaged memo is treated as empty, and the memo is best-effort: a cache on a
full or read-only disk is not written and nothing fails (bundled networks still load).

The memo speaks for size and mtime, not for content: `digest(path, fresh=True)` (what
every load goes through) hashes the file at its first use in this process whatever the
memo says, so a file whose bytes changed with its size and mtime kept is caught.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Optional

MEMO_NAME = "checksums.json"
_LOCK = threading.Lock()
_HASHED_HERE: dict[tuple, str] = {}  # (path, size, mtime, algo) -> hex, hashed in this process


def cache_dir() -> Path:
    """The weight cache: VISATTN_CACHE, else ~/.cache/visattn (read at each call)."""
    return Path(os.environ.get("VISATTN_CACHE") or Path.home() / ".cache" / "visattn")


def _memo_path() -> Path:
    return cache_dir() / MEMO_NAME


def _read() -> dict:
    try:
        memo = json.loads(_memo_path().read_text())
    except (OSError, ValueError):
        memo = {}
    if not isinstance(memo, dict):
        memo = {}
    for part in ("files", "vouched", "pins"):
        memo.setdefault(part, {})
    return memo


def _write(memo: dict) -> bool:
    """Best-effort: False (and nothing written) on a full or read-only disk."""
    path = _memo_path()
    tmp = path.with_name(f".{MEMO_NAME}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(memo, indent=1, sort_keys=True))
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        return False


def hash_file(path: Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file (what the Hub uses as the ETag of a non-LFS file)."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_HASHERS = {"sha1": lambda p: hash_file(p, "sha1"), "sha256": lambda p: hash_file(p, "sha256"),
            "git-sha1": git_blob_sha1}


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def digest(path: Path, algo: str = "sha256", fresh: bool = False) -> str:
    """The file's hex digest ('sha1', 'sha256' or 'git-sha1'), hashed only when the file is
    new to the memo or its size or mtime changed; with `fresh`, hashed at least once in
    this process (the memo on disk is not trusted for content)."""
    key = str(Path(path).resolve())
    stamp = _stamp(Path(key))
    here = (key, *stamp, algo)
    if here in _HASHED_HERE:
        return _HASHED_HERE[here]
    if not fresh:
        with _LOCK:
            entry = _read()["files"].get(key, {})
        if entry.get("stamp") == stamp and algo in entry:
            return entry[algo]
    value = _HASHERS[algo](Path(key))
    _HASHED_HERE[here] = value
    with _LOCK:
        memo = _read()
        entry = memo["files"].get(key, {})
        if entry.get("stamp") != stamp:
            entry = {"stamp": stamp}
        entry[algo] = value
        memo["files"][key] = entry
        _write(memo)
    return value


def forget(path: Path) -> None:
    """Drop a (deleted) file from the memo."""
    key = str(Path(path).resolve())
    for here in [h for h in list(_HASHED_HERE) if h[0] == key]:
        _HASHED_HERE.pop(here, None)
    with _LOCK:
        memo = _read()
        if memo["files"].pop(key, None) is not None:
            _write(memo)


def recorded(name: str) -> Optional[str]:
    """The sha256 recorded for a hashless source (None if never strictly loaded)."""
    with _LOCK:
        return _read()["vouched"].get(name)


def record(name: str, sha256: str) -> None:
    with _LOCK:
        memo = _read()
        memo["vouched"][name] = sha256
        _write(memo)


def unrecord(name: str) -> None:
    with _LOCK:
        memo = _read()
        if memo["vouched"].pop(name, None) is not None:
            _write(memo)


def pinned(repo: str) -> Optional[str]:
    with _LOCK:
        return _read()["pins"].get(repo)


def pin(repo: str, commit: str) -> None:
    with _LOCK:
        memo = _read()
        memo["pins"][repo] = commit
        _write(memo)
