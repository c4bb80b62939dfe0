"""The page's handlers, called as Gradio calls them."""
import gradio as gr
import numpy as np
import pytest
from PIL import Image

from visattn import ui, weights, zoo


def test_choices_cover_the_zoo_grouped_by_family():
    choices = ui.model_choices()
    assert [v for _, v in choices] == [c.name for c in zoo.cards()]
    assert all(label.startswith(f"{zoo.get(v).family} · {v} — ") for label, v in choices)
    sizes = {v: label.rsplit("downloads ", 1)[-1] for label, v in choices}
    assert sizes["botnet26t_256"] == f"{zoo.get('botnet26t_256').download_mb:.0f} MB"


def test_run_analysis_gives_top5_summary_and_one_thumbnail_per_record(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (180, 260, 3), dtype=np.uint8)).save(path)
    top, summary, gallery, picker = ui.run_analysis(str(path), "cbam_resnet50", pretrained=False)
    assert picker.value == "cbam_resnet50"
    assert len(top) == 5 and abs(sum(top.values())) <= 1.0 + 1e-6
    assert "260×180" in summary and "32 maps" in summary and "Random weights" in summary
    assert len(gallery) == 32
    img, caption = gallery[1]
    assert img.dtype == np.uint8 and img.ndim == 3 and "spatial gate" in caption


def test_run_analysis_errors_are_readable(tmp_path):
    with pytest.raises(gr.Error, match="Upload a photo"):
        ui.run_analysis(None, "seresnet50")
    bad = tmp_path / "x.jpg"
    bad.write_text("not really a jpeg")
    with pytest.raises(gr.Error, match="not an image"):
        ui.run_analysis(str(bad), "seresnet50", pretrained=False)


def test_missing_weights_offline_say_what_to_do_quickly(tmp_path, monkeypatch):
    import time
    monkeypatch.setenv("VISATTN_OFFLINE", "1")
    path = tmp_path / "p.png"
    Image.new("RGB", (64, 48)).save(path)
    start = time.perf_counter()
    with pytest.raises(gr.Error, match=r"python -m visattn download gcresnet50t.*untick"):
        ui.run_analysis(str(path), "gcresnet50t", pretrained=True)
    assert time.perf_counter() - start < 5


def test_default_is_a_cached_pretrained_network_else_our_own_bundled_one():
    model, note = ui.default_model()
    assert zoo.get(model).availability() == "bundled" and "generated scenes" in note
    spec = zoo.get("cbam_resnet50").weights  # pretend its weights are cached
    path = weights.cache_dir() / "url" / spec.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert ui.default_model() == ("cbam_resnet50", "")


def test_own_model_on_an_example_scene_names_its_class():
    from visattn import scenes
    example = next(p for p in ui.EXAMPLES if "striped_disc" in p.name)
    top, summary, gallery, _ = ui.run_analysis(str(example), "tiny_cbam")
    assert max(top, key=top.get) == "striped disc" and scenes.CLASSES[0] == "striped disc"
    assert len(gallery) == 10 and "generated scenes" in summary


def test_page_builds():
    assert isinstance(ui.build(), gr.Blocks)
