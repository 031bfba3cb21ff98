"""``reclaim train``: train one RL agent (one algorithm, scenario set and seed).

Every field of :class:`agents.training.TrainConfig` is an option; hyperparameters left
unset take the algorithm's defaults (``agents.training.ALGO_DEFAULTS``), and the
resolved values are written to ``<runs-dir>/<name>/<seed>/config.json``. A bad config,
an incompatible action mode, an unknown scenario, or (``--resume``) a missing or corrupt
checkpoint fails before any training time is spent.
"""

from __future__ import annotations

import argparse
import sys

from experiments.argconfig import add_dataclass_arguments, dataclass_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from agents.training import TrainConfig

    add_dataclass_arguments(parser, TrainConfig)


def run(args: argparse.Namespace) -> int:
    from agents.training import ConfigError, TrainConfig, train

    try:
        config = dataclass_from_args(TrainConfig, args)
        result = train(config)
    except (ConfigError, FileNotFoundError) as e:
        print(f"reclaim train: error: {e}", file=sys.stderr)
        return 2
    means = ", ".join(f"{k} {v:.3f}" for k, v in result.final_eval.items())
    print(
        f"trained {config.algo} for {result.env_steps} env steps in {result.wall_s:.1f} s "
        f"-> {result.run_dir}\nfinal evaluation (mean return, {config.eval_episodes} held-out "
        f"seeds): {means}"
    )
    return 0
