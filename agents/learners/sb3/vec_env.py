"""The Stable-Baselines3 ``VecEnv`` of ``reclaim/Balloon-v0``: the one RL agents train on.

Thin: every host is an :class:`envs.env_batch.EnvBatch` (the same logic as the Gymnasium
adapters, autoreset included); this file only speaks SB3's VecEnv conventions, which
match ``DummyVecEnv`` of ``BalloonEnv`` s (the contract tests compare the two):

- same-step reset: an env whose episode ends returns the new episode's first
  observation; the last one is ``info["terminal_observation"]``;
- ``info["TimeLimit.truncated"]`` is True when the episode was cut by
  ``max_episode_steps`` and not ended by a host OOM;
- at an episode's end ``info["episode"] = {"r", "l", "t"}`` as SB3's ``Monitor`` writes
  it (so no Monitor wrapper is needed for episode logging) and
  ``info["episode_summary"]`` as in the Gymnasium envs;
- with ``step_info=True`` (the default) every info also holds the step's counters as
  ``BalloonEnv`` returns them, and ``reset_infos`` the reset's; training passes False:
  building those dicts costs ~15 % of the env's time and training reads none of them.

One VecEnv holds ``hosts_per_scenario`` hosts of each of one or more scenarios, in two
observation layouts:

- ``flat``: one SB3 env per host; the observation is the env's own (``13·V + 4``)
  vector and the action one balloon action per VM. Every scenario of a flat env must
  have the same number of VMs.
- ``per-vm`` (parameter sharing): one SB3 env per *VM* of every host; each VM sees its
  own 13 features, the mean and the max of the 13 features over its host's VMs, and the
  4 host features (:func:`per_vm_features`, 43 values), and sets its own balloon. All
  VMs of a host share the host's reward (the objective is the host's total stall) and
  its episode ends, and the same network drives every VM, so one policy runs hosts of
  any size: it trains on several scenarios at once and runs on held-out scenarios with
  other VM counts. This is the view of :class:`agents.wrappers.PerVmObservation` over
  :class:`agents.wrappers.MultiScenarioVectorEnv`, with its formulas
  (:func:`agents.layout.per_vm_features`, :func:`agents.wrappers.per_vm_actions`); this
  adapter stays its own class for SB3's same-step reset and ``terminal_observation``.

Observation v2 (``obs_version=2``, as ``reclaim/Balloon-v2``): the flat observation is
the env's ``20·V + 5`` vector; a per-VM row has 20 features, their mean and max, and 5
host features (65 values). The env options ``obs_version``, ``decision_period_s`` and
``hold_deadband`` go in ``**overrides``, as in ``BalloonVectorEnv``; with a decision
period one SB3 step is one decision of every host (``EnvBatch.step``).

Residual agents (``residual="esx"``, any heuristic of ``agents.policies``): each host
group runs the heuristic beside the agent, on the observations and counters it would see
in ``BalloonVectorEnv``, and the agent's Box action corrects the heuristic's absolute
action: ``clip(a_H + residual_scale · a, -1, 1)``, through
:func:`agents.residual.residual_action`, the formula of ``agents.wrappers.ResidualAction``
and of ``agents.residual.ResidualPolicy`` at evaluation. The heuristics' state is part of
:meth:`get_state`.

Seeding: ``seed(s)`` makes the next ``reset()`` seed host ``j`` (counted over all
scenarios in order) with ``s + j``; seeds are used once; later episodes draw their seeds
from each host's own generator. Rewards are float32 and observations fresh float32
arrays, as ``DummyVecEnv`` returns.

Seed groups (``seed_group_size=k > 1``; off by default): the hosts of each scenario come
in groups of ``k`` consecutive hosts that replay one workload, for an input-dependent
baseline (:mod:`agents.learners.sb3.varred`). Host ``j`` is seeded ``s + j // k`` (group
``g`` with ``s + g``; ``seed(None)``: one fresh-entropy seed per group), so the members
of a group start with the same simulator seed and the same seed generator, and
different groups with different seeds; a group never spans two scenarios (the hosts per
scenario must be a multiple of ``k``). The members restart together: when any member's
episode ends (a host OOM), every member's does, the others' cut as a time limit would
(``TimeLimit.truncated``, so SB3 bootstraps them from their ``terminal_observation``).
So a group's members always draw their next seeds together from identical generators
and are at the same tick of the same workload at every step: the references they draw
are identical, only their actions (each member samples its own) and what follows from
them differ. :attr:`baseline_groups` says which SB3 rows share a workload.

Per-VM reward (``reward="per-vm"``, layout ``per-vm`` only; off by default): SB3 row
``b·V + i`` gets VM ``i``'s own reward ``info["vm_reward"][b, i]``
(:func:`envs.reward.step_reward`) instead of the host's; episode statistics
(``info["episode"]``) stay the host's return.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from agents.layout import NF, NH, PER_VM_SIZE, num_vms_of, per_vm_features, per_vm_size
from agents.learners.sb3.algos import LAYOUTS, REWARDS
from agents.policies import check_residual, make_policy
from agents.residual import RESIDUAL_SCALE, residual_action
from agents.wrappers import per_vm_actions, per_vm_spaces
from envs.env_batch import (
    EnvBatch,
    action_size,
    build_batch,
    check_render_mode,
    info_row,
    observation_size,
)
from envs.scenarios import DEFAULT_SCENARIO
from envs.sim.checks import check_choice, check_int

__all__ = [
    "NF",
    "NH",
    "PER_VM_SIZE",
    "REWARDS",
    "BalloonSB3VecEnv",
    "num_vms_of",
    "per_vm_features",
    "per_vm_size",
]


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def agent_spaces(
    layout: str, action_mode: str, num_vms: int, obs_version: int = 1
) -> tuple[spaces.Box, spaces.Space]:
    """Observation and action space of one SB3 env in ``layout``.

    ``flat`` gives exactly the spaces of ``BalloonEnv`` with ``num_vms`` VMs. In
    ``absolute-hold`` mode a per-VM action is (target, hold flag)."""
    check_layout(layout)
    if layout == "per-vm":
        return per_vm_spaces(action_mode, obs_version)
    size = observation_size(num_vms, obs_version)
    obs_space = spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)
    if action_mode == "discrete":
        return obs_space, spaces.MultiDiscrete(np.full(num_vms, 3, dtype=np.int64))
    n = action_size(num_vms, action_mode)
    return obs_space, spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)


def env_actions(actions: np.ndarray, layout: str, action_mode: str, B: int, V: int) -> np.ndarray:
    """SB3 actions of one host group → the (B, A) actions of its ``EnvBatch``.

    ``per-vm``: ``B·V`` rows (VM-major per host), as :func:`agents.wrappers.per_vm_actions`
    (the one formula of the per-VM view); ``flat``: ``B`` rows of the env's actions.
    Other shapes raise ValueError. Discrete actions become int64, Box actions float64."""
    check_layout(layout)
    if layout == "per-vm":
        return per_vm_actions(actions, action_mode, B, V)
    a = np.asarray(actions)
    want = (B, action_size(V, action_mode))
    if a.shape != want:
        raise ValueError(
            f"{layout} actions of {B} host(s) with {V} VMs must have shape {want}, got {a.shape}"
        )
    return a.astype(np.int64) if action_mode == "discrete" else a.astype(np.float64)


class _HeuristicView:
    """What a heuristic needs of a batched env (``agents.base``): the config and B."""

    single_action_space = None

    def __init__(self, core: EnvBatch) -> None:
        self.config, self.num_envs = core.config, core.num_envs


def _rows_mask(done: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``done`` (B,) broadcast over the trailing axes of ``v``."""
    return done.reshape(done.shape + (1,) * (np.ndim(v) - 1))


