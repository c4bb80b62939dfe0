"""The hover view's JavaScript (visattn/static/hover.js) against the Python it mirrors, run in
Chromium on random records of every pairwise kind: rows, Geometry, query dependence and the
drawn overlay itself."""
import base64
import io

import numpy as np
import pytest
from PIL import Image

from visattn import metrics, hover, render
from visattn.geometry import Geometry
from visattn.records import Affinity

from pairwise_records import random_trace

pytestmark = pytest.mark.browser


@pytest.fixture
def js_page(page):
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=hover.script())
    return page


ROWS = """([p, key, head, cells]) => { const m = VisAttnHover.loadPayload(p); const L = m.layers[key];
  return cells.map(i => { const row = VisAttnHover.rowOf(m, L, i, head);
    return [Array.from(row), VisAttnHover.queryDependence(m, L, i, head, row)]; }); }"""


@pytest.mark.parametrize("float16", [False, True])
def test_rows_and_query_dependence_match_python(js_page, float16):
    trace = random_trace()
    data = hover.payload(trace, max_float32_bytes=0 if float16 else 10 ** 9)
    cells = [0, 17, 50, 98]
    tol = 2e-3 if float16 else 1e-6
    kinds = set()
    for rec in trace:
        kinds.add(data["layers"][[l["key"] for l in data["layers"]].index(rec.key)]["kind"])
        for head in [None] + (list(range(rec.heads)) if rec.heads > 1 else []):
            got = js_page.evaluate(ROWS, [data, rec.key, head, cells])
            for cell, (row, score) in zip(cells, got):
                want = rec.row(cell, head).ravel()
                assert np.abs(np.array(row) - want).max() <= tol * want.max(), (rec.key, head, cell)
                assert abs(score - metrics.query_dependence(rec, cell, head)) <= 1e-3
    assert kinds == {"affinity", "crisscross", "twohop", "distribute"}


