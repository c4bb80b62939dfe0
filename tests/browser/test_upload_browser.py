"""Every photo the page sends goes through VisAttn's loader: after an analysis, the photo is
removed and another file uploaded in its place (the path where a text file once gave bare
"Error" badges and a 16-bit PNG was analysed almost white). The analysed pixels are read
back from the export's arrays, not just seen to appear."""
import io
import zipfile

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from visattn import zoo
from visattn.image import load_image

pytestmark = pytest.mark.browser
MODEL = "tiny_se"


def upload(page, path):
    page.locator("#photo input[type=file]").set_input_files(str(path))


def remove_photo(page):
    page.locator("#photo button[aria-label='Remove Image']").click()
    expect(page.locator("#photo img")).to_have_count(0)


def analysed_image(page) -> np.ndarray:
    """The photo of the session's analysis, from the export zip's arrays."""
    page.get_by_role("tab", name="Export").click()
    page.locator("#export-go").click()
    link = page.locator("#export-file a").first
    expect(link).to_be_visible(timeout=30_000)
    data = page.request.get(link.get_attribute("href")).body()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return np.load(io.BytesIO(zf.read("arrays.npz")))["image"]


def test_reupload_after_remove_goes_through_the_loader(server_url, page, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((60, 90, 3), (200, 40, 40), np.uint8)).save(photo)
    letter = tmp_path / "letter.jpg"
    letter.write_text("Dear reader, this is a letter and not a photo.\n" * 20)
    grey16 = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    png16 = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(png16)

    page.goto(server_url)
    page.locator("#model input").click()
    page.get_by_role("option", name=f"{zoo.get(MODEL).family} · {MODEL} —").click()
    upload(page, photo)
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("90×60 image", timeout=60_000)

    remove_photo(page)
    upload(page, letter)
    page.locator("#analyse").click()
    expect(page.get_by_text("This file is text or HTML, not an image").first).to_be_visible(
        timeout=30_000)

    remove_photo(page)
    upload(page, png16)
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("64×48 image", timeout=60_000)
    got = analysed_image(page)
    want = load_image(png16)
    assert got.shape == want.shape == (48, 64, 3)
    np.testing.assert_array_equal(got, want)  # 16-bit scaled as the library does
    assert abs(float(got.mean()) - float(np.round(grey16 / 257).mean())) < 0.5


def test_transparent_areas_are_analysed_as_the_preview_shows_them_and_said(server_url, page,
                                                                          tmp_path):
    from visattn.image import TRANSPARENCY_NOTE
    rgba = np.zeros((60, 90, 4), np.uint8)
    rgba[..., 0] = 220
    rgba[:, :45, 3] = 255  # left half opaque red, right half fully transparent
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    page.goto(server_url)
    page.locator("#model input").click()
    page.get_by_role("option", name=f"{zoo.get(MODEL).family} · {MODEL} —").click()
    upload(page, path)
    preview = page.locator("#photo img").first
    expect(preview).to_be_visible()
    page.wait_for_function("() => document.querySelector('#photo img').complete")
    shot = np.asarray(Image.open(io.BytesIO(preview.screenshot())).convert("RGB"))
    h, w = shot.shape[:2]
    shown = shot[h // 2, int(w * 0.8)]  # a transparent pixel as the page shows it
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text(TRANSPARENCY_NOTE, timeout=60_000)
    analysed = analysed_image(page)
    assert np.abs(analysed[30, 80].astype(int) - shown.astype(int)).max() <= 2, (analysed[30, 80], shown)
    assert (analysed[30, 10] == [220, 0, 0]).all()
