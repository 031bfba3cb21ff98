"""The statistics of ``reclaim compare`` over the normalized scores (``experiments.scoring``).

rliable's aggregates (IQM, mean, median, optimality gap) with stratified-bootstrap 95 %
CIs over runs and (scenario, seed) cells, the probability of improvement of one policy
over another, per-scenario means with percentile-bootstrap CIs, and per scenario the
bracket ``[oracle, bound]`` of the returns. A learned algorithm's runs are its training
seeds (rows labelled :class:`experiments.scoring.RunLabel`); a baseline is one run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from experiments.scoring import ESX, NONE, ORACLE, RunLabel, policy_group


def _run_of(policy: str | RunLabel) -> tuple[str, int]:
    """(group, run): a learned run's algorithm and training seed; a baseline and -1."""
    return (policy.algo, policy.seed) if isinstance(policy, RunLabel) else (policy, -1)


def cell_matrices(scored: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """policy (algo for learned runs) -> (runs, cells) scores over the (scenario, seed)
    cells with headroom, for rliable (runs: training seeds of a learned policy, one for
    a baseline); and the cells, in column order."""
    cells = sorted({(e["scenario"], int(e["seed"])) for e in scored if e["headroom"]})
    col = {c: j for j, c in enumerate(cells)}
    by: dict[str, dict[int, np.ndarray]] = {}
    for e in scored:
        if not e["headroom"]:
            continue
        group, run = _run_of(e["policy"])
        row = by.setdefault(group, {}).setdefault(run, np.full(len(cells), np.nan))
        row[col[(e["scenario"], int(e["seed"]))]] = e["score"]
    out = {}
    for group, runs in by.items():
        mat = np.stack([runs[k] for k in sorted(runs)])
        out[group] = mat[~np.isnan(mat).any(axis=1)]
    return out, cells


def score_matrices(scored: list[dict[str, Any]], tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    """policy (algo for learned runs) -> (runs, tasks) scores for rliable."""
    cells: dict[str, dict[tuple[Any, int], dict[str, float]]] = {}
    for e in scored:
        group, run = _run_of(e["policy"])
        cells.setdefault(group, {}).setdefault((run, int(e["seed"])), {})[e["scenario"]] = e[
            "score"
        ]
    out = {}
    for group, runs in cells.items():
        keys = sorted(runs)
        mat = np.array([[runs[k].get(t, np.nan) for t in tasks] for k in keys], dtype=np.float64)
        out[group] = mat[~np.isnan(mat).any(axis=1)]
    return out


def iqm(x: np.ndarray) -> float:
    from scipy.stats import trim_mean

    return float(trim_mean(x.reshape(-1), 0.25))


AGGREGATES = ("IQM", "Mean", "Median", "OptimalityGap")


@contextmanager
def rliable_seed(seed: int) -> Iterator[None]:
    """Run rliable's bootstraps reproducibly. Its ``StratifiedBootstrap.update_indices``
    draws the resampled runs and tasks with ``np.random.choice``, from numpy's *global*
    generator, not from the ``random_state`` it is given (rliable 1.x, ``library.py``),
    so two reports of the same episodes had different CIs. The global generator is
    seeded for the call and the caller's state put back."""
    state = np.random.get_state()  # noqa: NPY002 (the global generator rliable draws from)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def aggregates(mats: dict[str, np.ndarray], order: list[str], reps: int,
               rs: np.random.RandomState) -> tuple[list[dict[str, Any]], dict, dict]:  # fmt: skip
    """IQM, mean, median and optimality gap per policy with stratified-bootstrap CIs:
    the summary rows, and rliable's point estimates and intervals (for the plots)."""
    from rliable import library as rly
    from rliable import metrics

    fns = (metrics.aggregate_iqm, metrics.aggregate_mean, metrics.aggregate_median,
           metrics.aggregate_optimality_gap)  # fmt: skip
    with rliable_seed(int(rs.randint(2**31 - 1))):  # rs is passed too, and ignored
        point, ci = rly.get_interval_estimates(
            {k: mats[k] for k in order},
            lambda x: np.array([f(x) for f in fns]),
            reps=reps,
            random_state=rs,
            task_bootstrap=True,  # cells are (scenario, seed): resample them too
        )
    summary = []
    for k in order:
        row = {"policy": k, "runs": mats[k].shape[0], "tasks": mats[k].shape[1]}
        for j, name in enumerate(AGGREGATES):
            row[name] = float(point[k][j])
            row[f"{name}_lo"], row[f"{name}_hi"] = float(ci[k][0, j]), float(ci[k][1, j])
        summary.append(row)
    return summary, point, ci


def improvement_over_esx(mats: dict[str, np.ndarray], order: list[str], reps: int,
                         rng: np.random.Generator) -> list[dict[str, Any]]:  # fmt: skip
    """Probability of improvement of every other policy over esx, with its CI."""
    return improvements(mats, [k for k in order if k != ESX], [ESX], reps, rng)


def improvements(mats: dict[str, np.ndarray], learned: list[str], refs: list[str], reps: int,
                 rng: np.random.Generator) -> list[dict[str, Any]]:  # fmt: skip
    """P(learned > X) with its paired cell-and-run bootstrap CI (:func:`paired_improvement`)
    for every learned group and every reference X (each heuristic and the oracle); the
    matrices' columns are the same (scenario, seed) cells (:func:`cell_matrices`)."""
    rows = []
    for k in learned:
        for x in refs:
            if k in mats and x in mats:
                p, lo, hi = paired_improvement(mats[k], mats[x], reps, rng)
                rows.append({"policy": k, "vs": x, "P_improve": p, "lo": lo, "hi": hi})
    return rows


def paired_improvement(x: np.ndarray, y: np.ndarray, reps: int,
                       rng: np.random.Generator) -> tuple[float, float, float]:  # fmt: skip
    """P(X > Y) and its 95 % percentile-bootstrap CI, resampling cells and runs together.

    ``x`` (runs of X, cells) and ``y`` (runs of Y, cells) score the same (scenario, seed)
    cells, column for column. The point estimate is rliable's probability of improvement
    (``metrics.probability_of_improvement``: per cell the Mann-Whitney statistic over run
    pairs, ``P(x > y) + P(x = y) / 2``, averaged over cells), computed exactly. Each
    bootstrap replicate draws the cells with replacement, the *same* cells for X and Y
    (the comparison stays paired), and, within them, the runs of X and of Y with
    replacement (rliable's stratified bootstrap over runs). rliable's own interval for
    this metric resamples runs only (its ``task_bootstrap`` is ignored there), so a
    one-run baseline against runs that agree got a zero-width interval whatever the
    spread over cells; this one measures both sources of variation. The cells are not
    stratified by scenario: a stratified draw keeps each scenario's weight, so where a
    policy wins or loses every seed of each scenario it again has no width. Vectorized:
    one pairwise comparison tensor, then one weighted sum per replicate.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x {x.shape} and y {y.shape} must score the same cells")
    rx, ry, n = x.shape[0], y.shape[0], x.shape[1]
    if rx == 0 or ry == 0 or n == 0:
        raise ValueError("need at least one run of each policy and one cell")
    comp = (x[:, None, :] > y[None, :, :]) + 0.5 * (x[:, None, :] == y[None, :, :])
    point = float(comp.mean())
    w_cells = rng.multinomial(n, np.full(n, 1.0 / n), size=reps).astype(np.float64)
    w_x = rng.multinomial(rx, np.full(rx, 1.0 / rx), size=reps).astype(np.float64)
    w_y = rng.multinomial(ry, np.full(ry, 1.0 / ry), size=reps).astype(np.float64)
    boots = np.einsum("ri,rj,rc,ijc->r", w_x, w_y, w_cells, comp, optimize=True) / (rx * ry * n)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return point, float(lo), float(hi)


def per_scenario(scored: list[dict[str, Any]], order: list[str], tasks: tuple[str, ...],
                 reps: int, rs: np.random.RandomState) -> list[dict[str, Any]]:  # fmt: skip
    """Per (policy, scenario): the mean score over its cells with headroom (NaN when
    none has), the geometric-mean stall ratio to no-balloon, both with percentile-
    bootstrap CIs over the episodes, and how many cells had no headroom."""

    per_sc = []
    for k in order:
        for t in tasks:
            eps = [e for e in scored if policy_group(e["policy"]) == k and e["scenario"] == t]
            x = np.array([e["score"] for e in eps if e["headroom"]], dtype=np.float64)
            lr = np.log([e["stall_ratio"] for e in eps
                         if np.isfinite(e["stall_ratio"]) and e["stall_ratio"] > 0])  # fmt: skip
            row: dict[str, Any] = {"policy": k, "scenario": t}
            for name, v, f in (("score", x, lambda m: m), ("stall_ratio", lr, np.exp)):
                if v.size:
                    boots = rs.choice(v, size=(reps, v.size), replace=True).mean(axis=1)
                    row[f"mean_{name}"] = float(f(v.mean()))
                    row[f"{name}_lo"] = float(f(np.percentile(boots, 2.5)))
                    row[f"{name}_hi"] = float(f(np.percentile(boots, 97.5)))
                else:
                    row[f"mean_{name}"] = row[f"{name}_lo"] = row[f"{name}_hi"] = math.nan
            row["no_headroom_cells"] = len({e["seed"] for e in eps if not e["headroom"]})
            per_sc.append(row)
    return per_sc


def bracket(episodes: list[dict[str, Any]], tasks: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per scenario (means over seeds): no-balloon, the best other baseline, the oracle
    and the bound's returns, and the share of the bracket ``[R_none, R_bound]`` that the
    oracle and the best baseline close."""
    rows = []
    for t in tasks:
        eps = [e for e in episodes if e["scenario"] == t]

        def mean(p: str, key: str = "return", eps=eps) -> float:
            v = [float(e[key]) for e in eps if e["policy"] == p]
            return float(np.mean(v)) if v else math.nan

        names = {e["policy"] for e in eps if not isinstance(e["policy"], RunLabel)}
        base = sorted(names - {NONE, ORACLE})
        best = max(base, key=lambda p: mean(p)) if base else None
        r_none, r_or = mean(NONE), mean(ORACLE)
        r_best = mean(best) if best else math.nan
        r_bound = mean(NONE, "bound_return") if all("bound_return" in e for e in eps) else math.nan
        span = r_bound - r_none
        rows.append({
            "scenario": t, "no_balloon": r_none, "best_baseline": best,
            "best_baseline_return": r_best, "oracle": r_or, "bound": r_bound,
            "oracle_share": (r_or - r_none) / span if span > 0 else math.nan,
            "best_baseline_share": (r_best - r_none) / span if span > 0 else math.nan,
        })  # fmt: skip
    return rows
