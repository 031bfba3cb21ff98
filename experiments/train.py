"""``reclaim train``: train one RL agent (one algorithm, scenario set and seed).

The options are the fields of :class:`agents.learners.sb3.train.TrainConfig`; hyperparameters left
unset take the algorithm's defaults (``agents.learners.sb3.train.ALGO_DEFAULTS``), and the
resolved values are written to ``<runs-dir>/<name>/<seed>/config.json``. A bad config,
an incompatible action mode, an unknown scenario, or (``--resume``) a missing or corrupt
checkpoint fails before any training time is spent (``ConfigError``: exit status 2).

Before a long run it says how long it will take (``experiments.estimate``); at the end it
prints the trained policy's mean return beside ESX's and no-balloon's on the same
held-out seeds (the yardstick: a return means little alone). ``--resume`` of a finished
run says so and does nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.learners.sb3.train import TrainConfig

YARDSTICKS = ("esx", "no-balloon")
"""Baselines printed beside the trained policy's final evaluation."""

THREADS_HINT = (
    "hint: --torch-threads {n}: these small networks train fastest on one torch thread "
    "(1,024 PPO env steps took ~4 s with 1 thread and ~31 s with 2, on 2 cores); "
    "to use more cores, run seeds in parallel (one process per seed, or reclaim compare --jobs)"
)


def yardstick(config: TrainConfig) -> dict[str, dict[str, float]]:
    """scenario -> baseline -> mean return on the final evaluation's seeds and episode
    length (``TrainConfig.eval_seed`` + k, k < ``eval_episodes``)."""
    import numpy as np

    from experiments.evaluate import run_policy

    seeds = [config.eval_seed + k for k in range(config.eval_episodes)]
    return {
        sc: {p: float(np.mean([r["return"] for r in run_policy(
            p, sc, seeds, max_episode_steps=config.max_episode_steps,
            overrides=config.env_options)])) for p in YARDSTICKS}
        for sc in config.scenarios
    }  # fmt: skip


def yardstick_table(final_eval: dict[str, float], base: dict[str, dict[str, float]],
                    algo: str) -> str:  # fmt: skip
    """A small table: per scenario the trained policy's mean return and the baselines'."""
    rows: list[list[Any]] = [[sc, r, *(base[sc][p] for p in YARDSTICKS)]
                             for sc, r in final_eval.items()]  # fmt: skip
    if len(rows) > 1:
        n = len(rows)
        rows.append(["mean", *(sum(r[i] for r in rows) / n for i in range(1, 2 + len(YARDSTICKS)))])
    head = ["scenario", algo, *YARDSTICKS]
    cells = [head] + [[r[0], *(f"{x:.3f}" for x in r[1:])] for r in rows]
    width = [max(len(str(c[i])) for c in cells) for i in range(len(head))]
    lines = []
    for k, c in enumerate(cells):
        lines.append("  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                               for i, (x, w) in enumerate(zip(c, width, strict=True))))  # fmt: skip
        if k == 0:
            lines.append("  ".join("-" * w for w in width))
    return "\n".join(lines)


def run(config: TrainConfig) -> int:
    from agents.learners.sb3.train import train
    from experiments.estimate import announce
    from experiments.user_errors import check_scenarios

    check_scenarios("--scenario", config.scenarios)  # their trace data must be present
    if not (config.resume and config.run.is_finished(config.total_timesteps)):
        if config.torch_threads > 1:
            print(THREADS_HINT.format(n=config.torch_threads), flush=True)
        announce("train", 1, config.total_timesteps, 1)
    result = train(config)
    if result.already_finished:
        print(f"{result.run_dir} already finished ({result.env_steps} env steps): "
              "nothing to resume, results kept")  # fmt: skip
        return 0
    print(
        f"trained {config.algo} for {result.env_steps} env steps in {result.wall_s:.1f} s "
        f"-> {result.run_dir}\nfinal evaluation (mean return over {config.eval_episodes} "
        f"held-out seeds, from {config.eval_seed}; higher is better):"
    )
    print(yardstick_table(result.final_eval, yardstick(config), config.algo))
    return 0
