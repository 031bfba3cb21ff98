"""The VecEnv that RL agents train on: one or more scenarios, two observation layouts.

Two layouts of the same env (no dynamics here: every host is a
:class:`envs.adapter.BatchCore`, as in the other adapters):

- ``flat``: one SB3 env per host; the observation is the env's own
  (``13·V + 4``) vector and the action one balloon action per VM. Every scenario of a
  flat env must have the same number of VMs.
- ``per-vm`` (parameter sharing): one SB3 env per *VM* of every host; each VM sees its
  own 13 features, the mean and the max of the 13 features over its host's VMs, and the
  4 host features (:func:`per_vm_features`, 43 values), and sets its own balloon. All
  VMs of a host share the host's reward (the objective is the host's total stall), and
  the same network drives every VM, so one policy runs hosts of any size: it trains on
  several scenarios at once and runs on held-out scenarios with other VM counts.

Episodes follow SB3's conventions (as ``agents.sb3_vec_env.BalloonSB3VecEnv``): a
finished episode resets on the same step, ``terminal_observation`` holds the last
observation and ``TimeLimit.truncated`` flags a time-limit end, ``episode`` holds
``{"r", "l", "t"}`` (the host's return and length, reported on each of its VMs). Infos
carry nothing else: building the full per-step counter dicts costs ~15 % of the env's
time and training reads none of them.

Seeding: ``seed(s)`` makes the next ``reset()`` seed host ``j`` (counted over all
scenarios in order) with ``s + j``; later episodes draw their seeds from each host's own
generator, as in the other adapters.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from envs.adapter import HOST_FEATURES, VM_FEATURES, BatchCore, make_config

LAYOUTS = ("per-vm", "flat")
NF = len(VM_FEATURES)
NH = len(HOST_FEATURES)
PER_VM_SIZE = 3 * NF + NH


def num_vms_of(obs_size: int) -> int:
    """V from a flat observation size ``13·V + 4``."""
    v, rem = divmod(obs_size - NH, NF)
    if rem or v < 1:
        raise ValueError(f"observation size {obs_size} is not 13·V + 4 for any V >= 1")
    return v


def per_vm_features(obs: np.ndarray) -> np.ndarray:
    """(B, 13·V + 4) env observations → (B·V, 43) per-VM features (VM-major per host).

    Row ``b·V + i``: VM ``i``'s 13 features, their mean and max over the host's VMs, then
    the host's 4 features. Fresh float32 array.
    """
    obs = np.asarray(obs, dtype=np.float32)
    B, D = obs.shape
    V = num_vms_of(D)
    vm = obs[:, : V * NF].reshape(B, V, NF)
    out = np.empty((B, V, PER_VM_SIZE), dtype=np.float32)
    out[:, :, :NF] = vm
    out[:, :, NF : 2 * NF] = vm.mean(axis=1, keepdims=True)
    out[:, :, 2 * NF : 3 * NF] = vm.max(axis=1, keepdims=True)
    out[:, :, 3 * NF :] = obs[:, None, V * NF :]
    return out.reshape(B * V, PER_VM_SIZE)


def agent_spaces(layout: str, action_mode: str, num_vms: int) -> tuple[spaces.Box, spaces.Space]:
    """Observation and action space of one SB3 env in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    n_act = 1 if layout == "per-vm" else num_vms
    size = PER_VM_SIZE if layout == "per-vm" else num_vms * NF + NH
    obs_space = spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)
    if action_mode == "discrete":
        act: spaces.Space = (
            spaces.Discrete(3) if layout == "per-vm" else spaces.MultiDiscrete([3] * num_vms)
        )
    else:
        act = spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)
    return obs_space, act


def env_actions(actions: np.ndarray, layout: str, action_mode: str, B: int, V: int) -> np.ndarray:
    """SB3 actions of one host group (``B·V`` per-VM rows or ``B`` flat rows) → (B, V)."""
    a = np.asarray(actions)
    a = a.reshape(B, V)
    if action_mode == "discrete":
        return a.astype(np.int64)
    return a.astype(np.float64)


