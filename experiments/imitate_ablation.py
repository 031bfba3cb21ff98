"""Balloon-v2's decision period and holding, chosen by measurement (issue #23).

For each decision period (1, 5, 15 s) and holding option (none, a dead-band of 0.05 of
max balloon, ``action_mode="absolute-hold"``), a student is trained by DAgger from ESX
(:mod:`agents.learners.imitation`, the same budget for every cell) on TRAIN scenarios
only, then evaluated on held-out seeds of each. Reported per cell: the cost ratio to ESX
deciding at its own period on a one-tick env (the reference every cell shares; cost =
−return), the cost ratio to ESX on the cell's own env (the teacher), and the balloon
pages moved per episode (inflated + deflated, summed over VMs), student and ESX.

    python -m experiments.imitate_ablation --out experiments/results/interface-v2

writes ``ablation.csv`` (one row per cell and scenario; ``--csv`` names it, e.g. for
another ``--seed``) and prints the table (per cell: the mean over scenarios). Training
seed 0 and held-out seeds 1000-1007 by default. One process, ~20 min on one core.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from envs.files import write_csv

SCENARIOS = ("default-v1", "cache-fill-v1", "gc-heap-v1")  # train split
PERIODS_S = (1.0, 5.0, 15.0)
HOLDS = {  # name -> env options (each explicit: the imitate default is Balloon-v2's 0.05 band)
    "none": {"hold_deadband": 0.0},
    "deadband-0.05": {"hold_deadband": 0.05},
    "absolute-hold": {"action_mode": "absolute-hold", "hold_deadband": 0.0},
}
FIELDS = ("period_s", "hold", "scenario", "student_return", "esx_return", "esx_one_tick_return",
          "cost_ratio_vs_esx_one_tick", "cost_ratio_vs_esx_same_env",
          "student_pages_moved", "esx_pages_moved", "esx_one_tick_pages_moved",
          "train_s")  # fmt: skip


def run(
    out: Path, iterations: int, episodes: int, eval_episodes: int, eval_seed: int,
    seed: int = 0, periods: tuple[float, ...] = PERIODS_S, holds: tuple[str, ...] = tuple(HOLDS),
    csv_name: str = "ablation.csv", scenarios: tuple[str, ...] = SCENARIOS,
) -> list[dict]:  # fmt: skip
    from agents.learners.imitation import ImitateConfig, train

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for period in periods:
            for hold in holds:
                opts = HOLDS[hold]
                t0 = time.perf_counter()
                cfg = ImitateConfig(
                    teacher="esx", scenario=",".join(scenarios), seed=seed,
                    iterations=iterations, episodes=episodes, decision_period_s=period,
                    eval_episodes=eval_episodes, eval_seed=eval_seed, runs_dir=runs_dir,
                    name=f"p{period:g}-{hold}", progress_bar=False, **opts,
                )  # fmt: skip
                res = train(cfg)
                wall = time.perf_counter() - t0
                for sid in scenarios:
                    ev = res.final_eval[sid]
                    rows.append({
                        "period_s": period, "hold": hold, "scenario": sid,
                        "student_return": ev["student"]["return"],
                        "esx_return": ev["teacher"]["return"],
                        "esx_one_tick_return": ev["teacher_one_tick"]["return"],
                        "cost_ratio_vs_esx_one_tick": ev["cost_ratio_vs_teacher_one_tick"],
                        "cost_ratio_vs_esx_same_env": ev["cost_ratio_vs_teacher"],
                        "student_pages_moved": ev["student"]["balloon_pages_moved"],
                        "esx_pages_moved": ev["teacher"]["balloon_pages_moved"],
                        "esx_one_tick_pages_moved": ev["teacher_one_tick"]["balloon_pages_moved"],
                        "train_s": round(wall, 1),
                    })  # fmt: skip
                print(table_row(rows[-len(scenarios) :]), flush=True)
                write_csv(out / csv_name, rows, FIELDS)
    return rows


def table_row(rows: list[dict]) -> str:
    """One markdown row: a cell's means over its scenarios."""
    r0 = rows[0]

    def m(k: str) -> float:
        return float(np.mean([float(r[k]) for r in rows]))

    return (
        f"| {r0['period_s']:g} | {r0['hold']} | {m('cost_ratio_vs_esx_one_tick'):.3f} | "
        f"{m('cost_ratio_vs_esx_same_env'):.3f} | {m('student_pages_moved'):.0f} | "
        f"{m('esx_pages_moved'):.0f} | {m('esx_one_tick_pages_moved'):.0f} |"
    )


HEADER = (
    "| period (s) | hold | cost / ESX one-tick | cost / ESX same env | pages moved (student) "
    "| pages moved (ESX same env) | pages moved (ESX one-tick) |\n|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("experiments/results/interface-v2"))
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--eval-episodes", type=int, default=8)
    ap.add_argument("--eval-seed", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="training seed of every cell")
    ap.add_argument("--periods", type=float, nargs="+", default=list(PERIODS_S))
    ap.add_argument("--holds", nargs="+", choices=list(HOLDS), default=list(HOLDS))
    ap.add_argument("--csv", default="ablation.csv", help="file name of the CSV in --out")
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS),
                    help="training scenarios (train split only; the v2 physics: "
                    "default-v2 cache-fill-v2 gc-heap-v2)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    print(HEADER, flush=True)
    run(a.out, a.iterations, a.episodes, a.eval_episodes, a.eval_seed, a.seed,
        tuple(a.periods), tuple(a.holds), a.csv, tuple(a.scenarios))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
