"""Switching attention off, stage by stage, with forward hooks (weights are never touched).

Neutral values: channel/spatial gates of SE, ECA, CBAM, GSoP and Triplet become 1; BAM's
sigmoid becomes 0 (its gate is 1 + sigmoid); SK / ResNeSt branch weights become uniform
(1 / K); GCNet's channel-add term becomes 0; Non-local, A^2, CCNet and DANet position
attention blocks pass their input through (residual branch off).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from .capture import attachable, stage_of
from .preprocess import Preprocess, prepare

Neutral = Callable[[nn.Module, tuple, torch.Tensor], torch.Tensor]


def _ones(m, args, out):
    return torch.ones_like(out)


def _zeros(m, args, out):
    return torch.zeros_like(out)


def _identity(m, args, out):
    return args[0]


def _uniform_branches(k_dim: int):
    def neutral(m, args, out):
        return torch.full_like(out, 1.0 / out.shape[k_dim])
    return neutral


def _uniform_radix(m, args, out):
    radix = getattr(m, "radix", 2)
    return torch.full_like(out, 1.0 / radix) if radix > 1 else torch.ones_like(out)


# probe family -> [(submodule path inside the attention block, neutral output)]
NEUTRAL: dict[str, list[tuple[str, Neutral]]] = {
    "SE": [("gate", _ones), ("sigmoid", _ones)],
    "ECA": [("gate", _ones)],
    "GSoP": [("sigmoid", _ones)],
    "CBAM": [("channel.gate", _ones), ("spatial.gate", _ones),
             ("ch_gate.sigmoid", _ones), ("sp_gate.sigmoid", _ones)],
    "Triplet": [("cw.sigmoid", _ones), ("hc.sigmoid", _ones), ("hw.sigmoid", _ones)],
    "BAM": [("sigmoid", _zeros)],
    "GC": [("mlp_add", _zeros), ("gate", _ones)],
    "SK": [("", _uniform_branches(1))],
    "ResNeSt": [("rsoftmax", _uniform_radix), ("softmax", _uniform_branches(1))],
    "Non-local": [("", _identity)],
    "A2": [("", _identity)],
    "CCNet": [("", _identity)],
    "DANet": [("", _identity)],
    "BoT": [],  # BoTNet's attention *is* the block's convolution: no neutral value
}


@contextmanager
def attention_off(model: nn.Module, stages: Optional[Sequence[int]] = None):
    """Within the block, attention modules of the given stages (all when None) output their
    neutral values. Hooks are removed on exit, also after an exception."""
    handles = []
    try:
        for layer, block, probe in attachable(model):
            if stages is not None and stage_of(layer) not in stages:
                continue
            for path, neutral in NEUTRAL.get(probe.family, []):
                try:
                    target = block.get_submodule(path) if path else block
                except AttributeError:
                    continue
                handles.append(target.register_forward_hook(
                    lambda m, a, o, f=neutral: f(m, a, o)))
        yield len(handles)
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


def stage_ablation(model: nn.Module, rgb, preprocess: Preprocess, labels: Sequence[str],
                   k: int = 5) -> list[AblationRow]:
    """The top-k prediction with attention on, then off per stage (and everywhere)."""
    x, _ = prepare(rgb, preprocess)
    model.eval()

    def predict():
        with torch.inference_mode():
            return torch.softmax(model(x)[0].float(), 0)

    def top(p):
        idx = torch.argsort(p, descending=True)[:k]
        return [(labels[i] if i < len(labels) else str(int(i)), float(p[i])) for i in idx]

    base = predict()
    best = int(base.argmax())
    stages = sorted({stage_of(layer) for layer, _, _ in attachable(model)} - {None})
    rows = [AblationRow(0, top(base), 0, True, float(base[best]))]
    for stage in [*stages, None]:
        with attention_off(model, None if stage is None else [stage]) as n:
            p = predict()
        rows.append(AblationRow(stage, top(p), n, int(p.argmax()) == best, float(p[best])))
    return rows
