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
    assert set(report) == {"model", "record", "gradcam_layer", "spearman", "top_iou", "top"}
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
