"""``reclaim tune``: an Optuna hyperparameter search on the training scenarios only.

Each trial samples hyperparameters for one algorithm (a small search space in the spirit
of rl-zoo3's for SB3: log-uniform learning rate, categorical rollout and batch sizes,
discount, GAE lambda, entropy bonus, PPO clip range, ...), mapped onto
:class:`agents.learners.sb3.train.TrainConfig` fields, and trains ``--seeds`` runs with them
(training seeds ``0 .. seeds-1``) in ``--evals`` chunks of ``timesteps / evals`` env steps,
each chunk a ``reclaim train --resume`` of the last (bit-exact, see
agents.learners.sb3.train). After every chunk the trial reports the mean return of each
run's final evaluation (over the training scenarios and ``eval_episodes`` seeds), which
the median pruner reads to stop poor trials early; the trial's value is the last report.

**The test split is never seen.** Scenarios whose split is ``test`` are refused, and the
evaluation episodes use seeds ``eval_seed .. eval_seed + eval_episodes - 1`` (default
1 500 000), which must lie in ``[1e6, CompareConfig.eval_seed_base = 2e6)``: above the
training episodes' host seeds and below the test seeds of ``reclaim compare``
(``eval_seed_base + k``), and apart from the in-training evaluation seeds of compare's runs
(``TrainConfig.eval_seed = 1e6`` + k, k < eval_episodes) unless asked for.

The study lives in an Optuna RDB storage (default ``sqlite:///<out>/study.db``): a killed
search, rerun with the same command, resumes — ``--trials`` is the study's total of
finished (complete or pruned) trials, not the number to add (with ``--jobs`` > 1, trials
already running when the total is reached still finish: up to jobs - 1 more). Outputs in
``runs/tune/<name>/`` under the current directory (or ``--out``), each written atomically
after every trial: ``best.json`` (best value, params and the TrainConfig fields to pass
to ``reclaim train``), ``trials.csv`` (``study.trials_dataframe()``) and ``config.json``
(the config, versions, git revision). Per trial the runs live in ``<out>/trials/trial-<n>/<seed>/``.

**Heuristics** (``--policy esx``, or mom, hyperv, mrc, selfballoon): instead of an
agent's hyperparameters the study searches the heuristic's documented constants (the
search spaces of :data:`agents.tuned.SEARCH_SPACES`). Nothing is trained: a trial plays
the heuristic with its sampled constants on every training scenario with the evaluation
seeds above (``--eval-episodes`` of them, from ``--eval-seed``; the same seed rules), one
native vector env of B = seeds per scenario, and its value is the mean episode return over
scenarios × seeds. The first trial of a new study is the stock heuristic (its published
constants, enqueued), so the best trial never scores below stock on those seeds. No
pruning (a trial is one pass over the scenarios); ``--algo``, ``--timesteps``,
``--evals``, ``--seeds``, ``--n-envs`` and ``--action-mode`` do not apply. ``best.json``
adds the best ``constants`` (the constructor's keyword arguments) and ``stock_value``.
``python -m experiments.tune_publish`` turns finished studies into the committed
``agents/tuned_heuristics.json`` (registered as ``<name>-tuned``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from agents.learners.sb3.train import DEFAULT_IN_HELP
from agents.provenance import run_metadata
from envs.files import write_json_atomic, write_text_atomic
from experiments.user_errors import (
    UserError,
    check_int,
    check_scenarios,
    load_scenario_module_arg,
    split_list,
)

PRUNERS = ("median", "none")
# The first seed of the test episodes of ``reclaim compare`` (CompareConfig.eval_seed_base);
# tuning evaluations stay below it.
_SEED_LO, _SEED_HI = 1_000_000, 2_000_000
_NET_ARCHS = {"small": (64, 64), "medium": (128, 128), "large": (256, 256)}


@dataclass(frozen=True)
class TuneConfig:
    """Hyperparameter search with Optuna on the training scenarios and seeds only
    (``reclaim tune --help`` shows each field)."""

    algo: str = "ppo"
    """algorithm to tune: ppo, a2c, sac, td3 or recurrent-ppo"""
    policy: str | None = None
    """a heuristic whose constants to tune instead of an agent: esx, mom, hyperv, mrc or
    selfballoon (agents.tuned.SEARCH_SPACES); --algo, --timesteps, --evals, --seeds,
    --n-envs and --action-mode do not apply"""
    scenarios: tuple[str, ...] = ("split:train",)
    """training scenarios, comma- or space-separated ids or split:train (a test-split
    scenario is refused)"""
    scenario_module: str | None = None
    """a Python file that registers more scenarios (envs.scenarios.demand_scenario /
    trace_scenario, split 'train'), loaded here and in every worker"""
    trials: int = 50
    """total finished (complete or pruned) trials of the study; a rerun adds only the missing"""
    timesteps: int = 100_000
    """training budget per trial and seed, in env steps (host ticks summed over the hosts)"""
    evals: int = 4
    """evaluations per trial (one after each timesteps/evals chunk): the pruner's steps"""
    eval_episodes: int = 4
    """evaluation episodes per training scenario, seeds eval-seed .. eval-seed + n - 1"""
    eval_seed: int = 1_500_000
    """first evaluation seed; the range must lie in [1e6, 2e6): apart from the training
    episodes and below the test seeds of reclaim compare (2e6 + k)"""
    seeds: int = 1
    """training seeds per trial (0 .. seeds-1); the objective is their mean return"""
    n_envs: Annotated[int | None, DEFAULT_IN_HELP] = None
    """hosts stepped together per run (fixed, not searched; default: the algorithm's)"""
    max_episode_steps: Annotated[int | None, DEFAULT_IN_HELP] = None
    """episode length override for training and evaluation (default: each scenario's)"""
    action_mode: str = "absolute"
    """action mode of the trained agents (sac/td3: absolute or delta)"""
    sampler_seed: int = 0
    """seed of the TPE sampler"""
    pruner: str = "median"
    """median: stop a trial whose intermediate return is below the median of earlier trials
    at the same evaluation; none: no pruning"""
    storage: Annotated[str | None, DEFAULT_IN_HELP] = None
    """Optuna RDB storage URL (default: sqlite:///<out>/study.db, so a killed study resumes)"""
    name: str = "study"
    """study name (and the output folder runs/tune/<name>/, unless --out names one)"""
    out: Annotated[Path | None, DEFAULT_IN_HELP] = None
    """output folder (default: runs/tune/<name>/ under the current directory)"""
    jobs: int = 1
    """parallel worker processes sharing the storage (1: trials one after another); worker
    w samples with sampler-seed + w"""

    def __post_init__(self) -> None:
        from agents.learners.sb3.algos import ALGOS, CONTINUOUS_ONLY

        object.__setattr__(self, "scenario_module",
                           load_scenario_module_arg("--scenario-module", self.scenario_module))
        object.__setattr__(self, "scenarios", split_list(self.scenarios))
        if self.policy is not None:
            from agents.tuned import check_tunable

            try:
                check_tunable(self.policy)
            except ValueError as e:
                raise UserError(f"--policy: {e}") from None
        if self.algo not in ALGOS:
            raise UserError(f"--algo must be one of {list(ALGOS)}, got {self.algo!r}")
        if self.algo in CONTINUOUS_ONLY and self.action_mode == "discrete":
            raise UserError(f"--action-mode: {self.algo} needs absolute or delta, not discrete")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise UserError(f"--name must be a plain directory name, got {self.name!r}")
        for flag, minimum in (("trials", 1), ("timesteps", 1), ("evals", 1),
                              ("eval_episodes", 1), ("seeds", 1), ("sampler_seed", 0),
                              ("jobs", 1)):  # fmt: skip
            check_int("--" + flag.replace("_", "-"), getattr(self, flag), minimum)
        if self.evals > self.timesteps:
            raise UserError(f"--evals must be <= --timesteps ({self.timesteps}), got {self.evals}")
        check_int("--eval-seed", self.eval_seed, _SEED_LO)
        if self.eval_seed + self.eval_episodes > _SEED_HI:
            raise UserError(
                f"--eval-seed: seeds {self.eval_seed} .. {self.eval_seed + self.eval_episodes - 1}"
                f" reach the test seeds of reclaim compare (>= {_SEED_HI})"
            )
        if self.n_envs is not None:
            check_int("--n-envs", self.n_envs, 1)
        if self.max_episode_steps is not None:
            check_int("--max-episode-steps", self.max_episode_steps, 1)
        if self.pruner not in PRUNERS:
            raise UserError(f"--pruner must be one of {list(PRUNERS)}, got {self.pruner!r}")
        ids = self.scenario_ids  # UserError for an unknown id, an empty list or a test scenario
        check_scenarios("--scenarios", ids)
        if self.policy is not None:
            return
        try:
            self.train_config(0, 0, 1, {})  # action mode, layout, n_envs: TrainConfig's checks
        except ValueError as e:
            raise UserError(str(e)) from None

    @property
    def scenario_ids(self) -> tuple[str, ...]:
        from envs.scenarios import get_scenario, resolve_scenarios

        ids: list[str] = []
        for spec in self.scenarios:
            if spec.startswith("split:") and spec[len("split:") :].partition("@")[0] != "train":
                raise UserError(f"--scenarios: tuning uses the train split only, got {spec!r}")
            try:
                ids.extend(resolve_scenarios(spec))
            except ValueError as e:
                raise UserError(f"--scenarios: {e}") from None
        if not ids:
            raise UserError("--scenarios must name at least one scenario, got none")
        for sid in ids:
            split = get_scenario(sid).split
            if split != "train":
                raise UserError(
                    f"--scenarios: {sid!r} is a {split}-split scenario; tuning uses the train "
                    "split only (the test split is kept for the final evaluation)"
                )
        return tuple(dict.fromkeys(ids))

    @property
    def out_dir(self) -> Path:
        out = self.out if self.out is not None else Path("runs") / "tune" / self.name
        return Path(os.path.abspath(out.expanduser()))  # relative: to the current directory

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.out_dir / 'study.db'}"

    @property
    def eval_seeds(self) -> list[int]:
        """The evaluation seeds: eval-seed .. eval-seed + eval-episodes - 1."""
        return [self.eval_seed + k for k in range(self.eval_episodes)]

    def train_config(self, trial: int, seed: int, chunk: int, params: dict[str, Any],
                     resume: bool = False):  # fmt: skip
        """The TrainConfig of trial ``trial``'s run ``seed`` up to chunk ``chunk`` (1-based)."""
        from agents.learners.sb3.train import TrainConfig

        return TrainConfig(
            algo=self.algo, scenario=",".join(self.scenario_ids), seed=seed,
            total_timesteps=self.chunk_steps(chunk), name=f"trial-{trial}",
            runs_dir=str(self.out_dir / "trials"), scenario_module=self.scenario_module,
            action_mode=self.action_mode,
            max_episode_steps=self.max_episode_steps, n_envs=self.n_envs,
            # No in-training evaluations: each chunk's final evaluation is the report.
            eval_freq=0, eval_episodes=self.eval_episodes, eval_seed=self.eval_seed,
            # A checkpoint at each chunk's end (the next chunk resumes from it).
            checkpoint_freq=max(1, self.timesteps // self.evals),
            resume=resume, overwrite=not resume, progress_bar=False, tensorboard=False,
            **train_fields(params),
        )  # fmt: skip

    def chunk_steps(self, chunk: int) -> int:
        """Env steps at the end of chunk ``chunk`` (1-based; the last is ``timesteps``)."""
        return self.timesteps if chunk >= self.evals else chunk * (self.timesteps // self.evals)


# ------------------------------------------------------------------ search space
def _common(trial, lr: tuple[float, float]) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", *lr, log=True),
        "gamma": trial.suggest_categorical("gamma", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
        "net_arch": trial.suggest_categorical("net_arch", list(_NET_ARCHS)),
    }


def sample_params(trial, algo: str) -> dict[str, Any]:
    """Optuna parameters of ``algo`` for ``trial`` (names as TrainConfig's, but net_arch a
    label of _NET_ARCHS: categorical choices must be plain values)."""
    p = _common(trial, (1e-5, 3e-3))
    if algo in ("ppo", "recurrent-ppo", "a2c"):
        steps = [4, 8, 16, 32] if algo == "a2c" else [16, 32, 64, 128, 256]
        p["n_steps"] = trial.suggest_categorical("n_steps", steps)
        p["gae_lambda"] = trial.suggest_categorical("gae_lambda", [0.8, 0.9, 0.92, 0.95, 0.98, 1.0])
        p["ent_coef"] = trial.suggest_float("ent_coef", 1e-8, 0.1, log=True)
    if algo in ("ppo", "recurrent-ppo"):
        p["batch_size"] = trial.suggest_categorical("batch_size", [64, 128, 256, 512])
        p["n_epochs"] = trial.suggest_categorical("n_epochs", [3, 5, 10, 20])
        p["clip_range"] = trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3, 0.4])
    if algo == "recurrent-ppo":
        p["lstm_hidden_size"] = trial.suggest_categorical("lstm_hidden_size", [32, 64, 128])
    if algo in ("sac", "td3"):
        p["batch_size"] = trial.suggest_categorical("batch_size", [64, 128, 256, 512])
        p["tau"] = trial.suggest_categorical("tau", [0.001, 0.005, 0.01, 0.02])
        p["learning_starts"] = trial.suggest_categorical("learning_starts", [0, 1000, 5000])
        p["train_freq"] = trial.suggest_categorical("train_freq", [1, 4, 8, 16])
        p["buffer_size"] = trial.suggest_categorical("buffer_size", [50_000, 200_000, 1_000_000])
    if algo == "td3":
        p["action_noise"] = trial.suggest_float("action_noise", 0.0, 0.5)
    return p


