"""``reclaim train``: train one RL agent (one algorithm, scenario set and seed).

The options are the fields of :class:`agents.training.TrainConfig`; hyperparameters left
unset take the algorithm's defaults (``agents.training.ALGO_DEFAULTS``), and the
resolved values are written to ``<runs-dir>/<name>/<seed>/config.json``. A bad config,
an incompatible action mode, an unknown scenario, or (``--resume``) a missing or corrupt
checkpoint fails before any training time is spent (``ConfigError``: exit status 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.training import TrainConfig


def run(config: TrainConfig) -> int:
    from agents.training import train
    from experiments.user_errors import check_scenarios

    check_scenarios("--scenario", config.scenarios)  # their trace data must be present
    result = train(config)
    means = ", ".join(f"{k} {v:.3f}" for k, v in result.final_eval.items())
    print(
        f"trained {config.algo} for {result.env_steps} env steps in {result.wall_s:.1f} s "
        f"-> {result.run_dir}\nfinal evaluation (mean return, {config.eval_episodes} held-out "
        f"seeds): {means}"
    )
    return 0
