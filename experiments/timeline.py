"""One episode's per-tick, per-VM memory gauges (the data of the compare timeline plot)."""

from __future__ import annotations

import numpy as np


def episode_timeline(policy: str, scenario: str, seed: int, action_mode: str,
                     steps: int | None) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-step per-VM gauges of one episode: balloon, guest used, host swapped, double
    paging (each (T, V)). A trained run plays on the env options it was trained under
    (as ``experiments.evaluate.run_policy``): one row per decision."""
    from agents.learners import run_env_options
    from agents.policies import is_run_path, make_policy
    from envs.rollout import rollout_steps
    from envs.vector_env import BalloonVectorEnv

    options: dict = {"action_mode": action_mode}
    if is_run_path(policy):
        options.update(run_env_options(policy))
    env = BalloonVectorEnv(1, scenario, max_episode_steps=steps, **options)
    keys = ("balloon_pages", "guest_used_pages", "host_swapped_pages", "double_paging")
    rec: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for step in rollout_steps(env, make_policy(policy, env), [seed]):
        for k in keys:
            rec[k].append(np.asarray(step.info["vm"][k][0]).copy())
    return {k: np.array(v) for k, v in rec.items()}
