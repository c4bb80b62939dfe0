"""The hover view's payload (visattn/hover.py): what the page gets is exact, complete and small."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

import visattn
from visattn import hover
from visattn.records import Affinity, CrissCross, Trace, TwoHop
import visattn.clip_metrics
from helpers import random_photo


def decoded(enc):
    return np.frombuffer(base64.b64decode(enc["data"]), "<" + enc["dtype"]).reshape(enc["shape"])


def test_arrays_travel_as_float16_only_when_large_and_rows_stay_within_2e_3():
    a = np.random.default_rng(0).normal(size=(2, 50, 7)).astype(np.float32)
    np.testing.assert_array_equal(decoded(hover.encode(a)), a)
    np.testing.assert_array_equal(decoded(hover.encode(a, float16=True)), a.astype(np.float16))
    flat, sharp = (Affinity(queries=a, keys=a, scale=s, layer="l", family="t", name="a",
                            grid=(5, 10)) for s in (0.05, 40.0))
    assert hover.layer_payload(flat)["precision"] == "float32"  # small: float32
    assert hover.float16_rows_error(flat) <= 2e-3 < hover.float16_rows_error(sharp)
    assert hover.layer_payload(flat, max_float32_bytes=a.nbytes)["precision"] == "float16"
    assert hover.layer_payload(sharp, max_float32_bytes=a.nbytes)["precision"] == "float32"
    # the error is the rows' own: recomputed here from float16-rounded embeddings
    q16 = a.astype(np.float16).astype(np.float64)
    worst = 0.0
    for cell in visattn.metrics.reference_cells((5, 10)):
        for head in (0, 1):
            logits = 40.0 * q16[head] @ q16[head, cell]
            row = np.exp(logits - logits.max()); row /= row.sum()
            want = sharp.row(cell, head).ravel()
            worst = max(worst, np.abs(row - want).max() / want.max())
    assert hover.float16_rows_error(sharp) == pytest.approx(worst, rel=1e-3, abs=1e-6)


def test_payload_of_an_analysis():
    """Read with numpy alone, the payload gives back the photo, published colour maps, and
    rows equal to the record's."""
    rgb = random_photo(70, 110, 1)
    trace = visattn.analyze(rgb, "tiny_nl")
    data = json.loads(json.dumps(hover.payload(trace, alpha=0.3, cmap="turbo")))  # JSON-clean
    assert data["version"] == hover.SCHEMA_VERSION
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["photo"]["src"].split(",")[1]))))
    assert (data["photo"]["height"], data["photo"]["width"]) == (489, 768)  # shown enlarged,
    np.testing.assert_array_equal(sent, rgb)  # sent as it is (the page enlarges it, crisp)
    assert data["geometry"]["image_size"] == [110, 70] and (data["alpha"], data["cmap"]) == (0.3, "turbo")
    ends = {"jet": ([0, 0, 128], [128, 0, 0]), "viridis": ([68, 1, 84], [253, 231, 37]),
            "inferno": ([0, 0, 4], [252, 255, 164]), "turbo": ([48, 18, 59], [122, 4, 3])}
    luts = {name: decoded(lut) for name, lut in data["luts"].items()}  # uint8 (256, 3)
    assert {name: (lut[0].tolist(), lut[-1].tolist()) for name, lut in luts.items()} == ends
    (layer,) = data["layers"]
    rec = trace[layer["key"]]
    (h, w), n = layer["grid"], layer["grid"][0] * layer["grid"][1]
    assert layer["kind"] == "affinity" and layer["centre_cell"] == (h // 2) * w + w // 2
    q, k = (decoded(layer["arrays"][name]).astype(np.float64) for name in ("queries", "keys"))
    for cell in (0, layer["centre_cell"], n - 1):
        logits = layer["scale"] * k[0] @ q[0, cell]
        row = np.exp(logits - logits.max())
        np.testing.assert_allclose(row / row.sum(), rec.row(cell).ravel(), atol=1e-6)


def conform(value, schema, path, seen):
    """Check value against hover.SCHEMA's part schema; note the schema paths it used."""
    seen.add(path)
    if isinstance(schema, list):
        assert isinstance(value, list), path
        for v in value:
            conform(v, schema[0], path + "[]", seen)
    elif isinstance(schema, dict):
        assert isinstance(value, dict), path
        if "*" in schema:
            for v in value.values():
                conform(v, schema["*"], path + ".*", seen)
            return
        names = {name.rstrip("?"): name for name in schema}
        assert set(value) <= set(names), f"{path}: undocumented {set(value) - set(names)}"
        assert {n for n in schema if not n.endswith("?")} <= set(value), f"{path}: missing fields"
        for name, v in value.items():
            conform(v, schema[names[name]], f"{path}.{names[name]}", seen)
    elif schema.startswith("array"):
        conform(value, hover.ARRAY, path, set())
        assert value["dtype"] in ("f2", "f4", "u1") and len(decoded(value)) == value["shape"][0]


def schema_paths(schema, path):
    yield path
    if isinstance(schema, list):
        yield from schema_paths(schema[0], path + "[]")
    elif isinstance(schema, dict):
        for name, part in schema.items():
            yield from schema_paths(part, path + ("." + name if name != "*" else ".*"))


def test_the_payload_is_what_its_schema_says():
    """Every field of a payload holding every kind of layer is in hover.SCHEMA, every field
    the schema requires is there, and every field the schema lists is used."""
    from pairwise_records import random_trace
    from visattn.records import SpatialMap

    class Custom(Affinity):  # a kind the page cannot compute: the server draws it
        pass

    trace = random_trace(seed=4)
    rec = trace.records[0]
    rng = np.random.default_rng(4)
    hops = [CrissCross(queries=rec.queries, keys=rec.keys, scale=1.0, layer="unlisted",
                       family="t", name="cc", grid=rec.grid, call=c) for c in (0, 1)]
    trace.records += [
        TwoHop(first=hops[0], second=hops[1], layer="unlisted", family="t", name="two-hop",
               grid=rec.grid),
        Custom(queries=rec.queries, keys=rec.keys, scale=1.0, layer="custom", family="t",
               name="custom", grid=rec.grid),
        SpatialMap(values=rng.random(rec.grid).astype(np.float32), value_kind="probability",
                   layer=rec.layer, family="t", name="unary map", grid=rec.grid)]
    from visattn.export import Query
    pins = [Query(trace.records[0].key, 3, 4, None)]  # pinned queries travel too (viewer.html)
    data = json.loads(json.dumps(hover.payload(trace, pins=pins)))
    seen = set()
    conform(data, hover.SCHEMA, "payload", seen)
    clip = json.loads(json.dumps(hover.payload(clip_trace(), pins=[Query("st:affinity", 5, 6, 0, 2)])))
    conform(clip, hover.SCHEMA, "payload", seen)  # a clip: its frames, key grid, pinned frame
    first = hover.payload(trace, inputs=hover.default_layer(trace), analysis="a1")
    conform(json.loads(json.dumps(first)), hover.SCHEMA, "payload", seen)  # the page's first message
    assert set(schema_paths(hover.SCHEMA, "payload")) == seen
    more = hover.layer_inputs(trace, [layer["key"] for layer in first["layers"]], "a1",
                              sent=hover.default_layer(trace))
    seen = set()
    conform(json.loads(json.dumps(more)), hover.LAYERS_SCHEMA, "payload", seen)
    assert more["layers"] and not any(layer.get("pending") for layer in more["layers"])


def clip_trace(seed=0, grid=(4, 6, 5), key_grid=(2, 3, 3), heads=2, d=6, frames=8, scale=0.7):
    """A clip's trace with one random space-time layer (pooled keys: fewer time cells than
    frames, fewer key cells than query cells)."""
    from visattn.records_video import Clip, SpaceTimeAffinity
    rng = np.random.default_rng(seed)
    rec = SpaceTimeAffinity(
        queries=rng.normal(size=(heads, int(np.prod(grid)), d)).astype(np.float32),
        keys=rng.normal(size=(heads, int(np.prod(key_grid)), d)).astype(np.float32),
        key_grid=key_grid, scale=scale, layer="st", family="Non-local", name="affinity",
        grid=grid)
    video = rng.integers(0, 256, size=(frames, 40, 50, 3), dtype=np.uint8)
    trace = Trace("clipnet", [rec], visattn.Geometry.keep_ratio((50, 40), 40, 50),
                  image=video[0])
    trace.clip = Clip(video, np.arange(frames) * 2, fps=25.0, frame_count=2 * frames)
    return trace


def test_a_clip_payload_has_its_frames_and_space_time_rows():
    """A clip's payload: every frame shown, (T, h, w) query grid and (T', h', w') keys, rows
    from the payload equal to the record's, float16 only where its rows stay within 2e-3."""
    trace = clip_trace()
    rec = trace.records[0]
    data = json.loads(json.dumps(hover.payload(trace)))
    assert data["version"] == hover.SCHEMA_VERSION >= 3
    clip = data["clip"]
    assert len(clip["frames"]) == 8 and clip["columns"] == 8 and clip["indices"] == list(range(0, 16, 2))
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(clip["frames"][3].split(",")[1]))))
    width = hover.CLIP_ROW_PX // 8  # 8 frames in a row, each as wide as fits
    assert (clip["height"], clip["width"]) == (round(width * 40 / 50), width)
    # each frame shown enlarged goes as it is (the page enlarges it), else as shown
    assert sent.shape == ((40, 50, 3) if width > 50 else (clip["height"], clip["width"], 3))
    (layer,) = data["layers"]
    assert layer["kind"] == "spacetime" and layer["grid"] == [4, 6, 5] and layer["key_grid"] == [2, 3, 3]
    assert layer["refs"] == visattn.clip_metrics.reference_cells((4, 6, 5))
    q, k = (decoded(layer["arrays"][name]).astype(np.float64) for name in ("queries", "keys"))
    for cell in (0, layer["centre_cell"], 119):
        for head in (0, 1):
            logits = layer["scale"] * k[head] @ q[head, cell]
            row = np.exp(logits - logits.max())
            tol = 2e-3 * rec.row(cell, head).max() if layer["precision"] == "float16" else 1e-6
            np.testing.assert_allclose(row / row.sum(), rec.row(cell, head).ravel(), atol=tol)
    assert layer["precision"] == "float32"  # under MAX_FLOAT32_BYTES
    small = hover.payload(trace, max_float32_bytes=0)["layers"][0]["precision"]
    assert small == ("float16" if hover.float16_rows_error(rec) <= 2e-3 else "float32")


