"""``reclaim data check``: which published files each trace-driven scenario reads are
present, missing or damaged in the data folder (``$RECLAIM_DATA_DIR``).

A file is damaged when its SHA-256 differs from the published checksum
(``envs/data_sha256.txt``, docs/data.md) or it cannot be read. Exit status 0 whatever
the files' state (the table says it); with ``--strict``, 1 when a file is missing or
damaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import tyro

from envs.data import CHECKSUMS_FILE, check_published_data, data_dir
from envs.scenarios import scenario_ids
from envs.sim.checks import check_choice
from experiments.user_errors import UserError, split_list


@dataclass(frozen=True)
class DataConfig:
    """Check the published traces and demand series in the data folder against their
    checksums: for each trace-driven scenario, the files present, missing or damaged."""

    action: tyro.conf.Positional[Literal["check"]] = "check"
    """what to do: ``check``, the only action (``reclaim data`` alone does it too)"""
    scenarios: str | None = None
    """only these scenario ids, comma-separated (None: every trace-driven scenario)"""
    json: bool = False
    """print JSON: the data folder and, per scenario, each file's path, state and detail"""
    strict: bool = False
    """exit 1 when a file is missing or damaged"""

    def __post_init__(self) -> None:
        # Only known ids: unlike other commands, a scenario whose data is missing is fine.
        for sid in split_list(self.scenarios or ()):
            check_choice("--scenarios", sid, scenario_ids(), error=UserError)


def run(config: DataConfig) -> int:
    ids = None if config.scenarios is None else list(split_list(config.scenarios))
    root = data_dir()
    rows = check_published_data(ids, root)
    bad = sorted({f.path: f for r in rows for f in r.files if f.state != "ok"}.values(),
                 key=lambda f: f.path)  # fmt: skip
    if config.json:
        print(json.dumps({
            "data_dir": str(root),
            "checksums": str(CHECKSUMS_FILE),
            "scenarios": [
                {"scenario": r.scenario,
                 "files": [{"path": f.path, "state": f.state, "detail": f.detail}
                           for f in r.files]}
                for r in rows
            ],
        }, indent=2))  # fmt: skip
    else:
        _print_table(root, rows, bad)
    return 1 if config.strict and bad else 0


def _print_table(root, rows, bad) -> None:
    exists = "" if root.is_dir() else "  (does not exist)"
    print(f"data folder: {root}{exists}")
    print("  (set RECLAIM_DATA_DIR to use another; docs/data.md says where to get the files)")
    width = max([len("scenario")] + [len(r.scenario) for r in rows])
    print(f"{'scenario':<{width}}  {'files':>5}  {'ok':>5}  {'missing':>7}  {'damaged':>7}")
    for r in rows:
        print(f"{r.scenario:<{width}}  {len(r.files):>5}  {r.count('ok'):>5}  "
              f"{r.count('missing'):>7}  {r.count('damaged'):>7}")  # fmt: skip
    if not bad:
        print("every file is present and matches its published checksum")
        return
    print()
    for state in ("missing", "damaged"):
        files = [f for f in bad if f.state == state]
        if files:
            print(f"{state} ({len(files)}):")
            for f in files:
                print(f"  {f.path}" + (f": {f.detail}" if f.detail else ""))
