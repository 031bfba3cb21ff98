"""The natively batched ``gymnasium.vector.VectorEnv`` of ``reclaim/Balloon-v0``.

All ``num_envs`` hosts are stepped by one :class:`~envs.sim.core.Simulator` call through
:class:`~envs.env_batch.EnvBatch` (the same logic as the single env, with ``B > 1``).
Observations, rewards, terminations, truncations and info are bit-for-bit those of a
``SyncVectorEnv`` of ``BalloonEnv`` s with seeds ``seed + i`` in the same autoreset mode
(the contract tests check it), so the single env is a free differential oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.balloon_env import action_space, observation_space
from envs.env_batch import (
    RENDER_MODES,
    add_batch_info,
    build_batch,
    check_render_mode,
    check_seed,
)
from envs.scenarios import DEFAULT_SCENARIO


class BalloonVectorEnv(VectorEnv):
    """``num_envs`` independent ``reclaim/Balloon-v0`` hosts of one configuration.

    Args:
        num_envs: ``B``.
        scenario: scenario id.
        max_episode_steps: episode length, one int for all or one per env (default: the
            scenario's).
        action_mode: ``"absolute"``, ``"delta"`` or ``"discrete"`` (see ``BalloonEnv``).
        render_mode: None, ``"ansi"`` or ``"rgb_array"``; ``render()`` returns a tuple
            with one frame per env, as ``SyncVectorEnv`` does.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default; the step after an episode's
            end resets that env, ignoring its action, with reward 0) or
            ``AutoresetMode.SAME_STEP`` (the ending step returns the new episode's first
            observation; the last one is in ``info["final_obs"]`` and the step's info in
            ``info["final_info"]``). Also accepted as the strings ``"NextStep"`` /
            ``"SameStep"``.
        **overrides: HostParams / CostParams fields (see ``envs.env_batch.make_config``),
            and the agent-interface options of ``BalloonEnv``: ``obs_version``,
            ``decision_period_s``, ``hold_deadband`` (observation v2, one step per
            decision of ``k`` ticks, holding; ``reclaim/Balloon-v2`` sets the first two).

    Seeding: ``reset(seed=s)`` seeds env ``i`` with ``s + i``; a list gives one seed per
    env; None draws fresh entropy. Autoresets draw each env's next episode seed from its
    own generator. Returned arrays are fresh copies, never views of internal buffers.
    """

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str = DEFAULT_SCENARIO,
        *,
        max_episode_steps: int | Sequence[int] | None = None,
        action_mode: str = "absolute",
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **overrides: Any,
    ) -> None:
        check_render_mode(render_mode)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(
                f"autoreset_mode must be AutoresetMode.NEXT_STEP or SAME_STEP, "
                f"got {autoreset_mode!r}"
            ) from None
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"autoreset_mode must be NEXT_STEP or SAME_STEP, got {mode}")
        self.config, self.core = build_batch(
            scenario, num_envs, max_episode_steps, action_mode, overrides
        )
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.autoreset_mode = mode
        self.metadata = {"render_modes": list(RENDER_MODES), "autoreset_mode": mode}
        self.single_observation_space = observation_space(self.config)
        self.single_action_space = action_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)  # (B,) NEXT_STEP: reset next step

    @property
    def params(self):
        return self.config.params

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        B = self.num_envs
        allowed = f"seed must be None, an int >= 0, or a list of {B} seeds (ints >= 0 or None)"
        if seed is None:
            seeds: list[int | None] = [None] * B
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            if seed < 0:
                raise ValueError(f"{allowed}; got {seed!r}")
            super().reset(seed=int(seed))
            seeds = [int(seed) + i for i in range(B)]
        elif isinstance(seed, (list, tuple, np.ndarray)) and len(seed) == B:
            try:
                seeds = [check_seed(s) for s in seed]
            except ValueError:
                raise ValueError(f"{allowed}; got {seed!r}") from None
        else:  # a str, a float, a wrong-length list: never read as per-env seeds
            raise ValueError(f"{allowed}; got {seed!r}")
        mask = np.ones(B, dtype=bool)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (B,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(
                    f"options['reset_mask'] must be a ({B},) bool array with a True entry, "
                    f"got {options['reset_mask']!r}"
                )
        obs = self.core.reset(seeds, mask)
        self._autoreset[mask] = False
        return obs, add_batch_info({}, self.core.reset_info(), mask)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        out = self.core.step(actions)
        obs, reward = out.obs, out.reward
        terminated, truncated = out.terminated, out.truncated
        infos: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            # Envs that ended last step were stepped with the others (their step is
            # discarded: stepping an env never affects another) and now restart.
            ar = self._autoreset.copy()
            stepped = ~ar
            add_batch_info(infos, out.info, stepped)
            if out.summary:
                add_batch_info(infos, {"episode_summary": out.summary}, out.done & stepped)
            reset_info = self.core.autoreset(obs, ar)
            if reset_info is not None:
                reward[ar] = 0.0
                terminated[ar] = False
                truncated[ar] = False
                add_batch_info(infos, reset_info, ar)
            self._autoreset = terminated | truncated
        else:
            done = out.done
            add_batch_info(infos, out.info, ~done)
            if done.any():
                final_info = add_batch_info({}, out.info, done)
                add_batch_info(final_info, {"episode_summary": out.summary}, done)
                final_obs = np.full(self.num_envs, None, dtype=object)
                for b in np.nonzero(done)[0]:
                    final_obs[b] = obs[b].copy()
                infos["final_obs"], infos["_final_obs"] = final_obs, done.copy()
                infos["final_info"], infos["_final_info"] = final_info, done.copy()
                add_batch_info(infos, self.core.autoreset(obs, done), done)
        return obs, reward, terminated, truncated, infos

    def render(self) -> tuple[Any, ...] | None:
        if self.render_mode is None:
            return None
        return tuple(self.core.render(self.render_mode, b) for b in range(self.num_envs))