def test_space_time_inputs_go_as_float16_only_where_rows_stay_within_2e_3():
    small = clip_trace(scale=0.05).records[0]  # flat logits: float16 changes rows little
    sharp = clip_trace(scale=40.0).records[0]  # peaked logits: float16 rounding shows
    assert hover.float16_rows_error(small) <= 2e-3 < hover.float16_rows_error(sharp)
    assert hover.layer_payload(small, max_float32_bytes=0)["precision"] == "float16"
    assert hover.layer_payload(sharp, max_float32_bytes=0)["precision"] == "float32"


def rows_from(layer, rec, cells):
    """Rows computed with numpy from a layer's decoded inputs (affinity or space-time kinds
    without relative positions) next to the record's own: [(got, want)]."""
    q, k = (decoded(layer["arrays"][name]).astype(np.float64) for name in ("queries", "keys"))
    out = []
    for cell in cells:
        for head in range(rec.heads):
            logits = layer["scale"] * k[head] @ q[head, cell]
            row = np.exp(logits - logits.max())
            out.append((row / row.sum(), rec.row(cell, head).ravel()))
    return out


def test_the_first_message_holds_the_first_layer_and_the_others_come_once_when_asked():
    """BoTNet's three layers: the first message has the inputs of the first only, the
    others described and pending; asking for them gives each once, and the rows from them
    are the record's."""
    trace = visattn.analyze(random_photo(96, 128, 5), "botnet26t_256", pretrained=False)
    keys = [r.key for r in trace.select(Affinity)]
    first = json.loads(json.dumps(hover.payload(trace, inputs=hover.default_layer(trace), analysis="t1")))
    full = json.loads(json.dumps(hover.payload(trace)))
    layers = {l["key"]: l for l in first["layers"]}
    assert [l["key"] for l in first["layers"]] == keys == [l["key"] for l in full["layers"]]
    assert "arrays" in layers[keys[0]] and not layers[keys[0]].get("pending")
    for key in keys[1:]:
        assert layers[key]["pending"] and "arrays" not in layers[key] and "precision" not in layers[key]
        assert {k: v for k, v in layers[key].items() if k != "pending"} == \
            {k: v for k, v in next(l for l in full["layers"] if l["key"] == key).items()
             if k not in ("arrays", "precision")}
    first_inputs = sum(len(json.dumps(l["arrays"])) for l in first["layers"] if "arrays" in l)
    assert first_inputs == len(json.dumps(layers[keys[0]]["arrays"]))
    more = hover.layer_inputs(trace, keys, "t1", sent=[keys[0]])
    assert more["layers_of"] == "t1" and [l["key"] for l in more["layers"]] == keys[1:]
    assert hover.layer_inputs(trace, keys, "t1", sent=keys)["layers"] == []  # never twice
    assert hover.layer_inputs(trace, ["nonsense"], "t1")["layers"] == []
    assert more["layers"] == full["layers"][1:]  # the same layer as viewer.html's


