"""Tuned heuristics: each classic rule with its constants searched on the train split.

The yardstick a learned policy must beat is not only the stock heuristic but the same
heuristic with its constants tuned for the workload (Google's far-memory system tuned
its heuristic's parameters rather than replacing it, Lagar-Cavilla et al., ASPLOS 2019;
Puffer's trial found a simple buffer-based rule hard to beat, Yan et al., NSDI 2020).
``reclaim tune --policy <name>`` (:mod:`experiments.tune`) searches the keyword
constants of a heuristic of :mod:`agents.heuristics` with Optuna over the train
scenarios and train seeds; the best constants, with their provenance, are committed in
``agents/tuned_heuristics.json`` and registered as ``<name>-tuned``
(:data:`agents.policies.REGISTRY`).

:data:`SEARCH_SPACES` holds one search space per heuristic: each parameter's range, its
stock value (the module constant of :mod:`agents.heuristics`) and why the range is what
it is. :func:`constants` maps sampled parameters onto the constructor's keyword
arguments; the stock parameters map exactly (bit for bit) onto the stock constants, so
a study's first trial (enqueued with them) is the stock heuristic.

Not searched: the decision periods (``period_s``; the clocks are the env's tick
mapping) and ESX's 30 s working-set sampling period (the env's ``ws_estimate`` sampler,
``HostParams.ws_sample_period_ticks``, is physics, not policy). ``static`` and
``no-balloon`` have no constants: nothing to tune.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import heuristics as H

TUNED_FILE = Path(__file__).with_name("tuned_heuristics.json")
TUNED_SUFFIX = "-tuned"
# One file of tuned constants per physics: a rule tuned on the v1 train split is
# ``<name>-tuned`` (its meaning since it was published); on the v2 train split (the
# -v2 scenarios, envs.physics.with_v2_physics), ``<name>-tuned-v2``.
TUNED_FILES: dict[str, Path] = {
    TUNED_SUFFIX: TUNED_FILE,
    TUNED_SUFFIX + "-v2": Path(__file__).with_name("tuned_heuristics_v2.json"),
}


@dataclass(frozen=True)
class Param:
    """One searched parameter: ``kind`` float / int, range ``[low, high]``, log scale,
    the stock value, and the range's justification."""

    name: str
    low: float
    high: float
    stock: float
    why: str
    log: bool = False
    kind: str = "float"

    def suggest(self, trial: Any) -> float | int:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class SearchSpace:
    """A heuristic's searched parameters and their map onto its constructor's keyword
    arguments (``to_kwargs``: parameters -> keyword constants)."""

    policy: type
    params: tuple[Param, ...]
    to_kwargs: Callable[[Mapping[str, Any]], dict[str, Any]]

    @property
    def stock_params(self) -> dict[str, Any]:
        return {p.name: (int(p.stock) if p.kind == "int" else p.stock) for p in self.params}

    def sample(self, trial: Any) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.params}


def _esx_kwargs(p: Mapping[str, Any]) -> dict[str, Any]:
    clear = float(p["clear"])
    soft = clear * float(p["soft_ratio"])
    hard = soft * float(p["hard_ratio"])
    # high keeps its published 400 % (the states above soft act alike); low stays at
    # half of hard, its published ratio (16 % / 32 %; low acts as hard here).
    fractions = (H.ESX6_FRACTIONS[0], clear, soft, hard, hard * 0.5)
    fast = float(p["fast_gain"])
    return {
        "idle_tax": float(p["idle_tax"]),
        "fractions": fractions,
        "ctl_max": float(p["ctl_max"]),
        "fast_gain": fast,
        "slow_gain": fast * float(p["slow_ratio"]),
    }


