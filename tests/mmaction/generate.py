"""Regenerate, from mmaction2 itself, what VisAttn's plain-PyTorch I3D-NL R-50
(models/i3d_nl.py) is checked against. Dev-only: nothing here runs at test time, and the
test suite needs neither mmaction2 nor this environment.

The environment (made and used on this project's dev machine: Python 3.11, torch 2.14.1 CPU,
no compiled mmcv ops):

    python -m venv --system-site-packages /tmp/mmaction-venv     # reuses this torch
    /tmp/mmaction-venv/bin/pip install --no-deps mmaction2==1.2.0 mmcv-lite==2.1.0 mmengine==0.10.7
    /tmp/mmaction-venv/bin/pip install addict yapf termcolor einops importlib_metadata
    # (numpy, scipy, opencv (cv2), matplotlib, rich, pyyaml came from the system site)
    cd /work/main && /tmp/mmaction-venv/bin/python tests/mmaction/generate.py

`--no-deps` keeps pip from pulling another torch (mmaction2 requires one) and decord /
opencv-contrib (not needed to build a model). Two import-time gaps are shimmed below, not
patched in the installed files: mmcv-lite has no compiled `mmcv.ops` (the empty package of
tests/mmseg/generate.py's `shim_mmcv_ops`; I3D uses none of them), and the PyPI wheel of
mmaction2 1.2.0 lacks the `mmaction/models/localizers/drn/` folder its `__init__` imports
(open-mmlab/mmaction2 issue #2714), so a stub `DRN` that raises if built stands in.

It builds mmaction2's model from the config shipped in its wheel
(.mim/configs/recognition/i3d/<CONFIG>.py, with `init_weights` never called: nothing is
downloaded), fills every float tensor of its state dict with tests/helpers.randomize_by_key
(seeded by the key's name, scaled by GAINS: VisAttn's model draws the same values by
name without mmaction2), runs one seeded (1, 3, 16, 80, 80) clip and writes
  tests/mmaction/reference.npz   the input (float16-exact values), cls_score (the I3D head's
                                 raw logits, before mmaction2's clip averaging), and for
                                 each Non-local block the rows of mmcv's own pairwise
                                 softmax (NonLocal3d.embedded_gaussian's output) at CELLS
                                 query cells
  tests/mmaction/reference.json  versions, mmaction2's state-dict keys and shapes, the
                                 blocks' query / key grids (theta / phi outputs), the cells,
                                 the config's data preprocessor, test pipeline, metafile URL
tests/test_mmaction_parity.py compares VisAttn's model with these files. With
`--full-size` it writes nothing and prints mmaction2 against VisAttn's model and capture on a
clip of the card's size, (1, 3, 32, 224, 224).
"""
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

CONFIG = "i3d_imagenet-pretrained-r50-nl-embedded-gaussian_8xb8-32x2x1-100e_kinetics400-rgb"
SIZE = (16, 80, 80)  # T, H, W in -> layer2 (2, 10, 10), keys (2, 5, 5); layer3 (2, 5, 5), keys (2, 2, 2)
SEED = 20261207
CELLS = 16
# with N(0, 1/fan_in) weights and random BN statistics the residual stream grows block by
# block and theta . phi (no 1/sqrt(d) scale) reaches hundreds: one-hot rows that no wrong
# scale or pooling could change. These gains keep rows between uniform and one-hot
# (row maxima 0.08-0.66); the test redraws with the same gains, read from reference.json.
GAINS = {r"conv3\.bn\.weight$": 0.2, r"layer2\..*(theta|phi).*weight$": 0.6,
         r"layer3\..*(theta|phi).*weight$": 0.3}


