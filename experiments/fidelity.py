"""``reclaim fidelity``: the simulator's tick-batched guest LRU against libCacheSim's exact LRU.

The simulator runs *guest-only*: the host has a frame for every guest page (it never
reclaims), no balloon, KSM off, no free page reporting, and each VM's workload is all
anon pages with a guest swap that holds the whole footprint, so the only thing that
decides a fault is the guest's own LRU (SEMANTICS.md steps 3-4). The guest's misses are
``guest_major_faults + guest_minor_faults`` (re-reads and first touches); the peer's are
``lru_miss_count`` on the *same* reference string at the same capacity: the VM's per-tick
reference batches, flattened in slot order (for a replayed trace that is the trace
itself, see ``envs.sim.workload``).

Several cache sizes run in one simulator as one VM each: with no host pressure and
no balloon the VMs of a host never interact, so this equals one run per size (asserted:
no host swap activity, no OOM).

Tick batching is exact LRU only when one tick's distinct pages are a small part of
memory: within a tick the simulator (a) counts a page once however often it is
referenced, (b) refreshes all of the tick's pages to the same age (ties broken by GPP,
not by order within the tick) and (c) never evicts a page referenced in the same tick.
``tick_distinct_frac`` (distinct pages per tick / cache pages, mean over ticks)
measures how much that matters.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from agents.learners.sb3.train import DEFAULT_IN_HELP
from envs.data import load_workload_data, recordings_dir, resolve_trace, trace_path
from envs.sim import checks
from envs.sim.core import Simulator
from envs.sim.counters import HOST_INDEX, VM_INDEX
from envs.sim.params import HostParams, Phase, TraceSpec, VmParams, WorkloadParams
from envs.sim.workload import Demand
from experiments.user_errors import UserError, check_int, split_list

FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)  # cache sizes as fractions of the footprint
KERNEL_PAGES = 8
MAX_TICKS = 5_000  # per run: bounds the time of the fine-grained (few refs per tick) runs


@dataclass(frozen=True)
class FidelityRow:
    """One (stream, cache size) comparison."""

    trace: str
    footprint_pages: int  # distinct pages of the stream
    guest_pages: int  # kernel_pages + cache_pages
    cache_pages: int  # guest pages available to the workload: the LRU capacity
    refs_per_tick: int
    ticks: int
    refs: int
    sim_major_faults: int
    sim_minor_faults: int
    sim_misses: int  # major + minor
    lru_misses: int  # libCacheSim exact LRU, same stream, same capacity
    rel_error: float  # (sim_misses - lru_misses) / lru_misses
    tick_distinct_frac: float  # mean over ticks of distinct pages / cache_pages


def guest_only_params(
    workload: WorkloadParams, cache_pages: Sequence[int], kernel_pages: int = KERNEL_PAGES
) -> HostParams:
    """One VM per cache size, a host that never reclaims, every host mechanism off."""
    vms = tuple(
        VmParams(
            guest_pages=kernel_pages + int(c),
            kernel_pages=kernel_pages,
            guest_reserve_pages=0,
            guest_swap_pages=workload.footprint_pages,
            workload=workload,
        )
        for c in cache_pages
    )
    total = sum(v.guest_pages for v in vms)
    return HostParams(
        vms=vms,
        host_frames=total,
        host_swap_pages=0,
        host_min_free=0,
        balloon_rate_pages=0,
        ksm_pages_per_tick=0,
        free_page_reporting=False,
        ws_sample_pages=0,
    )


def fidelity_table(
    workload: WorkloadParams,
    cache_pages: Sequence[int],
    ticks: int,
    *,
    seed: int = 0,
    name: str = "",
    kernel_pages: int = KERNEL_PAGES,
) -> list[FidelityRow]:
    """Compare guest misses with exact LRU for one workload at several cache sizes.

    Args:
        workload: any workload with a static live footprint (synthetic or trace). Its
            page layout is replaced by all-anon, unshareable pages: that does not change
            which references miss, and it keeps every eviction possible.
        cache_pages: LRU capacities to compare at (the guest gets ``kernel_pages`` more).
        ticks: simulated ticks.
        seed: env seed of the simulator.
        name: label of the stream in the rows.

    Returns:
        One row per cache size, in the given order.
    """
    if workload.initial_live_pages not in (None, workload.footprint_pages) or (
        workload.growth_pages_per_tick or workload.restart_period_ticks
    ):
        raise ValueError("fidelity needs a static live footprint (no growth, no restarts)")
    checks.check_int("ticks", ticks, 1)
    wl = dataclasses.replace(workload, file_fraction=0.0, shareable_fraction=0.0)
    params = guest_only_params(wl, cache_pages, kernel_pages)
    V = params.num_vms
    sim = Simulator(params, 1, load_workload_data(params))
    sim.reset([seed])
    # Record exactly the batches the simulator consumes: wrap its workload's draw().
    draw = sim.workload.draw
    stream = np.empty((ticks, V, sim.workload.R), np.int32)
    tick = [0]

    def recording_draw() -> Demand:
        d = draw()
        stream[tick[0]] = d.refs[0]
        return d

    sim.workload.draw = recording_draw  # type: ignore[method-assign]
    counts = np.zeros((V, 2), np.int64)
    no_balloon = np.zeros((1, V), np.int64)
    host_bad = [HOST_INDEX["host_oom"]]
    vm_bad = [VM_INDEX[k] for k in ("host_swapouts", "host_swapins", "guest_oom_kills")]
    cols = [VM_INDEX["guest_major_faults"], VM_INDEX["guest_minor_faults"]]
    for t in range(ticks):
        tick[0] = t
        res = sim.step(no_balloon)
        counts += res.vm[0][:, cols]
        if res.host[0, host_bad].any() or res.vm[0][:, vm_bad].any():
            raise AssertionError(f"{name}: host or OOM activity at tick {t + 1}: not guest-only")

    from experiments.libcachesim_peer import lru_miss_count

    rows = []
    for v, c in enumerate(cache_pages):
        s = stream[:, v, :]  # (ticks, R), -1 padding
        flat = s[s >= 0].astype(np.int64)
        srt = np.sort(s, axis=1)
        distinct = ((np.diff(srt, axis=1) != 0) & (srt[:, 1:] >= 0)).sum(axis=1) + (srt[:, 0] >= 0)
        lru = lru_miss_count(flat, int(c)) if flat.size else 0
        major, minor = (int(x) for x in counts[v])
        sim_misses = major + minor
        rows.append(
            FidelityRow(
                trace=name,
                footprint_pages=wl.footprint_pages,
                guest_pages=params.vms[v].guest_pages,
                cache_pages=int(c),
                refs_per_tick=int(wl.max_refs_per_tick),
                ticks=ticks,
                refs=int(flat.size),
                sim_major_faults=major,
                sim_minor_faults=minor,
                sim_misses=sim_misses,
                lru_misses=lru,
                rel_error=(sim_misses - lru) / lru if lru else 0.0,
                tick_distinct_frac=float(distinct.mean() / c),
            )
        )
    return rows


def trace_rows(
    spec: TraceSpec,
    refs_per_tick: int,
    max_refs: int,
    fractions: Sequence[float] = FRACTIONS,
    max_ticks: int = MAX_TICKS,
) -> list[FidelityRow]:
    """Fidelity of one trace replayed from its start at ``refs_per_tick``.

    The stream is the trace's first ``min(max_refs, max_ticks * refs_per_tick)``
    references (whole ticks only); the footprint is their distinct pages.
    """
    n_refs = min(max_refs, max_ticks * refs_per_tick)
    spec = dataclasses.replace(spec, max_refs=n_refs)
    rt = resolve_trace(spec)
    n = rt.n_distinct
    ticks = max(1, rt.pages.size // refs_per_tick)
    wl = WorkloadParams(
        footprint_pages=n,
        phases=(Phase(ws_pages=n, refs_per_tick=refs_per_tick),),
        cold_fraction=0.0,
        traces=(spec,),
    )
    sizes = sorted({max(1, round(f * n)) for f in fractions})
    label = f"{spec.kind}/{spec.name}" if spec.kind == "recording" else spec.name
    return fidelity_table(wl, sizes, ticks, name=label)


def default_specs() -> list[TraceSpec]:
    """The shipped recordings, then every shared trace (found or not)."""
    specs = [TraceSpec("recording", p.stem) for p in sorted(recordings_dir().glob("*.npz"))]
    lirs = ("cs", "cpp", "gli", "ps", "sprite", "multi1", "multi2", "multi3")
    lirs += ("2_pools", "loop", "zigzag", "scan", "backf")
    specs += [TraceSpec("lirs", f"lirs/{n}") for n in lirs]
    specs += [TraceSpec("spec2000", f"spec2000/{n}") for n in ("gcc", "gzip", "mcf")]
    specs += [TraceSpec("arc", f"arc/{n}", blocks_per_page=8) for n in ("OLTP", "P2")]
    return specs


def regimes(n_distinct: int) -> tuple[int, int]:
    """(fine, coarse) refs per tick for a trace of ``n_distinct`` pages.

    Fine: at most 1/200 of the footprint per tick, i.e. under 5 % of the smallest cache
    (10 % of the footprint) even if every reference were distinct. Coarse: 1/10 of the
    footprint, as much as the smallest cache: the regime where tick batching breaks.
    """
    return max(1, n_distinct // 200), max(4, n_distinct // 10)


def _parse_spec(text: str) -> TraceSpec:
    kind, sep, name = text.partition(":")
    if not sep or not name:
        raise UserError(f"--traces entries are KIND:NAME (e.g. recording:gzip), got {text!r}")
    try:
        return TraceSpec(kind, name, blocks_per_page=8 if kind == "arc" else 1)
    except ValueError as e:
        raise UserError(f"--traces: {e}") from None


@dataclass(frozen=True)
class FidelityConfig:
    """The simulator's tick-batched guest LRU against libCacheSim's exact LRU, per trace."""

    traces: Annotated[tuple[str, ...], DEFAULT_IN_HELP] = ()
    """traces to compare as KIND:NAME, e.g. recording:gzip lirs:lirs/cs (default: all
    shipped recordings and every trace of the shared data that is present)"""
    max_refs: int = 100_000
    """references replayed per trace"""
    refs_per_tick: Annotated[tuple[int, ...], DEFAULT_IN_HELP] = ()
    """refs per tick to run (default: a fine and a coarse regime per trace)"""
    json: bool = False
    """print a JSON list of rows"""

    def __post_init__(self) -> None:
        check_int("--max-refs", self.max_refs, 1)
        for rpt in self.refs_per_tick:
            check_int("--refs-per-tick", rpt, 1)
        for spec in self.specs:  # an explicitly requested trace must exist
            try:
                trace_path(spec)
            except FileNotFoundError as e:
                raise UserError(f"--traces: {e}") from None

    @property
    def specs(self) -> list[TraceSpec]:
        """The traces given (all checked to exist); empty for the defaults."""
        return [_parse_spec(t) for t in split_list(self.traces)]


def run(args: FidelityConfig) -> int:
    specs = args.specs or default_specs()
    rows: list[FidelityRow] = []
    for spec in specs:
        try:
            trace_path(spec)
        except FileNotFoundError as e:
            print(f"note: skipping {spec.kind}:{spec.name}: {e}", file=sys.stderr)
            continue
        n = resolve_trace(dataclasses.replace(spec, max_refs=args.max_refs)).n_distinct
        for rpt in args.refs_per_tick or regimes(n):
            new = trace_rows(spec, rpt, args.max_refs)
            if not args.json:
                _print_rows(new, header=not rows)
            rows.extend(new)
    if not rows:
        raise UserError("no trace found: the shipped recordings and the shared data are missing")
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    else:
        ok = [r for r in rows if r.tick_distinct_frac < 0.1]
        worst = f"{100 * max(abs(r.rel_error) for r in ok):.2f} %" if ok else "– (no such row)"
        print(
            f"\nmax |rel_error| where tick_distinct_frac < 10 %: {worst} "
            f"({len(ok)} of {len(rows)} rows)"
        )
    return 0


def _print_rows(rows: Sequence[FidelityRow], header: bool) -> None:
    if header:
        print(
            f"{'trace':<18} {'pages':>6} {'cache':>6} {'refs/t':>6} {'refs':>7} "
            f"{'sim miss':>8} {'lru miss':>8} {'error':>8} {'distinct/t':>10}"
        )
    for r in rows:
        print(
            f"{r.trace:<18} {r.footprint_pages:>6} {r.cache_pages:>6} {r.refs_per_tick:>6} "
            f"{r.refs:>7} {r.sim_misses:>8} {r.lru_misses:>8} {100 * r.rel_error:>7.2f}% "
            f"{100 * r.tick_distinct_frac:>9.2f}%"
        )
    sys.stdout.flush()