def train_fields(params: dict[str, Any]) -> dict[str, Any]:
    """Sampled parameters as TrainConfig fields (net_arch label -> sizes; sac/td3 take one
    gradient step per env step collected, as rl-zoo3 does)."""
    out = dict(params)
    if "net_arch" in out:
        out["net_arch"] = _NET_ARCHS[out["net_arch"]]
    if "train_freq" in out:
        out["gradient_steps"] = out["train_freq"]
    if out.get("net_arch") is not None and "lstm_hidden_size" in out:
        out["net_arch"] = out["net_arch"][:1]  # the LSTM replaces the first layer
    return out


# ------------------------------------------------------------------ the study
def _finished_states():
    import optuna

    return (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _objective(config: TuneConfig):
    import optuna

    from agents.learners.sb3.train import train

    def objective(trial: optuna.Trial) -> float:
        params = sample_params(trial, config.algo)
        value = math.nan
        last: dict[int, Any] = {}  # seed -> TrainResult of its last chunk
        for chunk in range(1, config.evals + 1):
            returns = []
            for seed in range(config.seeds):
                prev = last.get(seed)
                # A rollout can overshoot a chunk's budget (SB3 stops at rollout ends):
                # a run already past this chunk's end keeps its last evaluation.
                if prev is None or prev.env_steps < config.chunk_steps(chunk):
                    tc = config.train_config(trial.number, seed, chunk, params,
                                             resume=prev is not None)  # fmt: skip
                    last[seed] = train(tc)
                returns.extend(last[seed].final_eval.values())
            value = float(sum(returns) / len(returns))
            # Step = the chunk's budget, the same for every trial: the pruner compares
            # trials at equal training time.
            trial.report(value, config.chunk_steps(chunk))
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    return objective


def heuristic_returns(
    policy: str,
    params: dict[str, Any] | None,
    scenarios: tuple[str, ...] | list[str],
    seeds: list[int],
    max_episode_steps: int | None = None,
) -> dict[str, list[float]]:
    """scenario -> the episode return of each seed of heuristic ``policy`` with the
    constants of ``params`` (None: stock), every seed of a scenario in one native vector
    env (B = seeds), the first episode of each env."""
    from agents.tuned import build
    from envs.rollout import first_episodes
    from envs.vector_env import BalloonVectorEnv

    out: dict[str, list[float]] = {}
    for sc in scenarios:
        env = BalloonVectorEnv(len(seeds), sc, max_episode_steps=max_episode_steps)
        pol = build(policy, env, params)
        out[sc] = [float(e["return"]) for e in first_episodes(env, pol, seeds)]
        env.close()
    return out


def mean_return(returns: dict[str, list[float]]) -> float:
    """The mean episode return over every (scenario, seed)."""
    values = [r for rs in returns.values() for r in rs]
    return float(sum(values) / len(values))


def _heuristic_objective(config: TuneConfig):
    from agents.tuned import check_tunable

    space = check_tunable(config.policy)

    def objective(trial) -> float:
        params = space.sample(trial)
        returns = heuristic_returns(config.policy, params, config.scenario_ids,
                                    config.eval_seeds, config.max_episode_steps)  # fmt: skip
        trial.set_user_attr("returns", returns)
        return mean_return(returns)

    return objective


def _load_study(config: TuneConfig, sampler_seed: int | None = None):
    import warnings

    import optuna

    with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            config.storage_url,
            # A worker that died mid-trial leaves it RUNNING; its heartbeat stops and a
            # later worker marks it failed, so the study does not wait for it.
            heartbeat_interval=60, grace_period=180,
        )  # fmt: skip
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
        if config.pruner == "median" and config.policy is None
        else optuna.pruners.NopPruner()
    )
    seed = config.sampler_seed if sampler_seed is None else sampler_seed
    # A heuristic's study is small (a dozen trials of a few constants): TPE models after 5
    # trials (the stock one included) rather than Optuna's default 10 random ones.
    startup = {} if config.policy is None else {"n_startup_trials": 5}
    sampler = optuna.samplers.TPESampler(seed=seed, **startup)
    study = optuna.create_study(
        study_name=config.name, storage=storage, sampler=sampler, pruner=pruner,
        direction="maximize", load_if_exists=True,
    )  # fmt: skip
    if config.policy is not None:
        from agents.tuned import check_tunable

        policy = study.user_attrs.get("policy")
        if policy is not None and policy != config.policy:
            raise UserError(f"study {config.name!r} tunes {policy!r}, not {config.policy!r}")
        if not study.get_trials(deepcopy=False):
            # The first trial is the stock heuristic: the best is never below it.
            study.set_user_attr("policy", config.policy)
            study.enqueue_trial(check_tunable(config.policy).stock_params)
    return study


