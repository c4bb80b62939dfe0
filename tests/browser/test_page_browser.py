"""The page as a whole (issue 15): style controls reach the views without running a network,
the signature view fits a laptop screen, errors leave no debris, the export follows the
analysis, and typed slider values apply."""
import re

import pytest
from playwright.sync_api import expect

from visattn import zoo

from test_nonlocal_browser import analyse, exported_meta, make_photo, open_hover

pytestmark = pytest.mark.browser


def count_forwards(model_name):
    """A forward hook on the app's own cached model object (the server runs in this process)."""
    calls = []
    handle = zoo.load(model_name).register_forward_hook(lambda m, a, o: calls.append(1))
    return calls, handle


def test_colour_map_repaints_views_without_running_the_network(server_url, page, tmp_path):
    analyse(page, server_url, make_photo(tmp_path), "tiny_nl")
    open_hover(page)
    calls, handle = count_forwards("tiny_nl")
    try:
        drawn = page.evaluate("window.visattn.drawn")
        page.locator("#cmap label").filter(has_text="viridis").click()
        page.wait_for_function("n => window.visattn.drawn > n && window.visattn.view.cmap === 'viridis'",
                               arg=drawn)
        page.get_by_role("tab", name="Overview").click()
        first = page.locator("#maps img").first
        expect(first).to_be_visible()
        before = first.get_attribute("src")
        page.locator("#cmap label").filter(has_text="inferno").click()
        page.wait_for_function("old => document.querySelector('#maps img').src !== old", arg=before)
        assert calls == []  # both redrawn from what the session kept
    finally:
        handle.remove()


def test_the_nonlocal_view_fits_a_laptop_screen(server_url, browser, tmp_path):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    analyse(page, server_url, make_photo(tmp_path, 640, 480), "tiny_nl")
    open_hover(page)
    page.evaluate("document.querySelector('[role=tablist]').scrollIntoView()")
    for part in ("canvas", ".va-bar", ".va-numbers", ".va-layer"):
        box = page.locator(f"#nl-hover {part}").bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 800 and box["x"] + box["width"] <= 1280, part
    ctx.close()


def test_an_error_then_a_good_analysis_leaves_no_error_badge(server_url, page, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this JPEG stops here")
    analyse(page, server_url, make_photo(tmp_path), "tiny_se")
    page.locator("#photo input[type=file]").set_input_files(str(bad))
    page.locator("#analyse").click()
    expect(page.get_by_text(re.compile("truncated or corrupt|not an image|cannot")).first).to_be_visible(
        timeout=20_000)
    expect(page.locator("#summary")).not_to_contain_text("tiny_se on a")  # the stale summary is gone
    page.locator("#photo input[type=file]").set_input_files(str(make_photo(tmp_path, 120, 90, "ok.png")))
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("120×90", timeout=60_000)
    for part in ("#model", "#summary", "#top5", "#maps"):
        expect(page.locator(part).get_by_text("Error", exact=True)).to_have_count(0)


def test_export_after_a_second_analysis_holds_the_second_photo(server_url, page, tmp_path):
    def exported(expect_size):
        assert exported_meta(page)["geometry"]["image_size"] == list(expect_size)

    analyse(page, server_url, make_photo(tmp_path, 300, 200, "a.png"), "tiny_nl")
    exported((300, 200))
    page.locator("#photo input[type=file]").set_input_files(str(make_photo(tmp_path, 200, 320, "b.png")))
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("200×320", timeout=60_000)
    expect(page.locator("#export-file a")).to_have_count(0)  # the first photo's zip is gone
    exported((200, 320))


def test_a_typed_opacity_applies_on_enter(server_url, page, tmp_path):
    analyse(page, server_url, make_photo(tmp_path), "tiny_cbam")
    page.get_by_role("tab", name="Spatial").click()
    view = page.locator("#sp-view img")
    expect(view).to_be_visible(timeout=20_000)
    before = view.get_attribute("src")
    box = page.locator("#alpha input[type=number]")
    box.fill("0.8")
    box.press("Enter")
    page.wait_for_function("old => document.querySelector('#sp-view img').src !== old", arg=before,
                           timeout=10_000)
