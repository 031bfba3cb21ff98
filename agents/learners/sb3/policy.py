"""Trained Stable-Baselines3 models as policies: ``act(obs, info) -> (B, V)`` actions.

:func:`load_model_policy` turns a run directory of ``reclaim train`` (or a model
``.zip`` in it, e.g. a checkpoint or ``best_model.zip``) into an :class:`SB3Policy`, so a
trained agent is evaluated beside the heuristics by the same code. The policy applies
the run's observation layout (``per-vm`` or ``flat``, see ``agents.learners.sb3.vec_env``) and its
frozen VecNormalize observation statistics; actions are deterministic by default.

Because the per-VM layout shares one network over VMs, a per-VM policy runs on any
scenario whatever its VM count; a flat policy only on scenarios with the VM count it was
trained on (a clear error otherwise).

A run trained with ``--residual H`` (a heuristic's name) learned corrections of H's
balloon targets: :class:`agents.residual.ResidualPolicy` runs H beside the network and adds the
network's action, scaled by the run's ``residual_scale``, to H's absolute action
(:func:`agents.residual.residual_action`, the formula ``agents.learners.sb3.vec_env``
trains with). With a zero correction it is H exactly.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.layout import num_vms_of, per_vm_features
from agents.learners.sb3.algos import algo_class
from agents.residual import RESIDUAL_SCALE
from agents.runs import RunDir
from agents.wrappers import per_vm_actions
from envs.env_batch import HOLD_ACTION_MODES


class SB3Policy:
    """A trained SB3 model behind the policy interface (``reset(seed)``, ``act``).

    Args:
        model: the SB3 model (PPO, A2C, SAC, TD3 or RecurrentPPO).
        layout: ``"per-vm"`` or ``"flat"`` (how the model sees an env observation).
        action_mode: the env action mode the model was trained with.
        vecnormalize: the run's VecNormalize (its observation statistics are copied and
            frozen) or None.
        deterministic: use the mean / greedy action.
        name: a display name.
        obs_version: the observation version the model was trained on (1; 2 for a
            fine-tuned imitation run, ``reclaim train --init-from``).
    """

    def __init__(
        self,
        model: Any,
        layout: str,
        action_mode: str,
        vecnormalize: Any = None,
        deterministic: bool = True,
        name: str = "sb3",
        obs_version: int = 1,
    ) -> None:
        self.model = model
        self.obs_version = int(obs_version)
        self.layout = layout
        self.action_mode = action_mode
        self.deterministic = deterministic
        self.name = name
        self.action_modes = (action_mode,)
        self._norm = None
        if vecnormalize is not None and getattr(vecnormalize, "norm_obs", False):
            rms = vecnormalize.obs_rms
            self._norm = (
                rms.mean.astype(np.float32).copy(),
                np.sqrt(rms.var + vecnormalize.epsilon).astype(np.float32),
                float(vecnormalize.clip_obs),
            )
        self.residual: tuple[str, float] | None = None  # see agents.policies.over_env
        self._recurrent = hasattr(model.policy, "lstm_actor")
        self._flat_vms = None
        if layout == "flat":
            self._flat_vms = num_vms_of(model.observation_space.shape[0], self.obs_version)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Start new episodes (clears the LSTM state; the policy itself is deterministic)."""
        self._state = None
        self._starts: np.ndarray | None = None

    def _features(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim == 1:
            obs = obs[None]
        if self.layout == "per-vm":
            x = per_vm_features(obs, self.obs_version)
        else:
            V = num_vms_of(obs.shape[1], self.obs_version)
            if V != self._flat_vms:
                raise ValueError(
                    f"policy {self.name!r} (layout flat) was trained on {self._flat_vms} VMs "
                    f"and cannot run a host of {V}; train with --layout per-vm"
                )
            x = obs
        if self._norm is not None:
            mean, std, clip = self._norm
            x = np.clip((x - mean) / std, -clip, clip).astype(np.float32)
        return x

    def act(self, obs: np.ndarray, info: Any = None) -> np.ndarray:
        """(B, 13·V + 4) observations (v2: 20·V + 5) → (B, V) actions (``float32`` in
        [-1, 1], or ``int64`` in {0, 1, 2} for a discrete model; ``absolute-hold``: (B, 2·V),
        targets then hold flags)."""
        obs = np.asarray(obs)
        single = obs.ndim == 1
        B = 1 if single else obs.shape[0]
        V = num_vms_of(obs.shape[-1], self.obs_version)
        x = self._features(obs)
        if self._recurrent:
            if self._starts is None or self._starts.shape[0] != x.shape[0]:
                self._state, self._starts = None, np.ones(x.shape[0], dtype=bool)
            a, self._state = self.model.predict(
                x, state=self._state, episode_start=self._starts, deterministic=self.deterministic
            )
            self._starts = np.zeros(x.shape[0], dtype=bool)
        else:
            a, _ = self.model.predict(x, deterministic=self.deterministic)
        if self.action_mode in HOLD_ACTION_MODES:  # per-vm (target, flag) rows
            a = per_vm_actions(np.asarray(a), self.action_mode, B, V)
        a = np.asarray(a).reshape(B, -1)
        a = a.astype(np.int64) if self.action_mode == "discrete" else a.astype(np.float32)
        return a[0] if single else a

    def __repr__(self) -> str:
        return f"SB3Policy({self.name!r}, layout={self.layout!r}, action_mode={self.action_mode!r})"


def policy_from_model(
    model: Any,
    layout: str,
    action_mode: str,
    vecnormalize: Any = None,
    name: str = "sb3",
    residual: tuple[str, float] | None = None,
    obs_version: int = 1,
) -> SB3Policy:
    """``residual``: (heuristic, scale) of a residual run; ``agents.policies.over_env``
    adds the heuristic once the env is known."""
    policy = SB3Policy(model, layout, action_mode, vecnormalize, name=name, obs_version=obs_version)
    policy.residual = residual
    return policy


def load_model_policy(path: str | Path, env: Any = None, deterministic: bool = True) -> SB3Policy:
    """Load a ``reclaim train`` run (directory or model zip) as a policy.

    ``env`` (optional, a ``BalloonVectorEnv`` or ``BalloonEnv``) is checked: its action
    mode must be the model's, and a flat model needs its VM count.

    Raises FileNotFoundError (no model / no config.json) or ValueError (not a run of
    ``reclaim train``, its VecNormalize statistics are missing, or it cannot drive
    ``env``) with the path.
    """
    run, model_zip = RunDir.of_model(path)
    cfg_path = run.config_json
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path} not found: {path} is not a reclaim train run")
    try:
        meta = run.read_config()
        cfg = meta["config"]
        algo, layout, mode = cfg["algo"], cfg["layout"], cfg["action_mode"]
        options = dict(meta.get("env_options") or {})  # a fine-tuned imitation run's
    except (ValueError, KeyError) as e:
        raise ValueError(f"{cfg_path} is not a reclaim train config: {e}") from None
    model = algo_class(algo).load(str(model_zip), device="cpu")
    vn = None
    if cfg.get("normalize_obs", False):
        vpath = run.vecnormalize_for(model_zip)
        if vpath is None:
            raise ValueError(
                f"{model_zip}: the run normalizes observations but its stats are missing"
            )
        with open(vpath, "rb") as f:
            vn = pickle.load(f)
    name = f"{algo}:{run.path.parent.name}/{run.path.name}"
    obs_version = int(options.get("obs_version", 1))
    policy = SB3Policy(
        model, layout, mode, vn, deterministic=deterministic, name=name, obs_version=obs_version
    )
    policy.residual = residual_of(cfg)
    config = getattr(env, "config", None)
    if config is not None:
        if config.action_mode != mode:
            raise ValueError(
                f"{path} was trained with action mode {mode!r}, the env uses "
                f"{config.action_mode!r} (reclaim evaluate --action-mode {mode})"
            )
        have = {
            "obs_version": config.obs_version,
            "decision_period_s": float(config.ticks_per_step * config.params.tick_ms / 1000.0),
            "hold_deadband": float(config.hold_deadband),
        }
        bad = [k for k in have if k in options and have[k] != options[k]]
        if bad:
            was = ", ".join(f"{k}={options[k]!r}" for k in bad)
            now = ", ".join(f"{k}={have[k]!r}" for k in bad)
            raise ValueError(f"{path} was trained on an env with {was}; this env has {now}")
        if layout == "flat" and config.num_vms != policy._flat_vms:
            raise ValueError(
                f"{path} (layout flat) drives {policy._flat_vms} VMs, the env has {config.num_vms}"
            )
    return policy


