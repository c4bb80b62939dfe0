"""Excitation statistics, attention vs Grad-CAM, and switching attention off."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from pytorchcv.model_provider import get_model as pcv_model

import visattn
from visattn import metrics, cli, scenes, ui, zoo
from visattn.ablation import attention_off, stage_ablation
from visattn.excitation import ExcitationStats, collect
from visattn.gradcam import agreement, gradcam

from helpers import hook_count, liven


# ----- excitation statistics ---------------------------------------------------------------

def test_statistics_equal_a_direct_computation():
    images, _, _ = scenes.make_batch(11, 40)
    traces = [visattn.analyze(img, "tiny_se") for img in images]
    stats = collect(iter(traces), zoo.get("tiny_se").class_names)
    predicted = np.array([int(np.argmax(t.prediction.probs)) for t in traces])
    for key in stats.blocks():
        gates = np.stack([t[key].values for t in traces]).astype(np.float64)
        for c in np.unique(predicted):
            mean, std = stats.mean_std(key, int(c))
            np.testing.assert_allclose(mean, gates[predicted == c].mean(0), atol=1e-9)
            np.testing.assert_allclose(std, gates[predicted == c].std(0), atol=1e-6)
        assert stats.divergence(key) == pytest.approx(
            metrics.class_separation(gates, predicted), rel=1e-6)
    rows = stats.to_csv().splitlines()
    assert rows[0] == "block,stage,class,images,channel,mean,std"
    expected_rows = sum(len(traces[0][k].values) * len(stats.classes(k)) for k in stats.blocks())
    assert len(rows) - 1 == expected_rows  # one row per block, class and channel


def _rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024


def test_statistics_stream_500_images_in_bounded_memory():
    stats = ExcitationStats(labels=list(zoo.get("tiny_se").class_names))

    def stream(n):
        for i in range(n):
            yield visattn.analyze(scenes.make_scene(7_000_000 + i).image, "tiny_se")

    for trace in stream(50):
        stats.add(trace)
    start, size_50 = _rss_mb(), len(stats.sums)
    for trace in stream(450):
        stats.add(trace)
    assert stats.images == 500
    assert len(stats.sums) <= len(stats.blocks()) * 6 and len(stats.sums) >= size_50
    assert _rss_mb() - start < 60  # sums only: nothing per image is kept


# ----- attention vs Grad-CAM --------------------------------------------------------------

def test_agreement_is_one_for_identical_maps_and_drops_when_shifted():
    rng = np.random.default_rng(0)
    a = F.avg_pool2d(torch.from_numpy(rng.random((1, 1, 40, 40))), 5, 1, 2)[0, 0].numpy()
    same = agreement(a, a.copy())
    assert same["spearman"] == pytest.approx(1.0) and same["top_iou"] == 1.0
    shifted = agreement(a, np.roll(a, 12, axis=1))
    assert shifted["spearman"] < 0.5 and shifted["top_iou"] < 0.5
    assert agreement(a, -a)["spearman"] == pytest.approx(-1.0)


def test_gradcam_equals_an_independent_computation():
    """Grad-CAM written out: weights = mean gradient of the class score per channel of the
    layer's output, map = ReLU(weighted sum), upsampled, min-max scaled."""
    torch.manual_seed(0)
    model = zoo.build(zoo.get("tiny_cbam"), pretrained=True)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(1, 3, 64, 64)).astype(np.float32))
    ours = gradcam(model, x, "layer3.0")
    saved = {}
    layer = model.get_submodule("layer3.0")
    h = layer.register_forward_hook(lambda m, a, o: saved.__setitem__("act", o))
    out = model(x)
    h.remove()
    cls = int(out.argmax())
    grad, = torch.autograd.grad(out[0, cls], saved["act"])
    cam = F.relu((grad.mean((2, 3), keepdim=True) * saved["act"]).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(64, 64), mode="bilinear", align_corners=False)[0, 0].detach().numpy()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    assert ours.shape == (64, 64) and 0 <= ours.min() and ours.max() <= 1
    assert np.corrcoef(ours.ravel(), cam.ravel())[0, 1] > 0.99


