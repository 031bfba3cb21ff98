"""The learned designs ``reclaim compare --algos`` takes beside the SB3 algorithms.

A *recipe* is a named way of making one learned run per training seed, taken from
issue #25's ablation (:data:`experiments.agent_v2.VARIANTS`, same names, same recipes):

- ``bc-esx`` / ``bc-oracle``: behaviour cloning of the teacher's own rollouts
  (``reclaim imitate`` with 0 DAgger iterations and as many teacher-labelled episodes as
  the DAgger recipe collects over all its rounds);
- ``dagger-esx`` / ``dagger-oracle``: DAgger (``reclaim imitate``, ``imitate_iterations``
  rounds after the teacher's, ``imitate_episodes`` episodes per scenario and round);
- ``dagger-oracle-ppo``: the ``dagger-oracle`` run of the same seed, then PPO
  fine-tuning from it for ``total_timesteps`` (``reclaim train --init-from``);
- ``ppo-grouped`` / ``ppo-per-vm``: PPO from scratch with hosts in pairs replaying one
  workload seed / each VM paid its own reward (its ``n_envs`` per scenario must be even
  for ``ppo-grouped``).

Plain SB3 names (``ppo``, ``a2c``, ...) are not recipes: they train as before, on the
interface ``CompareConfig.obs_version`` / ``decision_period_s`` / ``hold_deadband`` give
(none: Balloon-v1's). Every recipe acts on :meth:`CompareConfig.interface`: those fields
where given, else the ablation's measured interface (:data:`experiments.agent_v2.INTERFACE`:
observation v2, one decision a second, no hold dead-band); a fine-tuned run takes its
imitation run's.

Runs live where compare's SB3 runs live, ``<runs-dir>/<name>-<recipe>/<seed>/``; a
fine-tuning recipe starts from ``<runs-dir>/<name>-<its imitation recipe>/<seed>/`` (one
run shared with that recipe when both are compared). Each step is reused when finished,
resumed from its newest checkpoint when killed, and refused when a finished run of
another config sits there. The job functions here are module-level and take plain data,
so that both backends (``experiments.backends``: spawned processes, Ray tasks) run them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.agent_v2 import INTERFACE, VARIANTS, Budget, Variant

RECIPES: dict[str, Variant] = dict(VARIANTS)
"""Recipe name -> how its run is made (``kind``: imitate, finetune or train; ``fields``;
the recipe a fine-tuning starts from). Every ablation variant but plain ``ppo``, which
is the SB3 algorithm of that name."""
del RECIPES["ppo"]
IMITATE_ITERATIONS = Budget.iterations
"""Default DAgger rounds after the teacher's round (agent_v2's ``Budget``)."""
IMITATE_EPISODES = Budget.episodes
"""Default episodes per training scenario and round (agent_v2's ``Budget``)."""
SB3_RECIPE_ALGO = "ppo"  # the SB3 algorithm of the train and finetune recipes


def is_recipe(algo: str) -> bool:
    return algo in RECIPES


def imitation_recipe(algo: str) -> str | None:
    """The imitation recipe whose run ``algo`` is or starts from (None for SB3 runs)."""
    r = RECIPES.get(algo)
    if r is None or r.kind == "train":
        return None
    return algo if r.kind == "imitate" else r.init_from


# --------------------------------------------------------------------- the jobs
def imitate_job(job: tuple[dict[str, Any], str | None]) -> str:
    """Run (or resume) one imitation run from its ``ImitateConfig.to_dict()``; returns its
    directory. ``job[1]``: the scenario module to load first (a fresh process knows only
    the built-in scenarios)."""
    cfg_dict, scenario_module = job
    if scenario_module is not None:
        from envs.scenarios import load_scenario_module

        load_scenario_module(scenario_module)
    from agents.learners.imitation import ImitateConfig, train

    cfg = dict(cfg_dict)
    cfg["net_arch"] = tuple(cfg["net_arch"])
    return str(train(ImitateConfig(**cfg)).run_dir)


def learner_job(job: tuple[str, Any]) -> str:
    """``("train", TrainConfig.to_dict())`` or ``("imitate", (ImitateConfig.to_dict(),
    scenario module))``: one job of compare's training stage."""
    kind, arg = job
    if kind == "imitate":
        return imitate_job(arg)
    return train_job(arg)


def train_job(cfg_dict: dict[str, Any]) -> str:
    """One ``reclaim train`` run from its ``TrainConfig.to_dict()``: its run directory."""
    from agents.learners.sb3.train import TrainConfig, train

    cfg_dict = dict(cfg_dict)
    cfg_dict["net_arch"] = tuple(cfg_dict["net_arch"]) if cfg_dict.get("net_arch") else None
    return str(train(TrainConfig(**cfg_dict)).run_dir)


# --------------------------------------------------------------------- the runs
def has_imitate_checkpoint(path: Path) -> bool:
    ck = path / "checkpoints"
    return ck.is_dir() and any(ck.glob("checkpoint_*.json"))


def imitate_finished(run_path: Path, iterations: int) -> bool:
    """True when the imitation run at ``run_path`` has its result for ``iterations``."""
    from agents.runs import RunDir

    res = RunDir(run_path).read_result()
    return res is not None and res.get("iterations") == iterations


def imitate_plan(config: Any) -> list[tuple[dict[str, Any], str | None]]:
    """The imitation runs still to make for ``config``'s recipes (each run once, also when
    a fine-tuning recipe and its imitation recipe are both compared); a finished run of
    another config is a ``UserError``."""
    from agents.learners.imitation.train import _check_same_config
    from agents.runs import ConfigError
    from experiments.user_errors import UserError

    todo = []
    names = dict.fromkeys(n for a in config.algos if (n := imitation_recipe(a)) is not None)
    for recipe in names:
        for seed in range(config.seeds):
            ic = config.imitate_config(recipe, seed, False, False)
            path = ic.run.path
            if (path / "result.json").exists():
                try:
                    _check_same_config(ic, ic.run)
                except ConfigError as e:
                    raise UserError(f"{e}: a finished run of another config; pass another "
                                    f"--name or delete {path}") from None  # fmt: skip
                if imitate_finished(path, ic.iterations):
                    continue
            resume = has_imitate_checkpoint(path)
            fresh = config.imitate_config(recipe, seed, resume, path.exists() and not resume)
            todo.append((fresh.to_dict(), config.scenario_module))
    return todo


def finetune_plan(config: Any) -> list[Any]:
    """The fine-tuning runs (``TrainConfig``) still to make, for the seeds whose imitation
    run is finished (run after :func:`imitate_plan`'s jobs)."""
    from agents.learners.sb3.train import ConfigError, _check_same_config, _check_same_imitation
    from experiments.user_errors import UserError

    todo = []
    for algo in config.algos:
        r = RECIPES.get(algo)
        if r is None or r.kind != "finetune":
            continue
        for seed in range(config.seeds):
            if not imitate_finished(config.run_path(r.init_from, seed),
                                    config.imitate_iterations_of(r.init_from)):  # fmt: skip
                continue
            tc = config.train_config(algo, seed, False, False)
            run = tc.run
            if run.is_finished(config.total_timesteps):
                try:
                    _check_same_config(tc, run)
                    _check_same_imitation(tc, run)
                except ConfigError as e:
                    raise UserError(f"{e}: a finished run of another config; pass another "
                                    f"--name or delete {run.path}") from None  # fmt: skip
                continue
            ck = run.has_checkpoint()
            todo.append(config.train_config(algo, seed, resume=ck, overwrite=not ck))
    return todo


def recipe_finished(config: Any, algo: str, seed: int) -> bool:
    """True when recipe ``algo``'s run of ``seed`` is finished (imitation: its result for
    the configured iterations; fine-tuning and train: for ``total_timesteps``)."""
    from agents.runs import RunDir

    r = RECIPES[algo]
    path = config.run_path(algo, seed)
    if r.kind == "imitate":
        return imitate_finished(path, config.imitate_iterations_of(algo))
    return RunDir(path).is_finished(config.total_timesteps)


def imitation_curve(path: Path) -> list[dict[str, Any]]:
    """(round, mean rollout return) of an imitation run's ``result.json`` history: round 0
    is the teacher's own rollouts, round ``i`` the episodes DAgger's student ``i`` (mixed
    with the teacher by β_i) played on the training seeds of that round."""
    from agents.runs import RunDir

    res = RunDir(path).read_result() or {}
    return [{"round": int(h["iteration"]), "mean_return": float(h["rollout_return"])}
            for h in res.get("history", [])]  # fmt: skip


def imitate_fields(algo: str, iterations: int, episodes: int) -> dict[str, Any]:
    """The ``ImitateConfig`` fields of imitation recipe ``algo`` on this budget (BC: the
    teacher's rollouts only, as many episodes as DAgger collects over all its rounds)."""
    f = dict(RECIPES[algo].fields)
    bc = bool(f.pop("bc", False))
    return {**f, "iterations": 0 if bc else iterations,
            "episodes": episodes * (iterations + 1) if bc else episodes}  # fmt: skip


def recipe_interface(given: dict[str, Any]) -> dict[str, Any]:
    """The env options of a recipe's run: ``given`` (the non-None ones) over the
    ablation's :data:`INTERFACE`."""
    return {**INTERFACE, **{k: v for k, v in given.items() if v is not None}}
