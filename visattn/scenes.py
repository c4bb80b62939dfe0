"""Generated scenes with known ground truth, for training VisAttn's own small models and for
measuring whether attention maps are right.

A scene is a 64 x 64 RGB image: a cluttered, textured background, small distractor patches
that reuse the targets' colours and textures, and one target object whose class is the
label. Classes differ in shape *and* texture, so neither cue alone is a shortcut through
the clutter. Everything is a pure function of the seed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

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


def _shape(kind: int, cx: float, cy: float, r: float, angle: float,
           x: np.ndarray = _X, y: np.ndarray = _Y) -> np.ndarray:
    """Boolean mask of shape `kind` centred at (cx, cy) with radius r, at pixel centres (x, y)."""
    dx, dy = x - cx, y - cy
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



# ----- twin scenes: a pixel's label depends on a distant object --------------------------

TWIN_LABELS = ("background", "unique object", "twin object")
TWIN_COLOURS = np.array([(60, 60, 60), (70, 130, 255), (255, 140, 0)], np.uint8)  # overlay
TWIN_OBJECTS = 4  # one twin pair and two unique objects per scene
TWIN_JITTER = 0.06  # a twin's radius differs from its partner's by at most this fraction
_RADIUS = (6.5, 9.0)
_GAP = 8.0  # least free space between any two objects, in pixels
_HALF = int(np.ceil(_RADIUS[1] * (1 + TWIN_JITTER))) + 1  # half-size of an object's patch
_LOCAL = np.mgrid[-_HALF:_HALF + 1, -_HALF:_HALF + 1].astype(np.float32)  # (dy, dx) at centres


@dataclass(frozen=True)
class SceneObject:
    """One painted object: shape and texture kinds (as in `CLASSES`), two palette colours,
    radius, rotation, texture period and angle, the seed of its speckle, and the pixel
    (x, y) whose centre is the object's centre. Twins share everything but centre and
    (up to `TWIN_JITTER`) radius."""
    shape: int
    texture: int
    colours: np.ndarray  # (2, 3) float32 RGB
    radius: float
    angle: float
    period: float
    texture_angle: float
    texture_seed: int
    centre: tuple[int, int]

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """(mask (P, P) bool, rgb (P, P, 3) float32) on the object's own patch, P = 2 * _HALF + 1;
        a pure function of everything but the centre, so twins render alike."""
        dy, dx = _LOCAL
        mask = _shape(self.shape, 0.0, 0.0, self.radius, self.angle, dx, dy)
        rng = np.random.default_rng(self.texture_seed)
        pattern = _texture(self.texture, rng, self.period, self.texture_angle, dx, dy)
        rgb = np.where(pattern[..., None] > 0.5, self.colours[1], self.colours[0])
        return mask, rgb.astype(np.float32)

    def window(self) -> tuple[slice, slice]:
        """(rows, cols) of the scene that the object's patch covers."""
        x, y = self.centre
        return slice(y - _HALF, y + _HALF + 1), slice(x - _HALF, x + _HALF + 1)


@dataclass(frozen=True)
class TwinScene:
    image: np.ndarray  # (SIZE, SIZE, 3) uint8 RGB
    masks: np.ndarray  # (K, SIZE, SIZE) bool, one per object, disjoint
    twins: list  # [(i, j)]: objects i and j are identical (up to the radius jitter)
    objects: tuple  # K SceneObjects

    def label_map(self) -> np.ndarray:
        """(SIZE, SIZE) int64: 0 background, 1 unique object, 2 twin object (`TWIN_LABELS`)."""
        return twin_labels(self.masks, self.twins)


def twin_labels(masks: np.ndarray, twins) -> np.ndarray:
    """Per-pixel labels of one scene's (K, H, W) masks: 0 background, 1 unique, 2 twin."""
    paired = {k for pair in twins for k in pair}
    out = np.zeros(masks.shape[1:], np.int64)
    for k, mask in enumerate(masks):
        out[mask] = 2 if k in paired else 1
    return out


def _place(rng: np.random.Generator, radii: list[float]) -> list[tuple[int, int]]:
    """Integer centres, each patch inside the scene, any two objects >= _GAP apart."""
    lo, hi = _HALF, SIZE - 1 - _HALF
    while True:
        centres = []
        for r in radii:
            for _ in range(200):
                c = rng.integers(lo, hi + 1, 2)
                if all(np.hypot(*(c - o)) >= r + ro + _GAP for o, ro in zip(centres, radii)):
                    centres.append(c)
                    break
            else:
                break
        if len(centres) == len(radii):
            return [(int(x), int(y)) for x, y in centres]


def _random_object(rng: np.random.Generator, shape: int, texture: int) -> SceneObject:
    return SceneObject(shape, texture, PALETTE[rng.choice(len(PALETTE), 2, replace=False)],
                       float(rng.uniform(*_RADIUS)), float(rng.uniform(0, 2 * np.pi)),
                       float(rng.uniform(2.5, 4.0)), float(rng.uniform(0, np.pi)),
                       int(rng.integers(2 ** 31)), (0, 0))


