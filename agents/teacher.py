"""The oracle as a teacher: a balloon-target label for any state any policy reaches.
NOT DEPLOYABLE (it reads the simulator's future through ``envs.sim.view``).

:class:`agents.oracle.OraclePolicy` plans once per episode and replays its plan, so it
has no answer for a state off its own trajectory, and imitation with state
aggregation (DAgger: Ross, Gordon & Bagnell 2011, "A reduction of imitation learning and
structured prediction to no-regret online learning") needs one at every state the
learner visits. :class:`OracleTeacher` gives it: ``label(env)`` returns ``(B, V)``
balloon targets in pages from the env's *current* state, by the rule of
:class:`agents.oracle.HindsightAllocationPolicy` (window ``W``, look-ahead ``h``):

* the **window** of the state is ``k = tick // W`` (``tick``: steps done in the env's
  episode), the window the plan would be in: its curves are the per-VM LRU misses, at
  each of ``DP_GRID`` guest sizes, of the references of ticks ``[kW, kW + h)`` with the
  previous window ``[kW − W, kW)`` as history (the plan's own curves, to the integer);
* the **state** enters as in the plan's decision, read now: the floor below which a
  guest would be OOM-killed (its anonymous pages beyond its free swap slots, plus the
  window's first touches of anonymous pages still unallocated now, plus one grid step),
  and the host budget (``H − host_min_free`` + the frames KSM saves now, minus the
  kernels);
* :func:`agents.oracle.allocate` splits the budget; the label is ``M − K − size``,
  rounded and clipped to ``[0, max_balloon_pages]`` as the plan's targets are.

**Closed loop** (``HostParams.closed_loop``, docs/model.md §13.5). Each VM issues its
stream's batches at its own pace, so a window of ticks is not the same part of the
stream for every VM of an env. The window of a VM is then its own progress, as the plan
reads it at a decision: its look-ahead is its batches ``[n, n + h)`` from its cursor
``n`` (``PrivilegedView.progress``, the batches it has issued) and its history ``[n −
W, n)``, whatever tick the env is at; the label of a state is the plan's decision in
that state (at the plan's decision ticks, its target), and between decisions it follows
each VM's cursor. The episode's batches are drawn once (``episode_references``: by
progress) and the windows at every start (cursor) once, by :func:`window_curves`'s pass
with a window at each start, a chunk of starts at a time as the cursors reach them.

**Which plan labels.** One fixed (window, look-ahead), by default (32, 64)
(:data:`TEACHER_PLAN`), not the best plan of each episode: choosing the best needs every
plan played on a copy of the env (three episodes of simulation per episode, far above
the label budget of a few heuristic steps), and a label whose rule changes between
episodes is a noisier target. Of the oracle's plans (:data:`agents.oracle.ORACLE_PLANS`)
played alone (seeds 0, 1, 128 steps; mean return), (32, 64) returned the most on
default-v1 (−1.28 vs −1.42 for (8, 32), −2.17 for (8, 8)), phase-shift-v1 (−0.70 vs
−0.78, −0.89) and gc-heap-v1 (−0.68 vs −1.10, −1.21), and (8, 32) on hungry-v1 (−1.87
vs −2.11 for (32, 64)); (32, 64) has the best mean of the four. ``OracleTeacher(8, 32)``
labels with another plan.

**Labels and the oracle's actions.** Along the trajectory of the plan
``HindsightAllocationPolicy(env, W, 1.0, h)``, the label at every decision tick
(``tick % W == 0``) *is* the plan's target, to the page (``tests/agents/test_teacher.py``);
between decisions the plan holds its target while the label follows the state (a
closed-loop version of the same rule). The oracle (``OraclePolicy``) replays this plan
only when its search keeps it; elsewhere it replays a heuristic or another plan, whose
actions the label does not reproduce. Labels are targets; ``BalloonTargetPolicy
.to_actions`` maps them to any action mode.

**Cost.** The references of an episode do not depend on the actions (docs/model.md §2;
under the closed loop its batches do not, only their pace), so the curves of every
window are computed once per (env, episode) and cached, keyed by the stream's identity
(``PrivilegedView.episode_key``: a reset with a new seed invalidates, one with the same
seed keeps the cache, whose stream is the same); the DP of a window is kept per floor
pattern (:class:`agents.oracle.AllocationTable` answers every budget). A label is then
a gather over the window's pages and a backtrack. The curves come from one pass over
the episode (:func:`window_curves`), not from ``stack_distances`` per window; under the
closed loop, one pass per chunk of starts, where the windows (one per tick) overlap and
each (last use, next use) pair is bucketed once (:func:`_dense_hits`: 1.6× faster
labels on default-v2 than counting every window's pairs, identical labels). Measured by
``experiments.teacher_speed``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.oracle import AllocationTable, guest_size_grid
from envs.sim.core import UNALLOCATED, Simulator
from envs.sim.view import PrivilegedView

TEACHER_PLAN: tuple[int, int] = (32, 64)  # (window, look-ahead) ticks of the labelling plan


def window_curves(refs: np.ndarray, sizes: np.ndarray, window: int, horizon: int,
                  footprint_pages: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The plan's miss curves of every window of an episode, in one pass.

    Args:
        refs: (n, B, V, R) references of the episode's first ``n`` ticks (``-1``
            padding), as ``PrivilegedView.episode_references`` gives them.
        sizes: (V, G) guest sizes (pages) at which to count misses.
        window: ``W``; window ``k`` looks ahead at ticks ``[kW, kW + horizon)`` with
            ``[kW − W, kW)`` as history (none for ``k = 0``).
        horizon: ``h >= W``.
        footprint_pages: ``F``, the page space.

    Returns:
        curves: (B, K, V, G) int64 with ``K = (n − h) // W + 1``: LRU misses of the
            window's look-ahead at each size, equal to ``miss_curve(stack_distances(
            history + look-ahead)[history:], sizes)`` of :mod:`agents.oracle`.
        pages: (K, B, V, F) bool: the pages the window's look-ahead references.

    How: a reference at tick ``t`` whose page was last referenced at ``s`` has LRU stack
    distance ``D[s, t]``, the distinct pages referenced in ``[s, t)``, i.e. the
    references at ticks ``s <= t' < t`` whose next reference is at ``t`` or later. With
    ``S[t', t]`` the references at ``t'`` whose next one is at ``t`` or later (a
    suffix sum) and ``C[s, t] = Σ_{t' >= s} S[t', t]``, ``D[s, t] = C[s, t] − C[t, t]``;
    every reference of a (last, next) pair ``(s, t)`` has that distance, so a window's
    hits at size ``c`` sum the pair counts of its cells ``(s, t)`` with ``D <= c``.
    """
    n, B, V, R = refs.shape
    W, h, F = int(window), int(horizon), int(footprint_pages)
    if not 1 <= W <= h <= n:
        raise ValueError(f"need 1 <= window <= horizon <= ticks, got {W}, {h}, {n}")
    K = (n - h) // W + 1
    curves = np.zeros((B, K, V, sizes.shape[1]), dtype=np.int64)
    pages = np.zeros((K, B, V, F), dtype=bool)
    per_chunk = max(1, _CHUNK_TICKS // W)  # windows per pass: bounded memory
    for k0 in range(0, K, per_chunk):
        k1 = min(K, k0 + per_chunk)
        starts = np.arange(k0, k1) * W
        base = max(int(starts[0]) - W, 0)
        c, p = _chunk_curves(refs[base : int(starts[-1]) + h], sizes, starts - base,
                             np.maximum(starts - W, 0) - base, W, h, F)  # fmt: skip
        curves[:, k0:k1], pages[k0:k1] = c, p
    return curves, pages


_CHUNK_TICKS = 512  # look-ahead starts per pass of window_curves (memory ~ B·V·F·ticks)


def _sparse_hits(cnt: np.ndarray, C: np.ndarray, diag: np.ndarray, bucket: np.ndarray,
                 vm_row: np.ndarray, starts: np.ndarray, hist: np.ndarray, W: int, h: int,
                 F: int, G: int) -> np.ndarray:  # fmt: skip
    """(BV, K, G) hits of each window at the sizes in ascending order, from its cells
    ``(s, t)``: ``t`` in its look-ahead, ``s`` in [its history start, ``t``)."""
    BV, K = cnt.shape[0], starts.size
    k = np.arange(K)[:, None, None]
    ts = starts[:, None, None] + np.arange(h)[None, :, None]  # (K, h, 1)
    ss = hist[:, None, None] + np.arange(W + h)[None, None, :]  # (K, 1, W + h)
    ks, ts, ss = np.broadcast_arrays(k, ts, ss)
    keep = ss < ts
    ks, ts, ss = ks[keep], ts[keep], ss[keep]
    pair = cnt[:, ss, ts]  # (BV, cells) references of tick t whose last use was s
    dist = np.minimum(C[:, ss, ts] - diag[:, ts], F)  # (BV, cells) in [1, F]
    grp = np.arange(BV)[:, None] * K + ks[None, :]
    idx = grp * (G + 1) + bucket[vm_row[:, None], dist]
    hist_g = np.bincount(idx.ravel(), weights=pair.ravel(), minlength=BV * K * (G + 1))
    return np.rint(np.cumsum(hist_g.reshape(BV, K, G + 1), axis=2)[..., :G]).astype(np.int64)


def _dense_hits(cnt: np.ndarray, C: np.ndarray, diag: np.ndarray, bucket: np.ndarray,
                vm_row: np.ndarray, starts: np.ndarray, hist: np.ndarray, h: int, F: int,
                G: int) -> np.ndarray:  # fmt: skip
    """:func:`_sparse_hits` for windows that overlap (a start every few ticks), with each
    pair ``(s, t)`` bucketed once rather than once per window that holds it.

    For a fixed next use ``t`` the distance ``D[s, t]`` does not grow with ``s`` (fewer
    ticks between), so the pairs of column ``t`` that hit at the ``g``-th size are those
    with ``s >= s_g(t)``, ``s_g(t)`` the count of ``s < t`` whose bucket is above ``g``;
    a window's hits at ``g`` are then ``Σ_t A[max(hist, s_g(t)), t]`` over its
    look-ahead, ``A[s0, t]`` the pairs of column ``t`` with ``s >= s0`` (pairs have
    ``s < t``, so ``s < t`` needs no mask there)."""
    BV, n = cnt.shape[0], cnt.shape[1]
    s_i, t_i = np.triu_indices(n, k=1)  # every pair s < t
    dist = np.minimum(C[:, s_i, t_i] - diag[:, t_i], F)  # (BV, pairs) in [1, F]
    j = bucket[vm_row[:, None], dist]  # (BV, pairs) in [0, G]
    per_t = np.bincount(((np.arange(BV)[:, None] * n + t_i) * (G + 1) + j).ravel(),
                        minlength=BV * n * (G + 1)).reshape(BV, n, G + 1)  # fmt: skip
    # s_g(t) = #{s < t: bucket > g}: the suffix sums of per_t beyond g
    s_g = np.cumsum(per_t[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]  # (BV, n, G)
    # A[s0, t] = Σ_{s >= s0}; s0 = max(hist, s_g(t)) <= t < n, so no row past n − 1
    A = np.cumsum(cnt[:, ::-1, :n], axis=1)[:, ::-1]
    t_win = starts[:, None] + np.arange(h)[None, :]  # (K, h)
    lo = np.maximum(hist[None, :, None, None], s_g[:, t_win])  # (BV, K, h, G)
    rows = np.arange(BV)[:, None, None, None]
    return A[rows, lo, t_win[None, :, :, None]].sum(axis=2)  # (BV, K, G)


def _chunk_curves(refs: np.ndarray, sizes: np.ndarray, starts: np.ndarray, hist: np.ndarray,
                  W: int, h: int, F: int,
                  dense: bool | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`window_curves` of the windows whose look-aheads start at ``starts`` and
    histories at ``hist`` (ticks of ``refs``). ``dense``: count the hits by
    :func:`_dense_hits` (True) or :func:`_sparse_hits` (False), and the look-ahead pages
    by running counts or per window alike; by default dense where the look-aheads
    overlap (more look-ahead ticks than twice the chunk's)."""
    n, B, V, R = refs.shape
    BV, K = B * V, starts.size
    # (BV, F, n) marks: flatnonzero lists references by (VM row, page, tick).
    mark = np.zeros((BV, F, n), dtype=bool)
    r = refs.reshape(n, BV, R)
    ok = r >= 0
    tt, rr, _ = np.nonzero(ok)
    mark[rr, r[ok], tt] = True
    flat = np.flatnonzero(mark)
    row_page, t = np.divmod(flat, n)
    row = row_page // F
    nxt = np.full(flat.size, n, dtype=np.int64)  # n: no next reference
    same = row_page[1:] == row_page[:-1]
    nxt[:-1][same] = t[1:][same]
    cnt = np.bincount((row * n + t) * (n + 1) + nxt, minlength=BV * n * (n + 1))
    cnt = cnt.reshape(BV, n, n + 1)
    S = np.cumsum(cnt[:, :, ::-1], axis=2)[:, :, ::-1][:, :, :n]  # S[t', x]: next >= x
    C = np.cumsum(S[:, ::-1, :], axis=1)[:, ::-1, :]  # C[s, x] = Σ_{t' >= s} S[t', x]
    diag = C[:, np.arange(n), np.arange(n)]  # (BV, n) C[x, x]
    total = cnt.sum(axis=2)  # (BV, n) references per tick
    # A reference hits at size c iff its distance is at most c: count the distances by
    # the sizes they fit (bucket j: the j-th smallest size is the first at least d).
    G = sizes.shape[1]
    order = np.argsort(sizes, axis=1, kind="stable")
    asc = np.take_along_axis(np.clip(sizes, 0, F), order, axis=1)  # (V, G) ascending
    bucket = np.stack([np.searchsorted(asc[v], np.arange(F + 1), side="left")
                       for v in range(V)])  # (V, F + 1)  # fmt: skip
    vm_row = np.arange(BV) % V
    if dense is None:
        dense = K * h > 2 * n
    if not dense:  # sparse starts: count each window's cells (k, s, t)
        hits = _sparse_hits(cnt, C, diag, bucket, vm_row, starts, hist, W, h, F, G)
    else:  # dense starts: each (last use, next use) pair once, then a lookup per window
        hits = _dense_hits(cnt, C, diag, bucket, vm_row, starts, hist, h, F, G)
    hits = hits.reshape(B, V, K, G)  # at the sizes in ascending order
    inv = np.argsort(order, axis=1)  # back to the given order of the sizes
    hits = np.take_along_axis(hits, np.broadcast_to(inv[None, :, None, :], hits.shape), axis=3)
    csum = np.concatenate([np.zeros((BV, 1), np.int64), np.cumsum(total, axis=1)], axis=1)
    look = (csum[:, starts + h] - csum[:, starts]).reshape(B, V, K)  # references per look-ahead
    curves = look[..., None] - hits  # (B, V, K, G)
    if not dense:  # sparse starts (a window every W ticks): each look-ahead's pages
        pages = np.stack([mark[:, :, a : a + h].any(axis=2) for a in starts])  # (K, BV, F)
    else:  # dense starts (every tick): a page is in [a, a + h) iff its count of references
        # up to a + h − 1 exceeds its count before a
        seen = np.cumsum(mark, axis=2, dtype=np.uint16 if n < 1 << 16 else np.int64)
        before = np.where(starts > 0, seen[:, :, np.maximum(starts - 1, 0)], 0)
        pages = (seen[:, :, starts + h - 1] > before).transpose(2, 0, 1)
    return curves.transpose(0, 2, 1, 3), pages.reshape(K, B, V, F)


@dataclass
class _EpisodeCache:
    """The cached windows of one simulator's envs (rows of envs whose key matches)."""

    keys: np.ndarray  # (B,) uint64 stream key each row was computed for
    valid: np.ndarray  # (B,) bool
    curves: np.ndarray  # (B, K, V, G) int64
    anon_pages: np.ndarray  # (K, B, V, F) bool: look-ahead pages that are anonymous
    # (env, window, infeasible sizes per VM) -> the window's DP for that floor pattern
    tables: dict[tuple[int, int, tuple[int, ...]], AllocationTable] = field(default_factory=dict)


_PROGRESS_CHUNK = 64  # closed loop: window starts per pass of _chunk_curves


@dataclass
class _ProgressCache:
    """Closed loop: one simulator's episodes by batch and the windows at every start
    (cursor) ``0 .. n − h``, computed a chunk of starts at a time when a cursor needs it."""

    keys: np.ndarray  # (B,) uint64 stream key each env's batches were drawn for
    refs: np.ndarray  # (n, B, V, R) each VM's first n batches (episode_references)
    curves: np.ndarray  # (B, S, V, G) int64 the window's curves at each start
    pages: np.ndarray  # (S, B, V, ceil(F / 8)) uint8 its look-ahead pages, bit-packed
    done: np.ndarray  # (B, chunks) bool: the chunk's starts are computed
    # (env, cursors of its VMs, infeasible sizes per VM) -> the window's DP
    tables: dict[tuple[int, Any, tuple[int, ...]], AllocationTable] = field(default_factory=dict)


class OracleTeacher:
    """Balloon-target labels (pages) for any state of a ReclaimGym env, by the hindsight
    allocation rule (module docstring). **Not deployable.**

    Args:
        window: ``W`` ticks of the labelling plan.
        horizon: look-ahead ticks ``h``.
        frac: fraction of the host capacity given to the guests (the plan's ``frac``).

    ``label(env)`` takes a ``BalloonVectorEnv``, a ``BalloonEnv`` or an env as
    ``gymnasium.make`` returns it (unwrapped to its ReclaimGym env), and returns (B, V)
    int64 targets (B = 1 for a single env). Labelling never changes the env. One teacher
    may label several envs: its cache is per simulator (weakly held) and, within one,
    per env episode. ``rebuilds`` counts the episodes' curve computations.
    """

    name = "oracle-teacher"

    def __init__(self, window: int = TEACHER_PLAN[0], horizon: int = TEACHER_PLAN[1],
                 frac: float = 1.0) -> None:  # fmt: skip
        if not 1 <= int(window) <= 1024:
            raise ValueError(f"window must be in [1, 1024] ticks, got {window!r}")
        if not int(window) <= int(horizon) <= 4096:
            raise ValueError(f"horizon must be in [window, 4096] ticks, got {horizon!r}")
        if not 0.0 < float(frac) <= 1.0:
            raise ValueError(f"frac must be in (0, 1], got {frac!r}")
        self.window, self.horizon, self.frac = int(window), int(horizon), float(frac)
        self._caches: weakref.WeakKeyDictionary[Simulator, _EpisodeCache] = (
            weakref.WeakKeyDictionary()
        )
        self._progress: weakref.WeakKeyDictionary[Simulator, _ProgressCache] = (
            weakref.WeakKeyDictionary()
        )
        self.rebuilds = 0

    def label(self, env: Any) -> np.ndarray:
        """(B, V) int64 balloon targets in pages for ``env``'s current state."""
        core, sim = _unwrap(env)
        view = sim.privileged_view()
        V = view.guest_pages.size
        M, K = view.guest_pages, view.kernel_pages
        sizes, reserve = guest_size_grid(M, K, view.max_balloon_pages)
        B = view.tick.size
        rows = np.arange(B)
        if sim.params.closed_loop:  # each VM's window is its own progress (module docstring)
            cursor = view.progress()
            prog = self._progress_cache(core, sim, view, sizes, int(cursor.max()))
            curves, look = self._progress_windows(prog, cursor, sizes, view.footprint_pages)
            anon_look = look & ~view.is_file[None]
            windows: list[Any] = [tuple(int(n) for n in cursor[b]) for b in range(B)]
            tables = prog.tables
        else:
            W = self.window
            win = view.tick // W  # (B,) the window of each env's state
            cache = self._cache(core, sim, view, sizes, int(win.max()))
            curves = cache.curves[rows, win]  # (B, V, G)
            anon_look = cache.anon_pages[win, rows]  # (B, V, F)
            windows = [int(k) for k in win]
            tables = cache.tables
        # The floor (HindsightAllocationPolicy.decide): anonymous pages beyond free swap
        # slots, plus the window's anonymous first touches still unallocated now.
        anon = view.guest_used_pages - view.guest_cache_pages
        fresh = anon_look & (view.vstate == UNALLOCATED)  # (B, V, F)
        anon = anon + np.count_nonzero(fresh, axis=2)
        swap_free = view.guest_swap_pages - view.guest_swap_used
        floor = np.maximum(anon - swap_free, 0) + reserve  # (B, V)
        cap = view.host_frames - view.host_min_free + view.sharing_saved_frames.astype(np.float64)
        budget = self.frac * cap - float(K.sum())
        out = np.zeros((B, V), dtype=np.int64)
        for b in range(B):
            lim = np.minimum(floor[b], sizes[:, -1])
            n_bad = tuple(int(np.count_nonzero(sizes[v] < lim[v])) for v in range(V))
            key = (b, windows[b], n_bad)
            table = tables.get(key)
            if table is None:
                c = curves[b].copy()
                c[sizes < lim[:, None]] = np.iinfo(np.int32).max
                table = tables[key] = AllocationTable(c, sizes)
            size = table.sizes_for(float(budget[b]))
            out[b] = np.clip(np.rint(M - K - size), 0, view.max_balloon_pages)
        return out

    def _progress_cache(self, core: Any, sim: Simulator, view: PrivilegedView,
                        sizes: np.ndarray, last_cursor: int) -> _ProgressCache:  # fmt: skip
        """Closed loop: the cache of ``sim``, its rows cleared where an env's stream
        changed, and drawn again (grown geometrically) where a cursor passed its batches."""
        h = self.horizon
        cache = self._progress.get(sim)
        keys = view.episode_key
        need = last_cursor + h
        # Batches of an episode of ``core.limit`` steps (at most one a tick) and a window.
        n = max(need, int(np.max(getattr(core, "limit", [0]))) + h)
        if cache is not None:
            stale = cache.keys != keys
            have = cache.refs.shape[0]
            if have >= need:
                if stale.any():  # the new episodes' batches, then their windows
                    cache.refs = view.episode_references(have)
                    cache.done[stale] = False
                    cache.keys[:] = keys
                    cache.tables = {k: t for k, t in cache.tables.items() if not stale[k[0]]}
                    self.rebuilds += 1
                return cache
            n = max(n, 2 * have)
        refs = view.episode_references(n)
        _, B, V, _ = refs.shape
        S = n - h + 1
        cache = _ProgressCache(
            keys=keys.copy(),
            refs=refs,
            curves=np.zeros((B, S, V, sizes.shape[1]), dtype=np.int64),
            pages=np.zeros((S, B, V, -(-view.footprint_pages // 8)), dtype=np.uint8),
            done=np.zeros((B, -(-S // _PROGRESS_CHUNK)), dtype=bool),
        )
        self._progress[sim] = cache
        self.rebuilds += 1
        return cache

    def _progress_windows(self, cache: _ProgressCache, cursor: np.ndarray, sizes: np.ndarray,
                          F: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Closed loop: (B, V, G) the curves and (B, V, F) the look-ahead pages of each
        VM's window at its cursor ``n``: look-ahead batches ``[n, n + h)``, history
        ``[n − W, n)`` (from 0 near the start), as :func:`window_curves` counts them (its
        pass, with a window at every start)."""
        W, h, CH = self.window, self.horizon, _PROGRESS_CHUNK
        B, V = cursor.shape
        S = cache.curves.shape[1]
        for c in np.unique(cursor // CH):
            rows = np.flatnonzero((cursor // CH == c).any(axis=1) & ~cache.done[:, c])
            if rows.size == 0:
                continue
            starts = np.arange(c * CH, min((c + 1) * CH, S))
            base = max(int(starts[0]) - W, 0)
            refs = cache.refs[base : int(starts[-1]) + h][:, rows]
            cv, pg = _chunk_curves(refs, sizes, starts - base, np.maximum(starts - W, 0) - base,
                                   W, h, F)  # fmt: skip
            cache.curves[rows[:, None], starts[None, :]] = cv
            cache.pages[starts[:, None], rows[None, :]] = np.packbits(pg, axis=-1)
            cache.done[rows, c] = True
        # The DPs of other cursors are not asked for again in this episode (a cursor never
        # moves back), so only the current ones are kept.
        now = {b: tuple(int(n) for n in cursor[b]) for b in range(B)}
        cache.tables = {k: t for k, t in cache.tables.items() if k[1] == now[k[0]]}
        b_i, v_i = np.arange(B)[:, None], np.arange(V)[None, :]
        curves = cache.curves[b_i, cursor, v_i]  # (B, V, G)
        look = np.unpackbits(cache.pages[cursor, b_i, v_i], axis=-1, count=F).astype(bool)
        return curves, look

    def _cache(self, core: Any, sim: Simulator, view: PrivilegedView, sizes: np.ndarray,
               last_window: int) -> _EpisodeCache:  # fmt: skip
        """The cache of ``sim``, its rows recomputed where an env's stream changed."""
        W, h = self.window, self.horizon
        # Windows of an episode of ``core.limit`` steps (one tick each); a state past
        # them (a longer episode) grows the cache geometrically, so it rebuilds rarely.
        windows = int(np.max(getattr(core, "limit", [0]))) // W + 1
        if last_window >= windows:
            windows = 2 * last_window + 1
        cache = self._caches.get(sim)
        keys = view.episode_key
        if cache is not None and cache.curves.shape[1] > last_window:
            windows = cache.curves.shape[1]
            stale = cache.keys != keys
            if not stale.any():
                return cache
        else:
            cache = None
            stale = np.ones(keys.size, dtype=bool)
        n = (windows - 1) * W + h
        refs = view.episode_references(n)[:, stale]
        curves, pages = window_curves(refs, sizes, W, h, view.footprint_pages)
        anon = pages & ~view.is_file[None, None]
        if cache is None:
            B, F = keys.size, view.footprint_pages
            cache = _EpisodeCache(
                keys=np.zeros(B, dtype=np.uint64),
                valid=np.zeros(B, dtype=bool),
                curves=np.zeros((B, windows) + sizes.shape, np.int64),
                anon_pages=np.zeros((windows, B, sizes.shape[0], F), dtype=bool),
            )
            self._caches[sim] = cache
        cache.curves[stale] = curves
        cache.anon_pages[:, stale] = anon
        cache.keys[stale] = keys[stale]
        cache.valid[stale] = True
        cache.tables = {k: t for k, t in cache.tables.items() if not stale[k[0]]}
        self.rebuilds += 1
        return cache


def _unwrap(env: Any) -> tuple[Any, Simulator]:
    """(the EnvBatch, its simulator) of a ReclaimGym env, through gymnasium wrappers."""
    base = getattr(env, "unwrapped", env)
    core = getattr(base, "core", None)
    sim = getattr(core, "sim", None)
    if not isinstance(sim, Simulator):
        raise ValueError(
            "the teacher reads the simulator: it needs a ReclaimGym env (BalloonVectorEnv, "
            f"BalloonEnv or gymnasium.make of one), got {type(env).__name__}"
        )
    return core, sim


__all__ = ["TEACHER_PLAN", "OracleTeacher", "window_curves"]
