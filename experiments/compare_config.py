"""The definition of ``reclaim compare``'s experiment and the training runs it reads.

:class:`CompareConfig` is the experiment (``experiments.compare`` runs it); its runs are
``reclaim train`` runs under ``<runs-dir>/<name>-<algo>/<seed>/``, found here by
:func:`learned_policies` (the finished ones, each with its :class:`RunLabel`) and
:func:`learning_curves` (their in-training evaluations).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from agents.learners.sb3.train import DEFAULT_IN_HELP
from agents.policies import HEURISTIC_NAMES
from envs.scenarios import resolve_scenarios
from envs.sim.checks import check_choice
from experiments.compare_learners import (
    IMITATE_EPISODES,
    IMITATE_ITERATIONS,
    RECIPES,
    SB3_RECIPE_ALGO,
    imitate_fields,
    imitation_recipe,
    recipe_interface,
)
from experiments.scoring import ESX, NONE, ORACLE, RunLabel
from experiments.user_errors import (
    UserError,
    check_int,
    check_number,
    check_scenarios,
    load_scenario_module_arg,
    split_list,
)

# Fields added after compare results were published, with the value that means "as
# before" (CompareConfig.to_dict leaves them out there).
LATER_FIELDS: dict[str, Any] = {
    "obs_version": None, "decision_period_s": None, "hold_deadband": None,
    "imitate_iterations": IMITATE_ITERATIONS, "imitate_episodes": IMITATE_EPISODES,
}  # fmt: skip


@dataclass(frozen=True)
class CompareConfig:
    """The headline experiment (``reclaim compare --help`` shows each field)."""

    name: str = "compare"
    """experiment name: results in <results-dir>/<name>/, runs in <runs-dir>/<name>-<algo>/
    (the committed results are reproduced by naming them: make headline, make headline-v1)"""
    algos: tuple[str, ...] = ("ppo",)
    """learners to train, comma- or space-separated: SB3 algorithms (ppo, a2c, sac, td3,
    recurrent-ppo) and learner recipes (dagger-esx, dagger-oracle, bc-esx, bc-oracle,
    dagger-oracle-ppo: imitation, then PPO fine-tuning; ppo-grouped, ppo-per-vm; see
    docs/training.md)"""
    train_scenarios: str = "split:train"
    """training scenarios: comma-separated ids or split:train (the v1 ones; split:train@v0)"""
    test_scenarios: str = "split:test"
    """test scenarios: comma-separated ids or split:test (the v1 ones; split:test@v0)"""
    scenario_module: str | None = None
    """a Python file that registers more scenarios (envs.scenarios.demand_scenario /
    trace_scenario), loaded here and in every job, before the scenario ids are checked"""
    seeds: int = 5
    """training seeds per algorithm or recipe (0 .. seeds-1)"""
    total_timesteps: int = 1_000_000
    """training budget per SB3 run in env steps (host ticks summed over hosts; decisions
    on another decision period), the fine-tuning recipes' too"""
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
    obs_version: Annotated[int | None, DEFAULT_IN_HELP] = None
    """observation version of the learners' env: 2 is Balloon-v2's (default: the SB3
    algorithms 1, Balloon-v1's; the recipes 2)"""
    decision_period_s: Annotated[float | None, DEFAULT_IN_HELP] = None
    """seconds per decision of the learners' env (default: the SB3 algorithms one tick;
    the recipes 1.0)"""
    hold_deadband: Annotated[float | None, DEFAULT_IN_HELP] = None
    """hold dead-band of the learners' env, a fraction of max balloon (default 0, off)"""
    imitate_iterations: int = IMITATE_ITERATIONS
    """imitation recipes: DAgger rounds after the teacher's round"""
    imitate_episodes: int = IMITATE_EPISODES
    """imitation recipes: episodes per training scenario and round (bc-*: this times
    imitate_iterations + 1, all from the teacher)"""
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
        bad = [a for a in self.algos if a not in ALGOS and a not in RECIPES]
        if bad or not self.algos:
            raise ValueError(f"unknown algorithm(s) {bad}; choose from {list(ALGOS)} or "
                             f"the learner recipes {list(RECIPES)}")  # fmt: skip
        for field in ("seeds", "total_timesteps", "eval_seeds", "bootstrap_reps",
                      "imitate_episodes"):  # fmt: skip
            check_int(field, getattr(self, field), 1)
        check_int("imitate_iterations", self.imitate_iterations, 0)
        if self.obs_version is not None:
            check_choice("obs_version", self.obs_version, (1, 2), error=UserError)
        if self.decision_period_s is not None and not check_number(
            "decision_period_s", self.decision_period_s, 0.0
        ):
            raise UserError("decision_period_s must be > 0, got 0")
        if self.hold_deadband is not None and check_number(
            "hold_deadband", self.hold_deadband, 0.0
        ) >= 1.0:
            raise UserError(f"hold_deadband must be in [0, 1), got {self.hold_deadband!r}")
        self._check_recipes()
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

    def _check_recipes(self) -> None:
        """The recipes' runs: imitation acts in an absolute mode, fine-tuning is PPO's
        per-VM actor without a residual."""
        from agents.learners.imitation.train import IMITATION_ACTION_MODES

        recipes = [a for a in self.algos if a in RECIPES]
        if not recipes:
            return
        if any(imitation_recipe(a) for a in recipes):
            if self.action_mode not in IMITATION_ACTION_MODES:
                modes = list(IMITATION_ACTION_MODES)
                raise UserError(f"the imitation recipes act in action mode {modes}, "
                                f"got {self.action_mode!r}")  # fmt: skip
        if self.residual is not None or self.layout != "per-vm":
            raise UserError(f"the learner recipes {recipes} train per-vm agents without a "
                            "residual: leave --residual and --layout out")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (``config.json``); a field of :data:`LATER_FIELDS` at
        its default is left out (the imitation budget only when no imitation recipe is
        compared), so that a config that does not use it has the config.json of a
        compare made before it existed."""
        d = dataclasses.asdict(self)
        imitates = any(imitation_recipe(a) for a in self.algos)
        for name, default in LATER_FIELDS.items():
            if d[name] == default and not (imitates and name.startswith("imitate_")):
                del d[name]
        return d

    @property
    def interface(self) -> dict[str, Any]:
        """The env options given for the learners (the non-None ones)."""
        keys = ("obs_version", "decision_period_s", "hold_deadband")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

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

    def run_path(self, algo: str, seed: int) -> Path:
        """The run directory of ``algo`` (an SB3 algorithm or a recipe) and ``seed``."""
        return abs_path(self.runs_dir) / f"{self.name}-{algo}" / str(seed)

    def imitate_iterations_of(self, recipe: str) -> int:
        """The DAgger iterations of imitation recipe ``recipe``'s runs (0 for BC)."""
        return imitate_fields(recipe, self.imitate_iterations, self.imitate_episodes)["iterations"]

    def imitate_config(self, recipe: str, seed: int, resume: bool, overwrite: bool):
        """The ``ImitateConfig`` of imitation recipe ``recipe``'s run of ``seed``."""
        from agents.learners.imitation import ImitateConfig

        return ImitateConfig(
            scenario=",".join(self.train_ids), seed=seed, name=f"{self.name}-{recipe}",
            runs_dir=str(abs_path(self.runs_dir)), max_episode_steps=self.max_episode_steps,
            action_mode=self.action_mode, eval_episodes=0, progress_bar=False,
            torch_threads=1, resume=resume, overwrite=overwrite,
            **recipe_interface(self.interface),
            **imitate_fields(recipe, self.imitate_iterations, self.imitate_episodes),
        )  # fmt: skip

    def train_config(self, algo: str, seed: int, resume: bool, overwrite: bool):
        """The ``TrainConfig`` of ``algo``'s run of ``seed``: an SB3 algorithm, or a
        train or fine-tuning recipe (whose imitation run must be finished)."""
        from agents.learners.sb3.train import TrainConfig

        extra: dict[str, Any] = dict(self.interface)
        r = RECIPES.get(algo)
        if r is not None and r.kind == "train":
            extra = {**recipe_interface(self.interface), **r.fields}
        elif r is not None and r.kind == "finetune":
            # the env options are the imitation run's
            extra = {"init_from": str(self.run_path(r.init_from, seed))}
        elif r is not None:
            raise ValueError(f"{algo} is an imitation recipe: see imitate_config")
        return TrainConfig(
            algo=algo if r is None else SB3_RECIPE_ALGO, scenario=",".join(self.train_ids),
            seed=seed,
            total_timesteps=self.total_timesteps, name=f"{self.name}-{algo}",
            runs_dir=str(abs_path(self.runs_dir)), scenario_module=self.scenario_module,
            layout=self.layout, action_mode=self.action_mode,
            normalize_reward=self.normalize_reward, residual=self.residual,
            max_episode_steps=self.max_episode_steps, n_envs=self.n_envs,
            eval_freq=self.eval_freq, eval_episodes=self.eval_episodes,
            checkpoint_freq=self.checkpoint_freq, resume=resume, overwrite=overwrite,
            progress_bar=self.progress_bar and self.n_jobs == 1 and self.backend == "process",
            torch_threads=1, **extra,
        )  # fmt: skip


