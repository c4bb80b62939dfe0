"""Bounded sessions: a display-size photo per session with the views unchanged, temp files
swept, a sentence for a visitor whose session was dropped, closed sessions freed within
the app's time-to-live; /affinity arguments checked; errors worded for the audience."""
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visattn import render, visitors, ui, weights, zoo
from visattn.records import Pairwise
from visattn.weights import WeightsError

from helpers import random_photo


@pytest.fixture(scope="module")
def big_analysis(tmp_path_factory):
    """tiny_nl on a 3000 x 2000 photo: the full trace and the session's copy."""
    path = tmp_path_factory.mktemp("photo") / "big.png"
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(small).resize((3000, 2000), Image.BILINEAR).save(path)
    import visattn
    full = visattn.analyze(path, "tiny_nl")
    session, *_ = ui.run_analysis(str(path), "tiny_nl")
    return full, session


def test_a_session_keeps_a_display_size_photo(big_analysis):
    full, session = big_analysis
    kept = session.trace
    assert max(kept.image.shape[:2]) == visitors.DISPLAY_MAX
    assert kept.image.shape[:2] == (683, 1024)  # 2000 x 3000 scaled, ratio kept
    assert kept.geometry == full.geometry  # clicks still speak original pixels
    assert kept.image.nbytes * 8 < full.image.nbytes  # (3000 / 1024)^2 = 8.6 times smaller


def test_views_from_the_copy_match_views_from_the_full_photo(big_analysis):
    full, session = big_analysis
    layer = "nl2:affinity"
    cell = full.geometry.to_grid(2100, 700, full[layer].grid)
    a = render.affinity_view(full, full[layer], cell)
    b = render.affinity_view(session.trace, session.trace[layer], cell)
    assert a.shape == b.shape
    magenta = lambda img: np.argwhere((img == render.MARKER).all(-1)).mean(0)  # noqa: E731
    np.testing.assert_allclose(magenta(a), magenta(b), atol=0.5)  # the query box, same place
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2  # same picture up to resampling


def test_old_temp_folders_are_swept(tmp_path):
    old, new = tmp_path / "visattn-export-old", tmp_path / "visattn-stats-new"
    other = tmp_path / "someone-else"
    for d in (old, new, other):
        d.mkdir()
        (d / "f").write_text("x")
    past = time.time() - 3600
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    assert visitors.sweep(older_than_s=60, root=tmp_path) == 1
    assert not old.exists() and new.exists() and other.exists()


def test_export_files_go_to_swept_folders(big_analysis):
    _, session = big_analysis
    path = ui.export(session, "jet")
    assert os.path.basename(os.path.dirname(path)).startswith(visitors.TEMP_PREFIX + "export-")


def test_a_dropped_session_hears_why(monkeypatch, tmp_path):
    import gradio as gr
    from visattn.ui import common
    monkeypatch.setattr(common, "session_id", lambda: "visitor-1")
    monkeypatch.setattr(visitors, "VISITORS", visitors.Visitors(path=tmp_path / "visitors.txt"))
    with pytest.raises(gr.Error, match="Analyse a photo first"):
        ui.need(None)
    visitors.VISITORS.analysed("visitor-1")
    with pytest.raises(gr.Error) as err:
        ui.need(None)
    assert "no longer kept" in str(err.value) and str(visitors.MAX_SESSIONS) in str(err.value)


def test_visitors_are_remembered_in_bounded_number():
    v = visitors.Visitors(size=3)
    for k in range(5):
        v.analysed(f"s{k}")
    assert [v.had_analysis(f"s{k}") for k in range(5)] == [False, False, True, True, True]


def test_a_closed_session_lives_only_the_apps_time_to_live(monkeypatch):
    from gradio.context import LocalContext

    class State:
        STATE_TTL_WHEN_CLOSED = 3600

    class Holder:
        session_data = {"abc": State()}

    class Blocks:
        state_holder = Holder()

    class Request:
        session_hash = "abc"

    token = LocalContext.blocks.set(Blocks())
    try:
        ui.session_closed(Request())
    finally:
        LocalContext.blocks.reset(token)
    assert Holder.session_data["abc"].STATE_TTL_WHEN_CLOSED == visitors.TTL_S


