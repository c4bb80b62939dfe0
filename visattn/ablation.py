"""Switching attention off, stage by stage, with forward hooks (weights are never touched).

Each registry entry says what its module outputs when switched off (`neutral.py`): gates
of SE, ECA, CBAM, GSoP and Triplet become 1; BAM's sigmoid 0 (its gate is 1 + sigmoid);
SK / ResNeSt branch weights uniform (1 / K); GCNet's channel-add term 0; Non-local, A^2,
CCNet and DANet position-attention blocks pass their input through (residual branch off).
A module that cannot be switched off (BoTNet's attention is its convolution; an
unregistered module that looks like attention) is named in a warning, never left on
silently.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import torch
import torch.nn as nn

from .capture import stage_of
from .preprocess import Preprocess, prepare
from .registry import Entry, look_alikes, registered


class AttentionLeftOn(UserWarning):
    """attention_off met an attention module it cannot switch off."""


class AttentionError(RuntimeError):
    """attention_off(strict=True) met an attention module it cannot switch off."""


@dataclass
class Switched:
    """What attention_off did: the layers switched off, and a sentence per module left on."""
    layers: list[str] = field(default_factory=list)
    left_on: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.layers)


def _hook(block: nn.Module, path: str, neutral) -> Optional[torch.utils.hooks.RemovableHandle]:
    try:
        target = block.get_submodule(path) if path else block
    except AttributeError:
        return None
    return target.register_forward_hook(lambda m, a, o: neutral(m, a, o))


def _switch_off(layer: str, block: nn.Module, entry: Entry) -> tuple[list, Optional[str]]:
    """Hooks that neutralise one block, or a sentence saying why it stays on."""
    name = f"{type(block).__name__} at {layer!r}"
    if entry.neutral is None:
        return [], f"{name} ({entry.family.name}) has no neutral value: it stays on."
    handles, missing = [], []
    for path, neutral in entry.neutral.items():
        handle = _hook(block, path, neutral)
        if handle is not None:
            handles.append(handle)
        elif path not in entry.optional:
            missing.append(path)
    if missing or not handles:
        for h in handles:
            h.remove()
        return [], (f"{name} lacks the submodule {(missing or list(entry.neutral))[0]!r} its "
                    "entry switches off: it stays on.")
    return handles, None


def _look_alike_sentence(layer: str, module: nn.Module) -> str:
    return (f"{type(module).__name__} at {layer!r} looks like attention but its class is not "
            "registered, so it stays on (visattn.register_attention registers it).")


@contextmanager
def attention_off(model: nn.Module, stages: Optional[Sequence[int]] = None, *,
                  strict: bool = False, warn: bool = True) -> Iterator[Switched]:
    """Within the block, every registered attention module of the given stages (all when
    None) outputs its neutral value; yields a `Switched`. Modules that cannot be switched
    off are named in an `AttentionLeftOn` warning (an `AttentionError` with `strict`; only
    in `Switched.left_on` with warn=False).
    Hooks are removed on exit, also after an exception: the model is exactly as before."""
    chosen = lambda layer: stages is None or stage_of(layer) in stages  # noqa: E731
    handles, report = [], Switched()
    try:
        for layer, block, entry in registered(model):
            if chosen(layer):
                got, why = _switch_off(layer, block, entry)
                handles += got
                report.layers += [layer] if got else []
                report.left_on += [why] if why else []
        report.left_on += [_look_alike_sentence(layer, m) for layer, m in look_alikes(model)
                           if chosen(layer)]
        for sentence in report.left_on:
            if strict:
                raise AttentionError(sentence)
            if warn:
                warnings.warn(sentence, AttentionLeftOn, stacklevel=3)
        yield report
    finally:
        for h in handles:
            h.remove()


@dataclass(frozen=True)
class AblationRow:
    stage: Optional[int]  # None: every stage
    top: list[tuple[str, float]]
    switched: int  # attention modules neutralised
    same_top1: bool
    baseline_prob_of_top1: float  # probability of the unablated top-1 class after ablation
    left_on: tuple[str, ...] = ()  # a sentence per attention module that could not be switched off

    @property
    def what(self) -> str:
        """Which attention the row switched off, in words (the app's and the CLI's label)."""
        return "none (baseline)" if self.stage == 0 else \
            ("every stage" if self.stage is None else f"stage {self.stage}")


def stage_ablation(model: nn.Module, rgb, preprocess: Preprocess, labels: Sequence[str],
                   k: int = 5) -> list[AblationRow]:
    """The top-k prediction with attention on, then off per stage (and everywhere)."""
    x, _ = prepare(rgb, preprocess)
    model.eval()

    def predict():
        with torch.inference_mode():
            out = model(x)
        if not (isinstance(out, torch.Tensor) and out.ndim == 2):
            raise ValueError("switching attention off compares class predictions: the network "
                             "must output (1, classes) logits")
        return torch.softmax(out[0].float(), 0)

    def top(p):
        idx = torch.argsort(p, descending=True)[:k]
        return [(labels[i] if i < len(labels) else str(int(i)), float(p[i])) for i in idx]

    base = predict()
    best = int(base.argmax())
    stages = sorted({stage_of(layer) for layer, _, _ in registered(model)} - {None})
    rows = [AblationRow(0, top(base), 0, True, float(base[best]))]
    for stage in [*stages, None]:
        with attention_off(model, None if stage is None else [stage], warn=False) as off:
            p = predict()  # modules left on are said in the row
        rows.append(AblationRow(stage, top(p), len(off), int(p.argmax()) == best,
                                float(p[best]), tuple(off.left_on)))
    return rows
