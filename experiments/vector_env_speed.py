"""Env-level throughput: the native vector env against ``SyncVectorEnv`` of single envs.

Target (issue #3): with 64 envs the native ``BalloonVectorEnv`` takes >= 30x more env
steps per second than a ``SyncVectorEnv`` over 64 ``BalloonEnv`` s, same configuration,
same run. Both are driven with the same random actions (seeded), NEXT_STEP autoreset.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym

from envs.balloon_env import BalloonEnv
from envs.scenarios import DEFAULT_SCENARIO
from envs.vector_env import BalloonVectorEnv


def _time_vec(env: gym.vector.VectorEnv, steps: int, warmup: int, seed: int) -> float:
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(warmup + steps)]
    for a in actions[:warmup]:
        env.step(a)
    t0 = time.perf_counter()
    for a in actions[warmup:]:
        env.step(a)
    return time.perf_counter() - t0


def bench_vector_vs_sync(
    scenario: str = DEFAULT_SCENARIO,
    num_envs: int = 64,
    steps: int = 50,
    warmup: int = 5,
    seed: int = 0,
    **overrides: Any,
) -> dict[str, float]:
    """Env steps per second of both, and their ratio (native / sync).

    ``steps`` vector steps are timed after ``warmup`` untimed ones; one vector step is
    ``num_envs`` env steps.
    """
    native = BalloonVectorEnv(num_envs, scenario, **overrides)
    sync = gym.vector.SyncVectorEnv(
        [lambda: BalloonEnv(scenario, **overrides) for _ in range(num_envs)]
    )
    t_native = _time_vec(native, steps, warmup, seed)
    t_sync = _time_vec(sync, steps, warmup, seed)
    n = steps * num_envs
    native_sps, sync_sps = n / t_native, n / t_sync
    return {
        "scenario": scenario,
        "num_envs": num_envs,
        "steps": steps,
        "native_steps_per_s": native_sps,
        "sync_steps_per_s": sync_sps,
        "ratio": native_sps / sync_sps,
    }


if __name__ == "__main__":  # python -m experiments.vector_env_speed
    res = bench_vector_vs_sync()
    print({k: (round(v, 1) if isinstance(v, float) else v) for k, v in res.items()})
    print("target (ratio >= 30):", "met" if res["ratio"] >= 30.0 else "NOT met")
