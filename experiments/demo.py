"""``reclaim demo``: a reduced ``reclaim compare`` on the default scenario.

PPO trains on ``default-v1`` (one seed; env v1 physics), then PPO and the baselines are evaluated on
fresh seeds of ``default-v1``; the rliable table is printed and the plots written to
``results/demo/`` under the current directory (``--quick``: a ~1-minute smoke version in
``results/demo-quick/``), the training run to ``runs/demo-ppo/``. About 5 minutes on
2 cores; rerunning reuses the finished parts (``--fresh`` starts again).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass

from experiments.user_errors import UserError


@dataclass(frozen=True)
class DemoConfig:
    """A reduced reclaim compare on the default scenario: PPO and the baselines, the
    rliable table and the plots (about 5 minutes on 2 cores; --quick about 1 minute)."""

    quick: bool = False
    """~1-minute smoke version"""
    seed: int = 0
    """training seed: the demo trains seed 0 only (reclaim compare --seeds N trains 0..N-1)"""
    fresh: bool = False
    """discard earlier demo results"""
    results_dir: str = "results"
    """where the report is written (relative: to the current directory)"""
    runs_dir: str = "runs"
    """where the training run lives (relative: to the current directory)"""

    def __post_init__(self) -> None:
        if self.seed != 0:  # it used to be accepted and silently ignored
            raise UserError(f"--seed: the demo trains seed 0 only, got {self.seed!r}")


def demo_config(quick: bool, results_dir: str = "results", runs_dir: str = "runs"):
    from experiments.compare_config import CompareConfig

    common = dict(
        algos=("ppo",), train_scenarios="default-v1", test_scenarios="default-v1", seeds=1,
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


def _changed(config) -> bool:
    """True when the results folder or the training run holds a demo made with another
    config (an older version's): reusing either would mix two experiments."""
    from experiments.compare import train_plan

    try:
        train_plan(config)  # refuses a finished run of another config
    except UserError:
        return True
    path = config.out_dir / "config.json"
    if not path.exists():
        return False
    try:
        old = json.loads(path.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return old != json.loads(json.dumps(config.to_dict()))


def run(args: DemoConfig) -> int:
    from experiments.compare import compare

    config = demo_config(args.quick, args.results_dir, args.runs_dir)
    if not args.fresh and _changed(config):
        print(f"demo: {config.out_dir} holds a demo of another config (an older version?); "
              "starting fresh")  # fmt: skip
        args = dataclasses.replace(args, fresh=True)
    if args.fresh:
        shutil.rmtree(config.out_dir, ignore_errors=True)
        from experiments.compare_config import abs_path

        shutil.rmtree(abs_path(config.runs_dir) / f"{config.name}-ppo", ignore_errors=True)
    t0 = time.time()
    md = compare(config)
    print(md)
    print(f"results and plots: {config.out_dir} ({time.time() - t0:.0f} s)")
    return 0
