"""VisAttn's plain-PyTorch I3D-NL R-50 (models/i3d_nl.py) against mmaction2 1.2.0 itself: the
key layout, the I3D head's raw logits and the rows of the pairwise softmax inside mmcv's
NonLocal3d, all from files that tests/mmaction/generate.py makes in an mmaction2 environment
(see its docstring). Both sides draw the weights by key name (helpers.randomize_by_key)."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from visattn import capture, video, zoo_video
from visattn.geometry import Geometry
from visattn.models.i3d_nl import NonLocal3d, adapt_state_dict, i3d_nl_r50
from visattn.records_video import SpaceTimeAffinity

from helpers import randomize_by_key

HERE = Path(__file__).parent / "mmaction"
META = json.loads((HERE / "reference.json").read_text())
REF = np.load(HERE / "reference.npz")


def _model() -> nn.Module:
    return randomize_by_key(i3d_nl_r50(), META["seed"], META["gains"])


def _clip() -> torch.Tensor:
    return torch.from_numpy(REF["input"]).float()


def _logits(model: nn.Module) -> np.ndarray:
    with torch.no_grad():
        return model(_clip()).numpy()


def _records(model: nn.Module) -> list[SpaceTimeAffinity]:
    """VisAttn's capture of the clip (what analyze_video runs on a prepared clip)."""
    h, w = REF["input"].shape[-2:]
    frame = Geometry((w, h), (w, h), (0, 0), (w, h))
    trace = capture.run_batch(model, _clip(), geometries=[frame])[0]
    return trace.select(SpaceTimeAffinity)


def _rows(rec: SpaceTimeAffinity) -> np.ndarray:
    return np.stack([rec.row(i).ravel() for i in META["blocks"][rec.layer]["cells"]])


@pytest.fixture(scope="module")
def built():
    torch.set_num_threads(1)  # the reference was made single-threaded
    model = _model()
    yield model, _logits(model), _records(model)
    torch.set_num_threads(2)


def test_state_dict_layout_is_mmaction2s(built):
    """The same names and shapes, nothing dropped: mmaction2's data preprocessor keeps its
    mean / std out of the state dict (a checkpoint that has them loses them in adapt)."""
    ours = {k: list(v.shape) for k, v in built[0].state_dict().items()}
    assert ours == META["keys"]
    checkpoint = {"meta": {}, "state_dict": {k: torch.zeros(s) for k, s in META["keys"].items()}
                  | {"data_preprocessor.mean": torch.zeros(3, 1, 1, 1)}}
    i3d_nl_r50().load_state_dict(adapt_state_dict(checkpoint), strict=True)


def test_cls_score_equals_mmaction2s(built):
    logits, ref = built[1], REF["cls_score"]
    assert logits.shape == ref.shape == (1, 400)
    np.testing.assert_allclose(logits, ref, atol=1e-4, rtol=0)
    assert np.ptp(ref) > 5.0  # far from constant: the comparison can see


def test_rows_equal_the_softmax_inside_mmcvs_nonlocal3d(built):
    recs = built[2]
    assert [r.layer for r in recs] == list(META["blocks"])
    for rec in recs:
        block = META["blocks"][rec.layer]
        assert rec.grid == tuple(block["grid"]) and rec.key_grid == tuple(block["key_grid"])
        assert rec.scale == 1.0 and not block["use_scale"]
        ref = REF[f"rows/{rec.layer}"]
        np.testing.assert_allclose(_rows(rec), ref, atol=1e-5, rtol=0, err_msg=rec.layer)
        assert ref.max() > 3.0 / ref.shape[1]  # peaked rows, not uniform
        assert ref.max(1).min() < 0.9  # nor one-hot: a wrong scale would show


def _without_subsampling(model: nn.Module) -> nn.Module:
    for block in model.modules():
        if isinstance(block, NonLocal3d):
            block.g, block.phi = block.g[0], block.phi[0]
    return model


def _without_pool2(model: nn.Module) -> nn.Module:
    model.backbone.pool2 = nn.Identity()
    return model


@pytest.mark.parametrize("break_it", [_without_subsampling, _without_pool2])
def test_a_broken_model_is_caught(break_it):
    torch.set_num_threads(1)
    model = break_it(_model())
    assert not np.allclose(_logits(model), REF["cls_score"], atol=1e-4, rtol=0)
    recs = _records(model)
    assert any(r.key_grid != tuple(META["blocks"][r.layer]["key_grid"]) for r in recs)


def test_a_wrong_scale_is_caught(built):
    """mmaction2's config says use_scale=False; a 1/sqrt(d) scale changes every row."""
    for rec in built[2]:
        scaled = dataclasses.replace(rec, scale=rec.queries.shape[2] ** -0.5)
        assert not np.allclose(_rows(scaled), REF[f"rows/{rec.layer}"], atol=1e-5), rec.layer


def test_card_is_mmaction2s_checkpoint_and_val_pipeline():
    card = zoo_video.cards()[0]
    assert card.name == zoo_video.I3D_NAME and card.weights.url == META["url"]
    assert META["url"].endswith(f"-{card.weights.digest}.pth")
    steps = {p["type"]: p for p in META["val_pipeline"]}
    sampling = video.Sampling(steps["SampleFrames"]["clip_len"],
                              steps["SampleFrames"]["frame_interval"])
    zoo_video.register_samplings()
    assert video.sampling_for(card.name) == sampling
    assert steps["Resize"]["scale"] == [-1, 256]  # short side 256, then the centre crop
    crop = steps["CenterCrop"]["crop_size"]
    assert card.preprocess.size == (crop, crop)
    assert card.preprocess.crop_pct == crop / 256
    dp = META["data_preprocessor"]
    np.testing.assert_allclose(np.array(card.preprocess.mean) * 255, dp["mean"], atol=1e-9)
    np.testing.assert_allclose(np.array(card.preprocess.std) * 255, dp["std"], atol=1e-9)
