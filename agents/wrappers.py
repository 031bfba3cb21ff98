"""Agent views of the native vector env, as Gymnasium vector wrappers: one formula each.

Learners see ReclaimGym through three views, each a wrapper over
:class:`envs.vector_env.BalloonVectorEnv` (or another wrapper), each with its formula in
one function that training and evaluation share:

- :class:`PerVmObservation` (parameter sharing): one agent per VM. ``B`` hosts of ``V``
  VMs become ``B·V`` agents; agent ``b·V + i`` sees VM ``i`` of host ``b`` through
  :func:`agents.layout.per_vm_features` (its own features, their mean and max over the
  host's VMs, the host's features) and sets that VM's balloon
  (:func:`per_vm_actions`). Every VM of a host gets the host's reward (or, with
  ``reward="per-vm"``, its own: :func:`per_vm_rewards`) and the host's episode end.
- :class:`ResidualAction`: the action corrects heuristic H's absolute action, H running
  beside the agent on what the env returns (:func:`agents.residual.residual_action`).
- :class:`MultiScenarioVectorEnv`: vector envs of several scenarios (each with its own
  VM count under :class:`PerVmObservation`) behind one vector env, concatenated along
  the batch axis.

:func:`multi_scenario_env` builds the stack a learner trains on (scenarios, residual,
per-VM view). The Stable-Baselines3 learner keeps its own ``VecEnv`` adapter
(``agents.learners.sb3.vec_env``: SB3's same-step reset and ``terminal_observation``,
checked against ``DummyVecEnv``), but computes its per-VM observations and actions and
its residual actions with these same functions. A plain PyTorch loop trains on these
wrappers with no SB3 (``docs/examples/custom_learner.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from agents.base import unwrap_env
from agents.layout import per_vm_features, per_vm_size
from agents.policies import check_residual, make_policy
from agents.residual import RESIDUAL_SCALE, residual_action
from envs.env_batch import HOLD_ACTION_MODES

__all__ = [
    "MultiScenarioVectorEnv",
    "PerVmObservation",
    "ResidualAction",
    "multi_scenario_env",
    "per_vm_actions",
    "per_vm_rewards",
    "per_vm_spaces",
]


def per_vm_spaces(action_mode: str, obs_version: int = 1) -> tuple[spaces.Box, spaces.Space]:
    """Observation and action space of one per-VM agent: ``per_vm_size`` features in
    [0, 1]; a Box of one action in [-1, 1] (``absolute-hold``: two, target and hold flag)
    or ``Discrete(3)`` in ``discrete`` mode."""
    obs_space = spaces.Box(0.0, 1.0, shape=(per_vm_size(obs_version),), dtype=np.float32)
    if action_mode == "discrete":
        return obs_space, spaces.Discrete(3)
    per = 2 if action_mode in HOLD_ACTION_MODES else 1
    return obs_space, spaces.Box(-1.0, 1.0, shape=(per,), dtype=np.float32)


def per_vm_actions(actions: Any, action_mode: str, B: int, V: int) -> np.ndarray:
    """``B·V`` per-VM actions (VM-major per host) → the ``(B, A)`` actions of the env.

    ``(B·V,)`` or ``(B·V, 1)`` actions, ``(B·V, 2)`` (target, hold flag) in
    ``absolute-hold`` (the env's order: every target, then every flag). Other shapes
    raise ValueError. Discrete actions become int64, Box actions float64."""
    a = np.asarray(actions)
    hold = action_mode in HOLD_ACTION_MODES
    want = ((B * V, 2),) if hold else ((B * V,), (B * V, 1))
    if a.shape not in want:
        raise ValueError(
            f"per-vm actions of {B} host(s) with {V} VMs must have shape "
            f"{' or '.join(str(w) for w in want)}, got {a.shape}"
        )
    if hold:  # (B·V, 2) -> (B, 2V)
        a = a.reshape(B, V, 2).transpose(0, 2, 1).reshape(B, 2 * V)
    else:
        a = a.reshape(B, V)
    return a.astype(np.int64) if action_mode == "discrete" else a.astype(np.float64)


def per_vm_rewards(info: dict[str, Any], B: int, V: int) -> np.ndarray:
    """The ``B·V`` per-VM rewards (VM-major per host) of a ``BalloonVectorEnv`` step, from
    its info: ``info["vm_reward"]`` (``envs.reward.step_reward``) of the hosts that stepped,
    that of ``info["final_info"]`` for the hosts whose episode ended (``SAME_STEP``
    autoreset), and 0 for a host that only restarted (``NEXT_STEP``: its reward is 0)."""
    out = np.zeros((B, V), dtype=np.float64)
    for part in (info, info.get("final_info", {})):
        if "vm_reward" in part:
            mask = part["_vm_reward"]
            out[mask] = part["vm_reward"][mask]
    return out.reshape(B * V)


class PerVmObservation(VectorWrapper):
    """One agent per VM over a vector env of ``B`` hosts with ``V`` VMs each.

    ``num_envs`` is ``B·V``; observations are ``(B·V, F)`` per-VM features
    (:func:`agents.layout.per_vm_features` of the env's observation version; v1: 43);
    actions are ``B·V`` per-VM actions (:func:`per_vm_actions`); terminations and
    truncations are the host's, repeated for each of its VMs, and so are rewards unless
    ``reward="per-vm"``: then agent ``b·V + i`` gets VM ``i``'s own reward
    (:func:`per_vm_rewards`; their mean over a host's VMs is the host's reward). ``info``
    is the host's, unchanged (its leaves have ``B`` rows: agent ``k`` is on host
    ``k // V``).

    Args:
        env: a ``BalloonVectorEnv``, or a wrapper of one that keeps its spaces
            (:class:`ResidualAction`).
        reward: ``"host"`` (default) or ``"per-vm"``.
    """

    def __init__(self, env: VectorEnv, reward: str = "host") -> None:
        super().__init__(env)
        if reward not in ("host", "per-vm"):
            raise ValueError(f"reward must be 'host' or 'per-vm', got {reward!r}")
        self.reward = reward
        config = unwrap_env(env).config
        self.num_hosts, self.vms_per_host = env.num_envs, config.num_vms
        self.action_mode, self.obs_version = config.action_mode, config.obs_version
        obs_space, act_space = per_vm_spaces(self.action_mode, self.obs_version)
        self.single_observation_space, self.single_action_space = obs_space, act_space
        self.observation_space = batch_space(obs_space, self.num_envs)
        self.action_space = batch_space(act_space, self.num_envs)

    @property
    def num_envs(self) -> int:
        return self.num_hosts * self.vms_per_host

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return per_vm_features(obs, self.obs_version), info

    def step(self, actions: Any) -> tuple[np.ndarray, Any, Any, Any, dict[str, Any]]:
        a = per_vm_actions(actions, self.action_mode, self.num_hosts, self.vms_per_host)
        obs, reward, terminated, truncated, info = self.env.step(a)
        B, k = self.num_hosts, self.vms_per_host
        if self.reward == "per-vm":
            rewards = per_vm_rewards(info, B, k)
        else:
            rewards = np.repeat(reward, k)
        return (per_vm_features(obs, self.obs_version), rewards,
                np.repeat(terminated, k), np.repeat(truncated, k), info)  # fmt: skip


class ResidualAction(VectorWrapper):
    """The action corrects a heuristic's absolute action: the env is stepped with
    :func:`agents.residual.residual_action` ``(a_H, a, scale)``, where ``a_H`` is what the
    heuristic decides on the observation and info the env returned last (it runs beside
    the agent, through resets and autoresets, as it would drive the env alone). A zero
    correction is the heuristic exactly. The spaces are the env's.

    Args:
        env: a ``BalloonVectorEnv`` (or a wrapper that keeps its spaces) with
            ``action_mode="absolute"``.
        heuristic: a heuristic of ``agents.policies.HEURISTIC_NAMES``.
        scale: the correction's weight, in (0, 2].
    """

    def __init__(self, env: VectorEnv, heuristic: str, scale: float = RESIDUAL_SCALE) -> None:
        super().__init__(env)
        check_residual(heuristic, scale, unwrap_env(env).config.action_mode)
        self.heuristic = make_policy(heuristic, env)
        self.scale = float(scale)
        self._base: np.ndarray | None = None  # (B, V) the heuristic's next actions

    @property
    def base_actions(self) -> np.ndarray:
        """The heuristic's actions for the next step (a copy)."""
        if self._base is None:
            raise RuntimeError("reset() must be called before step()")
        return np.array(self._base)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.heuristic.reset(seed if isinstance(seed, (int, np.integer)) else None)
        self._base = self.heuristic.act(obs, info)
        return obs, info

    def step(self, actions: Any) -> tuple[np.ndarray, Any, Any, Any, dict[str, Any]]:
        out = self.env.step(residual_action(self.base_actions, actions, self.scale))
        self._base = self.heuristic.act(out[0], out[4])
        return out


class MultiScenarioVectorEnv(VectorEnv):
    """Vector envs of several scenarios as one, concatenated along the batch axis.

    Every env must have the same single observation and action spaces (the per-VM view
    of :class:`PerVmObservation` has them for any VM count; raw observations only for one
    VM count) and the same autoreset mode. ``reset(seed=s)`` seeds host ``j``, counted
    over all envs in order, with ``s + j`` (hosts, not per-VM agents), as one
    ``BalloonVectorEnv`` of all the hosts would. ``info`` is ``{"groups": [info of each
    env]}``: the envs' infos have different VM counts, so they are not merged.

    Args:
        envs: the vector envs, one per scenario (or several of one).
    """

    def __init__(self, envs: Sequence[VectorEnv]) -> None:
        self.envs = list(envs)
        if not self.envs:
            raise ValueError("MultiScenarioVectorEnv needs at least one env")
        first = self.envs[0]
        for e in self.envs[1:]:
            if (e.single_observation_space != first.single_observation_space
                    or e.single_action_space != first.single_action_space):  # fmt: skip
                raise ValueError(
                    "the envs must share their single observation and action spaces, got "
                    f"{first.single_observation_space} / {first.single_action_space} and "
                    f"{e.single_observation_space} / {e.single_action_space} (wrap each in "
                    "PerVmObservation to mix VM counts)"
                )
        modes = {e.metadata.get("autoreset_mode") for e in self.envs}
        if len(modes) > 1:
            raise ValueError(f"the envs must share one autoreset mode, got {modes}")
        self.metadata = {"autoreset_mode": modes.pop()}
        self.num_envs = sum(e.num_envs for e in self.envs)
        self.num_hosts = sum(getattr(e, "num_hosts", e.num_envs) for e in self.envs)
        self.single_observation_space = first.single_observation_space
        self.single_action_space = first.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.bounds = np.cumsum([0] + [e.num_envs for e in self.envs])  # env g: rows [g, g+1)

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options is not None:
            raise ValueError("options are per env: reset the envs of .envs themselves")
        obs, infos, j = [], [], 0
        for e in self.envs:
            o, info = e.reset(seed=None if seed is None else seed + j)
            j += getattr(e, "num_hosts", e.num_envs)
            obs.append(o)
            infos.append(info)
        return np.concatenate(obs), {"groups": infos}

    def step(self, actions: Any) -> tuple[np.ndarray, Any, Any, Any, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise ValueError(f"actions must have {self.num_envs} rows, got {actions.shape}")
        rows = zip(self.bounds[:-1], self.bounds[1:], strict=True)
        outs = [e.step(actions[lo:hi]) for e, (lo, hi) in zip(self.envs, rows, strict=True)]
        obs, reward, terminated, truncated = (np.concatenate([o[k] for o in outs])
                                              for k in range(4))  # fmt: skip
        return obs, reward, terminated, truncated, {"groups": [o[4] for o in outs]}

    def close_extras(self, **kwargs: Any) -> None:
        for e in self.envs:
            e.close()


def multi_scenario_env(
    scenarios: str | Sequence[str],
    hosts_per_scenario: int = 1,
    *,
    per_vm: bool = True,
    residual: str | None = None,
    residual_scale: float = RESIDUAL_SCALE,
    reward: str = "host",
    **env_kwargs: Any,
) -> MultiScenarioVectorEnv:
    """What a learner trains on: ``hosts_per_scenario`` hosts of each scenario
    (``BalloonVectorEnv(hosts_per_scenario, scenario, **env_kwargs)``), each batch
    under :class:`ResidualAction` when ``residual`` names a heuristic and under
    :class:`PerVmObservation` (with ``reward``) when ``per_vm``, all in one
    :class:`MultiScenarioVectorEnv`."""
    if reward != "host" and not per_vm:
        raise ValueError(f"reward {reward!r} needs per_vm=True")
    from envs.vector_env import BalloonVectorEnv

    scenarios = (scenarios,) if isinstance(scenarios, str) else tuple(scenarios)
    envs: list[VectorEnv] = []
    for sc in scenarios:
        env: VectorEnv = BalloonVectorEnv(hosts_per_scenario, sc, **env_kwargs)
        if residual is not None:
            env = ResidualAction(env, residual, residual_scale)
        envs.append(PerVmObservation(env, reward) if per_vm else env)
    return MultiScenarioVectorEnv(envs)
