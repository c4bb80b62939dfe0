"""Reliability: a corpus of bad and awkward files through the Python API, the command line and
the HTTP API (the server keeps serving); concurrent clients without cross-talk; a soak run
that must not grow memory or leave hooks; uploads refused by size before any decoding."""
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visattn
from visattn import zoo

from corpus import corpus
from helpers import hook_count
from page_requests import data_url_photo, join, png_bytes

CORPUS = corpus()
MODEL = "tiny_cbam"


def expect(outcome: str, error) -> None:
    if outcome == "ok":
        assert error is None, error
    else:
        assert error is not None and outcome in str(error), error


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for name, (data, _) in CORPUS.items():
        (folder / name).write_bytes(data)
    return folder


def test_the_corpus_is_broad():
    assert len(CORPUS) >= 25
    assert sum(outcome == "ok" for _, outcome in CORPUS.values()) >= 10
    assert sum(outcome != "ok" for _, outcome in CORPUS.values()) >= 10


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_python_api(name, corpus_dir):
    outcome = CORPUS[name][1]
    error = None
    try:
        trace = visattn.analyze(corpus_dir / name, MODEL)
        assert trace.prediction is not None and len(trace) == 10
    except visattn.ImageError as exc:
        error = exc
    expect(outcome, error)


def test_nan_arrays_are_refused_through_the_api():
    with pytest.raises(visattn.ImageError, match="NaN"):
        visattn.analyze(np.full((20, 20, 3), np.nan, np.float32), MODEL)


def test_command_line_reports_each_bad_file_and_processes_the_rest(corpus_dir, tmp_path):
    files = [str(corpus_dir / name) for name in sorted(CORPUS)]
    done = subprocess.run([sys.executable, "-m", "visattn", "analyze", *files, "--model", MODEL,
                           "--out", str(tmp_path / "out"), "--quiet"],
                          capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1])
    assert done.returncode == 1  # some failed
    for name, (_, outcome) in CORPUS.items():
        path = str(corpus_dir / name)
        if outcome == "ok":
            assert f"ok {path} -> " in done.stdout, name
            assert (tmp_path / "out" / Path(name).stem / "meta.json").exists(), name
        else:
            line = next(line for line in done.stderr.splitlines() if line.startswith(f"FAILED {path}:"))
            assert outcome in line, line
    n_ok = sum(outcome == "ok" for _, outcome in CORPUS.values())
    assert f"{n_ok} of {len(CORPUS)} images analysed" in done.stdout


@pytest.fixture
def client(server_url, tmp_path):
    from gradio_client import Client
    return Client(server_url, verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path / "downloads"))


def test_http_api_answers_every_file_and_keeps_serving(client, corpus_dir):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    for name, (_, outcome) in sorted(CORPUS.items()):
        error = None
        try:
            _, summary, _, _ = client.predict(handle_file(str(corpus_dir / name)), MODEL, True,
                                              api_name="/analyze")
            assert MODEL in summary
        except AppError as exc:
            error = exc
        expect(outcome, error)
    _, summary, _, _ = client.predict(handle_file(str(corpus_dir / "one_pixel.png")), MODEL, True,
                                      api_name="/analyze")
    assert "1×1" in summary


def test_oversized_uploads_are_refused_before_decoding(server_url, tmp_path):
    import httpx
    from visattn.ui import MAX_UPLOAD
    limit = int(re.match(r"(\d+)mb", MAX_UPLOAD).group(1)) * 1024 * 1024
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (limit + 1024))
    resp = httpx.post(f"{server_url}/gradio_api/upload",
                      files={"files": ("huge.png", big.read_bytes(), "image/png")}, timeout=60)
    assert resp.status_code == 413, resp.text[:200]
    small = httpx.post(f"{server_url}/gradio_api/upload",
                       files={"files": ("ok.png", CORPUS["one_pixel.png"][0], "image/png")}, timeout=60)
    assert small.status_code == 200


