"""The attention registry: one entry per attention-module class.

An entry holds everything VisAttn knows about a class: its family (name, paper, what it
attends to), the probe (which submodules to tap, how the tapped tensors become records)
and the neutral values that switch it off. Capture, ablation, the Families page and the
zoo's family lists read it; users add their own classes with `register_attention`:

    @visattn.register_attention(family="MyGate", kind="channel", tap="sigmoid")
    class MyGate(nn.Module): ...

Lookups are by exact class: a module whose class is not registered (a subclass or a
look-alike) is never captured. The built-in entries (`builtin.py`) load on first use.
"""
from __future__ import annotations

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
    cls: type
    family: Family
    kind: str
    probe: Probe
    neutral: Optional[dict[str, Neutral]]  # tap path -> neutral output; None: cannot be switched off
    optional: frozenset[str] = frozenset()  # paths an instance may lack (timm sets unused ones to None)


class _Registry:
    def __init__(self):
        self.entries: "OrderedDict[type, Entry]" = OrderedDict()
        self.families: "OrderedDict[str, Family]" = OrderedDict()
        self.builtins_loaded = False
        self.loading = False


_REG = _Registry()
_LOADING = threading.RLock()  # re-entered by builtin's own register_attention calls
_DEFAULT = object()  # neutral= not given: the kind's default


def _ensure_builtins() -> None:
    """Load the built-in entries once; other threads wait until all are registered."""
    if _REG.builtins_loaded:
        return
    with _LOADING:
        if _REG.builtins_loaded or _REG.loading:  # loaded meanwhile, or builtin's own calls
            return
        _REG.loading = True
        try:
            from . import builtin  # noqa: F401  (registers the project's own entries)
        finally:
            _REG.loading = False
        _REG.builtins_loaded = True


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
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_attention takes an nn.Module class, not {cls!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    _ensure_builtins()
    if cls in _REG.entries and not replace:
        raise ValueError(f"{cls.__qualname__} is registered already (replace=True to change it)")
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


def unregister_attention(cls: type) -> None:
    """Forget a class (and its family, if no other class belongs to it)."""
    entry = _REG.entries.pop(cls)
    if not any(e.family.tag == entry.family.tag for e in _REG.entries.values()):
        _REG.families.pop(entry.family.tag, None)


def entries() -> list[Entry]:
    """Every registered entry, built-ins first, in registration order."""
    _ensure_builtins()
    return list(_REG.entries.values())


def families() -> list[Family]:
    """Every registered family, in registration order."""
    _ensure_builtins()
    return list(_REG.families.values())


def family(tag: str) -> Family:
    _ensure_builtins()
    try:
        return _REG.families[tag]
    except KeyError:
        raise KeyError(f"no attention family tagged {tag!r}; known: "
                       f"{', '.join(_REG.families)}") from None


def entry_for(module: nn.Module) -> Optional[Entry]:
    """The entry of the module's own class (never of a base class), or None."""
    _ensure_builtins()
    return _REG.entries.get(type(module))


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
