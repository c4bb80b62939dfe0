"""What the visitor waits for after Analyse (issue 20, "Speed the visitor feels"): one round
trip to the server until the summary, the prediction with its heading and the open view are
drawn; the Overview's gallery made only when the Overview is open (else when it is opened);
the other tabs refreshed after that, in one more event."""
import re

import pytest
from playwright.sync_api import expect

from visattn import render

from test_first_visit_browser import choose, photo

pytestmark = pytest.mark.browser

JOINS = """() => performance.getEntriesByType('resource')  // asked for since Analyse was pressed
  .filter(e => e.name.includes('/gradio_api/queue/join') && e.startTime >= window.visattnPage.started)
  .map(e => e.startTime)"""


def analyse_and_count(page, model, path):
    """Analyse `model` on `path`; -> (the open tab, server events asked for before the open
    view was drawn, server events once the other tabs were refreshed)."""
    page.locator("#photo input[type=file]").set_input_files(str(path))
    choose(page, model)
    page.wait_for_timeout(500)  # the photo's and the picker's own events are done
    page.evaluate("performance.setResourceTimingBufferSize(2000); performance.clearResourceTimings()")
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text(f"{model} on a", timeout=90_000)
    page.wait_for_function("() => window.visattnPage.shown && !window.visattnPage.holding",
                           timeout=30_000)
    shown = page.evaluate("window.visattnPage.shown")
    joins = page.evaluate(JOINS)
    before = [t for t in joins if t <= shown["at"]]
    return shown["tab"], len(before), len(joins)


def test_one_round_trip_to_the_open_view_and_the_gallery_only_where_it_is_seen(
        server_url, page, tmp_path, monkeypatch):
    made = []
    real = render.gallery
    monkeypatch.setattr(render, "gallery", lambda *a, **k: made.append(1) or real(*a, **k))
    page.goto(server_url)

    # a network with pairwise layers: its Non-local view opens; the Overview is not drawn
    tab, before, total = analyse_and_count(page, "tiny_nl", photo(tmp_path, seed=1, name="a.png"))
    assert (tab, before, total) == ("nonlocal", 1, 2)
    assert made == []
    expect(page.locator("#maps img")).to_have_count(0)
    page.get_by_role("tab", name="Overview").click()  # drawn when opened
    expect(page.locator("#maps img").first).to_be_visible(timeout=20_000)
    assert len(made) == 1

    # a network without: its Overview opens, drawn in the same event
    tab, before, total = analyse_and_count(page, "tiny_se", photo(tmp_path, seed=2, name="b.png"))
    assert (tab, before, total) == ("overview", 1, 2)
    assert len(made) == 2
    expect(page.locator("#maps img")).to_have_count(5)

    # random weights: the heading says so in that same single event
    choose(page, "seresnet50")
    page.locator("#pretrained input").uncheck()
    tab, before, total = analyse_and_count(page, "seresnet50", photo(tmp_path, seed=3, name="c.png"))
    assert (tab, before, total) == ("overview", 1, 2)
    expect(page.locator("#top5")).to_contain_text(re.compile("random weights: meaningless"),
                                                  timeout=1)
    expect(page.locator("#top5")).to_contain_text("%")
