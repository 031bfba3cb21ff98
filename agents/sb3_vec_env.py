"""A Stable-Baselines3 ``VecEnv`` over the natively batched ``reclaim/Balloon-v0``.

Thin: all env logic is :class:`envs.adapter.BatchCore` (the same as the Gymnasium
adapters); this file only speaks SB3's VecEnv conventions, which match ``DummyVecEnv``
of ``BalloonEnv`` s (the contract tests compare the two):

- same-step reset: an env whose episode ends returns the new episode's first
  observation; the last one is ``info["terminal_observation"]``;
- ``info["TimeLimit.truncated"]`` is True when the episode was cut by
  ``max_episode_steps`` and not ended by a host OOM;
- at an episode's end ``info["episode"] = {"r", "l", "t"}`` as SB3's ``Monitor`` writes
  it (so no Monitor wrapper is needed for episode logging) and
  ``info["episode_summary"]`` as in the Gymnasium envs;
- ``seed(s)`` makes the next ``reset()`` seed env ``i`` with ``s + i``; seeds are used
  once; later episodes draw their seeds from each env's own generator.

Rewards are float32 and observations fresh float32 arrays, as ``DummyVecEnv`` returns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from envs.adapter import build_batch, check_render_mode, info_row
from envs.balloon_env import action_space, observation_space
from envs.scenarios import DEFAULT_SCENARIO


class BalloonSB3VecEnv(VecEnv):
    """``num_envs`` Balloon hosts as one SB3 VecEnv (arguments as ``BalloonVectorEnv``)."""

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str = DEFAULT_SCENARIO,
        *,
        max_episode_steps: int | Sequence[int] | None = None,
        action_mode: str = "absolute",
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        check_render_mode(render_mode)
        self.config, self.core = build_batch(
            scenario, num_envs, max_episode_steps, action_mode, overrides
        )
        self.render_mode = render_mode
        self._actions: np.ndarray | None = None
        self._t_start = time.time()
        super().__init__(num_envs, observation_space(self.config), action_space(self.config))

    @property
    def params(self):
        return self.config.params

    def reset(self) -> VecEnvObs:
        obs = self.core.reset(list(self._seeds))
        info = self.core.reset_info()
        self.reset_infos = [info_row(info, b) for b in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        out = self.core.step(self._actions)
        self._actions = None
        B = self.num_envs
        done = out.done
        infos = [info_row(out.info, b) for b in range(B)]
        for b in range(B):
            infos[b]["TimeLimit.truncated"] = bool(out.truncated[b] and not out.terminated[b])
        obs = out.obs
        if done.any():
            t = round(time.time() - self._t_start, 6)
            for b in np.nonzero(done)[0]:
                summary = info_row(out.summary, b)
                infos[b]["terminal_observation"] = obs[b].copy()
                infos[b]["episode_summary"] = summary
                infos[b]["episode"] = {"r": summary["return"], "l": summary["length"], "t": t}
            obs[done] = self.core.reset([None] * B, done)[done]
            reset_info = self.core.reset_info()
            for b in np.nonzero(done)[0]:
                self.reset_infos[b] = info_row(reset_info, b)
        return obs, out.reward.astype(np.float32), done, infos

    def close(self) -> None:
        pass

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [self.core.render("rgb_array", b) for b in range(self.num_envs)]

    # All envs share one configuration, so attributes are those of this object.
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(
            f"cannot set {attr_name!r}: every env of a BalloonSB3VecEnv shares one "
            "configuration; build a new VecEnv instead"
        )

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        if method_name == "render":
            mode = self.render_mode
            return [self.core.render(mode, b) for b in self._get_indices(indices)]
        raise AttributeError(f"BalloonSB3VecEnv has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
