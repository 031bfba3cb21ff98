"""The ``reclaim`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help). Each module defines add_arguments(parser) and run(args) -> int.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("experiments.demo", "run the main job on the default scenario"),
    "bench": ("experiments.bench", "measure simulator throughput and fidelity"),
    "replay": ("experiments.replay", "replay an episode record and check every counter"),
    "scenarios": ("experiments.scenarios_cmd", "list the scenarios"),
    "fidelity": ("experiments.fidelity", "simulator LRU vs libCacheSim exact LRU"),
    "evaluate": ("experiments.evaluate", "evaluate policies on scenarios"),
    "train": ("experiments.train", "train an RL agent"),
    "compare": (
        "experiments.compare",
        "train on train scenarios, evaluate on test scenarios, report with rliable",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reclaim",
        description="ReclaimGym: memory reclamation in overcommitted virtualization hosts.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
