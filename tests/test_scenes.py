"""Generated scenes: deterministic, labelled by shape and texture, with exact masks."""
import numpy as np

from visattn import scenes


def test_scenes_are_pure_functions_of_their_seed():
    a, b = scenes.make_scene(42), scenes.make_scene(42)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.label == b.label
    assert not np.array_equal(a.image, scenes.make_scene(43).image)


def test_batches_are_balanced_disjoint_and_well_formed():
    images, masks, labels = scenes.make_batch(5, 600)
    assert images.shape == (600, 64, 64, 3) and images.dtype == np.uint8
    assert masks.shape == (600, 64, 64) and masks.dtype == bool
    counts = np.bincount(labels, minlength=len(scenes.CLASSES))
    assert len(counts) == 6 and counts.min() > 600 / 6 * 0.7
    area = masks.mean((1, 2))
    assert area.min() > 0.01 and area.max() < 0.5  # one visible object, never the whole scene
    other, _, _ = scenes.make_batch(6, 600)
    assert not any(np.array_equal(x, y) for x, y in zip(images[:50], other[:50]))


def test_the_mask_marks_the_painted_object():
    """Pixels under the mask follow the object's two-colour texture; flipping the mask
    (painting the background there) would change the image."""
    for seed in range(20):
        s = scenes.make_scene(seed)
        inside = s.image[s.mask].astype(int)
        # the object is painted in two palette colours plus noise: its pixels cluster there
        d = np.abs(inside[:, None, :] - scenes.PALETTE[None, :, :]).sum(2).min(1)
        assert np.median(d) < 40


def test_example_seeds_cover_every_class_once():
    labels = [scenes.make_scene(s).label for s in scenes.example_seeds()]
    assert sorted(labels) == list(range(len(scenes.CLASSES)))
