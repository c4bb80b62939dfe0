"""Attention next to Grad-CAM: the model's own spatial attention at a block against
Grad-CAM (pytorch-grad-cam) of the predicted class at that block, with an agreement score."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from .metrics import ranks
from .device import of_module
from .preprocess import prepare
from .records import Pairwise, SpatialMap, Trace


def target_layer(layer: str) -> str:
    """The block holding an attention module: Grad-CAM reads its output (the attention
    module's parent, e.g. 'layer2.0.se' -> 'layer2.0'); a top-level module stands alone."""
    return layer.rsplit(".", 1)[0] if "." in layer else layer


def gradcam(model: nn.Module, x: torch.Tensor, layer: str,
            target_class: Optional[int] = None) -> np.ndarray:
    """Grad-CAM of `target_class` (the predicted class when None) at module `layer`, as
    pytorch-grad-cam computes it: an (H_in, W_in) map in [0, 1] at the input's size."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    model.eval()
    targets = None if target_class is None else [ClassifierOutputTarget(int(target_class))]
    with GradCAM(model=model, target_layers=[model.get_submodule(layer)]) as cam:
        return cam(input_tensor=x.clone(), targets=targets)[0].astype(np.float32)


def agreement(a: np.ndarray, b: np.ndarray, top: float = 0.2) -> dict:
    """How alike two maps of the same shape are: Spearman rank correlation, and the IoU of
    their top `top` fraction of pixels. NaN pixels (unseen) are left out."""
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    seen = np.isfinite(a) & np.isfinite(b)
    x, y = a[seen].astype(np.float64), b[seen].astype(np.float64)
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    spearman = float((rx * ry).sum() / denom) if denom > 0 else 0.0
    k = max(1, int(round(top * len(x))))
    top_a = set(np.argsort(-x, kind="stable")[:k])
    top_b = set(np.argsort(-y, kind="stable")[:k])
    iou = len(top_a & top_b) / len(top_a | top_b)
    return {"spearman": spearman, "top_iou": float(iou), "top": top}


def attention_map(rec) -> np.ndarray:
    """What a record attends to on its grid: a spatial map's values, or for a pairwise
    layer its mean row (where the layer looks on average, 64 queries spread over the grid)."""
    if isinstance(rec, SpatialMap):
        return rec.values
    if isinstance(rec, Pairwise):
        n = rec.grid[0] * rec.grid[1]
        return np.mean([rec.row(i) for i in range(0, n, max(1, n // 64))], axis=0)
    raise ValueError(f"{rec.key} is not a spatial map or a pairwise layer")


def comparable(trace: Trace) -> list:
    """The records of a trace that have a map to set against Grad-CAM."""
    return [r for r in trace if isinstance(r, (SpatialMap, Pairwise))]


EMPTY_CAM = ("Grad-CAM of the predicted class at {layer} is empty (zero at every pixel: "
             "nothing at this block raises the class score), so there is nothing to compare "
             "the attention with; no agreement is scored.")


def is_empty(cam: np.ndarray, eps: float = 1e-6) -> bool:
    """An all-zero (or all-NaN) Grad-CAM: pytorch-grad-cam's ReLU left nothing."""
    finite = np.asarray(cam)[np.isfinite(cam)]
    return finite.size == 0 or float(np.abs(finite).max()) <= eps


@dataclass
class Comparison:
    """One record's attention against Grad-CAM of the predicted class at its block. An
    empty Grad-CAM (`empty`) is not scored: its scores are None and `sentence` says so."""
    key: str
    layer: str  # the block Grad-CAM reads
    attention: np.ndarray  # (Hg, Wg) on the record's grid
    cam: np.ndarray  # (H_in, W_in) at the model input
    scores: dict  # spearman, top_iou (None when the Grad-CAM is empty), top
    empty: bool = False

    @property
    def sentence(self) -> str:
        """Why there are no scores, or ''."""
        return EMPTY_CAM.format(layer=self.layer) if self.empty else ""

    def report(self, model: str) -> dict:
        """agreement.json, as the app's Analyses tab and `visattn cam` write it."""
        out = {"model": model, "record": self.key, "gradcam_layer": self.layer, **self.scores,
               "gradcam_empty": self.empty}
        if self.empty:
            out["note"] = self.sentence
        return out


def compare(trace: Trace, model: nn.Module, key: str, top: float = 0.2) -> Comparison:
    """Grad-CAM at the block holding record `key` against the record's own map (resized to
    the input bilinearly), for the trace's image, on the model's device; an empty Grad-CAM
    is said (`Comparison.empty`), not scored."""
    import cv2
    rec = trace[key]
    attention = attention_map(rec)
    x, _ = prepare(trace.image, trace.preprocess)
    layer = target_layer(rec.layer)
    cam = gradcam(model, x.to(of_module(model)), layer)
    if is_empty(cam):
        return Comparison(key, layer, attention, cam,
                          {"spearman": None, "top_iou": None, "top": top}, empty=True)
    resized = cv2.resize(attention.astype(np.float32), (cam.shape[1], cam.shape[0]),
                         interpolation=cv2.INTER_LINEAR)
    return Comparison(key, layer, attention, cam, agreement(resized, cam, top=top))
