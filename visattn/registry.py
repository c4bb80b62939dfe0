"""The attention registry: one entry per attention-module class.

An entry holds everything VisAttn knows about a class: its family (name, paper, what it
attends to), the probe (which submodules to tap, how the tapped tensors become records)
and the neutral values that switch it off. Capture, ablation, the Families page and the
zoo's family lists read it; users add their own classes with `register_attention`:

    @visattn.register_attention(family="MyGate", kind="channel", tap="sigmoid")
    class MyGate(nn.Module): ...

Lookups are by exact class: a module whose class is not registered (a subclass or a
look-alike) is never captured. A class of another library can be registered by its path,
"package.module:Class", without importing that library: the entry is bound to the class
the first time a module of it is met (importing visattn imports no network library). This
module is a leaf: it imports none of its entries; the package imports `builtin.py`, the
project's own entries.
"""
from __future__ import annotations

import importlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator, Literal, Optional, Sequence, Union

import torch.nn as nn

from .neutral import Neutral, NeutralSpec, ONES, neutral_table, uniform
from .probes import (Build, Finish, Probe, Scale, Tap, branch_weights, channel_gate,
                     embedded_gaussian, spatial_gate)

Kind = Literal["channel", "spatial", "pairwise", "branch", "custom"]
KINDS = ("channel", "spatial", "pairwise", "branch", "custom")


@dataclass(frozen=True)
class Family:
    """An attention family as the Families page shows it. `tag` is the name records and
    model cards carry ("GC"); `name` the one shown ("GCNet"). A family `shown_under`
    another appears in that family's row (BoTNet and DANet under Non-local)."""
    tag: str
    name: str = ""
    paper: str = ""  # "Authors, year: title"
    link: str = ""
    attends_to: str = ""  # channel / spatial / pairwise / branch, in words
    note: str = ""
    example: tuple[str, ...] = ()  # (network, example-file pattern) that shows it best
    shown_under: Optional[str] = None

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", self.tag)

    @property
    def card_families(self) -> tuple[str, ...]:
        """The tags whose networks this family's row lists: its own and those shown under it."""
        return (self.tag, *(f.tag for f in families() if f.shown_under == self.tag))


@dataclass(frozen=True)
class Entry:
    """What VisAttn knows about one attention-module class."""
    cls: Union[type, str]  # the class, or its "package.module:Class" path until first met
    family: Family
    kind: str
    probe: Probe
    neutral: Optional[dict[str, Neutral]]  # tap path -> neutral output; None: cannot be switched off
    optional: frozenset[str] = frozenset()  # paths an instance may lack (timm sets unused ones to None)


class _Registry:
    def __init__(self):
        self.entries: "OrderedDict[Union[type, str], Entry]" = OrderedDict()
        self.families: "OrderedDict[str, Family]" = OrderedDict()


_REG = _Registry()
_LOCK = threading.RLock()
_DEFAULT = object()  # neutral= not given: the kind's default


