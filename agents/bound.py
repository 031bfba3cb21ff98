"""A hindsight lower bound on the cost of an episode: no policy's return exceeds it.

:func:`episode_bounds` draws each episode's reference stream from a copy of the env's
workload (it is exogenous: the same for every policy, docs/model.md §2) and runs
Belady's MIN on it. The result is not a policy and cannot be played: it is the other end
of the bracket ``[oracle, bound]`` (``agents.oracle`` is the feasible end).

Why it is a bound (the argument; ``docs/model.md`` §4 and SEMANTICS.md for the rules).

*Keys.* A page of VM ``i`` gets a new identity (key) each time the workload's live
footprint shrinks below it (§4.1 frees it; its next touch is a first touch again). The
first reference of a key is *compulsory*: the page is unallocated, so every policy pays
a zero-fill minor fault, at least :func:`first_touch_us`.

*In memory.* Let ``S(t)`` be the keys that are guest-resident in a host-backed GPP
(resident or shared) when tick ``t + 1`` issues its references (after its workload and
balloon phases). A reference at ``t + 1`` to a key not in ``S(t)`` costs at least
:func:`cheapest_miss_us`: the page is swapped or evicted in the guest (a major fault,
also per reference when it overflows) or host-swapped (a host swap-in). Two exceptions
make a later reference look like a first touch (a minor fault): a guest OOM kill, whose
penalty ``w_guest_oom`` every such policy pays, and an unplaced (overflowing) first
touch, which paid a one-page major fault instead (at least both
:func:`first_touch_us` and :func:`cheapest_miss_us`), so the pair still costs at least
``first_touch_us + cheapest_miss_us``.

*Demand.* A key enters ``S`` only by being referenced (a placement or a host swap-in
on a hit: v0 has no prefetch), so ``S(t) ⊆ S(t − 1) ∪ U(t)``, ``U(t)`` the keys
referenced at ``t``. Any key may leave at any time (evictions cost no stall).

*Capacity.* Per VM, ``|S_i(t)| ≤ M_i − K_i`` (the guest's non-kernel GPPs; ``K_i`` the
kernel's and its page metadata's, ``kernel_reserved_pages``). Per host, at the end of
every tick that does not end the episode, resident GPPs plus shared frames are at most
``H`` (else host OOM); the workload and balloon phases of the next tick never add
frames. The kernels' GPPs (``kernel_reserved_pages``) are always backed. Sharers of
content ``c`` need at least ``ceil(m_c / ksm_max_sharing)`` frames, so ``|S(t)| ≤ H − ΣK
+ Σ_c (m_c − ceil(m_c / ksm_max_sharing))`` with ``m_c`` an upper bound on the backed
GPPs of content ``c``: the kernel pages of each image, and the keys already touched and
not yet written (a written page gets unique content). A write is not counted when the
VM's tick references more pages than its guest reserve (``M_i − K_i −
max_balloon_pages``): only then can the write be lost to an overflow. The host reserve
``host_min_free`` is subtracted too when host swap can hold every non-kernel GPP, except
in a tick whose referenced keys (plus every mergeable key) could fill it: host reclaim
leaves the reserve short only when every resident GPP was touched in the tick.

*Optimum of the relaxation.* Paying ``first_touch_us`` per compulsory reference and
``cheapest_miss_us`` per other reference to a key not in ``S(t − 1)``, a policy's stall
is at least that of the best sequence ``S`` obeying demand and capacity. With one
capacity constraint per tick, keeping at the end of each tick the keys of ``S(t−1) ∪
U(t)`` with the nearest next use (Belady's MIN with bypass, tick-batched) is optimal:
the exchange argument of Belady (1966) applies unchanged to batches and to a capacity
that varies with ``t``. Two relaxations are solved exactly, each VM alone with its own
capacity (summed) and all VMs merged under the host's, and the bound takes the larger.

*Returns.* The reward is ``−mean_i stall_i / (vcpus_i · tick_us)`` minus non-negative
penalties, so a full episode without OOM kills returns at most ``−bound_stall_us / (V ·
max_i vcpus_i · tick_us)``; with ``stall_cap`` (v1) each VM's stall per tick is capped at
its time, and :func:`capped_stall_us` places the misses where the cap makes them cheapest;
a policy with a kill pays ``w_guest_oom``, one whose host runs out pays ``w_host_oom``.
``bound_return = −min(bound_stall_us / (V · max vcpus · tick_us), w_guest_oom,
w_host_oom)``. The other v1 costs (balloon moves, synchronous reclaim, queueing delay)
are non-negative and left out.

*Closed loop* (``HostParams.closed_loop``, docs/model.md §13.5, SEMANTICS.md §10). Each VM
``i`` issues its own exogenous sequence of batches (batch ``k`` is the open loop's draw
at workload tick ``k``) at the pace its stalls allow: a policy that stalls a VM more
makes it issue fewer batches, so the references of an episode depend on the policy and
the VMs' batches are not aligned in time. Keys, compulsory references and the demand
rule are per VM and per batch as above (a VM that does not advance issues nothing and
frees nothing), so the per-VM relaxation holds over batches: each VM alone in its
``M_i − K_i`` GPPs (``K_i`` = ``kernel_reserved_pages``), Belady's MIN with bypass over
its batches gives ``f_i(P)``, the least stall of its first ``P`` batches in ticks of its
time (µs / (``vcpus_i · tick_us``), uncapped; each prefix of one MIN run is a MIN run of
the prefix; a first touch at :func:`first_touch_us`, other misses at
:func:`cheapest_miss_us`, both of VM ``i``). The host-merged relaxation is not used: its
ticks interleave the VMs' batches one way, and a policy chooses the interleaving. The
reward charges each VM the ticks it lost, ``s_i(t)`` = ``envs.sim.costs.loop_stall_frac``
(≥ the charged latency of the tick's faults over ``vcpus_i · tick_us``: its device
latency has no negative term), so with ``P_i`` batches issued (``1 ≤ P_i ≤ T``: a VM
always advances at tick 1) and the final credit ``c_i < 1`` (from ``c = 0``, a credit
below 1 stays below 1: ``c + 1 − 1 − s`` after an advancing tick, ``c + 1 − s`` with
``c + 1 < 1`` after any other, ``s ≥ 0``), ``L_i = Σ_t s_i(t) = T − P_i − c_i >
T − P_i − 1``, and ``L_i ≥ f_i(P_i)`` (every fault of the ``P_i`` batches is charged in
the tick that issued it, whatever ticks it then waits). So every policy without a kill
or host OOM has ``L_i ≥ L_i* = min over 1 ≤ P ≤ T of max(f_i(P), T − P − 1)`` and returns
``−mean_i L_i ≤ −mean_i L_i*``; ``bound_return = −min(mean_i L_i*, w_guest_oom,
w_host_oom)`` (:func:`closed_loop_bound`). Guest OOM kills, overflowing first touches
and compulsory misses keep the handling above, per VM (a kill pays ``w_guest_oom``;
an unplaced reference is charged a one-page major fault, at least both latencies, so
each prefix of a run of overflows then a placed first touch costs at least the
relaxation's charge of it).

v1 cost models: every latency a miss can be charged (the device's unloaded latency,
overlap with other threads, async page faults, the pages one read request serves, the
``r`` real pages of a simulated page) is in :func:`cheapest_miss_us`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.sim.params import HostParams
from envs.sim.workload import page_layout

_INF = np.iinfo(np.int64).max


def cheapest_miss_us(params: HostParams, vm: int | None = None) -> float:
    """The least stall (µs) a reference to an allocated page that is not in memory can be
    charged by the cost model (envs/sim/costs.py; the one place to follow it): a guest
    major fault or a host swap-in, at the device's unloaded latency when the device is on
    (its queueing delay is ≥ 0), shared by the most pages one read request can serve
    (a swap cluster or a readahead window; pages read ahead are not made resident, so
    the demand rule below still holds), with the VM's overlap and async-PF share, for the
    cheapest VM (or VM ``vm``), times the ``r`` real pages a simulated page stands for."""
    c = params.costs
    per_io = max(1 << params.guest_page_cluster, params.file_readahead_pages)
    guest_lat = c.dev_read_lat_us if c.dev_enabled else c.guest_major_us
    host_lat = c.dev_read_lat_us if c.dev_enabled else c.host_swapin_us
    best = np.inf
    for v in _vms(params, vm):
        a = v.user_fault_fraction if params.async_pf else 0.0
        guest = guest_lat * (1.0 - v.overlap_frac) / per_io
        host = (host_lat + c.exit_us) * (1.0 - v.overlap_frac * a)
        best = min(best, guest, host)
    return float(best * params.real_pages_per_page)


def first_touch_us(params: HostParams, vm: int | None = None) -> float:
    """The least stall (µs) of a first touch: a zero-fill minor fault (its GPP may be
    host-resident already, so no host minor fault is certain), ``r`` real pages of it;
    or, if cheaper, the one-page major fault an unplaced (overflowing) first touch is
    charged instead (SEMANTICS.md step 4; cheaper only where a VM's overlap hides most
    of a read), for the cheapest VM (or VM ``vm``). The overflow's fault also costs at
    least :func:`cheapest_miss_us` (one page per request), which the pair argument of
    the module docstring needs."""
    c = params.costs
    r = params.real_pages_per_page
    minor = float(c.guest_minor_us * r)
    guest_lat = c.dev_read_lat_us if c.dev_enabled else c.guest_major_us
    overflow = min(guest_lat * (1.0 - v.overlap_frac) for v in _vms(params, vm))
    return min(minor, float(overflow * r))


def _vms(params: HostParams, vm: int | None) -> tuple:
    return params.vms if vm is None else (params.vms[vm],)


def capped_stall_us(params: HostParams, first: list[list[np.ndarray]], misses: int) -> float:
    """The least stall of an episode when each VM's stall is capped at its time per tick
    (``CostParams.stall_cap``): its compulsory references are charged in their own
    (tick, VM) cell, and the ``misses`` other misses the relaxations force go where they
    cost least. A cell of ``c`` first touches and ``n`` misses costs ``min(cap, f·c +
    m·n)`` (concave in ``n``), so the cheapest placement fills whole cells; its linear
    relaxation (cells taken by ascending cost per miss, the last one in part) is below the
    integer optimum, hence a bound."""
    f, m = first_touch_us(params), cheapest_miss_us(params)
    caps = np.array([vm.vcpus for vm in params.vms], dtype=np.float64) * params.tick_us
    base, items = 0.0, []
    for row in first:
        for v, fv in enumerate(row):
            b = f * int(fv.sum())
            room = int(fv.size - fv.sum())  # non-compulsory references: possible misses
            base += min(caps[v], b)
            if room:
                items.append(((min(caps[v], b + m * room) - min(caps[v], b)) / room, room))
    items.sort()
    left, extra = misses, 0.0
    for per_miss, room in items:
        if left <= 0:
            break
        take = min(left, room)
        extra += per_miss * take
        left -= take
    return base + extra


@dataclass(frozen=True)
class EpisodeBound:
    """The bound of one episode (one env of a batch)."""

    bound_stall_us: float  # lower bound on the stall summed over VMs (no kill, full length)
    bound_return: float  # upper bound on the return of any policy
    compulsory: int  # first touches
    misses: int  # non-compulsory misses the bound charges (max of the two relaxations)
    misses_per_vm: int  # Σ_i MIN_i(M_i − K_i)
    misses_merged: int  # MIN over all VMs under the host capacity (0: closed loop)
    steps: int
    batches: tuple[int, ...] = ()  # closed loop: the batches P_i of each VM's minimum


@dataclass
class _Stream:
    """One episode's tick-batched distinct references as dense key ids."""

    keys: list[list[np.ndarray]]  # [t][v] (n,) key ids referenced at tick t by VM v
    first: list[list[np.ndarray]]  # [t][v] (n,) bool: the key's first reference
    host_cap: np.ndarray  # (T,) capacity of S(t) in pages, all VMs together
    n_keys: int


