"""Issue 21, items 9 and 10 (the loader): no silently wrong pixels, and slightly damaged
files decoded as browsers do. 12-bit data in a 16-bit PNG is scaled as 12-bit; a float
TIFF in -1..1 keeps its negative half; one in 0..100 reaches white; each with a note. A
PNG with a wrong checksum and a JPEG missing only its end marker are decoded (with a
note); a JPEG cut in half is still refused."""
import io

import numpy as np
import pytest
from PIL import Image

from visattn.image import REPAIRED_NOTE, ImageError, load_image


def _bytes(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


RAMP = np.linspace(0, 1, 64 * 48).reshape(48, 64)


def test_twelve_bit_data_in_a_sixteen_bit_png_is_scaled_as_twelve_bit():
    data = _bytes(Image.fromarray(np.round(RAMP * 4095).astype(np.uint16)), "PNG")
    notes = []
    rgb = load_image(data, notes=notes)
    assert rgb.max() == 255 and abs(int(rgb[24, 32, 0]) - round(RAMP[24, 32] * 255)) <= 1
    assert any("12-bit" in n for n in notes)


def test_full_sixteen_bit_data_is_scaled_as_before_without_a_note():
    data = _bytes(Image.fromarray(np.round(RAMP * 65535).astype(np.uint16)), "PNG")
    notes = []
    rgb = load_image(data, notes=notes)
    np.testing.assert_array_equal(rgb[..., 0], np.round(np.round(RAMP * 65535) / 257))
    assert notes == []


def test_a_float_tiff_in_minus_one_to_one_keeps_its_negative_half():
    a = (RAMP * 2 - 1).astype(np.float32)
    notes = []
    rgb = load_image(_bytes(Image.fromarray(a, "F"), "TIFF"), notes=notes)
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255
    assert abs(int(rgb[24, 32, 0]) - round((a[24, 32] + 1) * 127.5)) <= 1
    assert any("-1..1" in n for n in notes)


def test_a_float_tiff_in_zero_to_one_hundred_reaches_white():
    a = (RAMP * 100).astype(np.float32)
    notes = []
    rgb = load_image(_bytes(Image.fromarray(a, "F"), "TIFF"), notes=notes)
    assert rgb.max() == 255 and rgb.min() == 0
    assert any("stretched" in n for n in notes)


def test_a_float_tiff_in_zero_to_one_is_scaled_without_a_note():
    notes = []
    rgb = load_image(_bytes(Image.fromarray(RAMP.astype(np.float32), "F"), "TIFF"), notes=notes)
    assert rgb.max() == 255 and notes == []


def _photo() -> Image.Image:
    rng = np.random.default_rng(4)
    return Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((64, 48))


def test_a_png_with_a_wrong_checksum_is_decoded_as_browsers_do():
    png = bytearray(_bytes(_photo(), "PNG"))
    i = png.index(b"IHDR")
    png[i + 4 + 13] ^= 0xFF  # the IHDR chunk's CRC
    with pytest.raises(Exception):
        Image.open(io.BytesIO(bytes(png))).load()  # Pillow alone refuses it
    notes = []
    rgb = load_image(bytes(png), notes=notes)
    np.testing.assert_array_equal(rgb, np.asarray(_photo()))
    assert REPAIRED_NOTE in notes


def test_a_jpeg_missing_only_its_end_marker_is_decoded():
    jpeg = _bytes(_photo(), "JPEG")
    assert jpeg.endswith(b"\xff\xd9")
    notes = []
    rgb = load_image(jpeg[:-2], notes=notes)
    np.testing.assert_array_equal(rgb, load_image(jpeg))
    assert REPAIRED_NOTE in notes


def test_a_jpeg_cut_in_half_is_still_refused():
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    jpeg = _bytes(Image.fromarray(rgb), "JPEG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(jpeg[: len(jpeg) // 2])


def test_a_png_cut_in_half_is_still_refused():
    png = _bytes(_photo(), "PNG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(png[: len(png) // 2])
