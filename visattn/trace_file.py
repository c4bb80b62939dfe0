"""One analysis as one file: `save(trace, "x.npz")` and `load("x.npz") -> Trace`.

The file is a NumPy .npz (a zip of .npy arrays, read with allow_pickle=False): every array
of the Trace under a readable name, and one JSON header, the array named `visattn.json`,
that says how the arrays and scalars make up the Trace. Nothing is pickled; loading runs no
code of the file's. What a record is made of is read from its dataclass fields (see
`records.Record`), so every registered kind round-trips exactly, including BoTNet's
relative-position tables, CCNet's two hops and DNL's unary map.

Header:
    {"format": "visattn.trace", "version": 1,
     "trace":   {field: value, ...}           the Trace's own fields, records left out
     "records": [{"key", "kind", "fields"}]   in network order
     "hidden":  [{"key", "kind", "fields"}]   records that others are made of but that the
                                              Trace does not list (a two-hop's hops)}
A value is JSON, or {"array": name}, {"record": key}, {"tuple": [...]}, or a nested
dataclass {"part": kind, "fields": {...}} of a kind registered in records.KINDS. Arrays are
named after what they belong to, made safe archive member names (names.member_name: never
absolute, never '..', whatever a user's network calls its modules): a record's `values`
by its key ("layer3.2.se:channel_gate"), its other arrays "key/field"
("nl2:affinity/queries"), the photo "image"; the header, not the name, says which is which.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path
from typing import IO, Any, Mapping, Optional, Union

import numpy as np

from . import names
from .geometry import Geometry
from .preprocess import Preprocess
from .records import KINDS, Record, Trace, kind_name, register_kind

FORMAT, VERSION, HEADER = "visattn.trace", 1, "visattn.json"
for _cls in (Geometry, Preprocess):
    register_kind(_cls)

PathOrFile = Union[str, Path, IO[bytes]]


class TraceFileError(ValueError):
    """A file that is not a VisAttn trace, or one this version cannot read; one sentence."""


# ----- writing --------------------------------------------------------------------------
def _member(name: str, taken) -> str:
    """A safe, unused archive member name for an array called `name` ('/' separates parts)."""
    base = names.member_name(*name.split("/"))
    stored, k = base, 1
    while stored in taken or stored == HEADER:
        k += 1
        stored = f"{base}~{k}"
    return stored


class _Writer:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.hidden: dict[str, Record] = {}

    def value(self, v: Any, name: str) -> Any:
        """A field value as JSON; arrays go to self.arrays under `name`."""
        if isinstance(v, np.ndarray):
            stored = _member(name, self.arrays)
            self.arrays[stored] = v
            return {"array": stored}
        if isinstance(v, Record):
            self.hidden.setdefault(v.key, v)
            return {"record": v.key}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {"part": kind_name(type(v)), "fields": self.fields(v, name, flat=True)}
        if isinstance(v, tuple):
            return {"tuple": [self.value(x, f"{name}/{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [self.value(x, f"{name}/{i}") for i, x in enumerate(v)]
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return {"float": repr(v)}
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        raise TypeError(f"{name}: a {type(v).__name__} cannot be saved in a trace file")

    def fields(self, obj, prefix: str, flat: bool = False, skip: tuple = ()) -> dict:
        """A dataclass's fields, arrays named prefix/field; a record's `values` (not
        `flat`) by the prefix, its key, alone."""
        out = {}
        for f in dataclasses.fields(obj):
            if f.name in skip:
                continue
            name = prefix if (f.name == "values" and not flat) else \
                f"{prefix}/{f.name}" if prefix else f.name
            out[f.name] = self.value(getattr(obj, f.name), name)
        return out

    def record(self, rec: Record) -> dict:
        kind = kind_name(type(rec))
        if KINDS.get(kind) is not type(rec):
            raise TypeError(f"{rec.key}: record kind {kind} is not registered")
        return {"key": rec.key, "kind": kind, "fields": self.fields(rec, rec.key)}


def to_bytes(trace: Trace, extra: Optional[Mapping[str, np.ndarray]] = None) -> bytes:
    """The file's bytes; `extra` arrays (e.g. the rows of exported queries) are stored
    beside the Trace's under their own names (made safe) and ignored by `load`."""
    w = _Writer()
    records = [w.record(r) for r in trace.records]
    listed = {r.key for r in trace.records}
    hidden, done = [], set()
    while w.hidden.keys() - listed - done:  # hops of hops too
        key = sorted(w.hidden.keys() - listed - done)[0]
        done.add(key)
        hidden.append(w.record(w.hidden[key]))
    header = {"format": FORMAT, "version": VERSION,
              "trace": w.fields(trace, "", skip=("records",)), "records": records,
              "hidden": hidden}
    arrays = dict(w.arrays)
    for name, a in (extra or {}).items():
        arrays[_member(name, arrays)] = a
    arrays[HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save(trace: Trace, path: PathOrFile) -> None:
    """Write `trace` to one .npz file (arrays + a JSON header, no pickle)."""
    data = to_bytes(trace)
    if hasattr(path, "write"):
        path.write(data)
    else:
        Path(path).write_bytes(data)


# ----- reading --------------------------------------------------------------------------
class _Reader:
    def __init__(self, arrays, header: dict):
        self.arrays, self.header = arrays, header
        self.specs = {r["key"]: r for r in header.get("records", []) + header.get("hidden", [])}
        self.built: dict[str, Record] = {}
        self.building: set[str] = set()

    def record(self, key: str) -> Record:
        if key in self.built:
            return self.built[key]
        if key not in self.specs or key in self.building:
            raise TraceFileError(f"the file's record {key[:60]!r} is missing or made of itself")
        self.building.add(key)
        spec = self.specs[key]
        rec = self.make(spec["kind"], spec["fields"], Record)
        if rec.key != key:
            raise TraceFileError(f"the file's record {key[:60]!r} reads back as {rec.key[:60]!r}")
        self.built[key] = rec
        return rec

    def make(self, kind: str, fields: dict, base: type = object):
        cls = KINDS.get(kind)
        if cls is None or not issubclass(cls, base):
            raise TraceFileError(f"the file holds a {kind[:60]!r}, which this VisAttn does not "
                                 "know (import the module that defines it first)")
        names = {f.name for f in dataclasses.fields(cls)}
        if not set(fields) <= names:
            raise TraceFileError(f"the file's {kind} has fields this version lacks: "
                                 f"{sorted(set(fields) - names)[:3]}")
        return cls(**{k: self.value(v) for k, v in fields.items()})

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "array" in v:
            if v["array"] not in self.arrays:
                raise TraceFileError(f"the file lacks its array {str(v['array'])[:60]!r}")
            return self.arrays[v["array"]]
        if "record" in v:
            return self.record(v["record"])
        if "tuple" in v:
            return tuple(self.value(x) for x in v["tuple"])
        if "float" in v:
            return float(v["float"])
        if "part" in v:
            return self.make(v["part"], v["fields"])
        raise TraceFileError("the file's header holds a value this version cannot read")


def _header(arrays) -> dict:
    if HEADER not in arrays:
        raise TraceFileError("this .npz holds no VisAttn trace (no visattn.json header); "
                             "make one with visattn.save or `visattn analyze`")
    try:
        header = json.loads(arrays[HEADER].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TraceFileError("the trace file's header is damaged") from None
    if header.get("format") != FORMAT:
        raise TraceFileError("this .npz holds no VisAttn trace")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise TraceFileError(f"this trace file was written by a newer VisAttn (format "
                             f"{str(header.get('version'))[:10]}); this one reads up to {VERSION}")
    return header


def load(path: PathOrFile) -> Trace:
    """The Trace saved in `path` (a file name, or a binary file object)."""
    source = path if hasattr(path, "read") else Path(path)
    try:
        with np.load(source, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError) as exc:  # not a zip, damaged, pickled content
        raise TraceFileError(f"cannot read a trace file: {str(exc)[:120]}") from None
    reader = _Reader(arrays, _header(arrays))
    try:
        records = [reader.record(r["key"]) for r in reader.header.get("records", [])]
        fields = {k: reader.value(v) for k, v in reader.header["trace"].items()}
        return Trace(records=records, **fields)
    except (TypeError, KeyError) as exc:
        raise TraceFileError(f"the trace file does not fit this version: {str(exc)[:120]}") from None
