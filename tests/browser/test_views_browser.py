"""Views that must not mislead (issue 20, item 4), in Chromium: DANet's channel affinity on
the Channel tab (random weights, small input) is its own matrix, and the tab shows no
empty image box."""
import os

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from visattn import zoo

pytestmark = pytest.mark.browser

NO_EMPTY_BOX = """() => [...document.querySelectorAll('#ch-chart, #ch-matrix, #ch-tiles')]
    .filter(el => el.offsetParent !== null)
    .map(el => [el.id, [...el.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length])"""


def test_danet_channel_tab_draws_the_channel_affinity_and_no_empty_box(server_url, page, tmp_path,
                                                                       artifacts):
    rgb = np.zeros((90, 120, 3), np.uint8)
    rgb[:, :60] = (200, 40, 40)
    rgb[:, 60:] = (40, 90, 210)
    path = tmp_path / "two.png"
    Image.fromarray(rgb).save(path)
    page.goto(server_url)
    page.locator("#photo input[type=file]").set_input_files(str(path))
    page.locator("#model input").click()
    page.get_by_role("option", name=f"{zoo.get('danet_r50_d8_ade20k').family} · "
                                    "danet_r50_d8_ade20k —").click()
    page.locator("#pretrained input").uncheck()
    page.get_by_label("256 px (faster, approximate)").check()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("maps captured", timeout=120_000)
    page.get_by_role("tab", name="Channel").click()
    expect(page.locator("#ch-note")).to_contain_text("Strongest pairs", timeout=30_000)
    expect(page.locator("#ch-note")).to_contain_text("channel × channel affinity")
    chart = page.locator("#ch-chart img")
    expect(chart).to_be_visible()
    page.wait_for_function("() => { const i = document.querySelector('#ch-chart img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
    expect(page.locator("#ch-matrix")).to_be_hidden()
    expect(page.locator("#ch-tiles")).to_be_hidden()
    shown = page.evaluate(NO_EMPTY_BOX)
    assert shown == [["ch-chart", 1]], shown  # every box on show holds a picture
    expect(page.locator("#ch-chart")).to_contain_text("Channel affinity")
    picture = np.asarray(Image.open(__import__("io").BytesIO(
        page.request.get(chart.get_attribute("src")).body())).convert("RGB")).astype(int)
    h, w, _ = picture.shape
    matrix = picture[h // 5: 4 * h // 5, w // 10: w // 2]  # inside the matrix's axes
    bins = np.unique(matrix.reshape(-1, 3) // 32, axis=0, return_counts=True)[1]
    Image.fromarray(picture.astype(np.uint8)).save(os.path.join(artifacts, "danet_chart.png"))
    assert bins.max() < 0.5 * bins.sum() and len(bins) >= 8  # colours spread, not one flat tone
    page.screenshot(path=os.path.join(artifacts, "danet_channel_affinity.png"), full_page=True)


LABEL_OVER_PICTURE = """(id) => { const box = document.getElementById(id);
    const label = box.querySelector('[data-testid=block-label]'), img = box.querySelector('img');
    return label.getBoundingClientRect().bottom - img.getBoundingClientRect().top; }"""


def test_a_charts_label_sits_above_its_title_on_a_narrow_screen(server_url, browser, tmp_path):
    """The Channel chart's title is at the top of the picture: the box's label badge must not
    cover it (it did at 700 px wide, where the chart is narrower than the badge's margin)."""
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((64, 64, 3), (200, 90, 30), np.uint8)).save(path)
    page = browser.new_page(viewport={"width": 700, "height": 900})
    try:
        page.goto(server_url)
        page.locator("#photo input[type=file]").set_input_files(str(path))
        page.locator("#model input").click()
        page.get_by_role("option", name="· tiny_se —").click()
        page.locator("#analyse").click()
        expect(page.locator("#summary")).to_contain_text("maps captured", timeout=60_000)
        page.get_by_role("tab", name="Channel").click()
        expect(page.locator("#ch-chart img")).to_be_visible(timeout=30_000)
        assert page.evaluate(LABEL_OVER_PICTURE, "ch-chart") <= 0
    finally:
        page.close()
