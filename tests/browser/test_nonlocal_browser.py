"""The signature interaction in a real browser: point at pixels of the Non-local tab and check
that the row the page computed and drew is the server's row of the same pixel (/affinity),
that the outlined cell holds the pointer, that hovering sends nothing to the server, that
arrow keys move one cell, and that a click pins the query into the export."""
import io
import json
import re
import zipfile
import os

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from visattn import zoo

pytestmark = pytest.mark.browser

SEG_SIZE = 256  # the ADE20K networks at their smallest processing size: fast on 2 cores


def make_photo(tmp_path, w=300, h=200, name="photo.png"):
    rng = np.random.default_rng(w + h)
    img = np.cumsum(rng.integers(0, 6, (h, w, 3)), axis=1).clip(0, 255).astype(np.uint8)
    path = tmp_path / name
    Image.fromarray(img).save(path)
    return path


def analyse(page, url, photo, model, pretrained=True, seg_size=SEG_SIZE):
    page.goto(url)
    page.locator("#photo input[type=file]").set_input_files(str(photo))
    page.locator("#model input").click()
    page.get_by_role("option", name=f"{zoo.get(model).family} · {model} —").click()
    if not pretrained:
        page.locator("#pretrained input").uncheck()
    if zoo.get(model).task == "segment":
        page.locator("#seg-size label").filter(has_text=re.compile(rf"^\s*{seg_size}")).first.click()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text(re.compile(r"maps? captured"), timeout=90_000)


def open_hover(page):
    """Open the Non-local tab; wait for the page's first drawn row. -> the canvas locator."""
    page.get_by_role("tab", name="Non-local").click()
    page.wait_for_function("() => window.visattn && window.visattn.lastRow", timeout=60_000)
    canvas = page.locator("#nl-hover canvas")
    expect(canvas).to_have_count(1)
    canvas.scroll_into_view_if_needed()
    return canvas


def hover_to(page, canvas, fx, fy):
    """Move the pointer to a fraction of the canvas' box; wait for the row of that pixel.
    -> (lastRow, the pointer in canvas pixels)."""
    box = canvas.bounding_box()
    before = page.evaluate("window.visattn.drawn")
    cx, cy = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    page.mouse.move(cx, cy)
    page.wait_for_function("n => window.visattn.drawn > n", arg=before, timeout=10_000)
    size = page.evaluate("() => { const c = document.querySelector('#nl-hover canvas');"
                         " return [c.width, c.height]; }")
    pointer = ((cx - box["x"]) * size[0] / box["width"], (cy - box["y"]) * size[1] / box["height"])
    return page.evaluate("window.visattn.lastRow"), pointer, size


def open_layer(page, layer):
    """Pick a layer in the view; wait until its inputs are in the page and its row is drawn."""
    page.locator("#nl-hover .va-layer").select_option(layer)
    page.wait_for_function("k => window.visattn.pending.length === 0 && window.visattn.lastRow"
                           " && window.visattn.lastRow.layer === k", arg=layer, timeout=60_000)


MARKER_BOX = """() => { const c = document.querySelector('#nl-hover canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let x0 = 1e9, y0 = 1e9, x1 = -1, y1 = -1;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const o = (y * c.width + x) * 4;
    if (d[o] === 255 && d[o + 1] === 0 && d[o + 2] === 255) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); } }
  return [x0, y0, x1, y1]; }"""


def client_for(server_url, tmp_path, photo, model, pretrained):
    from gradio_client import Client, handle_file
    client = Client(server_url, verbose=False, analytics_enabled=False,
                    download_files=str(tmp_path / "dl"))
    client.predict(handle_file(str(photo)), model, pretrained, SEG_SIZE, api_name="/analyze")
    return client


NETWORKS = [("tiny_nl", True), ("botnet26t_256", False), ("nonlocal_r50_d8_ade20k", False),
            ("danet_r50_d8_ade20k", False), ("ccnet_r50_d8_ade20k", False),
            ("dnl_r50_d8_ade20k", False)]


