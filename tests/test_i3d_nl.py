"""I3D ResNet-50 with Non-local blocks (issue 23, part 3): mmaction2's layout and key names,
the card's verified download, and rows recomputed independently from hooked theta / phi.

Parity with mmaction2 itself needs mmaction2 (see docs/ARCHITECTURE.md, "I3D-NL parity");
these tests need no download and no mmaction2.
"""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import torch
import torch.nn as nn

import visattn
from visattn import video, weights, zoo, zoo_video
from visattn.models.i3d_nl import NonLocal3d, i3d_nl_r50
from visattn.records_video import SpaceTimeAffinity
from visattn.weights import UrlFile, WeightsError

from local_servers import send_file, serve

NL_LAYERS = ["backbone.layer2.1.non_local_block", "backbone.layer2.3.non_local_block",
             "backbone.layer3.1.non_local_block", "backbone.layer3.3.non_local_block",
             "backbone.layer3.5.non_local_block"]


@pytest.fixture(scope="module")
def card():
    zoo_video.ensure_cards()
    yield zoo.get(zoo_video.I3D_NAME)
    zoo_video.forget_cards()


def test_structure_matches_mmaction2s_published_model():
    model = i3d_nl_r50()
    # mmaction2's metafile: 35397840 parameters for the embedded-Gaussian I3D-NL R-50
    assert sum(p.numel() for p in model.parameters()) == 35_397_840
    blocks = [n for n, m in model.named_modules() if isinstance(m, NonLocal3d)]
    assert blocks == NL_LAYERS
    keys = model.state_dict().keys()
    nl = "backbone.layer2.1.non_local_block."
    for k in ("g.0.conv.weight", "theta.conv.weight", "phi.0.conv.bias", "conv_out.conv.weight",
              "conv_out.bn.running_var"):
        assert nl + k in keys
    assert {"backbone.conv1.conv.weight", "backbone.conv1.bn.weight", "cls_head.fc_cls.weight",
            "backbone.layer1.0.downsample.conv.weight", "backbone.layer4.2.conv3.bn.bias"} <= set(keys)
    block = model.get_submodule(NL_LAYERS[0])
    assert isinstance(block.phi[1], nn.MaxPool3d) and block.phi[1].kernel_size == (1, 2, 2)
    assert isinstance(block.g[1], nn.MaxPool3d) and not block.use_scale
    # inflated (3, 1, 1) first convs where mmaction2's inflate table says 1
    assert model.backbone.layer2[0].conv1.conv.kernel_size == (3, 1, 1)
    assert model.backbone.layer2[1].conv1.conv.kernel_size == (1, 1, 1)
    assert model.backbone.layer4[1].conv1.conv.kernel_size == (3, 1, 1)


def test_the_card(card):
    assert card.weights == UrlFile(zoo_video.I3D_URL, "afd8f562", "sha256")
    assert card.weights.url.startswith("https://download.openmmlab.com/mmaction/v1.0/")
    assert zoo_video.I3D_CONFIG in card.weights.url
    names = card.class_names
    assert len(names) == 400 and names[0] == "abseiling" and names[-1] == "zumba"
    assert card.preprocess.size == (224, 224) and round(224 / card.preprocess.crop_pct) == 256
    assert video.sampling_for(card.name) == video.Sampling(32, 2)


def _checkpoint(seed: int) -> tuple[dict, bytes]:
    """A random checkpoint in mmaction2's layout (state_dict + meta, fp16 to stay small)."""
    g = torch.Generator().manual_seed(seed)
    state = {k: (torch.randn(v.shape, generator=g) * 0.02).half() if v.is_floating_point() else v
             for k, v in i3d_nl_r50().state_dict().items()}
    state["data_preprocessor.mean"] = torch.zeros(3, 1, 1, 1)
    buf = io.BytesIO()
    torch.save({"meta": {"mmaction_version": "1.0"}, "state_dict": state}, buf)
    return state, buf.getvalue()


def test_download_is_verified_and_loads_strictly_with_mmaction2s_keys(card, monkeypatch):
    state, data = _checkpoint(1)
    with serve({"/i3d.pth": send_file(data)}) as srv:
        spec = UrlFile(srv.url + "/i3d.pth", hashlib.sha256(data).hexdigest()[:8])
        local = zoo.ModelCard("i3d_local", card.family, "classify",
                              zoo_video.i3d_source().__class__(
                                  card.source.library, card.source.arch, card.source.build,
                                  card.source.preprocess, lambda: spec, adapt=card.source.adapt),
                              card.paper, card.summary, card.licence, labels="kinetics400")
        model = zoo.build(local, pretrained=True)
    got = model.state_dict()
    assert torch.equal(got["backbone.layer3.5.non_local_block.phi.0.conv.weight"],
                       state["backbone.layer3.5.non_local_block.phi.0.conv.weight"].float())
    assert torch.equal(got["cls_head.fc_cls.bias"], state["cls_head.fc_cls.bias"].float())
    # the same bytes planted under the published URL do not carry its hash: refused
    path = weights.cache_dir() / "url" / card.weights.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    with pytest.raises(WeightsError, match="did not verify"):
        zoo.build(card, pretrained=True)
    assert not path.exists()


def test_rows_recomputed_from_hooked_theta_and_phi_on_random_weights(card):
    model = i3d_nl_r50()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # random weights that make rows far from uniform
        for name in NL_LAYERS:
            block = model.get_submodule(name)
            for conv in (block.theta.conv, block.phi[0].conv):
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
    hooked = {}
    for name in NL_LAYERS:  # the test's own hooks, on mmcv's attribute names
        block = model.get_submodule(name)
        for part in ("theta", "phi"):
            getattr(block, part).register_forward_hook(
                lambda m, a, out, key=(name, part): hooked.__setitem__(key, out[0].detach().clone()))
    frames = (np.random.default_rng(0).random((40, 120, 160, 3)) * 255).astype(np.uint8)
    trace = visattn.analyze_video(frames, model, sampling=video.Sampling(16, 2),
                                  preprocess={"size": (112, 112), "crop_pct": 112 / 128})
    recs = trace.select(SpaceTimeAffinity)
    assert [r.layer for r in recs] == NL_LAYERS
    assert trace.clip.indices.tolist() == list(range(4, 36, 2))  # mmaction2's centred clip
    for rec in recs:
        theta, phi = hooked[(rec.layer, "theta")], hooked[(rec.layer, "phi")]
        assert rec.grid == tuple(theta.shape[1:]) and rec.key_grid == tuple(phi.shape[1:])
        assert rec.key_grid == (rec.grid[0], rec.grid[1] // 2, rec.grid[2] // 2)  # pooled keys
        assert rec.scale == 1.0  # use_scale=False
        attn = torch.softmax(theta.flatten(1).T.double() @ phi.flatten(1).double(), dim=-1)
        cells = np.random.default_rng(1).choice(attn.shape[0], 12, replace=False)
        for i in cells:
            row = rec.row(int(i))
            assert row.shape == rec.key_grid
            np.testing.assert_allclose(row.ravel(), attn[i].numpy(), rtol=0,
                                       atol=1e-5 * float(attn[i].max()))
        assert max(rec.row(int(i)).max() for i in cells) > 2 / attn.shape[1]  # not uniform
    assert {r.grid for r in recs} == {(2, 14, 14), (2, 7, 7)}
    assert trace.prediction is not None and len(trace.prediction.probs) == 400