SEARCH_SPACES: dict[str, SearchSpace] = {
    "esx": SearchSpace(
        H.EsxPolicy,
        (
            Param(
                "idle_tax",
                0.0,
                0.95,
                H.ESX_IDLE_TAX,
                "tau: ESX's Mem.IdleTax may be set from 0 (no tax) up to 99 %; 0.95 caps "
                "an idle page's cost at 20 active pages (published 0.75, Waldspurger 2002)",
            ),
            Param(
                "clear",
                0.5,
                2.0,
                H.ESX6_FRACTIONS[1],
                "clear threshold = the free memory ESX aims back at, as a fraction of "
                "minFree: half to twice the published 100 % (below 400 % = high)",
            ),
            Param(
                "soft_ratio",
                0.3,
                0.95,
                H.ESX6_FRACTIONS[2] / H.ESX6_FRACTIONS[1],
                "soft / clear (published 64 %): below 1 keeps soft < clear, so the "
                "thresholds stay ordered",
            ),
            Param(
                "hard_ratio",
                0.2,
                0.9,
                H.ESX6_FRACTIONS[3] / H.ESX6_FRACTIONS[2],
                "hard / soft (published 32/64 = 0.5): below 1 keeps hard < soft",
            ),
            Param(
                "ctl_max",
                0.35,
                0.9,
                H.ESX_CTL_MAX,
                "Mem.CtlMaxPercent, the most of a VM ballooned (published 65 %); around it",
            ),
            Param(
                "fast_gain",
                0.1,
                1.0,
                H.ESX_FAST_GAIN,
                "EWMA gain per 30 s period of the fast average (ours 0.5; open in the "
                "paper): from slow smoothing to the last period only",
            ),
            Param(
                "slow_ratio",
                0.05,
                1.0,
                H.ESX_SLOW_GAIN / H.ESX_FAST_GAIN,
                "slow gain / fast gain (ours 0.5): at most 1 keeps the slow average "
                "no faster than the fast one (§5.3)",
            ),
        ),
        _esx_kwargs,
    ),
    "mom": SearchSpace(
        H.MomPolicy,
        (
            Param(
                "pressure",
                0.1,
                0.5,
                H.MOM_PRESSURE,
                "host free fraction below which guests shrink (published 0.20): half to "
                "2.5 times it; above critical's range, so critical < pressure",
            ),
            Param(
                "critical",
                0.0,
                0.09,
                H.MOM_CRITICAL,
                "critical host free fraction (published 0.05): 0 (never) to below "
                "pressure's lowest value",
            ),
            Param(
                "min_guest_free",
                0.0,
                0.5,
                H.MOM_MIN_GUEST_FREE,
                "free memory a guest keeps (published 0.20): none to half",
            ),
            Param(
                "max_change",
                0.01,
                0.3,
                H.MOM_MAX_CHANGE,
                "most a guest changes per 15 s run (published 0.05): 1 % to 30 %, log",
                log=True,
            ),
            Param(
                "min_change",
                0.0,
                0.0095,
                H.MOM_MIN_CHANGE,
                "changes below it are skipped (published 0.0025): 0 to below max_change's "
                "lowest value, so min_change < max_change",
            ),
        ),
        lambda p: {
            k: float(p[k])
            for k in ("pressure", "critical", "min_guest_free", "max_change", "min_change")
        },
    ),
    "selfballoon": SearchSpace(
        H.SelfBalloonPolicy,
        (
            Param(
                "reserve",
                0.0,
                0.3,
                H.XEN_RESERVE,
                "reserve above Committed_AS as a fraction of memory (ours 10 %): 0 to 30 %",
            ),
            Param(
                "down_hysteresis",
                1,
                16,
                H.XEN_DOWN_HYSTERESIS,
                "give back 1/n of the excess per run (kernel default 8): 1 to 16",
                kind="int",
            ),
            Param(
                "up_hysteresis",
                1,
                8,
                H.XEN_UP_HYSTERESIS,
                "take 1/n of the shortfall per run (kernel default 1): 1 to 8",
                kind="int",
            ),
        ),
        lambda p: {
            "reserve": float(p["reserve"]),
            "down_hysteresis": int(p["down_hysteresis"]),
            "up_hysteresis": int(p["up_hysteresis"]),
        },
    ),
    "hyperv": SearchSpace(
        H.HyperVPolicy,
        (
            Param(
                "buffer",
                0.05,
                1.0,
                H.HYPERV_BUFFER,
                "Dynamic Memory buffer (default 20 %; Hyper-V accepts 5 %–2000 %): 5 % to "
                "100 %, beyond which an overcommitted host scales every VM down anyway",
            ),
            Param(
                "host_reserve",
                0.0,
                0.1,
                H.HYPERV_HOST_RESERVE,
                "host memory kept back beyond host_min_free (ours 2 %): 0 to 10 %",
            ),
        ),
        lambda p: {"buffer": float(p["buffer"]), "host_reserve": float(p["host_reserve"])},
    ),
    "mrc": SearchSpace(
        H.MrcPolicy,
        (
            Param(
                "gain",
                0.05,
                1.0,
                H.MRC_GAIN,
                "EWMA gain per 5 s period (ours 0.5): heavy smoothing to none",
            ),
            Param(
                "cold_slope",
                1e-5,
                1e-1,
                H.MRC_COLD_SLOPE,
                "faults/tick floor per idle resident page (ours 1e-3): two decades each side, log",
                log=True,
            ),
            Param(
                "host_reserve",
                0.0,
                0.1,
                H.MRC_HOST_RESERVE,
                "host memory kept free beyond host_min_free (ours 2 %): 0 to 10 %",
            ),
            Param(
                "min_change",
                0.0,
                0.05,
                H.MRC_MIN_CHANGE,
                "target changes below it (of M) are skipped (ours 1 %): 0 to 5 %",
            ),
        ),
        lambda p: {k: float(p[k]) for k in ("gain", "cold_slope", "host_reserve", "min_change")},
    ),
}
TUNABLE: tuple[str, ...] = tuple(SEARCH_SPACES)


