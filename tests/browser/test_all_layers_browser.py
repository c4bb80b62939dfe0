"""Every layer and head at once, in a real browser: after Analyse, the hover view's
all-layers grid draws one small canvas per (pairwise layer, head) pair (and each layer's
mean of heads where it has several); pointing at the photo moves the query of every
canvas, and `window.visattn.lastRows` holds the rows the page computed, which must be the
server's rows of the same pixel (visattn.analyze, then rec.row), with no request to the
server while pointing. Photos: tiny_nl, BoTNet's 3 x 4 heads, CCNet's criss-cross passes
and two hops, DANet's position attention; clips: tiny_nl_clips and I3D-NL's five blocks,
each a strip of the query's row across time."""
import os

import numpy as np
import pytest
from playwright.sync_api import expect

import visattn
from visattn.records import Pairwise
from test_nonlocal_browser import SEG_SIZE, analyse, hover_to, make_photo, open_hover
from test_clip_browser import make_clip, open_clip_view, point

pytestmark = pytest.mark.browser

NETWORKS = [("tiny_nl", True), ("botnet26t_256", False), ("ccnet_r50_d8_ade20k", False),
            ("danet_r50_d8_ade20k", False)]


def server_trace(photo, model, pretrained):
    """What the server analysed: the page's processing size for the ADE20K networks."""
    import dataclasses
    card = visattn.zoo.get(model)
    size = dataclasses.replace(card.preprocess, size=(SEG_SIZE, 4 * SEG_SIZE)) \
        if card.task == "segment" else None
    return visattn.analyze(photo, model, pretrained=pretrained, preprocess=size)


def expected_pairs(trace) -> list:
    """(key, head) of every canvas the grid should show: each head, then the mean of heads
    where there are several."""
    pairs = []
    for rec in trace:
        if isinstance(rec, Pairwise):
            pairs += [(rec.key, h) for h in range(rec.heads)] + ([(rec.key, None)] if rec.heads > 1 else [])
    return pairs


def loaded(page):
    """Wait until every layer's inputs are in the page and every canvas has drawn its row."""
    page.wait_for_function("() => window.visattn.pending.length === 0 && window.visattn.lastRows"
                           " && window.visattn.lastRows.every(r => r.row)", timeout=60_000)


@pytest.mark.parametrize("model, pretrained", NETWORKS)
def test_every_layer_and_head_follows_the_pointer(server_url, page, tmp_path, artifacts, model, pretrained):
    photo = make_photo(tmp_path, 300, 200)
    trace = server_trace(photo, model, pretrained)
    records = {rec.key: rec for rec in trace if isinstance(rec, Pairwise)}
    pairs = expected_pairs(trace)
    assert pairs and (model != "botnet26t_256" or len(pairs) >= 3 * 4)
    assert model != "ccnet_r50_d8_ade20k" or len(pairs) == 3  # two passes and their two hops
    analyse(page, server_url, photo, model, pretrained)
    open_hover(page)
    canvas = page.locator("#nl-hover .va-canvas")  # the photo; the grid's canvases follow it
    page.locator("#nl-hover .va-all-on").check()  # asks for every layer's inputs, once
    loaded(page)
    grid = page.locator("#nl-all")  # the view the issue names
    expect(grid).to_be_visible()
    expect(grid.locator("canvas")).to_have_count(len(pairs))
    captions = grid.locator("figcaption").all_inner_texts()
    assert all(" · head " in c or c.endswith(" · mean of heads") for c in captions), captions
    canvas.scroll_into_view_if_needed()

    api_calls = []
    page.on("request", lambda r: api_calls.append(r.url) if "/gradio_api/" in r.url else None)
    rng = np.random.default_rng(11)
    for fx, fy in rng.uniform(0.03, 0.97, (5, 2)):
        row, _, _ = hover_to(page, canvas, fx, fy)
        rows = page.evaluate("window.visattn.lastRows")
        assert [(r["key"], r["head"]) for r in rows] == pairs
        for r in rows:
            assert (r["x"], r["y"]) == (row["x"], row["y"])
            rec = records[r["key"]]
            cell = trace.geometry.to_grid(row["x"], row["y"], rec.grid, clamp=True)
            want = np.asarray(rec.row(cell, r["head"]), np.float64).ravel()
            assert r["cell"] == cell and r["grid"] == list(rec.grid)
            got = np.asarray(r["row"])
            assert got.shape == want.shape
            assert np.abs(got - want).max() <= 2e-3 * want.max(), (r["key"], r["head"], cell)

    # pointing at a small canvas moves the query of all of them (and of the photo)
    small = grid.locator("canvas").last
    small.scroll_into_view_if_needed()
    box = small.bounding_box()
    before = page.evaluate("window.visattn.drawnAll")
    page.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.75 * box["height"])
    page.wait_for_function("n => window.visattn.drawnAll > n", arg=before, timeout=10_000)
    rows, last = page.evaluate("[window.visattn.lastRows, window.visattn.lastRow]")
    assert abs(rows[0]["x"] - 0.25 * 300) <= 2 and abs(rows[0]["y"] - 0.75 * 200) <= 2
    assert (last["x"], last["y"]) == (rows[0]["x"], rows[0]["y"])
    assert not api_calls, f"pointing sent requests: {api_calls[:3]}"
    # a click on a small canvas shows its layer and head large, at the same query
    key, head = pairs[-1]
    page.mouse.click(box["x"] + 0.25 * box["width"], box["y"] + 0.75 * box["height"])
    page.wait_for_function("k => window.visattn.lastRow.layer === k", arg=key, timeout=10_000)
    page.wait_for_function("xy => window.visattn.lastRow.x === xy[0] && window.visattn.lastRow.y === xy[1]",
                           arg=[rows[0]["x"], rows[0]["y"]], timeout=10_000)
    assert page.evaluate("window.visattn.lastRow.head") == (head if records[key].heads > 1 else None)
    expect(grid.locator("figure.va-all-shown")).to_have_count(1)
    page.screenshot(path=os.path.join(artifacts, f"all_layers_{model}.png"), full_page=True)


