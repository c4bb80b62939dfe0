"""load_image: every mode to correct RGB, EXIF, caps before decode, readable errors."""
import io
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from visattn.image import ImageError, load_image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def fake_png(width: int, height: int, body: bytes = b"") -> bytes:
    """A PNG whose header claims width x height, followed by a tiny body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(body)) + png_chunk(b"IEND", b""))


# ----- modes -------------------------------------------------------------------------------

def test_rgb_roundtrip_all_source_types(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    data = encode(Image.fromarray(rgb), "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    for src in (data, bytearray(data), str(path), path, Image.fromarray(rgb), rgb):
        out = load_image(src)
        assert out.dtype == np.uint8 and out.shape == (17, 23, 3)
        np.testing.assert_array_equal(out, rgb)


def test_grey_modes_replicate_to_three_channels():
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = load_image(encode(Image.fromarray(g, "L"), "PNG"))
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)


def test_one_bit_is_black_and_white():
    bits = (np.indices((8, 8)).sum(0) % 2).astype(bool)
    out = load_image(encode(Image.fromarray(bits).convert("1"), "PNG"))
    np.testing.assert_array_equal(out[:, :, 0], np.where(bits, 255, 0))


def test_rgba_alpha_is_composited_over_white():
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., :3] = (200, 40, 10)
    rgba[..., 3] = np.array([0, 64, 128, 255])[:, None]
    out = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG")).astype(float)
    a = rgba[..., 3:4] / 255.0
    expected = a * rgba[..., :3] + (1 - a) * 255.0
    assert np.abs(out - expected).max() <= 1.0
    np.testing.assert_array_equal(out[0], 255)  # fully transparent row is white


def test_la_alpha_is_composited_over_white():
    la = np.zeros((2, 3, 2), np.uint8)
    la[..., 0] = 30
    la[..., 1] = [[0, 255, 0], [255, 0, 255]]
    out = load_image(encode(Image.fromarray(la, "LA"), "PNG"))
    expected = np.where(la[..., 1] == 255, 30, 255)
    np.testing.assert_array_equal(out[..., 1], expected)


def test_palette_with_transparency_composites_over_white():
    p = Image.new("P", (6, 4), 0)
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.paste(1, (3, 0, 6, 4))
    out = load_image(encode(p, "PNG", transparency=0))
    np.testing.assert_array_equal(out[:, :3], 255)  # transparent index -> white
    np.testing.assert_array_equal(out[:, 3:], np.broadcast_to([0, 0, 255], (4, 3, 3)))


def test_16_bit_grey_png_is_scaled_not_clipped():
    levels = np.arange(0, 256, 17, dtype=np.uint16)
    a16 = np.tile(levels * 257, (3, 1))
    img = Image.fromarray(a16.astype(np.uint16))
    assert img.mode.startswith("I")
    out = load_image(encode(img, "PNG"))
    np.testing.assert_array_equal(out[:, :, 0], np.tile(levels, (3, 1)))


def test_cmyk_jpeg_converts_to_rgb_colours():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan/black, full M+Y: red
    out = load_image(encode(cmyk, "JPEG", quality=95))
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 230 and g < 30 and b < 30


def test_exif_orientation_is_applied():
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red
    arr[:, 20:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    out = load_image(encode(img, "JPEG", exif=exif, quality=95))
    expected = np.rot90(arr, k=-1)
    assert out.shape == expected.shape == (40, 20, 3)
    assert np.abs(out.astype(int) - expected).mean() < 8
    # also for PIL images given directly
    pil = Image.open(io.BytesIO(encode(img, "JPEG", exif=exif, quality=95)))
    assert load_image(pil).shape == (40, 20, 3)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = load_image(buf.getvalue())
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 50


def test_arrays_of_each_kind():
    f = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(load_image(f)[..., 2], np.round(f * 255).astype(np.uint8))
    u16 = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    np.testing.assert_array_equal(load_image(u16)[..., 0], np.round(u16 / 257).astype(np.uint8))
    b = np.eye(3, dtype=bool)
    np.testing.assert_array_equal(load_image(b)[..., 1], np.eye(3) * 255)
    rgba = np.zeros((2, 2, 4), np.uint8)
    np.testing.assert_array_equal(load_image(rgba), 255)  # transparent -> white
    assert load_image(np.zeros((5, 7, 1), np.uint8)).shape == (5, 7, 3)


# ----- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"<html><body>not a picture</body></html>", "not an image"),
    (b"hello, I am a text file renamed to photo.jpg\n", "not an image"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    (bytes(range(256)) * 4, "not an image"),
])
def test_non_images_are_refused_readably(data, words):
    with pytest.raises(ImageError, match=words):
        load_image(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_refused(fmt):
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(rgb), fmt)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_missing_path_and_wrong_type():
    with pytest.raises(ImageError, match="No image file"):
        load_image("/nonexistent/photo.jpg")
    with pytest.raises(ImageError, match="Cannot read an image"):
        load_image(12345)


def test_bad_arrays():
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="0..255"):
        load_image(np.full((4, 4), 300, np.int32))


def test_pixel_cap_refuses_header_claim_without_decoding():
    bomb = fake_png(100_000, 100_000, b"\x00" * 64)  # claims 10 gigapixels in ~100 bytes
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ImageError, match="megapixels"):
        load_image(bomb)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 5_000_000


@pytest.mark.parametrize("side", [9000, 10000])  # below and above Pillow's own warning
def test_real_decompression_bomb_png_is_refused_cheaply(side):
    data = encode(Image.new("1", (side, side)), "PNG")  # 81 / 100 MP, a few kB on disk
    assert len(data) < 200_000
    tracemalloc.start()
    with pytest.raises(ImageError, match=f"{side * side / 1e6:.1f} megapixels"):
        load_image(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000  # decoding 81 MP would need 81 MB


def test_pixel_cap_is_configurable_and_applies_to_every_source():
    rgb = np.zeros((20, 20, 3), np.uint8)
    for src in (rgb, Image.fromarray(rgb), encode(Image.fromarray(rgb), "PNG")):
        with pytest.raises(ImageError, match="limit"):
            load_image(src, max_pixels=399)
        assert load_image(src, max_pixels=400).shape == (20, 20, 3)
