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
    tiles, session = ui.compare(session, models, 3, True, 0.5, "jet")
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


def test_the_pretrained_box_means_something_only_where_weights_are_published():
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