def residual_of(cfg: dict[str, Any]) -> tuple[str, float] | None:
    """(heuristic, scale) of a train config (``TrainConfig.to_dict``), None if not residual."""
    if not cfg.get("residual"):
        return None
    scale = cfg.get("residual_scale")
    return str(cfg["residual"]), float(RESIDUAL_SCALE if scale is None else scale)


def run_episodes(
    policy: Any,
    scenario: str,
    seeds: Sequence[int],
    action_mode: str = "absolute",
    max_episode_steps: int | None = None,
    for_env: Callable[[Any, Any], Any] | None = None,
    **env_options: Any,
) -> dict[str, np.ndarray]:
    """One episode per seed, batched: ``{"return": (S,), "length": (S,)}``.

    The evaluations during training, on :func:`envs.rollout.first_episodes` (the loop of
    ``experiments.evaluate`` too, which adds every metric). ``for_env(policy, env)``, if
    given, readies the policy for the env built here (``agents.policies.over_env``);
    ``env_options`` (``obs_version``, ``decision_period_s``, ``hold_deadband``) build it."""
    from envs.rollout import first_episodes
    from envs.vector_env import BalloonVectorEnv

    env = BalloonVectorEnv(
        len(seeds),
        scenario,
        max_episode_steps=max_episode_steps,
        action_mode=action_mode,
        **env_options,
    )
    episodes = first_episodes(env, policy if for_env is None else for_env(policy, env), seeds)
    return {
        "return": np.array([e["return"] for e in episodes], dtype=np.float64),
        "length": np.array([e["length"] for e in episodes], dtype=np.int64),
    }
