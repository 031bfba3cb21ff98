"""The paired cell-and-run bootstrap of P(X > Y) (experiments.compare_stats)."""

import numpy as np
import pytest
from rliable import metrics

from experiments.compare_stats import improvements, paired_improvement


def _scores(seed: int, runs_x: int = 3, cells: int = 40):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(runs_x, cells))
    y = rng.normal(size=(1, cells))
    y[0, :4] = x[0, :4]  # ties count one half
    strata = np.repeat(np.arange(cells // 4), 4)
    return x, y, strata


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_is_rliables_probability_of_improvement(seed):
    x, y, strata = _scores(seed)
    p, lo, hi = paired_improvement(x, y, strata, 500, np.random.default_rng(0))
    assert p == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-12)
    assert lo <= p <= hi


def test_single_runs_that_agree_still_get_an_interval_from_the_cells():
    # rliable resamples runs only: one run each gave a zero-width interval.
    x, y, strata = _scores(3, runs_x=1)
    p, lo, hi = paired_improvement(x, y, strata, 1000, np.random.default_rng(0))
    assert hi - lo > 0.1
    x3 = np.repeat(x, 3, axis=0)  # three identical learned runs: the same answer
    assert paired_improvement(x3, y, strata, 1000, np.random.default_rng(0))[0] == p


def test_identical_policies_are_a_coin_flip_without_spread():
    x, _, strata = _scores(4, runs_x=1)
    assert paired_improvement(x, x, strata, 200, np.random.default_rng(0)) == (0.5, 0.5, 0.5)


def test_dominance_gives_one_and_the_pairing_is_kept():
    # X beats Y on every cell by a hair, although Y's cells vary far more than the gap:
    # an unpaired resample would mix cells and find Y ahead; the paired one never does.
    rng = np.random.default_rng(5)
    y = rng.normal(scale=10.0, size=(1, 30))
    x = y + 1e-3
    p, lo, hi = paired_improvement(x, y, np.zeros(30, dtype=int), 300, rng)
    assert (p, lo, hi) == (1.0, 1.0, 1.0)


def test_reproducible_from_the_seed():
    x, y, strata = _scores(6)
    a = paired_improvement(x, y, strata, 300, np.random.default_rng(7))
    b = paired_improvement(x, y, strata, 300, np.random.default_rng(7))
    assert a == b


def test_cells_are_resampled_within_their_scenario():
    # Two scenarios: X wins every cell of one and loses every cell of the other. A
    # stratified resample keeps one half of each, so P stays exactly 0.5.
    x = np.array([[1.0] * 10 + [0.0] * 10])
    y = np.array([[0.0] * 10 + [1.0] * 10])
    strata = np.array([0] * 10 + [1] * 10)
    assert paired_improvement(x, y, strata, 300, np.random.default_rng(0)) == (0.5, 0.5, 0.5)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="same 3 cells"):
        paired_improvement(np.zeros((2, 3)), np.zeros((1, 4)), np.zeros(3), 10,
                           np.random.default_rng(0))


def test_improvements_rows():
    x, y, _ = _scores(8)
    cells = [(f"s{j // 4}", j % 4) for j in range(x.shape[1])]
    rows = improvements({"ppo": x, "esx": y}, ["ppo"], ["esx", "missing"], 100,
                        np.random.default_rng(0), cells)
    assert [(r["policy"], r["vs"]) for r in rows] == [("ppo", "esx")]
    assert rows[0]["lo"] <= rows[0]["P_improve"] <= rows[0]["hi"]