def test_eight_concurrent_clients_get_their_own_answers(server_url, tmp_path):
    from gradio_client import Client, handle_file
    results, errors = {}, []

    def work(k: int):
        try:
            c = Client(server_url, verbose=False, analytics_enabled=False,
                       download_files=str(tmp_path / f"dl{k}"))
            for j in range(10):
                w, h = 60 + 8 * k + j, 50 + k  # a distinct size per image
                path = tmp_path / f"c{k}_{j}.png"
                rng = np.random.default_rng(100 * k + j)
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
                _, summary, _, _ = c.predict(handle_file(str(path)), "tiny_nl", True,
                                             api_name="/analyze")
                x, y = w // 3, h // 2
                _, numbers = c.predict("nl2:affinity", "", x, y, 0.5, "jet", api_name="/affinity")
                results[(k, j)] = (w, h, x, y, summary, numbers)
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors[:3]
    assert len(results) == 80
    for (k, j), (w, h, x, y, summary, numbers) in results.items():
        assert f"{w}×{h}" in summary  # the analysis is of this client's image
        trace = visattn.analyze(tmp_path / f"c{k}_{j}.png", "tiny_nl")
        cell = trace.geometry.to_grid(x, y, (16, 16))
        assert (numbers["x"], numbers["y"], numbers["cell"]) == (x, y, cell)
        np.testing.assert_allclose(numbers["row"], trace["nl2:affinity"].row(cell), atol=1e-5)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_soak_200_analyses_keep_memory_flat_and_leave_no_hooks():
    model = zoo.load(MODEL)
    rng = np.random.default_rng(9)
    photos = [rng.integers(0, 256, (rng.integers(40, 300), rng.integers(40, 300), 3), dtype=np.uint8)
              for _ in range(20)]
    for img in photos[:5]:  # warm up allocator and caches
        visattn.analyze(img, MODEL)
    start = _rss_mb()
    for i in range(200):
        trace = visattn.analyze(photos[i % 20], MODEL)
        del trace
    grown = _rss_mb() - start
    print(f"\nRSS grew {grown:.1f} MB over 200 analyses")
    assert grown <= 150
    assert hook_count(model) == 0


# ----- data: URLs through the browser's own request path (queue join) ----------------------

@pytest.mark.parametrize("case", ["text", "bomb", "over-size"])
def test_data_urls_through_the_queue_get_the_loaders_sentences(server_url, case):
    import time
    bomb = png_bytes(Image.new("1", (12000, 12000)))  # 144 MP in ~150 kB
    data, kind, words = {
        "text": (b"Dear reader, this is a letter.\n" * 40, "text/plain", "text or HTML"),
        "bomb": (bomb, "image/png", "144.0 megapixels, above the limit of 40 MP"),
        # over the 25 MB photo cap, under the request cap (larger bodies: 413 unread,
        # tests/test_refused_uploads.py)
        "over-size": (b"\x89PNG\r\n\x1a\n" + bytes(25 * 2**20 + 2**16), "image/png",
                      "above the limit of 25 MB"),
    }[case]
    start = time.perf_counter()
    out = join(server_url, "analyze", [data_url_photo(data, kind), MODEL, True, 512, 0.5, "jet"],
               f"du-{case}")
    took = time.perf_counter() - start
    assert out["success"] is False
    assert out["output"]["error"] and words in out["output"]["error"], out["output"]
    if case == "bomb":
        assert took < 2.0, took  # refused from the header, not decoded
    ok = join(server_url, "analyze", [data_url_photo(CORPUS["tiny_2x2.jpg"][0], "image/jpeg"),
                                       MODEL, True, 512, 0.5, "jet"], f"du-ok-{case}")
    assert ok["success"] and "2×2" in ok["output"]["data"][2]  # the server keeps serving


def test_session_memory_benchmark_small_version():
    """bench/session_memory.py --quick: 8 visitors with 12 MP photos through the page's own
    requests; per session and after the time-to-live, asserted loosely."""
    import json
    done = subprocess.run([sys.executable, "bench/session_memory.py", "--quick", "--json"],
                          capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print("\n", result)
    assert result["states_alive"] == result["sessions"] and result["states_left"] == 0
    assert result["closed"] >= result["sessions"]  # the tabs' heartbeats ended
    assert result["closed_with_app_ttl"] == result["closed"]  # not Gradio's hour
    assert result["per_session_mb"] <= 6.0  # target 3 MB; full photos kept were ~35 MB
    assert result["back_within_mb"] <= 100
