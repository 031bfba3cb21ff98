"""A scenario from your own data: VMs that follow memory-demand series you recorded.

``demand_scenario`` takes files in the published Bitbrains layout (``;``-separated, with
the ``Timestamp [ms]``, ``Memory capacity provisioned [KB]`` and ``Memory usage [KB]``
columns). Here we write two small synthetic series first, so the script runs anywhere::

    python docs/examples/custom_scenario.py [--seeds 2] [--steps 120]
"""

import argparse
import gzip
import math
import tempfile
from pathlib import Path

import gymnasium as gym

import envs  # noqa: F401  (registers the reclaim/* env ids)
from agents import make_policy
from envs.scenarios import demand_scenario

HEADER = ";\t".join(["Timestamp [ms]", "Memory capacity provisioned [KB]", "Memory usage [KB]"])


def write_series(path: Path, period_samples: int, phase: float) -> None:
    """A VM of 4 GiB whose used memory swings between 10 % and 90 % of it."""
    cap_kb = 4 * 1024 * 1024
    rows = [HEADER]
    for i in range(200):  # one sample every 5 minutes, as Bitbrains
        used = cap_kb * (0.5 + 0.4 * math.sin(2 * math.pi * i / period_samples + phase))
        rows.append(f"{1_372_629_804 + 300 * i};\t{cap_kb:.1f};\t{used:.1f}")
    with gzip.open(path, "wt") as f:
        f.write("\n".join(rows) + "\n")


def episode_return(policy_name: str, scenario: str, seed: int, steps: int) -> float:
    env = gym.make("reclaim/Balloon-v1", scenario=scenario, max_episode_steps=steps)
    policy = make_policy(policy_name, env)
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
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=120, help="ticks per episode")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="my-demand-"))
    paths = []
    for k in range(2):
        path = folder / f"vm{k}.csv.gz"
        write_series(path, period_samples=24 + 12 * k, phase=k * math.pi)
        paths.append(str(path))

    # Each of the 4 VMs replays one of the series (chosen from the episode's seed), one
    # sample every `ticks_per_sample` ticks; shorter than Bitbrains' real-time 300 here.
    demand_scenario("my-demand-v1", paths, num_vms=4, overcommit=1.6, guest_pages=1024,
                    ticks_per_sample=10, steps=args.steps)

    for name in ("no-balloon", "esx"):
        returns = [episode_return(name, "my-demand-v1", s, args.steps) for s in range(args.seeds)]
        print(f"{name:>10}: mean return {sum(returns) / len(returns):8.3f} over {args.seeds} seeds")


if __name__ == "__main__":
    main()
