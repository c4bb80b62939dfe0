"""Shared test helpers: functional re-implementations of layers (independent of the
libraries' forward code) and ways to make random-init models meaningful."""
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
