"""The page's handlers, called as Gradio calls them."""
import io

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import visattn
from visattn import ui, weights, zoo

from helpers import random_photo


def test_choices_cover_the_zoo_grouped_by_family(monkeypatch):
    from visattn.ui import inputs
    monkeypatch.setattr(inputs, "reachable", lambda address: True)  # whatever this machine's network
    choices = ui.model_choices()
    assert sorted(v for _, v in choices) == sorted(c.name for c in zoo.cards())
    families = [zoo.get(v).family for _, v in choices]
    assert families == sorted(families, key=families.index)  # each family in one run
    assert all(label.startswith(f"{zoo.get(v).family} · {v} — ") for label, v in choices)
    sizes = {v: label.rsplit("downloads ", 1)[-1] for label, v in choices}
    assert sizes["botnet26t_256"] == f"{zoo.get('botnet26t_256').download_mb:.0f} MB"


def test_run_analysis_gives_top5_summary_and_one_thumbnail_per_record(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(180, 260, 0)).save(path)
    session, label, summary, gallery, name = ui.run_analysis(str(path), "cbam_resnet50",
                                                             pretrained=False)
    assert name == "cbam_resnet50"
    top = label
    assert len(session.trace) == 32
    assert ui.prediction_label(session).label == "Prediction — random weights: meaningless"
    assert len(top) == 5 and abs(sum(top.values())) <= 1.0 + 1e-6
    assert "260×180" in summary and "32 maps" in summary and "Random weights" in summary
    assert len(gallery) == 32
    path, caption = gallery[1]
    img = np.asarray(Image.open(path))  # a JPEG file Gradio serves as it is (ui.maps)
    assert Image.open(path).format == "JPEG" and img.dtype == np.uint8 and img.ndim == 3
    assert "spatial gate" in caption


def test_run_analysis_errors_are_readable(tmp_path):
    with pytest.raises(gr.Error, match="Upload a photo first"):
        ui.run_analysis(None, "seresnet50")
    bad = tmp_path / "x.jpg"
    bad.write_text("not really a jpeg")
    with pytest.raises(gr.Error, match="not an image"):
        ui.run_analysis(str(bad), "seresnet50", pretrained=False)


def test_missing_weights_offline_run_random_weights_and_say_so_quickly(tmp_path, monkeypatch):
    """Offline, a published network whose weights are not here runs with random weights
    (no error), and the summary and the prediction heading say so and why."""
    import time
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    path = tmp_path / "p.png"
    Image.new("RGB", (64, 48)).save(path)
    visattn.open_network("gcresnet50t", pretrained=False)  # built beforehand: time the decision
    start = time.perf_counter()
    session, top, summary, gallery, name = ui.run_analysis(str(path), "gcresnet50t", pretrained=True)
    assert time.perf_counter() - start < 3  # no download tried, no wait on the network
    assert not session.pretrained and name == "gcresnet50t" and len(gallery) == len(session.trace) > 0
    assert "Random weights instead of pretrained ones" in summary and "VISATTN_OFFLINE" in summary
    assert "python -m visattn download gcresnet50t" in summary
    assert ui.prediction_label(session).label == \
        "Prediction — random weights (pretrained ones cannot be had now): meaningless"
    assert said_random(summary) == 1  # the substitution's sentence only, not the plain one too
    with pytest.raises(weights.WeightsError, match="gcresnet50t.*VISATTN_OFFLINE"):
        visattn.analyze(str(path), "gcresnet50t")  # the library still refuses
    unticked = ui.run_analysis(str(path), "gcresnet50t", pretrained=False)[2]
    assert said_random(unticked) == 1 and "instead of pretrained" not in unticked


def said_random(summary: str) -> int:
    """How many of the summary's paragraphs say the maps come from random weights."""
    return sum("random weights" in part.lower() for part in summary.split("\n\n"))


