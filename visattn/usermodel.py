"""A user's own network: built by an importable factory ("my_package.my_module:build_model"),
loaded strictly from a weights file (safetensors, or a torch file read with
weights_only=True), prepared as its `pretrained_cfg`-style dict says (timm's keys:
input_size, crop_pct, interpolation, mean, std, label_names) unless flags say otherwise.

    model = load_model("my_package.my_module:build_model", "my.safetensors")
    pre = preprocess_of(model, size=(64, 64))
    register_card("my_net", "my_package.my_module:build_model", "my.safetensors")  # the app
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import torch
import torch.nn as nn

from . import weights
from .preprocess import Preprocess

if TYPE_CHECKING:
    from . import zoo

Factory = Callable[[], nn.Module]


def is_factory_spec(text: str) -> bool:
    """'package.module:function' (a zoo name has no colon)."""
    return ":" in text


def load_factory(spec: str) -> Factory:
    """The function named by 'package.module:function'; ValueError in a sentence."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"a model factory is package.module:function, got {spec[:80]!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for --model {spec[:80]!r} "
                         f"({exc}); is its folder on PYTHONPATH?") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"{module_name} has no function {attr!r}")
    return factory


def load_strictly(model: nn.Module, path: Path) -> nn.Module:
    """Load every key of the file into the model, or raise WeightsError naming what does
    not fit (BN step counters excepted: they do not affect inference)."""
    state = weights.load_state_dict(Path(path))
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise weights.WeightsError(
            f"{Path(path).name} does not fit the network: {len(missing)} keys missing "
            f"{missing[:3]}, {len(result.unexpected_keys)} unexpected "
            f"{result.unexpected_keys[:3]}.")
    return model


def load_model(spec: str, weights_path: Optional[str] = None) -> nn.Module:
    """The factory's network in eval mode, with the file's weights (random without one)."""
    model = load_factory(spec)()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{spec} returned {type(model).__name__}, not a torch nn.Module")
    if weights_path is not None:
        load_strictly(model, Path(weights_path))
    return model.eval()


def _cfg(model: nn.Module) -> dict:
    cfg = getattr(model, "pretrained_cfg", None)
    return dict(cfg) if isinstance(cfg, dict) else {}


def preprocess_of(model: nn.Module, size: Optional[tuple[int, int]] = None,
                  **given) -> Preprocess:
    """Preprocess from the model's `pretrained_cfg` dict (timm's keys), then the given
    fields (size (H, W), mode, crop_pct, interpolation, mean, std) over it; the rest is
    Preprocess's default (ImageNet, 224 px, crop 0.875)."""
    cfg = _cfg(model)
    fields = {k: cfg[k] for k in ("crop_pct", "interpolation") if k in cfg}
    fields.update({k: tuple(cfg[k]) for k in ("mean", "std") if k in cfg})
    if "input_size" in cfg:
        fields["size"] = tuple(int(v) for v in cfg["input_size"][-2:])
    fields.update({k: v for k, v in given.items() if v is not None})
    if size is not None:
        fields["size"] = tuple(size)
    return Preprocess(**fields)


def read_labels(path) -> tuple[str, ...]:
    """Class names from a text file, one per line."""
    return tuple(Path(path).read_text(encoding="utf-8").splitlines())


def labels_of(model: nn.Module, path: Optional[str] = None) -> tuple[str, ...]:
    """Class names: one per line of the file, else the model's pretrained_cfg
    `label_names`, else none (classes are shown by number)."""
    if path is not None:
        return read_labels(path)
    return tuple(_cfg(model).get("label_names", ()))


def _meta_build(factory: Factory) -> nn.Module:
    """The network without memory (meta device) where the factory allows it."""
    try:
        with torch.device("meta"):
            return factory()
    except Exception:
        return factory()


def register_card(name: str, spec: str, weights_path: str, *, labels: str = "imagenet",
                  task: "zoo.Task" = "classify", summary: str = "", licence: str = "",
                  preprocess: Optional[Preprocess] = None) -> "zoo.ModelCard":
    """A zoo card for a user's network, so the app lists it: weights from a local file
    (its sha256 taken now, so a changed file is refused), family and paper from the
    registered attention modules it is built from, `labels` a list in assets/labels."""
    from . import zoo
    factory = load_factory(spec)
    path = Path(weights_path).resolve()
    family, paper = zoo.attention_family(_meta_build(factory))
    local = weights.BundledFile(str(path), weights.file_digest(path))  # absolute: not in assets/
    source = zoo.Source("user", spec, factory,
                        lambda: preprocess or preprocess_of(_meta_build(factory)), lambda: local)
    return zoo.register(zoo.ModelCard(name, family, task, source, paper,
                                      summary or f"{name}: {spec} with {path.name}",
                                      licence or "the user's own", labels=labels))