@pytest.mark.parametrize("model, pretrained", NETWORKS)
def test_hovered_rows_are_the_servers_rows(server_url, page, tmp_path, artifacts, model, pretrained):
    photo = make_photo(tmp_path, 300, 200)
    analyse(page, server_url, photo, model, pretrained)
    canvas = open_hover(page)
    client = client_for(server_url, tmp_path, photo, model, pretrained)
    if model.startswith("dnl"):  # its unary map beside the pairwise rows
        expect(page.locator("#nl-hover .va-beside img")).to_be_visible()
    layers = page.evaluate("Array.from(document.querySelectorAll('#nl-hover .va-layer option'), o => o.value)")
    api_calls = []
    page.on("request", lambda r: api_calls.append(r.url) if "/gradio_api/" in r.url else None)
    rng = np.random.default_rng(7)
    checked = 0
    for layer in layers[:1] + layers[-1:] if len(layers) > 1 else layers:
        open_layer(page, layer)
        api_calls.clear()  # opening a layer may ask for its inputs, pointing never
        for fx, fy in rng.uniform(0.03, 0.97, (6, 2)):
            row, pointer, size = hover_to(page, canvas, fx, fy)
            assert row["layer"] == layer
            # the photo pixel under the pointer, by the display scale
            assert abs(row["x"] - pointer[0] * 300 / size[0]) <= 1
            assert abs(row["y"] - pointer[1] * 200 / size[1]) <= 1
            calls_before = len(api_calls)
            _, numbers = client.predict(layer, "", row["x"], row["y"], 0.5, "jet", api_name="/affinity")
            del api_calls[calls_before:]  # the client's calls are not the page's
            want = np.asarray(numbers["row"], np.float64).ravel()
            assert row["cell"] == numbers["cell"] and row["grid"] == numbers["grid"]
            assert np.abs(np.asarray(row["row"]) - want).max() <= 2e-3 * want.max(), (layer, row["cell"])
            assert abs(row["queryDependence"] - numbers["query_dependence"]) <= 1e-3
            # the outline drawn on the canvas is the query cell, and holds the pointer
            mx0, my0, mx1, my1 = page.evaluate(MARKER_BOX)
            scale = size[0] / 300
            bx0, by0, bx1, by1 = (v * scale for v in numbers["cell_box"])
            assert abs(mx0 - bx0) <= 2 and abs(my0 - by0) <= 2
            assert abs(mx1 - (bx1 - 1)) <= 2 and abs(my1 - (by1 - 1)) <= 2
            if row["x"] == int(row["x"]) and numbers["cell_box"][0] <= row["x"] < numbers["cell_box"][2]:
                assert mx0 - 1 <= pointer[0] <= mx1 + 1 and my0 - 1 <= pointer[1] <= my1 + 1
            checked += 1
    assert checked >= 6
    assert not api_calls, f"hovering sent requests: {api_calls[:3]}"
    page.screenshot(path=os.path.join(artifacts, f"hover_{model}.png"))


def test_arrow_keys_move_one_cell_and_a_click_pins_the_query(server_url, page, tmp_path):
    photo = make_photo(tmp_path, 300, 200)
    analyse(page, server_url, photo, "tiny_nl")
    canvas = open_hover(page)
    row, _, _ = hover_to(page, canvas, 0.5, 0.5)
    w = row["grid"][1]
    for key, step in (("ArrowRight", 1), ("ArrowDown", w), ("ArrowLeft", -1), ("ArrowUp", -w)):
        before = page.evaluate("window.visattn.drawn")
        canvas.press(key)
        page.wait_for_function("n => window.visattn.drawn > n", arg=before)
        moved = page.evaluate("window.visattn.lastRow")
        assert moved["cell"] == row["cell"] + step, key
        row = moved
    pinned, _, _ = hover_to(page, canvas, 0.35, 0.45)
    page.mouse.down()  # a click where the pointer is
    page.mouse.up()
    expect(page.locator("#nl-info")).to_contain_text(f"pixel ({pinned['x']}, {pinned['y']})",
                                                     timeout=20_000)
    meta = exported_meta(page)
    assert [(q["x"], q["y"]) for q in meta["queries"]] == [(pinned["x"], pinned["y"])]


def exported_meta(page) -> dict:
    """Build the export in the page, download it, and read its meta.json."""
    page.get_by_role("tab", name="Export").click()
    page.locator("#export-go").click()
    link = page.locator("#export-file a").first
    expect(link).to_be_visible(timeout=30_000)
    data = page.request.get(link.get_attribute("href")).body()
    return json.loads(zipfile.ZipFile(io.BytesIO(data)).read("meta.json"))