def test_attention_vs_gradcam_in_the_app(tmp_path):
    session, *_ = ui.run_analysis(str(ui.EXAMPLES[-1]), "tiny_cbam")
    image, text, report, session = ui.attention_vs_gradcam(session, "layer3.0.attn:spatial gate",
                                                           20, 0.5, "jet")
    scores = json.loads(Path(report).read_text())
    assert scores["gradcam_layer"] == "layer3.0" and -1 <= scores["spearman"] <= 1
    assert f"{scores['spearman']:.2f}" in text and image.ndim == 3
    from visattn.ui.tab_analyses import gradcam_view  # restyled without running Grad-CAM again
    assert (gradcam_view(session, 0.9, "viridis") != image).any()
    session, *_ = ui.run_analysis(str(ui.EXAMPLES[-1]), "tiny_nl")
    image, text, report, _ = ui.attention_vs_gradcam(session, "nl2:affinity", 20, 0.5, "jet")
    assert "(mean row)" in text and json.loads(Path(report).read_text())["gradcam_layer"] == "nl2"


# ----- switching attention off ------------------------------------------------------------

def _replace(model, cls_name, make):
    """Reference: the same network with the chosen attention modules replaced."""
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            if type(child).__name__ == cls_name:
                setattr(m, child_name, make(child))
    return model


@pytest.mark.parametrize("build, cls_name, make, size", [
    (lambda: timm.create_model("seresnet50"), "SEModule", lambda m: nn.Identity(), 96),
    (lambda: pcv_model("bam_resnet50", pretrained=False), "BamBlock", lambda m: nn.Identity(), 224),
    (lambda: timm.create_model("resnet26", block_args=dict(attn_layer="nl")), "NonLocalAttn",
     lambda m: nn.Identity(), 96),
])
def test_neutral_attention_equals_the_network_without_it(build, cls_name, make, size):
    model = liven(build(), seed=2, size=size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before = model(x)
        with attention_off(model) as n:
            off = model(x)
        after = model(x)
        reference = _replace(copy.deepcopy(model), cls_name, make)(x)
    assert len(n) > 0 and hook_count(model) == 0
    assert torch.equal(before, after)  # bit-identical: the shared model is unchanged
    np.testing.assert_allclose(off.numpy(), reference.numpy(), atol=1e-4, rtol=1e-4)
    assert not np.allclose(off.numpy(), before.numpy(), atol=1e-3)  # it did switch something off


def test_stage_ablation_table_and_weights_untouched():
    card = zoo.get("tiny_cbam")
    model = zoo.load("tiny_cbam")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rgb = scenes.make_scene(123).image
    rows = stage_ablation(model, rgb, card.preprocess, card.class_names)
    assert [r.stage for r in rows] == [0, 1, 2, 3, 4, None]
    assert rows[0].switched == 0 and rows[-1].switched == sum(r.switched for r in rows[1:-1])
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert hook_count(model) == 0


def test_command_line_stats_and_ablate(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    from PIL import Image
    for i in range(8):
        Image.fromarray(scenes.make_scene(900 + i).image).save(folder / f"s{i}.png")
    (folder / "broken.png").write_bytes(b"nope")
    assert cli.main(["stats", str(folder), "--model", "tiny_se", "--out", str(tmp_path / "o"),
                     "--quiet"]) == 0
    out = capsys.readouterr()
    assert "8 images (1 skipped)" in out.out and "skipped" in out.err
    assert (tmp_path / "o" / "excitation.csv").exists() and (tmp_path / "o" / "divergence.png").exists()
    assert cli.main(["ablate", str(folder / "s0.png"), "--model", "tiny_cbam"]) == 0
    table = capsys.readouterr().out
    assert "none (baseline)" in table and "every stage" in table and "stage 4" in table
