"""The oracle: a feasible policy that knows the future, and that no baseline beats.
NOT DEPLOYABLE.

A real host knows neither the guests' future references nor its own future counters.
This policy knows both: it copies the live env (whose workload is exogenous and
counter-based, so a copy replays exactly the references the real run will see) and
plays whole episodes on the copies. What it reads of the simulator (the future
references, the guests' page states) it reads through the read-only
``Simulator.privileged_view()`` (``envs.sim.view``). ``agents.teacher`` turns the
allocation rule into a label for any state.

1. **Hindsight allocation** (:class:`HindsightAllocationPolicy`): every window of
   ``W`` ticks, per VM, the miss-ratio curve of the window's future references (Mattson
   stack distances over the window and the one before it, :func:`stack_distances`; on a
   closed-loop host the VM's next batches from its own cursor and those before it), and
   an exact dynamic program that splits the host's capacity across the VMs
   (:func:`allocate`); the guest sizes become balloon targets, which the simulator moves
   at ``balloon_rate_pages`` per tick.
2. **Best in hindsight** (:class:`OraclePolicy`): at the start of an episode, play the
   allocation plans (:data:`ORACLE_PLANS`) and every registered heuristic (no-balloon
   included) on deep copies of the env, and keep, per env, the actions of the one that
   returned the most. The replay is exact (an env's trajectory depends only on its seed
   and its actions), so by construction the oracle's return is at least every
   heuristic's on every seed.
3. **Hindsight switching** (the rollout algorithm of Bertsekas, Tsitsiklis & Wu 1997,
   "Rollout algorithms for combinatorial optimization", with the candidates as base
   policies): the episode is cut into ``switch_segments`` segments. Along the kept
   plan's trajectory every candidate runs as a *shadow* (it sees every observation, its
   actions are not played), so its estimators are warm; at each segment boundary each
   shadow, copied with the env, plays on to the episode's end, and an env whose plan a
   shadow's continuation beats (return to go, strictly) switches to it. Keeping the plan
   is always one of the options, so switching never lowers the return: the oracle
   still beats every candidate on every seed, and it can follow a different candidate
   in each phase of an episode (e.g. the allocation plan while working sets move, a
   heuristic where the plan's miss counts misjudge the costs).

Cost: one episode per candidate on a copy (7 heuristics + 3 plans), the plans'
look-ahead (``horizon / window`` workload draws per tick each: 1 + 4 + 2), the shadows'
trajectory, the continuations from each boundary (on average half an episode per
candidate and boundary) and the replay: with the default 6 segments about
``10 · (1 + 5/2) + 2 = 37`` simulator steps per env step. ``OraclePolicy.copy_steps``
and ``lookahead_draws`` count them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from agents.base import BalloonTargetPolicy, ObservationView
from envs.env_batch import ACTION_MODES, HOST_FEATURES, VM_FEATURES
from envs.sim.checks import check_int
from envs.sim.core import UNALLOCATED, Simulator

# (window, look-ahead) in ticks: the allocation plans tried (a look-ahead longer than
# the window keeps the memory the next windows need; measured on train scenarios).
ORACLE_PLANS: tuple[tuple[int, int], ...] = ((8, 8), (8, 32), (32, 64))
SWITCH_SEGMENTS = 6  # segments of an episode at whose boundaries the oracle may switch
DP_GRID = 33  # guest sizes per VM in the dynamic program
DP_UNITS = 512  # budget resolution of the dynamic program
_TIME_LEFT = HOST_FEATURES.index("time_left_frac")


# ----------------------------------------------------------------- Mattson / Fenwick
class _Fenwick:
    """A Fenwick (binary indexed) tree of counts over positions ``1 .. n``, vectorized:
    every call takes arrays of positions."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.tree = np.zeros(n + 1, dtype=np.int64)

    def add(self, pos: np.ndarray, val: np.ndarray) -> None:
        pos, val = pos.astype(np.int64).copy(), np.broadcast_to(val, pos.shape).astype(np.int64)
        while pos.size:
            np.add.at(self.tree, pos, val)
            pos = pos + (pos & -pos)
            keep = pos <= self.n
            pos, val = pos[keep], val[keep]

    def prefix(self, pos: np.ndarray) -> np.ndarray:
        """Sum of counts at positions ``1 .. pos`` (0 for ``pos <= 0``)."""
        pos = np.maximum(pos.astype(np.int64), 0)
        out = np.zeros(pos.shape, dtype=np.int64)
        while np.any(pos > 0):
            out += self.tree[pos]
            pos = pos - (pos & -pos)
        return out


