"""Synthetic, exogenous page-reference streams for a batch of envs (docs/model.md §9).

Each tick every VM's workload has a *live footprint* ``live`` (virtual pages ``[0, live)``
are allowed to be allocated; the simulator frees pages ``>= live``) and issues a batch of
``refs_per_tick`` references ``(vpage, is_write)`` with ``0 <= vpage < live``.

Determinism and exogeneity
    The stream of env ``i`` depends only on its ``SeedSequence`` and on the params: never
    on actions, on the batch size, on the position in the batch or on the other envs.
    Randomness is *counter-based*: every random number is a hash of (env key, tick, VM,
    slot), where the env key is ``seed_seq.generate_state(1, uint64)[0]``. So env ``i``
    in a batch of 64 draws exactly what it draws alone, and resetting some envs leaves
    the others untouched. There is no global RNG and no stateful generator; the only
    per-env state is the tick since reset and the burst counters.

Closed loop (``HostParams.closed_loop``; SEMANTICS.md §10)
    Each VM has its own *nominal tick* ``vm_ticks[b, v]``, the number of batches it has
    issued; ``draw(advance)`` draws the VMs in ``advance`` at their nominal ticks (every
    rule above, with ``t`` that VM's nominal tick) and moves them on, and gives the
    others no reference (padding), the live footprint of their last batch and no move of
    their burst state or phase. So a VM's ``k``-th batch is the open loop's batch of tick
    ``k`` whatever the ticks it comes in. Without ``advance`` every VM advances and
    ``vm_ticks`` equals ``ticks``.

Buffers
    ``draw()`` returns ``refs`` / ``writes`` arrays that the next ``draw()`` overwrites
    (``Demand.copy()`` to keep them); ``live`` is fresh.

Time
    ``reset`` puts an env at workload tick ``t = 0``; the ``k``-th ``draw()`` after it
    (k = 0, 1, ...) describes workload tick ``t = k`` (simulator tick ``k + 1``).

Live footprint
    ``live(t) = min(start_live_pages + growth_pages_per_tick * t', footprint_pages)`` with
    ``t' = t mod restart_period_ticks`` if ``restart_period_ticks > 0`` (a restart drops
    the footprint back to ``start_live_pages``) else ``t' = t``.

Phases
    ``phases`` cycle in order, each for ``duration_ticks``; ``tl`` is the tick within the
    current phase. Working-set size ``W(t)`` by ``shape``:

    - ``steady``: ``ws_pages``;
    - ``periodic``: ``floor(ws_min + (ws_pages - ws_min) * (1 + sin(2*pi*tl/period)) / 2
      + 0.5)``;
    - ``bursts``: ``ws_pages`` during a burst, else ``ws_min``. In a tick outside a burst
      a burst starts with probability ``burst_prob``; it lasts ``burst_ticks`` ticks
      including that one. Entering a phase ends any burst;
    - ``growth``: ``ws_min + (ws_pages - ws_min) * min(tl, period) // period`` (a linear
      ramp over ``period_ticks``, then flat);
    - ``idle``: ``max(ws_min, 1)`` (``refs_per_tick`` is still the phase's value).

    Then ``W = clip(W, 1, live)``. ``ws_min`` is ``ws_min_pages``, ``period`` is
    ``period_ticks``.

References
    ``n = refs_per_tick`` of the current phase (0 if ``live == 0``). Of the ``n``
    references, ``n_cold ~ Binomial(n, cold_fraction)`` are *cold*: uniform over
    ``[0, live)``. The others are Zipf: rank ``r`` in ``[0, W)`` with probability
    proportional to ``(r + 1) ** -zipf_alpha``, mapped to ``vpage = (ws_offset_pages + r)
    mod live``. Each reference is a write with probability ``write_fraction``, independently
    of its page. The order of references within a tick carries no meaning (the simulator
    only uses the set of pages, the set of written pages and per-page counts): cold
    references occupy slots ``[0, n_cold)``, Zipf ones ``[n_cold, n)``, and slots
    ``[n, R)`` are padding (``-1``, not written).

    Exact sampling rule (so that it is reproducible from this text). With ``sm`` the
    splitmix64 finalizer (``hashing.splitmix64``), an env's words at tick ``t`` are
    ``word(v, p) = sm(sm(key ^ sm(t)) + 4 v + p)`` (mod 2**64) for purposes ``p``: 0 slot
    salt, 1 cold count, 2 burst start. Uniforms in [0, 1) from a word are ``(word >> 11)
    * 2**-53``: a burst starts iff that is ``< burst_prob``; ``n_cold`` is the inverse
    CDF of Binomial(n, cold_fraction) at it (``searchsorted(cdf, u, "right")``, capped at
    ``n``). Each reference slot ``j`` has a 32-bit uniform ``x = fmix32(salt ^ (j *
    0x9E3779B9 mod 2**32))`` with ``salt`` the low 32 bits of ``word(v, 0)`` and
    ``fmix32`` murmur3's finalizer. A cold slot's page is
    ``(x * live) >> 32``. A Zipf slot's page rank is ``#{k : icdf[k] <= (x * icdf[W-1]) >>
    32}`` where ``icdf[k] = floor(2**32 * c[k] / c[Wcap-1])`` (``icdf[Wcap-1] = 2**32``),
    ``c`` the cumulative sums of ``(k + 1) ** -alpha`` over ``k < Wcap`` and ``Wcap`` the
    largest working set the VM can have: an exact inverse CDF of the Zipf law truncated at
    ``W``, to 2**-32. A slot is written iff ``(x * 0x9E3779B9) mod 2**32 <
    round(write_fraction * 2**32)`` (always if ``write_fraction == 1``): a golden-ratio
    rotation of ``x``, which is equidistributed within the range of ``x`` that maps to any
    one page, so writes are independent of pages to within ~1/(that range).

Trace replay (``WorkloadParams.traces`` non-empty)
    The VM replays recorded reference strings instead of drawing Zipf ranks; the phases
    only give ``refs_per_tick`` per tick (``ws_pages``, shapes, ``zipf_alpha`` and
    ``cold_fraction`` are unused) and the live footprint follows its usual schedule.
    Each ``TraceSpec`` arrives in the ``WorkloadData`` (``envs.data.resolve_trace`` loads
    it; this package reads no files) *compacted*: its pages are renumbered ``0 .. n_k -
    1`` in first-touch order. Trace ``k`` of the VM owns the
    combined ids ``[o_k, o_k + n_k)``, ``o_k = n_0 + ... + n_{k-1}``, ``n = sum n_k``.

    Stream position. The VM issues its references at consecutive positions of an
    infinite stream: at tick ``t`` slot ``j < refs_per_tick`` has position ``s = s0 +
    c(t) + j`` where ``c(t)`` is the number of references the phases scheduled before
    ``t`` (``sum`` of ``refs_per_tick * duration_ticks`` over whole cycles and the phase
    prefix; counted even while ``live == 0``). ``s0 = trace_offset_refs``, plus ``word(v,
    3) >> 32`` at ``t = 0`` (a seed-chosen start in ``[0, 2**32)``) when
    ``trace_random_start``: so VMs replaying one trace start at different places, and so
    do episodes. Interleaving ``K`` traces with quantum ``q = trace_quantum_refs`` (a
    time-slice scheduler): block ``b = s // q`` belongs to trace ``k = b mod K``, at
    position ``p = (b // K) * q + s mod q`` of that trace, which loops: reference ``p mod
    N_k`` (``N_k`` its length). With one trace, ``p = s``.

    Rescaling to the VM. With ``c`` the combined id and ``live >= 1`` the live
    footprint: ``trace_map == "modulo"``: ``vpage = c mod live`` (the identity when the
    footprint holds the whole trace, so the replay is exact; a larger trace folds onto
    the footprint); ``"scale"``: ``vpage = (c * live) // n`` (the trace is stretched or
    squeezed over the whole footprint, merging pages that were first touched together).
    Writes: the trace's own access type when it has one (SPEC, recordings), else the
    ``write_fraction`` rule above on the slot's ``x``. The slot order is the trace order,
    so flattening a VM's per-tick batches gives the replayed string exactly.

Demand-driven W(t) (``WorkloadParams.demand``)
    A real VM's memory-usage series sets the working-set size; the references are then
    Zipf over ``W(t)`` as above (the phase ``shape`` is replaced). The series
    (``envs.data.resolve_demand``, handed over in the ``WorkloadData``) is resampled onto
    a 300 s grid by sample-and-hold (the last sample at or before each grid point, so
    monitoring gaps hold their value) and turned
    into ``f = usage / capacity`` (``normalize="capacity"``) or ``usage / max(usage)``
    (``"peak"``), in ``[0, 1]``. Each episode VM ``v`` takes series ``pool[(word(v, 3)
    mod 2**32) mod len(pool)]`` of ``DemandSpec.names`` and starts at sample ``i0 =
    (word(v, 3) >> 32) mod T`` (or ``start_sample mod T`` without ``random_start``);
    ``word(v, 3)`` is taken at ``t = 0``. With ``m = ticks_per_sample``, ``i = (i0 + t //
    m) mod T`` and ``r = (t mod m) / m``: ``f(t) = f[i] * (1 - r) + f[(i + 1) mod T] * r``
    (linear interpolation, the series loops) and ``W(t) = ws_min + floor((ws_pages -
    ws_min) * f(t) + 1/2)`` of the current phase, then clipped as every ``W``.

Streaming file reads (``stream_pages_per_tick = k > 0``, ``stream_file_pages = n``)
    The top ``n`` virtual pages of the footprint, ``[s, F)`` with ``s = F - n``
    (``WorkloadParams.stream_first_page``), are a file the guest reads sequentially, ``k``
    new pages a tick, cycling: at workload tick ``t`` it reads pages ``s + (k * t + j)
    mod n`` for ``j < k`` (distinct, since ``k <= n``), as reads (never written), in slots
    ``[nrefs, nrefs + k)`` after the phases' references. A stream page at or above the
    live footprint is not read (padding). The phases' references (Zipf, cold, traces,
    demand) then work on ``lw = min(live, s)`` pages instead of ``live``, so they never
    touch the stream region, and the Zipf table's ``Wcap`` is capped at ``s``: a VM with a
    stream draws exactly the phase references of the same VM with footprint ``s`` and
    no stream. The stream region lies inside the footprint (counted in ``F``, in the
    layout and in the live schedule). A page is read again only every ``n / k`` ticks:
    with ``n`` much larger than guest memory, each read is a fresh file page that fills
    free memory with clean page cache (Linux guests run with little free memory; the host
    cannot tell that cache from anon memory).

Page layout (``page_layout``)
    Deterministic from the params alone (clone VMs have identical layouts): for ``j < s =
    F - stream_file_pages``, virtual page ``j`` is file-backed iff ``floor((j + 1) * f) >
    floor(j * f)`` with ``f = file_fraction``, and shareable iff ``floor((j + 1) * s' +
    1/2) > floor(j * s' + 1/2)`` with ``s' = shareable_fraction`` (the offset keeps the
    two sets apart). Counts are within one page of ``s * f`` and ``s * s'``. So
    ``file_fraction`` and ``shareable_fraction`` describe the pages the phases reference;
    the stream region ``[s, F)`` is all file-backed and not shareable (file data is like no
    other page: a stream page's first content is unique, SEMANTICS.md "Content ids"), and
    the VM's file share is ``(s * f + stream_file_pages) / F``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from envs.sim.checks import check_int
from envs.sim.hashing import splitmix64
from envs.sim.params import (
    CONTENT_UNIQUE,
    CONTENT_ZERO,
    WS_SHAPES,
    DemandSpec,
    HostParams,
    TraceSpec,
    WorkloadParams,
)

_GOLD32 = np.uint32(0x9E3779B9)
_FM1 = np.uint32(0x85EBCA6B)
_FM2 = np.uint32(0xC2B2AE35)
_TWO32 = 1 << 32
_SHAPE_CODE = {name: i for i, name in enumerate(WS_SHAPES)}
_STEADY, _PERIODIC, _BURSTS, _GROWTH, _IDLE = (
    _SHAPE_CODE[s] for s in ("steady", "periodic", "bursts", "growth", "idle")
)
# Purposes of the per-(env, tick, VM) hash words.
_P_SALT, _P_COLD, _P_BURST = 0, 1, 2
_P_START = 3  # at t = 0 only: trace start position, demand series and start sample
_N_PURPOSES = 4
_BLOCK_SLOTS = 32_768  # reference slots per block of envs in draw() (~1 MiB scratch: L2)


@dataclass
class Demand:
    """One tick of workload demand for a batch.

    ``refs`` and ``writes`` are buffers owned by the ``Workload`` and overwritten by its
    next ``draw()`` (page-faulting 2.5 MB of fresh arrays every tick costs more than the
    whole draw); ``copy()`` them to keep them. ``live`` is fresh.
    """

    live: np.ndarray  # (B, V) int32: live footprint of each VM's workload this tick
    refs: np.ndarray  # (B, V, R) int32: referenced virtual pages in [0, live), -1 padding
    writes: np.ndarray  # (B, V, R) bool: is_write per reference (False on padding)

    def copy(self) -> Demand:
        return Demand(self.live.copy(), self.refs.copy(), self.writes.copy())


def _spread(n: int, frac: float, offset: float) -> np.ndarray:
    j = np.arange(n + 1, dtype=np.float64)
    fl = np.floor(j * float(frac) + offset)
    return fl[1:] > fl[:-1]


def page_layout(wp: WorkloadParams) -> tuple[np.ndarray, np.ndarray]:
    """Static layout of a workload's virtual pages: ``(is_file (F,), is_shareable (F,))``.

    Depends on the params only (see the module docstring), so clone VMs agree.
    """
    if not isinstance(wp, WorkloadParams):
        raise ValueError(f"wp must be a WorkloadParams, got {wp!r}")
    n, ns = wp.stream_first_page, wp.stream_file_pages
    is_file = _spread(n, wp.file_fraction, 0.0)
    is_shareable = _spread(n, wp.shareable_fraction, 0.5)
    if ns:  # the stream region: file pages, none shareable
        is_file = np.concatenate([is_file, np.ones(ns, bool)])
        is_shareable = np.concatenate([is_shareable, np.zeros(ns, bool)])
    return is_file, is_shareable


def first_touch_content(params: HostParams, v: int) -> np.ndarray:
    """Content id each virtual page of VM ``v`` gets at its first touch, ``(F_v,)`` int32
    (SEMANTICS.md "Content ids"): the pool entry of its run if shareable, unique in the
    stream region, its image's file data if file-backed under ``content_model="image"``,
    else the zero page. The vectorized core's copy (the reference twin has its own)."""
    vm = params.vms[v]
    wp = vm.workload
    is_file, sh = page_layout(wp)
    n = wp.footprint_pages
    # Pool entry of a shareable page: the first page of its run of shareable_copies
    # shareable pages (the page itself at 1 copy, v0).
    pages = np.flatnonzero(sh)
    entry = np.zeros(n, dtype=np.int64)
    entry[pages] = pages[(np.arange(pages.size) // wp.shareable_copies) * wp.shareable_copies]
    base = params.pool_content(0, vm.kernel_image)
    if params.content_model == "image":  # file data: the image's entry of the page
        files = base + np.arange(n, dtype=np.int64)
    else:  # v0: a page first read is the zero page, file-backed or not
        files = np.zeros(n, dtype=np.int64)
    out = np.where(sh, base + entry, np.where(is_file, files, CONTENT_ZERO))
    out[wp.stream_first_page :] = CONTENT_UNIQUE  # streamed file data: like no other page
    return out.astype(np.int32)


def _fmix32_(h: np.ndarray, tmp: np.ndarray) -> None:
    """murmur3's 32-bit finalizer, in place (``tmp`` is scratch of the same shape)."""
    np.right_shift(h, 16, out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    np.multiply(h, _FM1, out=h)
    np.right_shift(h, 13, out=tmp)
    np.bitwise_xor(h, tmp, out=h)
    np.multiply(h, _FM2, out=h)
    np.right_shift(h, 16, out=tmp)
    np.bitwise_xor(h, tmp, out=h)


@lru_cache(maxsize=64)
def zipf_tables(alpha: float, wcap: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Integer inverse CDF of Zipf(alpha) over ``wcap`` ranks, and its guide table.

    Returns ``(icdf, guide, q, has_multi)``. ``icdf`` (wcap,) int64 is non-decreasing with
    last entry 2**32; the rank of ``needle`` is ``searchsorted(icdf, needle, "right")``.
    ``guide`` (2**q,) uint64 is a pure speed-up over the buckets ``k = prod >> (64 - q)``
    of ``prod = x * icdf[W-1]`` (so ``needle = prod >> 32``): with ``L = 64 - q`` and
    ``low = prod mod 2**L``, entry ``(lo << L) | f`` gives rank ``lo + (low > f)``. For a
    bucket without a rank boundary ``f = 2**L - 1`` (never exceeded); with one boundary
    ``b = icdf[lo]``, ``f = ((b - (k << (32 - q))) << 32) - 1``. A bucket with several
    boundaries gets ``lo = 2**q - 1`` (> any rank) and the caller searches ``icdf``.
    """
    w = np.arange(1, wcap + 1, dtype=np.float64) ** (-alpha)
    c = np.cumsum(w)
    icdf = np.floor(c / c[-1] * float(_TWO32)).astype(np.int64)
    icdf[-1] = _TWO32
    # 16-32 buckets per rank: ~1/16 of the needles land in a bucket with a boundary (one
    # compare fixes them), and the table (<= 2 MiB) stays mostly in cache.
    # (The rank field has q bits: q > bit_length(wcap) keeps the multi flag above ranks.)
    q = int(max(8, min(18, wcap.bit_length() + 4), wcap.bit_length() + 1))
    s, L = 32 - q, 64 - q
    start = np.arange(1 << q, dtype=np.int64) << s
    lo = np.searchsorted(icdf, start, side="right")
    hi = np.searchsorted(icdf, start + ((1 << s) - 1), side="right")
    one = hi == lo + 1
    rel = np.where(one, icdf[np.minimum(lo, wcap - 1)] - start, 0)
    field = np.where(one, (rel << 32) - 1, (1 << L) - 1).astype(np.uint64)
    multi = hi > lo + 1
    code = np.where(multi, (1 << q) - 1, lo).astype(np.uint64)
    guide = (code << np.uint64(L)) | field
    for arr in (icdf, guide):
        arr.setflags(write=False)
    return icdf, guide, q, bool(multi.any())


# ------------------------------------------------------------------ workload data


@dataclass(frozen=True)
class ResolvedTrace:
    """A trace ready to replay: compacted pages (read-only arrays)."""

    pages: np.ndarray  # (N,) int32 compact ids 0 .. n_distinct-1 in first-touch order
    writes: np.ndarray | None  # (N,) bool, None when the format has no access type
    n_distinct: int
    path: str  # where it was read from (for messages only)


@dataclass(frozen=True)
class WorkloadData:
    """The recorded data a workload replays, as arrays (the core does no file I/O).

    ``envs.data.load_workload_data`` builds one from a ``HostParams`` (finding, parsing
    and caching the files); tests may build one from arrays directly.

    Attributes:
        traces: per ``TraceSpec`` (``max_refs`` applied), its compacted trace.
        demand: per ``(name, normalize)`` of a ``DemandSpec`` entry, the (T,) float64
            demand fraction in [0, 1] on the 300 s grid (module docstring).
    """

    traces: Mapping[TraceSpec, ResolvedTrace] = field(default_factory=dict)
    demand: Mapping[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def trace(self, spec: TraceSpec) -> ResolvedTrace:
        """The trace of ``spec``; ``ValueError`` if this data lacks it."""
        if spec not in self.traces:
            raise ValueError(f"data has no trace for {spec!r} (build it with envs.data)")
        return self.traces[spec]

    def demand_fraction(self, name: str, normalize: str) -> np.ndarray:
        """The demand fraction series of ``name``; ``ValueError`` if this data lacks it."""
        if (name, normalize) not in self.demand:
            raise ValueError(
                f"data has no demand series {name!r} (normalize={normalize!r}); "
                "build it with envs.data"
            )
        return self.demand[(name, normalize)]


def required_data(params: HostParams) -> tuple[tuple[TraceSpec, ...], tuple[tuple[str, str], ...]]:
    """What ``params`` replays: its distinct trace specs and ``(name, normalize)`` demand
    keys, in first-use order (both empty for purely synthetic workloads)."""
    traces: dict[TraceSpec, None] = {}
    demand: dict[tuple[str, str], None] = {}
    for vm in params.vms:
        wl = vm.workload
        traces.update(dict.fromkeys(wl.traces))
        if wl.demand is not None:
            demand.update(dict.fromkeys((n, wl.demand.normalize) for n in wl.demand.names))
    return tuple(traces), tuple(demand)


def check_data(params: HostParams, data: WorkloadData | None) -> WorkloadData:
    """``data`` if it holds everything ``params`` replays, else a ``ValueError``."""
    traces, demand = required_data(params)
    if data is None:
        if not traces and not demand:
            return WorkloadData()
        what = [f"{t.kind}:{t.name}" for t in traces] + [n for n, _ in demand]
        raise ValueError(
            f"params replay recorded data ({', '.join(what[:4])}"
            f"{', ...' if len(what) > 4 else ''}) but data is None: pass "
            "data=envs.data.load_workload_data(params)"
        )
    if not isinstance(data, WorkloadData):
        raise ValueError(f"data must be a WorkloadData or None, got {type(data).__name__}")
    for t in traces:
        data.trace(t)
    for name, norm in demand:
        data.demand_fraction(name, norm)
    return data


def _binom_cdf(n: int, p: float) -> np.ndarray:
    """CDF of Binomial(n, p) at 0..n (float64, last entry forced to 1)."""
    if n == 0 or p <= 0.0:
        return np.ones(n + 1)
    if p >= 1.0:
        out = np.zeros(n + 1)
        out[-1] = 1.0
        return out
    k = np.arange(n + 1)
    lg = np.array([math.lgamma(i + 1.0) for i in range(n + 1)])
    logpmf = lg[n] - lg - lg[::-1] + k * math.log(p) + (n - k) * math.log1p(-p)
    cdf = np.cumsum(np.exp(logpmf))
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf




class Workload:
    """Vectorized synthetic workloads of ``num_envs`` envs with ``params.num_vms`` VMs each.

    Attributes (read-only for callers, updated by ``draw``):
        ticks: (B,) int64 workload tick of the next ``draw`` of each env.
        ws_pages: (B, V) int64 working-set size W(t) of the last ``draw``.
        phase: (B, V) int64 phase index of the last ``draw`` (-1 before the first).
    """

    def __init__(self, params: HostParams, num_envs: int, data: WorkloadData | None = None) -> None:
        """
        Args:
            params: the host and its VMs (their workloads).
            num_envs: ``B``.
            data: the traces and demand series the workloads replay (see
                ``WorkloadData``); required when any VM replays one, else optional.
        """
        if not isinstance(params, HostParams):
            raise ValueError(f"params must be a HostParams, got {params!r}")
        B = check_int("num_envs", num_envs, 1)
        data = check_data(params, data)
        self.params = params
        self.num_envs = B
        self.num_vms = params.num_vms
        wls = [vm.workload for vm in params.vms]
        self.R = max(wl.max_refs_per_tick for wl in wls)
        self._init_schedule(wls)
        self._init_cold_tables(wls)
        self._init_zipf_tables(wls)
        self._init_buffers(wls)
        self._init_traces(wls, data)
        self._init_demand(wls, data)
        self._init_state()

    def _init_schedule(self, wls: Sequence[WorkloadParams]) -> None:
        """Per-VM constants, shape (V,) or (V, K) padded with the VM's last phase."""
        i64 = np.int64
        V = self.num_vms
        K = max(len(wl.phases) for wl in wls)
        self._foot = np.array([wl.footprint_pages for wl in wls], i64)
        self._start = np.array([wl.start_live_pages for wl in wls], i64)
        self._growth = np.array([wl.growth_pages_per_tick for wl in wls], i64)
        self._restart = np.array([wl.restart_period_ticks for wl in wls], i64)
        self._cycle = np.array([sum(p.duration_ticks for p in wl.phases) for wl in wls], i64)
        # Streaming file reads: the phases' references stay below the stream region.
        self._stream_v = np.array([v for v, wl in enumerate(wls) if wl.stream_file_pages], i64)
        self._stream_k = np.array([wl.stream_pages_per_tick for wl in wls], i64)
        self._stream_n = np.array([wl.stream_file_pages for wl in wls], i64)
        self._stream_first = np.array([wl.stream_first_page for wl in wls], i64)

        def per_phase(get, dtype=i64) -> np.ndarray:
            out = np.empty((V, K), dtype)
            for v, wl in enumerate(wls):
                vals = [get(p) for p in wl.phases]
                out[v] = vals + [vals[-1]] * (K - len(vals))
            return out

        ends = np.full((V, K), np.iinfo(i64).max, i64)
        for v, wl in enumerate(wls):
            ends[v, : len(wl.phases)] = np.cumsum([p.duration_ticks for p in wl.phases])
        self._phase_end = ends
        self._phase_start = np.concatenate([np.zeros((V, 1), i64), ends[:, :-1]], axis=1)
        self._ws = per_phase(lambda p: p.ws_pages)
        self._ws_min = per_phase(lambda p: p.ws_min_pages)
        self._nrefs = per_phase(lambda p: p.refs_per_tick)
        self._off = per_phase(lambda p: p.ws_offset_pages)
        self._shape = per_phase(lambda p: _SHAPE_CODE[p.shape])
        self._period = per_phase(lambda p: p.period_ticks)
        self._burst_p = per_phase(lambda p: p.burst_prob, np.float64)
        self._burst_len = per_phase(lambda p: p.burst_ticks)

    def _init_cold_tables(self, wls: Sequence[WorkloadParams]) -> None:
        """Cold counts: inverse CDF of Binomial(refs, cold_fraction) per (VM, phase), in
        one flat table where table ``v * K + k`` occupies values in [v * K + k, + 1]."""
        K = self._nrefs.shape[1]
        flat, starts = [], []
        pos = 0
        for v, wl in enumerate(wls):
            for k in range(K):
                cdf = _binom_cdf(int(self._nrefs[v, k]), wl.cold_fraction)
                starts.append(pos)
                flat.append(cdf + (v * K + k))
                pos += cdf.size
        self._cold_flat = np.concatenate(flat)
        self._cold_start = np.array(starts, np.int64).reshape(self.num_vms, K)

    def _init_zipf_tables(self, wls: Sequence[WorkloadParams]) -> None:
        """Zipf tables, one per distinct (alpha, Wcap); a flat guide with per-group offsets."""
        V = self.num_vms
        groups: dict[tuple[float, int], int] = {}
        gid = np.empty(V, np.int64)
        for v, wl in enumerate(wls):
            wcap = max(1, min(max(p.ws_pages for p in wl.phases), wl.stream_first_page))
            gid[v] = groups.setdefault((float(wl.zipf_alpha), wcap), len(groups))
        tables = [zipf_tables(a, w) for (a, w) in groups]
        self._icdfs = [t[0] for t in tables]
        self._gid = gid
        self._wcap = np.array([w for (_, w) in groups], np.int64)[gid]
        q = np.array([t[2] for t in tables], np.int64)[gid]
        self._shift = (64 - q).astype(np.uint64)  # (V,)
        self._lowmask = ((np.ones(V, np.uint64) << self._shift) - np.uint64(1)).astype(np.uint64)
        self._same_q = bool(np.all(q == q[0]))
        goff = np.cumsum([0] + [t[1].size for t in tables])
        self._guide = np.concatenate([t[1] for t in tables])
        self._guide_off = goff[gid].astype(np.int64)
        self._one_group = len(groups) == 1
        self._has_multi = any(t[3] for t in tables)

    def _init_buffers(self, wls: Sequence[WorkloadParams]) -> None:
        """Write thresholds, slot constants, the returned buffers and the scratch."""
        B, V, R = self.num_envs, self.num_vms, self.R
        wf = np.array([wl.write_fraction for wl in wls])
        self._wthr = np.minimum(np.round(wf * _TWO32), _TWO32 - 1).astype(np.uint32)
        self._wall = wf >= 1.0
        self._slot_x = (np.arange(R, dtype=np.uint32) * _GOLD32).astype(np.uint32)
        self._x = np.empty((B, V, R), np.uint32)
        self._block = max(1, min(B, _BLOCK_SLOTS // max(1, V * R)))
        nb = self._block
        self._scratch = (
            np.empty((nb, V, R), np.uint32),
            np.empty((nb, V, R), np.uint64),
            np.empty((nb, V, R), np.uint64),
            np.empty((nb, V, R), np.uint64),
            np.empty((nb, V, R), bool),
        )
        self._refs = np.empty((B, V, R), np.int32)
        self._writes = np.empty((B, V, R), bool)

    def _init_state(self) -> None:
        """Per-env state; every env must be ``reset`` before its first ``draw``."""
        B, V = self.num_envs, self.num_vms
        self._key = np.zeros(B, np.uint64)
        self.ticks = np.zeros(B, np.int64)
        # Per (env, VM): the nominal tick of its next batch (== ticks without a closed
        # loop) and the live footprint of its last batch.
        self.vm_ticks = np.zeros((B, V), np.int64)
        self._live_last = np.zeros((B, V), np.int64)
        self._ready = np.zeros(B, bool)
        self._burst_left = np.zeros((B, V), np.int64)
        self.phase = np.full((B, V), -1, np.int64)
        self.ws_pages = np.zeros((B, V), np.int64)

    def _init_traces(self, wls: Sequence[WorkloadParams], data: WorkloadData) -> None:
        """Tables of the trace-replaying VMs (module docstring, "Trace replay")."""
        i64 = np.int64
        V = self.num_vms
        tv = [v for v, wl in enumerate(wls) if wl.traces]
        self._trace_v = np.array(tv, i64)
        # Refs scheduled per cycle and before each phase (all VMs; cheap).
        dur = self._phase_end - self._phase_start
        dur[dur > self._cycle[:, None]] = 0  # padding phases
        sched = dur * self._nrefs
        self._cycle_refs = sched.sum(axis=1)
        self._cum_start = np.cumsum(sched, axis=1) - sched
        self._trace_pos0 = np.zeros((self.num_envs, V), i64)
        self._trace_off = np.array([wl.trace_offset_refs for wl in wls], i64)
        self._trace_rand = np.array([wl.trace_random_start for wl in wls], bool)
        if not tv:
            return
        uniq: dict[TraceSpec, int] = {}
        arrays: list[ResolvedTrace] = []
        for v in tv:
            for spec in wls[v].traces:
                if spec not in uniq:
                    uniq[spec] = len(arrays)
                    arrays.append(data.trace(spec))
        lens = np.array([a.pages.size for a in arrays], i64)
        bases = np.cumsum(lens) - lens
        self._tr_pages = np.concatenate([a.pages for a in arrays])
        self._tr_writes = np.concatenate(
            [a.writes if a.writes is not None else np.zeros(a.pages.size, bool) for a in arrays]
        )
        Vt, Kt = len(tv), max(len(wls[v].traces) for v in tv)
        self._tr_base = np.zeros((Vt, Kt), i64)
        self._tr_len = np.ones((Vt, Kt), i64)
        self._tr_poff = np.zeros((Vt, Kt), i64)
        self._tr_hasw = np.zeros((Vt, Kt), bool)
        self._tr_k = np.array([len(wls[v].traces) for v in tv], i64)
        self._tr_q = np.array([wls[v].trace_quantum_refs for v in tv], i64)
        self._tr_n = np.zeros(Vt, i64)
        self._tr_scale = np.array([wls[v].trace_map == "scale" for v in tv], bool)
        for i, v in enumerate(tv):
            off = 0
            for k, spec in enumerate(wls[v].traces):
                a = uniq[spec]
                self._tr_base[i, k] = bases[a]
                self._tr_len[i, k] = lens[a]
                self._tr_poff[i, k] = off
                self._tr_hasw[i, k] = arrays[a].writes is not None
                off += arrays[a].n_distinct
            self._tr_n[i] = off
        self._tr_any_w = bool(self._tr_hasw.any())
        self._tr_one = bool(np.all(self._tr_k == 1))

    def _init_demand(self, wls: Sequence[WorkloadParams], data: WorkloadData) -> None:
        """Tables of the demand-driven VMs (module docstring, "Demand-driven W(t)")."""
        i64 = np.int64
        V = self.num_vms
        dv = [v for v, wl in enumerate(wls) if wl.demand is not None]
        self._demand_v = np.array(dv, i64)
        self._dm_sid = np.zeros((self.num_envs, V), i64)
        self._dm_s0 = np.zeros((self.num_envs, V), i64)
        if not dv:
            return
        uniq: dict[tuple[str, str], int] = {}
        series: list[np.ndarray] = []
        self._dm_pool = []  # per demand VM: (S_v,) series ids of its pool
        for v in dv:
            spec: DemandSpec = wls[v].demand  # type: ignore[assignment]
            ids = []
            for name in spec.names:
                key = (name, spec.normalize)
                if key not in uniq:
                    uniq[key] = len(series)
                    series.append(data.demand_fraction(name, spec.normalize))
                ids.append(uniq[key])
            self._dm_pool.append(np.array(ids, i64))
        lens = np.array([f.size for f in series], i64)
        self._dm_len = lens
        self._dm_base = np.cumsum(lens) - lens
        self._dm_frac = np.concatenate(series)
        specs = [wls[v].demand for v in dv]
        self._dm_tps = np.array([d.ticks_per_sample for d in specs], i64)  # (Vd,)
        self._dm_rand = [d.random_start for d in specs]
        self._dm_start = [d.start_sample for d in specs]

    def _start_words(self, ids: np.ndarray) -> np.ndarray:
        """(n, V) uint64 ``word(v, 3)`` at ``t = 0`` of the envs ``ids``."""
        with np.errstate(over="ignore"):
            base = splitmix64(self._key[ids] ^ splitmix64(np.zeros(1, np.uint64)))
            lane = np.arange(self.num_vms, dtype=np.uint64) * np.uint64(_N_PURPOSES) + np.uint64(
                _P_START
            )
            return splitmix64(base[:, None] + lane[None, :])

    # ------------------------------------------------------------------------------
    def reset(self, env_ids: np.ndarray, seed_seqs: Sequence[np.random.SeedSequence]) -> None:
        """(Re)start the given envs at workload tick 0 with the given seed sequences."""
        ids = np.asarray(env_ids)
        if ids.ndim != 1 or not (ids.size == 0 or np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"env_ids must be a 1-D integer array, got {env_ids!r}")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_envs):
            raise ValueError(f"env_ids must be in [0, {self.num_envs - 1}], got {ids.tolist()}")
        if np.unique(ids).size != ids.size:
            raise ValueError(f"env_ids must be distinct, got {ids.tolist()}")
        seqs = list(seed_seqs)
        if len(seqs) != ids.size:
            raise ValueError(
                f"seed_seqs must have one SeedSequence per env id ({ids.size}), got {len(seqs)}"
            )
        for s in seqs:
            if not isinstance(s, np.random.SeedSequence):
                raise ValueError(f"seed_seqs must contain SeedSequence objects, got {s!r}")
        for i, s in zip(ids, seqs, strict=True):
            self._key[i] = s.generate_state(1, np.uint64)[0]
        self._rewind(ids)

    @property
    def episode_keys(self) -> np.ndarray:
        """(B,) uint64 read-only: each env's stream key, set by :meth:`reset` from its seed
        (equal keys give equal reference streams)."""
        v = self._key.view()
        v.flags.writeable = False
        return v

    def rewound(self) -> Workload:
        """A copy of this workload with every env back at workload tick 0 of its current
        episode: its draws replay the references of the episodes from their start (an
        env's stream is a function of its key alone, set by :meth:`reset`). Envs never
        reset stay unready."""
        out = copy.deepcopy(self)
        out._rewind(np.flatnonzero(out._ready))
        return out

    def _rewind(self, ids: np.ndarray) -> None:
        """Put the envs ``ids`` at workload tick 0 of the episode their keys define."""
        self.ticks[ids] = 0
        self.vm_ticks[ids] = 0
        self._live_last[ids] = 0
        self._ready[ids] = True
        self._burst_left[ids] = 0
        self.phase[ids] = -1
        self.ws_pages[ids] = 0
        if self._trace_v.size or self._demand_v.size:
            w3 = self._start_words(ids)
            hi = (w3 >> np.uint64(32)).astype(np.int64)  # (n, V)
            lo = (w3 & np.uint64(0xFFFFFFFF)).astype(np.int64)
            self._trace_pos0[ids] = self._trace_off + np.where(self._trace_rand, hi, 0)
            for i, v in enumerate(self._demand_v):
                pool = self._dm_pool[i]
                sid = pool[lo[:, v] % pool.size]
                T = self._dm_len[sid]
                self._dm_sid[ids, v] = sid
                self._dm_s0[ids, v] = (hi[:, v] if self._dm_rand[i] else self._dm_start[i]) % T

    # ------------------------------------------------------------------------------
    def _words(self, t: np.ndarray) -> np.ndarray:
        """(B, V, _N_PURPOSES) uint64 hashes of (env key, t, VM, purpose); ``t`` (B, V)."""
        V = self.num_vms
        with np.errstate(over="ignore"):
            base = splitmix64(self._key[:, None] ^ splitmix64(t.astype(np.uint64)))  # (B, V)
            lane = np.arange(V * _N_PURPOSES, dtype=np.uint64).reshape(1, V, _N_PURPOSES)
            return splitmix64(base[:, :, None] + lane)

    def _schedule(self, words: np.ndarray, adv: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """Live footprint, W(t), refs count, offset and phase of every (env, VM) at its
        nominal tick; the burst state moves only where ``adv`` (None: everywhere)."""
        t = self.vm_ticks  # (B, V)
        tr = np.where(self._restart > 0, t % np.maximum(self._restart, 1), t)
        live = np.minimum(self._start + self._growth * tr, self._foot)  # (B, V)
        # The phases' references use [0, lw): below the stream region (if any).
        lw = np.minimum(live, self._stream_first) if self._stream_v.size else live

        pos = t % self._cycle  # (B, V)
        k = (pos[:, :, None] >= self._phase_end[None]).sum(axis=2)  # (B, V)
        vv = np.arange(self.num_vms)[None, :]
        tl = pos - self._phase_start[vv, k]
        ws, wmin = self._ws[vv, k], self._ws_min[vv, k]
        shape = self._shape[vv, k]
        period = self._period[vv, k]

        w = ws.copy()
        per = shape == _PERIODIC
        if per.any():
            s = np.sin(2.0 * np.pi * tl / period)
            wp = np.floor(wmin + (ws - wmin) * (1.0 + s) / 2.0 + 0.5).astype(np.int64)
            w = np.where(per, wp, w)
        gro = shape == _GROWTH
        if gro.any():
            w = np.where(gro, wmin + (ws - wmin) * np.minimum(tl, period) // period, w)
        w = np.where(shape == _IDLE, np.maximum(wmin, 1), w)

        # Bursts: entering a phase ends any burst.
        left = np.where(k != self.phase, 0, self._burst_left)
        bur = shape == _BURSTS
        if bur.any():
            ub = (words[:, :, _P_BURST] >> np.uint64(11)).astype(np.float64) * 2.0**-53
            inb = left > 0
            start = bur & ~inb & (ub < self._burst_p[vv, k])
            left = np.where(start, self._burst_len[vv, k], left)
            inb = bur & (inb | start)
            left = left - inb
            w = np.where(bur, np.where(inb, ws, wmin), w)
        if adv is None:
            self._burst_left = left
            self.phase = k
        else:
            self._burst_left = np.where(adv, left, self._burst_left)
            self.phase = np.where(adv, k, self.phase)
        if self._demand_v.size:
            dv = self._demand_v
            tps = self._dm_tps[None, :]
            sid = self._dm_sid[:, dv]
            T = self._dm_len[sid]
            td = t[:, dv]
            i0 = (self._dm_s0[:, dv] + td // tps) % T
            i1 = (i0 + 1) % T
            r = (td % tps) / tps
            base = self._dm_base[sid]
            f = self._dm_frac[base + i0] * (1.0 - r) + self._dm_frac[base + i1] * r
            lo_w = wmin[:, dv]
            w[:, dv] = lo_w + np.floor((ws[:, dv] - lo_w) * f + 0.5).astype(np.int64)

        w = np.clip(w, 1, np.maximum(lw, 1))
        nrefs = np.where(lw > 0, self._nrefs[vv, k], 0)
        off = self._off[vv, k] % np.maximum(lw, 1)
        return live, lw, w, nrefs, off, k

    def _fix_multi(self, refs: np.ndarray, scale: np.ndarray, x: np.ndarray) -> None:
        """Exact ranks of the slots whose guide bucket holds several rank boundaries.

        ``refs`` (n, V, R) ranks from the guide, ``scale`` (n, V) and ``x`` (n, V, R) of
        the same envs.
        """
        flat = refs.reshape(-1)
        bad = np.flatnonzero(refs >= self._wcap[None, :, None])
        if not bad.size:
            return
        row = bad // self.R
        xs = x.reshape(-1)[bad].astype(np.uint64)
        needle = ((xs * scale.reshape(-1)[row]) >> np.uint64(32)).astype(np.int64)
        gid = self._gid[row % self.num_vms]
        for g, icdf in enumerate(self._icdfs):
            m = gid == g
            if m.any():
                flat[bad[m]] = np.searchsorted(icdf, needle[m], side="right")

    def _draw_traces(
        self, t: np.ndarray, live: np.ndarray, k: np.ndarray, refs: np.ndarray, writes: np.ndarray
    ) -> None:
        """Overwrite the trace VMs' slots with their replayed references (padding later)."""
        tv = self._trace_v
        Vt, R = tv.size, self.R
        kv = k[:, tv]  # (B, Vt)
        cyc = self._cycle[tv][None, :]
        tt = t[:, tv]
        pos = tt % cyc
        c = (
            (tt // cyc) * self._cycle_refs[tv][None, :]
            + self._cum_start[tv[None, :], kv]
            + (pos - self._phase_start[tv[None, :], kv]) * self._nrefs[tv[None, :], kv]
        )
        s = (self._trace_pos0[:, tv] + c)[:, :, None] + np.arange(R, dtype=np.int64)
        vi = np.arange(Vt)[None, :, None]
        if self._tr_one:
            kk = np.zeros((1, 1, 1), np.int64)
            p = s
        else:
            q = self._tr_q[None, :, None]
            blk = s // q
            K = self._tr_k[None, :, None]
            kk = blk % K
            p = (blk // K) * q + s % q
        idx = self._tr_base[vi, kk] + p % self._tr_len[vi, kk]
        cid = self._tr_pages[idx] + self._tr_poff[vi, kk]
        lv = np.maximum(live[:, tv], 1)[:, :, None]
        page = np.where(
            self._tr_scale[None, :, None], (cid * lv) // self._tr_n[None, :, None], cid % lv
        )
        refs[:, tv, :] = page
        if self._tr_any_w:
            hw = np.broadcast_to(self._tr_hasw[vi, kk], page.shape)
            writes[:, tv, :] = np.where(hw, self._tr_writes[idx], writes[:, tv, :])

    def _advance(self, advance: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """The hash words and schedule of every VM at its nominal tick, and the move of
        the VMs in ``advance`` (None: all) to their next; the others get no references
        and keep their last batch's live footprint. Returns ``advance`` as an array (None
        if every VM advances) last."""
        B, V = self.num_envs, self.num_vms
        if advance is not None:
            advance = np.asarray(advance, dtype=bool)
            if advance.shape != (B, V):
                raise ValueError(f"advance must have shape ({B}, {V}), got {advance.shape}")
            if advance.all():
                advance = None
        words = self._words(self.vm_ticks)
        live_all, live, w, nrefs, off, k = self._schedule(words, advance)
        if advance is None:
            self.ws_pages = w
            self.vm_ticks = self.vm_ticks + 1
        else:
            self.ws_pages = np.where(advance, w, self.ws_pages)
            self.vm_ticks = self.vm_ticks + advance
            nrefs = np.where(advance, nrefs, 0)
            live_all = np.where(advance, live_all, self._live_last)
        self._live_last = live_all
        self.ticks = self.ticks + 1
        return words, live_all, live, w, nrefs, off, k, advance

    def draw(self, advance: np.ndarray | None = None) -> Demand:
        """Advance every env by one tick and return its demand.

        ``advance`` (B, V) bool, for closed-loop hosts (SEMANTICS.md §10):
        the VMs that issue their next nominal tick's batch; the others issue nothing
        (padding), keep the live footprint of their last batch and their place in the
        stream. ``None``: every VM advances (the open loop).

        The returned ``refs`` / ``writes`` are reused by the next call (see ``Demand``).
        """
        if not self._ready.all():
            missing = np.flatnonzero(~self._ready).tolist()
            raise RuntimeError(f"reset() envs {missing} before draw()")
        B, V, R = self.num_envs, self.num_vms, self.R
        t_drawn = self.vm_ticks
        words, live_all, live, w, nrefs, off, k, advance = self._advance(advance)  # live: phases

        refs, writes = self._refs, self._writes
        if R == 0:
            return Demand(live_all.astype(np.int32), refs, writes)

        # Cold counts ~ Binomial(nrefs, cold_fraction) by inverse CDF.
        vv = np.arange(V)[None, :]
        table = vv * self._cold_start.shape[1] + k
        uc = (words[:, :, _P_COLD] >> np.uint64(11)).astype(np.float64) * 2.0**-53
        ncold = np.searchsorted(self._cold_flat, table + uc, side="right")
        ncold = np.minimum(ncold - self._cold_start[vv, k], nrefs)

        # Zipf ranks from the guide (see zipf_tables): prod = x * icdf[W-1].
        scale = np.empty((B, V), np.uint64)
        for g, icdf in enumerate(self._icdfs):
            m = self._gid == g
            scale[:, m] = icdf[w[:, m] - 1]
        salt = (words[:, :, _P_SALT] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        shift = self._shift[0] if self._same_q else self._shift[None, :, None]
        lowmask = self._lowmask[0] if self._same_q else self._lowmask[None, :, None]
        goff = None if self._one_group else self._guide_off.astype(np.uint64)[None, :, None]
        shift_pages = bool(off.any())
        wrap = bool(np.any(off + w > live))
        off32 = off.astype(np.int32)[:, :, None]
        live32 = live.astype(np.int32)[:, :, None]
        # Blocks of envs small enough that the scratch buffers stay in the L2 cache.
        x = self._x
        cb = self._block
        for b0 in range(0, B, cb):
            b1 = min(B, b0 + cb)
            n = b1 - b0
            xb = x[b0:b1]
            tmp, prod, code, idx, neg = (a[:n] for a in self._scratch)
            np.bitwise_xor(salt[b0:b1, :, None], self._slot_x, out=xb)
            _fmix32_(xb, tmp)
            # Writes: golden-ratio rotation of x against the threshold.
            np.multiply(xb, _GOLD32, out=tmp)
            np.less(tmp, self._wthr[None, :, None], out=writes[b0:b1])
            np.multiply(xb, scale[b0:b1, :, None], out=prod)
            np.right_shift(prod, shift, out=idx)
            if goff is not None:
                np.add(idx, goff, out=idx)
            np.take(self._guide, idx.view(np.int64), out=code, mode="clip")
            np.bitwise_and(prod, lowmask, out=prod)
            np.bitwise_and(code, lowmask, out=idx)
            np.greater(prod, idx, out=neg)
            np.right_shift(code, shift, out=code)
            rb = refs[b0:b1]
            np.add(code.view(np.int64), neg, out=rb, casting="unsafe")
            if self._has_multi:
                self._fix_multi(rb, scale[b0:b1], xb)
            # Ranks to pages: (offset + r) mod live, the offset already reduced mod live.
            if shift_pages:
                np.add(rb, off32[b0:b1], out=rb)
                if wrap:
                    np.greater_equal(rb, live32[b0:b1], out=neg)
                    np.subtract(rb, live32[b0:b1], out=rb, where=neg)

        # Cold slots [0, ncold): page = (x * live) >> 32.
        mc = int(ncold.max())
        if mc > 0:
            xs = x[:, :, :mc].astype(np.uint64)
            cold = (xs * live.astype(np.uint64)[:, :, None]) >> np.uint64(32)
            mask = np.arange(mc)[None, None, :] < ncold[:, :, None]
            np.copyto(refs[:, :, :mc], cold.astype(np.int32), where=mask)

        if self._wall.any():
            writes[:, self._wall, :] = True

        if self._trace_v.size:
            self._draw_traces(t_drawn, live, k, refs, writes)

        # Padding: slots [nrefs, R) (all of them when live == 0).
        if np.any(nrefs < R):
            pad = np.arange(R)[None, None, :] >= nrefs[:, :, None]
            refs[pad] = -1
            writes[pad] = False
        if self._stream_v.size:
            self._draw_stream(t_drawn, live_all, nrefs, refs, advance)
        return Demand(live_all.astype(np.int32), refs, writes)

    def _draw_stream(
        self,
        t: np.ndarray,
        live: np.ndarray,
        nrefs: np.ndarray,
        refs: np.ndarray,
        advance: np.ndarray | None = None,
    ) -> None:
        """Streaming reads in slots ``[nrefs, nrefs + k)`` (already padding, not written):
        page ``first + (k * t + j) mod n`` for ``j < k``, dropped (-1) at or above ``live``
        (module docstring, "Streaming file reads")."""
        for v in self._stream_v:
            kv, n, first = int(self._stream_k[v]), int(self._stream_n[v]), self._stream_first[v]
            j = np.arange(kv, dtype=np.int64)[None, :]
            page = first + (t[:, v, None] * kv + j) % n  # (B, k)
            keep = page < live[:, v, None]
            if advance is not None:
                keep &= advance[:, v, None]
            page = np.where(keep, page, -1).astype(np.int32)
            np.put_along_axis(refs[:, v, :], nrefs[:, v, None] + j, page, axis=1)
