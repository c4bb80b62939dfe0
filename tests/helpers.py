"""Shared test helpers: functional re-implementations of layers (independent of the
libraries' forward code) and ways to make random-init models meaningful."""
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


def randomize_segmentor(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every tensor of a segmentor drawn from one seeded generator, in state-dict order,
    so two environments (ours, mmsegmentation's) build identical weights: conv/linear
    weights ~ N(0, 1/fan_in), biases small, BN affine and statistics random, the
    zero-initialised attention scales (gamma) and NL output BN made non-zero, so that the
    attention visibly changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if key.endswith("running_var"):
                new = torch.rand(t.shape, generator=g) + 0.5
            elif key.endswith("running_mean"):
                new = torch.randn(t.shape, generator=g) * 0.1
            elif key.endswith("gamma.scale"):
                new = torch.rand(t.shape, generator=g) + 0.5
            elif t.ndim == 1 and (".bn" in key or "bn." in key or "stem." in key or "downsample.1" in key):
                new = (torch.rand(t.shape, generator=g) + 0.5) if key.endswith("weight") \
                    else torch.randn(t.shape, generator=g) * 0.1
            elif t.ndim >= 2:
                fan_in = t[0].numel()
                new = torch.randn(t.shape, generator=g) * fan_in ** -0.5
            else:
                new = torch.randn(t.shape, generator=g) * 0.05
            t.copy_(new)
    return model.eval()


def random_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An (h, w, 3) uint8 photo of uniform random pixels from one seeded generator."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
