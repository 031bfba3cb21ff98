"""``reclaim compare``: train on the train scenarios, evaluate on the test scenarios, rliable.

1. **Train** every algorithm of ``--algos`` on the training scenarios (one per-VM policy
   over all of them at once) with seeds ``0 .. seeds-1``: ``reclaim train`` runs in
   ``<runs-dir>/<name>-<algo>/<seed>/``, ``--jobs`` of them in parallel processes (or
   as tasks on a Ray cluster: ``--backend ray [--address ADDR]``, see docs/cluster.md).
   A learner recipe (``experiments.compare_learners``: imitation, then fine-tuning)
   makes its run in ``<runs-dir>/<name>-<recipe>/<seed>/``: the imitation runs beside
   the SB3 runs, the fine-tunings after them.
2. **Evaluate** every trained model and every baseline on every test scenario with fresh
   seeds (``eval_seed_base + k``, disjoint from the training and in-training evaluation
   seeds), one batched native vector env per (policy, scenario): paired by seed.
3. **Report** with rliable: the normalized score ``(R − R_none) / (R_oracle − R_none)``
   per scenario and seed (0 = NoBalloonPolicy, 1 = OraclePolicy); IQM with
   stratified-bootstrap 95 % CIs; the probability of improvement over EsxPolicy;
   performance profiles; learning curves; per-scenario scores; and a per-VM memory
   timeline of one test episode (best learned policy vs EsxPolicy).

A learned policy's runs are (training seed, evaluation seed) pairs; a baseline's runs
are the evaluation seeds. A (scenario, seed) cell where the oracle gains less than
``min_gap_frac · |R_none|`` over no-balloon has *no headroom*: it is left out of the
aggregates (counted in the report), never floored, so near-zero denominators cannot
blow scores up. The aggregates treat every cell with headroom as a task (the bootstrap
resamples cells and runs). Beside the scores: every policy's stall relative to
no-balloon, and per scenario the bracket ``[oracle, bound]`` (``agents.bound``) with
the share of it that the oracle and the best baseline close.

Everything is written to ``<results-dir>/<name>/`` (default ``results/compare/`` under
the current directory; the committed results name theirs: ``make headline``,
``make headline-v1``) atomically, and each finished part as soon as it finishes
(``runs/.../result.json``, ``episodes/<policy>__<scenario>.csv``): rerunning the same
command skips finished parts and resumes killed trainings from their last checkpoint.

Modules: this one plans and runs the jobs; ``experiments.compare_config`` defines the
experiment (:class:`CompareConfig`) and finds its runs; ``experiments.scoring`` holds the
normalized score, ``experiments.compare_stats`` the rliable statistics, and
``experiments.compare_report`` / ``experiments.compare_plots`` the report.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from agents.provenance import run_metadata
from envs.files import read_csv, write_csv, write_json_atomic
from experiments.compare_config import CompareConfig, abs_path, learned_policies, learning_curves
from experiments.compare_learners import train_job
from experiments.compare_report import report
from experiments.scoring import ESX, NONE, ORACLE, RunLabel
from experiments.user_errors import UserError

# ------------------------------------------------------------------ stage 1: train

def train_plan(config: CompareConfig) -> list[Any]:
    """The SB3 training configs still to run (finished runs are skipped, killed ones
    resume): the SB3 algorithms' and the train recipes' (``experiments.compare_learners``
    plans the imitation and fine-tuning runs)."""
    from experiments.compare_learners import RECIPES

    todo = []
    for algo in config.algos:
        if algo in RECIPES and RECIPES[algo].kind != "train":
            continue
        for seed in range(config.seeds):
            tc = config.train_config(algo, seed, False, False)
            run = tc.run
            if run.is_finished(config.total_timesteps):
                from agents.learners.sb3.train import ConfigError, _check_same_config

                try:  # a finished run of another config must not be taken for this one
                    _check_same_config(tc, run)
                except ConfigError as e:
                    raise UserError(
                        f"{e}: a finished run of another config; pass another --name or "
                        f"delete {run.path}"
                    ) from None
                continue
            has_ckpt = run.has_checkpoint()
            todo.append(config.train_config(algo, seed, resume=has_ckpt, overwrite=not has_ckpt))
    return todo


def _run_jobs(fn, args: list[Any], backend, label: str) -> list[Any]:
    """``fn`` on each of ``args`` on ``backend`` (an ``experiments.backends`` backend)."""
    if not args:
        return []
    t0 = time.time()
    n = backend.parallelism(len(args))
    print(f"[compare] {label}: {len(args)} job(s), {n} in parallel", flush=True)
    out = backend.map(fn, args)
    print(f"[compare] {label}: done in {time.time() - t0:.0f} s", flush=True)
    return out


# --------------------------------------------------------------- stage 2: evaluate
def _policy_key(policy: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", policy)


def eval_job(job: tuple[str, str, str, list[int], str, int | None, str, str | None]) -> str:
    policy, label, scenario, seeds, action_mode, steps, path, scenario_module = job
    from experiments.evaluate import run_policy

    if scenario_module is not None:  # a fresh process knows only the built-in scenarios
        from envs.scenarios import load_scenario_module

        load_scenario_module(scenario_module)

    rows = run_policy(policy, scenario, seeds, max_episode_steps=steps, action_mode=action_mode)
    for r in rows:
        r["policy"] = label
    write_csv(path, rows)
    return path


def read_episodes(path: Path) -> list[dict[str, Any]]:
    """The episode rows of one evaluation CSV, numbers as numbers; the one place where a
    learned run's label is read back (:meth:`RunLabel.parse`)."""
    rows: list[dict[str, Any]] = list(read_csv(path))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = int(v)
            except ValueError:
                try:
                    r[k] = float(v)
                except ValueError:
                    pass
        if isinstance(r.get("policy"), str):
            r["policy"] = RunLabel.parse(r["policy"]) or r["policy"]
    return rows