def shim_imports():
    """mmcv.ops as an empty package (tests/mmseg/generate.py's shim) and the DRN localizer
    that the mmaction2 1.2.0 wheel leaves out."""
    spec = importlib.util.spec_from_file_location("mmseg_generate", ROOT / "tests/mmseg/generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.shim_mmcv_ops()
    drn = types.ModuleType("mmaction.models.localizers.drn")
    drn.__path__ = []
    inner = types.ModuleType("mmaction.models.localizers.drn.drn")

    class DRN(torch.nn.Module):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("DRN is missing from the mmaction2 1.2.0 wheel")

    inner.DRN = DRN
    sys.modules[drn.__name__], sys.modules[inner.__name__] = drn, inner


def cells_of(n: int) -> list[int]:
    """CELLS query indices spread over a block's n queries, first and last included."""
    return [int(i) for i in np.linspace(0, n - 1, CELLS).round()]


def build(seed: int):
    """mmaction2's model from its wheel's config, weights by key name; returns (model, cfg,
    configs folder, spied) where spied[layer] collects, per forward, mmcv's own pairwise
    softmax ("rows") and the theta / phi output grids."""
    shim_imports()
    import mmaction
    from mmcv.cnn.bricks import non_local
    from mmengine.config import Config
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules

    from helpers import randomize_by_key

    register_all_modules()
    configs = Path(mmaction.__file__).parent / ".mim" / "configs" / "recognition" / "i3d"
    cfg = Config.fromfile(str(configs / f"{CONFIG}.py"))
    model = randomize_by_key(MODELS.build(cfg.model), seed, GAINS)
    names = {m: n for n, m in model.named_modules() if isinstance(m, non_local.NonLocal3d)}
    spied = {name: {} for name in names.values()}
    real = non_local._NonLocalNd.embedded_gaussian

    def spy(self, theta, phi):
        y = real(self, theta, phi)
        spied[names[self]]["rows"] = y[0].detach().clone()
        return y

    non_local._NonLocalNd.embedded_gaussian = spy
    for block, name in names.items():
        for part in ("theta", "phi"):
            getattr(block, part).register_forward_hook(
                lambda m, a, o, name=name, part=part: spied[name].__setitem__(part, list(o.shape[2:])))
    return model, cfg, configs, spied


def cls_score(model, x: torch.Tensor) -> torch.Tensor:
    """The I3D head's raw logits, through mmaction2's own Recognizer3D.extract_feat."""
    with torch.no_grad():
        return model.extract_feat(x[:, None], stage="head")[0]


def main():
    import mmaction
    import mmcv
    import mmengine

    torch.set_num_threads(1)
    model, cfg, configs, spied = build(SEED)
    x = torch.randn(1, 3, *SIZE, generator=torch.Generator().manual_seed(SEED)).half().float()
    logits = cls_score(model, x)
    out = {"input": x.half().numpy(), "cls_score": logits.numpy()}
    meta = {"versions": {"mmaction2": mmaction.__version__, "mmcv": mmcv.__version__,
                         "mmengine": mmengine.__version__, "torch": torch.__version__},
            "config": CONFIG, "seed": SEED, "gains": GAINS, "size": SIZE,
            "keys": {k: list(v.shape) for k, v in model.state_dict().items()},
            "blocks": {}}
    for name, got in spied.items():
        cells = cells_of(got["rows"].shape[0])
        out[f"rows/{name}"] = got["rows"][cells].numpy()
        meta["blocks"][name] = {"grid": got["theta"], "key_grid": got["phi"], "cells": cells,
                                "use_scale": bool(model.get_submodule(name).use_scale)}
        print(name, tuple(got["rows"].shape), "row max", float(got["rows"][cells].max()),
              "uniform", 1 / got["rows"].shape[-1])
    meta["data_preprocessor"] = dict(cfg.model.data_preprocessor)
    meta["test_pipeline"] = [dict(p) for p in cfg.test_pipeline]
    meta["val_pipeline"] = [dict(p) for p in cfg.val_pipeline]
    text = (configs / "metafile.yml").read_text()
    entry = text[text.index(f"Name: {CONFIG}"):]
    meta["url"] = entry[entry.index("Weights: ") + 9:].split("\n")[0].strip()
    here = ROOT / "tests" / "mmaction"
    np.savez_compressed(here / "reference.npz", **out)
    (here / "reference.json").write_text(json.dumps(meta, indent=1, default=str))
    print("cls_score range", float(logits.min()), float(logits.max()), "wrote", here)


def check_full_size(seed: int = 7):
    """Dev check, nothing written: at the card's (1, 3, 32, 224, 224), mmaction2's logits and
    rows against VisAttn's model and capture directly (too large to keep as a reference)."""
    from visattn import capture
    from visattn.models.i3d_nl import i3d_nl_r50
    from visattn.records_video import SpaceTimeAffinity

    from helpers import randomize_by_key

    torch.set_num_threads(1)
    model, _, _, spied = build(seed)
    ours = randomize_by_key(i3d_nl_r50(), seed, GAINS)
    x = torch.randn(1, 3, 32, 224, 224, generator=torch.Generator().manual_seed(seed))
    trace = capture.run_batch(ours, x)[0]
    with torch.no_grad():
        diff = (cls_score(model, x) - ours(x)).abs().max()
    print("cls_score max |diff|", float(diff))
    for rec in trace.select(SpaceTimeAffinity):
        ref = spied[rec.layer]["rows"]
        cells = cells_of(ref.shape[0])
        rows = np.stack([rec.row(i).ravel() for i in cells])
        print(rec.layer, rec.grid, rec.key_grid, "rows max |diff| %.1e" % np.abs(rows - ref[cells].numpy()).max())


if __name__ == "__main__":
    check_full_size() if "--full-size" in sys.argv else main()
