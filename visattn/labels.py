"""Class-name lists shipped in assets/ (one name per line, index = class id).

The files are generated from an installed library's own metadata, never typed:
    python -m visattn.labels        # rewrites assets/labels/{imagenet,scenes}.txt
ADE20K's names and palette come from mmsegmentation's ADE20KDataset, written by the
dev-only tests/mmseg/generate.py (mmseg is not a run-time dependency).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .resources import assets_dir

LABELS_DIR = assets_dir() / "labels"


@lru_cache(maxsize=8)
def load(name: str) -> tuple[str, ...]:
    path = LABELS_DIR / f"{name}.txt"
    if not path.is_file():
        raise KeyError(f"no label list {name!r} in {LABELS_DIR}")
    return tuple(path.read_text(encoding="utf-8").splitlines())


@lru_cache(maxsize=8)
def palette(name: str) -> np.ndarray:
    """(K, 3) uint8 RGB colours of a label list, from assets/labels/<name>_palette.txt."""
    path = LABELS_DIR / f"{name}_palette.txt"
    if not path.is_file():
        raise KeyError(f"no palette for {name!r} in {LABELS_DIR}")
    return np.array([[int(v) for v in line.split()] for line in path.read_text().splitlines()
                     if line.strip()], np.uint8)


def imagenet_from_timm() -> list[str]:
    """ImageNet-1k class descriptions in class-id order, from timm's bundled metadata."""
    from timm.data import ImageNetInfo
    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(info.num_classes())]


def scenes_from_generator() -> list[str]:
    from .scenes import CLASSES
    return list(CLASSES)


GENERATORS = {"imagenet": imagenet_from_timm, "scenes": scenes_from_generator}


def write(name: str, names: list[str]) -> Path:
    LABELS_DIR.mkdir(parents=True, exist_ok=True)
    path = LABELS_DIR / f"{name}.txt"
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    for _name, _make in GENERATORS.items():
        print(write(_name, _make()))
