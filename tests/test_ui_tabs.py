"""The Compare tab and the pretrained box (issue 15), without a browser."""
import numpy as np
import pytest
from PIL import Image

import visattn
from visattn import metrics, ui, zoo
from helpers import random_photo


@pytest.fixture
def session(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(90, 120, 4)).save(path)
    return ui.run_analysis(str(path), "tiny_cbam")[0]


def test_compare_defaults_all_have_the_stage():
    chosen = ui.default_networks(3)
    assert len(chosen) == 3 and "tiny_a2" not in chosen  # nothing at stage 3
    blank = np.full((64, 64, 3), 90, np.uint8)
    for name in chosen:
        assert metrics.stage_map(visattn.analyze(blank, name), 3) is not None


def test_compare_keeps_its_maps_and_restyles_without_running_networks(session):
    models = ["tiny_se", "tiny_nl", "tiny_a2"]
    tiles, note, session = ui.compare(session, models, 3, True, 0.5, "jet")
    assert note == ""
    assert [c.split(" · ")[1] for _, c in tiles] == models
    assert "no attention at stage 3" in tiles[2][1] and "stage 3" in tiles[0][1]
    calls = []
    hooks = [zoo.load(m).register_forward_hook(lambda *a: calls.append(1)) for m in models]
    try:
        again = ui.compared_tiles(session, 0.9, "viridis")
    finally:
        for h in hooks:
            h.remove()
    assert calls == [] and len(again) == 3
    assert (again[0][0] != tiles[0][0]).any() and (again[2][0] == tiles[2][0]).all()


def test_the_pretrained_box_means_something_only_where_weights_are_published(monkeypatch):
    from visattn.ui import inputs
    monkeypatch.setattr(inputs, "reachable", lambda address: True)  # whatever this machine's network
    bundled = next(c.name for c in zoo.cards() if c.availability() == "bundled")
    published = next(c.name for c in zoo.cards() if c.availability() == "download")
    assert ui.uses_pretrained(bundled, False) and ui.uses_pretrained(bundled, True)
    assert not ui.uses_pretrained(published, False) and ui.uses_pretrained(published, True)
    labels = dict((v, k) for k, v in ui.model_choices(pretrained=False))
    assert labels[published].endswith("random weights") and labels[bundled].endswith("bundled")
    assert not dict((v, k) for k, v in ui.model_choices())[published].endswith("random weights")


def test_bundled_networks_ignore_an_unticked_box(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(70, 70, 5)).save(path)
    ticked = ui.run_analysis(str(path), "tiny_se", True)
    unticked = ui.run_analysis(str(path), "tiny_se", False)
    assert ticked[1] == unticked[1] and unticked[0].pretrained
    assert "Random weights" not in unticked[2]


def _shown(update) -> bool:
    return bool(update.get("visible")) and update.get("value") is not None and \
        (not isinstance(update["value"], list) or len(update["value"]) > 0)


def test_danet_channel_tab_draws_the_channel_affinity_and_no_empty_box(tmp_path):
    """DANet's C x C channel affinity gets its own view: the matrix with labelled axes and
    its strongest pairs; no gate chart, no 'feature maps', no empty Blocks x channels."""
    from visattn import render
    from visattn.records import ChannelAffinity
    from visattn.ui import tab_channel
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(60, 80, 9)).save(path)
    session = ui.run_analysis(str(path), "danet_r50_d8_ade20k", False, 256)[0]
    (rec,) = [r for r in session.trace if isinstance(r, ChannelAffinity)]
    picker, chart, matrix, tiles, note = tab_channel.refresh(session, "channel", 0.5, "jet")
    assert picker.value == rec.key
    assert _shown(chart) and not matrix["visible"] and not tiles["visible"]
    np.testing.assert_array_equal(chart["value"], render.channel_affinity_view(rec))
    assert "channel affinity" in chart["label"].lower() and "Strongest pairs" in note
    r, c, w = rec.strongest(1)[0]
    assert f"c {r} ← c {c}: {w:.4g}" in note and r != c
    assert w == rec.values[~np.eye(len(rec.values), dtype=bool)].max()
    assert ui.prediction_label(session).label == "Prediction — random weights: meaningless"  # segments too