def n_finished(study) -> int:
    return len(study.get_trials(deepcopy=False, states=_finished_states()))


def write_outputs(config: TuneConfig, study) -> None:
    """best.json and trials.csv (atomically) from the study's current trials."""
    out = config.out_dir
    write_text_atomic(out / "trials.csv", study.trials_dataframe().to_csv(index=False))
    done = [t for t in study.get_trials(deepcopy=False) if t.value is not None
            and t.state.name == "COMPLETE"]  # fmt: skip
    if config.policy is not None:
        write_json_atomic(out / "best.json", _heuristic_best(config, study, done))
        return
    best: dict[str, Any] = {"study": config.name, "algo": config.algo,
                            "finished_trials": n_finished(study), "best": None}  # fmt: skip
    if done:
        b = study.best_trial
        fields = train_fields(b.params)
        if "net_arch" in fields:
            fields["net_arch"] = list(fields["net_arch"])
        best["best"] = {"trial": b.number, "value": b.value, "params": b.params,
                        "train_config_fields": fields}  # fmt: skip
    write_json_atomic(out / "best.json", best)


def _heuristic_best(config: TuneConfig, study, done: list) -> dict[str, Any]:
    from agents.tuned import check_tunable, constants

    stock = check_tunable(config.policy).stock_params
    stock_trials = [t for t in done if t.params == stock]
    best: dict[str, Any] = {
        "study": config.name, "policy": config.policy, "finished_trials": n_finished(study),
        "scenarios": list(config.scenario_ids), "seeds": config.eval_seeds,
        "max_episode_steps": config.max_episode_steps,
        "stock_value": stock_trials[0].value if stock_trials else None, "best": None,
    }  # fmt: skip
    if done:
        b = max(done, key=lambda t: (t.value, -t.number))  # the earliest of equal values
        kwargs = constants(config.policy, b.params)
        best["best"] = {"trial": b.number, "value": b.value, "params": b.params,
                        "constants": {k: list(v) if isinstance(v, tuple) else v
                                      for k, v in kwargs.items()}}  # fmt: skip
    return best


