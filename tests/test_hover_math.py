"""visattn/static/hover_math.js, the hover view's arithmetic, run under Node without a page on
random inputs, against the Python it mirrors: record rows and query dependence
(visattn.records, metrics.query_dependence), Geometry (to_grid, cell_box, cell_centre),
the integer and float16 helpers, the "nearly uniform" test, and the payload version."""
import json
import os
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from visattn import metrics, hover
from visattn.geometry import Geometry

from pairwise_records import random_trace

NODE = "/usr/bin/node"
MATH = resources.files("visattn").joinpath("static", "hover_math.js")


def node(body: str, data):
    """Run `body` (a function body: M is the module, input the JSON data; it returns
    JSON-able) under Node -> what it returned."""
    if not os.path.exists(NODE):
        pytest.fail(f"{NODE} is missing: install Node.js (apt-get install nodejs)")
    program = (f"const M = require({json.dumps(str(MATH))});\n"
               "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
               f"const out = (() => {{ {body} }})();\n"
               "process.stdout.write(JSON.stringify(out));")
    done = subprocess.run([NODE, "-e", program], input=json.dumps(data), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_module_needs_no_page():
    source = MATH.read_text(encoding="utf-8")
    assert "document" not in source and "window" not in source
    assert node("return Object.keys(M).sort();", None) == sorted(
        ["PAYLOAD_VERSION", "versionProblem", "f32", "roundHalfEven", "floorDiv", "ceilDiv",
         "decode", "Geometry", "rowOf", "rowLength", "timeCell", "frameSpan", "spacetimeCell", "peak", "nearlyUniform", "jsDivergence", "loadPayload",
         "addLayers", "needs", "queryDependence", "barEnds", "enlargeNearest"])


def test_colour_bar_ends_differ_where_the_row_does():
    ends = node("return input.map(([lo, hi]) => M.barEnds(lo, hi));", [[0.00016312, 0.00016349],
                                                                       [0.1, 0.9], [2, 2]])
    assert ends == [["0.0001631", "0.0001635"], ["0.1", "0.9"], ["2", "2"]]


ROWS = """const [p, asks] = input, m = M.loadPayload(p);
  return asks.map(([key, head, cell]) => { const L = m.layers[key], row = M.rowOf(m, L, cell, head);
    return [Array.from(row), M.queryDependence(m, L, cell, head, row)]; });"""


@pytest.mark.parametrize("seed, grid, float16", [(0, (9, 11), False), (1, (6, 5), False),
                                                 (2, (7, 8), True)])
def test_rows_and_query_dependence_match_python(seed, grid, float16):
    trace = random_trace(seed, grid=grid)
    data = hover.payload(trace, max_float32_bytes=0 if float16 else 10 ** 9)
    rng = np.random.default_rng(seed)
    asks = [(rec.key, head, int(cell)) for rec in trace
            for head in [None] + (list(range(rec.heads)) if rec.heads > 1 else [])
            for cell in rng.choice(grid[0] * grid[1], 4, replace=False)]
    got = node(ROWS, [data, asks])
    tol = 2e-3 if float16 else 1e-6
    kinds = {layer["kind"] for layer in data["layers"]}
    assert kinds == {"affinity", "crisscross", "twohop", "distribute"}
    for (key, head, cell), (row, score) in zip(asks, got):
        rec = trace[key]
        want = rec.row(cell, head).ravel()
        assert np.abs(np.array(row) - want).max() <= tol * want.max(), (key, head, cell)
        assert abs(score - metrics.query_dependence(rec, cell, head)) <= (1e-3 if float16 else 1e-6)


LATER = """const [p, more, other, asks] = input, m = M.loadPayload(p);
  const before = m.order.map(k => M.needs(m, k));
  const wrong = M.addLayers(m, other);  // another analysis' answer: ignored
  const added = M.addLayers(m, more), again = M.addLayers(m, more);
  return {before, wrong, added, again, after: m.order.map(k => M.needs(m, k)),
          rows: asks.map(([key, head, cell]) => Array.from(M.rowOf(m, m.layers[key], cell, head)))};"""


def test_pending_layers_are_filled_by_a_layers_message_of_their_analysis():
    """The first message with only the first layer's inputs: every other layer needs its own
    (a two-hop its hops too); a layers message of another analysis changes nothing, the
    right one fills them once, and the rows are then the records'."""
    trace = random_trace(3, grid=(6, 7))
    keys = [l["key"] for l in hover.payload(trace)["layers"]]
    first = hover.payload(trace, inputs=hover.default_layer(trace), analysis="A")
    more = hover.layer_inputs(trace, keys, "A", sent=hover.default_layer(trace))
    other = hover.layer_inputs(trace, keys, "B")
    rng = np.random.default_rng(3)
    asks = [(rec.key, None, int(rng.integers(42))) for rec in trace]
    got = node(LATER, [first, more, other, asks])
    order = [l["key"] for l in first["layers"] if not l.get("hidden")]
    hops = {rec.key: [rec.key, rec.first.key, rec.second.key] for rec in trace if hasattr(rec, "first")}
    assert got["before"] == [[] if k == order[0] else [h for h in hops.get(k, [k])
                             if h not in hover.default_layer(trace)] for k in order]
    assert got["wrong"] == [] and got["again"] == [] and got["after"] == [[] for _ in order]
    assert sorted(got["added"]) == sorted(l["key"] for l in more["layers"])
    for (key, head, cell), row in zip(asks, got["rows"]):
        want = trace[key].row(cell, head).ravel()
        assert np.abs(np.array(row) - want).max() <= 2e-3 * want.max(), key


def random_geometries(rng, count):
    for _ in range(count):
        w0, h0 = (int(v) for v in rng.integers(8, 1500, 2))
        if rng.random() < 0.5:
            crop = tuple(int(v) for v in rng.integers(32, 300, 2))
            yield Geometry.center_crop((w0, h0), int(rng.integers(max(crop), 400)), crop)
        else:
            short = int(rng.integers(32, 600))
            yield Geometry.keep_ratio((w0, h0), short, int(rng.integers(short, 2 * short + 1)))


GEOMETRY = """return input.map(([g, grid, pixels]) => { const geo = new M.Geometry(g), n = grid[0] * grid[1];
  const cells = Array.from({length: n}, (_, c) => c);
  return [pixels.map(([x, y]) => [geo.toGrid(x, y, grid, false), geo.toGrid(x, y, grid, true)]),
          cells.map(c => geo.cellBox(c, grid)), cells.map(c => geo.cellCentre(c, grid))]; });"""


def test_geometry_matches_python():
    rng = np.random.default_rng(7)
    cases = []
    for geo in random_geometries(rng, 40):
        w_in, h_in = geo.input_size
        stride = int(2 ** rng.integers(0, 6))  # a strided grid, or one that tiles unevenly
        grid = ((-(-h_in // stride), -(-w_in // stride)) if rng.random() < 0.6
                else tuple(int(v) for v in rng.integers(1, 40, 2)))
        w0, h0 = geo.image_size
        pixels = [(int(x), int(y)) for x, y in zip(rng.integers(0, w0, 60), rng.integers(0, h0, 60))]
        pixels += [(0, 0), (w0 - 1, h0 - 1)]
        cases.append((geo, list(grid), pixels))
    got = node(GEOMETRY, [[{k: list(v) for k, v in vars(g).items()}, grid, px] for g, grid, px in cases])
    for (geo, grid, pixels), (cells, boxes, centres) in zip(cases, got):
        assert cells == [[geo.to_grid(x, y, grid), geo.to_grid(x, y, grid, clamp=True)]
                         for x, y in pixels], geo
        n = grid[0] * grid[1]
        assert boxes == [list(geo.cell_box(c, grid)) for c in range(n)], geo
        assert centres == [list(geo.cell_centre(c, grid)) for c in range(n)], geo


def test_integer_and_float16_helpers():
    rng = np.random.default_rng(8)
    halves = np.concatenate([rng.integers(-1000, 1000, 200) + 0.5, rng.uniform(-1e6, 1e6, 200)])
    a = np.concatenate([rng.integers(-2 ** 40, 2 ** 40, 300), rng.integers(-50, 50, 100)])
    b = np.concatenate([rng.integers(1, 2 ** 20, 300), rng.integers(1, 7, 100)])
    f16 = np.concatenate([rng.normal(0, 100, 100), [0.0, -0.0, 6e-8, -3e-5, 65504, np.inf, -np.inf]]
                         ).astype(np.float16)
    f32 = rng.normal(0, 1e3, 50).astype(np.float32)
    u8 = rng.integers(0, 256, (256, 3)).astype(np.uint8)  # a colour table
    got = node("""const [halves, a, b, e16, e32, e8] = input;
      return [halves.map(M.roundHalfEven), a.map((v, k) => M.floorDiv(v, b[k])),
              Array.from(M.decode(e16), String), Array.from(M.decode(e32)),
              [M.decode(e8).constructor.name, Array.from(M.decode(e8))]];""",
               [halves.tolist(), a.tolist(), b.tolist(), hover.encode(f16, float16=True),
                hover.encode(f32), hover.encode(u8)])
    np.testing.assert_array_equal(got[0], np.rint(halves))  # numpy rounds half to even
    assert got[1] == (a // b).tolist()
    np.testing.assert_array_equal(np.array(got[2], float), f16.astype(np.float64))
    np.testing.assert_array_equal(np.array(got[3]), f32)
    assert got[4][0] == "Uint8Array" and got[4][1] == u8.ravel().tolist()


def test_peak_and_nearly_uniform_match_python():
    rng = np.random.default_rng(9)
    rows = [1 + rng.uniform(0, s, 50) for s in rng.uniform(0, 0.02, 200)]  # around the threshold
    rows += [rng.dirichlet(np.ones(30)) for _ in range(20)] + [np.zeros(9), -1 - rng.random(9)]
    data = hover.payload(random_trace())
    got = node("""const [spread, rows] = input;
      return rows.map(r => { const p = M.peak(r); return [p.best, p.hi, p.lo, M.nearlyUniform(p.hi, p.lo, spread)]; });""",
               [data["nearly_uniform"], [r.tolist() for r in rows]])
    want = [[int(np.argmax(r)), r.max(), r.min(), hover.nearly_uniform(r)] for r in rows]
    assert got == want
    assert {g[3] for g in got} == {True, False}


def test_a_newer_payload_version_is_refused_with_a_sentence():
    version = hover.payload(random_trace())["version"]
    got = node("""return [M.PAYLOAD_VERSION, M.versionProblem({version: input}),
                          M.versionProblem({version: input + 1}), M.versionProblem({})];""", version)
    assert got[0] == version == hover.SCHEMA_VERSION and got[1] is None
    assert (f"made by a newer VisAttn (payload version {version + 1}); this page understands up "
            f"to {version}.") in got[2]
    assert "no version" in got[3]


@pytest.mark.parametrize("seed, scale", [(0, 0.7), (1, 0.05), (2, 40.0)])
def test_space_time_rows_match_python(seed, scale):
    """A clip's rows (pooled keys, two heads and their mean), query dependence across time,
    and the frame <-> time cell arithmetic, from the payload under Node, against
    SpaceTimeAffinity.row, clip_metrics.query_dependence and Clip."""
    from test_hover import clip_trace
    from visattn import clip_metrics
    trace = clip_trace(seed, scale=scale)
    rec, clip = trace.records[0], trace.clip
    data = hover.payload(trace)
    rng = np.random.default_rng(seed)
    asks = [(rec.key, head, int(cell)) for head in (None, 0, 1)
            for cell in rng.choice(int(np.prod(rec.grid)), 5, replace=False)]
    got = node(ROWS, [data, asks])
    tol = 2e-3 if data["layers"][0]["precision"] == "float16" else 1e-5  # float32 logits in Python
    for (key, head, cell), (row, score) in zip(asks, got):
        want = rec.row(cell, head).ravel()
        assert len(row) == want.size == 2 * 3 * 3
        np.testing.assert_allclose(row, want, atol=tol * want.max())
        assert score == pytest.approx(clip_metrics.query_dependence(rec, cell, head), abs=20 * tol)
    pixels = [(int(f), int(x), int(y)) for f, x, y in zip(rng.integers(0, 8, 20), rng.integers(0, 50, 20),
                                                          rng.integers(0, 40, 20))]
    cells = node("""const [p, asks] = input, m = M.loadPayload(p), L = m.layers[p.layers[0].key];
      return asks.map(([f, x, y]) => [M.spacetimeCell(m.geometry, L, f, 8, x, y, true),
        M.timeCell(f, 8, 2), M.frameSpan(M.timeCell(f, 8, 2), 8, 2)]);""", [data, pixels])
    for (f, x, y), (cell, kt, span) in zip(pixels, cells):
        t, h, w = rec.grid
        assert cell == rec.cell(clip.time_cell(f, t), *divmod(trace.geometry.to_grid(x, y, (h, w), clamp=True), w))
        assert kt == clip.time_cell(f, 2) and tuple(span) == clip.frame_span(kt, 2)


@pytest.mark.parametrize("size, cap", [((64, 64), 768), ((451, 300), 768), ((37, 100), 256),
                                       ((513, 77), 1024), ((3, 5), 768), ((200, 199), 768)])
def test_enlarge_nearest_is_render_fit(size, cap):
    """The page enlarges a small photo itself (the payload sends it before its enlargement):
    the pixels equal render.fit's, OpenCV's INTER_NEAREST."""
    from visattn import render
    rgb = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    shown = render.fit(rgb, cap, enlarge=True)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
    got = node("""const [px, nw, nh, w, h] = input;
                  return Array.from(M.enlargeNearest(Uint8ClampedArray.from(px), nw, nh, w, h));""",
               [rgba.ravel().tolist(), size[0], size[1], shown.shape[1], shown.shape[0]])
    got = np.asarray(got, np.uint8).reshape(shown.shape[0], shown.shape[1], 4)
    assert np.array_equal(got[..., :3], shown) and (got[..., 3] == 255).all()


def test_a_small_photo_travels_small():
    """A 64 px scene shown at 768 px goes as its 64 px PNG (the page enlarges it)."""
    import base64, io
    from PIL import Image
    trace = random_trace(photo=(64, 64))
    photo = hover.payload(trace)["photo"]
    sent = Image.open(io.BytesIO(base64.b64decode(photo["src"].split(",")[1])))
    assert sent.size == (64, 64) and (photo["width"], photo["height"]) == (768, 768)
    assert np.array_equal(np.asarray(sent.convert("RGB")), trace.image)


def test_a_large_photo_travels_as_jpeg_unless_asked_exact():
    """A photo over hover.EXACT_PIXELS goes as a JPEG close to the shown pixels and a
    fraction of the PNG's size; exact_photo sends the PNG, equal to them."""
    import base64, io
    from PIL import Image, ImageOps
    from visattn import render
    trace = random_trace(photo=(640, 480))
    photo = Image.open(Path(__file__).parents[1] / "assets" / "examples" / "chelsea.jpg")
    trace.image = np.asarray(ImageOps.fit(photo.convert("RGB"), (640, 480)))
    shown = render.fit(trace.image, render.DISPLAY_CAP, enlarge=True)
    fast, exact = (hover.payload(trace, exact_photo=e)["photo"]["src"] for e in (False, True))
    assert fast.startswith("data:image/jpeg;base64,") and exact.startswith("data:image/png;base64,")
    assert len(fast) < len(exact) / 4
    pixels = {url: np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",")[1]))).convert("RGB"))
              for url in (fast, exact)}
    assert pixels[exact].shape == (480, 640, 3)  # enlarged to 768 by the page, as before
    enlarged = render.fit(pixels[exact], render.DISPLAY_CAP, enlarge=True)
    assert np.array_equal(pixels[exact], trace.image) and np.array_equal(enlarged, shown)
    err = np.abs(pixels[fast].astype(np.int16) - trace.image)
    assert err.mean() < 2.0 and np.percentile(err, 99) < 16, (err.mean(), np.percentile(err, 99))