APP = """import os, sys, time
from visattn import ui
demo = ui.build()
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), prevent_thread_lock=True,
            quiet=True, **ui.LAUNCH_OPTIONS)
print(demo.local_url, flush=True)
sys.stdin.read()  # until the test closes it
"""


def test_the_app_as_launched_caps_sessions_and_uploads(tmp_path):
    """The app launched the way app.py launches it (ui.LAUNCH_OPTIONS), in a process of its
    own that keeps VISATTN_MAX_SESSIONS=3: a fourth visitor's analysis drops the first
    one's; an upload just over 25 MB is refused with HTTP 413, one just under is taken."""
    import subprocess
    import sys

    import httpx
    from local_servers import closed_port
    from page_requests import data_url_photo, join, png_bytes
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "VISATTN_MAX_SESSIONS": "3", "GRADIO_TEMP_DIR": str(tmp_path),
           "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-c", APP, str(closed_port())], cwd=tmp_path, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip().rstrip("/")
        assert url.startswith("http://127.0.0.1:"), url
        photo = data_url_photo(png_bytes(Image.new("RGB", (40, 30), (9, 99, 199))))
        for k in range(4):
            out = join(url, "analyze", [photo, "tiny_nl", True, 512, 0.5, "jet"], f"visitor-{k}")
            assert out["success"], out
        args = [None, "", "", 5, 5, 0.5, "jet", False, 0]  # frame last (a clip's; 0 for a photo)
        assert join(url, "affinity", args, "visitor-1")["success"]  # three are kept
        first = join(url, "affinity", args, "visitor-0")
        assert first["success"] is False and "no longer kept" in first["output"]["error"]
        mb = 2 ** 20
        over = httpx.post(f"{url}/gradio_api/upload", timeout=60, files={
            "files": ("big.png", b"\x89PNG\r\n\x1a\n" + bytes(25 * mb + 64 * 1024), "image/png")})
        under = httpx.post(f"{url}/gradio_api/upload", timeout=60, files={
            "files": ("ok.png", b"\x89PNG\r\n\x1a\n" + bytes(25 * mb - 64 * 1024), "image/png")})
        assert (over.status_code, under.status_code) == (413, 200), over.text[:200]
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(30)


# ----- /affinity arguments ------------------------------------------------------------------

@pytest.fixture(scope="module")
def bot_session(tmp_path_factory):
    path = tmp_path_factory.mktemp("bot") / "p.png"
    Image.fromarray(random_photo(180, 240, 3)).save(path)
    session, *_ = ui.run_analysis(str(path), "botnet26t_256", pretrained=False)
    return session


@pytest.mark.parametrize("head, words", [
    ("head -1", "does not exist"), ("head 99", "does not exist"), ("head x", "does not exist"),
    ("head 1.5", "does not exist"), ("2", "does not exist")])
def test_affinity_refuses_heads_that_do_not_exist(bot_session, head, words):
    import gradio as gr
    layer = [r.key for r in bot_session.trace if isinstance(r, Pairwise)][0]
    with pytest.raises(gr.Error, match=words) as err:
        ui.affinity_api(bot_session, layer, head, 10, 10)
    assert "head N with N from 0 to 3" in str(err.value).replace("'", "")


def test_affinity_accepts_every_real_head_and_the_mean(bot_session):
    layer = [r.key for r in bot_session.trace if isinstance(r, Pairwise)][0]
    rec = bot_session.trace[layer]
    for head, index in [("", None), ("mean of heads", None), ("head 0", 0), ("head 3", 3)]:
        _, numbers, _ = ui.affinity_api(bot_session, layer, head, 10, 10)
        np.testing.assert_allclose(numbers["row"], rec.row(numbers["cell"], index), atol=1e-6)
        assert numbers["head"] == index