def test_switching_models_and_a_broken_file(server_url, page, tmp_path):
    photo = make_photo(tmp_path)
    analyse(page, server_url, photo, "tiny_cbam")
    expect(page.locator("#summary")).to_contain_text("tiny_cbam")
    page.get_by_role("tab", name="Non-local").click()  # no pairwise layer: a sentence says so
    expect(page.locator("#nl-hover")).to_contain_text("no pairwise", timeout=20_000)
    page.locator("#model input").click()
    page.get_by_role("option", name="SE · tiny_se —").click()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("tiny_se", timeout=60_000)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this JPEG stops here")
    page.locator("#photo input[type=file]").set_input_files(str(bad))
    page.locator("#analyse").click()
    expect(page.get_by_text(re.compile("truncated or corrupt|not an image|cannot")).first
           ).to_be_visible(timeout=20_000)


def test_two_browser_contexts_keep_their_own_state(server_url, browser, tmp_path):
    pages = []
    for size, model in (((300, 200), "tiny_nl"), ((200, 320), "tiny_nl")):
        ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = ctx.new_page()
        analyse(page, server_url, make_photo(tmp_path, *size, name=f"{size[0]}.png"), model)
        pages.append((ctx, page, size))
    for ctx, page, (w, h) in pages:  # each still answers about its own photo
        expect(page.locator("#summary")).to_contain_text(f"{w}×{h}")
        canvas = open_hover(page)
        row, _, _ = hover_to(page, canvas, 0.999, 0.999)
        assert (row["x"], row["y"]) == (w - 1, h - 1)
        ctx.close()


def test_a_layer_the_page_cannot_compute_is_drawn_by_the_server_on_click(server_url, page, tmp_path,
                                                                         monkeypatch):
    from visattn import hover
    monkeypatch.setattr(hover, "_kind", lambda rec: None)  # as for a record kind added later
    analyse(page, server_url, make_photo(tmp_path, 300, 200), "tiny_nl")
    page.get_by_role("tab", name="Non-local").click()
    expect(page.locator("#nl-hover .va-msg")).to_contain_text("not computed in the page",
                                                              timeout=20_000)
    canvas = page.locator("#nl-hover canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    expect(page.locator("#nl-view img")).to_be_visible(timeout=20_000)
    expect(page.locator("#nl-info")).to_contain_text("Pinned queries")


def test_layers_are_sent_when_opened_once_each(server_url, page, tmp_path):
    """BoTNet: the first message holds the first layer's inputs only; opening another asks
    the server once (the rows then equal the server's), opening it again asks nothing."""
    photo = make_photo(tmp_path, 300, 200)
    analyse(page, server_url, photo, "botnet26t_256", pretrained=False)
    messages = []
    page.on("request", lambda r: messages.append(r.post_data or "") if "/queue/join" in r.url else None)
    canvas = open_hover(page)
    layers = page.evaluate("Array.from(document.querySelectorAll('#nl-hover .va-layer option'), o => o.value)")
    assert len(layers) == 3
    pending = page.evaluate("Object.values(window.visattn.view.model.layers).filter(L => L.pending).map(L => L.key)")
    assert pending == layers[1:]  # described, inputs not sent
    client = client_for(server_url, tmp_path, photo, "botnet26t_256", False)
    asks = lambda: [m for m in messages if '"keys"' in m and '"analysis"' in m]  # noqa: E731
    before = len(asks())
    for layer in layers[1:] + layers:  # each layer opened, then all of them again
        open_layer(page, layer)
        row, _, _ = hover_to(page, canvas, 0.3, 0.6)
        _, numbers = client.predict(layer, "", row["x"], row["y"], 0.5, "jet", api_name="/affinity")
        want = np.asarray(numbers["row"], np.float64).ravel()
        assert np.abs(np.asarray(row["row"]) - want).max() <= 2e-3 * want.max()
    assert len(asks()) - before == 2, asks()  # one request per layer not sent first
    assert page.evaluate("window.visattn.view.model.layers") and not page.evaluate(
        "Object.values(window.visattn.view.model.layers).some(L => L.pending)")