CLIP_NETWORKS = [("tiny_nl_clips", True), ("i3d_nl_r50_kinetics400", False)]


def analyse_clip_with(page, url, clip, model, pretrained):
    """Give the clip, pick the clip network (random weights unless pretrained), Analyse."""
    import re
    page.goto(url)
    page.locator("#clip input[type=file]").set_input_files(str(clip))
    expect(page.locator("#model input")).to_have_value(re.compile("tiny_nl_clips"), timeout=30_000)
    if model != "tiny_nl_clips":
        page.locator("#model input").click()
        page.get_by_role("option", name=re.compile(rf"· {model} —")).click()
    if not pretrained and page.locator("#pretrained input").is_visible():
        page.locator("#pretrained input").uncheck()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("frames of this clip", timeout=180_000)


@pytest.mark.parametrize("model, pretrained", CLIP_NETWORKS)
def test_every_layer_of_a_clip_follows_the_pointer_across_time(server_url, page, tmp_path, artifacts,
                                                                model, pretrained):
    clip = make_clip(tmp_path)
    trace = visattn.analyze_video(clip, model, pretrained=pretrained)  # what the server analysed
    records = {rec.key: rec for rec in trace if isinstance(rec, Pairwise)}
    pairs = expected_pairs(trace)
    assert model != "i3d_nl_r50_kinetics400" or len(records) == 5
    frames = len(trace.clip.frames)
    analyse_clip_with(page, server_url, clip, model, pretrained)
    open_clip_view(page)
    canvas = page.locator("#nl-hover .va-canvas")  # the frames; the grid's strips follow them
    assert "clip's frames" in canvas.get_attribute("aria-label")  # not "the photo"
    columns = page.evaluate("window.visattn.view.clip.cols")
    page.locator("#nl-hover .va-all-on").check()
    loaded(page)
    grid = page.locator("#nl-all")
    expect(grid.locator("canvas")).to_have_count(len(pairs))
    expect(page.locator("#nl-hover .va-all-msg")).to_contain_text("one picture per time cell")
    canvas.scroll_into_view_if_needed()

    def check(rows, frame, x, y):
        assert [(r["key"], r["head"]) for r in rows] == pairs
        for r in rows:
            rec = records[r["key"]]
            T, h, w = rec.grid
            s = trace.geometry.to_grid(x, y, (h, w), clamp=True)
            cell = rec.cell(trace.clip.time_cell(frame, T), *divmod(s, w))
            want = np.asarray(rec.row(cell, r["head"]), np.float64).ravel()
            assert (r["frame"], r["x"], r["y"], r["cell"]) == (frame, x, y, cell)
            assert r["key_grid"] == list(rec.key_grid) and len(r["row"]) == want.size
            assert np.abs(np.asarray(r["row"]) - want).max() <= 2e-3 * want.max(), (r["key"], cell)

    api_calls = []
    page.on("request", lambda r: api_calls.append(r.url) if "/gradio_api/" in r.url else None)
    rng = np.random.default_rng(5)
    for frame in sorted({0, frames // 2, frames - 1}):
        fx, fy = rng.uniform(0.1, 0.9, 2)
        row = point(page, canvas, frame, fx, fy, columns=columns, frames=frames)
        check(page.evaluate("window.visattn.lastRows"), frame, row["x"], row["y"])
    # pointing at the last picture of the last strip moves the query to its time cell's frame
    small = grid.locator("canvas").last
    small.scroll_into_view_if_needed()
    box = small.bounding_box()
    key = pairs[-1][0]
    n = records[key].key_grid[0]
    before = page.evaluate("window.visattn.drawnAll")
    page.mouse.move(box["x"] + (n - 0.5) / n * box["width"], box["y"] + 0.5 * box["height"])
    page.wait_for_function("n => window.visattn.drawnAll > n", arg=before, timeout=10_000)
    rows = page.evaluate("window.visattn.lastRows")
    frame = trace.clip.frame_span(n - 1, n)[0]
    assert rows[0]["frame"] == frame
    check(rows, frame, rows[0]["x"], rows[0]["y"])
    assert not api_calls, f"pointing sent requests: {api_calls[:3]}"
    page.screenshot(path=os.path.join(artifacts, f"all_layers_{model}.png"), full_page=True)
