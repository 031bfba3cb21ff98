"""``reclaim validate``: stylized facts of the literature, checked against the simulator.

Each fact is a function of a :class:`Physics` (the host policy and any other
``HostParams`` / ``CostParams`` fields to apply) returning a :class:`FactResult`: the
claim, its source, the published figure, the simulated figure, the pass band and the
verdict. The facts build their hosts directly from ``HostParams`` / ``VmParams`` /
``WorkloadParams`` (small: each runs in a few seconds) and step the vectorized simulator
with fixed balloon targets, so a fact measures the physics, not a policy.

Bands follow one rule (docs/design/physics-v1.md, "Pass bands"), written here before any
run and never tuned per fact: a published point ``v`` gets ``[v/1.25, 1.25·v]``, a range
``[a, b]`` gets ``[a/1.25, 1.25·b]``, an inequality is tested with the same factor on its
bound, a qualitative ordering as an ordering. Where the brief of a fact gives a tighter
band (fact a: within 5 %), that band is used. A fact the simulator misses is reported as
missed, with its figures: the band is never loosened.

Adding a fact: write ``def fact_x(physics: Physics) -> FactResult`` and decorate it with
``@fact("x")``; its test (``tests/experiments/test_validate.py``) is generated from
:data:`FACTS`.

Exit status: 0 when the table was computed (missed facts included), 1 with ``--strict``
when a fact is missed, 2 on a user error.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from agents.provenance import write_json_atomic
from experiments.checks import UserError, split_list

BAND_FACTOR = 1.25  # physics-v1.md "Pass bands": ±25 % in log space around a published figure


# ------------------------------------------------------------------ the physics
@dataclass(frozen=True)
class Physics:
    """The physics a fact runs under: overrides of ``HostParams`` fields (``costs`` is a
    ``CostParams``) applied to every host the fact builds. The default is today's
    ``HostParams`` with the ``random`` host policy (ESX's, Waldspurger 2002 §3.3)."""

    host: tuple[tuple[str, Any], ...] = (("host_policy", "random"),)
    """HostParams overrides, as (field, value) pairs"""

    @classmethod
    def of(cls, **host: Any) -> Physics:
        """Physics with these HostParams overrides (on top of the default host policy)."""
        base = dict(cls().host)
        base.update(host)
        return cls(tuple(base.items()))

    def with_(self, **host: Any) -> Physics:
        base = dict(self.host)
        base.update(host)
        return Physics(tuple(base.items()))

    def params(self, **host: Any) -> Any:
        """A ``HostParams`` from a fact's own fields, then this physics' overrides."""
        from envs.sim.params import HostParams

        kw = dict(host)
        kw.update(dict(self.host))
        return HostParams(**kw)


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

    def row(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["values"] = dict(self.values)
        return d


@dataclass(frozen=True)
class Fact:
    id: str
    fn: Callable[[Physics], FactResult]


FACTS: dict[str, Fact] = {}


def fact(fact_id: str) -> Callable[[Callable[[Physics], FactResult]], Callable]:
    """Register a fact function under ``fact_id`` (in definition order)."""

    def deco(fn: Callable[[Physics], FactResult]) -> Callable[[Physics], FactResult]:
        if fact_id in FACTS:
            raise ValueError(f"fact {fact_id!r} is already registered")
        FACTS[fact_id] = Fact(fact_id, fn)
        return fn

    return deco


# ------------------------------------------------------------------ simulation
def simulate(params: Any, targets: Sequence[int], ticks: int, seed: int = 0) -> dict[str, Any]:
    """Run one env of ``params`` for ``ticks`` ticks with fixed balloon ``targets`` (V,).

    Returns the per-VM totals of every event (``totals[name]``, (V,) int), the stall per
    VM (µs, summed over the ticks) and the last tick's counters (``last``).
    """
    from envs.sim.core import Simulator
    from envs.sim.costs import tick_costs
    from envs.sim.counters import VM_EVENTS, VM_INDEX

    sim = Simulator(params, 1)
    sim.reset([seed])
    tg = np.asarray(targets, dtype=np.int64).reshape(1, params.num_vms)
    ev = np.zeros((params.num_vms, len(VM_INDEX)), dtype=np.int64)
    stall = np.zeros(params.num_vms)
    res = None
    for _ in range(ticks):
        res = sim.step(tg)
        ev += res.vm[0]
        stall += tick_costs(params, res.vm).stall_us[0]
    totals = {name: ev[:, VM_INDEX[name]].copy() for name in VM_EVENTS}
    return {"totals": totals, "stall_us": stall, "last": res, "sim": sim}


def _band(lo: float, hi: float, unit: str = "") -> str:
    return f"[{lo:g}, {hi:g}]{unit}"


# ------------------------------------------------------------------ the facts
# Shared by a and b: one guest of 1024 pages whose Zipf(0.9) working set fills what the
# guest can use (footprint = guest pages − kernel − reserve), 256 references per tick.
GUEST_PAGES = 1024
KERNEL_PAGES = 32
RESERVE_PAGES = 16
REFS_PER_TICK = 256
TICKS = 300


def _filling_guest(guest_pages: int = GUEST_PAGES, footprint: int | None = None) -> Any:
    from envs.sim.params import Phase, VmParams, WorkloadParams

    fp = GUEST_PAGES - KERNEL_PAGES - RESERVE_PAGES if footprint is None else footprint
    wl = WorkloadParams(
        footprint_pages=fp,
        phases=(Phase(ws_pages=fp, refs_per_tick=REFS_PER_TICK),),
    )
    return VmParams(
        guest_pages=guest_pages,
        kernel_pages=KERNEL_PAGES,
        guest_reserve_pages=RESERVE_PAGES,
        guest_swap_pages=2 * GUEST_PAGES,
        workload=wl,
    )


@fact("a")
def fact_balloon_is_a_smaller_vm(physics: Physics) -> FactResult:
    """A VM of M pages with balloon b stalls like the same VM configured with M − b."""
    M = GUEST_PAGES
    fp = 3 * M // 4  # fits M, not M − b at the larger b: the guest pages on its own
    rows = {}
    ok = True
    for frac in (0.125, 0.25, 0.375):
        b = int(frac * M)
        host = dict(host_frames=2 * M, host_swap_pages=2 * M, host_min_free=8,
                    balloon_rate_pages=M, ksm_pages_per_tick=0)  # fmt: skip
        big = simulate(physics.params(vms=(_filling_guest(M, fp),), **host), [b], TICKS)
        small = simulate(physics.params(vms=(_filling_guest(M - b, fp),), **host), [0], TICKS)
        sb, ss = float(big["stall_us"][0]), float(small["stall_us"][0])
        ratio = sb / ss if ss > 0 else float("inf")
        rows[f"b={b}"] = {"ballooned_us": sb, "smaller_us": ss, "ratio": ratio}
        ok &= abs(ratio - 1.0) <= 0.05
    sim = ", ".join(f"{k}: {v['ratio']:.3f}" for k, v in rows.items())
    return FactResult(
        fact="a: a ballooned VM performs like a VM configured with less memory",
        source="Waldspurger, OSDI 2002, §3.2 (dbench)",
        published="1.4–4.4 % balloon overhead",
        simulated=f"stall ratio ballooned / smaller VM at {sim}",
        band="every ratio in [0.95, 1.05]",
        passed=bool(ok),
        note="§3.2 figure not re-read (physics-v1.md §10: provisional); b = 12.5/25/37.5 % of "
        f"M = {M}, Zipf footprint {fp} pages, {TICKS} ticks",
        values=rows,
    )


@fact("b")
def fact_host_swap_costs_more_than_balloon(physics: Physics) -> FactResult:
    """The same amount reclaimed by host swapping or by ballooning: host swapping stalls
    more at every amount, and the gap grows with the amount."""
    M = GUEST_PAGES
    fracs = (0.1, 0.2, 0.3, 0.4, 0.5)
    hmf = 8
    rows = {}
    for frac in fracs:
        r = int(frac * M)
        common = dict(host_swap_pages=2 * M, host_min_free=hmf, balloon_rate_pages=M,
                      ksm_pages_per_tick=0)  # fmt: skip
        bal = simulate(physics.params(vms=(_filling_guest(),), host_frames=M + hmf, **common),
                       [r], TICKS)  # fmt: skip
        swp = simulate(
            physics.params(vms=(_filling_guest(),), host_frames=M - r + hmf, **common), [0], TICKS
        )
        rows[f"{round(100 * frac)}%"] = {
            "balloon_us": float(bal["stall_us"][0]),
            "host_swap_us": float(swp["stall_us"][0]),
            "host_swapins": int(swp["totals"]["host_swapins"][0]),
            "guest_major_faults_balloon": int(bal["totals"]["guest_major_faults"][0]),
        }
    gaps = [v["host_swap_us"] - v["balloon_us"] for v in rows.values()]
    more = all(g > 0 for g in gaps)
    grows = all(b >= a for a, b in zip(gaps, gaps[1:], strict=False))
    ratio = ", ".join(
        f"{k}: {v['host_swap_us'] / max(v['balloon_us'], 1e-9):.2f}×" for k, v in rows.items()
    )
    return FactResult(
        fact="b: host swapping costs more than ballooning for the same memory, more so as it grows",
        source="Waldspurger, OSDI 2002, §3.3; VMware, Understanding Memory Resource Management "
        "in VMware ESX 4.1 (2010), §5",
        published="ballooning degrades much less than host swapping (qualitative)",
        simulated=f"stall host swap / balloon at {ratio}; gap (ms) "
        + ", ".join(f"{g / 1000:.1f}" for g in gaps),
        band="swap > balloon at each of 10–50 % reclaimed, gap non-decreasing",
        passed=bool(more and grows),
        note=f"LRU-friendly guest: Zipf(0.9) over its usable {M - KERNEL_PAGES - RESERVE_PAGES} "
        f"pages, M = {M}; host policy {dict(physics.host).get('host_policy')!r}; {TICKS} ticks",
        values={"per_amount": rows, "gap_us": gaps},
    )


def _sharing_host(physics: Physics, identical: bool) -> Any:
    """Four VMs, defaults of WorkloadParams content (shareable_fraction 0.1, writes 0.2),
    either identical (one kernel image, the same workload) or diverse (their own kernel
    image, different working-set offsets, Zipf skews and footprints)."""
    from envs.sim.params import Phase, VmParams, WorkloadParams

    vms = []
    for i in range(4):
        fp = 768 if identical else 640 + 64 * i
        wl = WorkloadParams(
            footprint_pages=fp,
            zipf_alpha=0.9 if identical else 0.6 + 0.2 * i,
            phases=(
                Phase(
                    ws_pages=fp // 2,
                    refs_per_tick=REFS_PER_TICK,
                    ws_offset_pages=0 if identical else 97 * i,
                ),
            ),  # fmt: skip
        )
        vms.append(VmParams(guest_pages=GUEST_PAGES, kernel_pages=64, guest_reserve_pages=16,
                            guest_swap_pages=GUEST_PAGES, kernel_image=0 if identical else i,
                            workload=wl))  # fmt: skip
    return physics.params(vms=tuple(vms), host_frames=4 * GUEST_PAGES + 64,
                          host_swap_pages=4 * GUEST_PAGES, host_min_free=8,
                          ksm_pages_per_tick=256)  # fmt: skip


def sharing_savings(sim: Any, params: Any) -> dict[str, float]:
    """KSM savings of env 0: frames saved over the machine pages the VMs map (resident +
    shared GPPs), in total and excluding zero-content pages (content id 0)."""
    from envs.sim import core
    from envs.sim.params import CONTENT_ZERO

    snap = sim.snapshot(0)

    hst, content = snap["hstate"], snap["gcontent"]
    shared = hst == core.SHARED
    mapped = int(((hst == core.RESIDENT) | shared).sum())
    ids, counts = np.unique(content[shared], return_counts=True)
    frames = -(-counts // params.ksm_max_sharing)  # a shared frame holds at most max_sharing
    saved = counts - frames
    nonzero = ids != CONTENT_ZERO
    return {
        "mapped_pages": mapped,
        "saved_frames": int(saved.sum()),
        "saved_nonzero_frames": int(saved[nonzero].sum()),
        "saving": float(saved.sum()) / max(mapped, 1),
        "saving_nonzero": float(saved[nonzero].sum()) / max(mapped, 1),
    }


@fact("e")
def fact_page_sharing(physics: Physics) -> FactResult:
    """KSM saves 30–67 % on identical VMs and, zero pages excluded, under 15 % on diverse."""
    ticks = 200  # KSM passes over the 4096 GPPs more than 10 times
    out = {}
    for kind in ("identical", "diverse"):
        params = _sharing_host(physics, kind == "identical")
        run = simulate(params, [0] * params.num_vms, ticks)
        s = sharing_savings(run["sim"], params)
        saved_gauge = int(run["last"].host_field("sharing_saved_frames")[0])
        if saved_gauge != s["saved_frames"]:  # the snapshot count must be the host's own
            raise AssertionError(f"savings {s['saved_frames']} != gauge {saved_gauge}")
        out[kind] = s
    lo, hi = 0.30 / BAND_FACTOR, 0.67 * BAND_FACTOR
    ident, div = out["identical"]["saving"], out["diverse"]["saving_nonzero"]
    div_bound = 0.15 * BAND_FACTOR
    ok = lo <= ident <= hi and div <= div_bound
    return FactResult(
        fact="e: page sharing saves 30–67 % on identical VMs, under 15 % on diverse VMs "
        "(zero pages excluded)",
        source="Waldspurger, OSDI 2002, §4.3; Barker et al., USENIX ATC 2012",
        published="identical: 30–67 %; diverse, excluding zero pages: < 15 %",
        simulated=f"identical: {100 * ident:.1f} % (excluding zero pages "
        f"{100 * out['identical']['saving_nonzero']:.1f} %); diverse, excluding zero pages: "
        f"{100 * div:.1f} % (all {100 * out['diverse']['saving']:.1f} %)",
        band=f"identical in {_band(100 * lo, 100 * hi, ' %')}, diverse ≤ {100 * div_bound:g} %",
        passed=bool(ok),
        note="savings = frames saved / machine pages mapped, after "
        f"{ticks} ticks; content from WorkloadParams defaults (not tuned); the §4.3 range is "
        "unverified (physics-v1.md §10 e3)",
        values=out,
    )


# ------------------------------------------------------------------ the table
def validate(ids: Sequence[str] | None = None, physics: Physics | None = None) -> list[FactResult]:
    """Run the facts ``ids`` (default: all, in registry order) under ``physics``."""
    physics = Physics() if physics is None else physics
    chosen = list(FACTS) if not ids else list(ids)
    for i in chosen:
        if i not in FACTS:
            raise ValueError(f"unknown fact {i!r}; valid: {', '.join(FACTS)}")
    return [FACTS[i].fn(physics) for i in chosen]


def to_text(results: Sequence[FactResult]) -> str:
    """The table as printed: one block per fact."""
    lines = []
    for r in results:
        lines += [
            f"[{'PASS' if r.passed else 'MISS'}] {r.fact}",
            f"    source:    {r.source}",
            f"    published: {r.published}",
            f"    simulated: {r.simulated}",
            f"    band:      {r.band}",
        ]
        if r.note:
            lines.append(f"    note:      {r.note}")
    n = sum(r.passed for r in results)
    lines.append(f"{n}/{len(results)} facts reproduced")
    return "\n".join(lines) + "\n"


def _parse_value(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@dataclass(frozen=True)
class ValidateConfig:
    """Check the simulator against stylized facts from the literature: each with its
    source, the published figure, the simulated figure and a verdict. Exit status 0 when
    the table is computed (missed facts included), 1 with --strict when a fact is missed."""

    facts: tuple[str, ...] = ()
    """fact ids, comma- or space-separated (empty: all)"""
    overrides: Annotated[
        tuple[str, ...], tyro.conf.arg(name="set", metavar="KEY=VALUE"), tyro.conf.UseAppendAction
    ] = ()
    """HostParams override for every host the facts build, e.g. --set host_policy='lru'"""
    json: bool = False
    """print the table as one JSON list of objects (fact, source, published, simulated, band, passed, note, values)"""  # noqa: E501
    out: Path | None = None
    """also write the table as JSON to this file (atomically)"""
    strict: bool = False
    """exit 1 when a fact is missed"""

    def __post_init__(self) -> None:
        from envs.sim.params import HostParams

        object.__setattr__(self, "facts", split_list(self.facts))
        for i in self.facts:
            if i not in FACTS:
                raise UserError(f"--facts: unknown fact {i!r}; valid: {', '.join(FACTS)}")
        names = {f.name for f in dataclasses.fields(HostParams)} - {"vms"}
        for text in self.overrides:
            key = text.split("=", 1)[0].strip()
            if "=" not in text:
                raise UserError(f"--set expects KEY=VALUE, got {text!r}")
            if key not in names:
                raise UserError(f"--set: {key!r} is not a HostParams field; valid: "
                                f"{', '.join(sorted(names))}")  # fmt: skip
        try:
            HostParams(**self.override_dict)
        except (ValueError, TypeError) as e:
            raise UserError(f"--set: {e}") from None

    @property
    def override_dict(self) -> dict[str, Any]:
        return {
            t.split("=", 1)[0].strip(): _parse_value(t.split("=", 1)[1]) for t in self.overrides
        }

    @property
    def physics(self) -> Physics:
        return Physics.of(**self.override_dict)


def run(config: ValidateConfig) -> int:
    try:
        results = validate(config.facts, config.physics)
    except ValueError as e:
        if not config.overrides:
            raise  # the facts' own hosts are valid: this is a bug
        raise UserError(f"--set: {e}") from None  # an override a fact's host rejects
    rows = [r.row() for r in results]
    if config.out is not None:
        write_json_atomic(config.out, rows)
    if config.json:
        print(json.dumps(rows))
    else:
        print(to_text(results), end="")
    if config.strict and not all(r.passed for r in results):
        return 1
    return 0


__all__ = [
    "FACTS",
    "Fact",
    "FactResult",
    "Physics",
    "ValidateConfig",
    "fact",
    "run",
    "sharing_savings",
    "simulate",
    "to_text",
    "validate",
]