def _eval_plan(config: CompareConfig, scenarios: tuple[str, ...], seeds: list[int],
               tag: str, policies: dict[str, tuple[str, str]]) -> list[tuple]:  # fmt: skip
    """(policy, label, scenario, seeds, mode, steps, csv path, scenario module) jobs not
    yet done."""
    jobs = []
    for label, (policy, mode) in policies.items():
        for sc in scenarios:
            path = config.out_dir / "episodes" / tag / f"{_policy_key(label)}__{sc}.csv"
            if not path.exists():
                jobs.append((policy, label, sc, seeds, mode, config.max_episode_steps, str(path),
                             config.scenario_module))  # fmt: skip
    return jobs


def _load_episodes(config: CompareConfig, tag: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in sorted((config.out_dir / "episodes" / tag).glob("*.csv")):
        rows.extend(read_episodes(p))
    return rows


# ------------------------------------------------------------------------ driver
def compare(config: CompareConfig) -> str:
    """Run (or finish) the whole experiment; returns the markdown table."""
    from experiments.backends import open_backend

    # Opened (and, for Ray, checked: reachable, runs/results directories shared) before
    # any job starts.
    dirs = (abs_path(config.runs_dir), config.out_dir)
    with open_backend(config.backend, config.n_jobs, config.address, dirs) as backend:
        return _compare(config, backend)


def _compare(config: CompareConfig, backend) -> str:
    """``compare`` with its jobs on ``backend`` (``experiments.backends``)."""
    t0 = time.time()
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / "config.json",
        run_metadata(command="compare", config=config.to_dict(),
                     train_scenarios=list(config.train_ids), test_scenarios=list(config.test_ids)),
    )  # fmt: skip
    # 1. train: the SB3 runs and the imitation runs, then the fine-tunings of those
    from experiments.compare_learners import finetune_plan, imitate_plan, learner_job

    todo = train_plan(config)
    imitate = imitate_plan(config)
    if todo:
        from experiments.estimate import announce

        announce("compare", len(todo), config.total_timesteps,
                 backend.parallelism(len(todo) + len(imitate)),
                 extra=", then the evaluation")  # fmt: skip
    jobs = [("imitate", j) for j in imitate] + [("train", c.to_dict()) for c in todo]
    _run_jobs(learner_job, jobs, backend, "training")
    _run_jobs(train_job, [c.to_dict() for c in finetune_plan(config)], backend, "fine-tuning")
    learned = learned_policies(config)
    # 2. evaluate on the test scenarios, and the references of the learning curves
    test_seeds = [config.eval_seed_base + k for k in range(config.eval_seeds)]
    pols = {b: (b, "absolute") for b in config.all_baselines}
    pols.update({str(lab): (str(p), config.action_mode) for lab, p in learned.items()})
    ref_seeds = [1_000_000 + k for k in range(config.eval_episodes)]
    ref_pols = {b: (b, "absolute") for b in (NONE, ESX)}
    plan = _eval_plan(config, config.test_ids, test_seeds, "test", pols)
    plan += _eval_plan(config, config.train_ids, ref_seeds, "train-ref", ref_pols)
    # Longest first (the oracle), so parallel workers finish together.
    plan.sort(key=lambda j: (j[0] != ORACLE, j[1]))
    _run_jobs(eval_job, plan, backend, "evaluation")
    test_eps = _load_episodes(config, "test")
    from experiments.evaluate import add_bounds

    for sc in config.test_ids:  # the hindsight bound of every test (scenario, seed)
        add_bounds([e for e in test_eps if e["scenario"] == sc], sc, test_seeds,
                   max_episode_steps=config.max_episode_steps)  # fmt: skip
    curve_refs = _load_episodes(config, "train-ref")
    # 3. report
    md = report(config, test_eps, learning_curves(config), curve_refs, learned,
                time.time() - t0)  # fmt: skip
    return md


def run(config: CompareConfig) -> int:
    md = compare(config)
    print(md)
    print(f"results: {config.out_dir}")
    return 0
