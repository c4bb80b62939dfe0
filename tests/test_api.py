"""The HTTP API through gradio_client, as a notebook user would call it; and the promise
that a click never runs the network."""
import os

import numpy as np
import pytest
from PIL import Image

from visattn import ui, zoo


@pytest.fixture
def client(server_url, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    from gradio_client import Client
    return Client(server_url, verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path / "downloads"))


def photo(tmp_path, w=300, h=200):
    rng = np.random.default_rng(1)
    path = tmp_path / "p.png"
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_api_lists_analyze_and_affinity(client):
    names = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/analyze", "/affinity"} <= set(names)


def test_analyze_then_affinity_in_one_session(client, tmp_path):
    from gradio_client import handle_file
    top, summary, gallery, picker = client.predict(handle_file(str(photo(tmp_path))), "tiny_nl",
                                                   True, api_name="/analyze")
    assert "tiny_nl" in summary and "300×200" in summary
    assert top["label"] in zoo.get("tiny_nl").class_names and len(gallery) == 1
    image, numbers = client.predict("nl2:affinity", "mean of heads", 150, 100, 0.5, "jet",
                                    api_name="/affinity")
    assert os.path.exists(image)
    assert (numbers["x"], numbers["y"], numbers["grid"]) == (150, 100, [16, 16])
    x0, y0, x1, y1 = numbers["cell_box"]
    assert x0 <= 150 < x1 and y0 <= 100 < y1
    row = np.array(numbers["row"])
    assert row.shape == (16, 16) and abs(row.sum() - 1) < 1e-3
    # the same pixel through the library gives the same row
    import visattn
    trace = visattn.analyze(str(photo(tmp_path)), "tiny_nl")
    aff = trace["nl2:affinity"]
    cell = trace.geometry.to_grid(150, 100, aff.grid)
    assert numbers["cell"] == cell
    np.testing.assert_allclose(row, aff.row(cell), atol=1e-5)


def test_affinity_without_an_analysis_is_a_readable_error(client):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="Analyse a photo first"):
        client.predict("", "", 1, 1, 0.5, "jet", api_name="/affinity")


def test_clicks_and_views_never_run_the_network(tmp_path):
    calls = []
    model = zoo.load("tiny_nl")
    hook = model.register_forward_hook(lambda m, a, o: calls.append(1))
    try:
        session, *_ = ui.run_analysis(str(photo(tmp_path)), "tiny_nl")
        assert len(calls) == 1
        layer = "nl2:affinity"
        for xy in [(10, 10), (150, 100), (299, 199), None]:
            ui.show_affinity(session, layer, ui.MEAN_OF_HEADS, xy, 0.5, "jet")
        ui.affinity_api(session, layer, "", 20, 30)
        from visattn.ui import tab_channel as channel_tab, tab_nonlocal as nonlocal_tab
        from visattn.ui import tab_spatial as spatial_tab
        for tab in ("overview", "nonlocal", "spatial", "channel"):  # every view, every style
            nonlocal_tab.refresh(session, tab, 0.5, "viridis")
            spatial_tab.refresh(session, tab, 0.5, "viridis", 50)
            channel_tab.refresh(session, tab, 0.2, "turbo")
        ui.compared_tiles(session, 0.3, "inferno")
        ui.export(session, "jet")
        assert len(calls) == 1
    finally:
        hook.remove()
