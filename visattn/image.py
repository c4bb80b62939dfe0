"""Safe image decoding: any path, bytes, PIL image or array in, validated RGB uint8 out.

`load_image` is the only way pixels enter VisAttn. It refuses files over the byte cap
before reading them and images over the pixel cap from the header alone (before any
pixel is decoded), applies EXIF orientation, and turns every PIL mode into RGB the way a
person expects (alpha over white, 16-bit scaled, CMYK through its ICC profile when it has
one; NaN or infinite values refused). `bytes_from_data_url` opens the same door to a
`data:` URL: its size is checked before its base64 is decoded.
"""
from __future__ import annotations

import base64
import binascii
import io
import os
import urllib.parse
import warnings
import zlib
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .geometry import Geometry  # noqa: F401  (re-exported: the issue names it here)

DEFAULT_MAX_PIXELS = int(os.environ.get("VISATTN_MAX_PIXELS", 40_000_000))
DEFAULT_MAX_BYTES = 25 * 1024 * 1024  # the web app's upload limit, for every way in
TRANSPARENCY_NOTE = ("The photo has transparent areas; they were filled with white, as the "
                     "preview shows them.")
REPAIRED_NOTE = ("The file is slightly damaged (a wrong PNG checksum or a missing JPEG end "
                 "marker); it was decoded as browsers do.")
ImageSource = Union[str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray]

_SRGB = ImageCms.createProfile("sRGB")


class ImageError(ValueError):
    """The input cannot be turned into an RGB image; the message says why, for a person."""


def load_image(src: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_BYTES, notes: Optional[list] = None) -> np.ndarray:
    """Decode `src` to an (H, W, 3) uint8 RGB array.

    Paths and bytes are checked against `max_bytes` before reading and `max_pixels` from
    the header before decoding. Animated and multi-page files give their first frame.
    Sentences about what was done to the pixels (transparency filled) go to `notes`.
    """
    if isinstance(src, np.ndarray):
        return _from_array(src, max_pixels)
    if isinstance(src, Image.Image):
        _check_size(src.size, max_pixels)
        return _to_rgb(ImageOps.exif_transpose(src), notes)
    data = _read_bytes(src, max_bytes)
    try:
        return _decode(data, max_pixels, notes)
    except ImageError as first:
        repaired = _repaired(data)  # what browsers decode: bad PNG checksums, no JPEG end
        if repaired is None:
            raise
        try:
            rgb = _decode(repaired, max_pixels, notes)
        except ImageError:
            raise first from None
        if repaired.startswith(b"\xff\xd8") and (rgb[-8:, -8:] == 128).all():
            raise first  # the scan itself was cut short: libjpeg filled its end with grey
        if notes is not None:
            notes.append(REPAIRED_NOTE)
        return rgb


