"""Folders of photos at dataset scale: batched statistics (DataLoader workers, batches)
equal to one-at-a-time analyses, class labels from folders, SENet's per-class figure as
CSV, resuming an interrupted `stats` or `analyze` run, and refusing another network's
run. Every expected figure is recomputed here from visattn.analyze, one image at a time."""
from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visattn
from visattn import capture, cli
from visattn.records import ChannelWeights
from visattn.scenes import CLASSES

from helpers import scene_folder

MODEL = "tiny_se"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Ten generated scenes in ImageFolder layout (subfolder = true class), one unreadable."""
    return scene_folder(tmp_path_factory.mktemp("scenes"), range(1000, 1010))


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