def _progress(config: TuneConfig, t0: float):
    def callback(study, trial) -> None:
        value = "–" if trial.value is None else f"{trial.value:.4f}"
        try:
            best = f"{study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "–"
        print(f"[tune] trial {trial.number} {trial.state.name.lower()}: value {value}; "
              f"{n_finished(study)}/{config.trials} finished; best {best}; "
              f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
        write_outputs(config, study)

    return callback


def _worker(config_dict: dict[str, Any], worker: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = TuneConfig(**{**config_dict, "out": Path(config_dict["out"])})
    # Each worker its own sampler seed: the same seed would sample the same parameters.
    _optimize(config, _load_study(config, config.sampler_seed + worker), time.time())


def _optimize(config: TuneConfig, study, t0: float) -> None:
    from optuna.study import MaxTrialsCallback

    if n_finished(study) >= config.trials:
        return
    study.optimize(
        _objective(config) if config.policy is None else _heuristic_objective(config),
        n_trials=config.trials,  # an upper bound; MaxTrialsCallback stops at the total
        callbacks=[MaxTrialsCallback(config.trials, states=_finished_states()),
                   _progress(config, t0)],
        gc_after_trial=True,
    )  # fmt: skip


def tune(config: TuneConfig):
    """Run (or resume) the study to ``config.trials`` finished trials; returns the study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    study = _load_study(config)
    write_json_atomic(
        out / "config.json",
        run_metadata(command="tune", config=_config_dict(config), seed=config.sampler_seed,
                     scenarios=list(config.scenario_ids), storage=config.storage_url,
                     optuna_version=optuna.__version__,
                     eval_seeds=[config.eval_seed + k for k in range(config.eval_episodes)],
                     train_seeds=list(range(config.seeds))),
    )  # fmt: skip
    t0 = time.time()
    before = n_finished(study)
    print(f"[tune] study {config.name!r} ({config.storage_url}): {before} of {config.trials} "
          "trials finished", file=sys.stderr, flush=True)  # fmt: skip
    from experiments.estimate import announce

    if config.policy is None:
        announce("tune", max(0, config.trials - before) * config.seeds, config.timesteps,
                 config.jobs, extra=" at most (the pruner stops poor trials early)")  # fmt: skip
    if config.jobs == 1:
        _optimize(config, study, t0)
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(config.jobs, mp_context=get_context("spawn")) as pool:
            for f in [pool.submit(_worker, _config_dict(config), w) for w in range(config.jobs)]:
                f.result()
    write_outputs(config, study)
    return study


def _config_dict(config: TuneConfig) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    d["out"] = str(config.out_dir)
    d["scenarios"] = list(d["scenarios"])
    return d


def run(config: TuneConfig) -> int:
    study = tune(config)
    best = json.loads((config.out_dir / "best.json").read_text())["best"]
    if best is None:
        print(f"no trial completed ({n_finished(study)} finished); see {config.out_dir}")
    elif config.policy is not None:
        print(f"best value {best['value']:.4f} (trial {best['trial']}; stock "
              f"{json.loads((config.out_dir / 'best.json').read_text())['stock_value']}): "
              f"{json.dumps(best['constants'])}")  # fmt: skip
    else:
        print(f"best value {best['value']:.4f} (trial {best['trial']}): "
              f"{json.dumps(best['train_config_fields'])}")  # fmt: skip
    print(f"results: {config.out_dir}")
    return 0