def bytes_from_data_url(url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a `data:[type][;base64],...` URL; refused from its length alone, before
    anything is decoded, when they would exceed `max_bytes`."""
    if not url.startswith("data:") or "," not in url[:512]:
        raise ImageError("This is not a data: URL holding an image.")
    head, body = url[5:].split(",", 1)
    encoded = head.lower().endswith(";base64")
    estimate = len(body) * 3 // 4 if encoded else len(body) // 3
    if estimate > max_bytes:
        raise ImageError(_too_many_bytes(estimate, max_bytes))
    try:
        data = base64.b64decode(body, validate=True) if encoded else \
            urllib.parse.unquote_to_bytes(body)
    except (binascii.Error, ValueError):
        raise ImageError("The data: URL is damaged (its base64 does not decode).") from None
    if len(data) > max_bytes:
        raise ImageError(_too_many_bytes(len(data), max_bytes))
    return data


def _too_many_bytes(n: int, max_bytes: int) -> str:
    return (f"The file is {n / 2**20:.1f} MB, above the limit of {max_bytes / 2**20:.0f} MB; "
            "save it smaller (a JPEG of the photo is usually a few MB).")


def _read_bytes(src, max_bytes: int) -> bytes:
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) > max_bytes:
            raise ImageError(_too_many_bytes(len(src), max_bytes))
        return bytes(src)
    if isinstance(src, (str, os.PathLike)):
        if str(src).startswith("data:"):
            return bytes_from_data_url(str(src), max_bytes)
        path = Path(src)
        if not path.is_file():
            raise ImageError(f"No image file at {path}.")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(_too_many_bytes(size, max_bytes))
        return path.read_bytes()
    raise ImageError(
        f"Cannot read an image from a {type(src).__name__}; "
        "give a file path, bytes, a PIL image or a numpy array."
    )


def _decode(data: bytes, max_pixels: int, notes: Optional[list] = None) -> np.ndarray:
    if not data:
        raise ImageError("The file is empty (0 bytes), so there is no image in it.")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        raise ImageError("SVG is a vector format; export the picture as PNG or JPEG first.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we cap below
            img = Image.open(io.BytesIO(data))  # reads the header only
            _check_size(img.size, max_pixels)
            img.seek(0)
            img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        kind = "text or HTML" if head.startswith((b"<", b"{", b"#")) or _is_text(head) else "data"
        raise ImageError(
            f"This file is {kind}, not an image VisAttn can read "
            "(JPEG, PNG, WebP, GIF, BMP, TIFF)."
        ) from None
    except Image.DecompressionBombError:
        # Pillow's own bomb guard fired while reading the header (above ~179 MP)
        raise ImageError(
            f"The image has over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, above the "
            f"limit of {max_pixels / 1e6:.0f} MP; downscale it first."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(
            f"The image file is truncated or corrupt and cannot be decoded ({exc})."
        ) from None
    return _to_rgb(ImageOps.exif_transpose(img), notes)


def _repaired(data: bytes) -> Optional[bytes]:
    """A PNG with its chunk checksums recomputed, or a JPEG with its end marker added;
    None when neither applies (or nothing would change)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        out, pos = bytearray(data[:8]), 8
        while pos + 8 <= len(data):
            n = int.from_bytes(data[pos:pos + 4], "big")
            body = data[pos + 4:pos + 8 + n]  # type + data
            if len(body) < n + 4:
                break
            out += data[pos:pos + 4] + body + zlib.crc32(body).to_bytes(4, "big")
            pos += 12 + n
            if body[:4] == b"IEND":
                break
        return bytes(out) if bytes(out) != data else None
    if data.startswith(b"\xff\xd8") and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return data + b"\xff\xd9"
    return None


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageError(f"The image has no pixels ({w} x {h}).")
    if w * h > max_pixels:
        raise ImageError(
            f"The image is {w} x {h} = {w * h / 1e6:.1f} megapixels, above the limit of "
            f"{max_pixels / 1e6:.0f} MP; downscale it first."
        )


def _to_rgb(img: Image.Image, notes: Optional[list] = None) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _gray_to_rgb(_scale_high_depth(np.asarray(img), mode, notes))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La", "P") and notes is not None:
        alpha = img.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            notes.append(TRANSPARENCY_NOTE)
    if img.info.get("icc_profile") and mode in ("RGB", "CMYK"):
        img = _through_icc(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _through_icc(img: Image.Image) -> Image.Image:
    """Convert to sRGB with the embedded ICC profile; plain conversion when there is none."""
    icc = img.info.get("icc_profile")
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(img, src, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img


def _scale_high_depth(a: np.ndarray, mode: str, notes: Optional[list] = None) -> np.ndarray:
    """16/32-bit integer or float grey -> uint8, by the range the values show: 16-bit files
    holding 10/12/14-bit data (cameras, scientific images) are scaled by that depth; floats
    in 0..1 are scaled, in -1..1 shifted, in any other range stretched to 0..255; each
    conversion that is not the plain one is said in `notes`."""
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ImageError("The image holds NaN or infinite values (a float image with missing "
                         "data?); save it with finite values, e.g. as an 8- or 16-bit PNG.")
    lo, top = float(a.min(initial=0.0)), float(a.max(initial=0.0))

    def say(text: str) -> None:
        if notes is not None:
            notes.append(text)

    if mode.startswith("I;16") or (mode == "I" and lo >= 0 and top <= 65535):
        bits = next((b for b in (10, 12, 14) if top < 2 ** b), 16)
        if bits < 16 and top > 255:
            say(f"The 16-bit image holds {bits}-bit values (0..{2 ** bits - 1}); they were "
                f"scaled as {bits}-bit, not as 16-bit (which would show them near black).")
            return np.clip(np.round(a * 255.0 / (2 ** bits - 1)), 0, 255).astype(np.uint8)
        scale = 257.0 if mode.startswith("I;16") or top > 255 else 1.0
        return np.clip(np.round(a / scale), 0, 255).astype(np.uint8)
    if mode == "F" and lo >= 0 and top <= 1.0:
        return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    if mode == "F" and lo >= -1.0 and top <= 1.0:
        say("The float image holds values in -1..1; they were mapped to 0..255 (-1 black, "
            "1 white).")
        return np.clip(np.round((a + 1.0) * 127.5), 0, 255).astype(np.uint8)
    if top == lo:
        return np.full(a.shape, 0 if top <= 0 else min(255, int(round(top))), np.uint8)
    say(f"The image's values run from {lo:.4g} to {top:.4g} (the file does not say its range); "
        "they were stretched to 0..255.")
    return np.clip(np.round((a - lo) * 255.0 / (top - lo)), 0, 255).astype(np.uint8)


def _gray_to_rgb(g: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))


def _from_array(a: np.ndarray, max_pixels: int) -> np.ndarray:
    """Arrays: (H, W), (H, W, 1|3|4); uint8, uint16, bool or float in [0, 1] (or 0..255)."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(
            f"An image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}."
        )
    _check_size((a.shape[1], a.shape[0]), max_pixels)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("The image array contains NaN or infinite values.")
        a = a * 255.0 if a.max(initial=0.0) <= 1.0 else a
        a = np.clip(np.round(a), 0, 255).astype(np.uint8)
    elif a.dtype == np.uint16:
        a = np.round(a / 257.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        if a.min(initial=0) < 0 or a.max(initial=0) > 255:
            raise ImageError(
                f"Integer image values must lie in 0..255 (got {a.min()}..{a.max()})."
            )
        a = a.astype(np.uint8)
    else:
        raise ImageError(f"Unsupported image array type {a.dtype}.")
    if a.ndim == 2:
        return _gray_to_rgb(a)
    if a.shape[2] == 4:
        return _to_rgb(Image.fromarray(np.ascontiguousarray(a), "RGBA"))
    return np.ascontiguousarray(a)
