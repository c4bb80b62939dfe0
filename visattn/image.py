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
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .geometry import Geometry  # noqa: F401  (re-exported: the issue names it here)

DEFAULT_MAX_PIXELS = int(os.environ.get("VISATTN_MAX_PIXELS", 40_000_000))
DEFAULT_MAX_BYTES = 25 * 1024 * 1024  # the web app's upload limit, for every way in
TRANSPARENCY_NOTE = ("The photo has transparent areas; they were filled with white, as the "
                     "preview shows them.")
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
    return _decode(data, max_pixels, notes)


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
        return _gray_to_rgb(_scale_high_depth(np.asarray(img), mode))
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


def _scale_high_depth(a: np.ndarray, mode: str) -> np.ndarray:
    """16/32-bit integer or float grey -> uint8, keeping the file's own range."""
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ImageError("The image holds NaN or infinite values (a float image with missing "
                         "data?); save it with finite values, e.g. as an 8- or 16-bit PNG.")
    if mode.startswith("I;16"):
        return np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8)
    if mode == "F" and np.nanmax(a) <= 1.0:
        return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    top = np.nanmax(a)
    scale = 1.0 if top <= 255 else (257.0 if top <= 65535 else top / 255.0)
    return np.clip(np.round(a / scale), 0, 255).astype(np.uint8)


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
