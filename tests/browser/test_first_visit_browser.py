"""The first visit (issue 20): the signature view in one screen after Analyse, the hover view
under a finger, a network switched during a run, keyboard and screen-reader names, and the
small things a newcomer hit. Photos are made here (helpers.random_photo)."""
import io
import json
import re
import zipfile

import pytest
from PIL import Image
from playwright.sync_api import expect

from helpers import random_photo
from visattn import zoo

pytestmark = pytest.mark.browser


def photo(tmp_path, w=400, h=300, seed=0, name="photo.png"):
    path = tmp_path / name
    Image.fromarray(random_photo(h, w, seed)).save(path)
    return path


def choose(page, model):
    page.locator("#model input").click()
    page.get_by_role("option", name=f"{zoo.get(model).family} · {model} —").click()


def analyse(page, url, path, model):
    page.goto(url)
    page.locator("#photo input[type=file]").set_input_files(str(path))
    choose(page, model)
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text(f"{model} on a", timeout=90_000)


def shown(page):
    """Wait until the page has drawn the open view after Analyse and brought it into view."""
    page.wait_for_function("() => window.visattnPage && window.visattnPage.shown", timeout=30_000)
    return page.evaluate("window.visattnPage.shown")


def inside(box, w, h):
    return box and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= w \
        and box["y"] + box["height"] <= h


def test_after_analyse_the_signature_view_is_inside_a_laptop_screen(server_url, browser, tmp_path,
                                                                    artifacts):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    analyse(page, server_url, photo(tmp_path), "tiny_nl")
    assert shown(page)["tab"] == "nonlocal"
    canvas = page.locator("#nl-hover canvas")
    box = canvas.bounding_box()
    page.screenshot(path=f"{artifacts}/first_visit_1280_nonlocal.png")
    assert inside(box, 1280, 800), box
    y = page.evaluate("scrollY")
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)  # no scrolling
    page.wait_for_function("() => window.visattn.lastRow && window.visattn.lastRow.x < 200")
    assert page.evaluate("scrollY") == y
    # a network without pairwise layers: its Overview, in view
    choose(page, "tiny_se")
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("tiny_se on a", timeout=60_000)
    page.wait_for_function("() => window.visattnPage.shown && window.visattnPage.shown.tab === 'overview'",
                           timeout=30_000)
    first = page.locator("#maps img").first
    assert inside(first.bounding_box(), 1280, 800)
    page.screenshot(path=f"{artifacts}/first_visit_1280_overview.png")
    ctx.close()


def touch(cdp, kind, x, y):
    points = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1}]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})


def test_a_finger_drag_moves_the_query_not_the_page_and_pins_nothing(server_url, browser, tmp_path,
                                                                      artifacts):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                              device_scale_factor=2)
    page = ctx.new_page()
    analyse(page, server_url, photo(tmp_path, 640, 480), "tiny_nl")
    shown(page)
    canvas = page.locator("#nl-hover canvas")
    box = canvas.bounding_box()
    assert page.evaluate("getComputedStyle(document.querySelector('#nl-hover canvas')).touchAction") == "none"
    assert inside(box, 390, 844), box
    page.screenshot(path=f"{artifacts}/first_visit_390_nonlocal.png")
    y0 = page.evaluate("scrollY")
    cdp = ctx.new_cdp_session(page)
    cells = set()
    x0, y = box["x"] + 0.1 * box["width"], box["y"] + 0.5 * box["height"]
    touch(cdp, "touchStart", x0, y)
    for k in range(1, 21):
        touch(cdp, "touchMove", x0 + k * 0.04 * box["width"], y - k * 0.01 * box["height"])
        page.wait_for_timeout(20)
        cells.add(page.evaluate("window.visattn.lastRow.cell"))
    touch(cdp, "touchEnd", 0, 0)
    assert len(cells) >= 3, cells
    assert page.evaluate("scrollY") == y0
    # a tap moves the query too, and pins nothing
    before = page.evaluate("window.visattn.lastRow.cell")
    page.touchscreen.tap(box["x"] + 0.85 * box["width"], box["y"] + 0.85 * box["height"])
    page.wait_for_function("c => window.visattn.lastRow.cell !== c", arg=before)
    page.wait_for_timeout(400)
    assert page.locator("#nl-hover .va-pin-mark").count() == 0
    expect(page.locator("#nl-info")).not_to_contain_text("Pinned queries")
    # pinning is explicit: the Pin button, which leaves a mark
    page.locator("#nl-hover .va-pin").tap()
    expect(page.locator("#nl-hover .va-pin-mark")).to_have_count(1)
    expect(page.locator("#nl-info")).to_contain_text("Pinned queries", timeout=10_000)
    page.screenshot(path=f"{artifacts}/first_visit_390_pinned.png")
    ctx.close()


