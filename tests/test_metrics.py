"""Faithfulness metrics against brute-force definitions."""
import itertools

import numpy as np
import pytest

from visattn import metrics


def brute_auc(values, mask):
    pos, neg = values[mask], values[~mask]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_equals_pair_counting_with_ties(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 5, (9, 11)).astype(float)  # many ties
    mask = rng.random((9, 11)) < 0.3
    assert metrics.roc_auc(values, mask) == pytest.approx(brute_auc(values, mask))


def test_roc_auc_extremes_and_nan():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    assert metrics.roc_auc(mask.astype(float), mask) == 1.0
    assert metrics.roc_auc(-mask.astype(float), mask) == 0.0
    assert metrics.roc_auc(np.ones((4, 4)), mask) == 0.5
    values = mask.astype(float)
    values[0, 0] = np.nan  # unseen pixels are left out
    assert metrics.roc_auc(values, mask) == 1.0


def test_mass_and_energy_ratios():
    mask = np.zeros((10, 10), bool)
    mask[:2] = True  # 20 % of the area
    assert metrics.mass_ratio(np.ones((10, 10)), mask) == pytest.approx(1.0)
    assert metrics.mass_ratio(mask.astype(float), mask) == pytest.approx(5.0)
    half = np.where(mask, 1.0, 0.25)  # object holds 20 / (20 + 20) = half the mass
    assert metrics.mass_ratio(half, mask) == pytest.approx(0.5 / 0.2)
    assert metrics.energy_ratio(half - 7.0, mask) == pytest.approx(5.0)  # shifted to min 0
    with pytest.raises(ValueError):
        metrics.mass_ratio(half - 7.0, mask)


def test_pointing_game_ignores_unseen_pixels():
    mask = np.zeros((5, 5), bool)
    mask[4, 4] = True
    values = np.zeros((5, 5))
    values[4, 4] = 1.0
    assert metrics.pointing_game(values, mask)
    values[0, 0] = np.nan
    assert metrics.pointing_game(values, mask)
    values[0, 1] = 2.0
    assert not metrics.pointing_game(values, mask)


def test_class_separation_grows_when_classes_part():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    noise = rng.normal(0, 1, (150, 8))
    mixed = metrics.class_separation(noise, labels)
    parted = metrics.class_separation(noise + 5 * np.eye(8)[labels], labels)
    assert mixed < 0.1 < 1.0 < parted
    # by definition: between / within, checked on a tiny case by hand
    v = np.array([[0.0], [2.0], [10.0], [12.0]])
    assert metrics.class_separation(v, np.array([0, 0, 1, 1])) == pytest.approx(25.0 / 1.0)


class PlantedRows:
    """A pairwise record stand-in whose rows are given: row(i) = rows[i]."""

    def __init__(self, rows, grid):
        self.rows, self.grid = rows, grid

    def row(self, i, head=None):
        return self.rows[i].reshape(self.grid)


def test_reference_cells_are_a_lattice_of_cell_centres():
    assert metrics.reference_cells((8, 8)) == [r * 8 + c for r in (1, 3, 5, 7) for c in (1, 3, 5, 7)]
    cells = metrics.reference_cells((2, 3))  # small grids: fewer, distinct cells
    assert len(cells) == len(set(cells)) == 6
    assert metrics.reference_cells((1, 1)) == [0]


def test_query_dependence_is_zero_for_shared_rows_and_one_bit_for_disjoint_ones():
    grid = (6, 7)
    n = grid[0] * grid[1]
    same = np.tile(np.random.default_rng(0).dirichlet(np.ones(n)), (n, 1))
    assert metrics.query_dependence(PlantedRows(same, grid), 10) == pytest.approx(0.0, abs=1e-12)
    one_hot = np.eye(n)  # each query looks only at itself: disjoint supports, JS = 1 bit
    assert metrics.query_dependence(PlantedRows(one_hot, grid), 10) == pytest.approx(1.0)
    # half the rows shared: JS of a one-hot row and a row splitting mass 1/2 on it
    half = one_hot.copy()
    refs = metrics.reference_cells(grid)
    for j in refs:
        half[j] = 0.5 * one_hot[j] + 0.5 * one_hot[10]
    m = np.array([0.75, 0.25])  # the mixture on (cell 10, cell j)
    p, q = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    kl = lambda a: sum(x * np.log2(x / y) for x, y in zip(a, m) if x > 0)  # noqa: E731
    want = 0.5 * kl(p) + 0.5 * kl(q)
    assert metrics.query_dependence(PlantedRows(half, grid), 10) == pytest.approx(want)
    # the query itself is left out of its references
    assert metrics.query_dependence(PlantedRows(one_hot, grid), refs[0]) == pytest.approx(1.0)