def stack_distances(ticks: Sequence[np.ndarray], num_pages: int) -> list[np.ndarray]:
    """LRU stack distances of tick-batched references (Mattson et al. 1970).

    Args:
        ticks: per tick, the distinct pages (ints ``< num_pages``) referenced.
        num_pages: the page space.

    Returns:
        per tick, each reference's distance: the distinct pages referenced since the
        page's last reference, itself included (a cache of ``c`` pages holding the most
        recently used ones hits iff the distance is at most ``c``); ``-1`` on a first
        reference. O(R log T): a Fenwick tree over last-use ticks counts the pages whose
        last use lies in a range.
    """
    T = len(ticks)
    fw = _Fenwick(T)
    last = np.zeros(num_pages, dtype=np.int64)  # last-use tick (1-based), 0: never
    out = []
    for t, u in enumerate(ticks, start=1):
        u = np.asarray(u, dtype=np.int64)
        s = last[u]
        seen = s > 0
        d = np.full(u.size, -1, dtype=np.int64)
        if seen.any():
            d[seen] = fw.prefix(np.full(int(seen.sum()), t - 1)) - fw.prefix(s[seen] - 1)
            fw.add(s[seen], np.array(-1))
        if u.size:
            fw.add(np.full(u.size, t), np.array(1))
        last[u] = t
        out.append(d)
    return out


def miss_curve(dists: Sequence[np.ndarray], sizes: np.ndarray) -> np.ndarray:
    """(len(sizes),) misses of an LRU cache of each size over references with these
    stack distances (first references always miss)."""
    d = np.concatenate(dists) if len(dists) else np.zeros(0, np.int64)
    d = np.sort(np.where(d < 0, np.iinfo(np.int64).max, d))
    return d.size - np.searchsorted(d, sizes, side="right")


def allocate(curves: np.ndarray, sizes: np.ndarray, budget: float) -> np.ndarray:
    """Exact DP: one size per VM minimizing the summed misses with ``Σ sizes <= budget``.

    Args:
        curves: (V, G) misses of each VM at each of its sizes.
        sizes: (V, G) candidate sizes in pages, ascending per VM.
        budget: pages to split.

    Returns (V,) the chosen sizes. Ties go to larger sizes (memory left over stays with
    the guests); when even the smallest sizes exceed the budget, the smallest. Greedy
    marginal allocation is wrong for non-convex curves; the DP is exact on the grid
    (sizes are rounded up to budget units, so the result never exceeds the budget).
    One :class:`AllocationTable` answered once.
    """
    return AllocationTable(curves, sizes).sizes_for(budget)


