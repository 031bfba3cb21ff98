"""One episode's per-tick, per-VM memory gauges (the data of the compare timeline plot)."""

from __future__ import annotations

import numpy as np


def episode_timeline(policy: str, scenario: str, seed: int, action_mode: str,
                     steps: int | None) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-tick per-VM gauges of one episode: balloon, guest used, host swapped, double
    paging (each (T, V))."""
    from agents.policies import make_policy
    from envs.rollout import rollout_steps
    from envs.vector_env import BalloonVectorEnv

    env = BalloonVectorEnv(1, scenario, max_episode_steps=steps, action_mode=action_mode)
    keys = ("balloon_pages", "guest_used_pages", "host_swapped_pages", "double_paging")
    rec: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for step in rollout_steps(env, make_policy(policy, env), [seed]):
        for k in keys:
            rec[k].append(np.asarray(step.info["vm"][k][0]).copy())
    return {k: np.array(v) for k, v in rec.items()}
