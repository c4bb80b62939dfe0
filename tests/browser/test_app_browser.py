"""The minimal page in headless Chromium: upload, analyse, see one thumbnail per map."""
import os

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

import visattn

pytestmark = pytest.mark.browser


def test_upload_analyse_and_see_the_gallery(server_url, page, tmp_path, artifacts):
    rgb = np.zeros((300, 450, 3), np.uint8)
    rgb[:, :150] = (220, 30, 30)
    rgb[:, 150:300] = (30, 200, 40)
    rgb[:, 300:] = (40, 60, 230)
    path = tmp_path / "flags.png"
    Image.fromarray(rgb).save(path)
    expected = len(visattn.analyze(rgb, "cbam_resnet50"))

    page.goto(server_url)
    page.locator("#photo input[type=file]").set_input_files(str(path))
    page.locator("#model input").click()
    page.get_by_role("option", name="CBAM · cbam_resnet50").click()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("maps captured", timeout=60_000)
    expect(page.locator("#summary")).to_contain_text(f"{expected} maps")
    thumbs = page.locator("#maps img")
    expect(thumbs).to_have_count(expected, timeout=30_000)
    expect(page.locator("#top5")).to_contain_text("%")
    page.screenshot(path=os.path.join(artifacts, "minimal_page.png"), full_page=True)
