"""Twin scenes: masks are exactly the painted objects, the twins are the same object painted
twice (up to the radius jitter), every other object is unique, all a function of the seed."""
import dataclasses

import numpy as np
import pytest

from visattn import scenes

SEEDS = range(60)


def patch(scene, k):
    """Object k's window of the image (int) and of its mask, aligned on the object's centre."""
    rows, cols = scene.objects[k].window()
    return scene.image[rows, cols].astype(int), scene.masks[k][rows, cols]


def test_twin_scenes_are_pure_functions_of_their_seed():
    a, b, c = scenes.twin_scene(7), scenes.twin_scene(7), scenes.twin_scene(8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert a.twins == b.twins
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (64, 64, 3) and a.image.dtype == np.uint8
    assert a.masks.dtype == bool and a.masks.shape == (len(a.objects), 64, 64)


@pytest.mark.parametrize("seed", SEEDS)
def test_masks_are_exactly_the_painted_objects(seed):
    s = scenes.twin_scene(seed)
    assert (s.masks.sum(0) <= 1).all() and s.masks.any((1, 2)).all()  # disjoint, non-empty
    object_colours = {tuple(c) for c in scenes.PALETTE.astype(np.uint8)}
    for mask, obj in zip(s.masks, s.objects):
        own = {tuple(c) for c in obj.colours.astype(np.uint8)}
        assert {tuple(p) for p in s.image[mask]} <= own  # only the object's two colours
    outside = {tuple(p) for p in s.image[~s.masks.any(0)]}
    assert not outside & object_colours  # the background never uses an object colour


@pytest.mark.parametrize("seed", SEEDS)
def test_twins_are_one_object_painted_twice_up_to_the_jitter(seed):
    s = scenes.twin_scene(seed)
    (i, j), = s.twins
    a, b = s.objects[i], s.objects[j]
    assert dataclasses.replace(a, radius=b.radius, centre=b.centre) == \
        dataclasses.replace(b, colours=a.colours) and np.array_equal(a.colours, b.colours)
    assert abs(b.radius / a.radius - 1) <= scenes.TWIN_JITTER * 1.0001 / (1 - scenes.TWIN_JITTER)
    (pa, ma), (pb, mb) = patch(s, i), patch(s, j)
    both = ma & mb
    assert both.sum() > 0.6 * (ma | mb).sum()
    assert np.array_equal(pa[both], pb[both])  # pixel-identical where both are painted
    exact = scenes.twin_scene(seed, jitter=0.0)
    (pa, ma), (pb, mb) = patch(exact, i), patch(exact, j)
    assert np.array_equal(ma, mb) and np.array_equal(pa[ma], pb[mb])


@pytest.mark.parametrize("seed", SEEDS)
def test_other_objects_are_unique(seed):
    s = scenes.twin_scene(seed)
    (i, j), = s.twins
    kinds = [(o.shape, o.texture) for o in s.objects]
    assert kinds[i] == kinds[j]
    others = [k for k in range(len(kinds)) if k != j]
    assert len({kinds[k] for k in others}) == len(others)  # no shape-and-texture repeats
    for p in range(len(kinds)):
        for q in range(p + 1, len(kinds)):
            if {p, q} == {i, j}:
                continue
            (pa, ma), (pb, mb) = patch(s, p), patch(s, q)
            differ = (ma != mb) | ((ma & mb) & (pa != pb).any(-1))
            assert differ[ma | mb].mean() > 0.25  # visibly different objects


def test_label_map_marks_twins_uniques_and_background():
    for seed in SEEDS:
        s = scenes.twin_scene(seed)
        labels = s.label_map()
        paired = s.masks[list(s.twins[0])].any(0)
        assert np.array_equal(labels == 2, paired)
        assert np.array_equal(labels == 1, s.masks.any(0) & ~paired)
        assert np.array_equal(labels == 0, ~s.masks.any(0))


def test_batches_match_single_scenes():
    images, masks, twins = scenes.make_twin_batch(3, 5)
    for k in range(5):
        s = scenes.twin_scene(3 * 1_000_003 + k)
        assert np.array_equal(images[k], s.image) and np.array_equal(masks[k], s.masks)
        assert tuple(twins[k]) == s.twins[0]
