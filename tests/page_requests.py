"""The requests the page itself sends (queue join + event stream), for tests that must take
the browser's own path to the server without a browser."""
import base64
import io
import json

import httpx
from PIL import Image


def join(server_url: str, api_name: str, data: list, session: str, timeout: float = 120) -> dict:
    """What the page does: POST queue/join, then read the event stream to its result. The
    body is written by Python's json, so NaN and infinity go as a hostile client sends them
    (JavaScript's JSON.stringify would not)."""
    config = httpx.get(f"{server_url}/config", timeout=30).json()
    fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
    body = {"data": data, "event_data": None, "fn_index": fn, "trigger_id": None,
            "session_hash": session}
    httpx.post(f"{server_url}/gradio_api/queue/join", content=json.dumps(body),
               headers={"content-type": "application/json"}, timeout=timeout).raise_for_status()
    with httpx.stream("GET", f"{server_url}/gradio_api/queue/data?session_hash={session}",
                      timeout=timeout) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:") and "process_completed" in line:
                return json.loads(line[5:])
    raise AssertionError("no result")


def data_url_photo(data: bytes, kind: str = "image/png") -> dict:
    """An image payload as a browser sends a pasted or captured picture: a data: URL."""
    return {"path": None, "url": f"data:{kind};base64," + base64.b64encode(data).decode(),
            "meta": {"_type": "gradio.FileData"}}


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