class AllocationTable:
    """The DP of :func:`allocate` for every budget at once: built once per (curves,
    sizes), it answers any budget with a backtrack of ``V`` steps.

    ``dp[x]`` is the least cost with total weight at most ``x`` budget units, so the table
    up to the largest useful budget (every VM at its largest size, ``Σ_v w[v, G−1]``
    units) holds the table of every smaller budget as a prefix, and a larger budget has
    the same answer as that one (every combination fits). Per VM the candidates are
    compared at once and the first least one is kept: the same choice, bit for bit, as
    comparing them one by one with ``<`` in ascending order.
    """

    def __init__(self, curves: np.ndarray, sizes: np.ndarray) -> None:
        V, G = sizes.shape
        self.sizes = sizes
        self.lo_total = float(sizes[:, 0].sum())
        self.unit = unit = max(1.0, float(sizes[:, -1].sum()) / DP_UNITS)
        w = np.ceil(sizes / unit).astype(np.int64)  # (V, G)
        self.w = w
        self.nb = nb = int(w.max(axis=1).sum())
        # Tie-break toward larger guests, below one miss in total.
        cost = curves.astype(np.float64) - 1e-3 * sizes / max(float(sizes.max()), 1.0) / V
        x = np.arange(nb + 1)
        dp = np.zeros(nb + 1)
        self.choice = np.zeros((V, nb + 1), dtype=np.int64)
        for v in range(V):
            src = x[None, :] - w[v][:, None]  # (G, nb + 1)
            cand = np.where(src >= 0, dp[np.maximum(src, 0)] + cost[v][:, None], np.inf)
            g = np.argmin(cand, axis=0)  # the first least: ties to the smaller index
            self.choice[v] = g
            dp = cand[g, x]
        self.dp = dp

    def sizes_for(self, budget: float) -> np.ndarray:
        """(V,) the sizes :func:`allocate` chooses for ``budget`` pages."""
        if budget < self.lo_total:
            return self.sizes[:, 0].copy()
        b = min(int(budget // self.unit), self.nb)
        if not np.isfinite(self.dp[b]):
            return self.sizes[:, 0].copy()
        V = self.sizes.shape[0]
        out = np.zeros(V, dtype=np.float64)
        for v in range(V - 1, -1, -1):
            g = int(self.choice[v, b])
            out[v] = self.sizes[v, g]
            b -= int(self.w[v, g])
        return out


def guest_size_grid(guest_pages: np.ndarray, kernel_pages: np.ndarray,
                    max_balloon_pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The plans' guest sizes: (V, DP_GRID) sizes from ``M − K − max_balloon`` to ``M − K``
    (ascending), and (V,) the reserve: one grid step of slack above the OOM floor (the
    workload keeps allocating)."""
    lo = guest_pages - kernel_pages - max_balloon_pages
    hi = guest_pages - kernel_pages
    sizes = np.rint(np.linspace(lo, hi, DP_GRID, axis=1)).astype(np.int64)  # (V, G)
    return sizes, (hi - lo) // (DP_GRID - 1)


class HindsightAllocationPolicy(BalloonTargetPolicy):
    """Balloon targets from the hindsight miss-ratio curves of the next window.
    **Not deployable**: it reads the simulator's future references.

    Rule, every ``window`` ticks: the next ``horizon`` ticks of references
    (``PrivilegedView.future_references``, from a copy of the workload); per VM, the
    misses of an LRU guest of each of ``DP_GRID`` sizes between
    ``M_i − K_i − max_balloon_i`` and ``M_i − K_i`` (stack distances over the previous
    window and the look-ahead, misses counted in the look-ahead); on a closed-loop host
    (docs/model.md §13.5) the windows count each VM's progress, not ticks: its next
    ``horizon`` batches from its cursor (``PrivilegedView.progress``) and the ``window``
    batches before it, what it will issue next however long it takes; split ``frac · (H −
    host_min_free + KSM savings now) − ΣK`` pages across the VMs with :func:`allocate`;
    target ``M_i − K_i − size_i``.

    Args:
        env: a ReclaimGym env (``env.core.sim``).
        window: ticks per window (8-32).
        frac: fraction of the host capacity given to the guests.
        horizon: look-ahead ticks of the curves (default: the window).
    """

    name = "hindsight-allocation"
    host_info_keys = ("sharing_saved_frames",)
    info_keys = ("guest_used_pages", "guest_cache_pages", "guest_swap_used")

    def __init__(self, env: Any, window: int = 16, frac: float = 1.0,
                 horizon: int | None = None) -> None:  # fmt: skip
        if not 1 <= int(window) <= 1024:
            raise ValueError(f"window must be in [1, 1024] ticks, got {window!r}")
        horizon = int(window) if horizon is None else int(horizon)
        if not int(window) <= horizon <= 4096:
            raise ValueError(f"horizon must be in [window, 4096] ticks, got {horizon!r}")
        self.horizon = horizon
        if not 0.0 < float(frac) <= 1.0:
            raise ValueError(f"frac must be in (0, 1], got {frac!r}")
        super().__init__(env)
        self.period = int(window)
        self.frac = float(frac)
        self.core = _core(env)
        # The kernel's GPPs with its page metadata (v2, docs/model.md §13.2), as the
        # privileged view reports them: what a guest can never give to its workload.
        self.K = np.array([v.kernel_reserved_pages for v in self.params.vms], dtype=np.int64)
        self.draws = 0  # workload ticks drawn for look-ahead
        self.sizes, self.reserve = guest_size_grid(self.M, self.K, self.maxb)
        self.swap = np.array([v.guest_swap_pages for v in self.params.vms], dtype=np.int64)
        self._past: list[list[list[np.ndarray]]] = [[[] for _ in range(self.num_vms)]
                                                    for _ in range(self.num_envs)]  # fmt: skip
        # Closed loop: per VM the batches the last decision read (its history, then its
        # look-ahead), and the index in the VM's stream of the first of them.
        self._seen: list[list[list[np.ndarray]]] = [[[] for _ in range(self.num_vms)]
                                                    for _ in range(self.num_envs)]  # fmt: skip
        self._seen_at = np.zeros((self.num_envs, self.num_vms), dtype=np.int64)

    def reset_envs(self, mask: np.ndarray) -> None:
        for b in np.nonzero(mask)[0]:
            self._past[b] = [[] for _ in range(self.num_vms)]
            self._seen[b] = [[] for _ in range(self.num_vms)]
            self._seen_at[b] = 0

    def _history(self, b: int, v: int, cursor: int) -> list[np.ndarray]:
        """Closed loop: VM ``v``'s batches ``[cursor − W, cursor)`` of env ``b``, those of
        them the last decision read (all of them while decisions are at most ``h`` ticks
        apart: a VM issues at most one batch a tick; none if the VM went past them)."""
        at, seen = int(self._seen_at[b, v]), self._seen[b][v]
        if cursor > at + len(seen):
            return []
        return seen[max(cursor - self.period, at) - at : cursor - at]

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        view = self.core.sim.privileged_view()
        # Closed loop (docs/model.md §13.5): each VM's window is its own progress, the next
        # ``horizon`` batches from its cursor and the ``window`` batches before it.
        cursor = view.progress() if self.params.closed_loop else None
        refs = view.future_references(self.horizon)  # (horizon, B, V, R), from the cursors
        B, V, W = self.num_envs, self.num_vms, self.period
        fut: list[list[list[np.ndarray]]] = [[[] for _ in range(V)] for _ in range(B)]
        for d in refs:
            for b in range(B):
                for v in range(V):
                    r = d[b, v]
                    fut[b][v].append(np.unique(r[r >= 0]))
        self.draws += self.horizon
        cap = (self.H - self.params.host_min_free
               + obs.host_gauge("sharing_saved_frames").astype(np.float64))  # fmt: skip
        budget = self.frac * cap - float(self.K.sum())
        out = np.zeros((B, V))
        F = self.params.max_footprint_pages
        # A guest can evict an anonymous page only to its swap: the anonymous pages it
        # holds beyond its free swap slots must stay in its memory (a balloon that
        # takes them makes it OOM-kill; a swapless guest is the extreme case). Sizes
        # below that floor are infeasible, whatever their misses.
        # The look-ahead's first touches of anonymous pages count too: they need memory.
        anon = obs.gauge("guest_used_pages") - obs.gauge("guest_cache_pages")  # (B, V)
        swap_free = self.swap - obs.gauge("guest_swap_used")
        for b in np.nonzero(due)[0]:
            for v in range(V):
                pages = np.unique(np.concatenate(fut[b][v])) if fut[b][v] else np.zeros(0, int)
                vs = view.vstate[b, v, pages]
                anon[b, v] += int(np.count_nonzero(~view.is_file[v, pages] & (vs == UNALLOCATED)))
        floor = np.maximum(anon - swap_free, 0) + self.reserve  # (B, V)
        for b in np.nonzero(due)[0]:
            if cursor is not None:
                self._past[b] = [self._history(b, v, int(cursor[b, v])) for v in range(V)]
            curves = np.zeros(self.sizes.shape, dtype=np.int64)
            for v in range(V):
                past = self._past[b][v]
                dist = stack_distances(past + fut[b][v], F)[len(past) :]
                curves[v] = miss_curve(dist, self.sizes[v])
            infeasible = self.sizes < np.minimum(floor[b], self.sizes[:, -1])[:, None]
            curves[infeasible] = np.iinfo(np.int32).max  # never chosen while a size fits
            size = allocate(curves, self.sizes, float(budget[b]))
            out[b] = self.M - self.K - size
            if cursor is None:
                self._past[b] = [f[:W] for f in fut[b]]
            else:
                self._seen[b] = [p + f for p, f in zip(self._past[b], fut[b], strict=True)]
                self._seen_at[b] = cursor[b] - np.array([len(p) for p in self._past[b]])
        return out


# ------------------------------------------------------------------ best in hindsight
def _core(env: Any) -> Any:
    core = getattr(env, "core", None)
    if not isinstance(getattr(core, "sim", None), Simulator):
        raise ValueError(
            "the oracle reads the simulator: it needs a ReclaimGym env with env.core.sim "
            f"(BalloonVectorEnv or BalloonEnv), got {type(env).__name__}"
        )
    return core


def copy_env(env: Any) -> Any:
    """A deep copy of a ReclaimGym env that steps exactly as ``env`` would (``EnvBatch``
    re-takes its observation views when copied)."""
    return copy.deepcopy(env)


def plan_candidates() -> dict[str, Callable[[Any], Any]]:
    """name -> factory ``(env) -> policy`` of the allocation plans (:data:`ORACLE_PLANS`).
    The registry (``agents.policies``) adds every registered heuristic."""
    out: dict[str, Callable[[Any], Any]] = {}
    for w, h in ORACLE_PLANS:
        out[f"alloc-w{w}-h{h}"] = lambda env, w=w, h=h: HindsightAllocationPolicy(env, w, 1.0, h)
    return out


class OraclePolicy:
    """The best of the hindsight allocation plans and every heuristic, chosen per env
    with hindsight on copies of the env. **Not deployable** (module docstring).

    ``chosen`` holds, per env, the candidates replayed in its current episode (``a`` or,
    after switches, ``a>b@t>...``: candidate ``b`` from step ``t`` on);
    ``candidate_returns`` each candidate's whole-episode return per env;
    ``plan_returns`` the return of the replayed plan per env; ``copy_steps`` the env
    steps played on copies and ``lookahead_draws`` the workload ticks drawn by the plans.

    Args:
        env: a ``BalloonVectorEnv`` or ``BalloonEnv`` (it needs ``env.core.sim``).
        candidates: name -> factory; default :func:`plan_candidates` (the registry's
            ``oracle`` adds every registered heuristic, no-balloon included).
        switch_segments: segments of an episode for hindsight switching (module
            docstring, 3.); 1 keeps the best whole-episode candidate.
    """

    name = "oracle"
    action_modes: tuple[str, ...] = ACTION_MODES

    def __init__(self, env: Any,
                 candidates: Mapping[str, Callable[[Any], Any]] | None = None,
                 switch_segments: int = SWITCH_SEGMENTS) -> None:  # fmt: skip
        check_int("switch_segments", switch_segments, 1, 64)
        self.switch_segments = switch_segments
        config = getattr(env, "config", None)
        if config is None or not hasattr(config, "params"):
            raise ValueError(f"the oracle needs a ReclaimGym env, got {type(env).__name__}")
        self.core = _core(env)
        self.env = env
        self.single = not hasattr(env, "single_action_space")
        self.num_envs = 1 if self.single else int(env.num_envs)
        self.num_vms = config.params.num_vms
        self.candidates = dict(candidates or plan_candidates())
        self._time_col = self.num_vms * len(VM_FEATURES) + _TIME_LEFT
        self._seed: int | None = None
        self._plan: list[np.ndarray | None] = [None] * self.num_envs
        self._k = np.zeros(self.num_envs, dtype=np.int64)
        self.chosen: list[str | None] = [None] * self.num_envs
        self.candidate_returns: dict[str, np.ndarray] = {}
        self.plan_returns = np.zeros(self.num_envs)
        self.copy_steps = 0
        self.lookahead_draws = 0
        self.real_steps = 0

    def reset(self, seed: int | None = None) -> None:
        self._seed = seed
        self._plan = [None] * self.num_envs
        self._k[:] = 0

    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        o = np.asarray(obs)
        o2 = o[None] if self.single else o
        new = o2[:, self._time_col] >= 1.0
        if new.any():
            self._search(obs, info, new)
        rows = []
        for b in range(self.num_envs):
            plan = self._plan[b]
            assert plan is not None
            rows.append(plan[min(int(self._k[b]), plan.shape[0] - 1)])
        self._k += 1
        self.real_steps += 1
        a = np.stack(rows)
        return a[0] if self.single else a

    def _search(self, obs: np.ndarray, info: Mapping[str, Any], new: np.ndarray) -> None:
        """Play every candidate on a copy of the env until the ``new`` envs' episodes end;
        keep, per new env, the actions of the best one; then switch in hindsight."""
        best = np.full(self.num_envs, -np.inf)
        results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, factory in self.candidates.items():
            env = copy_env(self.env)
            pol = factory(env)
            pol.reset(self._seed)
            results[name] = self._play(env, pol, obs, info, new)
            self.lookahead_draws += int(getattr(pol, "draws", 0))
        self.candidate_returns = {n: r[1].sum(axis=0) for n, r in results.items()}
        rewards: list[np.ndarray] = [np.zeros(0)] * self.num_envs
        for b in np.nonzero(new)[0]:
            for name, (actions, rew, length) in results.items():
                ret = float(rew[: length[b], b].sum())
                if ret > best[b]:  # first best wins ties
                    best[b] = ret
                    self._plan[b] = actions[: length[b], b]
                    rewards[b] = rew[: length[b], b]
                    self.chosen[b] = name
            self._k[b] = 0
        if self.switch_segments > 1 and new.all():
            self._switch(obs, info, rewards)
        for b in np.nonzero(new)[0]:
            self.plan_returns[b] = float(rewards[b].sum())

    def _switch(self, obs: np.ndarray, info: Mapping[str, Any], rewards: list[np.ndarray]) -> None:
        """Hindsight switching (module docstring, 3.): walk the plans' trajectory on a
        copy with every candidate as a shadow; at each boundary let each shadow's copy
        play on, and switch the envs whose return to go it beats."""
        B = self.num_envs
        driver = copy_env(self.env)
        shadows = {}
        for name, factory in self.candidates.items():
            pol = factory(driver)
            pol.reset(self._seed)
            shadows[name] = pol
        L = max(len(r) for r in rewards)
        seg = -(-L // self.switch_segments)
        running = np.ones(B, dtype=bool)
        for t in range(L):
            if t > 0 and t % seg == 0:
                for name, pol in shadows.items():
                    env_c, pol_c = copy.deepcopy((driver, pol))
                    acts, rew, length = self._play(env_c, pol_c, obs, info, running)
                    for b in np.nonzero(running)[0]:
                        togo, cur = float(rew[: length[b], b].sum()), float(rewards[b][t:].sum())
                        if togo > cur + 1e-12 * max(1.0, abs(cur)):
                            plan = self._plan[b]
                            assert plan is not None
                            self._plan[b] = np.concatenate([plan[:t], acts[: length[b], b]])
                            rewards[b] = np.concatenate([rewards[b][:t], rew[: length[b], b]])
                            self.chosen[b] = f"{self.chosen[b]}>{name}@{t}"
            for pol in shadows.values():
                pol.act(obs, info)
            rows = []
            for b in range(B):
                plan = self._plan[b]
                assert plan is not None
                rows.append(plan[min(t, plan.shape[0] - 1)])
            a = np.stack(rows)
            obs, _r, term, trunc, info = driver.step(a[0] if self.single else a)
            self.copy_steps += 1
            running &= ~(np.atleast_1d(term) | np.atleast_1d(trunc))
            if not running.any():
                break

    def _play(self, env: Any, pol: Any, obs: np.ndarray, info: Mapping[str, Any],
              new: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """(L, B, V) actions, (L, B) rewards (0 once an env's episode ended) and (B,)
        lengths of ``pol`` on ``env`` until every ``new`` env's episode ended."""
        B = self.num_envs
        running = new.copy()
        length = np.zeros(B, dtype=np.int64)
        acts, rews = [], []
        while running.any():
            a = pol.act(obs, info)
            obs, r, term, trunc, info = env.step(a)
            self.copy_steps += 1
            a2 = np.asarray(a)[None] if self.single else np.asarray(a)
            acts.append(a2.copy())
            r2 = np.atleast_1d(np.asarray(r, dtype=np.float64))
            rews.append(np.where(running, r2, 0.0))
            length += running
            running &= ~(np.atleast_1d(term) | np.atleast_1d(trunc))
        return np.stack(acts), np.stack(rews), length


__all__ = [
    "DP_GRID",
    "ORACLE_PLANS",
    "SWITCH_SEGMENTS",
    "AllocationTable",
    "HindsightAllocationPolicy",
    "OraclePolicy",
    "allocate",
    "copy_env",
    "guest_size_grid",
    "plan_candidates",
    "miss_curve",
    "stack_distances",
]
