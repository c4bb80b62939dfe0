"""Regenerate, from mmsegmentation itself, what VisAttn's plain-PyTorch R-50-D8 networks are
checked against. Dev-only: run it in an environment with mmsegmentation (not needed at run
time or by the test suite):

    python -m venv /tmp/mmenv --system-site-packages      # reuses this machine's torch
    /tmp/mmenv/bin/pip install mmsegmentation==1.2.2 mmengine mmcv-lite==2.1.0 ftfy regex
    /tmp/mmenv/bin/python tests/mmseg/generate.py

It writes
  tests/mmseg/reference.npz   mmseg's decode logits and internal attention rows for the
                              NonLocalNet / DNLNet / CCNet / DANet R-50-D8 ADE20K configs,
                              with weights made by tests/helpers.randomize_segmentor(seed);
                              for DNLNet also the unary logits (conv_mask's output)
  tests/mmseg/reference.json  mmseg's state-dict keys and shapes, the checkpoint URLs from
                              mmseg's metafiles, the test pipeline settings
  assets/labels/ade20k.txt, assets/labels/ade20k_palette.txt   from mmseg's ADE20KDataset
tests/test_mmseg_parity.py compares VisAttn's models with these files.
"""
import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def shim_mmcv_ops():
    """mmcv-lite has no compiled ops; mmseg imports mmcv.ops at module level. Register an
    empty mmcv.ops package (pointing at the real folder) and load only the pure-PyTorch
    criss-cross attention from it; every other op raises if used."""
    spec = importlib.util.find_spec("mmcv")
    folder = Path(spec.origin).parent / "ops"
    pkg = types.ModuleType("mmcv.ops")
    pkg.__path__ = [str(folder)]

    def missing(name):
        def fail(*a, **k):
            raise RuntimeError(f"mmcv.ops.{name} needs compiled mmcv")
        return fail

    def getattr_(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return missing(name)

    pkg.__getattr__ = getattr_
    pkg.__file__ = str(folder / "__init__.py")
    sys.modules["mmcv.ops"] = pkg
    cc = importlib.import_module("mmcv.ops.cc_attention")
    pkg.CrissCrossAttention = cc.CrissCrossAttention
    return cc


SIZE = (64, 80)  # input H, W -> an 8 x 10 grid at output stride 8
SEED = 20261126
QUERY_CELLS = (0, 9, 43, 79)
CONFIGS = {"nonlocal": "nonlocal_net/nonlocal_r50-d8_4xb4-80k_ade20k-512x512.py",
           "ccnet": "ccnet/ccnet_r50-d8_4xb4-80k_ade20k-512x512.py",
           "danet": "danet/danet_r50-d8_4xb4-80k_ade20k-512x512.py",
           "dnl": "dnlnet/dnl_r50-d8_4xb4-80k_ade20k-512x512.py"}
PHOTO_SIZES = ((640, 480), (333, 517), (1000, 37), (2000, 1500), (512, 512))
METAFILES = {"nonlocal": "nonlocal_net", "ccnet": "ccnet", "danet": "danet", "dnl": "dnlnet"}


def main():
    cc = shim_mmcv_ops()
    import mmseg
    import torch.nn.functional as F
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    import mmseg.models.utils.self_attention_block as sab
    from mmcv.cnn.bricks import non_local
    from mmseg.models.decode_heads import dnl_head

    from helpers import randomize_segmentor
    from visattn.models.mmseg_r50d8 import SegmentorR50D8

    register_all_modules()
    torch.set_num_threads(1)
    configs = Path(mmseg.__file__).parent / ".mim" / "configs"
    out, meta = {}, {"keys": {}, "urls": {}, "size": SIZE, "seed": SEED, "cells": QUERY_CELLS}

    # spies on the softmax inside each attention: the matrices mmseg actually uses
    seen = []
    real_softmax = F.softmax

    class Spy(types.ModuleType):
        def __getattr__(self, name):
            return getattr(F, name)

        @staticmethod
        def softmax(x, *args, **kwargs):
            y = real_softmax(x, *args, **kwargs)
            seen.append(y.detach().clone())
            return y

    spy = Spy("F")
    cc.F = spy
    sab.F = spy
    real_eg = non_local._NonLocalNd.embedded_gaussian

    def eg(self, theta, phi):
        y = real_eg(self, theta, phi)
        seen.append(y.detach().clone())
        return y

    non_local._NonLocalNd.embedded_gaussian = eg
    real_dnl_eg = dnl_head.DisentangledNonLocal2d.embedded_gaussian

    def dnl_eg(self, theta, phi):  # DNL's own pairwise softmax (whitened, temperature)
        y = real_dnl_eg(self, theta, phi)
        seen.append(y.detach().clone())
        return y

    dnl_head.DisentangledNonLocal2d.embedded_gaussian = dnl_eg

    for head, cfg_path in CONFIGS.items():
        cfg = Config.fromfile(str(configs / cfg_path))
        model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
        ours = randomize_segmentor(SegmentorR50D8(head), SEED)
        state = ours.state_dict()
        result = model.load_state_dict(state, strict=False)
        assert not result.unexpected_keys, result.unexpected_keys
        assert all(k.startswith("auxiliary_head.") for k in result.missing_keys), result.missing_keys
        meta["keys"][head] = {k: list(v.shape) for k, v in model.state_dict().items()}
        x = torch.randn(1, 3, *SIZE, generator=torch.Generator().manual_seed(SEED))
        seen.clear()
        unary = []
        block = getattr(model.decode_head, "dnl_block", None)
        hook = block.conv_mask.register_forward_hook(
            lambda m, a, o: unary.append(o.detach().clone())) if block is not None else None
        with torch.no_grad():
            feats = model.extract_feat(x)
            logits = model.decode_head.forward(feats)
        if hook is not None:
            hook.remove()
            out[f"{head}/unary_logits"] = unary[0].reshape(-1).numpy()
            meta[f"{head}/block"] = {"temperature": block.temperature,
                                     "use_scale": block.use_scale, "mode": block.mode}
        if isinstance(logits, (tuple, list)):  # DAHead: (pam_cam, pam, cam)
            logits = logits[0]
        out[f"{head}/logits"] = logits.numpy()
        for n, attn in enumerate(seen):  # rows of each attention call, for a few queries
            a = attn.reshape(-1, attn.shape[-1]) if attn.dim() == 3 else attn.reshape(-1, attn.shape[-1])
            out[f"{head}/attention{n}"] = a[list(QUERY_CELLS)].numpy()
        meta_file = configs / METAFILES[head] / "metafile.yaml"
        name = Path(cfg_path).stem
        text = meta_file.read_text()
        block = text[text.index(f"Name: {name}"):]
        meta["urls"][head] = block[block.index("Weights: ") + 9:].split("\n")[0].strip()
        pipeline = cfg.test_pipeline
        meta[f"{head}/test_pipeline"] = [dict(p) for p in pipeline]
        meta[f"{head}/data_preprocessor"] = dict(cfg.model.data_preprocessor)
        print(head, "logits", tuple(logits.shape), "attention calls", len(seen))

    # the test pipeline's resize, on a few photo sizes: mmcv's own imrescale (cv2 bilinear)
    import hashlib
    import mmcv
    resized = {}
    for w, h in PHOTO_SIZES:
        img = np.random.default_rng(w * 31 + h).integers(0, 256, (h, w, 3), dtype=np.uint8)
        small = mmcv.imrescale(img, (2048, 512), interpolation="bilinear", backend="cv2")
        resized[f"{w}x{h}"] = [list(small.shape), hashlib.sha256(small.tobytes()).hexdigest()]
    meta["imrescale_2048x512"] = resized
    np.savez_compressed(ROOT / "tests" / "mmseg" / "reference.npz", **out)
    (ROOT / "tests" / "mmseg" / "reference.json").write_text(json.dumps(meta, indent=1, default=str))
    from mmseg.datasets import ADE20KDataset
    info = ADE20KDataset.METAINFO
    labels = ROOT / "assets" / "labels"
    (labels / "ade20k.txt").write_text("\n".join(info["classes"]) + "\n")
    (labels / "ade20k_palette.txt").write_text(
        "\n".join(" ".join(str(int(v)) for v in rgb) for rgb in info["palette"]) + "\n")
    print("wrote reference and ADE20K labels")


if __name__ == "__main__":
    main()
