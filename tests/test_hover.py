"""The hover view's payload (visattn/hover.py): what the page gets is exact, complete and small."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

import visattn
from visattn import hover, render
from visattn.records import Affinity, CrissCross, Trace, TwoHop


def decoded(enc):
    return np.frombuffer(base64.b64decode(enc["data"]), "<" + enc["dtype"]).reshape(enc["shape"])


def test_arrays_travel_as_float32_or_float16_by_size():
    a = np.random.default_rng(0).normal(size=(2, 50, 7)).astype(np.float32)
    np.testing.assert_array_equal(decoded(hover.encode(a)), a)
    np.testing.assert_array_equal(decoded(hover.encode(a, float16=True)), a.astype(np.float16))
    rec = Affinity(queries=a, keys=a, scale=0.5, layer="l", family="t", name="a", grid=(5, 10))
    assert hover.layer_payload(rec)["precision"] == "float32"
    assert hover.layer_payload(rec, max_float32_bytes=a.nbytes)["precision"] == "float16"


def test_payload_of_an_analysis(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (70, 110, 3), dtype=np.uint8)
    trace = visattn.analyze(rgb, "tiny_nl")
    data = json.loads(json.dumps(hover.payload(trace, alpha=0.3, cmap="turbo")))  # JSON-clean
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["photo"]["src"].split(",")[1]))))
    np.testing.assert_array_equal(shown, render.fit(rgb, render.DISPLAY_CAP, enlarge=True))
    assert data["geometry"]["image_size"] == [110, 70] and (data["alpha"], data["cmap"]) == (0.3, "turbo")
    for name in render.COLORMAPS:
        np.testing.assert_array_equal(np.reshape(data["luts"][name], (256, 3)), render.lut(name))
    (layer,) = data["layers"]
    rec = trace[layer["key"]]
    assert layer["kind"] == "affinity" and layer["grid"] == list(rec.grid) and layer["scale"] == rec.scale
    np.testing.assert_array_equal(decoded(layer["arrays"]["queries"]), rec.queries)
    assert layer["refs"] == visattn.analysis.reference_cells(rec.grid)


def test_two_hop_brings_its_hops_even_when_they_are_not_listed():
    rng = np.random.default_rng(2)
    hops = [CrissCross(queries=rng.normal(size=(1, 12, 3)).astype(np.float32),
                       keys=rng.normal(size=(1, 12, 3)).astype(np.float32), scale=1.0,
                       layer="cc", family="t", name="cc", grid=(3, 4), call=c) for c in (0, 1)]
    two = TwoHop(first=hops[0], second=hops[1], layer="cc", family="t", name="two-hop", grid=(3, 4))
    trace = Trace("t", [two], visattn.Geometry.keep_ratio((40, 30), 30, 40),
                  image=np.zeros((30, 40, 3), np.uint8))
    layers = {l["key"]: l for l in hover.payload(trace)["layers"]}
    assert layers[two.key]["kind"] == "twohop" and "arrays" not in layers[two.key]
    assert layers[two.key]["first"] == hops[0].key and layers[two.key]["second"] == hops[1].key
    assert all(layers[h.key]["hidden"] and layers[h.key]["kind"] == "crisscross" for h in hops)


@pytest.mark.slow
def test_viewer_of_the_ade20k_nonlocal_network_at_512px_is_under_10_mb():
    import dataclasses
    card = visattn.zoo.get("nonlocal_r50_d8_ade20k")
    rgb = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    trace = visattn.analyze(rgb, card.name, pretrained=False,
                            preprocess=dataclasses.replace(card.preprocess, size=(512, 2048)))
    html = hover.viewer_html(trace)
    assert len(html.encode()) < 10 * 2 ** 20 and "float16" in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch
