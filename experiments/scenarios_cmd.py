"""``reclaim scenarios``: the registered scenarios, as a table or as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from envs.scenarios import SPLITS, get_scenario, scenario_ids


@dataclass(frozen=True)
class ScenariosConfig:
    """List the registered scenarios (id, split, VMs, overcommit, what it stresses)."""

    split: Literal[SPLITS] | None = None  # type: ignore[valid-type]
    """only the scenarios of this split"""
    json: bool = False
    """print a JSON list of objects"""


def scenario_rows(split: str | None = None) -> list[dict]:
    """One dict per scenario: id, split, description, sizes and episode length."""
    rows = []
    for sid in scenario_ids(split):
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


def run(args: ScenariosConfig) -> int:
    rows = scenario_rows(args.split)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(r["id"]) for r in rows)
    print(f"{'id':<{width}}  {'split':<5}  {'VMs':>3}  {'overcommit':>10}  description")
    for r in rows:
        print(
            f"{r['id']:<{width}}  {r['split']:<5}  {r['num_vms']:>3}  "
            f"{r['overcommit_ratio']:>10.2f}  {r['description']}"
        )
    return 0
