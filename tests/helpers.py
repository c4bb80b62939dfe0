"""Shared test helpers: functional re-implementations of layers (independent of the
libraries' forward code) and ways to make random-init models meaningful."""
import re
import zlib

import numpy as np
import torch
import torch.nn.functional as F


def conv(x, m):
    return F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)


def bn(x, m):
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def lin(x, m):
    return F.linear(x, m.weight, m.bias)


def hook_count(model: torch.nn.Module) -> int:
    """All forward hooks and pre-hooks registered anywhere in the model."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def fill_random(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every float tensor of the state dict drawn from one seeded generator: N(0, 0.25),
    running variances in [0.5, 1.5). Returns the module in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "running_var" in name
                        else torch.randn(t.shape, generator=g) * 0.5)
    return module.eval()


def liven(model: torch.nn.Module, seed: int = 0, size: int = 224) -> torch.nn.Module:
    """Make a random-init model's attention non-degenerate. Libraries zero-init the last
    BN of each block (the attention input is then all zeros) and some projections, and
    random weights let activations explode until sigmoids saturate. So: refill all-zero
    weights, give BN layers random affine parameters, then calibrate BN statistics on
    random images (as training would), and return the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.abs().sum():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        for m in model.modules():
            if isinstance(m, norms):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batch
        model.train()
        model(torch.randn(4, 3, size, size, generator=g))
    return model.eval()


def _random_value(key: str, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One state-dict tensor's random replacement, by its key and shape: conv/linear weights
    ~ N(0, 1/fan_in), biases small, BN affine and statistics random, the zero-initialised
    attention scales (gamma) and NL output BN non-zero."""
    if key.endswith("running_var"):
        return torch.rand(t.shape, generator=g) + 0.5
    if key.endswith("running_mean"):
        return torch.randn(t.shape, generator=g) * 0.1
    if key.endswith("gamma.scale"):
        return torch.rand(t.shape, generator=g) + 0.5
    if t.ndim == 1 and (".bn" in key or "bn." in key or "stem." in key or "downsample.1" in key):
        return (torch.rand(t.shape, generator=g) + 0.5) if key.endswith("weight") \
            else torch.randn(t.shape, generator=g) * 0.1
    if t.ndim >= 2:
        return torch.randn(t.shape, generator=g) * t[0].numel() ** -0.5
    return torch.randn(t.shape, generator=g) * 0.05


def randomize_segmentor(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every tensor of a segmentor drawn from one seeded generator, in state-dict order,
    so two environments (ours, mmsegmentation's) build identical weights, so that the
    attention visibly changes the logits (`_random_value`)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(_random_value(key, t, g))
    return model.eval()


def randomize_by_key(model: torch.nn.Module, seed: int, gains: dict = {}) -> torch.nn.Module:
    """Every float tensor of the state dict drawn by `_random_value` from a generator seeded
    by (seed, the key's name) alone: any two networks with the same key names and shapes get
    the same weights, whatever their module order or the keys only one of them has. `gains`
    {regular expression: factor} scales the keys it finds (re.search, the first that
    matches), e.g. to keep a deep network's activations and attention logits in a range
    where softmax rows are neither one-hot nor uniform."""
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if t.is_floating_point():
                g = torch.Generator().manual_seed(seed * 2 ** 32 + zlib.crc32(key.encode()))
                gain = next((f for pattern, f in gains.items() if re.search(pattern, key)), 1.0)
                t.copy_(_random_value(key, t, g) * gain)
    return model.eval()


def random_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An (h, w, 3) uint8 photo of uniform random pixels from one seeded generator."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def scene_folder(root, seeds, broken: bool = True):
    """Generated scenes (visattn.scenes.make_scene(seed) for each seed) in ImageFolder layout
    (subfolder = true class) under `root`, and, with `broken`, one unreadable .png."""
    from pathlib import Path

    from PIL import Image

    from visattn.scenes import CLASSES, make_scene
    root = Path(root)
    for seed in seeds:
        s = make_scene(seed)
        (root / CLASSES[s.label]).mkdir(exist_ok=True)
        Image.fromarray(s.image).save(root / CLASSES[s.label] / f"scene_{seed % 1000}.png")
    if broken:
        (root / CLASSES[0]).mkdir(exist_ok=True)
        (root / CLASSES[0] / "broken.png").write_bytes(b"not a png")
    return root