def twin_scene(seed: int, jitter: float = TWIN_JITTER) -> TwinScene:
    """A 64 x 64 scene of `TWIN_OBJECTS` objects on a textured background: two of them are
    twins (same shape, texture, colours, rotation, texture phase; radius within `jitter`),
    the others unique (no two objects share both shape and texture). A pure function of
    `seed`; objects never overlap and lie wholly inside the scene."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(CLASSES) ** 2, TWIN_OBJECTS - 1, replace=False)  # (shape, texture)
    first = _random_object(rng, *divmod(int(kinds[0]), len(CLASSES)))
    partner = replace(first, radius=first.radius * (1 + jitter * rng.uniform(-1, 1)))
    objects = [first, partner] + [_random_object(rng, *divmod(int(k), len(CLASSES)))
                                  for k in kinds[1:]]
    order = rng.permutation(TWIN_OBJECTS)  # the twins' indices vary from scene to scene
    objects = [objects[k] for k in order]
    centres = _place(rng, [o.radius for o in objects])
    objects = [replace(o, centre=c) for o, c in zip(objects, centres)]
    canvas = np.empty((SIZE, SIZE, 3), np.float32)
    bg = PALETTE[rng.choice(len(PALETTE), 2, replace=False)] * 0.5 + 60
    _paint(canvas, np.ones((SIZE, SIZE), bool),
           _texture(int(rng.integers(6)), rng, rng.uniform(3, 8), rng.uniform(0, np.pi)), *bg)
    masks = np.zeros((TWIN_OBJECTS, SIZE, SIZE), bool)
    for k, obj in enumerate(objects):
        mask, rgb = obj.render()
        rows, cols = obj.window()
        canvas[rows, cols][mask] = rgb[mask]
        masks[k, rows, cols] = mask
    i, j = sorted(int(np.flatnonzero(order == k)[0]) for k in (0, 1))
    return TwinScene(canvas.astype(np.uint8), masks, [(i, j)], tuple(objects))


def make_twin_batch(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin scenes seed*1_000_003 + 0..n-1: images (n, 64, 64, 3) uint8, masks
    (n, TWIN_OBJECTS, 64, 64) bool, twins (n, 2) int64 (the twin pair's object indices)."""
    images = np.empty((n, SIZE, SIZE, 3), np.uint8)
    masks = np.empty((n, TWIN_OBJECTS, SIZE, SIZE), bool)
    twins = np.empty((n, 2), np.int64)
    for k in range(n):
        s = twin_scene(seed * 1_000_003 + k)
        images[k], masks[k], twins[k] = s.image, s.masks, s.twins[0]
    return images, masks, twins


def write_twin_examples(folder, seeds: tuple[int, ...] = (10, 21)) -> list:
    """Twin scenes as example PNGs (twins_<seed>.png)."""
    from pathlib import Path

    from PIL import Image
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in seeds:
        path = folder / f"twins_{s}.png"
        Image.fromarray(twin_scene(s).image).save(path)
        paths.append(path)
    return paths



# ----- moving clips: labels that only another frame shows --------------------------------
CLIP_FRAMES = 4  # frames per clip
CLIP_PER_FRAME = 2  # objects visible in each frame
CLIP_REPEATED = 2  # objects seen in two frames (tagged in the first only); the others once
CLIP_TAGS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)], np.float32)  # class tag rings
CLIP_LABELS = ("background", "red tag", "green tag", "blue tag")
CLIP_COLOURS = np.array([(60, 60, 60), (230, 40, 40), (40, 200, 40), (60, 90, 255)], np.uint8)
CLIP_EXAMPLE_SEED = 3  # the example clip's seed: training used seeds from 1_000_003 on
_RING = 2  # tag ring width, pixels


@dataclass(frozen=True)
class MovingClip:
    frames: np.ndarray  # (T, SIZE, SIZE, 3) uint8 RGB
    masks: np.ndarray  # (T, K, SIZE, SIZE) bool: object k in frame t, its tag ring included
    ids: np.ndarray  # (K,) int64 identity of each object: shape * len(CLASSES) + texture
    classes: np.ndarray  # (K,) int64 each object's class, 0..2 (label 1..3, CLIP_LABELS)
    tagged: np.ndarray  # (T, K) bool: object k wears its class's tag ring in frame t
    objects: tuple  # K SceneObjects (centre of the first appearance)
    centres: tuple  # per frame, {k: (x, y)} of the objects seen there

    def seen(self) -> np.ndarray:
        """(T, K) bool: object k is visible in frame t."""
        return self.masks.any(axis=(2, 3))

    def label_map(self) -> np.ndarray:
        """(T, SIZE, SIZE) int64: 0 background, 1 + class on every pixel of an object, in
        every frame it is seen in, tagged there or not (`CLIP_LABELS`)."""
        return clip_labels(self.masks, self.classes)

    def untagged(self) -> np.ndarray:
        """(T, SIZE, SIZE) bool: pixels of objects seen without their tag (their class is
        shown only in another frame)."""
        seen = self.seen() & ~self.tagged
        return np.einsum("tk,tkhw->thw", seen, self.masks) > 0


