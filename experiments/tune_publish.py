"""Publish finished heuristic studies (``reclaim tune --policy``) as tuned heuristics.

``python -m experiments.tune_publish runs/tune/esx-tuned runs/tune/mom-tuned ...``
reads each study (its ``config.json`` and Optuna storage), takes the stock trial
(trial 0, enqueued with the published constants) and the best trial with the returns
they recorded per scenario and seed, and plays the stock and the tuned heuristic on
``--heldout`` further train seeds the study did not use (the seeds right after its own,
still in [1e6, 2e6): below the test seeds of ``reclaim compare``). It writes:

- ``agents/tuned_heuristics.json`` (``--package-file``): per heuristic the tuned
  parameters and constants (registered as ``<name>-tuned`` by :mod:`agents.policies`),
  the stock constants, the study's command, trials, best and stock values and returns
  per scenario on its seeds, the held-out returns, and the provenance (git revision,
  versions) of the study and of this publication;
- ``experiments/results/tuned-heuristics/`` (``--results-dir``): ``table.csv`` (one row
  per heuristic), ``heldout.csv`` (per scenario), ``trials-<name>.csv`` (every trial of
  each study) and ``provenance.json``. The README there is written by hand around it.

Heuristics already in the package file and not named here keep their record.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.provenance import run_metadata
from agents.tuned import TUNED_FILE, TUNED_FILES, TUNED_SUFFIX, check_tunable, constants
from envs.files import write_csv, write_json_atomic, write_text_atomic
from experiments.tune import _SEED_HI, _SEED_LO, heuristic_returns, mean_return

RESULTS_DIR = Path(__file__).with_name("results") / "tuned-heuristics"
# Flags of ``reclaim tune`` that matter to a heuristic study, with their defaults.
_FLAGS = {"scenarios": ["split:train"], "eval_seed": 1_500_000, "eval_episodes": 4,
          "max_episode_steps": None, "sampler_seed": 0}  # fmt: skip


@dataclass
class PublishConfig:
    studies: list[Path]
    """study folders of reclaim tune --policy (with config.json and study.db)"""
    heldout: int = 4
    """held-out train seeds per scenario (the seeds right after the study's)"""
    package_file: Path = TUNED_FILE
    results_dir: Path = RESULTS_DIR


def _jsonable(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def command_of(config: dict[str, Any]) -> str:
    """The ``reclaim tune`` command line of a study's config (non-default flags only)."""
    parts = ["reclaim", "tune", "--policy", config["policy"], "--trials", str(config["trials"])]
    for key, default in _FLAGS.items():
        value = config.get(key)
        if value != default and value is not None:
            flag = "--" + key.replace("_", "-")
            parts += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    return " ".join(parts + ["--name", config["name"]])


def study_record(folder: Path, heldout: int) -> tuple[dict[str, Any], Any]:
    """The published record of one finished heuristic study, and the study."""
    import optuna

    meta = json.loads((folder / "config.json").read_text())
    config = meta["config"]
    name = config["policy"]
    if name is None:
        raise ValueError(f"{folder} is an agent study, not a heuristic one")
    space = check_tunable(name)
    study = optuna.load_study(study_name=config["name"], storage=meta["storage"])
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    stock = [t for t in done if t.params == space.stock_params]
    if not stock:
        raise ValueError(f"{folder}: no finished trial with the stock constants")
    best = max(done, key=lambda t: (t.value, -t.number))
    scenarios, seeds = meta["scenarios"], meta["eval_seeds"]
    steps = config["max_episode_steps"]
    lo = seeds[-1] + 1
    held = list(range(lo, lo + heldout))
    if held and not (_SEED_LO <= held[0] and held[-1] < _SEED_HI):
        raise ValueError(f"held-out seeds {held[0]}..{held[-1]} leave [{_SEED_LO}, {_SEED_HI})")
    print(f"[publish] {name}: held-out seeds {held} on {len(scenarios)} scenarios", file=sys.stderr,
          flush=True)  # fmt: skip
    held_stock = heuristic_returns(name, None, scenarios, held, steps)
    held_tuned = heuristic_returns(name, best.params, scenarios, held, steps)
    walls = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    return {
        "params": best.params,
        "constants": _jsonable(constants(name, best.params)),
        "stock_constants": _jsonable(constants(name, space.stock_params)),
        "study": {
            "command": command_of(config),
            "name": config["name"],
            "trials": len(done),
            "best_trial": best.number,
            "scenarios": scenarios,
            "seeds": seeds,
            "max_episode_steps": steps,
            "tuned_return": best.value,
            "stock_return": stock[0].value,
            "tuned_returns": best.user_attrs["returns"],
            "stock_returns": stock[0].user_attrs["returns"],
            "trial_wall_s": round(sum(walls), 1),
            "git_revision": meta["git_revision"],
            "versions": meta["versions"],
            "optuna_version": meta["optuna_version"],
            "date": meta["date"],
        },
        "heldout": {
            "seeds": held,
            "tuned_return": mean_return(held_tuned) if held else None,
            "stock_return": mean_return(held_stock) if held else None,
            "tuned_returns": held_tuned,
            "stock_returns": held_stock,
        },
    }, study


def publish(config: PublishConfig) -> dict[str, Any]:
    path = Path(config.package_file)
    records = json.loads(path.read_text())["heuristics"] if path.exists() else {}
    out = Path(config.results_dir)
    for folder in config.studies:
        record, study = study_record(Path(folder), config.heldout)
        name = json.loads((Path(folder) / "config.json").read_text())["config"]["policy"]
        records[name] = record
        write_text_atomic(out / f"trials-{name}.csv", study.trials_dataframe().to_csv(index=False))
    suffix = next((k for k, v in TUNED_FILES.items() if v.resolve() == path.resolve()),
                  TUNED_SUFFIX)  # fmt: skip
    doc = {
        "format": 1,
        "about": "tuned constants of the heuristics (reclaim tune --policy, agents.tuned); "
        f"registered as <name>{suffix}. Written by python -m experiments.tune_publish.",
        "published": run_metadata(command="tune_publish"),
        "heuristics": dict(sorted(records.items())),
    }
    write_json_atomic(path, doc)
    rows, held_rows = [], []
    for name, r in doc["heuristics"].items():
        s, h = r["study"], r["heldout"]
        rows.append({
            "heuristic": name, "trials": s["trials"], "best_trial": s["best_trial"],
            "stock_return": s["stock_return"], "tuned_return": s["tuned_return"],
            "heldout_stock_return": h["stock_return"], "heldout_tuned_return": h["tuned_return"],
            "tuning_seeds": " ".join(map(str, s["seeds"])),
            "heldout_seeds": " ".join(map(str, h["seeds"])),
            "constants": json.dumps(r["constants"]), "command": s["command"],
        })  # fmt: skip
        for sc in h["tuned_returns"]:
            t, k = h["tuned_returns"][sc], h["stock_returns"][sc]
            held_rows.append({"heuristic": name, "scenario": sc, "stock_return": sum(k) / len(k),
                              "tuned_return": sum(t) / len(t)})  # fmt: skip
    write_csv(out / "table.csv", rows)
    write_csv(out / "heldout.csv", held_rows)
    write_json_atomic(out / "provenance.json", doc["published"])
    return doc


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m experiments.tune_publish", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--heldout", type=int, default=4)
    ap.add_argument("--package-file", type=Path, default=TUNED_FILE)
    ap.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    a = ap.parse_args(argv)
    doc = publish(PublishConfig(a.studies, a.heldout, a.package_file, a.results_dir))
    for name, r in doc["heuristics"].items():
        s, h = r["study"], r["heldout"]
        print(f"{name}: stock {s['stock_return']:.4f} tuned {s['tuned_return']:.4f} (held-out: "
              f"stock {h['stock_return']:.4f} tuned {h['tuned_return']:.4f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
