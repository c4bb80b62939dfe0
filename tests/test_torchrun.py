"""Folder runs under torchrun (issue 24): two gloo processes on the CPU give one process's
bits (exact sums, excitation CSVs, ledger), no image is counted twice when the image count
does not divide by the processes, a run killed mid-way resumes with another process count
without redoing or recounting what its processes checkpointed, `analyze` splits photos the
same way; --autocast bf16 gates stay within the printed tolerance of float32.

torchrun gives each process one thread (OMP_NUM_THREADS=1); CPU kernels' arithmetic depends
on the thread count, so the one-process reference runs with one thread too."""
from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import visattn
from visattn import cli, folder_stats
from visattn.excitation import ExcitationStats
from visattn.records import ChannelWeights

from helpers import scene_folder

MODEL = "tiny_se"
ROOT = Path(__file__).resolve().parents[1]
RUN = ["--model", MODEL, "--device", "cpu", "--quiet", "--batch-size", "2"]
# Wraps capture.run_batch in the torchrun processes: logs each batch's size per rank and,
# with VISATTN_TEST_CRASH=rank:call, kills that process at that call (a hard crash).
SITECUSTOMIZE = '''
import os
if os.environ.get("RANK") is not None and os.environ.get("VISATTN_TEST_LOG"):
    import visattn.capture as capture
    real, calls = capture.run_batch, [0]
    def run_batch(model, x, **kw):
        calls[0] += 1
        crash = os.environ.get("VISATTN_TEST_CRASH", "")
        if crash == f"{os.environ['RANK']}:{calls[0]}":
            os._exit(3)
        with open(os.path.join(os.environ["VISATTN_TEST_LOG"], "calls." + os.environ["RANK"]), "a") as f:
            f.write(f"{x.shape[0]}\\n")
        return real(model, x, **kw)
    capture.run_batch = run_batch
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Eight scenes in class folders and one unreadable file: 9 files, 5 batches of 2."""
    return scene_folder(tmp_path_factory.mktemp("scenes"), range(2000, 2008))


@contextlib.contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def single(folder, tmp_path_factory) -> Path:
    """The one-process run everything is compared with."""
    out = tmp_path_factory.mktemp("single")
    with one_thread():
        assert cli.main(["stats", str(folder), "--out", str(out), "--labels", "folders", *RUN]) == 0
    return out


def torchrun(n: int, args: list, tmp: Path, crash: str = "") -> subprocess.CompletedProcess:
    hooks = tmp / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp / f"log{n}"
    log.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hooks), str(ROOT)]),
               VISATTN_TEST_LOG=str(log), VISATTN_TEST_CRASH=crash, GRADIO_ANALYTICS_ENABLED="False")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={n}", "-m", "visattn", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def forwarded(tmp: Path, n: int) -> int:
    """Images the processes of a torchrun run put through the network."""
    return sum(int(v) for f in (tmp / f"log{n}").glob("calls.*") for v in f.read_text().split())


def assert_same_run(a: Path, b: Path) -> None:
    for name in ("excitation.csv", "excitation_classes.csv", "images.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    sa, _ = ExcitationStats.load(a / "excitation_state.npz", [])
    sb, _ = ExcitationStats.load(b / "excitation_state.npz", [])
    assert sa.layout() == sb.layout() and sa.stages == sb.stages
    np.testing.assert_array_equal(sa.packed(sa.layout()), sb.packed(sb.layout()))  # exact sums
    assert not (b / "parts").exists()


def ledger(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "images.csv").read_text())))


def test_two_gloo_processes_equal_one(folder, single, tmp_path):
    out = tmp_path / "two"
    done = torchrun(2, ["stats", str(folder), "--out", str(out), "--labels", "folders", *RUN], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(single, out)
    rows = ledger(out)  # 9 files (5 batches: 3 on rank 0, 2 on rank 1), each once
    assert sorted(r["image"] for r in rows) == sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    assert forwarded(tmp_path, 2) == 8  # the unreadable file never reaches the network
    stats, _ = ExcitationStats.load(out / "excitation_state.npz", [])
    assert stats.images == 8
    assert all(sum(stats.sums[(k, c)].n for c in stats.classes(k)) == 8 for k in stats.blocks())


def test_a_killed_run_resumes_with_another_process_count(folder, single, tmp_path):
    out = tmp_path / "resumed"
    args = ["stats", str(folder), "--out", str(out), "--labels", "folders", "--checkpoint-s", "0", *RUN]
    killed = torchrun(2, args, tmp_path, crash="1:2")  # rank 1 dies at its second batch
    assert killed.returncode != 0
    parts = sorted((out / "parts").glob("state.*.npz"))
    assert parts, "the processes checkpointed nothing"
    kept = sum(ExcitationStats.load(p, [])[0].images for p in parts)
    assert kept >= 2  # rank 1's first batch at least
    resumed = torchrun(3, args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert forwarded(tmp_path, 3) == 8 - kept  # what the parts held is not redone
    assert_same_run(single, out)  # nor counted twice


def test_analyze_splits_the_photos(folder, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    with one_thread():
        assert cli.main(["analyze", str(folder), "--out", str(one), *RUN]) == 1  # broken.png
    done = torchrun(2, ["analyze", str(folder), "--out", str(two), *RUN], tmp_path)
    assert done.returncode != 0 and "1 failed" in done.stdout + done.stderr
    a = (one / "analyzed.csv").read_text().replace(str(one), "OUT")
    b = (two / "analyzed.csv").read_text().replace(str(two), "OUT")
    assert a == b and a.count("scene_") == 16  # image and folder of each photo, once
    for photo in one.glob("scene_*"):
        x, y = (visattn.load(d / photo.name / "arrays.npz") for d in (one, two))
        for ra, rb in zip(x.records, y.records):
            np.testing.assert_array_equal(ra.values, rb.values)
    assert not (two / "parts").exists()


def test_autocast_bf16_gates_within_the_printed_tolerance(folder, single, tmp_path, capsys):
    out = tmp_path / "bf16"
    assert cli.main(["stats", str(folder), "--out", str(out), "--labels", "folders",
                     "--autocast", "bf16", *RUN]) == 0
    said = re.search(r"autocast bf16: .* within ([0-9.e-]+) of float32 .*tolerance ([0-9.e-]+)",
                     capsys.readouterr().out)
    gap, tolerance = float(said[1]), float(said[2])
    assert 0 < gap <= tolerance == folder_stats.AUTOCAST["bf16"][1]
    # the same first batch (two readable photos), each alone, in float32 and under bf16
    first = sorted(p for p in folder.rglob("scene_*.png"))[:2]
    worst = 0.0
    for path in first:
        exact = visattn.analyze(path, MODEL, device="cpu")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = visattn.analyze(path, MODEL, device="cpu")
        for a, b in zip(exact.select(ChannelWeights), low.select(ChannelWeights)):
            worst = max(worst, float(np.abs(a.values - b.values).max()))
    assert worst > 0 and gap == pytest.approx(worst, rel=0.5)
    # and the statistics were gathered in bf16: their means move, within the tolerance
    a = ExcitationStats.load(single / "excitation_state.npz", [])[0]
    b = ExcitationStats.load(out / "excitation_state.npz", [])[0]
    moved = max(np.abs(a.sums[k].mean() - b.sums[k].mean()).max() for k in a.sums)
    assert 0 < moved <= tolerance


def test_autocast_beyond_its_tolerance_is_refused(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(folder_stats.AUTOCAST, "bf16", (torch.bfloat16, 1e-9))
    assert cli.main(["stats", str(folder), "--out", str(tmp_path), "--autocast", "bf16", *RUN]) == 2
    assert "run without --autocast" in capsys.readouterr().err
