"""``reclaim scenarios``: the registered scenarios, as a table or as JSON; with
``--headroom``, each scenario's measured headroom (``experiments.headroom``) of one
physics version (the latest by default)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from agents.learners.sb3.train import DEFAULT_IN_HELP
from envs.scenarios import LATEST_VERSION, SPLITS, VERSIONS, get_scenario, scenario_ids
from experiments.user_errors import (
    UserError,
    check_int,
    check_scenarios,
    load_scenario_module_arg,
    split_list,
)


@dataclass(frozen=True)
class ScenariosConfig:
    """List the registered scenarios (id, split, VMs, overcommit, what it stresses)."""

    split: Literal[SPLITS] | None = None  # type: ignore[valid-type]
    """only the scenarios of this split"""
    scenario_module: str | None = None
    """a Python file that registers more scenarios (envs.scenarios.demand_scenario /
    trace_scenario): they are listed too"""
    json: bool = False
    """print a JSON list of objects"""
    version: Literal[VERSIONS] | None = None  # type: ignore[valid-type]
    """only the scenarios of this physics version (the -vN suffix); --headroom: default
    the latest"""
    headroom: bool = False
    """measure each scenario's headroom: no-balloon, heuristics, oracle, bound (slow)"""
    seeds: int = 3
    """--headroom: episodes per (policy, scenario), seeds 0 .. seeds-1"""
    ids: Annotated[str | None, DEFAULT_IN_HELP] = None
    """--headroom: only these scenario ids (comma-separated; default: every scenario of
    --version)"""
    out: str = "runs/headroom"
    """--headroom: where each scenario's row is cached (a rerun with the same seeds reuses it)"""
    steps: Annotated[int | None, DEFAULT_IN_HELP] = None
    """--headroom: episode length (default: each scenario's); shorter is a smoke test, not
    the benchmark"""
    markdown: bool = False
    """--headroom: print the table as Markdown (the table of docs/scenarios.md)"""
    progress: bool = True
    """--headroom: progress bar on stderr"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenario_module",
                           load_scenario_module_arg("--scenario-module", self.scenario_module))
        check_int("--seeds", self.seeds, 1)
        if self.steps is not None:
            check_int("--steps", self.steps, 1)
        if self.ids is not None:
            check_scenarios("--ids", split_list(self.ids))


def scenario_rows(split: str | None = None, version: str | None = None) -> list[dict]:
    """One dict per scenario (of one split and physics version if given): id, split,
    description, sizes and episode length."""
    rows = []
    for sid in scenario_ids(split, version):
        sc = get_scenario(sid)
        p = sc.params
        rows.append(
            {
                "id": sc.id,
                "split": sc.split,
                "description": sc.description,
                "num_vms": sc.num_vms,
                "overcommit_ratio": round(sc.overcommit_ratio, 3),
                "guest_pages": [v.guest_pages for v in p.vms],
                "host_frames": p.host_frames,
                "refs_per_tick": [v.workload.max_refs_per_tick for v in p.vms],
                "max_episode_steps": sc.max_episode_steps,
                "uses_data": sc.uses_data,
            }
        )
    return rows


def _headroom(args: ScenariosConfig) -> int:
    from experiments import headroom

    if args.ids is not None:
        ids = list(split_list(args.ids))
        if args.split is not None:
            ids = [i for i in ids if get_scenario(i).split == args.split]
    else:
        ids = scenario_ids(args.split, args.version or LATEST_VERSION)
    if not ids:
        raise UserError("--headroom: no scenario matches --split / --ids")
    rows = headroom.measure_all(ids, range(args.seeds), Path(args.out), progress=args.progress,
                                steps=args.steps)  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(headroom.markdown(rows), end="")
    if not args.markdown:
        problems = headroom.split_report(rows)
        thr = ", ".join(f"{k} >= {v}" for k, v in headroom.THRESHOLDS.items())
        print(f"\nheadroom: {thr}; best heuristic among {', '.join(headroom.heuristic_names())}")
        for p in problems:
            print(f"test split: {p}")
    return 0


def run(args: ScenariosConfig) -> int:
    if args.headroom:
        return _headroom(args)
    rows = scenario_rows(args.split, args.version)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(r["id"]) for r in rows)
    print(f"{'id':<{width}}  {'split':<6}  {'VMs':>3}  {'overcommit':>10}  description")
    for r in rows:
        print(
            f"{r['id']:<{width}}  {r['split']:<6}  {r['num_vms']:>3}  "
            f"{r['overcommit_ratio']:>10.2f}  {r['description']}"
        )
    return 0