def test_affinity_never_echoes_long_input(bot_session):
    import gradio as gr
    long_name = "layer" + "x" * 100_000
    with pytest.raises(gr.Error) as err:
        ui.affinity_api(bot_session, long_name, "", 10, 10)
    message = str(err.value)
    assert len(message) < 400 and "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" not in message
    assert "layer is one of" in message
    with pytest.raises(gr.Error) as err:
        ui.affinity_api(bot_session, "", "head " + "9" * 100_000, 10, 10)
    assert len(str(err.value)) < 400


@pytest.mark.parametrize("x, y", [(-1, 5), (240, 5), (5, 180), (float("nan"), 5), (5, float("inf"))])
def test_affinity_refuses_pixels_outside_the_photo(bot_session, x, y):
    import gradio as gr
    with pytest.raises(gr.Error, match=r"outside the 240×180 photo|finite"):
        ui.affinity_api(bot_session, "", "", x, y)


# ----- errors for the audience ----------------------------------------------------------------

def test_weights_errors_on_a_space_carry_no_paths_or_commands(monkeypatch):
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        weights.fetch(zoo.get("cbam_resnet50").weights, who="cbam_resnet50")
    exc = err.value
    local = ui.weights_message(exc)
    assert "python -m visattn download cbam_resnet50" in local and str(weights.cache_dir()) in local
    monkeypatch.setenv("SPACE_ID", "someone/visattn")
    public = ui.weights_message(exc)
    assert "python -m" not in public and str(weights.cache_dir()) not in public
    assert "/tmp" not in public and "untick 'Pretrained weights'" in public
    assert "ready" in public  # what the visitor can do instead


def test_the_oldest_session_is_dropped_at_the_cap_and_its_visitor_hears_why():
    """A server keeping 2 sessions; three visitors analyse (photos sent as data: URLs, which
    Gradio would otherwise keep in each session's page config); the first one's next
    request (the /affinity API) is answered with why its analysis is gone."""
    from local_servers import closed_port as free_port  # a port nothing listens on yet
    from page_requests import data_url_photo, join, png_bytes
    demo = ui.build()
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                quiet=True, **{**ui.LAUNCH_OPTIONS, "state_session_capacity": 2})
    url = demo.local_url.rstrip("/")
    photo = data_url_photo(png_bytes(Image.new("RGB", (40, 30), (9, 99, 199))))
    try:
        for k in range(3):
            out = join(url, "analyze", [photo, "tiny_nl", True, 512, 0.5, "jet"], f"cap-visitor-{k}")
            assert out["success"], out
        last = join(url, "affinity", [None, "", "", 5, 5, 0.5, "jet", False, 0], "cap-visitor-2")
        assert last["success"], last  # the newest session is kept
        page_config = demo.state_holder.session_data["cap-visitor-2"].config_values
        assert "data:image" not in str(page_config)  # the photo's text is not kept as well
        first = join(url, "affinity", [None, "", "", 5, 5, 0.5, "jet", False, 0], "cap-visitor-0")
    finally:
        demo.close()
    assert first["success"] is False
    assert "no longer kept on the server" in first["output"]["error"]


def test_unexpected_errors_on_a_space_do_not_show_their_text(monkeypatch):
    import gradio as gr

    @ui.readable
    def broken():
        raise RuntimeError("/srv/secret/path/model.bin went missing")
    with pytest.raises(gr.Error, match="/srv/secret"):
        broken()
    monkeypatch.setenv("SYSTEM", "spaces")
    with pytest.raises(gr.Error) as err:
        broken()
    assert "/srv/secret" not in str(err.value) and "RuntimeError" in str(err.value)


def test_a_freed_session_sweeps_served_download_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(visitors.tempfile, "gettempdir", lambda: str(tmp_path))
    served = tmp_path / "visattn-gradcam-x"
    served.mkdir()
    past = time.time() - 2 * visitors.SERVED_GRACE_S
    os.utime(served, (past, past))
    visitors.session_ended(object())
    assert not served.exists()
