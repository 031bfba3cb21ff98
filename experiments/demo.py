"""``reclaim demo``: the main job on the default scenario."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ticks", type=int, default=60, help="simulated ticks")
    parser.add_argument("--seed", type=int, default=0, help="env seed")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from envs.scenarios import DEFAULT_SCENARIO, get_scenario
    from envs.sim.core import Simulator
    from envs.sim.counters import VM_FIELDS

    scenario = get_scenario(DEFAULT_SCENARIO)
    sim = Simulator(scenario.params, 1)
    sim.reset([args.seed])
    totals = np.zeros((scenario.num_vms, len(VM_FIELDS)), dtype=np.int64)
    for _ in range(args.ticks):
        res = sim.step(np.zeros((1, scenario.num_vms), dtype=np.int64))
        totals += res.vm[0]
    print(f"{scenario.id}: {scenario.description} ({args.ticks} ticks, no balloon)")
    for i, name in enumerate(VM_FIELDS):
        print(f"  {name:24s}" + "".join(f"{int(x):>10d}" for x in totals[:, i]))
    return 0
