"""Clips in (issue 23, part 1): space-time records, decoding, sampling, caps and sentences.

Rows are checked against an independent recomputation: the block's own `theta` and `phi`
hooked with forward hooks of the test's, softmax(theta^T phi * scale) in torch, and the
block's output rebuilt from the record's rows (so the rows are the ones the block uses).
"""
from __future__ import annotations

import wave
import zipfile

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import visattn
from visattn import video
from visattn.models.i3d_nl import NonLocal3d
from visattn.records_video import Clip, SpaceTimeAffinity

SMALL = {"size": (32, 32), "crop_pct": 1.0}  # the frames as they are


class TwoBlocks(nn.Module):
    """A clip network with two space-time blocks: sub-sampled keys, and full keys."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 8, (1, 4, 4), (1, 4, 4))
        self.nl_pooled = NonLocal3d(8, sub_sample=True, use_scale=False)
        self.nl_full = NonLocal3d(8, sub_sample=False, use_scale=True)

    def forward(self, x):
        return self.nl_full(self.nl_pooled(self.stem(x))).mean((2, 3, 4))


def _live(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def _frames(t=6, h=32, w=32, seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).random((t, h, w, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def analysed():
    model = _live(TwoBlocks())
    hooked = {}
    for name in ("nl_pooled", "nl_full"):
        block = getattr(model, name)
        for part in ("theta", "phi", "g"):
            getattr(block, part).register_forward_hook(
                lambda m, a, out, key=(name, part): hooked.__setitem__(key, out.detach().clone()))
        block.register_forward_pre_hook(
            lambda m, a, key=name: hooked.__setitem__((key, "x"), a[0].detach().clone()))
        block.register_forward_hook(
            lambda m, a, out, key=name: hooked.__setitem__((key, "y"), out.detach().clone()))
    trace = visattn.analyze_video(_frames(), model, preprocess=SMALL)
    return model, trace, hooked


def test_rows_equal_softmax_of_hooked_theta_phi_and_rebuild_the_block(analysed):
    model, trace, hooked = analysed
    recs = trace.select(SpaceTimeAffinity)
    assert [r.layer for r in recs] == ["nl_pooled", "nl_full"]
    for rec, pooled in zip(recs, (True, False)):
        block = getattr(model, rec.layer)
        theta, phi, g = (hooked[(rec.layer, p)][0] for p in ("theta", "phi", "g"))
        assert rec.grid == tuple(theta.shape[1:]) == (6, 8, 8)
        assert rec.key_grid == tuple(phi.shape[1:]) == ((6, 4, 4) if pooled else (6, 8, 8))
        scale = 1.0 if pooled else theta.shape[0] ** -0.5
        attn = torch.softmax(theta.flatten(1).T @ phi.flatten(1) * scale, dim=-1)  # (N, M)
        rows = np.stack([rec.row(i).ravel() for i in range(attn.shape[0])])
        np.testing.assert_allclose(rows, attn.numpy(), rtol=1e-5, atol=1e-6)
        # the block's output from the record's rows: the rows are the ones it uses
        x = hooked[(rec.layer, "x")]
        y = torch.from_numpy(rows).float() @ g.flatten(1).T  # (N, C')
        y = y.T.reshape(1, -1, *x.shape[2:])
        with torch.no_grad():
            rebuilt = x + block.conv_out(y)
        torch.testing.assert_close(rebuilt, hooked[(rec.layer, "y")], rtol=1e-4, atol=1e-5)


def test_a_wrong_recomputation_is_caught(analysed):
    """Negative control: keys taken before the pool do not give the pooled block's rows."""
    _, trace, hooked = analysed
    rec = trace["nl_pooled:affinity"]
    theta = hooked[("nl_pooled", "theta")][0].flatten(1)
    unpooled = torch.nn.functional.interpolate(hooked[("nl_pooled", "phi")], scale_factor=(1, 2, 2))
    wrong = torch.softmax(theta.T @ unpooled[0].flatten(1), -1)
    assert wrong.shape[1] != rec.row(0).size


def test_trace_round_trips_through_save_and_load(analysed, tmp_path):
    _, trace, _ = analysed
    visattn.save(trace, tmp_path / "clip.npz")
    back = visattn.load(tmp_path / "clip.npz")
    assert [type(r) for r in back] == [type(r) for r in trace]
    for a, b in zip(trace.select(SpaceTimeAffinity), back.select(SpaceTimeAffinity)):
        assert (a.key, a.grid, a.key_grid, a.scale) == (b.key, b.grid, b.key_grid, b.scale)
        np.testing.assert_array_equal(a.queries, b.queries)
        np.testing.assert_array_equal(a.keys, b.keys)
        np.testing.assert_array_equal(a.row(17), b.row(17))
    assert isinstance(back.clip, Clip)
    np.testing.assert_array_equal(back.clip.frames, trace.clip.frames)
    np.testing.assert_array_equal(back.clip.indices, trace.clip.indices)


