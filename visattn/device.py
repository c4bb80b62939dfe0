"""Where a network runs: the device a caller names (or the best one here), and ZeroGPU.

`resolve(None)` is CUDA when torch sees a GPU, else the CPU; "cpu", "cuda", "cuda:1",
"mps" (any torch device string) are checked against this machine so a missing device is
one clear sentence, not an error deep inside a forward. On a Hugging Face Space with
ZeroGPU (the `spaces` package importable and SPACES_ZERO_GPU set), `on_zerogpu(fn)` wraps
the function that runs the network in `spaces.GPU`, which lends it a GPU for the call;
anywhere else it returns `fn` itself.
"""
from __future__ import annotations

import os
from typing import Callable, Optional, TypeVar, Union

import torch

from .launch import on_space

DeviceLike = Union[None, str, torch.device]
F = TypeVar("F", bound=Callable)


class DeviceError(ValueError):
    """The named device does not exist on this machine."""


def resolve(device: DeviceLike = None) -> torch.device:
    """The torch.device to run on: `device` checked, or CUDA if available, else CPU."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"{device!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"{device}: torch sees no CUDA GPU on this machine; use cpu")
        if (dev.index or 0) >= count:
            raise DeviceError(f"{device}: this machine has {count} CUDA GPU(s), cuda:0 to "
                              f"cuda:{count - 1}")
        dev = torch.device("cuda", torch.cuda.current_device() if dev.index is None else dev.index)
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{device}: Apple's MPS is not available here; use cpu")
    return dev


def of_module(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (or buffer); the CPU for an empty one."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


def on_zerogpu(fn: F, environ: Optional[dict] = None) -> F:
    """`fn` wrapped in `spaces.GPU` on a ZeroGPU Space, else `fn` unchanged."""
    env = os.environ if environ is None else environ
    if not (on_space(env) and env.get("SPACES_ZERO_GPU")):
        return fn
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)
