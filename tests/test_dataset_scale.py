"""Any device and dataset scale (issue 17): device= and --device, ZeroGPU wrapping, batched
statistics equal to one-at-a-time analyses, resuming an interrupted run, class labels
from folders, and `visattn cam`. Every expected figure is recomputed here from
visattn.analyze (one image at a time) or from the network itself."""
from __future__ import annotations

import csv
import io
import json
import sys
import types
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import visattn
from visattn import capture, cli, zoo
from visattn.device import DeviceError, on_zerogpu, resolve
from visattn.records import ChannelWeights
from visattn.scenes import CLASSES, make_scene

MODEL = "tiny_se"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Ten generated scenes in ImageFolder layout (subfolder = true class), one unreadable."""
    root = tmp_path_factory.mktemp("scenes")
    for seed in range(10):
        s = make_scene(1000 + seed)
        (root / CLASSES[s.label]).mkdir(exist_ok=True)
        Image.fromarray(s.image).save(root / CLASSES[s.label] / f"scene_{seed}.png")
    (root / CLASSES[0]).mkdir(exist_ok=True)
    (root / CLASSES[0] / "broken.png").write_bytes(b"not a png")
    return root


def _stats(folder: Path, out: Path, *extra: str) -> int:
    return cli.main(["stats", str(folder), "--model", MODEL, "--out", str(out), "--device",
                     "cpu", "--quiet", *extra])


def _read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _one_at_a_time(folder: Path, by_folder: bool) -> dict:
    """(block, class name) -> (n, mean, std) of the gates, each image analysed alone."""
    gates = defaultdict(list)
    for path in sorted(folder.rglob("scene_*.png")):
        trace = visattn.analyze(path, MODEL, device="cpu")
        cls = path.parent.name if by_folder else trace.prediction.top(1)[0][0]
        for rec in trace.select(ChannelWeights):
            gates[(rec.key, cls)].append(rec.values.astype(np.float64))
    return {k: (len(v), np.mean(v, 0), np.std(v, 0)) for k, v in gates.items()}


def _by_block_class(rows: list[dict]) -> dict:
    table = defaultdict(dict)
    for r in rows:
        table[(r["block"], r["class"])][int(r["channel"])] = (int(r["images"]), float(r["mean"]),
                                                             float(r["std"]))
    return table


@pytest.mark.parametrize("labels, batch, workers", [("predicted", "4", "0"), ("folders", "3", "2")])
def test_batched_statistics_equal_one_image_at_a_time(folder, tmp_path, labels, batch, workers):
    out = tmp_path / "out"
    assert _stats(folder, out, "--labels", labels, "--batch-size", batch, "--workers", workers) == 0
    got = _by_block_class(_read_csv(out / "excitation.csv"))
    want = _one_at_a_time(folder, labels == "folders")
    assert set(got) == set(want)
    for key, (n, mean, std) in want.items():
        row = got[key]
        assert [row[c][0] for c in sorted(row)] == [n] * len(mean)
        np.testing.assert_allclose([row[c][1] for c in sorted(row)], mean, atol=2e-5)
        np.testing.assert_allclose([row[c][2] for c in sorted(row)], std, atol=2e-5)
    ledger = _read_csv(out / "images.csv")
    assert sorted(r["image"] for r in ledger if not r["error"]) == sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("scene_*.png"))
    assert [r["image"] for r in ledger if r["error"]] == [f"{CLASSES[0]}/broken.png"]


def test_senet_figure_csv_holds_chosen_classes_and_all_per_stage(folder, tmp_path):
    out = tmp_path / "out"
    names = sorted({p.parent.name for p in folder.rglob("scene_*.png")})
    assert _stats(folder, out, "--labels", "folders", "--classes", names[0]) == 0
    rows = _read_csv(out / "excitation_classes.csv")
    want = _one_at_a_time(folder, by_folder=True)
    blocks = list(dict.fromkeys(r["block"] for r in rows))
    stages = [int(next(r["stage"] for r in rows if r["block"] == b)) for b in blocks]
    assert stages == sorted(set(stages))  # one block per stage: its last
    for block in blocks:
        shown = {r["class"] for r in rows if r["block"] == block}
        assert shown == {names[0], "all"}
        every = [(n, m) for (b, _), (n, m, _) in want.items() if b == block]
        overall = sum(n * m for n, m in every) / sum(n for n, _ in every)
        got = [float(r["mean"]) for r in rows if r["block"] == block and r["class"] == "all"]
        np.testing.assert_allclose(got, overall, atol=2e-5)
    assert Image.open(out / "excitation_classes.png").size[0] > 0


def test_resume_after_an_interrupted_run_gives_the_same_csv(folder, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    assert _stats(folder, whole, "--batch-size", "2") == 0
    cut = tmp_path / "cut"
    real, calls = capture.run_batch, []

    def crash_on_the_fourth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)
    monkeypatch.setattr(capture, "run_batch", crash_on_the_fourth)
    with pytest.raises(RuntimeError, match="power cut"):
        _stats(folder, cut, "--batch-size", "2", "--checkpoint-s", "0")
    monkeypatch.setattr(capture, "run_batch", real)
    done_before = [r["image"] for r in _read_csv(cut / "images.csv")]
    assert 0 < len(done_before) < 10
    resumed = []
    monkeypatch.setattr(capture, "run_batch", lambda m, x, **kw: resumed.append(len(x)) or real(m, x, **kw))
    assert _stats(folder, cut, "--batch-size", "2") == 0
    assert (cut / "excitation.csv").read_text() == (whole / "excitation.csv").read_text()
    assert sum(resumed) == 10 - sum(1 for r in done_before if r != f"{CLASSES[0]}/broken.png")
    images = [r["image"] for r in _read_csv(cut / "images.csv") if not r["error"]]
    assert sorted(images) == sorted(set(images))  # none counted twice


def test_resume_refuses_another_networks_run(folder, tmp_path):
    out = tmp_path / "out"
    assert _stats(folder, out, "--limit", "3") == 0
    assert cli.main(["stats", str(folder), "--model", "tiny_eca", "--out", str(out),
                     "--device", "cpu", "--quiet"]) == 2


def test_device_cpu_explicit_and_the_model_cache_keyed_by_device(tmp_path):
    photo = Path(visattn.weights.ASSETS) / "examples" / "scene_solid_cross.png"
    on_cpu = visattn.analyze(photo, MODEL, device="cpu")
    again = visattn.analyze(photo, MODEL, device=torch.device("cpu"))
    for a, b in zip(on_cpu.records, again.records):
        np.testing.assert_array_equal(a.values, b.values)
    assert zoo.load(MODEL, device="cpu") is zoo.load(MODEL, device=torch.device("cpu"))
    assert next(zoo.load(MODEL, device="cpu").parameters()).device.type == "cpu"
    with pytest.raises(DeviceError):
        resolve("warp-drive")
    if not torch.cuda.is_available():
        assert resolve(None) == torch.device("cpu")
        with pytest.raises(DeviceError, match="no CUDA"):
            resolve("cuda:1")
        assert cli.main(["analyze", str(photo), "--model", MODEL, "--device", "cuda",
                         "--out", str(tmp_path), "--quiet"]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_records():
    photo = Path(visattn.weights.ASSETS) / "examples" / "scene_solid_cross.png"
    a, b = (visattn.analyze(photo, MODEL, device=d) for d in ("cpu", "cuda"))
    for ra, rb in zip(a.records, b.records):
        np.testing.assert_allclose(ra.values, rb.values, atol=1e-4)


def test_records_leave_the_device_in_one_copy_per_device_and_dtype():
    from visattn.capture import _host_copies
    tensors = [torch.arange(6.0).reshape(2, 3), torch.ones(4, dtype=torch.float16),
               torch.arange(5.0)[1:4], torch.zeros(1, 2, 2, dtype=torch.float16)]
    for got, want in zip(_host_copies(tensors), tensors):
        assert got.dtype == want.dtype and got.shape == want.shape
        torch.testing.assert_close(got, want)


def test_zerogpu_wraps_the_forward_only_on_a_zerogpu_space(monkeypatch):
    wrapped = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda fn: wrapped.append(fn) or (lambda *a, **k: ("gpu", fn(*a, **k)))
    monkeypatch.setitem(sys.modules, "spaces", fake)
    f = lambda: 1  # noqa: E731
    zero = {"SPACE_ID": "me/app", "SPACES_ZERO_GPU": "true"}
    assert on_zerogpu(f, zero)() == ("gpu", 1) and wrapped == [f]
    assert on_zerogpu(f, {"SPACE_ID": "me/app"}) is f  # a Space without ZeroGPU
    assert on_zerogpu(f, {}) is f  # this machine
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    assert on_zerogpu(f, zero) is f


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


def test_analyze_over_a_folder_resumes_and_skips_what_is_done(folder, tmp_path, monkeypatch):
    from visattn import pipeline
    out = tmp_path / "out"
    args = ["analyze", str(folder), "--model", MODEL, "--out", str(out), "--device",
            "cpu", "--quiet", "--batch-size", "3", "--workers", "1"]
    photos = sorted(folder.rglob("scene_*.png"))
    assert cli.main(args) == 1  # broken.png is reported and skipped
    for p in photos:
        meta = json.loads((out / p.stem / "meta.json").read_text())
        alone = visattn.analyze(p, MODEL, device="cpu")
        assert meta["prediction"][0][0] == alone.prediction.top(1)[0][0]
    seen = []
    real = pipeline.analyze_batch
    monkeypatch.setattr(pipeline, "analyze_batch", lambda x, *a, **k: seen.append(len(x)) or real(x, *a, **k))
    assert cli.main(args) == 1  # only the broken file is tried again
    assert seen == []
    ledger = _read_csv(out / "analyzed.csv")
    assert sorted(r["image"] for r in ledger if not r["error"]) == sorted(str(p) for p in photos)
