"""Server memory per visitor session, and after the sessions are gone.

Runs the web app in this process and plays N visitors through the browser's own request
path (upload, queue join, event stream), each analysing its own phone-size photo (12 MP
JPEG by default). Each visitor keeps a heartbeat open, as a browser tab does, and closes
it at the end. Prints the server's resident memory (RSS) before, with every session
alive, and after the sessions closed and the time-to-live passed; per session is the
growth divided by N. `--keep-full` keeps the full-resolution photo in each session (what
the app did before), for comparison in the same run.

    python bench/session_memory.py                 # 40 sessions of 12 MP photos
    python bench/session_memory.py --quick         # 8 sessions (the test's version)
    python bench/session_memory.py --refused 20    # 20 visitors each sending a 40 MB data: URL

`--refused N` measures what refused photos leave behind: N visitors each send a photo as
a `data:` URL of `--url-mb` MB (40 by default: over the request cap, answered 413
before the body is read; 36: under it, refused by the loader as over 25 MB) and keep
their tabs open; the growth of the server's RSS is measured with every session alive.
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import os
import socket
import threading
import time
import uuid

def _ttl_for_run() -> float:
    """The app's session time-to-live for this run (1800 s in production): long enough
    for every session to be alive at the measurement (about 1 s per visitor here)."""
    import sys
    n = 8 if "--quick" in sys.argv else 40
    for i, arg in enumerate(sys.argv):
        if arg == "--sessions":
            n = int(sys.argv[i + 1])
    return 8.0 + 1.5 * n


TTL_S = _ttl_for_run()
os.environ["VISATTN_SESSION_TTL_S"] = str(TTL_S)
os.environ["GRADIO_HEARTBEAT_INTERVAL"] = "0.5"  # notice closed tabs quickly
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import timed  # noqa: E402  (sets OMP_WAIT_POLICY, sys.path)

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

MODEL = "tiny_cbam"


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def photo_jpeg(width: int, height: int, seed: int) -> bytes:
    """A smooth random photo (compresses like a real one), as JPEG bytes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 100 + 1, width // 100 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Visitor:
    """One browser tab: a session id, a heartbeat, and the events the page sends."""

    def __init__(self, url: str, fn_index: int):
        self.url, self.fn_index = url, fn_index
        self.session = uuid.uuid4().hex[:11]
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        with httpx.Client(timeout=None) as client:
            with client.stream("GET", f"{self.url}/gradio_api/heartbeat/{self.session}") as resp:
                for _ in resp.iter_lines():
                    if self._stop.is_set():
                        return

    def analyse(self, jpeg: bytes, name: str) -> dict:
        up = httpx.post(f"{self.url}/gradio_api/upload", files={"files": (name, jpeg, "image/jpeg")},
                        timeout=120).json()[0]
        photo = {"path": up, "orig_name": name, "meta": {"_type": "gradio.FileData"}}
        return self.send([photo, MODEL, True, 512, 0.5, "jet"])

    def send(self, data: list) -> dict:
        body = {"data": data, "event_data": None, "fn_index": self.fn_index,
                "trigger_id": None, "session_hash": self.session}
        httpx.post(f"{self.url}/gradio_api/queue/join", json=body, timeout=60).raise_for_status()
        with httpx.stream("GET", f"{self.url}/gradio_api/queue/data?session_hash={self.session}",
                          timeout=300) as resp:
            for line in resp.iter_lines():
                if line.startswith("data:") and "process_completed" in line:
                    return json.loads(line[5:])
        raise RuntimeError("the event stream ended without a result")

    def close(self) -> None:
        self._stop.set()


def analysing_visitors(url: str, fn: int, n: int, size: tuple[int, int], conn) -> None:
    """The browsers, in a process of their own (their memory is not the server's): each
    analyses its photo and keeps its heartbeat open; all leave when told to."""
    tabs, seconds = [], []
    for k in range(n):
        tab, jpeg, out = Visitor(url, fn), photo_jpeg(*size, seed=k), {}
        seconds.append(timed(lambda: out.update(tab.analyse(jpeg, f"photo{k}.jpg"))))
        if not out.get("success"):
            conn.send(("failed", f"analysis {k}: {out}"))
            return
        tabs.append(tab)
    conn.send(("alive", seconds))
    conn.recv()  # leave: closing the process closes every tab's connections


def refusing_visitors(url: str, fn: int, n: int, url_mb: float, conn) -> None:
    """N tabs, each sending one photo as a data: URL of `url_mb` MB that the server refuses
    (the request cap or the loader's 25 MB), then staying open."""
    text = "data:image/png;base64," + "A" * int(url_mb * 2**20 - 22)
    tabs, answers = [], []
    for _ in range(n):
        tab = Visitor(url, fn)
        body = {"data": [{"path": None, "url": text, "meta": {"_type": "gradio.FileData"}},
                         MODEL, True, 512, 0.5, "jet"],
                "event_data": None, "fn_index": fn, "trigger_id": None,
                "session_hash": tab.session}
        try:
            resp = httpx.post(f"{url}/gradio_api/queue/join", content=json.dumps(body),
                              headers={"content-type": "application/json"}, timeout=120)
            status = resp.status_code
        except httpx.HTTPError:  # hung up on before the body was sent: refused too
            status = 413
        if status == 200:
            with httpx.stream("GET", f"{url}/gradio_api/queue/data?session_hash={tab.session}",
                              timeout=300) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data:") and "process_completed" in line:
                        status = "refused" if not json.loads(line[5:]).get("success") else "ok"
                        break
        answers.append(status)
        tabs.append(tab)
    conn.send(("alive", answers))
    conn.recv()


