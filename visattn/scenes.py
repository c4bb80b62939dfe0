"""Generated scenes with known ground truth, for training VisAttn's own small models and for
measuring whether attention maps are right.

A scene is a 64 x 64 RGB image: a cluttered, textured background, small distractor patches
that reuse the targets' colours and textures, and one target object whose class is the
label. Classes differ in shape *and* texture, so neither cue alone is a shortcut through
the clutter. Everything is a pure function of the seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 64
CLASSES = ("striped disc", "checkered square", "dotted triangle", "solid cross",
           "ringed diamond", "speckled ring")
PALETTE = np.array([(230, 60, 50), (40, 170, 70), (50, 90, 220), (240, 200, 40),
                    (200, 60, 200), (40, 200, 210), (245, 245, 245), (30, 30, 30)], np.float32)


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (SIZE, SIZE, 3) uint8 RGB
    mask: np.ndarray  # (SIZE, SIZE) bool, the target object
    label: int


def _grid(size: int):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return x + 0.5, y + 0.5


_X, _Y = _grid(SIZE)


def _shape(kind: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Boolean mask of shape `kind` centred at (cx, cy) with radius r."""
    dx, dy = _X - cx, _Y - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    d = np.hypot(dx, dy)
    if kind == 0:  # disc
        return d <= r
    if kind == 1:  # square
        return (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
    if kind == 2:  # triangle pointing up (in the rotated frame)
        return (v <= r * 0.6) & (v >= -r) & (np.abs(u) <= (v + r) * 0.62)
    if kind == 3:  # cross
        arm = r * 0.33
        return ((np.abs(u) <= arm) & (np.abs(v) <= r)) | ((np.abs(v) <= arm) & (np.abs(u) <= r))
    if kind == 4:  # diamond
        return np.abs(u) + np.abs(v) <= r
    return (d <= r) & (d >= r * 0.55)  # ring


def _texture(kind: int, rng: np.random.Generator, period: float, angle: float,
             x: np.ndarray = _X, y: np.ndarray = _Y) -> np.ndarray:
    """[0, 1] pattern at pixel centres (x, y): which of the two colours each pixel takes."""
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    if kind == 0:  # stripes
        return (np.floor(u / period) % 2).astype(np.float32)
    if kind == 1:  # checker
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == 2:  # dots on a plain ground
        return ((np.hypot(u % period - period / 2, v % period - period / 2) < period * 0.3)
                .astype(np.float32))
    if kind == 3:  # solid
        return np.zeros(x.shape, np.float32)
    if kind == 4:  # concentric rings around the middle of the painted area
        return (np.floor(np.hypot(u - u.mean(), v - v.mean()) / period) % 2).astype(np.float32)
    return (rng.random(x.shape) < 0.35).astype(np.float32)  # speckle


def _paint(canvas: np.ndarray, mask: np.ndarray, pattern: np.ndarray, a, b) -> None:
    colour = np.where(pattern[..., None] > 0.5, b, a)
    canvas[mask] = colour[mask]


def make_scene(seed: int) -> Scene:
    """One scene, a pure function of `seed`."""
    rng = np.random.default_rng(seed)
    label = int(rng.integers(len(CLASSES)))
    canvas = np.empty((SIZE, SIZE, 3), np.float32)
    # background: a low-contrast texture in two muted random colours
    bg = PALETTE[rng.choice(len(PALETTE), 2, replace=False)] * 0.5 + 60
    _paint(canvas, np.ones((SIZE, SIZE), bool),
           _texture(int(rng.integers(6)), rng, rng.uniform(3, 8), rng.uniform(0, np.pi)), *bg)
    # distractors: small blobs and bars in the targets' colours and textures
    for _ in range(int(rng.integers(4, 8))):
        cx, cy = rng.uniform(0, SIZE, 2)
        w, h = rng.uniform(2, 7, 2)
        ys = slice(max(0, int(cy - h)), min(SIZE, int(cy + h) + 1))
        xs = slice(max(0, int(cx - w)), min(SIZE, int(cx + w) + 1))
        x, y = _X[ys, xs], _Y[ys, xs]
        patch = (np.abs(x - cx) <= w) & (np.abs(y - cy) <= h)
        if rng.random() < 0.5:
            patch &= np.hypot((x - cx) / w, (y - cy) / h) <= 1
        cols = PALETTE[rng.choice(len(PALETTE), 2, replace=False)]
        _paint(canvas[ys, xs], patch, _texture(int(rng.integers(6)), rng, rng.uniform(2, 4),
                                               rng.uniform(0, np.pi), x, y), *cols)
    # the target: class = shape and texture together, at a random place and scale
    r = rng.uniform(9, 17)
    cx, cy = rng.uniform(r * 0.6, SIZE - r * 0.6, 2)  # may touch the border
    mask = _shape(label, cx, cy, r, rng.uniform(0, 2 * np.pi) if label != 2 else rng.uniform(-0.4, 0.4))
    cols = PALETTE[rng.choice(len(PALETTE), 2, replace=False)]
    _paint(canvas, mask, _texture(label, rng, rng.uniform(2.5, 4.5), rng.uniform(0, np.pi)), *cols)
    noise = rng.normal(0, 6, canvas.shape)
    image = np.clip(canvas + noise, 0, 255).astype(np.uint8)
    return Scene(image, mask, label)


def make_batch(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scenes seed*1_000_003 + 0..n-1: images (n, 64, 64, 3) uint8, masks (n, 64, 64) bool,
    labels (n,) int64. Different dataset seeds give disjoint scene seeds."""
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    masks = np.empty((n, SIZE, SIZE), bool)
    labels = np.empty(n, np.int64)
    for i in range(n):
        s = make_scene(seed * 1_000_003 + i)
        images[i], masks[i], labels[i] = s.image, s.mask, s.label
    return images, masks, labels


def example_seeds(seed: int = 7, per_class: int = 1, min_area: float = 0.1) -> list[int]:
    """The first scene seeds (from seed * 1_000_003) that give each class `per_class` times
    with an object covering at least `min_area` of the scene (clear examples for people)."""
    found, i, need = [], 0, {c: per_class for c in range(len(CLASSES))}
    while any(need.values()):
        s = seed * 1_000_003 + i
        scene = make_scene(s)
        label = scene.label
        if need[label] and scene.mask.mean() >= min_area:
            need[label] -= 1
            found.append(s)
        i += 1
    return found


def write_examples(folder) -> list:
    """One example scene per class as PNG, named after its class."""
    from pathlib import Path

    from PIL import Image
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in example_seeds():
        scene = make_scene(s)
        path = folder / f"scene_{CLASSES[scene.label].replace(' ', '_')}.png"
        Image.fromarray(scene.image).save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    import pathlib
    for p in write_examples(pathlib.Path(__file__).resolve().parent.parent / "assets" / "examples"):
        print(p)
