"""The definition of ``reclaim compare``'s experiment and the training runs it reads.

:class:`CompareConfig` is the experiment (``experiments.compare`` runs it); its runs are
``reclaim train`` runs under ``<runs-dir>/<name>-<algo>/<seed>/``, found here by
:func:`learned_policies` (the finished ones, each with its :class:`RunLabel`) and
:func:`learning_curves` (their in-training evaluations).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from agents.learners.sb3.train import DEFAULT_IN_HELP
from agents.policies import HEURISTIC_NAMES
from envs.scenarios import resolve_scenarios
from experiments.scoring import ESX, NONE, ORACLE, RunLabel
from experiments.user_errors import (
    UserError,
    check_int,
    check_number,
    check_scenarios,
    load_scenario_module_arg,
    split_list,
)


@dataclass(frozen=True)
class CompareConfig:
    """The headline experiment (``reclaim compare --help`` shows each field)."""

    name: str = "compare"
    """experiment name: results in <results-dir>/<name>/, runs in <runs-dir>/<name>-<algo>/
    (the committed results are reproduced by naming them: make headline)"""
    algos: tuple[str, ...] = ("ppo",)
    """algorithms to train, comma- or space-separated (ppo, a2c, sac, td3, recurrent-ppo)"""
    train_scenarios: str = "split:train"
    """training scenarios: comma-separated ids or split:train (the v1 ones; split:train@v0)"""
    test_scenarios: str = "split:test"
    """test scenarios: comma-separated ids or split:test (the v1 ones; split:test@v0)"""
    scenario_module: str | None = None
    """a Python file that registers more scenarios (envs.scenarios.demand_scenario /
    trace_scenario), loaded here and in every job, before the scenario ids are checked"""
    seeds: int = 5
    """training seeds per algorithm (0 .. seeds-1)"""
    total_timesteps: int = 1_000_000
    """training budget per run in env steps (host ticks summed over hosts)"""
    n_envs: Annotated[int | None, DEFAULT_IN_HELP] = None
    """hosts stepped together per training run (default: the algorithm's)"""
    eval_seeds: int = 10
    """test episodes per (policy, scenario)"""
    eval_seed_base: int = 2_000_000
    """first test seed (training uses seeds < 1e6 + ..., in-training evaluation 1e6 + k)"""
    baselines: tuple[str, ...] = (*HEURISTIC_NAMES, ORACLE)
    """baseline policies to evaluate, comma- or space-separated (no-balloon, oracle and esx
    are always included)"""
    action_mode: str = "absolute"
    """action mode of the trained agents"""
    layout: str = "per-vm"
    """observation layout of the trained agents (per-vm runs on any VM count)"""
    normalize_reward: bool = True
    """scale the training rewards by VecNormalize (reclaim ablate: raw rewards did better)"""
    residual: str | None = None
    """train residual agents: corrections of this heuristic's balloon actions (absolute
    mode; see reclaim train --residual)"""
    max_episode_steps: Annotated[int | None, DEFAULT_IN_HELP] = None
    """episode length override for training and evaluation (default: each scenario's)"""
    eval_freq: int = 50_000
    """env steps between in-training evaluations (the learning curves)"""
    eval_episodes: int = 4
    """episodes per training scenario in each in-training evaluation"""
    checkpoint_freq: int = 50_000
    """env steps between checkpoints"""
    jobs: int = 0
    """parallel processes (training runs, evaluations); 0 = all CPU cores (backend ray:
    the CPUs of the local Ray; ignored with --address)"""
    backend: str = "process"
    """where the jobs run: process (local processes) or ray (one Ray task per training run
    and per (policy, scenario) evaluation; needs the cluster extra)"""
    address: Annotated[str | None, DEFAULT_IN_HELP] = None
    """backend ray: the cluster to join (HOST:PORT of its head, ray://HOST:PORT or auto;
    default: start a local Ray with --jobs CPUs)"""
    min_gap_frac: float = 0.05
    """headroom threshold: a (scenario, seed) cell whose oracle − no-balloon is under this
    fraction of |R_none| has no headroom and is left out of the aggregates"""
    bootstrap_reps: int = 2000
    """stratified bootstrap resamples for the CIs"""
    runs_dir: str = "runs"
    """where the training runs live (relative: to the current directory)"""
    results_dir: str = "results"
    """where the report is written, in <results-dir>/<name>/ (relative: to the current
    directory; the committed results: --results-dir experiments/results)"""
    progress_bar: bool = True
    """progress bars (only when jobs = 1)"""

    def __post_init__(self) -> None:
        from agents.learners.sb3.train import ALGOS

        object.__setattr__(self, "scenario_module",
                           load_scenario_module_arg("scenario_module", self.scenario_module))
        object.__setattr__(self, "algos", split_list(self.algos))
        object.__setattr__(self, "baselines", split_list(self.baselines))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ValueError(f"name must be a plain directory name, got {self.name!r}")
        bad = [a for a in self.algos if a not in ALGOS]
        if bad or not self.algos:
            raise ValueError(f"unknown algorithm(s) {bad}; choose from {list(ALGOS)}")
        for field in ("seeds", "total_timesteps", "eval_seeds", "bootstrap_reps"):
            check_int(field, getattr(self, field), 1)
        from agents.policies import check_policy_name, check_residual
        from agents.residual import RESIDUAL_SCALE

        for p in self.baselines:
            check_policy_name(p)
        try:
            check_residual(self.residual, RESIDUAL_SCALE, self.action_mode)
        except ValueError as e:
            raise UserError(str(e)) from None
        check_int("jobs", self.jobs, 0)
        check_int("eval_seed_base", self.eval_seed_base, 0)
        check_number("min_gap_frac", self.min_gap_frac, 0)
        for field in ("train_scenarios", "test_scenarios"):
            try:
                ids = resolve_scenarios(getattr(self, field))
            except ValueError as e:
                raise UserError(f"{field}: {e}") from None
            check_scenarios(field, ids)
        from experiments.backends import BACKENDS

        if self.backend not in BACKENDS:
            raise UserError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if self.address is not None and self.backend != "ray":
            raise UserError("address needs backend ray (--backend ray)")

    @property
    def train_ids(self) -> tuple[str, ...]:
        return resolve_scenarios(self.train_scenarios)

    @property
    def test_ids(self) -> tuple[str, ...]:
        return resolve_scenarios(self.test_scenarios)

    @property
    def all_baselines(self) -> tuple[str, ...]:
        extra = [p for p in (NONE, ESX, ORACLE) if p not in self.baselines]
        return tuple(self.baselines) + tuple(extra)

    @property
    def n_jobs(self) -> int:
        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)

    @property
    def out_dir(self) -> Path:
        return abs_path(self.results_dir) / self.name

    def train_config(self, algo: str, seed: int, resume: bool, overwrite: bool):
        from agents.learners.sb3.train import TrainConfig

        return TrainConfig(
            algo=algo, scenario=",".join(self.train_ids), seed=seed,
            total_timesteps=self.total_timesteps, name=f"{self.name}-{algo}",
            runs_dir=str(abs_path(self.runs_dir)), scenario_module=self.scenario_module,
            layout=self.layout, action_mode=self.action_mode,
            normalize_reward=self.normalize_reward, residual=self.residual,
            max_episode_steps=self.max_episode_steps, n_envs=self.n_envs,
            eval_freq=self.eval_freq, eval_episodes=self.eval_episodes,
            checkpoint_freq=self.checkpoint_freq, resume=resume, overwrite=overwrite,
            progress_bar=self.progress_bar and self.n_jobs == 1 and self.backend == "process",
            torch_threads=1,
        )  # fmt: skip


def abs_path(p: str) -> Path:
    """``p`` as an absolute path, a relative one taken from the current directory (the
    jobs of other processes and Ray workers get absolute paths)."""
    return Path(os.path.abspath(Path(p).expanduser()))


def learned_policies(config: CompareConfig) -> dict[RunLabel, Path]:
    """The model zip of every finished training run, by its label."""
    out = {}
    for algo in config.algos:
        for seed in range(config.seeds):
            run = config.train_config(algo, seed, False, False).run
            if run.is_finished(config.total_timesteps):
                out[RunLabel(algo, seed)] = run.model_zip
    return out


def learning_curves(config: CompareConfig) -> list[dict[str, Any]]:
    """Mean in-training evaluation return per (algo, seed, env steps), averaged over the
    training scenarios."""
    rows = []
    for algo in config.algos:
        for seed in range(config.seeds):
            run = config.train_config(algo, seed, False, False).run
            by: dict[int, list[float]] = {}
            for r in run.read_evaluations():
                by.setdefault(int(r["env_steps"]), []).append(float(r["return"]))
            for steps, v in sorted(by.items()):
                rows.append({"algo": algo, "seed": seed, "env_steps": steps,
                             "mean_return": float(np.mean(v))})  # fmt: skip
    return rows