def abs_path(p: str) -> Path:
    """``p`` as an absolute path, a relative one taken from the current directory (the
    jobs of other processes and Ray workers get absolute paths)."""
    return Path(os.path.abspath(Path(p).expanduser()))


def learned_policies(config: CompareConfig) -> dict[RunLabel, Path]:
    """Every finished run, by its label ``RunLabel(algo, seed)``: an SB3 algorithm's model
    zip (its final model), a recipe's model as the agent-v2 ablation that chose the
    recipes scored it (``experiments.agent_v2.scored_model``: a PPO run's best checkpoint
    on held-out training seeds, an imitation run's directory). ``agents.learners.load_policy``
    and ``run_env_options`` take either."""
    from experiments.agent_v2 import scored_model
    from experiments.compare_learners import recipe_finished

    out = {}
    for algo in config.algos:
        for seed in range(config.seeds):
            if algo in RECIPES:
                if recipe_finished(config, algo, seed):
                    out[RunLabel(algo, seed)] = Path(scored_model(config.run_path(algo, seed))[0])
                continue
            run = config.train_config(algo, seed, False, False).run
            if run.is_finished(config.total_timesteps):
                out[RunLabel(algo, seed)] = run.model_zip
    return out


def learning_curves(config: CompareConfig) -> list[dict[str, Any]]:
    """The learning curve of every run: rows ``algo``, ``seed``, ``env_steps``,
    ``mean_return``.

    An SB3 or fine-tuned run: its in-training evaluations (held-out training seeds), the
    mean return averaged over the training scenarios, by env steps (for the Balloon-v2
    interface: decisions summed over hosts). An imitation run has no env-steps axis: its
    rows carry ``round`` instead of ``env_steps`` (0: the teacher's own rollouts; ``i``:
    DAgger round ``i``) and the mean return per episode of that round's rollouts on its
    training seeds (``result.json``'s ``history``), so the CSV gains a ``round`` column
    only when an imitation recipe is compared, and the learning-curve plot (env steps)
    leaves these rows out."""
    from agents.runs import RunDir
    from experiments.compare_learners import imitation_curve

    rows: list[dict[str, Any]] = []
    for algo in config.algos:
        r = RECIPES.get(algo)
        for seed in range(config.seeds):
            path = config.run_path(algo, seed)
            if r is not None and r.kind == "imitate":
                for h in imitation_curve(path):
                    rows.append({"algo": algo, "seed": seed, "env_steps": None, **h})
                continue
            by: dict[int, list[float]] = {}
            for e in RunDir(path).read_evaluations():
                by.setdefault(int(e["env_steps"]), []).append(float(e["return"]))
            for steps, v in sorted(by.items()):
                rows.append({"algo": algo, "seed": seed, "env_steps": steps,
                             "mean_return": float(np.mean(v))})  # fmt: skip
    return rows
