"""Loading a card's network: built, its weights fetched, verified and loaded strictly, and
kept in a small process-wide cache keyed by name, weights and device. Only the opener
(visattn/opener.py) and the zoo's compatibility names call this.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from typing import Callable, Iterator, Optional

import torch
import torch.nn as nn

from . import weights
from .device import DeviceLike
from .device import resolve as resolve_device
from .weights import BundledFile, Progress, WeightsError


def seed_of(name: str) -> int:
    """The seed of a network's random weights: a stable hash of its name (the same in every
    process and on every machine, unlike Python's hash())."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") >> 1


@contextlib.contextmanager
def seeded(name: str) -> Iterator[None]:
    """Build inside this: torch's random numbers start from `seed_of(name)`, so a network's
    random weights are the same whatever ran before; the caller's random state is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_of(name))
        yield


def build(card, pretrained: bool = True,
          progress: Optional[Progress] = None) -> nn.Module:
    """A new eval-mode model; with `pretrained`, its published weights fetched, verified
    and loaded strictly (a missing or unexpected key is an error, never a silent skip).
    Random weights are seeded by the card's name (`seeded`)."""
    with seeded(card.name):
        model = card.source.build()
    if pretrained:
        if card.weights is None:
            raise WeightsError(f"{card.name}: no pretrained weights are published for this "
                               "network; use random weights (architecture only).")
        path = weights.fetch(card.weights, progress, who=card.name)
        try:
            _load_strictly(card, model, path)
        except WeightsError as exc:
            weights.discard(card.weights, path)
            gone = "" if isinstance(card.weights, BundledFile) else \
                " The file was deleted; the next use downloads it again."
            raise WeightsError(f"{card.name}: {exc.public}{gone}",
                               str(exc)[len(exc.public):].strip()) from None
    return model.eval()


def _load_strictly(card, model: nn.Module, path) -> None:
    state = weights.load_state_dict(path)
    if card.source.adapt is not None:
        state = card.source.adapt(state)
    result = model.load_state_dict(state, strict=False)
    # BN's step counter predates some checkpoints and does not affect inference
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    unexpected = [] if card.source.extra_keys_ok else result.unexpected_keys
    if missing or unexpected:
        raise WeightsError(f"the weights file does not fit {card.source.library} "
                           f"{card.source.arch}: {len(missing)} keys missing {missing[:3]}, "
                           f"{len(unexpected)} unexpected {unexpected[:3]}.")


def fetch_verified(card, progress: Optional[Progress] = None):
    """The card's weight file, downloaded if needed and verified by its hash (weights.fetch;
    a file without a published hash against the sha256 recorded at VisAttn's own download)
    and, without a published hash, by one strict load of every key. Raises WeightsError."""
    if card.weights is None:
        raise WeightsError(f"{card.name}: no pretrained weights are published for this network.")
    path = weights.fetch(card.weights, progress, who=card.name)
    if isinstance(card.weights, weights.UrlFile) and card.weights.digest is None:
        build(card, pretrained=True)
    return path


class _ModelCache:
    """Loaded models, least recently used dropped first; one load per key at a time."""

    def __init__(self, size: int = 3):
        self.size = size
        self._models: "OrderedDict[tuple, nn.Module]" = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, make: Callable[[], nn.Module]) -> nn.Module:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = make()
            with self._lock:
                self._models[key] = model
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
            return model


_MODELS = _ModelCache()


def load(card, pretrained: bool = True, progress: Optional[Progress] = None,
         device: DeviceLike = "cpu") -> nn.Module:
    """The shared, eval-mode model of a card on `device` (None: CUDA if available, else
    the CPU), kept in a small LRU keyed by name, weights and device. Raises WeightsError
    (within seconds, never hanging) when pretrained weights cannot be had."""
    dev = resolve_device(device)
    return _MODELS.get((card.name, pretrained, str(dev)),
                       lambda: build(card, pretrained, progress).to(dev))
