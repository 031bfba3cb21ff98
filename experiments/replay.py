"""``reclaim replay RECORD``: replay an episode record and check every counter exactly.

Exit status 0 when the replay matches, 1 when it does not or when the record's digest
does not match its content (it was edited or truncated), 2 when the record cannot be
read (missing file, not JSON, a field of the wrong type).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Annotated

import tyro

from envs.records import EpisodeRecord, LegacyRecordWarning, RecordDigestError, validate
from experiments.user_errors import UserError, check_int


@dataclass(frozen=True)
class ReplayConfig:
    """Replay an episode record (JSON, envs/records.py) and check every counter exactly."""

    record: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RECORD")]
    """path of an episode record (JSON, envs/records.py)"""
    max_report: int = 20
    """mismatches to list"""

    def __post_init__(self) -> None:
        check_int("--max-report", self.max_report, 0)


def run(args: ReplayConfig) -> int:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LegacyRecordWarning)
            record = EpisodeRecord.load(args.record)
    except RecordDigestError as e:  # a failed check, not bad input
        print(f"reclaim replay: FAILED: {args.record}: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read record {args.record}: {e}") from None
    for w in caught:
        print(f"reclaim replay: warning: {args.record}: {w.message}", file=sys.stderr)
    print(
        f"{args.record}: {record.env_id}, scenario {record.scenario_id}, seed {record.seed}, "
        f"{len(record.actions)} actions ({record.action_mode}), overrides {record.overrides}"
    )
    result = validate(record)
    print(result.report(limit=args.max_report))
    return 0 if result.ok else 1