def test_network_list_closes_on_escape_and_blur(server_url, page):
    page.goto(server_url)
    options = page.locator("#model .options")
    page.locator("#model input").click()
    expect(options).to_be_visible()
    page.keyboard.press("Escape")
    expect(options).to_be_hidden()
    page.keyboard.press("ArrowDown")  # still the picker: the list opens again
    expect(options).to_be_visible()
    page.keyboard.press("Tab")
    expect(options).to_be_hidden()
    page.locator("#model input").click()
    expect(options).to_be_visible()
    page.locator("h1").click()
    expect(options).to_be_hidden()
    choose(page, "tiny_se")  # a click on an option still chooses it
    expect(page.locator("#model input")).to_have_value(re.compile("tiny_se"))


def test_names_alt_texts_and_analyse_within_ten_tab_stops(server_url, page, tmp_path):
    page.goto(server_url)
    page.wait_for_selector("#analyse")
    examples = page.locator("button[data-va-roving]")
    expect(examples.first).to_have_attribute("aria-label", re.compile("Example photo 1: "))
    names = examples.evaluate_all("bs => bs.map(b => b.getAttribute('aria-label'))")
    assert len(names) >= 13 and all(n and len(n) > 15 for n in names)
    page.mouse.click(5, 5)
    for stop in range(1, 11):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "analyse":
            break
    else:
        raise AssertionError("Analyse is not within 10 Tab stops")
    page.keyboard.press("Enter")  # the start photo, the start network
    expect(page.locator("#summary")).to_contain_text(re.compile(r"maps? captured"), timeout=60_000)
    page.get_by_role("tab", name="Overview").click()
    expect(page.locator("#maps img").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(300)
    alts = page.locator("#maps img, #photo img").evaluate_all("is => is.map(i => i.alt)")
    assert alts and all(a.strip() for a in alts), alts


def test_a_network_chosen_during_a_run_is_queued_said_and_analysed(server_url, page, tmp_path):
    page.goto(server_url)
    page.locator("#photo input[type=file]").set_input_files(str(photo(tmp_path)))
    choose(page, "nonlocal_r50_d8_ade20k")  # seconds on a CPU: time to choose another
    page.locator("#seg-size label").filter(has_text=re.compile(r"^\s*256")).first.click()
    page.locator("#analyse").click()
    expect(page.locator("#analyse")).to_be_visible()
    page.wait_for_timeout(500)
    choose(page, "tiny_se")
    expect(page.locator("#queue-note")).to_contain_text("tiny_se is queued", timeout=10_000)
    # the first analysis ends (its summary may show only briefly: the queued one follows at
    # once), then the queued network is analysed and the picker shows it
    expect(page.locator("#summary")).to_contain_text("tiny_se on a", timeout=180_000)
    expect(page.locator("#model input")).to_have_value(re.compile("tiny_se"))
    expect(page.locator("#queue-note")).not_to_contain_text("queued")
    page.get_by_role("tab", name="Overview").click()
    expect(page.locator("#maps")).to_contain_text("channel gate", timeout=30_000)


def test_small_things(server_url, page, tmp_path):
    page.goto(server_url)
    expect(page.locator("#start-note")).to_be_visible()
    choose(page, "tiny_se")
    expect(page.locator("#start-note")).to_be_hidden()
    expect(page.locator("#seg-size")).to_be_hidden()  # a classifier
    choose(page, "nonlocal_r50_d8_ade20k")
    expect(page.locator("#seg-size")).to_be_visible()
    # a network without pairwise layers: the Non-local tab says so, in plain words, no selects
    analyse(page, server_url, photo(tmp_path), "tiny_se")
    page.get_by_role("tab", name="Non-local").click()
    msg = page.locator("#nl-hover .va-msg")
    expect(msg).to_contain_text("no pairwise")
    assert "`" not in msg.inner_text()
    expect(page.locator("#nl-hover .va-layer")).to_be_hidden()
    expect(page.locator("#nl-hover canvas")).to_be_hidden()
    page.get_by_role("tab", name="Export").click()
    expect(page.locator("#export-text")).to_contain_text("No viewer.html")
    # a network with pairwise layers: the only head, distinct colour-bar ends, a pin's mark
    analyse(page, server_url, photo(tmp_path, seed=3, name="p3.png"), "tiny_nl")
    shown(page)
    lo, hi = page.locator("#nl-hover .va-lo").inner_text(), page.locator("#nl-hover .va-hi").inner_text()
    assert lo != hi
    page.locator("#nl-hover canvas").click(position={"x": 40, "y": 40})
    expect(page.locator("#nl-hover .va-pin-mark")).to_have_count(1)
    expect(page.locator("#nl-info")).to_contain_text("the only head", timeout=10_000)
    expect(page.locator("#nl-info")).not_to_contain_text("mean of heads")
    page.get_by_role("tab", name="Export").click()
    expect(page.locator("#export-text")).to_contain_text("viewer.html")
    page.locator("#export-go").click()
    link = page.locator("#export-file a").first
    expect(link).to_be_visible(timeout=30_000)
    data = page.request.get(link.get_attribute("href")).body()
    viewer = zipfile.ZipFile(io.BytesIO(data)).read("viewer.html").decode()
    payload = json.loads(re.search(r'id="visattn-payload">(.*?)</script>', viewer, re.S)[1])
    assert len(payload["pins"]) == 1 and payload["pins"][0]["layer"] == payload["layers"][0]["key"]
