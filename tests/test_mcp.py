"""The MCP server (issue 24): `python app.py` in a process of its own, reached with the
`mcp` package's own client over streamable HTTP on 127.0.0.1. The three tools are listed
with typed arguments and descriptions that say what each attention family is; their
numbers equal the library's (visattn.analyze, Affinity.row) on the same photo."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import visattn
from visattn import render, zoo
from visattn.records import Affinity, ChannelWeights

from local_servers import closed_port as free_port, in_own_loop

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "assets" / "examples" / "scene_solid_cross.png"
mcp = pytest.importorskip("mcp")
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
               HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(tmp_path_factory.mktemp("gradio")))
    env.pop("GRADIO_MCP_SERVER", None)  # app.py's default: on
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(base + "/gradio_api/mcp/schema", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.5)
        yield base + "/gradio_api/mcp/"
    finally:
        proc.terminate()
        proc.wait(30)


def calls(url: str, steps: list) -> list:
    """Run (tool, arguments or a function of the answers so far) in one MCP session;
    `None` as the tool lists the tools."""
    async def go():
        out = []
        async with streamable_http_client(url) as (read, write, _):
            async with ClientSession(read, write) as s:
                await s.initialize()
                for tool, args in steps:
                    if tool is None:
                        out.append((await s.list_tools()).tools)
                        continue
                    res = await s.call_tool(tool, args(out) if callable(args) else args)
                    text = res.content[0].text
                    out.append(("error", text) if res.isError else json.loads(text))
        return out
    return in_own_loop(go())


def photo_url() -> str:
    return "data:image/png;base64," + base64.b64encode(PHOTO.read_bytes()).decode()


def test_tools_are_listed_typed_and_described(url):
    tools = {t.name: t for t in calls(url, [(None, None)])[0]}
    assert {"list_networks", "analyze_photo", "attention_row"} <= set(tools)
    props = tools["attention_row"].inputSchema["properties"]
    assert [props[k]["type"] for k in ("layer", "head", "x", "y", "analysis_id")] == \
        ["string", "integer", "number", "number", "string"]
    assert tools["analyze_photo"].inputSchema["properties"]["pretrained"]["type"] == "boolean"
    described = tools["analyze_photo"].description
    for family, words in [("SE", "channel"), ("Non-local", "pairwise (every position to every position)"),
                          ("CBAM", "channel, then spatial")]:
        assert f"({family}): {words}" in described


def test_tools_answer_the_librarys_numbers(url):
    se, nl, row, unknown = calls(url, [
        ("analyze_photo", {"image": photo_url(), "model": "tiny_se", "pretrained": True}),
        ("analyze_photo", {"image": photo_url(), "model": "tiny_nl"}),
        ("attention_row", lambda out: {"layer": "", "head": -1, "x": 37, "y": 21,
                                       "analysis_id": out[1]["analysis_id"]}),
        ("attention_row", {"layer": "", "head": -1, "x": 1, "y": 1, "analysis_id": "nope"}),
    ])
    trace = visattn.analyze(PHOTO, "tiny_se")
    assert se["model"] == "tiny_se"
    assert [(p["label"], round(p["probability"], 6)) for p in se["prediction"]] == \
        [(lab, round(float(p), 6)) for lab, p in trace.prediction.top(5)]
    gates = {r.key: r.values for r in trace.select(ChannelWeights)}
    maps = {m["key"]: m for m in se["maps"]}
    assert list(maps) == [r.key for r in trace] and gates
    for key, values in gates.items():
        m = maps[key]
        assert m["family"] == "SE" and m["kind"] == "ChannelWeights" and m["value_kind"] == "gate"
        assert m["shape"]["values"] == list(values.shape)
        assert m["summary"]["mean"] == pytest.approx(float(values.mean()), abs=1e-6)
        assert m["summary"]["max"] == pytest.approx(float(values.max()), abs=1e-6)
        assert m["summary"]["top_channels"][0][0] == int(np.argmax(values))
    assert len(se["images"]) == len(render.gallery(trace))
    thumb = Image.open(io.BytesIO(base64.b64decode(se["images"][0]["jpeg"].split(",", 1)[1])))
    assert max(thumb.size) <= 192
    # the row of pixel (37, 21) of tiny_nl's Non-local layer, from the library
    nl_trace = visattn.analyze(PHOTO, "tiny_nl")
    rec = nl_trace.select(Affinity)[0]
    cell = nl_trace.geometry.to_grid(37, 21, rec.grid, clamp=True)
    assert row["layer"] == rec.key and row["cell"] == cell and row["grid"] == list(rec.grid)
    np.testing.assert_allclose(row["row"], rec.row(cell).ravel(), rtol=1e-5, atol=1e-9)
    assert sum(row["row"]) == pytest.approx(1.0, abs=1e-5)
    assert unknown[0] == "error" and "analyze_photo" in unknown[1]


def test_list_networks_is_the_zoo(url):
    (nets,) = calls(url, [("list_networks", {})])
    assert [n["name"] for n in nets] == [c.name for c in zoo.cards()]
    assert {n["name"]: n["family"] for n in nets}["tiny_se"] == zoo.get("tiny_se").family
