"""Moving clips and the cross-frame row metrics (issue 23, part 2).

The generator is checked against its own objects re-rendered (masks match pixels), the
metrics against planted rows whose right values follow from the masks alone: all mass on
the object in the other frames gives 1 / share, a uniform row gives 1, a row that looks
at the same object everywhere gives more than 5, and rows that are all alike give query
dependence 0.
"""
from __future__ import annotations

import numpy as np
import pytest

from visattn import clip_metrics, scenes
from visattn.records_video import SpaceTimeAffinity

SEEDS = (0, 1, 7, 123)


@pytest.mark.parametrize("seed", SEEDS)
def test_masks_match_the_pixels_and_identities_are_consistent(seed):
    c = scenes.moving_clip(seed)
    T, K = c.masks.shape[:2]
    assert c.frames.shape == (T, scenes.SIZE, scenes.SIZE, 3) and c.frames.dtype == np.uint8
    assert len(set(c.ids.tolist())) == K  # one look per identity
    seen = c.seen()
    assert (seen.sum(0) == 2).sum() == scenes.CLIP_REPEATED and (seen.sum(0) >= 1).all()
    assert (seen.sum(1) == scenes.CLIP_PER_FRAME).all()
    assert not (c.masks.sum(1) > 1).any()  # objects (and their rings) never overlap
    assert (c.tagged <= seen).all() and (c.tagged.sum(0) == 1).all()  # tagged exactly once
    for t in range(T):
        for k in np.flatnonzero(seen[t]):
            obj = c.objects[k]
            body, rgb = obj.render()
            x, y = c.centres[t][k]
            h = body.shape[0] // 2
            window = (slice(y - h, y + h + 1), slice(x - h, x + h + 1))
            patch, mask = c.frames[t][window], c.masks[t, k][window]
            assert mask.sum() == c.masks[t, k].sum()  # the object lies in its own window
            assert np.array_equal(patch[body], rgb[body].astype(np.uint8))  # same look each time
            ring = mask & ~body
            assert ring.any() == c.tagged[t, k]
            assert (patch[ring] == scenes.CLIP_TAGS[c.classes[k]].astype(np.uint8)).all()
            assert c.ids[k] == obj.shape * len(scenes.CLASSES) + obj.texture
    for k in np.flatnonzero(seen.sum(0) == 2):  # a repeated object comes back elsewhere, later, untagged
        t0, t1 = np.flatnonzero(seen[:, k])
        assert c.centres[t0][k] != c.centres[t1][k]
        assert c.tagged[t0, k] and not c.tagged[t1, k]


def test_clips_are_deterministic_and_untagged_labels_come_from_another_frame():
    a, b, other = scenes.moving_clip(5), scenes.moving_clip(5), scenes.moving_clip(6)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.frames, other.frames)
    labels, untagged = a.label_map(), a.untagged()
    for k in range(a.masks.shape[1]):
        assert (labels[a.masks[:, k]] == 1 + a.classes[k]).all()
    assert (labels[~a.masks.any(1)] == 0).all()
    hidden = a.seen() & ~a.tagged
    assert untagged.sum() == sum(a.masks[t, k].sum() for t, k in zip(*np.nonzero(hidden))) > 0
    frames, masks, labels_b, untagged_b = scenes.make_clip_batch(3, 2)
    assert np.array_equal(frames[1], scenes.moving_clip(3 * 1_000_003 + 1).frames)
    assert np.array_equal(labels_b[1], scenes.moving_clip(3 * 1_000_003 + 1).label_map())


def test_cross_frame_mass_ratio_on_planted_rows():
    masks = scenes.moving_clip(0).masks  # (4, K, 64, 64), on a 64 px input
    grid = (4, 16, 16)
    cover = clip_metrics.coverage(masks, grid)
    np.testing.assert_allclose(cover.sum(0).max(), 1.0)  # fractions
    k = int(np.flatnonzero(masks.any(axis=(2, 3)).sum(0) == 2)[0])
    t = int(np.flatnonzero(masks[:, k].any(axis=(1, 2)))[0])
    other = cover[k].copy()
    other[t] = 0
    share = other.sum() / other.size
    full = (other == 1.0).astype(float)
    on_object = full / full.sum()  # all mass on cells the object fills, in the other frame
    assert clip_metrics.cross_frame_mass_ratio(on_object, cover[k], t) == pytest.approx(1 / share)
    uniform = np.full(grid, 1 / np.prod(grid))
    assert clip_metrics.cross_frame_mass_ratio(uniform, cover[k], t) == pytest.approx(1.0)
    own_frame = np.zeros(grid)
    own_frame[t] = cover[k][t] / cover[k][t].sum()  # the object, but in its own frame only
    assert clip_metrics.cross_frame_mass_ratio(own_frame, cover[k], t) == 0.0


def _planted(masks, sharp: float) -> SpaceTimeAffinity:
    """Rows that look at whatever object covers the query (one-hot features, sharp = the
    logit scale; 0 = uniform rows)."""
    grid = (masks.shape[0], 16, 16)
    cover = clip_metrics.coverage(masks, grid)  # (K, T, h, w)
    feats = np.concatenate([cover, 1 - cover.sum(0, keepdims=True)])  # + background
    one_hot = (feats == feats.max(0, keepdims=True)).astype(np.float32)
    emb = one_hot.reshape(len(feats), -1).T[None].copy()  # (1, N, K + 1)
    return SpaceTimeAffinity(queries=emb, keys=emb, key_grid=grid, scale=sharp, layer="nl",
                             family="Non-local", name="affinity", grid=grid)


def test_score_clip_on_planted_rows_passes_the_bars_and_uniform_rows_do_not():
    good, flat = clip_metrics.ClipRows(), clip_metrics.ClipRows()
    for seed in range(6):
        masks = scenes.moving_clip(seed).masks
        clip_metrics.score_clip(_planted(masks, 20.0), masks, good, np.random.default_rng(0))
        clip_metrics.score_clip(_planted(masks, 0.0), masks, flat, np.random.default_rng(0))
    m, u = good.medians(), flat.medians()
    assert m["cross_frame_mass_ratio"] >= 5 and m["query_dependence"] >= 0.5, m
    assert u["cross_frame_mass_ratio"] == pytest.approx(1.0) and u["query_dependence"] == 0.0
    assert len(good.cross_frame_mass_ratio) >= 6 * scenes.CLIP_REPEATED * 2


def test_reference_cells_cover_every_time_cell():
    cells = clip_metrics.reference_cells((3, 8, 8))
    assert len(cells) == 3 * 16 and sorted({c // 64 for c in cells}) == [0, 1, 2]
