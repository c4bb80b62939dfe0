"""Issue 21, item 4: one statistics request cannot hold the queue. Files and total pixels
per request are capped (checked from the headers before anything is decoded, and said
in the page), and statistics run in a queue of their own, so a visitor's Analyse is never
behind another visitor's statistics."""
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from visattn.ui import tab_analyses

from page_requests import join

MODEL = "tiny_cbam"


def _photo(path, w, h, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 50 + 1, w // 50 + 1, 3), dtype=np.uint8)
    Image.fromarray(small).resize((w, h)).save(path, quality=85)
    return str(path)


def test_too_many_files_are_refused_before_any_analysis(tmp_path, monkeypatch):
    import gradio as gr
    calls = []
    monkeypatch.setattr(tab_analyses, "analyze", lambda *a, **k: calls.append(a))
    photo = _photo(tmp_path / "p.jpg", 64, 48)
    with pytest.raises(gr.Error, match=f"limit is {tab_analyses.MAX_STATS_FILES}") as info:
        tab_analyses.run_stats([photo] * 40, False, MODEL, True)
    assert len(str(info.value.message)) <= 200 and calls == []


def test_too_many_pixels_are_refused_from_the_headers(tmp_path, monkeypatch):
    import gradio as gr
    calls = []
    monkeypatch.setattr(tab_analyses, "analyze", lambda *a, **k: calls.append(a))
    big = tmp_path / "big.png"
    Image.new("1", (9000, 9000)).save(big)  # 81 MP in a small file
    with pytest.raises(gr.Error, match="megapixels together") as info:
        tab_analyses.run_stats([str(big)] * 3, False, MODEL, True)
    assert len(str(info.value.message)) <= 200 and calls == []


def test_the_caps_are_said_in_the_page(server_url):
    config = httpx.get(f"{server_url}/config", timeout=30).json()
    text = " ".join(str(c.get("props", {}).get("value")) for c in config["components"])
    assert tab_analyses.STATS_CAPS in text


def test_analyse_is_not_behind_another_visitors_statistics(server_url, tmp_path):
    """Visitor A gathers statistics over 30 photos of 4 MP; visitor B presses Analyse a
    moment later and gets the answer while A's statistics are still running."""
    config = httpx.get(f"{server_url}/config", timeout=30).json()
    go = {c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "st-go"}
    stats = next(d for d in config["dependencies"] if any(t[0] in go for t in d["targets"]))
    photo = _photo(tmp_path / "big.jpg", 2400, 1700, seed=1)
    up = httpx.post(f"{server_url}/gradio_api/upload",
                    files={"files": ("big.jpg", open(photo, "rb").read(), "image/jpeg")},
                    timeout=60).json()[0]
    files = [{"path": up, "orig_name": "big.jpg", "meta": {"_type": "gradio.FileData"}}] * 30
    done = {}

    def gather():
        body = {"data": [files, False, MODEL, True], "event_data": None,
                "fn_index": stats["id"], "trigger_id": None, "session_hash": "stats-a"}
        httpx.post(f"{server_url}/gradio_api/queue/join", json=body, timeout=60).raise_for_status()
        with httpx.stream("GET", f"{server_url}/gradio_api/queue/data?session_hash=stats-a",
                          timeout=300) as resp:
            for line in resp.iter_lines():
                if "process_completed" in line:
                    done["stats"] = time.perf_counter()
                    done["stats_ok"] = '"success":true' in line.replace(" ", "")
                    return

    worker = threading.Thread(target=gather)
    worker.start()
    time.sleep(1.0)  # A's statistics are under way
    small = tmp_path / "small.jpg"
    _photo(small, 120, 90, seed=2)
    from page_requests import data_url_photo
    out = join(server_url, "analyze", [data_url_photo(small.read_bytes(), "image/jpeg"), MODEL,
                                       True, 512, 0.5, "jet"], "analyse-b")
    analysed = time.perf_counter()
    worker.join(300)
    assert out["success"], out
    assert done.get("stats_ok"), done
    assert analysed < done["stats"], "Analyse waited for the statistics"