def check_tunable(name: str) -> SearchSpace:
    """The search space of heuristic ``name``; ValueError for a policy without one."""
    if name not in SEARCH_SPACES:
        raise ValueError(
            f"{name!r} has no tunable constants; tunable heuristics: {list(TUNABLE)} "
            "(static and no-balloon have none)"
        )
    return SEARCH_SPACES[name]


def constants(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword constants of heuristic ``name`` for sampled ``params``."""
    return check_tunable(name).to_kwargs(params)


def build(name: str, env: Any, params: Mapping[str, Any] | None = None):
    """Heuristic ``name`` for ``env`` with the constants of ``params`` (None: stock)."""
    space = check_tunable(name)
    return space.policy(env, **space.to_kwargs(space.stock_params if params is None else params))


def load_tuned(path: Path = TUNED_FILE) -> dict[str, dict[str, Any]]:
    """heuristic -> its committed record (``params``, ``constants``, ``provenance``);
    empty when the file does not exist."""
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text())["heuristics"])


class TunedFactory:
    """``factory(env)``: heuristic ``base`` with the committed tuned constants, named
    ``<base>-tuned``."""

    def __init__(self, base: str, params: Mapping[str, Any], suffix: str = TUNED_SUFFIX) -> None:
        check_tunable(base)
        self.base = base
        self.name = base + suffix
        self.params = dict(params)

    def __call__(self, env: Any):
        pol = build(self.base, env, self.params)
        pol.name = self.name
        return pol

    def __repr__(self) -> str:
        return f"TunedFactory({self.base!r}, {self.params!r}, {self.name[len(self.base):]!r})"


def tuned_registry(files: Mapping[str, Path] | None = None) -> dict[str, TunedFactory]:
    """``<name><suffix>`` -> its factory, for every heuristic with committed constants in
    each file of ``files`` (suffix -> file; default :data:`TUNED_FILES`)."""
    out: dict[str, TunedFactory] = {}
    for suffix, path in (TUNED_FILES if files is None else files).items():
        for b, r in load_tuned(path).items():
            f = TunedFactory(b, r["params"], suffix)
            out[f.name] = f
    return out


__all__ = [
    "SEARCH_SPACES",
    "TUNABLE",
    "TUNED_FILE",
    "TUNED_FILES",
    "TUNED_SUFFIX",
    "Param",
    "SearchSpace",
    "TunedFactory",
    "build",
    "check_tunable",
    "constants",
    "load_tuned",
    "tuned_registry",
]