def test_picker_says_per_network_whether_its_weights_can_be_had(monkeypatch):
    from visattn.ui import inputs
    monkeypatch.setattr(inputs, "reachable", lambda address: True)
    labels = {v: k for k, v in ui.model_choices()}
    assert labels["seresnet50"].endswith("downloads 113 MB")
    assert labels["tiny_se"].endswith("bundled")
    monkeypatch.setattr(inputs, "reachable", lambda address: address[0] != "huggingface.co")
    labels = {v: k for k, v in ui.model_choices()}
    assert labels["seresnet50"].endswith("weights not here and huggingface.co unreachable: "
                                         "runs with random weights")
    assert labels["cbam_resnet50"].endswith("downloads 113 MB")  # github.com answers
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    labels = {v: k for k, v in ui.model_choices()}
    assert labels["cbam_resnet50"].endswith("weights not here and offline: runs with random weights")
    assert labels["tiny_se"].endswith("bundled")
    assert {v: k for k, v in ui.model_choices(False)}["cbam_resnet50"].endswith("random weights")


def test_reachability_check_is_quick_and_remembered(monkeypatch):
    """A server that never answers costs one short wait, then nothing."""
    import socket
    import threading
    import time
    from visattn.ui import inputs
    inputs.forget_reachability()
    release = threading.Event()
    calls = []

    def silent(address, timeout=None):
        calls.append(address)
        release.wait(10)
        raise OSError("no answer")
    monkeypatch.setattr(socket, "create_connection", silent)
    start = time.perf_counter()
    assert not inputs.reachable(("example.invalid", 443))
    assert time.perf_counter() - start < inputs.REACH_WAIT_S + 0.5
    start = time.perf_counter()
    assert not inputs.reachable(("example.invalid", 443))
    assert time.perf_counter() - start < 0.05 and calls == [("example.invalid", 443)]
    release.set()
    inputs.forget_reachability()
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: _Closing())
    assert inputs.reachable(("example.invalid", 443))


class _Closing:
    def close(self):
        pass


def test_unreachable_download_server_runs_random_weights_without_trying(tmp_path, monkeypatch):
    from visattn import weights as weights_module
    from visattn.ui import inputs
    monkeypatch.setattr(inputs, "reachable", lambda address: False)

    def no_fetch(*args, **kwargs):
        raise AssertionError("a download was tried")
    monkeypatch.setattr(weights_module, "fetch", no_fetch)
    path = tmp_path / "p.png"
    Image.new("RGB", (64, 48), (90, 120, 30)).save(path)
    session, _, summary, _, _ = ui.run_analysis(str(path), "cbam_resnet50", pretrained=True)
    assert not session.pretrained and "github.com) cannot be reached" in summary


def test_default_is_a_cached_pretrained_network_else_our_own_bundled_one(monkeypatch):
    import dataclasses
    import hashlib
    model, note = ui.default_model()
    assert zoo.get(model).availability() == "bundled" and "generated scenes" in note
    card = zoo.get("cbam_resnet50")  # pretend its verified weights are cached
    spec = dataclasses.replace(card.weights, digest=hashlib.sha1(b"x").hexdigest())
    monkeypatch.setitem(zoo._CARDS, card.name, dataclasses.replace(
        card, source=dataclasses.replace(card.source, weights=lambda: spec)))
    path = weights.cache_dir() / "url" / spec.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert ui.default_model() == ("cbam_resnet50", "")


def test_own_model_names_the_class_of_the_example_scenes():
    from visattn import scenes
    examples = [p for p in ui.EXAMPLES if p.name.startswith("scene_")]
    assert sorted(p.stem[len("scene_"):].replace("_", " ") for p in examples) == sorted(scenes.CLASSES)
    right = 0
    for example in examples:
        _, label, summary, gallery, _ = ui.run_analysis(str(example), "tiny_cbam")
        top = label
        right += max(top, key=top.get) == example.stem[len("scene_"):].replace("_", " ")
        assert len(gallery) == 10 and "generated scenes" in summary
    assert right >= 5


def test_the_page_has_its_tabs_inputs_and_api():
    """What the page is made of, as a visitor, the browser tests and API callers find it:
    the eight tabs in order, the inputs by their element ids, the named API endpoints, and
    every network of the zoo in the picker."""
    demo = ui.build()
    assert isinstance(demo, gr.Blocks)
    config = demo.config
    tabs = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
    assert tabs == ["Overview", "Non-local", "Spatial", "Channel", "Compare", "Families",
                    "Analyses", "Export"]
    ids = {c["props"].get("elem_id"): c for c in config["components"]}
    assert {"photo", "model", "pretrained", "seg-size", "analyse", "summary", "nl-hover",
            "export-go"} <= set(ids)
    assert ids["photo"]["type"] == "image" and ids["analyse"]["type"] == "button"
    apis = {d.get("api_name") for d in config["dependencies"]}
    assert {"analyze", "affinity", "pin_query", "compare", "export"} <= apis
    offered = {value for _, value in ids["model"]["props"]["choices"]}
    assert offered == {c.name for c in zoo.cards()}


