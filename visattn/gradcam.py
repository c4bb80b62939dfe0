"""Attention next to Grad-CAM: the model's own spatial attention at a block against
Grad-CAM (pytorch-grad-cam) of the predicted class at that block, with an agreement score."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from .analysis import ranks


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
