"""HTTP servers on 127.0.0.1 standing in for GitHub releases and the Hugging Face Hub."""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

Route = Callable[[BaseHTTPRequestHandler], None]


def send_file(data: bytes, headers: dict | None = None) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
    return route


def send_truncated(data: bytes) -> Route:
    """Promise all of `data`, send half, hang up."""
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[: len(data) // 2])
        h.wfile.flush()
        h.close_connection = True
    return route


def never_answer(h: BaseHTTPRequestHandler) -> None:
    """Accept the request, then say nothing until the server stops."""
    h.server.stopping.wait(60)


def hub_file(data: bytes, commit: str = "0" * 40, etag: str | None = None) -> Route:
    """What the Hub answers for /{repo}/resolve/{rev}/{file}: an LFS file whose ETag is
    its sha256 (or a wrong `etag`, to test verification)."""
    sha = etag or hashlib.sha256(data).hexdigest()
    return send_file(data, {"ETag": f'"{sha}"', "X-Repo-Commit": commit,
                            "Accept-Ranges": "bytes"})


class _Handler(BaseHTTPRequestHandler):
    def _dispatch(self):
        self.server.requests.append((self.command, self.path))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        route(self)

    do_GET = do_HEAD = _dispatch

    def log_message(self, *args):
        pass


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[ThreadingHTTPServer]:
    """A server on a free port of 127.0.0.1; `server.url` is its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.routes, server.requests = routes, []
    server.stopping = threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


def in_own_loop(coro):
    """Run a coroutine to its end in a thread of its own: the browser tests' Playwright keeps
    an event loop running in the main thread for the whole session, where asyncio.run fails."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def elapsed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