def test_key_cells_map_back_to_frames_and_pixels(analysed):
    _, trace, _ = analysed
    rec = trace["nl_pooled:affinity"]
    # key time cell -> input frames: 6 frames on 6 cells, one each
    assert [trace.clip.frame_span(t, rec.key_grid[0]) for t in range(6)] == [(t, t + 1) for t in range(6)]
    # key cell (r, c) of the 4 x 4 key grid covers 8 x 8 frame pixels (input 32 px)
    assert trace.geometry.cell_box(3 * 4 + 1, rec.key_frame_grid) == (8, 24, 16, 32)
    assert rec.key_cell_of(rec.cell(2, 5, 6)) == (2 * 4 + 2) * 4 + 3


def test_sampling_is_mmaction2_test_mode():
    s = video.Sampling(32, 2)
    # long video: centred, offset int((n - 64 + 1) / 2)
    assert s.indices(300).tolist() == list(range(118, 118 + 64, 2))
    # short video: from 0, wrapped around
    assert s.indices(40).tolist() == [(2 * k) % 40 for k in range(32)]
    assert video.Sampling(4).indices(4).tolist() == [0, 1, 2, 3]


def _write_video(path, frames, fourcc="mp4v", fps=10.0):
    h, w = frames.shape[1:3]
    out = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    for f in frames:
        out.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out.release()


def test_mp4_gif_folder_zip_and_array_give_the_sampled_frames(tmp_path):
    frames = np.zeros((12, 32, 48, 3), np.uint8)
    for t in range(12):
        frames[t, :, :, 0] = 20 * t  # frame number in the red channel
    mp4, gif = tmp_path / "c.mp4", tmp_path / "c.gif"
    _write_video(mp4, frames, "MJPG")
    Image.fromarray(frames[0]).save(gif, save_all=True, duration=100, loop=0,
                                    append_images=[Image.fromarray(f) for f in frames[1:]])
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, f in enumerate(frames):  # natural order: 2 before 10
        Image.fromarray(f).save(folder / f"f{t}.png")
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as z:
        for p in folder.iterdir():
            z.write(p, f"clip/{p.name}")
    s = video.Sampling(4, 3)
    for source in (mp4, gif, folder, tmp_path / "c.zip", frames):
        clip = video.load_clip(source, s)
        assert clip.indices.tolist() == [0, 3, 6, 9]
        assert clip.frames.shape == (4, 32, 48, 3)
        assert clip.frame_count == 12
        red = clip.frames[..., 0].mean(axis=(1, 2))
        np.testing.assert_allclose(red, [0, 60, 120, 180], atol=6)


def _wav(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, np.int16).tobytes())


@pytest.mark.parametrize("kind, needle", [
    ("corrupt", "damaged"), ("empty", "empty"), ("audio", "audio"), ("image", "still PNG"),
    ("text", "text file"), ("empty_folder", "no image frames"), ("bad_zip", "no image frames"),
    ("missing", "no file"), ("mixed_sizes", "differ in size"), ("bytes", "MB"),
    ("pixels", "megapixels"), ("frames", "frames"), ("duration", "lasts"), ("array", "uint8")])
def test_every_bad_clip_gets_a_sentence(kind, needle, tmp_path, monkeypatch):
    p = tmp_path / "clip.mp4"
    good = tmp_path / "good.mp4"
    _write_video(good, _frames(8, 32, 32))
    source = p
    if kind == "corrupt":
        p.write_bytes(good.read_bytes()[:300])
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "audio":
        _wav(p)
    elif kind == "image":
        Image.fromarray(_frames(1)[0]).save(p, format="PNG")
    elif kind == "text":
        p.write_text("this is not a video\n" * 10)
    elif kind == "empty_folder":
        source = tmp_path / "none"
        source.mkdir()
    elif kind == "bad_zip":
        source = tmp_path / "c.zip"
        with zipfile.ZipFile(source, "w") as z:
            z.writestr("readme.txt", "no frames")
    elif kind == "missing":
        source = tmp_path / "nothing.mp4"
    elif kind == "mixed_sizes":
        source = tmp_path / "mixed"
        source.mkdir()
        Image.fromarray(_frames(1, 32, 32)[0]).save(source / "1.png")
        Image.fromarray(_frames(1, 40, 32)[0]).save(source / "2.png")
    elif kind == "bytes":
        source = good
        monkeypatch.setattr(video, "MAX_BYTES", 1000)
    elif kind == "pixels":
        source = np.zeros((2, 1100, 2000, 3), np.uint8)
    elif kind == "frames":
        source = good
        monkeypatch.setattr(video, "MAX_FRAMES", 5)
    elif kind == "duration":
        source = good
        monkeypatch.setattr(video, "MAX_DURATION_S", 0.5)
    elif kind == "array":
        source = np.zeros((2, 8, 8, 3), np.float32)
    with pytest.raises(video.VideoError) as err:
        video.load_clip(source, video.Sampling(4), max_bytes=video.MAX_BYTES)
    message = str(err.value)
    assert needle in message, message
    assert message.count(". ") == 0 and message.endswith("."), message  # one sentence