class BalloonSB3VecEnv(VecEnv):
    """``hosts_per_scenario`` hosts of each scenario as one SB3 VecEnv.

    Args:
        hosts_per_scenario: hosts (envs of one native batch) per scenario.
        scenarios: one scenario id or several (one host group each, in order).
        layout: ``"flat"`` (default) or ``"per-vm"`` (see the module docstring).
        max_episode_steps: episode length, one int for all hosts or one per host of a
            group (default: each scenario's).
        action_mode: ``"absolute"``, ``"delta"``, ``"discrete"`` or ``"absolute-hold"``
            (per-vm: a (target, hold flag) action per VM).
        render_mode: None, ``"ansi"`` or ``"rgb_array"`` (each SB3 env shows its host).
        step_info: put the step's counters into every info (see the module docstring).
        residual: a heuristic whose absolute actions the agent corrects (module docstring);
            needs ``action_mode="absolute"`` and a Box action.
        residual_scale: the correction's weight, in (0, 2].
        seed_group_size: hosts per seed group (1: none; see the module docstring); must
            divide ``hosts_per_scenario``.
        reward: ``"host"`` (every row its host's reward) or ``"per-vm"`` (each VM's own;
            needs ``layout="per-vm"``).
        **overrides: HostParams / CostParams overrides and the env options
            ``obs_version``, ``decision_period_s``, ``hold_deadband``, applied to every
            scenario.
    """

    def __init__(
        self,
        hosts_per_scenario: int = 1,
        scenarios: str | Sequence[str] = DEFAULT_SCENARIO,
        *,
        layout: str = "flat",
        max_episode_steps: int | Sequence[int] | None = None,
        action_mode: str = "absolute",
        render_mode: str | None = None,
        step_info: bool = True,
        residual: str | None = None,
        residual_scale: float = RESIDUAL_SCALE,
        seed_group_size: int = 1,
        reward: str = "host",
        **overrides: Any,
    ) -> None:
        check_render_mode(render_mode)
        check_layout(layout)
        check_residual(residual, residual_scale, action_mode)
        check_int("seed_group_size", seed_group_size, 1)
        check_choice("reward", reward, REWARDS)
        if hosts_per_scenario % seed_group_size:
            raise ValueError(
                f"hosts_per_scenario ({hosts_per_scenario}) must be a multiple of "
                f"seed_group_size ({seed_group_size}): a seed group never spans two scenarios"
            )
        if reward == "per-vm" and layout != "per-vm":
            raise ValueError(f"reward 'per-vm' needs layout 'per-vm', got {layout!r}")
        scenarios = (scenarios,) if isinstance(scenarios, str) else tuple(scenarios)
        if not scenarios:
            raise ValueError("scenarios must name at least one scenario")
        built = [
            build_batch(s, hosts_per_scenario, max_episode_steps, action_mode, overrides)
            for s in scenarios
        ]
        self.configs = tuple(c for c, _ in built)
        self.cores: list[EnvBatch] = [core for _, core in built]
        vms = sorted({c.num_vms for c in self.configs})
        if layout == "flat" and len(vms) > 1:
            raise ValueError(
                f"layout 'flat' needs scenarios with one VM count, got {vms} for "
                f"{list(scenarios)}; use layout 'per-vm' to mix VM counts"
            )
        self.obs_version = self.configs[0].obs_version  # the same overrides for every group
        obs_space, act_space = agent_spaces(layout, action_mode, vms[0], self.obs_version)
        self.scenarios = scenarios
        self.layout = layout
        self.action_mode = action_mode
        self.render_mode = render_mode
        self.step_info = step_info
        self.num_hosts = hosts_per_scenario * len(scenarios)
        self.seed_group_size = int(seed_group_size)
        self.reward = reward
        # SB3 rows per host of each group, and each group's first row.
        self._k = [c.num_vms if layout == "per-vm" else 1 for c in self.configs]
        per = [hosts_per_scenario * k for k in self._k]
        self._bounds = np.concatenate([[0], np.cumsum(per)]).astype(int)
        self._actions: np.ndarray | None = None
        self._base_seed: int | None = None
        self._t_start = time.time()
        self.residual, self.residual_scale = residual, float(residual_scale)
        self._bases: list[Any] = []  # per group: the heuristic and its next actions
        self._base_a: list[np.ndarray | None] = []
        if residual is not None:
            self._bases = [make_policy(residual, _HeuristicView(c)) for c in self.cores]
            self._base_a = [None] * len(self.cores)
        super().__init__(int(self._bounds[-1]), obs_space, act_space)

    @property
    def core(self) -> EnvBatch:
        """The batch of a single-scenario VecEnv (as ``env.core`` of the other adapters)."""
        if len(self.cores) != 1:
            raise AttributeError(f"a VecEnv of {len(self.cores)} scenarios has .cores, not .core")
        return self.cores[0]

    @property
    def config(self):
        return self.core.config

    @property
    def params(self):
        return self.core.params

    @property
    def agents_per_host(self) -> float:
        """SB3 env steps per host tick (V for per-vm with one VM count, 1 for flat)."""
        return self.num_envs / self.num_hosts

    @property
    def baseline_groups(self) -> np.ndarray:
        """(num_envs,) int64: SB3 rows with equal ids replay the same workload at every
        step (seed groups, module docstring): ``flat``, the hosts of one seed group;
        ``per-vm``, VM ``i`` of each host of one seed group (the VMs of a host run other
        workloads). Without seed groups every row is alone in its group."""
        ids, host0 = [], 0
        for g, core in enumerate(self.cores):
            k = self._k[g]  # SB3 rows per host
            host = host0 + np.arange(core.num_envs * k) // k  # global host of each row
            vm = np.arange(core.num_envs * k) % k
            ids.append((host // self.seed_group_size) * max(self._k) + vm)
            host0 += core.num_envs
        return np.concatenate(ids).astype(np.int64)

    def _group_seeds(self, base: int | None) -> list[int | None]:
        """The seed of every host (all groups, in order) at a reset: ``base + j`` or, with
        seed groups, ``base + j // k`` (module docstring). Without a base: None (each host
        draws from its own generator, fresh entropy if it has none), except for a seed
        group whose generators were never seeded, which gets one fresh-entropy seed for
        all its members (once seeded, the members' generators are identical and draw
        identical seeds)."""
        k = self.seed_group_size
        if base is not None:
            return [base + j // k for j in range(self.num_hosts)]
        seeds: list[int | None] = [None] * self.num_hosts
        if k == 1:
            return seeds
        rngs = [r for core in self.cores for r in core.rngs]
        fresh = np.random.default_rng()  # OS entropy, never a fixed seed
        for j0 in range(0, self.num_hosts, k):
            if rngs[j0] is None:
                seeds[j0 : j0 + k] = [int(fresh.integers(0, 2**63 - 1))] * k
        return seeds

    def _rows(self, obs: np.ndarray) -> np.ndarray:
        return per_vm_features(obs, self.obs_version) if self.layout == "per-vm" else obs

    def _put_info(self, infos: list[dict[str, Any]], lo: int, g: int, part: Any, b: int) -> None:
        """Set ``infos[lo + r]`` for every SB3 env ``r`` of host ``b`` of group ``g`` to the
        host's info row (a fresh dict each: wrappers such as VecNormalize edit them)."""
        k = self._k[g]
        row = info_row(part, b)
        for r in range(b * k, (b + 1) * k):
            infos[lo + r] = dict(row) if k > 1 else row

    def reset(self) -> VecEnvObs:
        all_seeds, out, j = self._group_seeds(self._base_seed), [], 0
        for g, core in enumerate(self.cores):
            seeds = all_seeds[j : j + core.num_envs]
            j += core.num_envs
            obs = core.reset(seeds)
            out.append(self._rows(obs))
            if self._bases:
                self._bases[g].reset()
                self._base_a[g] = self._bases[g].act(obs, core.reset_info())
            if self.step_info:
                info = core.reset_info()
                for b in range(core.num_envs):
                    self._put_info(self.reset_infos, int(self._bounds[g]), g, info, b)
        self._base_seed = None  # seeds are used once
        self._reset_options()
        return np.concatenate(out)

    def get_state(self) -> dict[str, Any]:
        """Everything the next steps depend on: every host's simulator, episode and seed
        generator state (a deep copy, picklable). With :meth:`set_state` a checkpoint
        resumes training exactly where it stopped."""
        return copy.deepcopy({"cores": self.cores, "base_seed": self._base_seed,
                              "bases": self._bases, "base_actions": self._base_a})  # fmt: skip

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`get_state` of a VecEnv built with the same arguments."""
        cores = state["cores"]
        if len(cores) != len(self.cores) or any(
            a.config != b.config or a.num_envs != b.num_envs
            for a, b in zip(cores, self.cores, strict=True)
        ):
            raise ValueError("set_state: the state belongs to a VecEnv of other scenarios")
        if len(state.get("bases", [])) != len(self._bases):
            raise ValueError("set_state: the state belongs to a VecEnv of another residual")
        self.cores = copy.deepcopy(list(cores))
        self._base_seed = state["base_seed"]
        if self._bases:
            self._bases = copy.deepcopy(list(state["bases"]))
            self._base_a = copy.deepcopy(list(state["base_actions"]))

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Host ``j`` gets ``seed + j`` at the next reset (hosts, not SB3 rows; with seed
        groups of ``k``, ``seed + j // k``); None: fresh entropy (per host, or per group)."""
        self._base_seed = seed
        if seed is None:
            return [None] * self.num_hosts
        return self._group_seeds(seed)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        actions, self._actions = self._actions, None
        want = (self.num_envs,) + self.action_space.shape
        if actions.shape != want and not (self.layout == "per-vm" and actions.shape == want[:1]):
            raise ValueError(
                f"actions must have shape {want} (one per SB3 env), got {actions.shape}"
            )
        obs_l, rew_l, done_l, infos = [], [], [], []
        for g in range(len(self.cores)):
            obs, rew, done, g_infos = self._step_group(g, actions)
            obs_l.append(obs)
            rew_l.append(rew)
            done_l.append(done)
            infos.extend(g_infos)
        return np.concatenate(obs_l), np.concatenate(rew_l), np.concatenate(done_l), infos

    def _step_group(self, g: int, actions: np.ndarray) -> tuple[Any, Any, Any, list[dict]]:
        """Step host group ``g`` (its rows of ``actions``) and autoreset its ended hosts."""
        core, k, lo = self.cores[g], self._k[g], int(self._bounds[g])
        B = core.num_envs
        a = env_actions(actions[lo : lo + B * k], self.layout, self.action_mode, B, core.num_vms)
        if self._bases:
            if self._base_a[g] is None:
                raise RuntimeError("reset() must be called before step()")
            a = residual_action(self._base_a[g], a, self.residual_scale)
        out = core.step(a)
        done = out.done
        rows = self._rows(out.obs)
        trunc = out.truncated & ~out.terminated
        if self.seed_group_size > 1 and done.any():
            # A group restarts together (module docstring): its members still running are
            # cut here, as by a time limit.
            group_done = np.repeat(done.reshape(-1, self.seed_group_size).any(axis=1),
                                   self.seed_group_size)  # fmt: skip
            trunc = trunc | (group_done & ~done)
            done = group_done
        infos: list[dict[str, Any]] = [{} for _ in range(B * k)]
        for b in range(B):
            if self.step_info:
                self._put_info(infos, 0, g, out.info, b)
            for r in range(b * k, (b + 1) * k):
                infos[r]["TimeLimit.truncated"] = bool(trunc[b])
        if done.any():
            t = round(time.time() - self._t_start, 6)
            for b in np.nonzero(done)[0]:
                summary = info_row(out.summary, b)
                ep = {"r": summary["return"], "l": summary["length"], "t": t}
                for r in range(b * k, (b + 1) * k):
                    infos[r]["terminal_observation"] = rows[r].copy()
                    infos[r]["episode_summary"] = summary
                    infos[r]["episode"] = ep
            reset_info = core.autoreset(out.obs, done)  # out.obs: the new first observations
            new = self._rows(out.obs)
            for b in np.nonzero(done)[0]:
                rows[b * k : (b + 1) * k] = new[b * k : (b + 1) * k]
                if self.step_info:
                    self._put_info(self.reset_infos, lo, g, reset_info, b)
        if self._bases:  # the heuristic's next actions, from what it would see next
            info = out.info
            if done.any():  # a restarted host shows its reset counters
                info = {w: {n: np.where(_rows_mask(done, v), reset_info[w][n], v)
                            for n, v in out.info[w].items()} for w in ("vm", "host")}  # fmt: skip
            self._base_a[g] = self._bases[g].act(out.obs, info)
        if self.reward == "per-vm":  # row b·V + i: VM i of host b
            reward = out.info["vm_reward"].reshape(-1).astype(np.float32)
            done = np.repeat(done, k)
        else:
            reward = out.reward.astype(np.float32)
            if k > 1:
                reward, done = np.repeat(reward, k), np.repeat(done, k)
        return rows, reward, done, infos

    def close(self) -> None:
        pass

    def _host_of(self, i: int) -> tuple[EnvBatch, int]:
        """The batch and host index of SB3 env ``i``."""
        g = int(np.searchsorted(self._bounds, i, side="right")) - 1
        return self.cores[g], (i - int(self._bounds[g])) // self._k[g]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [core.render("rgb_array", b) for core, b in map(self._host_of, range(self.num_envs))]

    # All envs share one configuration per group; attributes are those of this object.
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(
            f"cannot set {attr_name!r}: the envs of a BalloonSB3VecEnv share their "
            "configuration; build a new VecEnv instead"
        )

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        if method_name == "render":
            hosts = map(self._host_of, self._get_indices(indices))
            return [core.render(self.render_mode, b) for core, b in hosts]
        raise AttributeError(f"BalloonSB3VecEnv has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
