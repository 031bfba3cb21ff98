"""Train Stable-Baselines3's PPO on ReclaimGym and compare it with ESX on held-out seeds.

    python docs/examples/sb3_train.py [--timesteps 20000] [--steps 64]

A plain SB3 script, with one ReclaimGym-specific line: ``torch.set_num_threads(1)``.
The networks are small, so torch's default of one thread per core spends its time
synchronizing threads: on 2 cores, 1,024 PPO steps take ~4 s with one thread and ~30 s
with two. ``reclaim train`` sets it for you (``--torch-threads``) and adds the per-VM
network, checkpoints, resume and evaluation; see docs/training.md.
"""

import argparse

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO

import envs  # noqa: F401  (registers the reclaim/* env ids)
from agents import make_policy

torch.set_num_threads(1)  # small networks: one thread is the fastest (see above)


def run(env: gym.Env, act, seed: int) -> float:
    obs, info = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(act(obs, info))
        total += float(reward)
        done = terminated or truncated
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=64, help="ticks per episode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = gym.make("reclaim/Balloon-v1", scenario="default-v1", max_episode_steps=args.steps)
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, seed=args.seed, verbose=0)
    model.learn(total_timesteps=args.timesteps)

    esx = make_policy("esx", env)
    held_out = range(1000, 1003)  # seeds never used in training
    ppo_returns, esx_returns = [], []
    for seed in held_out:
        ppo_returns.append(run(env, lambda o, i: model.predict(o, deterministic=True)[0], seed))
        esx.reset(seed)
        esx_returns.append(run(env, esx.act, seed))
    print(f"PPO after {args.timesteps} steps: {np.mean(ppo_returns):.3f}   "
          f"ESX: {np.mean(esx_returns):.3f}   (mean return on held-out seeds)")


if __name__ == "__main__":
    main()
