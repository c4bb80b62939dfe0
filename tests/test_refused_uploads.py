"""Issue 21, item 1: nothing refused is kept. Request bodies over the cap are answered 413
before they are read in full; a data: URL refused by the loader is dropped from the
session at once (Gradio keeps every input's last value in the session's record); a full
disk under Gradio's upload route is a sentence, not a bare HTTP 500."""
import base64
import errno
import json
import time

import httpx
import pytest

from visattn import guard
from visattn.image import DEFAULT_MAX_BYTES

from local_servers import closed_port as free_port, in_own_loop
from page_requests import data_url_photo, join

MODEL = "tiny_cbam"


@pytest.fixture(scope="module")
def app():
    from visattn.ui import LAUNCH_OPTIONS, build
    demo = build()
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                quiet=True, **LAUNCH_OPTIONS)
    yield demo, demo.local_url.rstrip("/")
    demo.close()


def _inline_photos(demo, session: str) -> int:
    state = demo.state_holder.session_data.get(session)
    n = 0
    for config in getattr(state, "config_values", {}).values():
        value = (config or {}).get("props", {}).get("value")
        n += isinstance(value, dict) and str(value.get("url") or "").startswith("data:")
    return n


def test_a_body_over_the_cap_is_refused_before_it_is_read(app):
    """A 60 MB body is refused at its header: the server answers after reading at most a
    little of it (the client is still sending when the 413 comes back)."""
    _, url = app
    sent = 0
    chunk = b"x" * 2**20

    def body():
        nonlocal sent
        yield b'{"data": ["data:image/png;base64,'
        for _ in range(60):
            sent += len(chunk)
            yield chunk
        yield b'"]}'

    start = time.perf_counter()
    try:
        resp = httpx.post(f"{url}/gradio_api/queue/join", content=body(),
                          headers={"content-type": "application/json",
                                   "content-length": str(60 * 2**20 + 40)}, timeout=60)
        status, text = resp.status_code, resp.text
    except httpx.HTTPError:  # the server hung up on the rest of the body: also refused
        status, text = 413, guard.too_large(None)
    assert status == 413, text[:200]
    assert "above the server's limit" in text and len(json.loads(text)["error"]) <= 200
    assert time.perf_counter() - start < 10


def test_a_chunked_body_over_the_cap_is_cut_off(app):
    _, url = app

    def body():
        for _ in range(50):
            yield b"y" * 2**20

    try:
        resp = httpx.post(f"{url}/gradio_api/queue/join", content=body(),
                          headers={"content-type": "application/json"}, timeout=60)
        assert resp.status_code == 413, resp.text[:200]
    except httpx.HTTPError:
        pass  # hung up on: refused too


def test_an_inline_photo_refused_by_the_loader_is_dropped_from_the_session_at_once(app):
    """A data: URL under the body cap but over the 25 MB photo cap: refused with the
    loader's sentence, and the session no longer holds the 34 MB of text."""
    demo, url = app
    n = DEFAULT_MAX_BYTES + 2**16  # decoded size: over the photo cap
    photo = data_url_photo(b"\x89PNG\r\n\x1a\n" + bytes(n - 8), "image/png")
    assert len(photo["url"]) < guard.MAX_BODY - 2**20  # under the body cap
    out = join(url, "analyze", [photo, MODEL, True, 512, 0.5, "jet"], "refused-inline")
    assert out["success"] is False and "above the limit of 25 MB" in out["output"]["error"]
    assert _inline_photos(demo, "refused-inline") == 0


def test_an_undecodable_inline_photo_is_dropped_too(app):
    demo, url = app
    photo = data_url_photo(b"Dear reader, this is a letter.\n" * 4000, "text/plain")
    out = join(url, "analyze", [photo, MODEL, True, 512, 0.5, "jet"], "text-inline")
    assert out["success"] is False and "text or HTML" in out["output"]["error"]
    assert _inline_photos(demo, "text-inline") == 0


def test_the_largest_photo_the_loader_accepts_still_arrives_as_a_data_url():
    """The body cap leaves room for a data: URL of a photo right at the 25 MB cap."""
    assert len(base64.b64encode(bytes(DEFAULT_MAX_BYTES))) + 4096 < guard.MAX_BODY


def test_a_full_disk_under_a_route_is_a_sentence_not_a_bare_500():
    async def route(scope, receive, send):
        await receive()
        raise OSError(errno.ENOSPC, "No space left on device")

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"abc", "more_body": False}

    scope = {"type": "http", "headers": [(b"content-length", b"3")]}
    in_own_loop(guard.RequestGuard(route)(scope, receive, send))
    assert sent[0]["status"] == 507
    text = json.loads(sent[1]["body"])["error"]
    assert "disk is full" in text and len(text) <= 200


def test_twenty_refused_40_mb_data_urls_leave_at_most_20_mb():
    """bench/session_memory.py --refused 20: 20 visitors, each its own session kept open,
    each sending a 40 MB data: URL; the server grows by at most 20 MB (was ~850 MB)."""
    import subprocess
    import sys
    from pathlib import Path
    done = subprocess.run([sys.executable, "bench/session_memory.py", "--refused", "20", "--json"],
                          capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print("\n", result)
    assert result["answers"] == ["413"]
    assert result["grown_mb"] <= 20
