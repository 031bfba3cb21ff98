"""Baselines from Python: the classic heuristics on a v1 scenario, side by side.

    python docs/examples/baselines.py [--scenario default-v1] [--seeds 2] [--steps 64]

``make_policy(name, env)`` builds any registered policy for an env as ``gym.make``
returns it; ``agents.HEURISTIC_NAMES`` lists the deployable rules. A policy acts on the
observation and the info, as a real host agent would (the oracle alone reads the
simulator). ``reclaim evaluate`` does the same at scale, natively batched.
"""

import argparse

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the reclaim/* env ids)
from agents import HEURISTIC_NAMES, make_policy


def episode_return(name: str, scenario: str, seed: int, steps: int | None) -> float:
    env = gym.make("reclaim/Balloon-v1", scenario=scenario, max_episode_steps=steps)
    policy = make_policy(name, env)
    obs, info = env.reset(seed=seed)
    policy.reset(seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        total += float(reward)
        done = terminated or truncated
    env.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default-v1")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="ticks per episode")
    args = parser.parse_args()

    print(f"{'policy':>12}  mean return over {args.seeds} seeds (higher is better)")
    for name in HEURISTIC_NAMES:
        returns = [episode_return(name, args.scenario, s, args.steps) for s in range(args.seeds)]
        print(f"{name:>12}  {np.mean(returns):9.3f}")


if __name__ == "__main__":
    main()