@pytest.mark.parametrize("geometry, grid", [
    (Geometry.center_crop((230, 150), 160, (144, 176)), (9, 11)),   # strided, cropped
    (Geometry.center_crop((230, 150), 160, (144, 176)), (7, 13)),   # uniform tiling
    (Geometry.keep_ratio((333, 517), 64, 256), (8, 5)),             # keep-ratio, ceil grid
    (Geometry.keep_ratio((37, 1000), 64, 512), (63, 3)),            # thin strip
])
def test_geometry_matches_python(js_page, geometry, grid):
    w0, h0 = geometry.image_size
    rng = np.random.default_rng(1)
    pixels = [(int(x), int(y)) for x, y in zip(rng.integers(0, w0, 300), rng.integers(0, h0, 300))]
    pixels += [(0, 0), (w0 - 1, h0 - 1), (w0 // 2, 0)]
    cells = list(range(grid[0] * grid[1]))
    got = js_page.evaluate(
        """([g, grid, pixels, cells]) => { const geo = new VisAttnHover.Geometry(g);
           return [pixels.map(([x, y]) => [geo.toGrid(x, y, grid, false), geo.toGrid(x, y, grid, true)]),
                   cells.map(c => geo.cellBox(c, grid))]; }""",
        [hover.payload(random_trace(geometry=geometry, grid=grid, photo=(w0, h0)))["geometry"],
         list(grid), pixels, cells])
    assert got[0] == [[geometry.to_grid(x, y, grid), geometry.to_grid(x, y, grid, clamp=True)]
                      for x, y in pixels]
    assert got[1] == [list(geometry.cell_box(c, grid)) for c in cells]


PAINT = """async ([p, key, head, cell, alpha, cmap, fromZero]) => {
  const m = VisAttnHover.loadPayload(p); const L = m.layers[key];
  const photo = await VisAttnHover.decodePhoto(p.photo);
  const painter = new VisAttnHover.Painter(m, photo);
  const out = new ImageData(p.photo.width, p.photo.height);
  painter.paint(VisAttnHover.rowOf(m, L, cell, head), L.grid, alpha, m.luts[cmap], out, fromZero);
  painter.box(m.geometry.cellBox(cell, L.grid), out, p.marker);
  const canvas = document.createElement("canvas");
  canvas.width = out.width; canvas.height = out.height;
  canvas.getContext("2d").putImageData(out, 0, 0);
  return canvas.toDataURL("image/png"); }"""


def png_pixels(data_url: str) -> np.ndarray:
    png = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)


@pytest.mark.parametrize("photo, cmap, alpha, from_zero", [
    ((230, 150), "jet", 0.5, False), ((900, 700), "viridis", 0.35, False),
    ((120, 300), "turbo", 0.8, False), ((230, 150), "inferno", 0.6, True)])
def test_drawn_overlay_is_the_servers(js_page, photo, cmap, alpha, from_zero):
    """The page's pixels against render.affinity_view (the /affinity image, without its
    colour bar): same upsampling, lookup table, blend, darkened crop and outline."""
    trace = random_trace(seed=2, photo=photo, geometry=Geometry.center_crop(photo, 160, (144, 176)))
    data = hover.payload(trace, max_float32_bytes=10 ** 9, exact_photo=True)  # the same photo
    for rec, head, cell in [(trace.records[0], None, 40), (trace.records[2], 1, 12),
                            (trace.records[6], None, 60)]:
        want = render.affinity_view(trace, rec, cell, head, alpha=alpha, cmap=cmap,
                                    from_zero=from_zero)
        h = data["photo"]["height"]
        got = png_pixels(js_page.evaluate(PAINT, [data, rec.key, head, cell, alpha, cmap, from_zero]))
        diff = np.abs(got - want[:h].astype(np.int16))
        assert diff.max() <= 2, (rec.key, diff.max())
        assert (diff > 0).mean() < 0.01, (rec.key, (diff > 0).mean())


def test_unmirrored_kind_falls_back_to_the_server():
    class Custom(Affinity):  # a record kind the page has no row function for
        pass

    trace = random_trace()
    rec = trace.records[0]
    custom = Custom(queries=rec.queries, keys=rec.keys, scale=rec.scale, layer="x", family="t",
                    name="custom", grid=rec.grid)
    layer = hover.layer_payload(custom)
    assert layer["kind"] == "server" and "server" in layer["reason"] and "arrays" not in layer


def test_a_dnl_unary_map_is_drawn_beside_the_rows(js_page):
    """A disentangled Non-local block's unary map travels with its rows and is drawn, like
    the Spatial tab draws it, in the side panel."""
    from visattn.records import SpatialMap
    trace = random_trace(seed=3)
    rec = trace.records[0]
    unary = np.random.default_rng(5).dirichlet(np.ones(rec.grid[0] * rec.grid[1]))
    trace.records.append(SpatialMap(values=unary.reshape(rec.grid).astype(np.float32),
                                    value_kind="probability", layer=rec.layer, family="test",
                                    name="unary map", grid=rec.grid))
    data = hover.payload(trace, alpha=0.4, cmap="inferno")
    assert "beside" in data["layers"][0] and all("beside" not in l for l in data["layers"][1:])
    js_page.set_content(f"<html><body>{hover.asset('hover.html')}</body></html>")
    js_page.add_script_tag(content=hover.script())
    js_page.evaluate("p => VisAttnHover.mountStandalone(document.querySelector('.va-hover'), p)", data)
    js_page.wait_for_function("() => window.visattn.lastRow && document.querySelector('.va-beside img').src")
    assert js_page.locator(".va-beside").is_visible()
    got = png_pixels(js_page.evaluate("document.querySelector('.va-beside img').src"))
    want = render.map_on_image(trace, trace.records[-1].values, alpha=0.4, cmap="inferno", enlarge=True)
    assert np.abs(got - want.astype(np.int16)).max() <= 2
    js_page.locator(".va-layer").select_option(trace.records[1].key)  # a layer without one
    assert not js_page.locator(".va-beside").is_visible()


def mount(js_page, data):
    js_page.set_content(f"<html><body>{hover.asset('hover.html')}</body></html>")
    js_page.add_script_tag(content=hover.script())
    js_page.evaluate("p => { window.visattn = {}; VisAttnHover.mountStandalone(document.querySelector('.va-hover'), p); }",
                     data)


def test_a_newer_payload_is_refused_with_a_sentence(js_page):
    data = hover.payload(random_trace(seed=6))
    newer = dict(data, version=data["version"] + 1)
    mount(js_page, newer)
    js_page.evaluate("() => window.visattn.ready")
    expect_text = (f"This view was made by a newer VisAttn (payload version {data['version'] + 1}); "
                   f"this page understands up to {data['version']}.")
    msg = js_page.locator(".va-msg")
    assert msg.is_visible() and expect_text in msg.inner_text()
    assert js_page.evaluate("[window.visattn.lastRow, document.querySelector('.va-canvas').width]") == [None, 0]
    js_page.evaluate("p => window.visattn.view.setPayload(p)", data)  # its own version: drawn
    js_page.wait_for_function("() => window.visattn.lastRow")
    assert expect_text not in msg.inner_text()


def test_the_view_starts_at_the_centre_and_keys_step_to_cell_centres(js_page):
    """The first query is the middle cell's centre pixel, arrow keys go to the next cell's
    centre pixel (Geometry.cell_centre), and the info text says where the row peaks and
    whether it is nearly uniform."""
    trace = random_trace(seed=7, photo=(352, 288),  # cells 16 photo pixels wide: a middle
                         geometry=Geometry.center_crop((352, 288), 288, (144, 176)))  # to choose
    rec = trace.records[0]
    (h, w), n, geo = rec.grid, rec.grid[0] * rec.grid[1], trace.geometry
    flat = Affinity(queries=np.zeros_like(rec.queries), keys=rec.keys, scale=1.0, layer="flat",
                    family="test", name="affinity", grid=rec.grid)  # every row uniform
    trace.records.insert(1, flat)
    mount(js_page, hover.payload(trace))
    js_page.wait_for_function("() => window.visattn.lastRow")
    last = js_page.evaluate("window.visattn.lastRow")
    centre = (h // 2) * w + w // 2
    assert last["cell"] == centre and (last["x"], last["y"]) == geo.cell_centre(centre, rec.grid)
    for key, step in (("ArrowRight", 1), ("ArrowDown", w), ("ArrowLeft", -1)):
        before = js_page.evaluate("window.visattn.drawn")
        js_page.locator(".va-canvas").press(key)
        js_page.wait_for_function("n => window.visattn.drawn > n", arg=before)
        moved = js_page.evaluate("window.visattn.lastRow")
        assert moved["cell"] == last["cell"] + step, key
        assert (moved["x"], moved["y"]) == geo.cell_centre(moved["cell"], rec.grid), key
        last = moved
    info = js_page.locator(".va-numbers").inner_text()
    best = int(np.argmax(rec.row(last["cell"])))
    r, c = divmod(last["cell"], w)
    assert f"cell (row {r}, col {c}) of the {h}×{w} grid" in info
    assert "around pixel ({}, {})".format(*geo.cell_centre(best, rec.grid)) in info
    assert "nearly uniform" not in info
    js_page.locator(".va-layer").select_option(flat.key)
    js_page.wait_for_function("k => window.visattn.lastRow.layer === k", arg=flat.key)
    assert "The row is nearly uniform (spread under 1 % of its maximum)" in \
        js_page.locator(".va-numbers").inner_text()
    assert n == len(js_page.evaluate("window.visattn.lastRow.row"))
