"""``reclaim replay RECORD``: replay an episode record and check every counter exactly."""

from __future__ import annotations

import argparse
import sys

from envs.records import EpisodeRecord, validate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("record", help="path of an episode record (JSON, envs/records.py)")
    parser.add_argument(
        "--max-report", type=int, default=20, help="mismatches to list (default 20)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        record = EpisodeRecord.load(args.record)
    except (OSError, ValueError, TypeError) as e:
        print(f"reclaim replay: cannot read {args.record}: {e}", file=sys.stderr)
        return 2
    print(
        f"{args.record}: {record.env_id}, scenario {record.scenario_id}, seed {record.seed}, "
        f"{len(record.actions)} actions ({record.action_mode}), overrides {record.overrides}"
    )
    result = validate(record)
    print(result.report(limit=args.max_report))
    return 0 if result.ok else 1