def test_write_webm_gives_a_vp8_clip_that_decodes_to_its_frames(tmp_path):
    """Browsers play VP8 WebM (not OpenCV's mp4v): the file says VP80, and its frames,
    enlarged 4x by pixel repetition, come back within VP8's loss."""
    from visattn import scenes
    from visattn.video import write_webm
    frames = scenes.moving_clip(11).frames
    path = write_webm(frames, tmp_path / "c.webm", fps=2.0, scale=4)
    cap = cv2.VideoCapture(str(path))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1")
    cap.release()
    assert fourcc.upper() in ("VP80", "VP8\0"), fourcc
    clip = video.load_clip(path)
    assert clip.frames.shape == (len(frames), 256, 256, 3)
    small = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in clip.frames])
    err = np.abs(small.astype(int) - frames.astype(int))
    assert err.mean() < 4, err.mean()  # colours right: an RGB/BGR mix-up is ~40
    with pytest.raises(ValueError):
        write_webm(frames[..., 0], tmp_path / "bad.webm")


def test_the_example_clip_is_the_generated_clip_it_says_it_is():
    from visattn import scenes
    from visattn.weights import ASSETS
    clip = video.load_clip(ASSETS / "examples" / f"clip_{scenes.CLIP_EXAMPLE_SEED}.webm")
    frames = scenes.moving_clip(scenes.CLIP_EXAMPLE_SEED).frames
    small = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in clip.frames])
    assert small.shape == frames.shape and np.abs(small.astype(int) - frames).mean() < 4


def test_unplayable_codec_names_what_browsers_cannot_play(tmp_path):
    from visattn.video import unplayable_codec, write_webm
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    assert unplayable_codec(write_webm(frames, tmp_path / "a.webm")) is None
    writer = cv2.VideoWriter(str(tmp_path / "b.mp4"), cv2.CAP_FFMPEG,
                             cv2.VideoWriter_fourcc(*"mp4v"), 4, (32, 32))
    for f in frames:
        writer.write(f)
    writer.release()
    assert unplayable_codec(tmp_path / "b.mp4") == "MPEG-4 Part 2 (mp4v)"
    Image.fromarray(frames[0]).save(tmp_path / "c.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]])
    assert unplayable_codec(tmp_path / "c.gif") == "GIF"
    assert unplayable_codec(tmp_path / "missing.mp4") is None


def test_a_clip_labellers_prediction_is_its_class_map_in_every_frame():
    """tiny_nl_clips labels every pixel of every frame: the prediction holds one class map
    per frame, the argmax of the network's own logits (frames are the input's size here),
    and its top classes are their shares of the clip's pixels."""
    from visattn import scenes
    clip = scenes.moving_clip(4)
    trace = visattn.analyze_video(clip.frames, "tiny_nl_clips")
    net = visattn.open_network("tiny_nl_clips")
    from visattn.preprocess import prepare
    x = torch.stack([prepare(f, net.preprocess)[0] for f in clip.frames], dim=2)
    with torch.no_grad():
        expected = net.module(x)[0].argmax(0).numpy()  # (T, H, W)
    got = trace.prediction.class_map
    assert got.shape == expected.shape == (4, 64, 64)
    assert (got == expected).mean() > 0.999  # bilinear on an identity geometry: ties aside
    share = {name: v for name, v in trace.prediction.top(4)}
    for k, name in enumerate(trace.prediction.labels):
        assert share.get(name, 0.0) == pytest.approx((expected == k).mean(), abs=1e-3)


def test_the_summary_of_a_clip_says_frames_and_clip():
    from visattn import scenes
    from visattn.ui.analyse_button import summary
    trace = visattn.analyze_video(scenes.moving_clip(4).frames, "tiny_nl_clips")
    first = summary(trace).split("\n")[0]
    assert "on 4 frames of a 64×64 clip: 1 map captured" in first, first
    assert "classes by share of the clip" in first and "image" not in first


def test_the_crop_sentence_of_a_clip_speaks_of_its_frames():
    """I3D-NL crops the centre 224 px of frames resized to short side 256: a wide clip's
    frames lose their sides, said for frames, not for a photo."""
    from visattn.ui.analyse_button import crop_note
    frames = np.random.default_rng(0).integers(0, 256, (32, 90, 160, 3), dtype=np.uint8)
    trace = visattn.analyze_video(frames, "i3d_nl_r50_kinetics400", pretrained=False)
    note = crop_note(trace)
    assert "of this 160×90 clip's frames" in note and "photo" not in note