def test_no_event_shows_progress_on_the_hover_view_or_a_layout_block():
    """Gradio's page reads the value of every component an event ever showed progress on
    back at each later status change (a deep copy; of all that is inside, for a layout
    block): the hover view's payload and the tabs must never be among them."""
    config = ui.build().config
    kinds = {c["id"]: (c["type"], c["props"].get("elem_id")) for c in config["components"]}
    layouts = {"row", "column", "tabs", "tabitem", "group", "accordion", "form"}
    heavy = {i for i, (kind, _) in kinds.items() if kind in layouts | {"html"}}
    assert any(kinds[i] == ("html", "nl-hover") for i in heavy) and \
        any(kinds[i][0] == "tabs" for i in heavy)
    shown = {}
    for d in config["dependencies"]:
        targets = d["outputs"] if d.get("show_progress_on") is None else d["show_progress_on"]
        shown[d["id"]] = set(targets) & heavy
    assert not any(shown.values()), {k: [kinds[i] for i in v] for k, v in shown.items() if v}
    analyse = [d for d in config["dependencies"] if len(d["outputs"]) > 8
               and any(kinds[i] == ("html", "nl-hover") for i in d["outputs"])
               and any(kinds[i][0] == "tabs" for i in d["outputs"])]
    assert analyse, "the page's analysis event draws the hover view and opens a tab"


def test_refreshes_the_visitor_did_not_ask_for_track_no_progress():
    """An event whose progress is hidden shows it on nothing (Gradio's page would copy each
    target's value at every later status change of any event); the tabs' and the picker's
    refreshes after each analysis are such events, the analysis itself is not."""
    deps = [d for d in ui.build().config["dependencies"] if d.get("backend_fn")]
    assert all(d["show_progress_on"] == [] or not d["outputs"]
               for d in deps if d["show_progress"] == "hidden")
    named = lambda *prefixes: [d for d in deps if str(d["api_name"]).startswith(prefixes)]  # noqa: E731
    background = named("refresh", "fresh", "picker", "prediction_label", "pretrained_box")
    assert len(background) > 40 and all(d["show_progress"] == "hidden" for d in background), \
        [d["api_name"] for d in background if d["show_progress"] != "hidden"]
    (analyse,) = named("analyse")
    assert analyse["show_progress"] != "hidden" and len(analyse["show_progress_on"]) == 2


def test_views_of_every_tab_for_one_analysis(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(200, 300, 2)).save(path)
    session, *_ = ui.run_analysis(str(path), "cbam_resnet50", pretrained=False)
    from visattn.ui import tab_analyses as analyses_tab, tab_channel as channel_tab
    from visattn.ui import tab_nonlocal as nonlocal_tab, tab_spatial as spatial_tab
    nl_hover = nonlocal_tab.refresh(session, "overview", 0.5, "jet")[0]
    sp_record, sp_view, sp_note = spatial_tab.refresh(session, "overview", 0.5, "jet", 100)
    ch_record, chart, matrix, tiles, ch_note = channel_tab.refresh(session, "overview", 0.5, "jet")
    gc_record = analyses_tab.refresh(session)[0]
    assert gc_record.value == "features.stage1.unit1.cbam:spatial gate"
    assert nl_hover is sp_view is None and not ch_note  # only the open tab is drawn
    assert chart["value"] is None and not chart["visible"]  # and no empty box shown
    assert sp_note.startswith("**features.stage1.unit1.cbam · spatial gate** (CBAM, 56×56 grid")
    nl_hover = nonlocal_tab.refresh(session, "nonlocal", 0.5, "jet")[0]
    assert "no pairwise" in nl_hover["message"] and "layers" not in nl_hover
    sp_view = spatial_tab.refresh(session, "spatial", 0.5, "jet", 100)[1]
    chart, matrix, tiles = (u["value"] for u in channel_tab.refresh(session, "channel", 0.5, "jet")[1:4])
    assert sp_record.value == "features.stage1.unit1.cbam:spatial gate"
    assert sp_view.shape[1] == 768 and sp_view.shape[0] == 512 + 34  # photo + colour bar
    assert ch_record.value == "features.stage1.unit1.cbam:channel gate"
    assert matrix.shape[0] == 80 + 16 * 14  # one labelled row per block
    assert len(tiles) == 8
    kept = ui.show_spatial(session, sp_record.value, 1.0, "jet", 20)
    full = ui.show_spatial(session, sp_record.value, 1.0, "jet", 100)
    assert (kept != full).any()


