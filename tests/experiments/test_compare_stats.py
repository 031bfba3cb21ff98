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
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_is_rliables_probability_of_improvement(seed):
    x, y = _scores(seed)
    p, lo, hi = paired_improvement(x, y, 500, np.random.default_rng(0))
    assert p == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-12)
    assert lo <= p <= hi


def test_single_runs_that_agree_still_get_an_interval_from_the_cells():
    # rliable resamples runs only: one run each gave a zero-width interval.
    x, y = _scores(3, runs_x=1)
    p, lo, hi = paired_improvement(x, y, 1000, np.random.default_rng(0))
    assert hi - lo > 0.1
    x3 = np.repeat(x, 3, axis=0)  # three identical learned runs: the same answer
    assert paired_improvement(x3, y, 1000, np.random.default_rng(0))[0] == p


def test_identical_policies_are_a_coin_flip_without_spread():
    x, _ = _scores(4, runs_x=1)
    assert paired_improvement(x, x, 200, np.random.default_rng(0)) == (0.5, 0.5, 0.5)


def test_dominance_gives_one_and_the_pairing_is_kept():
    # X beats Y on every cell by a hair, although Y's cells vary far more than the gap:
    # an unpaired resample would mix cells and find Y ahead; the paired one never does.
    rng = np.random.default_rng(5)
    y = rng.normal(scale=10.0, size=(1, 30))
    x = y + 1e-3
    p, lo, hi = paired_improvement(x, y, 300, rng)
    assert (p, lo, hi) == (1.0, 1.0, 1.0)


def test_reproducible_from_the_seed():
    x, y = _scores(6)
    a = paired_improvement(x, y, 300, np.random.default_rng(7))
    b = paired_improvement(x, y, 300, np.random.default_rng(7))
    assert a == b


def test_a_policy_that_wins_whole_scenarios_gets_width():
    # X wins every seed of one scenario and loses every seed of the other: v1's
    # headline had such cells, and a per-scenario (stratified) draw gave no width.
    x = np.array([[1.0] * 10 + [0.0] * 10])
    y = np.array([[0.0] * 10 + [1.0] * 10])
    p, lo, hi = paired_improvement(x, y, 500, np.random.default_rng(0))
    assert p == 0.5 and lo < 0.4 and hi > 0.6


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="same cells"):
        paired_improvement(np.zeros((2, 3)), np.zeros((1, 4)), 10, np.random.default_rng(0))


def test_improvements_rows():
    x, y = _scores(8)
    rows = improvements({"ppo": x, "esx": y}, ["ppo"], ["esx", "missing"], 100,
                        np.random.default_rng(0))
    assert [(r["policy"], r["vs"]) for r in rows] == [("ppo", "esx")]
    assert rows[0]["lo"] <= rows[0]["P_improve"] <= rows[0]["hi"]


def test_aggregate_cis_are_reproducible_and_leave_numpys_global_generator_alone():
    """rliable resamples with numpy's global generator, whatever random_state it gets:
    two reports of the same scores must still give the same CIs (aggregates seeds it
    from its own stream and puts the caller's state back)."""
    from experiments.compare_stats import aggregates

    rng = np.random.default_rng(1)
    mats = {"a": rng.normal(0.5, 0.3, size=(3, 45)), "b": rng.normal(0.4, 0.3, size=(1, 45))}
    np.random.seed(123)  # noqa: NPY002 (the caller's global state)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    first, _, _ = aggregates(mats, ["a", "b"], 200, np.random.RandomState(0))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    np.random.seed(7)  # noqa: NPY002 (another global state: no effect on the CIs)
    second, _, _ = aggregates(mats, ["a", "b"], 200, np.random.RandomState(0))
    assert first == second
    third, _, _ = aggregates(mats, ["a", "b"], 200, np.random.RandomState(1))
    assert [r["IQM_lo"] for r in third] != [r["IQM_lo"] for r in first]  # the seed matters