def _next_use(keys: list[np.ndarray]) -> list[np.ndarray]:
    """For each tick's keys, the tick of the key's next reference (``_INF``: none)."""
    T = len(keys)
    flat = np.concatenate(keys) if T else np.zeros(0, np.int64)
    ticks = np.repeat(np.arange(T, dtype=np.int64), [k.size for k in keys])
    order = np.lexsort((ticks, flat))
    nxt = np.full(flat.size, _INF, dtype=np.int64)
    same = flat[order][1:] == flat[order][:-1]
    nxt[order[:-1][same]] = ticks[order][1:][same]
    return np.split(nxt, np.cumsum([k.size for k in keys])[:-1])


def belady_misses(keys: list[np.ndarray], first: list[np.ndarray], caps: np.ndarray,
                  n_keys: int) -> int:  # fmt: skip
    """Non-compulsory misses of Belady's MIN with bypass on tick batches.

    Args:
        keys: per tick, the distinct key ids (``< n_keys``) referenced.
        first: per tick, whether each reference is its key's first (compulsory).
        caps: (T,) how many keys may be kept at the end of each tick.
        n_keys: the number of key ids.

    At the end of tick ``t`` the keys of ``S(t−1) ∪ U(t)`` with the nearest next use are
    kept, at most ``caps[t]`` of them, never one with no next use (module docstring)."""
    return int(belady_misses_per_tick(keys, first, caps, n_keys).sum())


