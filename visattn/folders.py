"""A folder of images for a torch DataLoader: worker processes decode each image through
`load_image` (its caps) and prepare the network's input, the main process gets batches.

Class labels from the folder layout follow torchvision's ImageFolder: an image's class is
the name of its first-level subfolder, classes numbered in sorted order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .geometry import Geometry
from .image import DEFAULT_MAX_PIXELS, ImageError, load_image
from .preprocess import Preprocess, prepare

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def image_files(folder: Path) -> list[Path]:
    """Every image under `folder` (by suffix, searched recursively), in sorted order."""
    return sorted(p for p in Path(folder).rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def folder_classes(root: Path, files: Sequence[Path]) -> tuple[list[str], list[int]]:
    """(class names, class of each file) from the first-level subfolders (ImageFolder).
    Raises ValueError when an image lies directly in `root`."""
    loose = [f for f in files if len(f.relative_to(root).parts) < 2]
    if loose:
        raise ValueError(f"{loose[0]} is not inside a class folder: --labels folders needs "
                         f"{root}/<class>/<image>")
    names = sorted({f.relative_to(root).parts[0] for f in files})
    index = {n: i for i, n in enumerate(names)}
    return names, [index[f.relative_to(root).parts[0]] for f in files]


@dataclass
class Item:
    """One image of the folder, ready for the network (or why it could not be read)."""
    index: int
    x: Optional[torch.Tensor]  # (3, H, W)
    geometry: Optional[Geometry]
    rgb: Optional[np.ndarray]  # the decoded photo, when kept
    error: str = ""


@dataclass
class Batch:
    items: list[Item]  # the images that were read, in order
    x: Optional[torch.Tensor]  # (B, 3, H, W) of those items, None if none was read
    failed: list[Item]  # images that could not be read

    def pin_memory(self) -> "Batch":
        """Page-locked pixels (the DataLoader's pin_memory): the copy to a GPU can overlap."""
        if self.x is not None:
            self.x = self.x.pin_memory()
        return self


class PreparedImages(Dataset):
    """Images decoded and prepared (in the DataLoader's workers)."""

    def __init__(self, files: Sequence[Path], preprocess: Preprocess, keep_rgb: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        self.files, self.preprocess = list(files), preprocess
        self.keep_rgb, self.max_pixels = keep_rgb, max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Item:
        try:
            rgb = load_image(self.files[i], max_pixels=self.max_pixels)
        except ImageError as exc:
            return Item(i, None, None, None, str(exc))
        x, geometry = prepare(rgb, self.preprocess)
        return Item(i, x[0], geometry, rgb if self.keep_rgb else None)


def collate(items: list[Item]) -> Batch:
    good = [it for it in items if it.x is not None]
    failed = [it for it in items if it.x is None]
    x = torch.stack([it.x for it in good]) if good else None
    for it in good:
        it.x = None  # the batch tensor holds the pixels
    return Batch(good, x, failed)


def batch_length(preprocess: Preprocess, batch_size: int) -> int:
    """Images per batch `batches` makes: one for keep-ratio inputs, whose sizes differ."""
    return max(1, batch_size if preprocess.mode == "crop" else 1)


def batches(files: Sequence[Path], preprocess: Preprocess, batch_size: int, workers: int,
            keep_rgb: bool = False, pin_memory: bool = False) -> DataLoader:
    """Batches of prepared images in file order. Inputs of different sizes (keep-ratio
    preprocessing) cannot share a batch: then each batch holds one image. `pin_memory`
    (for a CUDA run) page-locks each batch so `.to(device, non_blocking=True)` overlaps."""
    return DataLoader(PreparedImages(files, preprocess, keep_rgb),
                      batch_size=batch_length(preprocess, batch_size),
                      num_workers=workers, collate_fn=collate, shuffle=False,
                      pin_memory=pin_memory and torch.cuda.is_available(),
                      persistent_workers=False, prefetch_factor=2 if workers else None)
