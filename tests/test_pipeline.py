"""analyze(): every card of the zoo, end to end on a photo-sized, non-square image."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from timm.layers.squeeze_excite import SEModule

import visattn
from visattn import zoo
from visattn.records import Affinity, SpatialMap


def photo(w=320, h=240, seed=0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.integers(0, 9, (h, w, 3)), axis=1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("card", zoo.cards(), ids=lambda c: c.name)
def test_every_card_analyses_a_photo(card):
    trace = visattn.analyze(photo(), card.name, pretrained=False)
    assert trace.model == card.name
    assert {r.family for r in trace} == (set() if card.family == "Plain" else {card.family})
    h, w = card.preprocess.size
    if card.preprocess.mode == "keep_ratio":  # short side to size[0]: 320 x 240 -> 512 x 384
        assert min(trace.geometry.input_size) == h
    else:
        assert trace.geometry.input_size == (w, h)
    assert trace.geometry.image_size == (320, 240)
    assert trace.image.shape == (240, 320, 3)
    assert trace.prediction is not None and len(trace.prediction.labels) == len(card.class_names)
    if card.task == "segment":
        seg = trace.prediction
        seen = seg.class_map >= 0  # -1: outside the model's view
        assert seg.class_map.shape == (240, 320)
        if card.preprocess.mode == "keep_ratio":  # the whole photo is seen
            assert seen.all()
        else:  # a centre crop (the twin labellers, 64 x 64) sees the middle square
            assert seen[:, 160].all() and not seen[:, 0].any()
        assert abs(sum(seg.shares()) - 1) < 1e-6
        return
    assert len(trace.prediction.probs) == len(card.class_names)
    assert abs(float(trace.prediction.probs.sum()) - 1) < 1e-4
    assert all(r.stage is not None and min(r.grid) >= 1 for r in trace)
    for aff in trace.select(Affinity):
        assert abs(aff.row(0).sum() - 1) < 1e-5


def test_card_preprocessing_is_the_tagged_timm_config():
    from timm.data import resolve_data_config
    card = zoo.get("seresnet50")  # the ra2 weights use crop 0.875; the default a1 tag 0.95
    cfg = resolve_data_config(model=card.source.build())
    pre = card.preprocess
    assert (pre.crop_pct, pre.interpolation, pre.mean, pre.std) == (
        cfg["crop_pct"], cfg["interpolation"], cfg["mean"], cfg["std"])
    assert pre.size == cfg["input_size"][1:]


def test_analyze_accepts_any_module_with_default_preprocessing():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, stride=4, padding=1), SEModule(16, rd_channels=4),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    trace = visattn.analyze(photo(), model)
    assert [r.key for r in trace] == ["1:channel gate"]
    assert trace.geometry.input_size == (224, 224) and trace.records[0].grid == (56, 56)


def test_analyze_reports_bad_images_as_image_errors():
    with pytest.raises(visattn.ImageError, match="not an image"):
        visattn.analyze(b"<html>nope</html>", "seresnet50", pretrained=False)


def test_zoo_registry_errors_and_model_cache():
    with pytest.raises(KeyError, match="known: seresnet50"):
        zoo.get("no_such_net")
    with pytest.raises(ValueError, match="exists already"):
        zoo.register(zoo.get("seresnet50"))
    assert zoo.load("skresnet34", pretrained=False) is zoo.load("skresnet34", pretrained=False)
    assert not zoo.load("skresnet34", pretrained=False).training


def test_spatial_maps_render_on_the_photo_in_the_right_place():
    from visattn import render
    trace = visattn.analyze(photo(400, 300), "cbam_resnet50", pretrained=False)
    rec = trace.select(SpatialMap)[-1]  # 7 x 7
    values = np.zeros(rec.grid, np.float32)
    values[1, 5] = 1.0
    shown = render.map_on_image(trace, values, cap=400, alpha=1.0)
    red = shown[..., 0].astype(int) - shown[..., 2]  # jet peak is dark red
    y, x = np.unravel_index(np.argmax(red), red.shape)
    x0, y0, x1, y1 = trace.geometry.cell_box(1 * rec.grid[1] + 5, rec.grid)
    assert x0 <= x < x1 and y0 <= y < y1


def test_segmentation_class_map_is_the_argmax_of_upsampled_logits():
    """The class map equals argmax over classes of the logits resized bilinearly to the
    photo (mmseg's post-processing), computed here with torch."""
    import torch.nn.functional as F
    from visattn.models.mmseg_r50d8 import SegmentorR50D8
    from visattn.preprocess import prepare
    torch.manual_seed(0)
    model = SegmentorR50D8("danet").eval()
    card = zoo.get("danet_r50_d8_ade20k")
    img = photo(150, 110, seed=4)
    trace = visattn.analyze(img, model, preprocess=card.preprocess, labels=card.class_names)
    x, geo = prepare(img, card.preprocess)
    with torch.no_grad():
        logits = F.interpolate(model(x), size=(110, 150), mode="bilinear", align_corners=False)
    expected = logits[0].argmax(0).numpy()
    agree = (trace.prediction.class_map == expected).mean()
    assert agree > 0.995  # float rounding between OpenCV and torch may flip a near-tie
