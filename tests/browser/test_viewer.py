"""viewer.html, the exported hover view: one file that works from disk with the network off."""
import numpy as np
import pytest
from PIL import Image

import visattn
from visattn import cli
from visattn.records import Pairwise

pytestmark = pytest.mark.browser


def test_cli_viewer_opened_from_disk_offline_shows_the_rows(browser, tmp_path):
    rng = np.random.default_rng(4)
    photo = tmp_path / "scene.png"
    Image.fromarray(rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)).save(photo)
    assert cli.main(["analyze", str(photo), "--model", "tiny_nl", "--out", str(tmp_path / "out"),
                     "--html", "--quiet"]) == 0
    viewer = tmp_path / "out" / "scene" / "viewer.html"
    trace = visattn.analyze(photo, "tiny_nl")
    rec = [r for r in trace if isinstance(r, Pairwise)][0]
    ctx = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    requests = []
    ctx.on("request", lambda r: requests.append(r.url))
    page = ctx.new_page()
    page.goto(viewer.as_uri())
    page.wait_for_function("() => window.visattn && window.visattn.lastRow", timeout=20_000)
    assert "float16" in page.locator("body").inner_text()
    canvas = page.locator("canvas")
    box = canvas.bounding_box()
    for fx, fy in rng.uniform(0.02, 0.98, (10, 2)):
        before = page.evaluate("window.visattn.drawn")
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.wait_for_function("n => window.visattn.drawn > n", arg=before)
        row = page.evaluate("window.visattn.lastRow")
        cell = trace.geometry.to_grid(row["x"], row["y"], rec.grid, clamp=True)
        want = rec.row(cell).ravel()
        assert row["cell"] == cell
        assert np.abs(np.asarray(row["row"]) - want).max() <= 2e-3 * want.max()
    page.locator(".va-cmap").select_option("viridis")  # the viewer's own colour map control
    assert page.evaluate("window.visattn.view.cmap") == "viridis"
    assert all(u.startswith(("file:", "data:")) for u in requests), requests[:3]
    ctx.close()
