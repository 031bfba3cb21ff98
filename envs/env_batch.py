"""The one copy of the env logic shared by every adapter, batched over ``B`` envs.

:class:`EnvBatch` turns agent actions into balloon targets, steps the vectorized
:class:`~envs.sim.core.Simulator`, and turns its counters into observations, rewards,
episode ends and info. The single Gymnasium env (``envs.balloon_env``) is this with
``B = 1``; the native vector env (``envs.vector_env``) and the Stable-Baselines3 VecEnv
(``agents.learners.sb3.vec_env``) only add their API's autoreset and info conventions, all through
:meth:`EnvBatch.autoreset`. None of them holds any dynamics: those live in the simulator
core alone; the reward is :func:`envs.reward.step_reward`.

The observation, action and reward layouts are specified in the docstring of
:class:`envs.balloon_env.BalloonEnv`; :func:`observation_names` names every index.

Imports only numpy, the standard library and the simulator (gymnasium is imported by
the adapters, not here, so that this module stays cheap to import).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs import render
from envs.data import make_simulator
from envs.reward import step_reward
from envs.scenarios import DEFAULT_SCENARIO, get_scenario
from envs.sim.checks import check_choice, check_int, check_number
from envs.sim.core import Simulator
from envs.sim.counters import HOST_FIELDS, HOST_INDEX, VM_EVENTS, VM_FIELDS, VM_INDEX
from envs.sim.params import CostParams, HostParams

ACTION_MODES = ("absolute", "delta", "discrete")
# Action modes with an explicit hold flag per VM (``Box(-1, 1, (2·V,))``, BalloonEnv's
# docstring). Kept out of ACTION_MODES: the heuristics, the oracle and the learners speak
# the three modes above; a policy that holds is built for this mode on purpose.
HOLD_ACTION_MODES = ("absolute-hold",)
ALL_ACTION_MODES = ACTION_MODES + HOLD_ACTION_MODES
# Options of the env itself (the rest of the keyword arguments are parameter overrides).
ENV_OPTIONS = (
    "max_episode_steps",
    "action_mode",
    "render_mode",
    "obs_version",
    "decision_period_s",
    "hold_deadband",
)
OBS_VERSIONS = (1, 2)
RENDER_MODES = ("ansi", "rgb_array")
HOST_OVERRIDES = tuple(f.name for f in dataclasses.fields(HostParams))
COST_OVERRIDES = tuple(f.name for f in dataclasses.fields(CostParams))

# Per-VM observation features, in order (see BalloonEnv's docstring for units and scales).
VM_FEATURES: tuple[str, ...] = (
    "balloon_frac",
    "balloon_target_frac",
    "guest_free_frac",
    "guest_available_frac",
    "guest_cache_frac",
    "major_fault_rate",
    "minor_fault_rate",
    "guest_swapin_rate",
    "guest_swapout_rate",
    "host_swapped_frac",
    "host_swapin_rate",
    "ws_estimate",
    "stall_frac",
)
HOST_FEATURES: tuple[str, ...] = (
    "host_free_frac",
    "host_swap_used_frac",
    "shared_frames_frac",
    "time_left_frac",
)
# Observation v2 appends these after the whole v1 vector (so every v1 index keeps its
# meaning in v2): one block of VM_FEATURES_V2 per VM, then HOST_FEATURES_V2. They are the
# host-visible gauges the registered heuristics read (agents/heuristics.py, info_keys /
# host_info_keys) that v1 lacks, plus the guest's swap capacity (0: no swap) and its OOM
# kills; units and scales in BalloonEnv's docstring.
VM_FEATURES_V2: tuple[str, ...] = (
    "guest_used_frac",
    "committed_frac",
    "guest_swap_used_frac",
    "guest_swap_capacity_frac",
    "host_resident_frac",
    "host_shared_frac",
    "guest_oom_kill",
)
HOST_FEATURES_V2: tuple[str, ...] = ("ksm_saved_frac",)
_NE = len(VM_EVENTS)


def check_obs_version(version: object) -> int:
    """``version`` as an int of OBS_VERSIONS; ValueError otherwise."""
    if isinstance(version, (bool, np.bool_)) or not isinstance(version, (int, np.integer)):
        raise ValueError(f"obs_version must be one of {OBS_VERSIONS}, got {version!r}")
    check_choice("obs_version", version, OBS_VERSIONS)
    return int(version)


def observation_names(num_vms: int, version: int = 1) -> list[str]:
    """The name of every observation index: ``vm{i}/{feature}`` for each VM, then
    ``host/{feature}``; in version 2 the v1 names, then ``vm{i}/{feature}`` of
    ``VM_FEATURES_V2`` for each VM, then ``host/{feature}`` of ``HOST_FEATURES_V2``."""
    check_int("num_vms", num_vms, 1)
    check_obs_version(version)
    names = [f"vm{i}/{f}" for i in range(num_vms) for f in VM_FEATURES]
    names += [f"host/{f}" for f in HOST_FEATURES]
    if version == 2:
        names += [f"vm{i}/{f}" for i in range(num_vms) for f in VM_FEATURES_V2]
        names += [f"host/{f}" for f in HOST_FEATURES_V2]
    return names


def observation_size(num_vms: int, version: int = 1) -> int:
    n = num_vms * len(VM_FEATURES) + len(HOST_FEATURES)
    if check_obs_version(version) == 2:
        n += num_vms * len(VM_FEATURES_V2) + len(HOST_FEATURES_V2)
    return n


def action_size(num_vms: int, action_mode: str) -> int:
    """Actions per env: one per VM, two per VM (target, hold) in ``absolute-hold``."""
    return 2 * num_vms if action_mode in HOLD_ACTION_MODES else num_vms


def ticks_per_decision(decision_period_s: float | None, tick_ms: int) -> int:
    """``k``: the ticks of one env step, ``decision_period_s · 1000 / tick_ms``.

    None means one tick. ValueError unless the period is a positive whole multiple of the
    tick (``tick_ms / 1000`` s)."""
    if decision_period_s is None:
        return 1
    tick_s = tick_ms / 1000.0
    p = check_number("decision_period_s", decision_period_s, tick_s)
    k = round(p * 1000.0 / tick_ms)
    if abs(k * tick_ms - p * 1000.0) > 1e-6 * tick_ms:
        raise ValueError(
            f"decision_period_s must be a positive whole multiple of the tick ({tick_s} s: "
            f"{tick_s}, {2 * tick_s}, {3 * tick_s}, ...), got {decision_period_s!r}"
        )
    return int(k)


@dataclass(frozen=True)
class EnvConfig:
    """A fully resolved env configuration: what a record needs to rebuild the env."""

    scenario_id: str
    params: HostParams  # the scenario's params with the overrides applied
    overrides: Mapping[str, Any]  # HostParams / CostParams overrides as given
    max_episode_steps: int  # episode length in ticks (= steps when one tick per step)
    action_mode: str
    obs_version: int = 1
    decision_period_s: float | None = None  # seconds per step; None: one tick
    hold_deadband: float = 0.0  # fraction of max_balloon_pages; 0: off

    @property
    def num_vms(self) -> int:
        return self.params.num_vms

    @property
    def ticks_per_step(self) -> int:
        """``k``: ticks per env step (one decision)."""
        return ticks_per_decision(self.decision_period_s, self.params.tick_ms)

    @property
    def max_decisions(self) -> int:
        """Steps (decisions) in a full-length episode: ``ceil(max_episode_steps / k)``."""
        return -(-self.max_episode_steps // self.ticks_per_step)


def make_config(
    scenario: str = DEFAULT_SCENARIO,
    *,
    max_episode_steps: int | None = None,
    action_mode: str = "absolute",
    obs_version: int = 1,
    decision_period_s: float | None = None,
    hold_deadband: float = 0.0,
    **overrides: Any,
) -> EnvConfig:
    """Resolve a scenario id, env options and parameter overrides into an EnvConfig.

    Env options: ``max_episode_steps`` (ticks), ``action_mode``, ``obs_version`` (1 or
    2), ``decision_period_s`` (None: one tick per step; else a positive multiple of the
    tick) and ``hold_deadband`` (in [0, 1); 0: off; absolute action modes only).

    ``overrides`` are :class:`HostParams` field names (``host_policy="lru"``,
    ``ksm_pages_per_tick=0``, ...) or :class:`CostParams` field names (latencies and the
    reward weights ``w_guest_oom`` / ``w_host_oom``), applied with ``dataclasses.replace``
    (so the params validate them). Unknown keys raise ``ValueError`` listing the allowed
    ones.
    """
    if not isinstance(scenario, str):
        raise ValueError(f"scenario must be a scenario id (str), got {scenario!r}")
    sc = get_scenario(scenario)  # ValueError listing valid ids
    unknown = sorted(k for k in overrides if k not in HOST_OVERRIDES and k not in COST_OVERRIDES)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown}; allowed: env options {list(ENV_OPTIONS)}, "
            f"HostParams fields {list(HOST_OVERRIDES)}, CostParams fields {list(COST_OVERRIDES)}"
        )
    if action_mode not in ALL_ACTION_MODES:
        raise ValueError(f"action_mode must be one of {ALL_ACTION_MODES}, got {action_mode!r}")
    obs_version = check_obs_version(obs_version)
    deadband = check_number("hold_deadband", hold_deadband, 0.0)
    if deadband >= 1.0:
        raise ValueError(f"hold_deadband must be a number in [0, 1), got {hold_deadband!r}")
    if deadband > 0 and action_mode not in ("absolute", "absolute-hold"):
        raise ValueError(
            f"hold_deadband applies to absolute targets: it needs action_mode 'absolute' or "
            f"'absolute-hold', got {action_mode!r} (reclaim/Balloon-v2 sets hold_deadband="
            f"{deadband:g} by default: pass hold_deadband=0 with this action mode)"
        )
    if decision_period_s is not None:
        decision_period_s = check_number("decision_period_s", decision_period_s)
    host_kw = {k: v for k, v in overrides.items() if k in HOST_OVERRIDES}
    cost_kw = {k: v for k, v in overrides.items() if k in COST_OVERRIDES}
    params = sc.params
    if cost_kw:
        base = host_kw.get("costs", params.costs)
        host_kw["costs"] = dataclasses.replace(base, **cost_kw)
    if host_kw:
        params = dataclasses.replace(params, **host_kw)
    steps = sc.max_episode_steps if max_episode_steps is None else max_episode_steps
    check_int("max_episode_steps", steps, 1)
    ticks_per_decision(decision_period_s, params.tick_ms)  # ValueError naming the field
    return EnvConfig(
        scenario_id=scenario,
        params=params,
        overrides=dict(overrides),
        max_episode_steps=int(steps),
        action_mode=action_mode,
        obs_version=obs_version,
        decision_period_s=decision_period_s,
        hold_deadband=deadband,
    )


def check_seed(seed: object) -> int | None:
    """``seed`` as a Python int (numpy integers too) or None; ValueError otherwise."""
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
    ):
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
    return None if seed is None else int(seed)


def check_render_mode(render_mode: str | None) -> None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")


def add_batch_info(
    infos: dict[str, Any], part: Mapping[str, Any], mask: np.ndarray
) -> dict[str, Any]:
    """Merge batched info ``part`` (leaves (B, ...) arrays) into vector ``infos`` for the
    envs in ``mask``, with Gymnasium's ``_key`` masks: the vectorized equivalent of
    ``VectorEnv._add_info`` applied env by env, so a native vector env's info equals a
    ``SyncVectorEnv``'s. ``infos`` is updated in place and returned; an empty ``mask``
    adds nothing (no env has these keys)."""
    if not mask.any():
        return infos
    for key, value in part.items():
        if isinstance(value, Mapping):
            arr = add_batch_info(infos.get(key, {}), value, mask)
        else:
            arr = infos.get(key)
            if arr is None:
                arr = np.zeros_like(value)
            arr[mask] = value[mask]
        m = infos.get(f"_{key}")
        if m is None:
            m = np.zeros(mask.shape[0], dtype=np.bool_)
        m |= mask
        infos[key], infos[f"_{key}"] = arr, m
    return infos


def info_row(part: Mapping[str, Any], b: int) -> dict[str, Any]:
    """The single-env info of env ``b`` from batched info (an :class:`EnvBatch`'s, or a
    vector env's, or an ``episode_summary`` in either), as the single env returns it:
    Gymnasium's ``_key`` masks dropped, (B,) leaves Python scalars, (B, ...) leaves
    fresh arrays."""
    out: dict[str, Any] = {}
    for key, value in part.items():
        if key.startswith("_"):
            continue
        if isinstance(value, Mapping):
            out[key] = info_row(value, b)
        elif value.ndim == 1:
            out[key] = value[b].item()
        else:
            out[key] = value[b].copy()
    return out


@dataclass
class StepOut:
    """One batched step. ``obs`` is a fresh array; ``info`` leaves are fresh arrays with a
    leading B axis; ``summary`` holds every env's episode statistics so far when any env
    is done (meaningful where ``done``), else it is empty."""

    obs: np.ndarray  # (B, D) float32
    reward: np.ndarray  # (B,) float64
    terminated: np.ndarray  # (B,) bool
    truncated: np.ndarray  # (B,) bool
    info: dict[str, Any]
    summary: dict[str, Any]

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


class EnvBatch:
    """B envs of one configuration over one :class:`Simulator`: the batched env logic.

    Adapters hold one as ``env.core`` (so ``env.core.sim`` is the simulator).

    Args:
        config: the resolved configuration.
        num_envs: ``B``.
        max_episode_steps: per-env episode lengths in ticks (int or B ints); default the
            config's. With ``config.ticks_per_step = k > 1`` one :meth:`step` runs ``k``
            ticks (see :meth:`step`), and an episode has ``ceil(length / k)`` steps.

    Seeding: each env owns a ``np.random.Generator``. ``reset`` with ``seeds[b]`` not None
    reseeds it with ``default_rng(seeds[b])`` and runs the episode with simulator seed
    ``seeds[b]``; with None, the episode's simulator seed is drawn from the env's
    generator (fresh OS entropy if it was never seeded). So ``reset(seed=s)`` followed by
    autoresets is reproducible, and a single env with seed ``s + i`` equals env ``i`` of
    a batch reset with seeds ``s + i``.
    """

    def __init__(
        self,
        config: EnvConfig,
        num_envs: int,
        max_episode_steps: int | Sequence[int] | None = None,
    ) -> None:
        self.config = config
        prm = config.params
        self.params = prm
        self.sim: Simulator = make_simulator(prm, num_envs)
        self.num_envs = B = num_envs
        self.num_vms = V = prm.num_vms
        self.obs_version = config.obs_version
        self.obs_size = observation_size(V, config.obs_version)
        self.ticks_per_step = config.ticks_per_step  # k
        self.action_size = action_size(V, config.action_mode)
        if max_episode_steps is None:
            max_episode_steps = config.max_episode_steps
        if isinstance(max_episode_steps, (int, np.integer)) and not isinstance(
            max_episode_steps, bool
        ):
            max_episode_steps = [int(max_episode_steps)] * B
        limits = list(max_episode_steps)
        if len(limits) != B:
            raise ValueError(
                f"max_episode_steps must be an int or one int per env ({B}), got {len(limits)}"
            )
        for s in limits:
            check_int("max_episode_steps", s, 1)
        self.limit = np.array(limits, dtype=np.int64)  # (B,)
        self.elapsed = np.zeros(B, dtype=np.int64)  # (B,) ticks in the current episode
        self.rngs: list[np.random.Generator | None] = [None] * B
        self.episode_seed = [0] * B  # simulator seed of each env's current episode

        # Per-VM constants (V,) float64 for the observation scales.
        self._M = np.array([v.guest_pages for v in prm.vms], dtype=np.float64)
        self._maxb = np.array([v.max_balloon_pages for v in prm.vms], dtype=np.float64)
        refs = np.array([max(1, v.workload.max_refs_per_tick) for v in prm.vms], np.float64)
        self._refs = refs
        self._out_scale = refs + max(1, prm.balloon_rate_pages)
        self._ws = float(max(1, prm.ws_sample_pages))
        self._tick_us = prm.tick_us
        self._rate = prm.balloon_rate_pages
        # Observation v2 scales: guest swap capacity (V,) pages; the dead-band in pages.
        self._swap = np.array([v.guest_swap_pages for v in prm.vms], dtype=np.float64)
        self._deadband = config.hold_deadband * self._maxb  # (V,)

        # Counters of the last tick (the reset values after a reset), (B, V, NV) / (B, NH).
        self.vm = np.zeros((B, V, len(VM_FIELDS)), dtype=np.int64)
        self.host = np.zeros((B, len(HOST_FIELDS)), dtype=np.int64)
        self._reset_vm, self._reset_host = reset_counters(prm)
        # Episode accumulators.
        self.ep_return = np.zeros(B, dtype=np.float64)  # (B,)
        self.ep_events = np.zeros((B, V, _NE), dtype=np.int64)  # (B, V, NE)
        self.ep_stall = np.zeros((B, V), dtype=np.float64)  # (B, V) µs
        self.stall_frac = np.zeros((B, V), dtype=np.float64)  # (B, V) of the last tick
        # Output buffer.
        self._obs = np.zeros((B, self.obs_size), dtype=np.float32)  # (B, D)
        self._take_obs_views()
        self._seeded = np.zeros(B, dtype=bool)

    def _take_obs_views(self) -> None:
        """``_vm_obs`` (B, V, F) and ``_host_obs`` (B, H): views into ``_obs``; in v2 also
        ``_vm_obs2`` (B, V, F2) and ``_host_obs2`` (B, H2)."""
        B, V, nf, nh = self.num_envs, self.num_vms, len(VM_FEATURES), len(HOST_FEATURES)
        self._vm_obs = self._obs[:, : V * nf].reshape(B, V, nf)
        self._host_obs = self._obs[:, V * nf : V * nf + nh]
        if self.obs_version == 2:
            lo, nf2 = V * nf + nh, len(VM_FEATURES_V2)
            self._vm_obs2 = self._obs[:, lo : lo + V * nf2].reshape(B, V, nf2)
            self._host_obs2 = self._obs[:, lo + V * nf2 :]

    _OBS_VIEWS = ("_vm_obs", "_host_obs", "_vm_obs2", "_host_obs2")

    # A copy or pickle holds ``_obs`` but not its views (numpy would copy them as separate
    # arrays, and the copy's observations would stop changing): they are re-taken.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._OBS_VIEWS:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._take_obs_views()

    # ------------------------------------------------------------------ reset
    def reset(self, seeds: Sequence[int | None], mask: np.ndarray | None = None) -> np.ndarray:
        """Start new episodes in the envs of ``mask`` (all if None); returns the fresh
        (B, D) observation of every env (unmasked rows: their current observation)."""
        B = self.num_envs
        if len(seeds) != B:
            raise ValueError(f"seeds must have one entry per env ({B}), got {len(seeds)}")
        mask = np.ones(B, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        sim_seeds: list[int | None] = [None] * B
        for b in np.nonzero(mask)[0]:
            s = seeds[b]
            check_seed(s)
            if s is not None:
                self.rngs[b] = np.random.default_rng(int(s))
                episode = int(s)
            else:
                if self.rngs[b] is None:
                    self.rngs[b] = np.random.default_rng()
                episode = int(self.rngs[b].integers(0, 2**63 - 1))
            self.episode_seed[b] = sim_seeds[b] = episode
        self.sim.reset(sim_seeds, env_mask=mask)
        self.vm[mask] = self._reset_vm
        self.host[mask] = self._reset_host
        self.elapsed[mask] = 0
        self.ep_return[mask] = 0.0
        self.ep_events[mask] = 0
        self.ep_stall[mask] = 0.0
        self.stall_frac[mask] = 0.0  # tick 0: no events, no stall
        self._seeded |= mask
        self._observe(mask)
        return self._obs.copy()

    def reset_info(self) -> dict[str, Any]:
        """Batched info of a reset: the counters at tick 0 (events zero)."""
        return {"vm": self._vm_info(self.vm), "host": self._host_info(self.host)}

    def autoreset(self, obs: np.ndarray, mask: np.ndarray) -> dict[str, Any] | None:
        """Restart the episodes of the envs in ``mask``, the one autoreset of every adapter.

        Each restarted env draws its episode's seed from its own generator (see the class
        docstring). Their first observations overwrite ``obs[mask]`` (a (B, D) array the
        caller owns) in place. Returns the batched :meth:`reset_info` (meaningful where
        ``mask``), or None when ``mask`` selects no env (nothing is reset)."""
        if not mask.any():
            return None
        obs[mask] = self.reset([None] * self.num_envs, mask)[mask]
        return self.reset_info()

    # ---------------------------------------------------------------- actions
    def check_actions(self, actions: Any) -> np.ndarray:
        """Validate (B, A) actions (``A`` = :attr:`action_size`): the array to hand to
        :meth:`targets` each tick.

        Raises ValueError on a wrong shape or dtype, NaN/inf, or (discrete) a value not in
        {0, 1, 2}."""
        B, A = self.num_envs, self.action_size
        a = np.asarray(actions)
        if a.shape != (B, A):
            want = f"({A},)" if B == 1 else f"({B}, {A})"
            per = "two per VM: targets, then hold flags" if A != self.num_vms else "one per VM"
            raise ValueError(f"action must have shape {want} ({per}), got {a.shape}")
        if self.config.action_mode == "discrete":
            if not np.issubdtype(a.dtype, np.integer):
                raise ValueError(
                    f"discrete actions must be integers in {{0, 1, 2}}, got dtype {a.dtype}"
                )
            if ((a < 0) | (a > 2)).any():
                raise ValueError(
                    f"discrete actions must be in {{0, 1, 2}} (deflate/hold/inflate), got {a}"
                )
            return a
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"actions must be real numbers in [-1, 1], got dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise ValueError(f"actions must be finite (no NaN/inf), got {a}")
        return a

    def held_targets(self, actions: np.ndarray) -> np.ndarray:
        """(B, V) int64 balloon targets of validated actions (:meth:`check_actions`) for
        the next tick, after the hold rules: a VM whose hold flag is set
        (``absolute-hold``), or whose new target (clipped to [0, max_balloon_pages]) is
        within ``hold_deadband · max_balloon_pages`` of its current one, keeps its current
        target (the last tick's ``balloon_target``; 0 after a reset)."""
        hold = None
        if self.config.action_mode in HOLD_ACTION_MODES:
            hold = actions[:, self.num_vms :] > 0
        t = self._raw_targets(actions)
        if hold is None and not self.config.hold_deadband:
            return t
        held = self.vm[:, :, VM_INDEX["balloon_target"]]
        keep = np.zeros(t.shape, dtype=bool) if hold is None else hold
        if self.config.hold_deadband:
            tc = np.clip(t, 0, self._maxb.astype(np.int64))
            keep = keep | (np.abs(tc - held) <= self._deadband)
        return np.where(keep, held, t)

    def targets(self, actions: Any) -> np.ndarray:
        """Validate (B, A) actions (:meth:`check_actions`) and map them to (B, V) int64
        balloon targets, before the hold rules (:meth:`held_targets`).

        Box actions outside [-1, 1] are clipped to it; the simulator then clips targets
        to [0, max_balloon_pages] (docs/model.md §4.2)."""
        return self._raw_targets(self.check_actions(actions))

    def _raw_targets(self, a: np.ndarray) -> np.ndarray:
        """(B, V) targets of validated actions (in ``absolute-hold``: of the target half)."""
        B, V = self.num_envs, self.num_vms
        mode = self.config.action_mode
        if mode == "discrete":
            step = (a.astype(np.int64) - 1) * self._rate
            return self.sim.balloon.reshape(B, V) + step
        a = np.clip(a[:, :V].astype(np.float64), -1.0, 1.0)
        if mode in ("absolute", "absolute-hold"):
            return np.rint((a + 1.0) * 0.5 * self._maxb).astype(np.int64)
        return self.sim.balloon.reshape(B, V) + np.rint(a * self._rate).astype(np.int64)

    # ------------------------------------------------------------------- step
    def step(self, actions: Any) -> StepOut:
        """One decision: the actions, validated once (:meth:`check_actions`), are applied
        on each of the next ``k`` = :attr:`ticks_per_step` ticks (targets recomputed each
        tick from the same actions, as a period-1 env stepped ``k`` times with them), the
        rewards summed. An env whose episode ends inside the ``k`` ticks ends the step
        there: its observation, counters and info are those of its last tick, its reward
        the sum up to it (the other envs of the batch run on; the simulator steps every
        env, and the ended env's later ticks are discarded, as an autoreset follows).

        ``info`` is the last tick's, except ``reward_terms`` and ``vm_reward``, summed over
        the step's ticks (so they still add up to the reward); with ``k > 1`` it also has
        ``ticks`` (B,) (the ticks the step ran) and ``step_totals[event]`` (B, V) (every
        event counter summed over them)."""
        if not self._seeded.all():
            raise RuntimeError("reset() every env before step()")
        a = self.check_actions(actions)
        k = self.ticks_per_step
        if k == 1:
            return self._finish(*self._tick(a, None))
        B = self.num_envs
        live = np.ones(B, dtype=bool)
        reward = np.zeros(B, dtype=np.float64)
        terminated = np.zeros(B, dtype=bool)
        truncated = np.zeros(B, dtype=bool)
        ticks = np.zeros(B, dtype=np.int64)
        totals = np.zeros((B, self.num_vms, _NE), dtype=np.int64)
        info: dict[str, Any] = {}
        for j in range(k):
            r, term, trunc, tick_info = self._tick(a, None if j == 0 else live)
            reward[live] += r[live]
            terminated |= live & term
            truncated |= live & trunc
            ticks[live] += 1
            totals[live] += self.vm[live, :, :_NE]
            if j == 0:
                info = _copy_info(tick_info)
            else:
                _merge_info(info, tick_info, live)
            live &= ~(term | trunc)
            if not live.any():
                break
        info["ticks"] = ticks
        info["step_totals"] = {n: totals[:, :, e].copy() for e, n in enumerate(VM_EVENTS)}
        return self._finish(reward, terminated, truncated, info)

    def _tick(
        self, actions: np.ndarray, live: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step the simulator one tick and fold it into the envs of ``live`` (all if None):
        their counters, episode accumulators and observation. Returns the tick's (B,)
        reward, terminated, truncated and (B, ...) info (meaningful where ``live``)."""
        targets = self.held_targets(actions)
        res = self.sim.step(targets)
        vm, host = res.vm, res.host
        rew = step_reward(self.params, vm, host)
        reward, stall = rew.reward, rew.stall_us
        if live is None:
            self.vm, self.host = vm, host
            self.elapsed += 1
            self.ep_return += reward
            self.ep_events += vm[:, :, :_NE]
            self.ep_stall += stall
            self.stall_frac = rew.costs.stall_frac
        else:
            self.vm[live], self.host[live] = vm[live], host[live]
            self.elapsed[live] += 1
            self.ep_return[live] += reward[live]
            self.ep_events[live] += vm[live, :, :_NE]
            self.ep_stall[live] += stall[live]
            self.stall_frac[live] = rew.costs.stall_frac[live]
        terminated = rew.host_oom > 0
        truncated = (self.elapsed >= self.limit) & ~terminated
        self._observe(live)
        tc = rew.costs
        info: dict[str, Any] = {
            "vm": self._vm_info(vm),
            "host": self._host_info(host),
            "stall_us": stall,
            "reward_terms": rew.terms,
            "vm_reward": rew.vm_reward,  # (B, V): each VM's own reward (envs.reward)
            # The cost model's outputs (envs.sim.costs): per-VM stall components (µs),
            # the two v1 costs by their own names, and the host's device.
            "stall_components_us": {n: x.copy() for n, x in tc.components.items()},
            "reclaim_stall_us": tc.components["reclaim_stall"].copy(),
            "balloon_op_us": tc.components["balloon_op"].copy(),
            "device_busy_frac": tc.device_busy_frac,
            "device_read_latency_us": tc.read_latency_us,
            "device_write_latency_us": tc.write_latency_us,
            "stall_saturated": tc.saturated.copy(),  # (B, V): the VM lost its whole tick
        }
        return reward, terminated, truncated, info

    def _finish(
        self,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        info: dict[str, Any],
    ) -> StepOut:
        done = terminated | truncated
        summary = self.summary() if done.any() else {}
        return StepOut(self._obs.copy(), reward, terminated, truncated, info, summary)

    def summary(self) -> dict[str, Any]:
        """Batched statistics of every env's episode so far (``episode_summary``)."""
        return {
            "return": self.ep_return.copy(),
            "length": self.elapsed.copy(),
            "host_oom": self.host[:, HOST_INDEX["host_oom"]].copy(),
            "seed": np.array(self.episode_seed, dtype=np.int64),
            "stall_us": self.ep_stall.copy(),
            "totals": {n: self.ep_events[:, :, k].copy() for k, n in enumerate(VM_EVENTS)},
        }

    @staticmethod
    def _vm_info(vm: np.ndarray) -> dict[str, np.ndarray]:
        return {n: vm[:, :, k].copy() for k, n in enumerate(VM_FIELDS)}

    @staticmethod
    def _host_info(host: np.ndarray) -> dict[str, np.ndarray]:
        return {n: host[:, k].copy() for k, n in enumerate(HOST_FIELDS)}

    # ------------------------------------------------------------ observation
    def _observe(self, mask: np.ndarray | None) -> None:
        """Write the observation rows of ``mask`` (all if None) from the last counters."""
        vm = self.vm if mask is None else self.vm[mask]
        host = self.host if mask is None else self.host[mask]
        sel = slice(None) if mask is None else mask
        M = self._M

        def col(name: str) -> np.ndarray:
            return vm[:, :, VM_INDEX[name]].astype(np.float64)

        free, cache = col("guest_free_pages"), col("guest_cache_pages")
        feats = np.stack(
            [
                col("balloon_pages") / M,
                col("balloon_target") / M,
                free / M,
                (free + cache) / M,
                cache / M,
                col("guest_major_faults") / self._refs,
                col("guest_minor_faults") / self._refs,
                col("guest_swapins") / self._refs,
                col("guest_swapouts") / self._out_scale,
                col("host_swapped_pages") / M,
                col("host_swapins") / self._refs,
                col("ws_sample_touched") / self._ws,
                self.stall_frac if mask is None else self.stall_frac[mask],
            ],
            axis=-1,
        )
        prm = self.params
        hostf = np.stack(
            [
                host[:, HOST_INDEX["host_free_frames"]] / prm.host_frames,
                host[:, HOST_INDEX["host_swap_used"]] / max(1, prm.host_swap_pages),
                host[:, HOST_INDEX["shared_frames"]] / prm.host_frames,
                (self.limit[sel] - self.elapsed[sel]) / self.limit[sel],
            ],
            axis=-1,
        )
        np.clip(feats, 0.0, 1.0, out=feats)
        np.clip(hostf, 0.0, 1.0, out=hostf)
        self._vm_obs[sel] = feats
        self._host_obs[sel] = hostf
        if self.obs_version == 2:
            swap = self._swap
            feats2 = np.stack(
                [
                    col("guest_used_pages") / M,
                    col("guest_committed_pages") / M,
                    col("guest_swap_used") / np.maximum(swap, 1.0),
                    np.broadcast_to(swap / (M + swap), free.shape),
                    col("host_resident_pages") / M,
                    col("host_shared_pages") / M,
                    col("guest_oom_kills"),
                ],
                axis=-1,
            )
            host2 = host[:, HOST_INDEX["sharing_saved_frames"], None] / prm.host_frames
            np.clip(feats2, 0.0, 1.0, out=feats2)
            np.clip(host2, 0.0, 1.0, out=host2)
            self._vm_obs2[sel] = feats2
            self._host_obs2[sel] = host2

    # ------------------------------------------------------------- rendering
    def render(self, mode: str | None, b: int = 0) -> Any:
        if mode == "ansi":
            return render.ansi(
                self.params, self.vm[b], self.host[b], self.elapsed[b], self.limit[b]
            )
        if mode == "rgb_array":
            return render.rgb_array(self.params, self.vm[b])
        return None


def _copy_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of batched info whose array leaves are fresh (so merging never writes into
    an array the simulator or the cost model might hand out again)."""
    return {k: _copy_info(v) if isinstance(v, Mapping) else np.array(v) for k, v in info.items()}


def _merge_info(dst: dict[str, Any], src: Mapping[str, Any], live: np.ndarray) -> None:
    """Fold one tick's batched info ``src`` into the step's ``dst`` for the envs of
    ``live``: ``reward_terms`` and ``vm_reward`` summed, every other leaf replaced (the
    last tick's)."""
    for key, value in src.items():
        if isinstance(value, Mapping):
            if key == "reward_terms":
                for n, x in value.items():
                    dst[key][n][live] += x[live]
            else:
                _merge_info(dst[key], value, live)
        elif key == "vm_reward":
            dst[key][live] += value[live]
        else:
            dst[key][live] = value[live]


def reset_counters(params: HostParams) -> tuple[np.ndarray, np.ndarray]:
    """The (V, NV) and (NH,) counters of a freshly reset host (SEMANTICS.md, Reset): no
    events; every non-kernel GPP free and unbacked; kernels resident."""
    V = params.num_vms
    vm = np.zeros((V, len(VM_FIELDS)), dtype=np.int64)
    for i, v in enumerate(params.vms):
        vm[i, VM_INDEX["guest_free_pages"]] = v.guest_pages - v.kernel_reserved_pages
        vm[i, VM_INDEX["host_resident_pages"]] = v.kernel_reserved_pages
    host = np.zeros(len(HOST_FIELDS), dtype=np.int64)
    host[HOST_INDEX["host_free_frames"]] = params.host_frames - sum(
        v.kernel_reserved_pages for v in params.vms
    )
    return vm, host


def build_batch(
    scenario: str,
    num_envs: int,
    max_episode_steps: Any,
    action_mode: str,
    overrides: Mapping[str, Any],
) -> tuple[EnvConfig, EnvBatch]:
    """The config and the batched core of a vector adapter. ``max_episode_steps`` may be
    one length for every env or one per env."""
    num_envs = check_int("num_envs", num_envs, 1)
    per_env = max_episode_steps is not None and np.ndim(max_episode_steps) > 0
    config = make_config(
        scenario,
        max_episode_steps=None if per_env else max_episode_steps,
        action_mode=action_mode,
        **overrides,
    )
    core = EnvBatch(config, num_envs, max_episode_steps=max_episode_steps if per_env else None)
    return config, core