class TrainVecEnv(VecEnv):
    """``hosts_per_scenario`` hosts of each scenario as one SB3 VecEnv.

    Args:
        scenarios: scenario ids (one host group each).
        hosts_per_scenario: hosts (envs of the native batch) per scenario.
        layout: ``"per-vm"`` or ``"flat"`` (see the module docstring).
        action_mode: ``"absolute"``, ``"delta"`` or ``"discrete"``.
        max_episode_steps: episode length of every host (default: each scenario's).
        **overrides: HostParams / CostParams overrides applied to every scenario.
    """

    def __init__(
        self,
        scenarios: Sequence[str],
        hosts_per_scenario: int,
        *,
        layout: str = "per-vm",
        action_mode: str = "absolute",
        max_episode_steps: int | None = None,
        **overrides: Any,
    ) -> None:
        if not scenarios:
            raise ValueError("scenarios must name at least one scenario")
        if isinstance(hosts_per_scenario, bool) or not isinstance(hosts_per_scenario, int):
            raise ValueError(f"hosts_per_scenario must be an int, got {hosts_per_scenario!r}")
        if hosts_per_scenario < 1:
            raise ValueError(f"hosts_per_scenario must be >= 1, got {hosts_per_scenario}")
        configs = [
            make_config(
                s, max_episode_steps=max_episode_steps, action_mode=action_mode, **overrides
            )
            for s in scenarios
        ]
        vms = sorted({c.num_vms for c in configs})
        if layout == "flat" and len(vms) > 1:
            raise ValueError(
                f"layout 'flat' needs scenarios with one VM count, got {vms} for "
                f"{list(scenarios)}; use layout 'per-vm' to mix VM counts"
            )
        obs_space, act_space = agent_spaces(layout, action_mode, vms[0])
        self.scenarios = tuple(scenarios)
        self.layout = layout
        self.action_mode = action_mode
        self.cores = [BatchCore(c, hosts_per_scenario) for c in configs]
        self.num_hosts = hosts_per_scenario * len(configs)
        # Rows of each host group in the SB3 batch.
        per = [hosts_per_scenario * (c.num_vms if layout == "per-vm" else 1) for c in configs]
        self._bounds = np.concatenate([[0], np.cumsum(per)]).astype(int)
        self._actions: np.ndarray | None = None
        self._base_seed: int | None = None
        self._t_start = time.time()
        self.render_mode = None
        super().__init__(int(self._bounds[-1]), obs_space, act_space)

    @property
    def agents_per_host(self) -> float:
        """SB3 env steps per host tick (V for per-vm with one VM count, 1 for flat)."""
        return self.num_envs / self.num_hosts

    def _rows(self, obs: np.ndarray) -> np.ndarray:
        return per_vm_features(obs) if self.layout == "per-vm" else obs

    def _expand(self, x: np.ndarray, V: int) -> np.ndarray:
        return np.repeat(x, V) if self.layout == "per-vm" else x

    def reset(self) -> np.ndarray:
        base, out, j = self._base_seed, [], 0
        for core in self.cores:
            seeds = [None if base is None else base + j + k for k in range(core.num_envs)]
            j += core.num_envs
            out.append(self._rows(core.reset(seeds)))
        self._base_seed = None  # seeds are used once
        self._reset_options()
        return np.concatenate(out)

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        """Host ``j`` gets ``seed + j`` at the next reset (hosts, not SB3 rows)."""
        self._base_seed = seed
        return [None if seed is None else seed + j for j in range(self.num_hosts)]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        obs_l, rew_l, done_l, infos = [], [], [], []
        for g, core in enumerate(self.cores):
            B, V = core.num_envs, core.num_vms
            lo, hi = self._bounds[g], self._bounds[g + 1]
            out = core.step(env_actions(self._actions[lo:hi], self.layout, self.action_mode, B, V))
            done = out.done
            rows = self._rows(out.obs)
            k = V if self.layout == "per-vm" else 1
            trunc = out.truncated & ~out.terminated
            g_infos: list[dict[str, Any]] = [
                {"TimeLimit.truncated": bool(trunc[r // k])} for r in range(hi - lo)
            ]
            if done.any():
                t = round(time.time() - self._t_start, 6)
                new = self._rows(core.reset([None] * B, done))
                for b in np.nonzero(done)[0]:
                    ep = {
                        "r": float(out.summary["return"][b]),
                        "l": int(out.summary["length"][b]),
                        "t": t,
                    }
                    for r in range(b * k, (b + 1) * k):
                        g_infos[r]["terminal_observation"] = rows[r].copy()
                        g_infos[r]["episode"] = ep
                    rows[b * k : (b + 1) * k] = new[b * k : (b + 1) * k]
            obs_l.append(rows)
            rew_l.append(self._expand(out.reward.astype(np.float32), V))
            done_l.append(self._expand(done, V))
            infos.extend(g_infos)
        self._actions = None
        return np.concatenate(obs_l), np.concatenate(rew_l), np.concatenate(done_l), infos

    def close(self) -> None:
        pass

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"cannot set {attr_name!r} on a TrainVecEnv")

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs):
        raise AttributeError(f"TrainVecEnv has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
