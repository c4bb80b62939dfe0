"""Issue 21, items 3 and 11: a stall is no bytes for STALL_S, not no progress report. A Hub
download at a steady 1 MB/s (huggingface_hub reports progress once per chunk it reads)
completes; a server that goes silent mid-transfer still fails within 5 s; a download
killed mid-transfer leaves no *.incomplete behind once the file is fetched again."""
import hashlib
import os
import time

import pytest

from visattn import weights
from visattn.weights import HubFile, UrlFile, WeightsError

from local_servers import elapsed, serve

SIZE = 6 * 2**20  # 6 s at 1 MB/s: longer than STALL_S


def trickle(data: bytes, rate: float, stop_after: int | None = None, commit: str = "a" * 40):
    """A Hub LFS file sent at `rate` bytes/s in 64 kB pieces; with `stop_after`, silence
    after that many bytes (the connection stays open)."""
    sha = hashlib.sha256(data).hexdigest()

    def route(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("ETag", f'"{sha}"')
        h.send_header("X-Repo-Commit", commit)
        h.end_headers()
        if h.command == "HEAD":
            return
        piece = 2**16
        for i in range(0, len(data), piece):
            if stop_after is not None and i >= stop_after:
                h.server.stopping.wait(30)
                return
            h.wfile.write(data[i:i + piece])
            h.wfile.flush()
            time.sleep(piece / rate)
    return route


def test_a_hub_download_at_1_mb_per_second_completes(monkeypatch):
    data = os.urandom(SIZE)
    spec = HubFile("someone/slow", "model.safetensors", revision="a" * 40)
    reports = []
    with serve({f"/{spec.repo_id}/resolve/{spec.revision}/{spec.filename}":
                trickle(data, 2**20)}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        took = elapsed(lambda: weights.fetch(spec, progress=lambda d, t: reports.append(d),
                                             who="net"))
    assert took > weights.STALL_S  # longer than a stall: it was not cut off
    assert weights.verified(spec).read_bytes() == data
    assert len(reports) >= 20  # progress while it flowed, not once per 10 MB


def test_a_hub_server_silent_mid_transfer_still_fails_within_5_seconds(monkeypatch):
    data = os.urandom(SIZE)
    spec = HubFile("someone/silent", "model.safetensors", revision="b" * 40)
    with serve({f"/{spec.repo_id}/resolve/{spec.revision}/{spec.filename}":
                trickle(data, 8 * 2**20, stop_after=2**20, commit="b" * 40)}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        start = time.perf_counter()
        with pytest.raises(WeightsError, match="stopped sending|did not answer"):
            weights.fetch(spec, who="net")
        took = time.perf_counter() - start
    assert took < 1 + 5  # ~1 MB at 8 MB/s, then at most 5 s of silence


def test_a_url_download_at_100_kb_per_second_completes():
    data = os.urandom(600 * 1024)

    def route(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        for i in range(0, len(data), 2**14):
            h.wfile.write(data[i:i + 2**14])
            h.wfile.flush()
            time.sleep(2**14 / (100 * 1024))

    with serve({"/w.pth": route}) as srv:
        spec = UrlFile(srv.url + "/w.pth", hashlib.sha256(data).hexdigest())
        assert weights.fetch(spec, who="net").read_bytes() == data


def test_a_killed_hub_download_leaves_no_incomplete_file_after_the_next_fetch(monkeypatch):
    """What a kill -9 mid-transfer leaves: huggingface_hub's blobs/<etag>.incomplete. The
    next successful fetch of the repository removes such leftovers."""
    data = os.urandom(2**20)
    spec = HubFile("someone/killed", "model.safetensors", revision="c" * 40)
    blobs = weights.hub_cache() / "models--someone--killed" / "blobs"
    blobs.mkdir(parents=True)
    left = blobs / (hashlib.sha256(b"an older file").hexdigest() + ".incomplete")
    left.write_bytes(os.urandom(52 * 1024))
    old = time.time() - 3600
    os.utime(left, (old, old))
    with serve({f"/{spec.repo_id}/resolve/{spec.revision}/{spec.filename}":
                trickle(data, 64 * 2**20, commit="c" * 40)}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        weights.fetch(spec, who="net")
    assert not list(blobs.glob("*.incomplete"))


def test_a_killed_url_download_leaves_no_partial_folder_after_the_next_fetch():
    data = os.urandom(2**16)
    part = weights.cache_dir() / "url" / ".part-killed"
    part.mkdir(parents=True)
    (part / "w.pth").write_bytes(os.urandom(52 * 1024))
    old = time.time() - 3600
    os.utime(part, (old, old))

    def route(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    with serve({"/w.pth": route}) as srv:
        weights.fetch(UrlFile(srv.url + "/w.pth", hashlib.sha256(data).hexdigest()))
    assert not part.exists()
