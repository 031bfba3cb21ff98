"""The one rollout loop: a policy on the native vector env, one episode per seed.

Every caller that plays a policy (``reclaim evaluate``, the evaluations during
training, the timelines of ``reclaim compare``, episode records) runs this loop:
:func:`rollout_steps` yields every step, :func:`first_episodes` collects the episode
statistics. Env ``i`` of the :class:`~envs.vector_env.BalloonVectorEnv` plays seed
``seeds[i]``; all envs step together until every env's first episode has ended (an env
that ends early is autoreset by the env and keeps stepping, its later episodes ignored:
stepping an env never affects another, so the first episodes do not depend on them).

A policy is anything with ``reset(seed)`` and ``act(obs, info) -> actions`` over the
whole batch (``agents.policies.Policy``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from envs.env_batch import info_row


class BatchPolicy(Protocol):
    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class RolloutStep:
    """One step of every env: what the policy did and what the env returned."""

    t: int  # 1-based step number
    action: Any  # the policy's actions, as passed to env.step
    obs: np.ndarray  # (B, D) observations after the step
    reward: np.ndarray  # (B,) float64
    terminated: np.ndarray  # (B,) bool
    truncated: np.ndarray  # (B,) bool
    info: dict[str, Any]  # the vector env's info
    ended: np.ndarray  # (B,) bool: the envs whose first episode ended at this step


def _check_env(env: Any, seeds: Sequence[int]) -> None:
    from gymnasium.vector import AutoresetMode

    if getattr(env, "autoreset_mode", None) != AutoresetMode.NEXT_STEP:
        raise ValueError(
            "the rollout loop needs a BalloonVectorEnv in AutoresetMode.NEXT_STEP (its "
            f"episode summaries are in the step's info), got {env!r}"
        )
    if len(seeds) != env.num_envs:
        raise ValueError(f"need one seed per env ({env.num_envs}), got {len(seeds)}")


def rollout_steps(env: Any, policy: BatchPolicy, seeds: Sequence[int]) -> Iterator[RolloutStep]:
    """Reset ``env`` with ``seeds`` and the policy with ``seeds[0]``, then step until
    every env's first episode has ended, yielding each step.

    The policy acts on the next step only when the caller asks for it, so a caller may
    stop early (``break``) without the policy seeing an observation it does not act on.
    """
    _check_env(env, seeds)
    seeds = list(seeds)
    obs, info = env.reset(seed=seeds)
    policy.reset(seeds[0])
    running = np.ones(env.num_envs, dtype=bool)
    t = 0
    while running.any():
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        t += 1
        ended = running & (terminated | truncated)
        running &= ~ended
        yield RolloutStep(t, action, obs, reward, terminated, truncated, info, ended)


def first_episodes(
    env: Any,
    policy: BatchPolicy,
    seeds: Sequence[int],
    on_step: Callable[[RolloutStep], None] | None = None,
) -> list[dict[str, Any]]:
    """Run :func:`rollout_steps` to the end; the ``episode_summary`` of each env's first
    episode (``return``, ``length``, ``host_oom``, ``seed``, ``stall_us`` per VM,
    ``totals`` per VM event), in env order. ``on_step`` sees every step."""
    episodes: list[dict[str, Any] | None] = [None] * env.num_envs
    for step in rollout_steps(env, policy, seeds):
        if on_step is not None:
            on_step(step)
        for b in np.nonzero(step.ended)[0]:
            episodes[b] = info_row(step.info["episode_summary"], b)
    assert all(e is not None for e in episodes)
    return episodes  # type: ignore[return-value]
