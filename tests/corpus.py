"""A corpus of bad and awkward image files, made by code: name -> (bytes, expectation).
Expectation: "ok" (an analysis comes back) or a phrase the readable error must contain."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(w=96, h=64, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.integers(0, 9, (h, w, 3)), axis=1).clip(0, 255).astype(np.uint8)


def _png_claiming(w: int, h: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _exif_rotated() -> bytes:
    img = Image.fromarray(_photo(80, 40))
    exif = img.getexif()
    exif[0x0112] = 6
    return _save(img, "JPEG", exif=exif)


def _animated_gif() -> bytes:
    frames = [Image.fromarray(_photo(seed=s)).convert("P") for s in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _multipage_tiff() -> bytes:
    pages = [Image.fromarray(_photo(seed=s)) for s in range(2)]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    return buf.getvalue()


def _palette_transparency() -> bytes:
    p = Image.fromarray(_photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _save(p, "PNG", transparency=0)


def _header_lies_jpeg() -> bytes:
    """A JPEG of a few kB whose SOF header claims 60000 x 60000 pixels."""
    data = bytearray(_save(Image.fromarray(_photo()), "JPEG"))
    i = data.find(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


def corpus() -> dict[str, tuple[bytes, str]]:
    jpeg = _save(Image.fromarray(_photo()), "JPEG")
    png = _save(Image.fromarray(_photo()), "PNG")
    unreadable = "not an image"
    broken = "truncated or corrupt"
    too_big = "megapixels"
    return {
        "empty.jpg": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], broken),
        "truncated.png": (png[: len(png) // 2], broken),
        "text_renamed.jpg": (b"Dear reader,\nthis is a letter, not a photo.\n" * 20, unreadable),
        "html_renamed.jpg": (b"<!doctype html><html><body><img src=x></body></html>", unreadable),
        "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "SVG"),
        "random_bytes.png": (bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), unreadable),
        "png_signature_only.png": (b"\x89PNG\r\n\x1a\n", unreadable),
        "bomb.png": (_save(Image.new("1", (10000, 10000)), "PNG"), too_big),
        "header_claims_10gp.png": (_png_claiming(100_000, 100_000), too_big),
        "header_claims_3.6gp.jpg": (_header_lies_jpeg(), too_big),
        "one_pixel.png": (_save(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), "ok"),
        "strip_1x20000.png": (_save(Image.fromarray(_photo(20000, 1)), "PNG"), "ok"),
        "strip_20000x1.png": (_save(Image.fromarray(_photo(1, 20000)), "PNG"), "ok"),
        "tiny_2x2.jpg": (_save(Image.new("RGB", (2, 2), (0, 90, 200)), "JPEG"), "ok"),
        "sixteen_bit.png": (_save(Image.fromarray((np.arange(96 * 64).reshape(64, 96) * 10).astype(np.uint16)), "PNG"), "ok"),
        "cmyk.jpg": (_save(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG"), "ok"),
        "palette_transparency.png": (_palette_transparency(), "ok"),
        "animated.gif": (_animated_gif(), "ok"),
        "multipage.tiff": (_multipage_tiff(), "ok"),
        "exif_rotated.jpg": (_exif_rotated(), "ok"),
        "all_black.png": (_save(Image.new("RGB", (80, 60)), "PNG"), "ok"),
        "all_white.jpg": (_save(Image.new("RGB", (80, 60), (255, 255, 255)), "JPEG"), "ok"),
        "grey.png": (_save(Image.fromarray(_photo()[:, :, 0]), "PNG"), "ok"),
        "grey_alpha.png": (_save(Image.fromarray(_photo()[:, :, :2], "LA"), "PNG"), "ok"),
        "rgba.png": (_save(Image.fromarray(np.dstack([_photo(), _photo()[:, :, :1]]), "RGBA"), "PNG"), "ok"),
        "one_bit.png": (_save(Image.fromarray(_photo()[:, :, 0] > 100), "PNG"), "ok"),
        "photo.webp": (_save(Image.fromarray(_photo()), "WEBP"), "ok"),
        "photo.bmp": (_save(Image.fromarray(_photo()), "BMP"), "ok"),
        "progressive.jpg": (_save(Image.fromarray(_photo()), "JPEG", progressive=True), "ok"),
        "jpeg_with_trailing_garbage.jpg": (jpeg + b"\x00garbage" * 100, "ok"),
        "wrong_extension.png": (jpeg, "ok"),
    }
