"""Synthetic, exogenous page-reference streams for a batch of envs (MODEL.md §9).

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

Page layout (``page_layout``)
    Deterministic from the params alone (clone VMs have identical layouts): virtual page
    ``j`` is file-backed iff ``floor((j + 1) * f) > floor(j * f)`` with ``f =
    file_fraction``, and shareable iff ``floor((j + 1) * s + 1/2) > floor(j * s + 1/2)``
    with ``s = shareable_fraction`` (the offset keeps the two sets apart). Counts are
    within one page of ``F * f`` and ``F * s``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from envs.sim.hashing import splitmix64
from envs.sim.params import WS_SHAPES, HostParams, WorkloadParams

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
    n = wp.footprint_pages
    return _spread(n, wp.file_fraction, 0.0), _spread(n, wp.shareable_fraction, 0.5)


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
def _zipf_tables(alpha: float, wcap: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
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


def _check_num_envs(num_envs: object) -> int:
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
        raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    return int(num_envs)


class Workload:
    """Vectorized synthetic workloads of ``num_envs`` envs with ``params.num_vms`` VMs each.

    Attributes (read-only for callers, updated by ``draw``):
        ticks: (B,) int64 workload tick of the next ``draw`` of each env.
        ws_pages: (B, V) int64 working-set size W(t) of the last ``draw``.
        phase: (B, V) int64 phase index of the last ``draw`` (-1 before the first).
    """

    def __init__(self, params: HostParams, num_envs: int) -> None:
        if not isinstance(params, HostParams):
            raise ValueError(f"params must be a HostParams, got {params!r}")
        B = _check_num_envs(num_envs)
        V = params.num_vms
        self.params = params
        self.num_envs = B
        self.num_vms = V
        wls = [vm.workload for vm in params.vms]
        self.R = R = max(wl.max_refs_per_tick for wl in wls)
        K = max(len(wl.phases) for wl in wls)

        # Per-VM constants, shape (V,) or (V, K) padded with the last phase.
        i64 = np.int64
        self._foot = np.array([wl.footprint_pages for wl in wls], i64)
        self._start = np.array([wl.start_live_pages for wl in wls], i64)
        self._grow = np.array([wl.growth_pages_per_tick for wl in wls], i64)
        self._restart = np.array([wl.restart_period_ticks for wl in wls], i64)
        self._cycle = np.array([sum(p.duration_ticks for p in wl.phases) for wl in wls], i64)

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

        # Cold counts: inverse CDF of Binomial(refs, cold_fraction) per (VM, phase), in one
        # flat table where table k occupies values in [k, k + 1].
        flat, starts = [], []
        pos = 0
        for v, wl in enumerate(wls):
            for k in range(K):
                cdf = _binom_cdf(int(self._nrefs[v, k]), wl.cold_fraction)
                starts.append(pos)
                flat.append(cdf + (v * K + k))
                pos += cdf.size
        self._cold_flat = np.concatenate(flat)
        self._cold_start = np.array(starts, i64).reshape(V, K)

        # Zipf tables, one per distinct (alpha, Wcap); flat guide with per-group offsets.
        groups: dict[tuple[float, int], int] = {}
        gid = np.empty(V, i64)
        for v, wl in enumerate(wls):
            wcap = min(max(p.ws_pages for p in wl.phases), wl.footprint_pages)
            gid[v] = groups.setdefault((float(wl.zipf_alpha), wcap), len(groups))
        tables = [_zipf_tables(a, w) for (a, w) in groups]
        self._icdfs = [t[0] for t in tables]
        self._gid = gid
        self._wcap = np.array([w for (_, w) in groups], i64)[gid]
        q = np.array([t[2] for t in tables], i64)[gid]
        self._shift = (64 - q).astype(np.uint64)  # (V,)
        self._lowmask = ((np.ones(V, np.uint64) << self._shift) - np.uint64(1)).astype(np.uint64)
        self._same_q = bool(np.all(q == q[0]))
        goff = np.cumsum([0] + [t[1].size for t in tables])
        self._guide = np.concatenate([t[1] for t in tables])
        self._guide_off = goff[gid].astype(np.int64)
        self._one_group = len(groups) == 1
        self._has_multi = any(t[3] for t in tables)

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

        self._key = np.zeros(B, np.uint64)
        self.ticks = np.zeros(B, i64)
        self._ready = np.zeros(B, bool)
        self._burst_left = np.zeros((B, V), i64)
        self.phase = np.full((B, V), -1, i64)
        self.ws_pages = np.zeros((B, V), i64)

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
        self.ticks[ids] = 0
        self._ready[ids] = True
        self._burst_left[ids] = 0
        self.phase[ids] = -1
        self.ws_pages[ids] = 0

    # ------------------------------------------------------------------------------
    def _words(self, t: np.ndarray) -> np.ndarray:
        """(B, V, _N_PURPOSES) uint64 hashes of (env key, t, VM, purpose)."""
        V = self.num_vms
        with np.errstate(over="ignore"):
            base = splitmix64(self._key ^ splitmix64(t.astype(np.uint64)))  # (B,)
            lane = np.arange(V * _N_PURPOSES, dtype=np.uint64).reshape(1, V, _N_PURPOSES)
            return splitmix64(base[:, None, None] + lane)

    def _schedule(self, words: np.ndarray) -> tuple[np.ndarray, ...]:
        """Live footprint, W(t), refs count, offset and phase of every (env, VM)."""
        t = self.ticks[:, None]  # (B, 1)
        tr = np.where(self._restart > 0, t % np.maximum(self._restart, 1), t)
        live = np.minimum(self._start + self._grow * tr, self._foot)  # (B, V)

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
        self._burst_left = left
        self.phase = k

        w = np.clip(w, 1, np.maximum(live, 1))
        nrefs = np.where(live > 0, self._nrefs[vv, k], 0)
        off = self._off[vv, k] % np.maximum(live, 1)
        return live, w, nrefs, off, k

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

    def draw(self) -> Demand:
        """Advance every env by one tick and return its demand.

        The returned ``refs`` / ``writes`` are reused by the next call (see ``Demand``).
        """
        if not self._ready.all():
            missing = np.flatnonzero(~self._ready).tolist()
            raise RuntimeError(f"reset() envs {missing} before draw()")
        B, V, R = self.num_envs, self.num_vms, self.R
        words = self._words(self.ticks)
        live, w, nrefs, off, k = self._schedule(words)
        self.ws_pages = w
        self.ticks = self.ticks + 1

        refs, writes = self._refs, self._writes
        if R == 0:
            return Demand(live.astype(np.int32), refs, writes)

        # Cold counts ~ Binomial(nrefs, cold_fraction) by inverse CDF.
        vv = np.arange(V)[None, :]
        table = vv * self._cold_start.shape[1] + k
        uc = (words[:, :, _P_COLD] >> np.uint64(11)).astype(np.float64) * 2.0**-53
        ncold = np.searchsorted(self._cold_flat, table + uc, side="right")
        ncold = np.minimum(ncold - self._cold_start[vv, k], nrefs)

        # Zipf ranks from the guide (see _zipf_tables): prod = x * icdf[W-1].
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

        # Padding: slots [nrefs, R) (all of them when live == 0).
        if np.any(nrefs < R):
            pad = np.arange(R)[None, None, :] >= nrefs[:, :, None]
            refs[pad] = -1
            writes[pad] = False
        return Demand(live.astype(np.int32), refs, writes)
