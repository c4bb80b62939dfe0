"""Neutral values: what a tapped submodule outputs when its attention is switched off.

A `Neutral` is a forward-hook body `(module, args, output) -> replacement`. A registry
entry maps tap paths inside its attention block to neutral values ("" is the block
itself); `ablation.attention_off` installs them as forward hooks.
"""
from __future__ import annotations

from typing import Callable, Mapping, Union

import torch
import torch.nn as nn

Neutral = Callable[[nn.Module, tuple, torch.Tensor], torch.Tensor]
# what register_attention accepts: a number (the tap's output filled with it), "identity"
# (the module passes its input through), a Neutral, or a mapping tap path -> one of those
NeutralSpec = Union[float, str, Neutral, Mapping[str, Union[float, str, Neutral]]]


def constant(value: float) -> Neutral:
    """The output filled with `value` (same shape, dtype and device)."""
    def neutral(m, args, out):
        return torch.full_like(out, value)
    neutral.__qualname__ = f"constant({value})"
    return neutral


ONES = constant(1.0)  # multiplicative gates: x * 1 = x
ZEROS = constant(0.0)  # additive terms, and BAM's gate (applied as 1 + gate)


def identity(m, args, out):
    """The module returns its input: a residual attention block (x + f(x)) without f."""
    return args[0]


def uniform(dim: int) -> Neutral:
    """Weights that are uniform over `dim` (K branches: 1 / K each)."""
    def neutral(m, args, out):
        return torch.full_like(out, 1.0 / out.shape[dim])
    return neutral


def uniform_radix(m, args, out):
    """ResNeSt's rSoftMax: 1 / radix over the splits; its sigmoid gate (radix 1) becomes 1."""
    radix = getattr(m, "radix", 2)
    return torch.full_like(out, 1.0 / radix) if radix > 1 else torch.ones_like(out)


def as_neutral(spec: Union[float, str, Neutral]) -> Neutral:
    """One neutral value from a number, "identity" or a hook body."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return constant(float(spec))
    if spec == "identity":
        return identity
    if callable(spec):
        return spec
    raise ValueError(f"a neutral value is a number, 'identity' or a function "
                     f"(module, args, output) -> output; got {spec!r}")


def neutral_table(spec: NeutralSpec, default_path: str) -> dict[str, Neutral]:
    """tap path -> Neutral. A single value applies to `default_path` ("identity": to the
    block itself, path "")."""
    if isinstance(spec, Mapping):
        return {path: as_neutral(v) for path, v in spec.items()}
    return {"" if spec == "identity" else default_path: as_neutral(spec)}
