"""The heuristics' balloon targets as observation features: an agent-side wrapper.

Observation v2 (``envs.env_batch``) gives a learner every gauge the heuristics read;
this wrapper goes one step further and appends what the deployable heuristics would
*decide* from those gauges now: for each named heuristic and each VM, the balloon target
it holds after seeing this observation, as ``target / max_balloon_pages`` in [0, 1]
(0 for a VM that cannot balloon). The heuristics read only host-visible gauges (their
``info_keys`` / ``host_info_keys``) and the observation, so the features are deployable.

Layering: the targets come from ``agents/`` (the heuristics), and ``envs`` never imports
``agents``, so this is a wrapper here rather than an env option. It wraps a
:class:`envs.vector_env.BalloonVectorEnv` (:class:`HeuristicFeaturesVector`, either
autoreset mode) or a single :class:`envs.balloon_env.BalloonEnv`
(:class:`HeuristicFeatures`). Layout: the env's observation, then ``len(names) · V``
features, heuristic-major (``{name}/vm{i}/target_frac``, :func:`feature_names`).

Each heuristic is built for the env's configuration with ``action_mode="absolute"``
(whatever mode the agent uses: only the targets are read, never its actions), reset with
the env and stepped once per env step, so its running statistics and decision period
run as when it drives the env itself (a period in seconds maps to env steps, see
``agents.base``). Its targets change only at its own decisions: it holds them in between,
as when it drives the env. In a new episode (an autoreset) it restarts by itself
(``time_left_frac == 1``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.policies import HEURISTIC_NAMES, REGISTRY

# The rules that decide from gauges (no-balloon and static never change their targets),
# with their published constants: the tuned ones (<name>-tuned) are not in the default
# set, so the default observation keeps its size and meaning.
DEFAULT_HEURISTICS: tuple[str, ...] = tuple(
    n for n in HEURISTIC_NAMES if n not in ("no-balloon", "static")
)


def check_names(names: bool | str | Sequence[str]) -> tuple[str, ...]:
    """True: :data:`DEFAULT_HEURISTICS`; a name or a list of names of
    ``agents.policies.HEURISTIC_NAMES``; ValueError otherwise."""
    if names is True:
        return DEFAULT_HEURISTICS
    if isinstance(names, str):
        names = (names,)
    if isinstance(names, bool) or not isinstance(names, Sequence) or not names:
        raise ValueError(
            f"heuristic_features must be True or a non-empty list of {list(HEURISTIC_NAMES)}, "
            f"got {names!r}"
        )
    bad = [n for n in names if n not in HEURISTIC_NAMES]
    if bad or len(set(names)) != len(names):
        raise ValueError(
            f"heuristic_features must name distinct heuristics of {list(HEURISTIC_NAMES)}, "
            f"got {list(names)}"
        )
    return tuple(names)


def feature_names(names: Sequence[str], num_vms: int) -> list[str]:
    """The names of the appended features, in order."""
    return [f"{n}/vm{i}/target_frac" for n in names for i in range(num_vms)]


class _View:
    """The env as the heuristics need it: its config in absolute mode, and B."""

    def __init__(self, config: Any, num_envs: int, single: bool) -> None:
        self.config = dataclasses.replace(config, action_mode="absolute")
        self.num_envs = num_envs
        if not single:
            self.single_action_space = None


class _Targets:
    """The named heuristics over a batch of ``B`` envs: (B, H·V) target fractions."""

    def __init__(self, names: Sequence[str], config: Any, num_envs: int, single: bool) -> None:
        view = _View(config, num_envs, single)
        self.names = tuple(names)
        self.policies = [REGISTRY[n](view) for n in self.names]
        self.single = single
        maxb = np.array([v.max_balloon_pages for v in config.params.vms], dtype=np.float64)
        self._scale = np.where(maxb > 0, 1.0 / np.maximum(maxb, 1.0), 0.0)  # (V,)

    def reset(self, seed: int | None) -> None:
        for p in self.policies:
            p.reset(seed)

    def features(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        cols = []
        for p in self.policies:
            p.act(obs, info)
            cols.append(p.held_targets * self._scale)  # (B, V)
        out = np.concatenate(cols, axis=1).astype(np.float32)  # (B, H·V)
        return np.clip(out, 0.0, 1.0)


def _extended(space: spaces.Box, extra: int) -> spaces.Box:
    n = space.shape[-1] + extra
    return spaces.Box(0.0, 1.0, shape=space.shape[:-1] + (n,), dtype=np.float32)


class HeuristicFeatures(gym.Wrapper):
    """A single ``BalloonEnv`` whose observation ends with the heuristics' targets.

    Args:
        env: a :class:`envs.balloon_env.BalloonEnv` (or a wrapper of one).
        names: True (:data:`DEFAULT_HEURISTICS`) or heuristic names.
    """

    def __init__(self, env: gym.Env, names: bool | str | Sequence[str] = True) -> None:
        super().__init__(env)
        config = env.unwrapped.config
        self.heuristics = check_names(names)
        self._targets = _Targets(self.heuristics, config, 1, single=True)
        extra = len(self.heuristics) * config.num_vms
        self.observation_space = _extended(env.observation_space, extra)
        self.feature_names = feature_names(self.heuristics, config.num_vms)

    def _obs(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        feats = self._targets.features(obs, info)[0]
        return np.concatenate([obs, feats]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._targets.reset(seed)
        return self._obs(obs, info), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs(obs, info), reward, terminated, truncated, info


class HeuristicFeaturesVector(gym.vector.VectorWrapper):
    """A ``BalloonVectorEnv`` whose observations end with the heuristics' targets.

    In ``SAME_STEP`` autoreset mode ``info["final_obs"]`` keeps the env's own
    observation (without the features): the heuristics never saw it act."""

    def __init__(self, env: gym.vector.VectorEnv, names: bool | str | Sequence[str] = True):
        super().__init__(env)
        config = env.unwrapped.config
        self.heuristics = check_names(names)
        self._targets = _Targets(self.heuristics, config, env.num_envs, single=False)
        extra = len(self.heuristics) * config.num_vms
        self.single_observation_space = _extended(env.single_observation_space, extra)
        self.observation_space = _extended(env.observation_space, extra)
        self.feature_names = feature_names(self.heuristics, config.num_vms)

    def _obs(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        feats = self._targets.features(obs, info)
        return np.concatenate([obs, feats], axis=1).astype(np.float32)

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        first = seed[0] if isinstance(seed, (list, tuple)) else seed
        self._targets.reset(first)
        return self._obs(obs, info), info

    def step(self, actions: Any):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return self._obs(obs, info), reward, terminated, truncated, info