def belady_misses_per_tick(keys: list[np.ndarray], first: list[np.ndarray], caps: np.ndarray,
                           n_keys: int) -> np.ndarray:  # fmt: skip
    """(T,) int64 the non-compulsory misses of :func:`belady_misses` at each tick. Every
    prefix of the run is a MIN run of that prefix (the keys used within it come before
    every key used only after it, whose order changes no miss within it), so the
    cumulative sum is the fewest misses of each prefix of the ticks."""
    nexts = _next_use(keys)
    incache = np.zeros(n_keys, dtype=bool)
    nxt = np.full(n_keys, _INF, dtype=np.int64)
    cache = np.zeros(0, dtype=np.int64)
    misses = np.zeros(len(keys), dtype=np.int64)
    for t, (u, nu, f) in enumerate(zip(keys, nexts, first, strict=True)):
        hit = incache[u]
        misses[t] = np.count_nonzero(~hit & ~f)
        nxt[u] = nu
        pool = np.concatenate([cache, u[~hit]])
        pool = pool[nxt[pool] < _INF]
        c = max(int(caps[t]), 0)
        if pool.size > c:
            pool = pool[np.argpartition(nxt[pool], c - 1)[:c]] if c > 0 else pool[:0]
        incache[cache] = False
        incache[pool] = True
        cache = pool
    return misses


