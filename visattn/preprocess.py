"""Preprocess: how a model card turns an RGB image into its input tensor and Geometry."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
from PIL import Image

from .geometry import Geometry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_PIL = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
        "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
_CV2 = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}


@dataclass(frozen=True)
class Preprocess:
    """`crop`: resize the short side to floor(size / crop_pct), centre-crop `size` (H, W)
    (timm / torchvision eval transform, PIL resampling).
    `keep_ratio`: rescale so the short side is size[0] and the long side at most size[1]
    (mmsegmentation test pipeline, OpenCV resampling). Mean/std are RGB in 0..1."""

    size: tuple[int, int] = (224, 224)
    mode: Literal["crop", "keep_ratio"] = "crop"
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def geometry(self, image_size: tuple[int, int]) -> Geometry:
        if self.mode == "keep_ratio":
            return Geometry.keep_ratio(image_size, self.size[0], self.size[1])
        return Geometry.center_crop(image_size, math.floor(self.size[0] / self.crop_pct), self.size)


def prepare(rgb: np.ndarray, pre: Preprocess) -> tuple[torch.Tensor, Geometry]:
    """(H, W, 3) uint8 RGB -> normalised (1, 3, Hin, Win) float32 tensor and its Geometry."""
    h0, w0 = rgb.shape[:2]
    geo = pre.geometry((w0, h0))
    if pre.mode == "keep_ratio":
        pixels = cv2.resize(rgb, geo.resized, interpolation=_CV2[pre.interpolation])
    else:
        pixels = _resize_crop_pil(rgb, geo, _PIL[pre.interpolation])
    x = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(pre.mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(pre.std, dtype=torch.float32).view(3, 1, 1)
    return x.sub_(mean).div_(std).unsqueeze(0), geo


def _resize_crop_pil(rgb: np.ndarray, geo: Geometry, resample) -> np.ndarray:
    """Resize + centre crop without building the whole resized image: PIL resamples only
    the source box that maps onto the crop (same scale, hence the same filter), so a
    1 x 20000 strip costs what its crop costs."""
    (w0, h0), (wr, hr), (ox, oy), (win, hin) = (geo.image_size, geo.resized, geo.offset,
                                                geo.input_size)
    img = Image.fromarray(rgb)
    if 0 <= ox and ox + win <= wr and 0 <= oy and oy + hin <= hr:
        box = (ox * w0 / wr, oy * h0 / hr, (ox + win) * w0 / wr, (oy + hin) * h0 / hr)
        return np.asarray(img.resize((win, hin), resample, box=box))
    # crop larger than the resized image (crop_pct > 1): resize all, pad with zeros
    full = np.asarray(img.resize((wr, hr), resample))
    out = np.zeros((hin, win, 3), np.uint8)
    sx0, sy0 = max(ox, 0), max(oy, 0)
    sx1, sy1 = min(ox + win, wr), min(oy + hin, hr)
    out[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox] = full[sy0:sy1, sx0:sx1]
    return out
