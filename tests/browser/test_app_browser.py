"""The page in headless Chromium: upload, pick a network, analyse; weights downloaded from a
local Hub stand-in; the offline error a user sees."""
import os

import numpy as np
import pytest
import torch
from PIL import Image
from playwright.sync_api import expect
from safetensors.torch import save as save_safetensors

import visattn
from visattn import zoo

from local_servers import hub_file, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def flags_photo(tmp_path):
    rgb = np.zeros((300, 450, 3), np.uint8)
    rgb[:, :150] = (220, 30, 30)
    rgb[:, 150:300] = (30, 200, 40)
    rgb[:, 300:] = (40, 60, 230)
    path = tmp_path / "flags.png"
    Image.fromarray(rgb).save(path)
    return rgb, path


def open_page(page, url, photo, model):
    page.goto(url)
    page.locator("#photo input[type=file]").set_input_files(str(photo))
    page.locator("#model input").click()
    page.get_by_role("option", name=f"{zoo.get(model).family} · {model} —").click()


def test_random_weights_gallery_has_one_thumbnail_per_map(server_url, page, flags_photo, artifacts):
    rgb, path = flags_photo
    expected = len(visattn.analyze(rgb, "cbam_resnet50", pretrained=False))
    open_page(page, server_url, path, "cbam_resnet50")
    page.locator("#pretrained input").uncheck()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text(f"{expected} maps captured", timeout=60_000)
    expect(page.locator("#summary")).to_contain_text("Random weights")
    expect(page.locator("#top5")).to_contain_text("meaningless")  # random-weight classes
    page.get_by_role("tab", name="Overview").click()
    expect(page.locator("#maps img")).to_have_count(expected, timeout=30_000)
    expect(page.locator("#top5")).to_contain_text("%")
    page.screenshot(path=os.path.join(artifacts, "random_weights.png"), full_page=True)


def test_pretrained_weights_download_from_the_hub_then_analyse(server_url, page, flags_photo,
                                                              monkeypatch, artifacts):
    card = zoo.get("botnet26t_256")
    torch.manual_seed(3)
    data = save_safetensors(card.source.build().state_dict())
    route = f"/{card.weights.repo_id}/resolve/main/{card.weights.filename}"
    with serve({route: hub_file(data)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        open_page(page, server_url, flags_photo[1], card.name)
        page.locator("#analyse").click()
        expect(page.locator("#summary")).to_contain_text("3 maps captured", timeout=60_000)
        assert any(path == route for _, path in hub.requests)
    expect(page.locator("#summary")).not_to_contain_text("Random weights")
    expect(page.locator("#model input")).to_have_value(f"BoT · {card.name} — ready")
    expect(page.locator("#top5")).not_to_contain_text("meaningless")
    page.get_by_role("tab", name="Overview").click()
    expect(page.locator("#maps img")).to_have_count(3)
    page.screenshot(path=os.path.join(artifacts, "pretrained_botnet.png"), full_page=True)


def test_offline_weights_that_cannot_be_had_run_random_and_compare_says_which(
        server_url, page, flags_photo, monkeypatch, artifacts):
    """Offline: the picker says the weights cannot be had now, Analyse runs the published
    network with random weights and says so (summary and prediction heading, no error),
    and Compare runs the networks it can, naming the one it could not and why."""
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    open_page(page, server_url, flags_photo[1], "gcresnet50t")
    expect(page.locator("#model input")).to_have_value(
        "GC · gcresnet50t — weights not here and offline: runs with random weights")
    page.locator("#model input").click()
    expect(page.get_by_role("option", name="SE · seresnet50 — weights not here and offline: "
                                           "runs with random weights")).to_be_visible()
    expect(page.get_by_role("option", name="SE · tiny_se — bundled")).to_be_visible()
    page.keyboard.press("Escape")
    page.locator("#analyse").click()
    summary = page.locator("#summary")
    expect(summary).to_contain_text("Random weights instead of pretrained ones", timeout=60_000)
    expect(summary).to_contain_text("VISATTN_OFFLINE")
    expect(summary).to_contain_text("python -m visattn download gcresnet50t")
    expect(page.locator("#top5")).to_contain_text("random weights (pretrained ones cannot be had "
                                                  "now): meaningless")
    expect(page.locator(".toast-body")).to_have_count(0)
    page.screenshot(path=os.path.join(artifacts, "offline_random_weights.png"))
    page.get_by_role("tab", name="Compare").click()
    page.locator("#cmp-models input").click()
    page.get_by_role("option", name="GC · gcresnet50t —").click()
    page.keyboard.press("Escape")
    page.locator("#cmp-go").click()
    note = page.locator("#cmp-note")
    expect(note).to_contain_text("Not compared: gcresnet50t (their pretrained weights cannot be "
                                 "had now: network access is off", timeout=60_000)
    expect(page.locator("#cmp-maps img")).to_have_count(3)
    assert "untick" not in note.inner_text().lower()
    expect(page.locator(".toast-body")).to_have_count(0)
    page.screenshot(path=os.path.join(artifacts, "offline_compare.png"), full_page=True)


def test_offline_start_on_our_own_model_with_example_scenes(server_url, page, artifacts):
    """With no pretrained weights here the page opens on the network that shows the most:
    the twin labeller on a twin scene, one click from its Non-local rows."""
    page.goto(server_url)
    expect(page.locator("#start-note")).to_contain_text("generated scenes")
    expect(page.locator("#model input")).to_have_value("Non-local · tiny_nl_twins — bundled")
    expect(page.locator("#pretrained")).to_be_hidden()  # bundled: always its own weights
    page.locator("#analyse").click()  # the twin scene is already in the photo box
    expect(page.locator("#summary")).to_contain_text("tiny_nl_twins on a 64×64", timeout=60_000)
    page.wait_for_function("() => window.visattn && window.visattn.lastRow", timeout=30_000)
    page.screenshot(path=os.path.join(artifacts, "start_twins.png"), full_page=True)
    page.locator("#model input").click()
    page.get_by_role("option", name="CBAM · tiny_cbam — bundled").click()
    page.get_by_role("button", name="scene_striped_disc.png").or_(
        page.locator("img[src*='scene_striped_disc']")).first.click()
    page.locator("#analyse").click()
    expect(page.locator("#summary")).to_contain_text("10 maps captured", timeout=60_000)
    expect(page.locator("#top5")).to_contain_text("striped disc")
    page.screenshot(path=os.path.join(artifacts, "own_model_scene.png"), full_page=True)