def _saving(m: np.ndarray, cap: int) -> np.ndarray:
    """Frames saved by merging ``m`` pages of one content: ``m − ceil(m / cap)``."""
    return m - (-(-m // cap))


def _stream(params: HostParams, draws: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
            ) -> _Stream:  # fmt: skip
    """Keys, first touches and the host capacity of one env's episode, from its draws
    ``(live (V,), refs (V, R), writes (V, R))`` per tick."""
    V, F = params.num_vms, params.max_footprint_pages
    vms = params.vms
    M = np.array([v.guest_pages for v in vms], dtype=np.int64)
    K = np.array([v.kernel_pages for v in vms], dtype=np.int64)  # the image's (merge)
    KR = np.array([v.kernel_reserved_pages for v in vms], dtype=np.int64)  # + metadata
    reserve = M - KR - np.array([v.max_balloon_pages for v in vms], dtype=np.int64)
    C = params.content_space
    # Content of each virtual page at its first touch (core: pool id if shareable, else
    # the zero page 0), and the kernels' contents.
    first_content = np.zeros((V, F), dtype=np.int64)
    kernel_m = np.zeros(C, dtype=np.int64)
    for v, vm in enumerate(vms):
        n = vm.workload.footprint_pages
        _, s = page_layout(vm.workload)
        first_content[v, :n] = np.where(s, params.pool_content(0) + np.arange(n), 0)
        np.add.at(kernel_m, params.kernel_content(v, 0) + np.arange(int(K[v])), 1)
    share_cap = params.ksm_max_sharing
    kernel_total = int(KR.sum())
    use_reserve = params.host_swap_pages >= int((M - KR).sum())
    gen = np.zeros((V, F), dtype=np.int64)  # identity of each page since its last free
    touched = np.zeros((V, F), dtype=bool)  # the current key was referenced
    mergeable = np.zeros((V, F), dtype=bool)  # touched, no counted write yet
    work_m = np.zeros(C, dtype=np.int64)  # mergeable keys per content
    live_prev = np.zeros(V, dtype=np.int64)
    raw_keys: list[list[np.ndarray]] = []
    firsts: list[list[np.ndarray]] = []
    caps = np.zeros(len(draws), dtype=np.int64)
    for t, (live, refs, writes) in enumerate(draws):
        row_keys, row_first = [], []
        n_ref = 0
        for v in range(V):
            lv = int(live[v])
            if lv < live_prev[v]:  # §4.1: pages >= live are freed; they come back new
                sl = slice(lv, int(live_prev[v]))
                gone = mergeable[v, sl]
                np.subtract.at(work_m, first_content[v, sl][gone], 1)
                mergeable[v, sl] = False
                touched[v, sl] = False
                gen[v, sl] += 1
            live_prev[v] = lv
            r = refs[v]
            ok = r >= 0
            u = np.unique(r[ok]).astype(np.int64)
            new = ~touched[v, u]
            touched[v, u] = True
            mergeable[v, u[new]] = True
            np.add.at(work_m, first_content[v, u[new]], 1)
            if u.size <= reserve[v]:  # no overflow possible: every write sticks
                w = np.unique(r[ok & writes[v]]).astype(np.int64)
                w = w[mergeable[v, w]]
                mergeable[v, w] = False
                np.subtract.at(work_m, first_content[v, w], 1)
            row_keys.append((gen[v, u] * V + v) * F + u)
            row_first.append(new)
            n_ref += u.size
        # Each merge is one scanner visit: at most ksm_pages_per_tick shared GPPs per tick.
        saved = min(int(_saving(kernel_m + work_m, share_cap).sum()),
                    int(params.ksm_pages_per_tick) * (t + 1))  # fmt: skip
        a = int(params.host_frames) - kernel_total + saved
        if use_reserve:
            cap = max(a - int(params.host_min_free), min(a, n_ref + int(work_m.sum())))
        else:
            cap = a
        caps[t] = max(cap, 0)
        raw_keys.append(row_keys)
        firsts.append(row_first)
    flat = [k for row in raw_keys for k in row]
    allk = np.concatenate(flat) if flat else np.zeros(0, np.int64)
    uniq, inv = np.unique(allk, return_inverse=True)
    parts = np.split(inv.astype(np.int64), np.cumsum([k.size for k in flat])[:-1])
    it = iter(parts)
    keys = [[next(it) for _ in range(V)] for _ in raw_keys]
    return _Stream(keys, firsts, caps, int(uniq.size))


def bound_of_draws(params: HostParams, draws: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
                   ) -> EpisodeBound:  # fmt: skip
    """The bound of one episode from its workload draws (see :func:`_stream`). On a
    closed-loop host the draws are each VM's batches ``k = 0 .. T − 1`` (the open loop's
    draws at workload tick ``k``), and the bound is the progress bound
    (:func:`closed_loop_bound`)."""
    V = params.num_vms
    costs = params.costs
    s = _stream(params, draws)
    T = len(draws)
    if params.closed_loop:
        return closed_loop_bound(params, s.keys, s.first, s.n_keys)
    merged_keys = [np.concatenate(row) for row in s.keys]
    merged_first = [np.concatenate(row) for row in s.first]
    n_merged = belady_misses(merged_keys, merged_first, s.host_cap, s.n_keys)
    n_vm = 0
    for v, vm in enumerate(params.vms):
        cap = np.full(T, vm.guest_pages - vm.kernel_reserved_pages, dtype=np.int64)
        n_vm += belady_misses([row[v] for row in s.keys], [row[v] for row in s.first], cap,
                              s.n_keys)  # fmt: skip
    compulsory = int(sum(int(f.sum()) for f in merged_first))
    misses = max(n_merged, n_vm)
    if costs.stall_cap:
        stall = capped_stall_us(params, s.first, misses)
    else:
        stall = compulsory * first_touch_us(params) + misses * cheapest_miss_us(params)
    # The reward divides each VM's stall by its vCPUs' time: the most vCPUs bounds them all.
    vcpus = max(vm.vcpus for vm in params.vms)
    cost = min(stall / (V * vcpus * params.tick_us), costs.w_guest_oom, costs.w_host_oom)
    return EpisodeBound(float(stall), float(0.0 - cost), compulsory, misses, n_vm, n_merged, T)


def closed_loop_bound(params: HostParams, keys: list[list[np.ndarray]],
                      first: list[list[np.ndarray]], n_keys: int) -> EpisodeBound:  # fmt: skip
    """The progress bound of a closed-loop episode of ``T = len(keys)`` ticks (module
    docstring, *Closed loop*): per VM ``i``, ``L_i* = min over P in [1, T] of
    max(f_i(P), T − P − 1)``, ``f_i(P)`` the least stall (ticks of the VM's time) of its
    first ``P`` batches alone in its ``M_i − K_i`` GPPs (Belady's MIN with bypass, each
    prefix); ``bound_return = −min(mean_i L_i*, w_guest_oom, w_host_oom)``.

    Args:
        keys: [k][v] the key ids of VM ``v``'s batch ``k`` (as :func:`_stream` gives).
        first: [k][v] whether each is its key's first reference.
        n_keys: the number of key ids.

    ``bound_stall_us`` is ``Σ_i L_i* · vcpus_i · tick_us`` (the time lost, µs),
    ``batches`` the ``P`` of each VM's minimum, ``compulsory`` and ``misses`` the first
    touches and the MIN misses of those ``P_i`` batches."""
    costs = params.costs
    T = len(keys)
    lost, us, comp_all, miss_all, batches = [], 0.0, 0, 0, []
    for v, vm in enumerate(params.vms):
        if T == 0:
            lost.append(0.0)
            batches.append(0)
            continue
        kv, fv = [row[v] for row in keys], [row[v] for row in first]
        cap = np.full(T, vm.guest_pages - vm.kernel_reserved_pages, dtype=np.int64)
        miss = np.cumsum(belady_misses_per_tick(kv, fv, cap, n_keys))  # [P − 1]: f's misses
        comp = np.cumsum([int(f.sum()) for f in fv])
        f_us = comp * first_touch_us(params, v) + miss * cheapest_miss_us(params, v)
        f = f_us / (vm.vcpus * params.tick_us)
        P = np.arange(1, T + 1)
        lb = np.maximum(f, (T - P - 1).astype(np.float64))
        j = int(np.argmin(lb))
        lost.append(float(lb[j]))
        batches.append(int(P[j]))
        us += float(lb[j]) * vm.vcpus * params.tick_us
        comp_all += int(comp[j])
        miss_all += int(miss[j])
    cost = min(float(np.mean(lost)), costs.w_guest_oom, costs.w_host_oom)
    return EpisodeBound(float(us), float(0.0 - cost), comp_all, miss_all, miss_all, 0, T,
                        tuple(batches))  # fmt: skip


def env_bounds(env: Any) -> list[EpisodeBound]:
    """The bound of the episode each env of ``env`` (a ``BalloonVectorEnv`` or
    ``BalloonEnv`` just reset) is about to play, from a copy of its workload."""
    core = env.core
    wl = copy.deepcopy(core.sim.workload)
    B = core.num_envs
    T = int(core.limit.max())
    draws: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(B)]
    for t in range(T):
        d = wl.draw()
        for b in range(B):
            if t < core.limit[b] - core.elapsed[b]:
                draws[b].append((d.live[b].copy(), d.refs[b].copy(), d.writes[b].copy()))
    return [bound_of_draws(core.params, dr) for dr in draws]


def episode_bounds(
    scenario: str,
    seeds: Sequence[int],
    *,
    max_episode_steps: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[EpisodeBound]:
    """The bound of each seed's episode of ``scenario`` (as ``reclaim evaluate`` plays it)."""
    from envs.vector_env import BalloonVectorEnv

    env = BalloonVectorEnv(len(seeds), scenario, max_episode_steps=max_episode_steps,
                           **dict(overrides or {}))  # fmt: skip
    env.reset(seed=[int(s) for s in seeds])
    return env_bounds(env)


__all__ = [
    "EpisodeBound",
    "belady_misses",
    "belady_misses_per_tick",
    "bound_of_draws",
    "capped_stall_us",
    "cheapest_miss_us",
    "closed_loop_bound",
    "env_bounds",
    "episode_bounds",
    "first_touch_us",
]
