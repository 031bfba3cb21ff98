"""The scores of ReclaimGym's experiments: one home for each, and why there are three.

Every score starts from an episode's return ``R`` (the negated cost: stall fractions
plus OOM penalties, ``envs.reward``); they differ in what they compare it with, because
each experiment asks another question:

- **normalized score** (``reclaim compare``): ``(R − R_none) / (R_oracle − R_none)`` per
  (scenario, seed) cell, 0 = ``no-balloon``, 1 = the oracle. It places every policy in the
  gap a reclamation policy can close, the scale rliable's aggregates (IQM, optimality
  gap, probability of improvement) are built for. A cell where the oracle gains too
  little has no headroom and no score (:func:`normalized_scores`).
- **cost ratio** (``reclaim ablate``): ``cost / cost_best`` with the cost ``−R`` and the best
  heuristic on the same seeds, geometric means over scenarios and seeds
  (:func:`cost_ratio`, :func:`geomean`). The ablations run on training scenarios, where
  no-balloon and the best heuristic can nearly tie (trace-recorded-v1): a score
  normalized between the two would explode there, a ratio of costs does not.
- **oracle gain** (``reclaim scenarios --headroom``): ``1 − cost(oracle) / cost(X)``, the
  share of X's cost the oracle cuts (:func:`oracle_gain`). It measures a scenario, not
  a policy: whether there is anything to learn against no-balloon and against the best
  heuristic.

Episode rows name their policy: a baseline by its registry name, a learned run by a
:class:`RunLabel` (written to CSV as ``algo/seedN``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

NONE, ORACLE, ESX = "no-balloon", "oracle", "esx"

_LABEL = re.compile(r"(?P<algo>.+?)/seed(?P<seed>\d+)")


@dataclass(frozen=True)
class RunLabel:
    """One learned run in the episode rows: its algorithm and training seed. Its text,
    ``algo/seedN``, is what the CSV files hold."""

    algo: str
    seed: int

    def __str__(self) -> str:
        return f"{self.algo}/seed{self.seed}"

    @classmethod
    def parse(cls, text: str) -> RunLabel | None:
        """The label ``text`` (``algo/seedN``) spells, or None when it names a baseline."""
        m = _LABEL.fullmatch(text)
        return None if m is None else cls(m["algo"], int(m["seed"]))


def policy_group(policy: str | RunLabel) -> str:
    """The group a row's policy is aggregated in: a learned run's algorithm, or the
    baseline's name."""
    return policy.algo if isinstance(policy, RunLabel) else policy


# ------------------------------------------------------------ normalized score
def normalized_scores(
    episodes: list[dict[str, Any]], min_gap_frac: float
) -> tuple[list[dict[str, Any]], int]:
    """One row per episode with ``score`` (0 = no-balloon, 1 = oracle, same scenario and
    seed) and ``stall_ratio`` (its stall over no-balloon's); returns the rows and how
    many (scenario, seed) cells have no headroom.

    A cell whose headroom ``R_oracle − R_none`` is under ``min_gap_frac · |R_none|`` has
    *no headroom*: its rows get ``headroom = False`` and a NaN score, and the aggregates
    leave them out (no floor: a near-zero denominator would make scores explode)."""
    ref: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for e in episodes:
        if e["policy"] in (NONE, ORACLE):
            ref.setdefault((e["scenario"], int(e["seed"])), {})[e["policy"]] = e
    none_cells = set()
    out = []
    for e in episodes:
        key = (e["scenario"], int(e["seed"]))
        r = ref.get(key, {})
        if NONE not in r or ORACLE not in r:
            raise ValueError(f"missing no-balloon/oracle reference for {key}")
        r_none, r_oracle = float(r[NONE]["return"]), float(r[ORACLE]["return"])
        gap = r_oracle - r_none
        ok = gap >= min_gap_frac * abs(r_none) and gap > 0
        if not ok:
            none_cells.add(key)
        stall_none = float(r[NONE].get("stall_us", math.nan))
        stall = float(e.get("stall_us", math.nan))
        ratio = stall / stall_none if stall_none > 0 else math.nan
        score = (float(e["return"]) - r_none) / gap if ok else math.nan
        out.append({**e, "score": score, "headroom": ok, "stall_ratio": ratio})
    return out, len(none_cells)


# ------------------------------------------------------------------ cost ratio
def cost(ret: float) -> float:
    """A policy's cost: its negated return (stall fractions plus OOM penalties)."""
    return -float(ret)


def cost_ratio(ret: float, best_ret: float) -> float:
    """``cost / cost_best``; NaN when the best costs nothing (no ratio)."""
    return cost(ret) / cost(best_ret) if best_ret < 0 else math.nan


def geomean(x: list[float]) -> float:
    """The geometric mean of the finite, positive values of ``x`` (NaN if none)."""
    v = np.asarray([a for a in x if np.isfinite(a) and a > 0], dtype=np.float64)
    return float(np.exp(np.log(v).mean())) if v.size else math.nan


# ----------------------------------------------------------------- oracle gain
def oracle_gain(oracle_cost: float, other_cost: float) -> float:
    """``1 − oracle / other``; 0 when the other policy costs nothing (nothing to cut)."""
    if other_cost <= 0.0:
        return 0.0
    return 1.0 - oracle_cost / other_cost


__all__ = [
    "ESX",
    "NONE",
    "ORACLE",
    "RunLabel",
    "cost",
    "cost_ratio",
    "geomean",
    "normalized_scores",
    "oracle_gain",
    "policy_group",
]
