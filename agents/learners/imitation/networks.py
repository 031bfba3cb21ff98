"""The student network of imitation: PPO's per-VM actor-critic, and the policy around it.

The student is the network class that ``reclaim train`` gives PPO with the per-VM
layout: a Stable-Baselines3 ``ActorCriticPolicy`` over one VM's row of
:func:`agents.layout.per_vm_features` (its own features, their host mean and max, the
host's features: 65 values in observation v2), shared by every VM of every host, with
PPO's defaults (``net_arch`` 64,64 for the actor and the critic, Gaussian actions with
``log_std_init`` −0.5). Imitation trains only the actor's mean; PPO fine-tunes the
same network (``reclaim train --init-from RUN``, :mod:`agents.learners.sb3.finetune`:
the actor's weights loaded into a PPO model built with the same ``net_arch``, the frozen
observation statistics below as its VecNormalize ``obs_rms``).

Observations are normalized as SB3's ``VecNormalize`` does, ``clip((x − mean) /
sqrt(var + 1e-8), −10, 10)``, with ``mean`` / ``var`` taken once, from the behaviour-cloning
data, and frozen (saved with the network).

Actions, per VM: in ``absolute`` mode one value, the absolute balloon action ``a = 2 ·
target / max_balloon − 1``; in ``absolute-hold`` mode two, (target action, hold flag),
as the env's ``absolute-hold`` Box takes them (targets first, then flags, per host).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.layout import num_vms_of, per_vm_features, per_vm_size
from envs.env_batch import HOLD_ACTION_MODES

OBS_EPS = 1e-8  # VecNormalize's epsilon
OBS_CLIP = 10.0  # VecNormalize's clip_obs (agents/training.py wrap_normalize)


def actions_per_vm(action_mode: str) -> int:
    return 2 if action_mode in HOLD_ACTION_MODES else 1


def make_actor_critic(obs_version: int, action_mode: str, net_arch: tuple[int, ...],
                      log_std_init: float, learning_rate: float) -> Any:  # fmt: skip
    """A fresh SB3 ``ActorCriticPolicy`` for one VM's features (PPO's MlpPolicy)."""
    from gymnasium import spaces
    from stable_baselines3.common.policies import ActorCriticPolicy

    obs_space = spaces.Box(0.0, 1.0, shape=(per_vm_size(obs_version),), dtype=np.float32)
    act_space = spaces.Box(-1.0, 1.0, shape=(actions_per_vm(action_mode),), dtype=np.float32)
    return ActorCriticPolicy(
        obs_space,
        act_space,
        lambda _: learning_rate,
        net_arch=list(net_arch),
        log_std_init=log_std_init,
    )


class Student:
    """The shared per-VM network and its frozen observation statistics.

    Args:
        obs_version: the env observation version (the per-VM layout follows it).
        action_mode: ``"absolute"`` or ``"absolute-hold"``.
        net_arch: hidden layers (actor and critic each).
        log_std_init: the Gaussian's initial log std (used by PPO, not by imitation).
        learning_rate: written into the SB3 policy's optimizer (imitation makes its own).
    """

    def __init__(self, obs_version: int, action_mode: str, net_arch: tuple[int, ...],
                 log_std_init: float = -0.5, learning_rate: float = 1e-3) -> None:  # fmt: skip
        self.obs_version = int(obs_version)
        self.action_mode = action_mode
        self.net_arch = tuple(int(n) for n in net_arch)
        self.log_std_init = float(log_std_init)
        self.learning_rate = float(learning_rate)
        self.net = make_actor_critic(
            self.obs_version, action_mode, self.net_arch, self.log_std_init, learning_rate
        )
        self.net.set_training_mode(False)
        size = per_vm_size(self.obs_version)
        self.obs_mean = np.zeros(size, dtype=np.float64)
        self.obs_var = np.ones(size, dtype=np.float64)

    # ----------------------------------------------------------- features
    def fit_normalization(self, x: np.ndarray) -> None:
        """Take the observation statistics from per-VM rows ``x`` (N, F), as VecNormalize
        would from those samples (population mean and variance)."""
        x = np.asarray(x, dtype=np.float64)
        self.obs_mean = x.mean(axis=0)
        self.obs_var = x.var(axis=0)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.obs_mean) / np.sqrt(self.obs_var + OBS_EPS)
        return np.clip(z, -OBS_CLIP, OBS_CLIP).astype(np.float32)

    def features(self, obs: np.ndarray) -> np.ndarray:
        """(B, D) env observations → (B·V, F) normalized per-VM rows."""
        return self.normalize(per_vm_features(obs, self.obs_version))

    # ------------------------------------------------------------ network
    def mean(self, x: Any) -> Any:
        """The actor's Gaussian mean for normalized rows ``x`` (a torch tensor (N, F))."""
        net = self.net
        latent = net.mlp_extractor.forward_actor(net.extract_features(x, net.pi_features_extractor))
        return net.action_net(latent)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, F) normalized rows → (N, A) deterministic actions in [-1, 1]."""
        import torch

        with torch.no_grad():
            m = self.mean(torch.as_tensor(x, dtype=torch.float32)).numpy()
        return np.clip(m, -1.0, 1.0)

    def env_actions(self, obs: np.ndarray) -> np.ndarray:
        """(B, D) observations → the env's (B, V) actions (``absolute-hold``: (B, 2·V),
        targets then hold flags), float32."""
        obs = np.asarray(obs)
        B = obs.shape[0]
        V = num_vms_of(obs.shape[1], self.obs_version)
        a = self.predict(self.features(obs)).reshape(B, V, -1)
        return per_vm_to_env(a).astype(np.float32)

    # --------------------------------------------------------------- files
    def to_dict(self) -> dict[str, Any]:
        return {
            "obs_version": self.obs_version,
            "action_mode": self.action_mode,
            "net_arch": list(self.net_arch),
            "log_std_init": self.log_std_init,
            "learning_rate": self.learning_rate,
            "state_dict": self.net.state_dict(),
            "obs_mean": self.obs_mean.copy(),
            "obs_var": self.obs_var.copy(),
        }

    def save(self, path: Path) -> None:
        import torch

        torch.save(self.to_dict(), str(path))

    @classmethod
    def load(cls, path: str | Path) -> Student:
        import torch

        d = torch.load(str(path), map_location="cpu", weights_only=False)
        s = cls(d["obs_version"], d["action_mode"], tuple(d["net_arch"]), d["log_std_init"],
                d["learning_rate"])  # fmt: skip
        s.net.load_state_dict(d["state_dict"])
        s.obs_mean = np.asarray(d["obs_mean"], dtype=np.float64)
        s.obs_var = np.asarray(d["obs_var"], dtype=np.float64)
        return s


def per_vm_to_env(a: np.ndarray) -> np.ndarray:
    """(B, V, A) per-VM actions → the env's (B, A·V) layout: targets of every VM, then
    (A = 2) their hold flags."""
    B, V, A = a.shape
    return np.ascontiguousarray(np.moveaxis(a, 2, 1).reshape(B, A * V))


class ImitationPolicy:
    """A trained student behind the policy interface (``reset(seed)``, ``act(obs, info)``).

    Acts on observations of the run's version in the run's action mode; deterministic
    (the actor's mean). ``env_options`` are the env options the run was trained with
    (``obs_version``, ``decision_period_s``, ``hold_deadband``, ``action_mode``):
    evaluate it on an env built with them.
    """

    def __init__(self, student: Student, env_options: dict[str, Any], name: str = "imitation"):
        self.student = student
        self.env_options = dict(env_options)
        self.name = name
        self.action_mode = student.action_mode
        self.action_modes = (student.action_mode,)

    def reset(self, seed: int | None = None) -> None:
        """Nothing to forget: the student is a function of the observation."""

    def act(self, obs: np.ndarray, info: Any = None) -> np.ndarray:
        obs = np.asarray(obs)
        single = obs.ndim == 1
        a = self.student.env_actions(obs[None] if single else obs)
        return a[0] if single else a

    def __repr__(self) -> str:
        return f"ImitationPolicy({self.name!r}, {self.env_options})"
