"""One door for images: byte cap before reading, data: URLs sized before their base64 is
decoded, NaN/inf refused, transparency said; the web app's photo input hands every payload
to that door and never to Gradio's decoder."""
import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from visattn import image as image_mod
from visattn.image import ImageError, bytes_from_data_url, load_image


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64," + base64.b64encode(data).decode()


def test_data_url_bytes_equal_the_file():
    data = png(Image.new("RGB", (7, 5), (10, 20, 30)))
    assert bytes_from_data_url(data_url(data)) == data
    assert (load_image(data_url(data)) == load_image(data)).all()


def test_data_url_over_the_byte_cap_is_refused_before_decoding(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("decoded")
    monkeypatch.setattr(image_mod.base64, "b64decode", boom)
    url = "data:image/png;base64," + "A" * (4 * 1024 * 1024 // 3 * 4 // 4 + 8)
    with pytest.raises(ImageError, match=r"above the limit of 1 MB"):
        bytes_from_data_url(url, max_bytes=1024 * 1024)


@pytest.mark.parametrize("url, words", [
    ("data:image/png;base64,@@@@", "damaged"),
    ("data:image/png;base64", "not a data: URL"),
    ("http://example.com/x.png", "not a data: URL"),
])
def test_damaged_data_urls(url, words):
    with pytest.raises(ImageError, match=words):
        bytes_from_data_url(url)


def test_text_and_bomb_through_a_data_url_give_sentences_fast():
    with pytest.raises(ImageError, match="text or HTML"):
        load_image(bytes_from_data_url(data_url(b"just some text\n" * 10, "text/plain")))
    bomb = png(Image.new("1", (12000, 12000)))  # 144 MP in ~150 kB
    start = time.perf_counter()
    with pytest.raises(ImageError, match="144.0 megapixels"):
        load_image(bytes_from_data_url(data_url(bomb)))
    assert time.perf_counter() - start < 0.5


def test_byte_cap_applies_to_paths_and_bytes_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    data = png(Image.new("RGB", (300, 300), (1, 2, 3)))
    path.write_bytes(data)
    cap = len(data) - 1
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("read"))
    with pytest.raises(ImageError, match="above the limit"):
        load_image(path, max_bytes=cap)
    with pytest.raises(ImageError, match="above the limit"):
        load_image(data, max_bytes=cap)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_tiff_with_nan_or_inf_is_refused(bad):
    a = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    a[10, 10] = bad
    buf = io.BytesIO()
    Image.fromarray(a, "F").save(buf, "TIFF")
    with pytest.raises(ImageError, match="NaN or infinite"):
        load_image(buf.getvalue())
    a[10, 10] = 0.5  # the same file with finite values is fine
    buf = io.BytesIO()
    Image.fromarray(a, "F").save(buf, "TIFF")
    assert load_image(buf.getvalue()).shape == (48, 64, 3)


def test_transparency_is_filled_white_and_said():
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :4, 3] = 255  # left half opaque red, right half transparent
    notes = []
    rgb = load_image(png(Image.fromarray(rgba, "RGBA")), notes=notes)
    assert notes == [image_mod.TRANSPARENCY_NOTE]
    assert (rgb[:, 4:] == 255).all() and (rgb[:, :4] == [200, 0, 0]).all()
    notes = []
    load_image(png(Image.fromarray(rgba[..., :3].copy())), notes=notes)
    opaque = rgba.copy()
    opaque[..., 3] = 255
    load_image(png(Image.fromarray(opaque, "RGBA")), notes=notes)
    assert notes == []  # no transparency, nothing said


# ----- the web app's input ---------------------------------------------------------------

def payload(**kw):
    from gradio.data_classes import ImageData
    return ImageData(**kw)


def test_photo_input_hands_paths_and_data_url_bytes_to_the_loader(tmp_path):
    import gradio as gr

    from visattn import ui
    data = png(Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20))
    assert ui.photo_input(payload(url=data_url(data))) == data
    assert ui.photo_input(payload(path=str(tmp_path / "x.png"))) == str(tmp_path / "x.png")
    assert ui.photo_input(None) is None
    with pytest.raises(gr.Error, match="above the limit of 25 MB"):
        ui.photo_input(payload(url="data:image/png;base64," + "A" * (34 * 2**20)))
    with pytest.raises(gr.Error, match="did not arrive"):
        ui.photo_input(payload())


def test_a_16_bit_png_by_data_url_is_analysed_as_the_library_decodes_it():
    from visattn import ui
    grey16 = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    data = png(Image.fromarray(grey16))
    session, *_ = ui.run_analysis(ui.photo_input(payload(url=data_url(data))), "tiny_se")
    expected = np.round(grey16 / 257).astype(np.uint8)
    assert (session.trace.image[..., 0] == expected).all()
    assert session.trace.image.mean() < 160  # not clipped to almost white
