"""Rendering: RGB (not BGR) colours, alpha, unseen regions, charts."""
import matplotlib
import numpy as np
import pytest

from visattn import render


def test_colormap_is_rgb_in_matplotlib_order():
    for cmap in ("jet", "viridis", "inferno", "turbo"):
        expected = np.round(np.array(matplotlib.colormaps[cmap]([0.0, 0.3, 1.0]))[:, :3] * 255)
        got = render.colorize(np.array([[0.0, 0.3, 1.0]]), cmap)[0]
        assert np.abs(got.astype(int) - expected).max() <= 1, cmap
    hot = render.colorize(np.array([[1.0]]), "jet")[0, 0]
    assert hot[0] > 100 and hot[2] == 0  # jet's top is dark red, not dark blue (BGR bug)


def test_nan_is_grey_and_overlay_darkens_unseen_pixels():
    img = np.full((2, 2, 3), 200, np.uint8)
    heat = np.array([[np.nan, 0.0], [0.5, 1.0]], np.float32)
    assert (render.colorize(heat)[0, 0] == render.NAN_GREY).all()
    out = render.overlay(img, heat, alpha=0.0)
    assert (out[0, 0] == 70).all() and (out[1, 1] == 200).all()  # 200 * 0.35 = 70
    full = render.overlay(img, heat, alpha=1.0)
    np.testing.assert_array_equal(full[1, 1], render.colorize(heat)[1, 1])


def test_normalize_and_display_size():
    np.testing.assert_allclose(render.normalize(np.array([2.0, 4.0, np.nan])), [0, 1, np.nan])
    assert (render.normalize(np.ones(3)) == 0.5).all()
    assert render.display_size(4000, 3000) == (768, 576)
    assert render.display_size(300, 200) == (300, 200)  # not enlarged unless asked
    assert render.display_size(64, 32, cap=256, enlarge=True) == (256, 128)
    scene = np.zeros((2, 2, 3), np.uint8)
    scene[0, 0] = 255
    big = render.fit(scene, cap=8, enlarge=True)  # nearest neighbour: crisp blocks
    assert big.shape == (8, 8, 3) and (big[:4, :4] == 255).all() and (big[4:, :] == 0).all()


def test_bars_are_as_tall_as_their_values():
    chart = render.bars(np.array([0.0, 0.5, 1.0, 0.25]), width=40, height=21)
    heights = (chart != 255).any(axis=2).sum(axis=0)[[5, 15, 25, 35]]
    assert list(heights) == [1, 11, 21, 6]


def test_gate_charts_use_the_value_axis_not_the_data_range():
    gates = np.random.default_rng(0).uniform(0.40, 0.66, 48)  # all mid-range: none is "off"
    fig, ax = render.gate_figure(gates, "gate")
    assert ax.get_ylim() == (0.0, 1.0) and "gate" in ax.get_ylabel()
    assert ax.get_xlim() == (-0.5, 47.5) and "channel" in ax.get_xlabel()
    heights = sorted(p.get_height() for p in ax.patches)
    np.testing.assert_allclose(heights, np.sort(gates))  # bars from 0, at the gate values
    logits = np.array([-2.0, 0.5, 3.0])
    lo, hi, label = render.value_axis(logits, "logit")
    assert (lo, hi) == (-2.0, 3.0) and "logit" in label
    assert render.value_axis(np.array([0.2, 0.9]), "vector")[:2] == (0.0, 0.9)
    import matplotlib.pyplot as plt
    plt.close("all")


def test_blocks_by_channels_rows_are_labelled_by_block():
    from visattn.records import ChannelWeights
    recs = [ChannelWeights(values=np.linspace(0.1, 0.9, c), layer=f"layer{i}.se", family="SE",
                           name="channel gate", grid=(4, 4)) for i, c in enumerate((8, 16, 32), 1)]
    img = render.gate_matrix(recs)
    assert img.ndim == 3 and img.shape[2] == 3
    fig, ax = render.matrix_figure(np.zeros((3, 5)), ["layer1.se", "layer2.se", "layer3.se"], "gate",
                                   ("first channel", "last channel"))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["layer1.se", "layer2.se", "layer3.se"]
    assert ax.images[0].get_clim() == (0.0, 1.0)
    import matplotlib.pyplot as plt
    plt.close("all")


def test_gallery_captions_name_each_pass_of_a_block_called_twice():
    """CCNet runs one criss-cross block twice: its two passes and their two-hop record each
    get a caption of their own, in the page's words (no 'calls 0+1')."""
    from pairwise_records import random_trace
    from visattn import render
    trace = random_trace()
    captions = [caption for _, caption in render.gallery(trace, cap=64)]
    assert len(set(captions)) == len(captions), captions
    cross = [c for c in captions if c.startswith("cc · criss-cross")]
    assert [c.split(" (")[0] for c in cross] == ["cc · criss-cross, pass 1", "cc · criss-cross, pass 2"]
    assert not any("calls" in c for c in captions)


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3), (37, 53, 4)])
def test_png_bytes_is_lossless_and_keeps_the_colour_order(shape):
    """Pillow reads back exactly what render.png_bytes was given: grey, RGB and RGBA, with red
    still red (OpenCV writes BGR)."""
    import io
    from PIL import Image
    img = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    if len(shape) == 3:
        img[0, 0, :3] = (255, 0, 0)
    back = np.asarray(Image.open(io.BytesIO(render.png_bytes(img))))
    assert back.shape == img.shape and np.array_equal(back, img)
