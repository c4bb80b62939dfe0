"""Issue 21, item 10: after a server restart, a visitor whose analysis was on the old server
hears that it is no longer kept (not "analyse a photo first"): the ids of visitors who had
an analysis are kept in a small file as well as in memory."""
import numpy as np
from PIL import Image

from visattn import visitors

from page_requests import data_url_photo, join, png_bytes


def test_visitors_are_remembered_across_a_restart(tmp_path):
    path = tmp_path / "visitors.txt"
    before = visitors.Visitors(path=path)
    before.analysed("abc123")
    before.analysed("with\nnewline")  # not an id Gradio makes: never written
    after = visitors.Visitors(path=path)  # a new process reads the file
    assert after.had_analysis("abc123") and not after.had_analysis("someone-else")
    assert "newline" not in path.read_text()


def test_the_file_stays_bounded(tmp_path):
    path = tmp_path / "visitors.txt"
    v = visitors.Visitors(size=5, path=path)
    for k in range(40):
        v.analysed(f"s{k}")
    assert len(path.read_text().split()) <= 2 * 5
    assert visitors.Visitors(size=5, path=path).had_analysis("s39")


def test_an_unwritable_file_is_not_an_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    v = visitors.Visitors(path=blocker / "visitors.txt")
    v.analysed("abc")
    assert v.had_analysis("abc")


def test_after_a_restart_the_visitor_hears_the_analysis_is_no_longer_kept(tmp_path, monkeypatch):
    """The old server analysed session 'before-restart'; a new server (a new app, the
    visitors file read anew) answers that session's next request with the sentence."""
    import socket

    from visattn.ui import LAUNCH_OPTIONS, build

    def serve_once(name):
        demo = build()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                    quiet=True, **LAUNCH_OPTIONS)
        return demo, demo.local_url.rstrip("/")

    path = tmp_path / "visitors.txt"
    monkeypatch.setattr(visitors, "VISITORS", visitors.Visitors(path=path))
    demo, url = serve_once("old")
    photo = png_bytes(Image.fromarray(np.full((40, 60, 3), 120, np.uint8)))
    out = join(url, "analyze", [data_url_photo(photo), "tiny_nl", True, 512, 0.5, "jet"],
               "before-restart")
    assert out["success"], out
    demo.close()
    monkeypatch.setattr(visitors, "VISITORS", visitors.Visitors(path=path))  # the new process
    demo, url = serve_once("new")
    try:
        out = join(url, "affinity", [None, "nl2:affinity", "", 10, 10, 0.5, "jet", False, 0],
                   "before-restart")
        assert out["success"] is False and "no longer kept" in out["output"]["error"]
        fresh = join(url, "affinity", [None, "nl2:affinity", "", 10, 10, 0.5, "jet", False, 0],
                     "never-analysed")
        assert "Analyse a photo first" in fresh["output"]["error"]
    finally:
        demo.close()
