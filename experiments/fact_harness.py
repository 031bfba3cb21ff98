"""What a fact of ``reclaim validate`` runs on: its physics, its simulation, its result.

:class:`Physics` is the physics version (``v1`` by default: ``envs.physics.with_v1_physics``, the
preset of the ``-v1`` scenarios; ``v2``, the partial v2 preset ``with_v2_physics``; or
``v0``) with ``HostParams`` overrides, applied to
every host a fact builds; :func:`simulate` steps one env of such a host with fixed
balloon targets and sums its events and stall; :class:`FactResult` is one row of the
table (claim, source, published and simulated figures, band, verdict). The facts
themselves are in ``experiments.facts``; the table and the command in
``experiments.validate``. :data:`BAND_FACTOR` is the one rule of the pass bands
(docs/design/physics-v1.md, "Pass bands").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BAND_FACTOR = 1.25  # physics-v1.md "Pass bands": ±25 % in log space around a published figure


# ------------------------------------------------------------------ the physics
PHYSICS_VERSIONS = ("v1", "v0", "v2")
# What a fact's verdict tests (FactResult.kind). "independent": the simulated figure is
# not an input of the model (a test of the physics). "construction": it holds by how the
# model is built (a ballooned guest and a smaller one run the same LRU; a latency set
# from the figure it is compared with). "consistency": it checks that two parts of the
# model agree (a rate derived from the same measurement as the cost it is checked
# against). Only independent facts are counted in the table's summary.
FACT_KINDS = ("independent", "construction", "consistency")


@dataclass(frozen=True)
class Physics:
    """The physics a fact runs under: a physics version and overrides of ``HostParams``
    fields (``costs`` is a ``CostParams``) applied to every host the fact builds.

    ``version="v1"`` (the default): the host a fact builds goes through
    ``envs.physics.with_v1_physics`` (the preset the ``-v1`` scenarios use), then the fact's own
    measurement-protocol fields (its ``keep``, named and justified in its note) are put
    back, then the overrides. ``version="v0"``: the fact's host as built, then the
    overrides (the table as it was before v1, for comparison). The default override is
    the ``random`` host policy (ESX's, Waldspurger 2002 §3.3), which v1 also sets."""

    host: tuple[tuple[str, Any], ...] = (("host_policy", "random"),)
    """HostParams overrides, as (field, value) pairs"""
    version: str = "v1"
    """physics version: "v1" (envs.physics.with_v1_physics), "v2" (with_v2_physics, partial)
    or "v0" (the simulator's defaults)"""

    def __post_init__(self) -> None:
        if self.version not in PHYSICS_VERSIONS:
            raise ValueError(
                f"Physics.version must be one of {PHYSICS_VERSIONS}, got {self.version!r}"
            )

    @classmethod
    def of(cls, version: str = "v1", **host: Any) -> Physics:
        """Physics with these HostParams overrides (on top of the default host policy)."""
        base = dict(cls().host)
        base.update(host)
        return cls(tuple(base.items()), version)

    def with_(self, **host: Any) -> Physics:
        base = dict(self.host)
        base.update(host)
        return Physics(tuple(base.items()), self.version)

    def params(self, keep: Sequence[str] = (), **host: Any) -> Any:
        """A ``HostParams`` from a fact's own fields, through the physics version, with
        the fields named in ``keep`` re-applied after v1 (a fact's measurement protocol),
        then this physics' overrides."""
        from envs.physics import with_v1_physics, with_v2_physics
        from envs.sim.params import HostParams

        for k in keep:
            if k not in host:
                raise ValueError(f"keep: {k!r} is not one of the fact's own fields")
        if self.version == "v0":
            kw = dict(host)
            kw.update(dict(self.host))
            return HostParams(**kw)
        preset = with_v2_physics if self.version == "v2" else with_v1_physics
        p = preset(HostParams(**host))
        p = dataclasses.replace(p, **{k: host[k] for k in keep})
        return dataclasses.replace(p, **dict(self.host))


@dataclass(frozen=True)
class FactResult:
    """One row of the table. ``passed`` is the verdict of ``simulated`` against ``band``."""

    fact: str  # id and claim
    source: str
    published: str
    simulated: str
    band: str
    passed: bool
    note: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)  # the measured numbers
    kind: str = "independent"  # one of FACT_KINDS: what the verdict tests

    def __post_init__(self) -> None:
        if self.kind not in FACT_KINDS:
            raise ValueError(f"FactResult.kind must be one of {FACT_KINDS}, got {self.kind!r}")

    @property
    def counted(self) -> bool:
        """Whether the verdict counts in the summary (independent facts only)."""
        return self.kind == "independent"

    def row(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["values"] = dict(self.values)
        return d


# ------------------------------------------------------------------ simulation
def simulate(
    params: Any,
    targets: Sequence[int],
    ticks: int,
    seed: int = 0,
    observe: Callable[[Any, Any], None] | None = None,
) -> dict[str, Any]:
    """Run one env of ``params`` for ``ticks`` ticks with fixed balloon ``targets`` (V,);
    ``observe(sim, counters)``, if given, is called after every tick.

    Returns the per-VM totals of every event (``totals[name]``, (V,) int), the stall per
    VM (µs, summed over the ticks), the stall of each tick (``stall_us_per_tick``,
    (ticks, V) µs; ``stall_frac_per_tick``, the same over ``vcpus · tick_us``), the
    components of the stall summed over the ticks (``components[term]``, (V,) µs) and
    the last tick's counters (``last``). On a closed-loop host (``closed_loop``, the v2
    physics) also each VM's cursor after every tick (``progress_per_tick``, (ticks, V):
    the batches it had issued), from which :func:`throughput` and :func:`run_time`
    measure the work done.
    """
    from envs.sim.core import Simulator
    from envs.sim.costs import COST_TERMS, tick_costs
    from envs.sim.counters import VM_EVENTS, VM_INDEX

    sim = Simulator(params, 1)
    sim.reset([seed])
    tg = np.asarray(targets, dtype=np.int64).reshape(1, params.num_vms)
    ev = np.zeros((params.num_vms, len(VM_INDEX)), dtype=np.int64)
    stall = np.zeros(params.num_vms)
    per_tick = np.zeros((ticks, params.num_vms))
    frac = np.zeros((ticks, params.num_vms))
    comps = {name: np.zeros(params.num_vms) for name in COST_TERMS}
    progress = np.zeros((ticks, params.num_vms), dtype=np.int64)
    res = None
    for t in range(ticks):
        res = sim.step(tg)
        if params.closed_loop:
            progress[t] = sim.workload.vm_ticks[0]
        ev += res.vm[0]
        cost = tick_costs(params, res.vm)
        if observe is not None:
            observe(sim, res)
        stall += cost.stall_us[0]
        per_tick[t] = cost.stall_us[0]
        frac[t] = cost.stall_frac[0]
        for name in COST_TERMS:
            comps[name] += cost.components[name][0]
    totals = {name: ev[:, VM_INDEX[name]].copy() for name in VM_EVENTS}
    out = {"totals": totals, "stall_us": stall, "stall_us_per_tick": per_tick,
           "stall_frac_per_tick": frac, "components": comps, "last": res, "sim": sim}  # fmt: skip
    if params.closed_loop:
        out["progress_per_tick"] = progress
    return out


def throughput(run: dict[str, Any], start: int = 0) -> np.ndarray:
    """(V,) each VM's throughput over the ticks ``start ..`` of a :func:`simulate` run.

    Closed loop (v2): the batches of references it issued per tick, the work it did (a
    VM that waits issues none; docs/model.md §13.5). Open loop: one batch a tick whatever
    the stall, so the share of its vCPU time not stalled, ``mean(1 − stall_frac)`` with
    the fraction clipped to [0, 1]."""
    if "progress_per_tick" in run:
        cur = run["progress_per_tick"]
        before = cur[start - 1] if start > 0 else np.zeros(cur.shape[1], dtype=np.int64)
        return (cur[-1] - before) / float(cur.shape[0] - start)
    return np.mean(1.0 - np.clip(run["stall_frac_per_tick"][start:], 0.0, 1.0), axis=0)


def run_time(run: dict[str, Any]) -> np.ndarray:
    """(V,) each VM's time for its work in a :func:`simulate` run, in ticks per batch:
    closed loop, the run's ticks over the batches issued (the run time of a fixed amount
    of work, what a benchmark reports); open loop, one tick plus the stall per tick (the
    tick's work took its tick and the time lost)."""
    if "progress_per_tick" in run:
        cur = run["progress_per_tick"]
        return cur.shape[0] / np.maximum(cur[-1], 1).astype(np.float64)
    return 1.0 + np.mean(run["stall_frac_per_tick"], axis=0)


def band(lo: float, hi: float, unit: str = "") -> str:
    return f"[{lo:g}, {hi:g}]{unit}"


__all__ = [
    "BAND_FACTOR",
    "FACT_KINDS",
    "PHYSICS_VERSIONS",
    "FactResult",
    "Physics",
    "band",
    "run_time",
    "simulate",
    "throughput",
]


# ------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class Fact:
    id: str
    fn: Callable[[Physics], FactResult]
    versions: tuple[str, ...] | None = None  # physics versions whose table holds it (None: all)

    def applies_to(self, version: str) -> bool:
        return self.versions is None or version in self.versions


FACTS: dict[str, Fact] = {}


def fact(
    fact_id: str, versions: tuple[str, ...] | None = None
) -> Callable[[Callable[[Physics], FactResult]], Callable]:
    """Register a fact function under ``fact_id`` (in definition order). ``versions``:
    the physics versions whose default table lists it (None: every version); a fact named
    with ``--facts`` runs under any version."""

    def deco(fn: Callable[[Physics], FactResult]) -> Callable[[Physics], FactResult]:
        if fact_id in FACTS:
            raise ValueError(f"fact {fact_id!r} is already registered")
        FACTS[fact_id] = Fact(fact_id, fn, versions)
        return fn

    return deco
