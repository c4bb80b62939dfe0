"""`visattn cam`: the agreement between an attention map and Grad-CAM it writes, checked
against Grad-CAM computed by hand from the network, and its side-by-side picture."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import visattn
from visattn import cli, zoo


def _my_gradcam(model, x, layer: str) -> np.ndarray:
    """Grad-CAM by hand: the predicted class's gradient at `layer`, channel-averaged
    weights, ReLU, min-max to [0, 1], bilinear to the input, min-max again."""
    import cv2
    kept = {}
    block = model.get_submodule(layer)
    h1 = block.register_forward_hook(lambda m, a, o: kept.__setitem__("a", o))
    h2 = block.register_full_backward_hook(lambda m, gi, go: kept.__setitem__("g", go[0]))
    try:
        x = x.clone().requires_grad_(True)
        logits = model(x)
        logits[0, logits[0].argmax()].backward()
    finally:
        h1.remove()
        h2.remove()
    weights = kept["g"][0].mean((1, 2))
    cam = torch.relu((weights[:, None, None] * kept["a"][0]).sum(0)).detach().numpy()
    norm = lambda v: (v - v.min()) / (v.max() - v.min() + 1e-7)  # noqa: E731
    return norm(np.maximum(cv2.resize(norm(cam).astype(np.float32), (x.shape[3], x.shape[2])), 0))


def test_cam_command_writes_the_apps_agreement_and_picture(tmp_path):
    import cv2
    from scipy.stats import spearmanr

    from visattn.preprocess import prepare
    photo = Path(visattn.weights.ASSETS) / "examples" / "scene_solid_cross.png"
    key = "layer4.0.attn:spatial gate"
    assert cli.main(["cam", str(photo), "--model", "tiny_cbam", "--record", key, "--device",
                     "cpu", "--out", str(tmp_path)]) == 0
    where = tmp_path / "scene_solid_cross" / "layer4.0.attn_spatial_gate"
    report = json.loads((where / "agreement.json").read_text())
    assert set(report) == {"model", "record", "gradcam_layer", "spearman", "top_iou", "top",
                           "gradcam_empty"}
    assert report["gradcam_empty"] is False
    assert (report["model"], report["record"], report["gradcam_layer"]) == ("tiny_cbam", key, "layer4.0")
    trace = visattn.analyze(photo, "tiny_cbam", device="cpu")
    model = zoo.build(zoo.get("tiny_cbam"))
    x, _ = prepare(trace.image, trace.preprocess)
    cam = _my_gradcam(model, x, "layer4.0")
    attention = cv2.resize(trace[key].values.astype(np.float32), (cam.shape[1], cam.shape[0]))
    assert report["spearman"] == pytest.approx(spearmanr(attention.ravel(), cam.ravel())[0], abs=1e-3)
    k = round(0.2 * cam.size)
    top_a, top_c = set(np.argsort(-attention.ravel())[:k]), set(np.argsort(-cam.ravel())[:k])
    assert report["top_iou"] == pytest.approx(len(top_a & top_c) / len(top_a | top_c), abs=0.03)
    picture = np.asarray(Image.open(where / "attention_vs_gradcam.png"))
    assert picture.shape[0] >= 384 and picture.shape[1] > 2 * picture.shape[0]


def _silenced(name: str):
    """A copy of the network whose classifier is zero: every class score is 0 whatever the
    features, so Grad-CAM (gradient x activation, ReLU) is zero at every pixel."""
    import copy
    model = copy.deepcopy(visattn.open_network(name, device="cpu").module)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    return model


def test_an_all_zero_gradcam_is_said_not_scored():
    from visattn import gradcam, render
    photo = Path(visattn.weights.ASSETS) / "examples" / "scene_solid_cross.png"
    trace = visattn.analyze(photo, "tiny_cbam", device="cpu")
    found = gradcam.compare(trace, _silenced("tiny_cbam"), "layer4.0.attn:spatial gate")
    assert not found.cam.any()  # really empty, from the network itself
    assert found.empty and found.scores["spearman"] is None and found.scores["top_iou"] is None
    report = found.report("tiny_cbam")
    assert report["gradcam_empty"] is True and "is empty" in report["note"]
    assert "nothing to compare" in found.sentence and "layer4.0" in found.sentence
    picture = render.attention_beside_cam(trace, found.attention, found.cam)
    right = picture[:, picture.shape[1] // 2 + 8:]
    assert right.reshape(-1, 3).std(0).max() > 10  # the photo under the sentence, not a flat colour


def test_empty_gradcam_in_the_app_and_the_command_line(tmp_path, monkeypatch, capsys):
    from visattn import gradcam, ui
    monkeypatch.setattr(gradcam, "gradcam", lambda model, x, layer, target_class=None:
                        np.zeros(x.shape[2:], np.float32))
    photo = Path(visattn.weights.ASSETS) / "examples" / "scene_solid_cross.png"
    session, *_ = ui.run_analysis(str(photo), "tiny_cbam")
    _, text, report, _ = ui.attention_vs_gradcam(session, "layer3.0.attn:spatial gate", 20, 0.5, "jet")
    assert "**empty**" in text and "Rank correlation" not in text and "IoU" not in text
    assert json.loads(Path(report).read_text())["spearman"] is None
    assert cli.main(["cam", str(photo), "--model", "tiny_cbam", "--record", "layer3.0.attn:*",
                     "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "is empty" in out and "rank correlation" not in out
    saved = json.loads((tmp_path / "scene_solid_cross" / "layer3.0.attn_spatial_gate" /
                        "agreement.json").read_text())
    assert saved["gradcam_empty"] is True and saved["top_iou"] is None
