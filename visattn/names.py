"""Safe names made from anything a user supplies: a photo's file name, a network's module
path. A result is one plain path component (never empty, '.', '..' or absolute, no
separators or control characters, at most MAX_NAME characters), so files written under
an output folder stay inside it.

`folder_names(images)` gives one unique folder name per photo (the CLI's --out layout);
`member_name(key)` a file name inside an archive (arrays.npz) for a record key, whose
module part may be anything a user network's code chose, an absolute path included.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import PurePath
from typing import Iterable

MAX_NAME = 120
_UNSAFE = re.compile(r"[^\w.+=@-]+")  # letters and digits of any script, and a few marks
_MEMBER_UNSAFE = re.compile(r"\.\.+")  # no '..' inside an archive member


def safe_name(text: str, fallback: str = "image") -> str:
    """One safe path component from any text ('..' and '/etc/passwd' included)."""
    text = unicodedata.normalize("NFC", str(text))
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    name = _UNSAFE.sub("_", text).strip("._ ")
    return name[:MAX_NAME].rstrip("._ ") or fallback


def stem(path: str) -> str:
    """A photo's safe stem: its file name without the last suffix, made safe."""
    name = PurePath(str(path)).name
    base = name.rsplit(".", 1)[0] if "." in name.strip(".") else name
    return safe_name(base)


def folder_names(images: Iterable[str]) -> list[str]:
    """One unique, safe folder name per photo, named after it; repeats get _2, _3, ...
    (compared case-insensitively, for case-insensitive file systems)."""
    seen: set[str] = set()
    out = []
    for image in images:
        base = stem(image)
        name, k = base, 1
        while name.lower() in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name.lower())
        out.append(name)
    return out


def member_name(key: str, *parts: str) -> str:
    """An archive member name for a record key and the parts below it: each made one safe
    component (':' kept, as in record keys), joined by '/', so no member is absolute or
    climbs out: member_name('/home/u/net.py:layer', 'row') -> 'home_u_net.py:layer/row'."""
    made = [":".join(filter(None, (_MEMBER_UNSAFE.sub("_", safe_name(piece, ""))
                                   for piece in str(p).split(":"))))
            for p in (key, *parts)]
    return "/".join(m for m in made if m) or "array"