def clip_labels(masks: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per-pixel labels of one clip's (T, K, H, W) masks: 0 background, 1 + classes[k] on
    object k."""
    out = np.zeros((masks.shape[0],) + masks.shape[2:], np.int64)
    for k in range(masks.shape[1]):
        out[masks[:, k]] = 1 + int(classes[k])
    return out


def _ring(mask: np.ndarray) -> np.ndarray:
    """The pixels within _RING of a mask, outside it (its tag ring)."""
    import cv2
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=_RING) > 0
    return grown & ~mask


def moving_clip(seed: int, frames: int = CLIP_FRAMES) -> MovingClip:
    """A clip of `frames` 64 x 64 frames over one textured background, `CLIP_PER_FRAME`
    objects in each. Every object has a class, shown by a coloured ring (its tag) around
    it. `CLIP_REPEATED` objects are seen in two frames, at a new place the second time (they
    move, and come back elsewhere later), and wear their tag only the first time; every
    other object is seen once, tagged. No two objects share both shape and texture, so the
    class of an object seen untagged is known only by matching it to its tagged
    appearance in another frame. A pure function of `seed`; objects and rings never
    overlap and lie wholly inside each frame."""
    rng = np.random.default_rng(seed)
    n_obj = frames * CLIP_PER_FRAME - CLIP_REPEATED  # identities
    kinds = rng.choice(len(CLASSES) ** 2, n_obj, replace=False)
    objects = [_random_object(rng, *divmod(int(k), len(CLASSES))) for k in kinds]
    classes = rng.integers(len(CLIP_TAGS), size=n_obj)
    while True:  # appearances: objects 0..R-1 twice (in two different frames), the rest once
        slots = np.concatenate([np.repeat(np.arange(CLIP_REPEATED), 2),
                                np.arange(CLIP_REPEATED, n_obj)])
        slots = rng.permutation(slots).reshape(frames, CLIP_PER_FRAME)
        if all(len(set(row)) == CLIP_PER_FRAME for row in slots.tolist()):
            break
    order = rng.permutation(n_obj)  # repeated objects' indices vary from clip to clip
    rank = np.argsort(order)  # old index -> new index
    objects, classes = [objects[k] for k in order], classes[order]
    bg = PALETTE[rng.choice(len(PALETTE), 2, replace=False)] * 0.5 + 60
    background = np.empty((SIZE, SIZE, 3), np.float32)
    _paint(background, np.ones((SIZE, SIZE), bool),
           _texture(int(rng.integers(6)), rng, rng.uniform(3, 8), rng.uniform(0, np.pi)), *bg)
    video = np.empty((frames, SIZE, SIZE, 3), np.uint8)
    masks = np.zeros((frames, n_obj, SIZE, SIZE), bool)
    tagged = np.zeros((frames, n_obj), bool)
    centres, firsts = [], {}
    for t in range(frames):
        here = [int(rank[k]) for k in slots[t]]
        placed = _place(rng, [objects[k].radius + _RING for k in here])
        canvas = background.copy()
        for k, c in zip(here, placed):
            obj = replace(objects[k], centre=c)
            tagged[t, k] = k not in firsts
            firsts.setdefault(k, obj)
            mask, rgb = obj.render()
            rows, cols = obj.window()
            canvas[rows, cols][mask] = rgb[mask]
            masks[t, k, rows, cols] = mask
            if tagged[t, k]:
                ring = _ring(mask)
                canvas[rows, cols][ring] = CLIP_TAGS[classes[k]]
                masks[t, k, rows, cols] |= ring
        video[t] = canvas.astype(np.uint8)
        centres.append(dict(zip(here, placed)))
    ids = np.array([o.shape * len(CLASSES) + o.texture for o in objects], np.int64)
    return MovingClip(video, masks, ids, classes.astype(np.int64), tagged,
                      tuple(firsts[k] for k in range(n_obj)), tuple(centres))


def write_clip_example(folder, seed: int = CLIP_EXAMPLE_SEED) -> "Path":
    """A generated clip (`moving_clip(seed)`, a seed no network was trained on) as a WebM
    that browsers play, frames enlarged 4x: clip_<seed>.webm, the Non-local example."""
    from pathlib import Path

    from .video import write_webm
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_webm(moving_clip(seed).frames, folder / f"clip_{seed}.webm", fps=2.0, scale=4)


def make_clip_batch(seed: int, n: int, frames: int = CLIP_FRAMES):
    """Clips seed*1_000_003 + 0..n-1: frames (n, T, 64, 64, 3) uint8, masks
    (n, T, K, 64, 64) bool, labels (n, T, 64, 64) int64 and untagged (n, T, 64, 64) bool."""
    clips = [moving_clip(seed * 1_000_003 + k, frames) for k in range(n)]
    return (np.stack([c.frames for c in clips]), np.stack([c.masks for c in clips]),
            np.stack([c.label_map() for c in clips]), np.stack([c.untagged() for c in clips]))


if __name__ == "__main__":
    import pathlib
    _examples = pathlib.Path(__file__).resolve().parent.parent / "assets" / "examples"
    for p in write_examples(_examples) + write_twin_examples(_examples) + \
             [write_clip_example(_examples)]:
        print(p)