def class_path(cls: type) -> str:
    """"package.module:Class", the name a class can be registered under."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(path: str) -> Optional[type]:
    """The class a path names, None if its module cannot be imported or lacks it."""
    module, _, qualname = path.partition(":")
    try:
        obj = importlib.import_module(module)
    except ImportError:
        return None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) else None


def _bind(cls: type) -> Optional[Entry]:
    """The entry registered by path for exactly this class, now keyed by the class."""
    with _LOCK:
        entry = _REG.entries.get(class_path(cls))
        if entry is None or _resolve(entry.cls) is not cls:
            return None
        bound = Entry(cls, entry.family, entry.kind, entry.probe, entry.neutral, entry.optional)
        _REG.entries = OrderedDict((cls if k == entry.cls else k, bound if k == entry.cls else e)
                                   for k, e in _REG.entries.items())
        return bound


def _family(family: Union[str, Family], kind: str, paper: str, link: str,
            attends_to: str) -> Family:
    """The registered family of that tag, or a new one."""
    if isinstance(family, Family):
        if family.shown_under is not None and family.shown_under not in _REG.families:
            raise ValueError(f"{family.tag} is shown under {family.shown_under!r}, which is "
                             "not a registered family")
        known = _REG.families.get(family.tag)
        if known is not None and known != family:
            raise ValueError(f"a different family tagged {family.tag!r} is registered already")
        return _REG.families.setdefault(family.tag, family)
    if family in _REG.families:
        return _REG.families[family]
    return _REG.families.setdefault(family, Family(family, paper=paper, link=link,
                                                   attends_to=attends_to or kind))


def _taps(paths: Sequence[str]) -> tuple[Tap, ...]:
    return tuple(p if isinstance(p, Tap) else Tap(p) for p in paths)


def _kind_probe(kind: str, tap, scale: Scale, build: Optional[Build],
                taps: Optional[Sequence]) -> tuple[tuple[Tap, ...], Build, str]:
    """(taps, builder, default neutral path) for one of the KINDS."""
    if kind == "custom":
        if build is None or taps is None:
            raise ValueError("kind='custom' needs taps=(paths...) and build=function(BlockCall)")
        return _taps(taps), build, ""
    if kind == "pairwise":
        if not (isinstance(tap, (tuple, list)) and len(tap) == 2):
            raise ValueError("kind='pairwise' needs tap=(query path, key path)")
        return _taps(tap), build or embedded_gaussian(tap[0], tap[1], scale), ""
    if not isinstance(tap, str):
        raise ValueError(f"kind={kind!r} needs tap='path of the submodule whose output is "
                         "the gate' (after its activation)")
    maker = {"channel": channel_gate, "spatial": spatial_gate, "branch": branch_weights}[kind]
    return _taps(taps or (tap,)), build or maker(tap), tap


_KIND_NEUTRAL = {"channel": ONES, "spatial": ONES, "branch": uniform(1), "pairwise": "identity"}


def register_attention(cls: Optional[type] = None, *, family: Union[str, Family], kind: Kind,
                       tap: Union[str, Sequence[str], None] = None,
                       neutral: NeutralSpec = _DEFAULT, scale: Scale = None,
                       taps: Optional[Sequence] = None, build: Optional[Build] = None,
                       finish: Optional[Finish] = None,
                       grid_from: Literal["input", "output"] = "input",
                       optional: Sequence[str] = (), paper: str = "", link: str = "",
                       attends_to: str = "", replace: bool = False):
    """Register an attention-module class (or use as a class decorator).

    kind "channel": `tap` is the submodule whose output is the (post-activation) gate,
      C values per image -> ChannelWeights (C,); switched off: gate = 1.
    kind "spatial": `tap` outputs (B, 1, H, W) on the block input's grid -> SpatialMap
      (H, W); switched off: gate = 1.
    kind "pairwise": `tap=(query, key)` outputs (B, d, H, W) each; rows softmax(scale *
      q_i . K), `scale` default d ** -0.5 -> lazy Affinity; switched off: the block
      returns its input (a residual block without its branch).
    kind "branch": `tap` outputs (B, K, C, ...) weights over K branches -> BranchWeights;
      switched off: 1 / K each.
    kind "custom": `taps=(paths...)` and `build(BlockCall) -> records`; give `neutral`.
    `neutral`: a number (the tap's output filled with it), "identity", a hook body
    (module, args, output) -> output, a mapping tap path -> one of those, or None (it
    cannot be switched off; attention_off says so). `family` is a registered tag or a
    new one (described by `paper`, `link`, `attends_to`) or a `Family`.
    """
    if cls is None:
        return lambda c: register_attention(
            c, family=family, kind=kind, tap=tap, neutral=neutral, scale=scale, taps=taps,
            build=build, finish=finish, grid_from=grid_from, optional=optional, paper=paper,
            link=link, attends_to=attends_to, replace=replace)
    by_path = isinstance(cls, str)
    if by_path and ":" not in cls:
        raise TypeError(f"a class path is 'package.module:Class', not {cls[:80]!r}")
    if not by_path and not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_attention takes an nn.Module class, not {cls!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    with _LOCK:
        return _register(cls, family, kind, tap, neutral, scale, taps, build, finish, grid_from,
                         optional, paper, link, attends_to, replace)


def _register(cls, family, kind, tap, neutral, scale, taps, build, finish, grid_from, optional,
              paper, link, attends_to, replace):
    known = cls in _REG.entries or (not isinstance(cls, str) and class_path(cls) in _REG.entries)
    if known and not replace:
        name = cls if isinstance(cls, str) else cls.__qualname__
        raise ValueError(f"{name} is registered already (replace=True to change it)")
    if not isinstance(cls, str):
        _REG.entries.pop(class_path(cls), None)
    probe_taps, builder, default_path = _kind_probe(kind, tap, scale, build, taps)
    if neutral is _DEFAULT:
        if kind == "custom":
            raise ValueError("kind='custom' needs neutral=... (or neutral=None if it cannot "
                             "be switched off)")
        neutral = _KIND_NEUTRAL[kind]
    fam = _family(family, kind, paper, link, attends_to)
    _REG.entries[cls] = Entry(
        cls, fam, kind, Probe(fam.tag, probe_taps, builder, grid_from, finish),
        None if neutral is None else neutral_table(neutral, default_path), frozenset(optional))
    return cls


def unregister_attention(cls: Union[type, str]) -> None:
    """Forget a class (and its family, if no other class belongs to it)."""
    with _LOCK:
        key = cls
        if cls not in _REG.entries:
            key = _resolve(cls) if isinstance(cls, str) else class_path(cls)
        entry = _REG.entries.pop(key)
    if not any(e.family.tag == entry.family.tag for e in _REG.entries.values()):
        _REG.families.pop(entry.family.tag, None)


def entries() -> list[Entry]:
    """Every registered entry, built-ins first, in registration order (classes registered
    by path are imported here, those whose library is missing left out)."""
    for key in [k for k in _REG.entries if isinstance(k, str)]:
        cls = _resolve(key)
        if cls is not None:
            _bind(cls)
    return [e for e in _REG.entries.values() if not isinstance(e.cls, str)]


def families() -> list[Family]:
    """Every registered family, in registration order."""
    return list(_REG.families.values())


def family(tag: str) -> Family:
    try:
        return _REG.families[tag]
    except KeyError:
        raise KeyError(f"no attention family tagged {tag!r}; known: "
                       f"{', '.join(_REG.families)}") from None


def entry_for(module: nn.Module) -> Optional[Entry]:
    """The entry of the module's own class (never of a base class), or None."""
    entry = _REG.entries.get(type(module))
    if entry is None and _REG.entries:
        entry = _bind(type(module)) if class_path(type(module)) in _REG.entries else None
    return entry


def probe_for(module: nn.Module) -> Optional[Probe]:
    entry = entry_for(module)
    return entry.probe if entry else None


def registered(model: nn.Module) -> Iterator[tuple[str, nn.Module, Entry]]:
    """(path, module, entry) of every registered attention module, in module order."""
    for path, module in model.named_modules():
        entry = entry_for(module)
        if entry is not None:
            yield path, module, entry


_ATTENTION_NAME = re.compile(r"attn|attention|excit|squeeze|gate|cbam|non_?local", re.I)
_GATE_LAYERS = {"sigmoid", "hardsigmoid", "softmax", "softmax2d"}


def look_alikes(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Unregistered modules that look like attention: a class name such as "...Attn",
    "...Gate", "...Excite", or a sigmoid/softmax layer among its children. Modules inside
    or around a registered one are left out (they are its parts, or its host)."""
    inside = [p for p, _, _ in registered(model)]

    def related(path: str) -> bool:
        return any(path == p or path.startswith(p + ".") or p.startswith(path + ".")
                   for p in inside)

    def looks(module: nn.Module) -> bool:
        return bool(_ATTENTION_NAME.search(type(module).__name__)) or any(
            type(c).__name__.lower() in _GATE_LAYERS for c in module.children())

    return [(path, module) for path, module in model.named_modules()
            if path and entry_for(module) is None and not related(path) and looks(module)]