def two_hops(seed: int):
    """CCNet's two passes over a 3 x 4 grid (random embeddings) and their two-hop record."""
    rng = np.random.default_rng(seed)
    hops = [CrissCross(queries=rng.normal(size=(1, 12, 3)).astype(np.float32),
                       keys=rng.normal(size=(1, 12, 3)).astype(np.float32), scale=1.0,
                       layer="cc", family="t", name="cc", grid=(3, 4), call=c) for c in (0, 1)]
    return hops, TwoHop(first=hops[0], second=hops[1], layer="cc", family="t", name="two-hop",
                        grid=(3, 4))


def test_two_hop_asked_brings_its_hidden_hops():
    hops, two = two_hops(3)
    plain = Affinity(queries=hops[0].queries, keys=hops[0].keys, scale=1.0, layer="a", family="t",
                     name="a", grid=(3, 4))
    trace = Trace("t", [plain, two], visattn.Geometry.keep_ratio((40, 30), 30, 40),
                  image=np.zeros((30, 40, 3), np.uint8))
    first = hover.payload(trace, inputs=hover.default_layer(trace), analysis="x")
    pending = {l["key"] for l in first["layers"] if l.get("pending")}
    assert pending == {two.key, hops[0].key, hops[1].key}
    more = hover.layer_inputs(trace, [two.key], "x", sent=[plain.key])
    assert {l["key"] for l in more["layers"]} == pending