def run_refused(n: int, url_mb: float) -> dict:
    """RSS growth of the server after N refused data: URL photos, every session alive."""
    import multiprocessing

    from visattn import ui
    demo = ui.build()
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                quiet=True, **ui.LAUNCH_OPTIONS)
    url = demo.local_url.rstrip("/")
    fn = next(d["id"] for d in demo.config["dependencies"] if d.get("api_name") == "analyze")
    try:
        warm = Visitor(url, fn)
        warm.analyse(photo_jpeg(400, 300, 1), "warm.jpg")  # model, caches, allocator
        warm.close()
        gc.collect()
        before = rss_mb()
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        browsers = ctx.Process(target=refusing_visitors, args=(url, fn, n, url_mb, there))
        browsers.start()
        status, answers = here.recv()
        time.sleep(1.0)
        gc.collect()
        alive = rss_mb()
        sessions_seen = len(demo.state_holder.session_data)
        here.send("leave")
        browsers.join(60)
    finally:
        demo.close()
    return {"refused": n, "url_mb": url_mb, "answers": sorted({str(a) for a in answers}),
            "rss_before_mb": before, "rss_after_mb": alive, "grown_mb": alive - before,
            "sessions_seen": sessions_seen}


def run(n: int, megapixels: float, keep_full: bool) -> dict:
    import multiprocessing

    from visattn import visitors, ui
    if keep_full:
        visitors.DISPLAY_MAX = 10 ** 9
    demo = ui.build()
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                quiet=True, **ui.LAUNCH_OPTIONS)
    url = demo.local_url.rstrip("/")
    fn = next(d["id"] for d in demo.config["dependencies"] if d.get("api_name") == "analyze")
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    holding = lambda: sum(1 for s in demo.state_holder.session_data.values() if s.state_data)  # noqa: E731
    try:
        warm = Visitor(url, fn)
        warm.analyse(photo_jpeg(width, height, 999), "warm.jpg")  # model, caches, allocator
        warm.close()
        time.sleep(TTL_S + 3)
        gc.collect()
        before = rss_mb()
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        browsers = ctx.Process(target=analysing_visitors, args=(url, fn, n, (width, height), there))
        browsers.start()
        status, seconds = here.recv()
        if status != "alive":
            raise RuntimeError(seconds)
        gc.collect()
        alive, states_alive = rss_mb(), holding()
        here.send("leave")
        browsers.join(60)
        time.sleep(TTL_S + 4)  # heartbeats notice the closed tabs; states expire each second
        gc.collect()
        after, states_left = rss_mb(), holding()
        closed = [s for s in demo.state_holder.session_data.values() if s.is_closed]
        short = sum(1 for s in closed if s.STATE_TTL_WHEN_CLOSED == visitors.TTL_S)
    finally:
        demo.close()
    return {"sessions": n, "photo": f"{width}x{height}", "keep_full": keep_full,
            "rss_before_mb": before, "rss_alive_mb": alive, "rss_after_ttl_mb": after,
            "per_session_mb": (alive - before) / n, "back_within_mb": after - before,
            "states_alive": states_alive, "states_left": states_left,
            "closed": len(closed), "closed_with_app_ttl": short,
            "analysis_s_median": float(np.median(seconds))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=40)
    p.add_argument("--megapixels", type=float, default=12.0)
    p.add_argument("--keep-full", action="store_true",
                   help="keep the full-resolution photo per session (the old behaviour)")
    p.add_argument("--quick", action="store_true", help="8 sessions")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--refused", type=int, default=0,
                   help="instead: N visitors each sending a refused data: URL photo")
    p.add_argument("--url-mb", type=float, default=40.0,
                   help="size of each refused data: URL (with --refused)")
    args = p.parse_args()
    if args.refused:
        result = run_refused(args.refused, args.url_mb)
        if args.json:
            print(json.dumps(result))
            return
        print(f"{result['refused']} visitors each sending a {result['url_mb']:.0f} MB data: URL "
              f"(answers: {', '.join(result['answers'])}): RSS {result['rss_before_mb']:.0f} -> "
              f"{result['rss_after_mb']:.0f} MB with every session alive, "
              f"{result['grown_mb']:+.1f} MB")
        return
    result = run(8 if args.quick else args.sessions, args.megapixels, args.keep_full)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['sessions']} sessions, {result['photo']} JPEG each, {MODEL}"
          + (" (full photo kept)" if args.keep_full else "") + ":")
    print(f"  RSS before {result['rss_before_mb']:.0f} MB, all sessions alive "
          f"{result['rss_alive_mb']:.0f} MB ({result['states_alive']} sessions holding state) "
          f"-> {result['per_session_mb']:.2f} MB per session")
    print(f"  after the tabs closed and the {TTL_S:.0f} s time-to-live passed: "
          f"{result['rss_after_ttl_mb']:.0f} MB ({result['back_within_mb']:+.0f} MB vs before), "
          f"{result['states_left']} sessions still holding state; {result['closed']} tabs seen "
          f"closed, {result['closed_with_app_ttl']} of them kept for the app's time-to-live "
          "(not Gradio's hour)")
    print(f"  analysis round trip (upload + analyse), median {result['analysis_s_median']:.2f} s")


if __name__ == "__main__":
    main()
