"""``reclaim demo``: a reduced ``reclaim compare`` on the default scenario.

PPO trains on ``default-v0`` (one seed), then PPO and the baselines are evaluated on
fresh seeds of ``default-v0``; the rliable table is printed and the plots written to
``experiments/results/demo/`` (``--quick``: a ~1-minute smoke version in
``experiments/results/demo-quick/``). About 5 minutes on 2 cores; rerunning reuses the
finished parts (``--fresh`` starts again).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="~1-minute smoke version")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--fresh", action="store_true", help="discard earlier demo results")
    parser.add_argument(
        "--results-dir", default="experiments/results", help="where the report is written"
    )
    parser.add_argument("--runs-dir", default="runs", help="where the training run lives")


def demo_config(quick: bool, results_dir: str = "experiments/results", runs_dir: str = "runs"):
    from experiments.compare import CompareConfig

    common = dict(
        algos=("ppo",), train_scenarios="default-v0", test_scenarios="default-v0", seeds=1,
        results_dir=results_dir, runs_dir=runs_dir, jobs=2, progress_bar=False,
    )  # fmt: skip
    if quick:
        return CompareConfig(
            name="demo-quick", total_timesteps=4096, n_envs=16, eval_seeds=2,
            baselines=("no-balloon", "esx", "oracle"), max_episode_steps=64,
            eval_freq=2048, eval_episodes=2, checkpoint_freq=2048, bootstrap_reps=200,
            **common,
        )  # fmt: skip
    return CompareConfig(
        name="demo", total_timesteps=61_440, eval_seeds=4,
        baselines=("no-balloon", "static", "esx", "mom", "oracle"),
        eval_freq=10_240, eval_episodes=4, checkpoint_freq=20_480, bootstrap_reps=2000,
        **common,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from experiments.compare import compare

    config = demo_config(args.quick, args.results_dir, args.runs_dir)
    if args.fresh:
        shutil.rmtree(config.out_dir, ignore_errors=True)
        from experiments.compare import _abs

        shutil.rmtree(_abs(config.runs_dir) / f"{config.name}-ppo", ignore_errors=True)
    t0 = time.time()
    try:
        md = compare(config)
    except (ValueError, FileNotFoundError) as e:
        print(f"reclaim demo: error: {e}", file=sys.stderr)
        return 2
    print(md)
    print(f"results and plots: {config.out_dir} ({time.time() - t0:.0f} s)")
    return 0