def test_channel_tab_hides_every_box_it_has_nothing_for(tmp_path):
    from visattn.ui import tab_channel
    path = tmp_path / "p.png"
    Image.fromarray(random_photo(64, 64, 3)).save(path)
    se = ui.run_analysis(str(path), "tiny_se")[0]
    _, chart, matrix, tiles, note = tab_channel.refresh(se, "channel", 0.5, "jet")
    assert _shown(chart) and _shown(matrix) and _shown(tiles) and note == ""
    triplet = ui.run_analysis(str(path), "tiny_triplet")[0]
    _, chart, matrix, tiles, _ = tab_channel.refresh(triplet, "channel", 0.5, "jet")
    assert _shown(chart) and not matrix["visible"] and "other blocks" in tiles["label"]
    plain = ui.run_analysis(str(path), "tiny_none")[0]
    picker, chart, matrix, tiles, note = tab_channel.refresh(plain, "channel", 0.5, "jet")
    assert not picker.visible and not any(u["visible"] for u in (chart, matrix, tiles))
    assert "no channel gates" in note


def test_compare_runs_what_it_can_and_says_in_one_sentence_what_it_could_not(session, monkeypatch):
    from visattn import weights
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    tiles, note, session = ui.compare(session, ["tiny_se", "gcresnet50t", "seresnet50"], 3, True,
                                      0.5, "jet")
    assert [c.split(" · ")[1] for _, c in tiles] == ["tiny_se"]
    assert note == ("Not compared: gcresnet50t and seresnet50 (their pretrained weights cannot be "
                    "had now: network access is off (VISATTN_OFFLINE / HF_HUB_OFFLINE)).")
    assert "untick" not in note.lower() and note.count(". ") == 0
    monkeypatch.delenv("VISATTN_OFFLINE")  # online, but the download fails
    from visattn.ui import inputs
    monkeypatch.setattr(inputs, "reachable", lambda address: True)

    fetch = weights.fetch

    def failing(spec, progress=None, who=None):
        if isinstance(spec, weights.BundledFile):
            return fetch(spec, progress, who=who)
        raise weights.WeightsError(f"{who}: the Hub (https://huggingface.co) did not answer "
                                   "within 4 s; nothing was cached.")
    monkeypatch.setattr(weights, "fetch", failing)
    tiles, note, _ = ui.compare(session, ["gcresnet50t", "tiny_nl"], 3, True, 0.5, "jet")
    assert [c.split(" · ")[1] for _, c in tiles] == ["tiny_nl"]
    assert note == ("Not compared: gcresnet50t (the Hub (https://huggingface.co) did not answer "
                    "within 4 s; nothing was cached).")
    tiles, note, _ = ui.compare(session, ["gcresnet50t"], 3, False, 0.5, "jet")  # box unticked
    assert len(tiles) == 1 and note == ""


def test_spatial_maps_say_what_they_are_and_where_the_photo_was_cropped(tmp_path):
    from visattn.ui import tab_spatial
    portrait = tmp_path / "portrait.png"
    Image.fromarray(random_photo(150, 90, 2)).save(portrait)
    session, _, summary, _, _ = ui.run_analysis(str(portrait), "tiny_cbam")
    crop = ("The network sees only the centre 90×90 px of this 90×150 photo (its fixed 64×64 "
            "input is a centre crop): the dimmed top and bottom were cut off and have no attention.")
    assert crop in summary
    key = "layer3.0.attn:spatial gate"
    note = tab_spatial.map_note(session, key)
    assert note.startswith("**layer3.0.attn · spatial gate** (CBAM, 8×8 grid") and crop in note
    assert "multiplies every channel" in note
    square = tmp_path / "square.png"
    Image.fromarray(random_photo(90, 90, 2)).save(square)
    session, _, summary, _, _ = ui.run_analysis(str(square), "tiny_cbam")
    assert "centre crop" not in summary and "centre crop" not in tab_spatial.map_note(session, key)
    _, _, note = tab_spatial.refresh(session, "overview", 0.5, "jet", 100)
    assert note.startswith("**layer1.0.attn · spatial gate**")
