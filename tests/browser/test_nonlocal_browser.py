"""The signature interaction in a real browser: click pixels on the Non-local view and check,
from the image the app sends back, that the marked query cell holds each clicked pixel."""
import io
import os
import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

import visattn
from visattn import zoo

pytestmark = pytest.mark.browser


def make_photo(tmp_path, w=300, h=200, name="photo.png"):
    rng = np.random.default_rng(w + h)
    img = np.cumsum(rng.integers(0, 6, (h, w, 3)), axis=1).clip(0, 255).astype(np.uint8)
    path = tmp_path / name
    Image.fromarray(img).save(path)
    return path


def analyse(page, url, photo, model, pretrained=True):
    page.goto(url)
    page.locator("#photo input[type=file]").set_input_files(str(photo))
    page.locator("#model input").click()
    page.get_by_role("option", name=f"{zoo.get(model).family} · {model} —").click()
    if not pretrained:
        page.locator("#pretrained input").uncheck()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text(re.compile(r"maps? captured"), timeout=60_000)


def shown_image(page, selector):
    """The <img> of a Gradio image output: (PIL image, its box on screen, natural size)."""
    img = page.locator(f"{selector} img").first
    expect(img).to_be_visible(timeout=60_000)
    page.wait_for_function(
        "s => { const i = document.querySelector(s + ' img'); return i && i.complete && i.naturalWidth > 0 }",
        arg=selector, timeout=60_000)
    src = img.get_attribute("src")
    data = page.request.get(src).body()
    return src, Image.open(io.BytesIO(data)).convert("RGB"), img


def click_original_pixel(page, img_locator, natural, original_size, x, y):
    """Click where photo pixel (x, y) is drawn: the <img> shows the natural-size picture
    scaled down to fit (object-fit: contain), photo rows first, colour bar below."""
    img_locator.scroll_into_view_if_needed()
    box = img_locator.bounding_box()
    nw, nh = natural
    scale = min(box["width"] / nw, box["height"] / nh)
    ox, oy = (box["width"] - nw * scale) / 2, (box["height"] - nh * scale) / 2
    shown_per_original = nw / original_size[0]
    sx = box["x"] + ox + (x + 0.5) * shown_per_original * scale
    sy = box["y"] + oy + (y + 0.5) * shown_per_original * scale
    page.mouse.click(sx, sy)


def marker_box(image: Image.Image):
    """Bounding box of the magenta query-cell outline in a returned view."""
    a = np.asarray(image).astype(int)
    hit = (a[..., 0] > 170) & (a[..., 2] > 170) & (a[..., 1] < 100)
    ys, xs = np.nonzero(hit)
    assert len(xs) > 8, "no query marker in the returned image"
    return xs.min(), ys.min(), xs.max(), ys.max()


@pytest.mark.parametrize("model, pretrained", [("tiny_nl", True), ("botnet26t_256", False)])
def test_clicked_pixels_are_marked_in_their_own_cell(server_url, page, tmp_path, artifacts,
                                                     model, pretrained):
    photo = make_photo(tmp_path, 300, 200)
    analyse(page, server_url, photo, model, pretrained)
    page.get_by_role("tab", name="Non-local").click()
    trace = visattn.analyze(photo, model, pretrained=pretrained)
    aff = trace.select(visattn.Affinity)[0]
    src, first, img = shown_image(page, "#nl-view")
    natural = first.size
    per_original = natural[0] / 300
    from gradio_client import Client, handle_file
    client = Client(server_url, verbose=False, analytics_enabled=False,
                    download_files=str(tmp_path / "dl"))
    client.predict(handle_file(str(photo)), model, pretrained, api_name="/analyze")
    for target in [(120, 70), (170, 140)]:  # both inside the centre crop
        click_original_pixel(page, img, natural, (300, 200), *target)
        page.wait_for_function(
            "([s, old]) => { const i = document.querySelector(s + ' img');"
            " return i && i.src !== old && i.complete && i.naturalWidth > 0 }",
            arg=["#nl-view", src])
        src, shown, img = shown_image(page, "#nl-view")
        info = page.locator("#nl-info").inner_text()
        x, y = map(int, re.search(r"Query pixel \((\d+), (\d+)\)", info).groups())
        assert abs(x - target[0]) <= 2 and abs(y - target[1]) <= 2, (info, target)
        cell = trace.geometry.to_grid(x, y, aff.grid)
        bx0, by0, bx1, by1 = trace.geometry.cell_box(cell, aff.grid)
        mx0, my0, mx1, my1 = marker_box(shown)
        # the outline drawn around the cell holds the clicked pixel, in displayed pixels
        assert mx0 - 2 <= x * per_original <= mx1 + 2 and my0 - 2 <= y * per_original <= my1 + 2
        assert abs(mx0 - bx0 * per_original) <= 3 and abs(my0 - by0 * per_original) <= 3
        assert abs(mx1 - (bx1 * per_original - 1)) <= 3 and abs(my1 - (by1 * per_original - 1)) <= 3
        # the API, given the pixel the browser click produced, answers with the same cell
        box_text = re.search(r"box \((\d+), (\d+), (\d+), (\d+)\)", info).groups()
        head = None if model == "tiny_nl" else "mean of heads"
        _, numbers = client.predict(aff.key, head or "", x, y, 0.5, "jet", api_name="/affinity")
        assert numbers["cell"] == cell and numbers["cell_box"] == [int(v) for v in box_text]
    page.screenshot(path=os.path.join(artifacts, f"nonlocal_{model}.png"), full_page=True)


def test_switching_models_and_a_broken_file(server_url, page, tmp_path):
    photo = make_photo(tmp_path)
    analyse(page, server_url, photo, "tiny_cbam")
    expect(page.locator("#summary")).to_contain_text("tiny_cbam")
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
        page.get_by_role("tab", name="Non-local").click()
        src, shown, img = shown_image(page, "#nl-view")
        click_original_pixel(page, img, shown.size, (w, h), w // 2, h // 2)
        expect(page.locator("#nl-info")).to_contain_text(f"Query pixel ({w // 2}", timeout=20_000)
        ctx.close()
