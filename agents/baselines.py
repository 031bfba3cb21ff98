"""The simplest baselines: no ballooning, a static partition, random actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import BalloonTargetPolicy, ObservationView, unwrap_env
from envs.env_batch import ACTION_MODES


class NoBalloonPolicy(BalloonTargetPolicy):
    """Host swapping alone: every balloon target is 0, always.

    Rule: target_i = 0. No constants. Source: the baseline of every ballooning study
    (Waldspurger, OSDI 2002, §3: the host pages blindly when it does not balloon).
    """

    name = "no-balloon"

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        return np.zeros((self.num_envs, self.num_vms))


class StaticPartitionPolicy(BalloonTargetPolicy):
    """A fixed partition of host memory in proportion to configured memory.

    Rule: VM ``i`` keeps ``(host_frames − host_min_free) · M_i / Σ_j M_j`` pages, so the
    guests together fit the host without host swapping; its balloon target is
    ``M_i`` minus that (clipped to ``[0, max_balloon_pages]``), set once and never changed.
    Constants: none beyond the params. Source: static partitioning, the "no overcommit"
    baseline (e.g. Waldspurger 2002, §5: allocation proportional to shares, here equal
    shares per page).
    """

    name = "static"

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        usable = self.H - self.params.host_min_free
        keep = usable * self.M / self.M.sum()
        self.fixed = np.clip(np.floor(self.M - keep), 0, self.maxb)  # (V,)

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.fixed, (self.num_envs, self.num_vms)).copy()


class RandomPolicy:
    """Uniformly random actions from the env's action space.

    Rule: ``absolute`` / ``delta``: each action uniform on [−1, 1]; ``discrete``: uniform on
    {0, 1, 2}. Seeded: ``reset(seed)`` makes ``np.random.default_rng(seed)`` (``None``:
    fresh entropy). Source: the sanity floor of any RL benchmark.
    """

    name = "random"
    action_modes: tuple[str, ...] = ACTION_MODES

    def __init__(self, env: Any) -> None:
        env = unwrap_env(env)
        config = getattr(env, "config", None)
        if config is None:
            raise ValueError(f"random needs a ReclaimGym env, got {type(env).__name__}")
        if config.action_mode not in self.action_modes:
            raise ValueError(f"random does not support action mode {config.action_mode!r}")
        self.action_mode = config.action_mode
        self.single = not hasattr(env, "single_action_space")
        self.num_envs = 1 if self.single else int(env.num_envs)
        self.num_vms = config.num_vms
        self.rng = np.random.default_rng()

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        shape = (self.num_vms,) if self.single else (self.num_envs, self.num_vms)
        if self.action_mode == "discrete":
            return self.rng.integers(0, 3, size=shape, dtype=np.int64)
        return self.rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
