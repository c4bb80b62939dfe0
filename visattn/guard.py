"""The web app's outer door: request bodies over the cap are refused before they are read
in full, and a full or read-only disk under a request is said in a sentence.

`RequestGuard` is a plain ASGI middleware (no Gradio import), installed through
`launch(app_kwargs=guard.app_kwargs())`:

* A request whose Content-Length is over `max_bytes` is answered 413 at once, its body
  never read. A body without a length (chunked) is counted as it arrives and cut off at
  `max_bytes`: the route sees the end of the stream and the client gets 413.
* An OSError for a full disk (ENOSPC, EDQUOT) or a read-only one (EROFS) raised by a route
  (Gradio's upload route writing into its temporary folder) becomes 507 with a sentence
  instead of a bare HTTP 500.

The cap is the upload cap's data: URL (base64 is 4/3 of the bytes) plus room for the
rest of a request, so every photo the loader accepts still arrives.
"""
from __future__ import annotations

import errno
import json
from typing import Optional

from .image import DEFAULT_MAX_BYTES

BODY_SLACK = 2 * 2**20  # the request around the photo: other inputs, JSON, multipart headers
MAX_BODY = DEFAULT_MAX_BYTES * 4 // 3 + BODY_SLACK
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def too_large(n: Optional[int], cap: int = MAX_BODY) -> str:
    size = f"{n / 2**20:.0f} MB" if n is not None else "over the limit"
    return (f"The request is {size}, above the server's limit of {cap / 2**20:.0f} MB; send a "
            f"photo of at most {DEFAULT_MAX_BYTES / 2**20:.0f} MB.")


def disk_full(exc: OSError) -> str:
    """The sentence for an OSError that says the disk is full or read-only."""
    if exc.errno == errno.EROFS:
        return "The server cannot save files right now (its disk is read-only); try again later."
    return "The server's disk is full, so the file could not be saved; try again later."


def is_disk_trouble(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


class RequestGuard:
    def __init__(self, app, max_bytes: int = MAX_BODY):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            return await _answer(send, 413, too_large(length, self.max_bytes))
        started = False
        over = False
        seen = 0

        async def counted_receive():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    message = {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if over:  # whatever the route said, the body was cut off
                    return await _answer(send, 413, too_large(None, self.max_bytes))
            elif over:
                return None
            return await send(message)

        try:
            await self.app(scope, counted_receive if length is None else receive, watched_send)
        except OSError as exc:
            if not is_disk_trouble(exc) or started:
                raise
            await _answer(send, 507, disk_full(exc))


def _content_length(scope) -> Optional[int]:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send, status: int, sentence: str) -> None:
    body = json.dumps({"error": sentence, "detail": sentence}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def app_kwargs(max_bytes: int = MAX_BODY) -> dict:
    """What `Blocks.launch(app_kwargs=...)` needs to put the guard in front of every route."""
    from starlette.middleware import Middleware
    return {"middleware": [Middleware(RequestGuard, max_bytes=max_bytes)]}