def test_export_zip_holds_overlays_arrays_and_queries(tmp_path):
    import json
    import zipfile
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(180, 240, 3)).save(path)
    session, *_ = ui.run_analysis(str(path), "botnet26t_256", pretrained=False)
    layer = session.trace.select(visattn.Affinity)[1].key
    pin = gr.EventData(None, {"layer": layer, "head": 2, "x": 100, "y": 90})
    for _ in range(2):  # pinned twice, listed once
        info, fallback, session = ui.pin_query(session, 0.5, "jet", pin)
    assert info.count("pixel (100, 90)") == 1 and fallback["visible"] is False
    with zipfile.ZipFile(ui.export(session, "jet")) as zf:
        names = zf.namelist()
        meta = json.loads(zf.read("meta.json"))
        arrays = np.load(io.BytesIO(zf.read("arrays.npz")))
        pairwise = [r for r in session.trace if isinstance(r, visattn.Pairwise)]
        assert sum(n.startswith("overlays/") for n in names) == len(session.trace) - len(pairwise)
        assert "viewer.html" in names
        assert meta["model"] == "botnet26t_256" and len(meta["records"]) == 3
        assert meta["preprocess"]["size"] == [256, 256]
        pinned = [q for q in meta["queries"] if not q["automatic"]]
        assert len(pinned) == 1 and len(meta["queries"]) == len(pairwise)  # + centres of the rest
        q = pinned[0]
        assert (q["layer"], q["x"], q["y"], q["head"]) == (layer, 100, 90, 2)
        x0, y0, x1, y1 = q["cell_box"]
        assert x0 <= 100 < x1 and y0 <= 90 < y1
        row = arrays[f"{layer}/row_x100_y90_head2"]
        np.testing.assert_allclose(row, session.trace[layer].row(q["cell"], 2), atol=1e-6)
        assert arrays["image"].shape == (180, 240, 3)


def test_segmentation_network_overview_and_clicks(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(120, 160, 5)).save(path)
    session, top, summary, gallery, _ = ui.run_analysis(str(path), "ccnet_r50_d8_ade20k",
                                                        pretrained=False, seg_size=256)
    assert "classes by share" in summary and 0 < sum(top.values()) <= 1.0 + 1e-6
    assert gallery[0][1].startswith("classes") and len(gallery) == len(session.trace) + 1
    geo = session.trace.geometry
    assert min(geo.input_size) == 256  # the processing-size setting reached the model
    payload, *_ = ui.nonlocal_tab(session, 0.5, "jet")
    kinds = {layer["key"]: layer["kind"] for layer in payload["layers"]}
    hop = [k for k in kinds if "two-hop" in k][0]
    assert kinds == {"decode_head.cca:criss-cross": "crisscross",
                     "decode_head.cca:criss-cross#1": "crisscross",
                     hop: "twohop"}
    assert ui.nonlocal_tab(session, 0.5, "jet")[0] == gr.skip()  # sent once per analysis
    image, info, _ = ui.show_affinity(session, hop, ui.MEAN_OF_HEADS, (80, 60), 0.5, "jet")
    assert "Query pixel **(80, 60)**" in info and image.shape[1] == 768


def test_affinity_api_colours_from_zero_on_request(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(90, 120, 7)).save(path)
    session, *_ = ui.run_analysis(str(path), "tiny_nl")
    rec = session.trace.select(visattn.Affinity)[0]
    stretched, numbers, _ = ui.affinity_api(session, rec.key, "", 30, 40)
    from_zero, _, _ = ui.affinity_api(session, rec.key, "", 30, 40, 0.5, "jet", True)
    cell = numbers["cell"]
    want = visattn.render.affinity_view(session.trace, rec, cell, None, from_zero=True)
    np.testing.assert_array_equal(from_zero, want)
    assert (from_zero != stretched).any() and isinstance(numbers["nearly_uniform"], bool)