def test_two_hop_brings_its_hops_even_when_they_are_not_listed():
    hops, two = two_hops(2)
    trace = Trace("t", [two], visattn.Geometry.keep_ratio((40, 30), 30, 40),
                  image=np.zeros((30, 40, 3), np.uint8))
    layers = {l["key"]: l for l in hover.payload(trace)["layers"]}
    assert layers[two.key]["kind"] == "twohop" and "arrays" not in layers[two.key]
    assert layers[two.key]["first"] == hops[0].key and layers[two.key]["second"] == hops[1].key
    assert all(layers[h.key]["hidden"] and layers[h.key]["kind"] == "crisscross" for h in hops)


@pytest.mark.slow
def test_viewer_of_the_ade20k_nonlocal_network_at_512px_is_under_10_mb():
    import dataclasses
    from visattn import zoo
    card = zoo.get("nonlocal_r50_d8_ade20k")
    rgb = random_photo(480, 640, 3)
    trace = visattn.analyze(rgb, card.name, pretrained=False,
                            preprocess=dataclasses.replace(card.preprocess, size=(512, 2048)))
    html = hover.viewer_html(trace)
    assert len(html.encode()) < 10 * 2 ** 20 and "float16" in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch


def big_analysis(model):
    """The largest analyses the issue names: I3D-NL at 32 frames, ADE20K networks at 512 px."""
    import dataclasses
    if model.startswith("i3d"):
        frames = np.random.default_rng(1).integers(0, 256, (64, 256, 340, 3), dtype=np.uint8)
        return visattn.analyze_video(frames, model, pretrained=False)
    from visattn import zoo
    card = zoo.get(model)
    return visattn.analyze(random_photo(480, 640, 3), model, pretrained=False,
                           preprocess=dataclasses.replace(card.preprocess, size=(512, 2048)))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["i3d_nl_r50_kinetics400", "nonlocal_r50_d8_ade20k",
                                   "dnl_r50_d8_ade20k", "ccnet_r50_d8_ade20k", "danet_r50_d8_ade20k"])
def test_every_layer_sent_is_at_most_8_mb_and_float16_rows_stay_within_2e_3(model):
    from visattn.records import Pairwise
    trace = big_analysis(model)
    keys = [r.key for r in trace if isinstance(r, Pairwise)]
    if model.startswith("i3d"):
        assert len(trace.clip.frames) == 32 and len(keys) == 5
    more = hover.layer_inputs(trace, keys, "big")
    assert {l["key"] for l in more["layers"]} >= set(keys)
    for layer in more["layers"]:
        size = len(json.dumps(layer).encode())
        assert size <= 8e6, (layer["key"], size)
        if "arrays" not in layer:
            continue
        rec = trace[layer["key"]]
        cells = visattn.metrics.reference_cells(rec.grid)
        got_want = rows_from(layer, rec, cells)
        if layer["kind"] == "crisscross":  # only the cross: the rest of the row is 0
            h, w = rec.grid
            got_want = []
            q, k = (decoded(layer["arrays"][n]).astype(np.float64) for n in ("queries", "keys"))
            for cell in cells:
                r, c = divmod(cell, w)
                cross = np.zeros((h, w), bool); cross[r] = True; cross[:, c] = True
                logits = np.where(cross.ravel(), layer["scale"] * k[0] @ q[0, cell], -np.inf)
                row = np.exp(logits - logits.max())
                got_want.append((row / row.sum(), rec.row(cell, 0).ravel()))
        worst = max(np.abs(g - w).max() / w.max() for g, w in got_want)
        assert worst <= (2e-3 if layer["precision"] == "float16" else 1e-5), (layer["key"], worst)


def test_the_viewer_says_clip_for_a_clip_and_photo_for_a_photo():
    import re
    note = lambda doc: re.search(r'<p class="va-note">(.*?)</p>', doc, re.S)[1]  # noqa: E731
    clip = note(hover.viewer_html(clip_trace()))
    assert "on a clip, 8 frames of 50×40" in clip and "photo" not in clip and "[ and ]" in clip
    photo = note(hover.viewer_html(clip_trace().__class__("t", [], visattn.Geometry.keep_ratio(
        (50, 40), 40, 50), image=np.zeros((40, 50, 3), np.uint8))))
    assert "on a 50×40 photo" in photo and "clip" not in photo
