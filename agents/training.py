"""Train Stable-Baselines3 agents on ReclaimGym: config, run directory, checkpoints, resume.

One run = one algorithm, one set of training scenarios, one seed, in
``<runs_dir>/<name>/<seed>/``:

- ``config.json``: the config as given, the resolved hyperparameters, seed, versions,
  git revision, machine (written before training starts);
- ``checkpoints/``: ``checkpoint.json`` (the last complete checkpoint: written last, so a
  kill mid-save leaves the previous one valid) with the model, VecNormalize statistics
  and, for SAC/TD3, the replay buffer; the last two are kept;
- ``evaluations.csv``: the held-out evaluations during training (long format: one row
  per env steps, scenario and seed);
- ``logs/``: TensorBoard event files and SB3's ``progress.csv`` (per resumed segment);
- ``model.zip``, ``vecnormalize.pkl``: the final model and its normalization statistics
  (``best_model.zip`` / ``best_vecnormalize.pkl``: the best evaluation);
- ``result.json``: written last; its presence marks a finished run.

Time is counted in **env steps** (host ticks summed over the hosts): with the per-VM
layout SB3 counts one step per VM, so its ``num_timesteps`` is ``V`` times larger.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.scenarios import DEFAULT_SCENARIO, get_scenario, scenario_ids

ALGOS = ("ppo", "a2c", "sac", "td3", "recurrent-ppo")
ON_POLICY = ("ppo", "a2c", "recurrent-ppo")
CONTINUOUS_ONLY = ("sac", "td3")
LAYOUTS = ("per-vm", "flat")
ACTION_MODES = ("absolute", "delta", "discrete")

# Per-algorithm defaults of the hyperparameters left None in TrainConfig (why: see
# experiments/results/README.md, "Default hyperparameters").
_PPO_DEFAULTS: dict[str, Any] = dict(
    n_envs=16,
    n_steps=64,
    batch_size=512,
    n_epochs=10,
    learning_rate=3e-4,
    gamma=0.99,
    gae_lambda=0.95,
    ent_coef=0.0,
    clip_range=0.2,
    net_arch=(64, 64),
    log_std_init=-0.5,
)
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": _PPO_DEFAULTS,
    # The same, with the first layer replaced by an LSTM.
    "recurrent-ppo": {**_PPO_DEFAULTS, "net_arch": (64,), "lstm_hidden_size": 64},
    "a2c": dict(
        n_envs=16,
        n_steps=8,
        learning_rate=7e-4,
        gamma=0.99,
        gae_lambda=0.95,
        ent_coef=0.0,
        net_arch=(64, 64),
        log_std_init=-0.5,
    ),
    "sac": dict(
        n_envs=4,
        batch_size=256,
        learning_rate=3e-4,
        gamma=0.99,
        buffer_size=200_000,
        learning_starts=2_000,
        train_freq=1,
        gradient_steps=1,
        tau=0.005,
        net_arch=(128, 128),
    ),
    "td3": dict(
        n_envs=4,
        batch_size=256,
        learning_rate=1e-3,
        gamma=0.99,
        buffer_size=200_000,
        learning_starts=2_000,
        train_freq=1,
        gradient_steps=1,
        tau=0.005,
        net_arch=(128, 128),
        action_noise=0.1,
    ),
}
# Hyperparameters that an algorithm does not take (an explicit value is an error).
_ACCEPTS = {a: set(d) for a, d in ALGO_DEFAULTS.items()}
_HYPER = (
    "n_envs", "n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda",
    "ent_coef", "clip_range", "net_arch", "log_std_init", "lstm_hidden_size", "buffer_size",
    "learning_starts", "train_freq", "gradient_steps", "tau", "action_noise",
)  # fmt: skip
# Config fields that may change when a run is resumed.
RESUMABLE_CHANGES = ("total_timesteps", "resume", "overwrite", "progress_bar", "verbose",
                     "torch_threads", "tensorboard")  # fmt: skip


class ConfigError(ValueError):
    """A config, run directory or checkpoint that cannot be trained (raised before any
    training time is spent)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (``reclaim train --help`` shows each field)."""

    algo: str = "ppo"
    """algorithm: ppo, a2c, sac, td3 or recurrent-ppo"""
    scenario: str = DEFAULT_SCENARIO
    """scenario id, comma-separated ids, or 'split:train' / 'split:test' for a whole split"""
    seed: int = 0
    """seed of the networks, the exploration and the training episodes"""
    total_timesteps: int = 200_000
    """training budget in env steps (host ticks summed over the hosts)"""
    name: str | None = None
    """run name (default: '<algo>-<scenario>'); the run lives in <runs-dir>/<name>/<seed>/"""
    runs_dir: str = "runs"
    """where run directories are created"""
    layout: str = "per-vm"
    """'per-vm': one shared network sets each VM's balloon from its own, host-mean, host-max
    and host features (any VM count); 'flat': one network sees all VMs (one VM count)"""
    action_mode: str = "absolute"
    """absolute, delta or discrete (SAC and TD3 need absolute or delta)"""
    max_episode_steps: int | None = None
    """episode length override (default: each scenario's)"""
    normalize_obs: bool = True
    """normalize observations with running statistics (VecNormalize, saved with the model)"""
    normalize_reward: bool = True
    """scale rewards by a running estimate of the return's std (VecNormalize)"""
    n_envs: int | None = None
    """hosts stepped together, split evenly over the scenarios, at least one each
    (default: 16 for ppo/a2c/recurrent-ppo, 4 for sac/td3)"""
    n_steps: int | None = None
    """on-policy: steps per host per rollout (default ppo 64, a2c 8)"""
    batch_size: int | None = None
    """minibatch size in transitions (default ppo 512, sac/td3 256)"""
    n_epochs: int | None = None
    """PPO epochs per rollout (default 10)"""
    learning_rate: float | None = None
    """Adam/RMSprop step size (default 3e-4; a2c 7e-4, td3 1e-3)"""
    gamma: float | None = None
    """discount factor (default 0.99: a horizon of ~100 ticks)"""
    gae_lambda: float | None = None
    """GAE lambda (default 0.95)"""
    ent_coef: float | None = None
    """entropy bonus (default 0)"""
    clip_range: float | None = None
    """PPO clip range (default 0.2)"""
    net_arch: tuple[int, ...] | None = None
    """hidden layer sizes of the policy and value networks (default 64,64; sac/td3 128,128)"""
    log_std_init: float | None = None
    """initial log std of Gaussian on-policy actions (default -0.5)"""
    lstm_hidden_size: int | None = None
    """recurrent-ppo LSTM units (default 64)"""
    buffer_size: int | None = None
    """sac/td3 replay buffer size in transitions (default 200000)"""
    learning_starts: int | None = None
    """sac/td3 transitions collected before learning (default 2000)"""
    train_freq: int | None = None
    """sac/td3 env steps between updates (default 1)"""
    gradient_steps: int | None = None
    """sac/td3 gradient steps per update (default 1)"""
    tau: float | None = None
    """sac/td3 target network update rate (default 0.005)"""
    action_noise: float | None = None
    """td3 Gaussian exploration noise std (default 0.1)"""
    eval_freq: int = 20_000
    """env steps between evaluations on held-out seeds (0: none)"""
    eval_episodes: int = 4
    """episodes per training scenario in each evaluation"""
    eval_seed: int = 1_000_000
    """first seed of the evaluation episodes (training episodes use other seeds)"""
    checkpoint_freq: int = 20_000
    """env steps between checkpoints (a killed run loses at most this much)"""
    resume: bool = False
    """continue the run from its last checkpoint (it must exist)"""
    overwrite: bool = False
    """delete an existing run directory of the same name and seed first"""
    progress_bar: bool = True
    """show SB3's progress bar (tqdm + rich)"""
    tensorboard: bool = True
    """write TensorBoard event files to <run>/logs (SB3's progress.csv is always written)"""
    torch_threads: int = 1
    """torch CPU threads (1 is fastest for these small networks; run seeds in parallel)"""
    verbose: int = 0
    """SB3 verbosity (1 also prints the training table)"""

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ConfigError(f"unknown algorithm {self.algo!r}; choose one of {list(ALGOS)}")
        for s in self.scenarios:
            try:
                get_scenario(s)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {list(LAYOUTS)}, got {self.layout!r}")
        if self.action_mode not in ACTION_MODES:
            raise ConfigError(
                f"action_mode must be one of {list(ACTION_MODES)}, got {self.action_mode!r}"
            )
        if self.algo in CONTINUOUS_ONLY and self.action_mode == "discrete":
            raise ConfigError(
                f"{self.algo} needs continuous actions: use --action-mode absolute or delta, "
                "not discrete"
            )
        if self.layout == "flat":
            counts = sorted({get_scenario(s).num_vms for s in self.scenarios})
            if len(counts) > 1:
                raise ConfigError(
                    f"layout 'flat' needs one VM count, the scenarios have {counts}; "
                    "use --layout per-vm"
                )
        for name in ("seed", "eval_seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name} must be an int >= 0, got {v!r}")
        positive = ("total_timesteps", "eval_episodes", "checkpoint_freq", "torch_threads")
        for name in positive:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {v!r}")
        if self.eval_freq < 0:
            raise ConfigError(f"eval_freq must be >= 0, got {self.eval_freq}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ConfigError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite contradict each other")
        if self.name is not None and (not self.name or "/" in self.name or self.name[0] == "."):
            raise ConfigError(f"name must be a plain directory name, got {self.name!r}")
        given = {h for h in _HYPER if getattr(self, h) is not None}
        wrong = sorted(given - _ACCEPTS[self.algo])
        if wrong:
            raise ConfigError(f"{self.algo} does not take {wrong}")
        if self.action_mode == "discrete" and self.log_std_init is not None:
            raise ConfigError("log_std_init applies to continuous actions only")
        hp = self.hyperparams
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "buffer_size",
                     "train_freq", "gradient_steps", "lstm_hidden_size"):  # fmt: skip
            v = hp.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be an int >= 1, got {v!r}")
        if any(n < 1 for n in hp["net_arch"]):
            raise ConfigError(f"net_arch sizes must be >= 1, got {hp['net_arch']}")
        if not 0 < hp["gamma"] <= 1 or hp["learning_rate"] <= 0:
            raise ConfigError("need 0 < gamma <= 1 and learning_rate > 0")

    # ------------------------------------------------------------- derived
    @property
    def scenarios(self) -> tuple[str, ...]:
        if self.scenario.startswith("split:"):
            ids = scenario_ids(self.scenario[len("split:") :])
            if not ids:
                raise ConfigError(f"no scenarios in {self.scenario!r}")
            return tuple(ids)
        ids = tuple(s.strip() for s in self.scenario.split(",") if s.strip())
        if not ids:
            raise ConfigError("scenario must name at least one scenario")
        return ids

    @property
    def run_name(self) -> str:
        return self.name or f"{self.algo}-{self.scenario.replace(':', '-').replace(',', '+')}"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.run_name / str(self.seed)

    @property
    def hyperparams(self) -> dict[str, Any]:
        """The algorithm's hyperparameters: given values over ALGO_DEFAULTS."""
        out = dict(ALGO_DEFAULTS[self.algo])
        out.update({h: getattr(self, h) for h in _HYPER if getattr(self, h) is not None})
        if self.action_mode == "discrete":
            out.pop("log_std_init", None)
        return out

    @property
    def hosts_per_scenario(self) -> int:
        return max(1, self.hyperparams["n_envs"] // len(self.scenarios))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["net_arch"] = list(d["net_arch"]) if d["net_arch"] is not None else None
        return d


# ----------------------------------------------------------------- building
def make_train_env(config: TrainConfig):
    from agents.sb3_env import BalloonSB3VecEnv

    return BalloonSB3VecEnv(
        config.hosts_per_scenario,
        config.scenarios,
        layout=config.layout,
        action_mode=config.action_mode,
        max_episode_steps=config.max_episode_steps,
        step_info=False,  # training reads no per-step counters
    )


def algo_class(algo: str):
    if algo == "recurrent-ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    import stable_baselines3 as sb3

    return {"ppo": sb3.PPO, "a2c": sb3.A2C, "sac": sb3.SAC, "td3": sb3.TD3}[algo]


def make_model(config: TrainConfig, venv, logdir: Path | None = None):
    """A fresh SB3 model for ``config`` on ``venv`` (hyperparameters resolved)."""
    hp = config.hyperparams
    cls = algo_class(config.algo)
    policy_kwargs: dict[str, Any] = {"net_arch": list(hp["net_arch"])}
    if "log_std_init" in hp:
        policy_kwargs["log_std_init"] = hp["log_std_init"]
    if "lstm_hidden_size" in hp:
        policy_kwargs["lstm_hidden_size"] = hp["lstm_hidden_size"]
    kw: dict[str, Any] = dict(
        learning_rate=hp["learning_rate"], gamma=hp["gamma"], seed=config.seed,
        verbose=config.verbose, device="cpu", policy_kwargs=policy_kwargs,
    )  # fmt: skip
    n_agents = venv.num_envs
    if config.algo in ON_POLICY:
        kw.update(n_steps=hp["n_steps"], gae_lambda=hp["gae_lambda"], ent_coef=hp["ent_coef"])
        if config.algo != "a2c":
            # A minibatch must not exceed the rollout (SB3 warns and truncates otherwise).
            kw.update(
                batch_size=min(hp["batch_size"], hp["n_steps"] * n_agents),
                n_epochs=hp["n_epochs"],
                clip_range=hp["clip_range"],
            )
        policy = "MlpLstmPolicy" if config.algo == "recurrent-ppo" else "MlpPolicy"
    else:
        kw.update(
            batch_size=hp["batch_size"], buffer_size=hp["buffer_size"],
            learning_starts=hp["learning_starts"], train_freq=hp["train_freq"],
            gradient_steps=hp["gradient_steps"], tau=hp["tau"],
        )  # fmt: skip
        if config.algo == "td3":
            from stable_baselines3.common.noise import NormalActionNoise

            dim = venv.action_space.shape[0]
            kw["action_noise"] = NormalActionNoise(np.zeros(dim), hp["action_noise"] * np.ones(dim))
        policy = "MlpPolicy"
    return cls(policy, venv, **kw)


def wrap_normalize(venv, config: TrainConfig, stats_path: Path | None = None):
    """VecNormalize over ``venv`` (fresh, or with the statistics saved at ``stats_path``)."""
    from stable_baselines3.common.vec_env import VecNormalize

    if stats_path is not None:
        vn = VecNormalize.load(str(stats_path), venv)
        vn.training = True
        return vn
    return VecNormalize(
        venv,
        norm_obs=config.normalize_obs,
        norm_reward=config.normalize_reward,
        clip_obs=10.0,
        clip_reward=10.0,
        gamma=config.hyperparams["gamma"],
    )


# -------------------------------------------------------------- checkpoints
CKPT_DIR = "checkpoints"
CKPT_INDEX = "checkpoint.json"


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            if bad is not None:
                raise ConfigError(f"checkpoint file {path} is corrupt (bad member {bad})")
            if "data" not in z.namelist():
                raise ConfigError(f"checkpoint file {path} is not an SB3 model (no 'data')")
    except (zipfile.BadZipFile, OSError) as e:
        raise ConfigError(f"checkpoint file {path} is missing or corrupt: {e}") from None


def read_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The last complete checkpoint of ``run_dir`` (validated), or a ConfigError."""
    index = run_dir / CKPT_DIR / CKPT_INDEX
    if not index.exists():
        raise ConfigError(f"cannot resume: no checkpoint in {run_dir} (missing {index})")
    try:
        ck = json.loads(index.read_text())
        env_steps = int(ck["env_steps"])
        files = {k: run_dir / CKPT_DIR / v for k, v in ck["files"].items()}
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot resume: corrupt checkpoint index {index}: {e}") from None
    for key, path in files.items():
        if not path.exists():
            raise ConfigError(f"cannot resume: checkpoint file {path} ({key}) is missing")
    _check_zip(files["model"])
    for key in ("vecnormalize", "replay_buffer"):
        if key in files:
            try:
                import pickle

                with open(files[key], "rb") as f:
                    pickle.load(f)
            except Exception as e:  # any unpickling failure means a corrupt file
                raise ConfigError(
                    f"cannot resume: checkpoint file {files[key]} is corrupt: {e}"
                ) from None
    return {"env_steps": env_steps, "files": files, "raw": ck}


def check_run_dir(config: TrainConfig) -> dict[str, Any] | None:
    """Validate the run directory against ``config`` before any training; returns the
    checkpoint to resume from (``--resume``) or None for a fresh run."""
    run_dir = config.run_dir
    cfg_path = run_dir / "config.json"
    if config.resume:
        if not cfg_path.exists():
            raise ConfigError(f"cannot resume: {cfg_path} does not exist")
        try:
            old = json.loads(cfg_path.read_text())["config"]
        except (ValueError, KeyError) as e:
            raise ConfigError(f"cannot resume: corrupt {cfg_path}: {e}") from None
        new = config.to_dict()
        diff = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
        if diff:
            raise ConfigError(
                f"cannot resume {run_dir}: config differs in {diff} "
                f"(was {[old.get(k) for k in diff]}, now {[new[k] for k in diff]})"
            )
        ck = read_checkpoint(run_dir)
        if ck["env_steps"] > config.total_timesteps:
            raise ConfigError(
                f"cannot resume: checkpoint at {ck['env_steps']} env steps is past "
                f"--total-timesteps {config.total_timesteps}"
            )
        return ck
    if run_dir.exists() and any(run_dir.iterdir()):
        if not config.overwrite:
            raise ConfigError(
                f"run directory {run_dir} exists: pass --resume to continue it or "
                "--overwrite to start again"
            )
    return None


def _atomic_save(save, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save(tmp)
    # SB3 appends .zip when missing; accept either.
    real = tmp if tmp.exists() else tmp.with_name(tmp.name + ".zip")
    os.replace(real, path)


def save_checkpoint(model, run_dir: Path, env_steps: int, eval_rows: int, keep: int = 2) -> None:
    from experiments.runinfo import write_json_atomic

    ck_dir = run_dir / CKPT_DIR
    ck_dir.mkdir(parents=True, exist_ok=True)
    tag = f"{env_steps:012d}"
    files = {"model": f"model_{tag}.zip"}
    _atomic_save(lambda p: model.save(str(p)), ck_dir / files["model"])
    vn = model.get_vec_normalize_env()
    if vn is not None:
        files["vecnormalize"] = f"vecnormalize_{tag}.pkl"
        _atomic_save(lambda p: vn.save(str(p)), ck_dir / files["vecnormalize"])
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        files["replay_buffer"] = f"replay_buffer_{tag}.pkl"
        _atomic_save(lambda p: model.save_replay_buffer(str(p)), ck_dir / files["replay_buffer"])
    write_json_atomic(
        ck_dir / CKPT_INDEX,
        {"env_steps": env_steps, "sb3_timesteps": int(model.num_timesteps),
         "eval_rows": eval_rows, "files": files},
    )  # fmt: skip
    # Keep the newest ``keep`` checkpoints.
    tags = sorted({p.stem.rsplit("_", 1)[-1] for p in ck_dir.glob("model_*.zip")})
    for old in tags[:-keep]:
        for p in ck_dir.glob(f"*_{old}.*"):
            p.unlink(missing_ok=True)


# ---------------------------------------------------------------- evaluation
EVAL_FIELDS = ("env_steps", "wall_s", "scenario", "seed", "return", "length")


def evaluation_rows(policy, config: TrainConfig, env_steps: int, wall_s: float) -> list[dict]:
    from agents.sb3_policy import run_episodes

    rows = []
    seeds = [config.eval_seed + k for k in range(config.eval_episodes)]
    for sc in config.scenarios:
        res = run_episodes(policy, sc, seeds, config.action_mode, config.max_episode_steps)
        for s, r, n in zip(seeds, res["return"], res["length"], strict=True):
            rows.append({"env_steps": env_steps, "wall_s": round(wall_s, 3), "scenario": sc,
                         "seed": s, "return": float(r), "length": int(n)})  # fmt: skip
    return rows


def _write_eval_csv(path: Path, rows: list[dict]) -> None:
    from experiments.runinfo import write_text_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EVAL_FIELDS)
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def read_eval_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _make_callback(config: TrainConfig, run_dir: Path, agents_per_host: float,
                   eval_rows: list[dict], t0: float, start_env_steps: int):  # fmt: skip
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.sb3_policy import policy_from_model

    class TrainCallback(BaseCallback):
        """Evaluates on held-out seeds and checkpoints, both every K env steps."""

        def __init__(self) -> None:
            super().__init__()
            self.last_eval = start_env_steps
            self.last_ckpt = start_env_steps
            self.best = -math.inf
            prev = [r for r in eval_rows if r["env_steps"] is not None]
            if prev:
                by_step: dict[int, list[float]] = {}
                for r in prev:
                    by_step.setdefault(int(r["env_steps"]), []).append(float(r["return"]))
                self.best = max(float(np.mean(v)) for v in by_step.values())

        def env_steps(self) -> int:
            return int(round(self.num_timesteps / agents_per_host))

        def _evaluate(self, steps: int) -> None:
            policy = policy_from_model(
                self.model, config.layout, config.action_mode, self.model.get_vec_normalize_env()
            )
            rows = evaluation_rows(policy, config, steps, time.time() - t0)
            eval_rows.extend(rows)
            _write_eval_csv(run_dir / "evaluations.csv", eval_rows)
            mean = float(np.mean([r["return"] for r in rows]))
            self.logger.record("eval/mean_return", mean)
            for sc in config.scenarios:
                self.logger.record(
                    f"eval/{sc}", float(np.mean([r["return"] for r in rows if r["scenario"] == sc]))
                )
            if mean > self.best:
                self.best = mean
                _atomic_save(lambda p: self.model.save(str(p)), run_dir / "best_model.zip")
                vn = self.model.get_vec_normalize_env()
                if vn is not None:
                    _atomic_save(lambda p: vn.save(str(p)), run_dir / "best_vecnormalize.pkl")

        def _on_step(self) -> bool:
            steps = self.env_steps()
            if config.eval_freq and steps - self.last_eval >= config.eval_freq:
                self.last_eval = steps - steps % config.eval_freq
                self._evaluate(steps)
            if steps - self.last_ckpt >= config.checkpoint_freq:
                self.last_ckpt = steps - steps % config.checkpoint_freq
                save_checkpoint(self.model, run_dir, steps, len(eval_rows))
            return True

    return TrainCallback()


# --------------------------------------------------------------------- train
@dataclass
class TrainResult:
    run_dir: Path
    env_steps: int
    wall_s: float
    final_eval: dict[str, float]


def train(config: TrainConfig) -> TrainResult:
    """Train one run (see the module docstring); validation errors come first."""
    import torch
    from stable_baselines3.common.logger import Logger, make_output_format

    from agents.sb3_policy import policy_from_model
    from experiments.runinfo import run_metadata, write_json_atomic

    ck = check_run_dir(config)  # ConfigError before any training time
    run_dir = config.run_dir
    if ck is None and run_dir.exists():
        shutil.rmtree(run_dir)  # --overwrite (check_run_dir refused otherwise)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.torch_threads)

    venv = make_train_env(config)  # FileNotFoundError here for missing trace data
    cls = algo_class(config.algo)
    if ck is None:
        write_json_atomic(
            run_dir / "config.json",
            run_metadata(config=config.to_dict(), seed=config.seed,
                         hyperparams=config.hyperparams, scenarios=list(config.scenarios),
                         env_steps_unit="host ticks summed over hosts",
                         agents_per_host=venv.agents_per_host),
        )  # fmt: skip
        env = wrap_normalize(venv, config)
        model = make_model(config, env)
        start = 0
        eval_rows: list[dict] = []
    else:
        files = ck["files"]
        env = wrap_normalize(venv, config, files.get("vecnormalize"))
        model = cls.load(str(files["model"]), env=env, device="cpu")
        if "replay_buffer" in files:
            model.load_replay_buffer(str(files["replay_buffer"]))
        start = ck["env_steps"]
        # A resumed run must not replay the episodes it saw: shift the seed.
        model.set_random_seed(config.seed + 7919 * (start + 1))
        eval_rows = read_eval_csv(run_dir / "evaluations.csv")[: ck["raw"].get("eval_rows", 0)]
        for r in eval_rows:
            r["env_steps"], r["return"] = int(r["env_steps"]), float(r["return"])
        _write_eval_csv(run_dir / "evaluations.csv", eval_rows)

    seg = run_dir / "logs" / f"segment-{start:012d}"
    formats = [make_output_format("csv", str(seg))]
    if config.tensorboard:
        formats.append(make_output_format("tensorboard", str(run_dir / "logs")))
    if config.verbose:
        formats.append(make_output_format("stdout", str(seg)))
    model.set_logger(Logger(str(seg), formats))

    t0 = time.time()
    remaining = config.total_timesteps - start
    callback = _make_callback(config, run_dir, venv.agents_per_host, eval_rows, t0, start)
    if remaining > 0:
        model.learn(
            total_timesteps=math.ceil(remaining * venv.agents_per_host),
            callback=callback,
            reset_num_timesteps=ck is None,
            progress_bar=config.progress_bar,
        )
    wall = time.time() - t0
    env_steps = callback.env_steps() if remaining > 0 else start
    _atomic_save(lambda p: model.save(str(p)), run_dir / "model.zip")
    vn = model.get_vec_normalize_env()
    if vn is not None:
        _atomic_save(lambda p: vn.save(str(p)), run_dir / "vecnormalize.pkl")
    policy = policy_from_model(model, config.layout, config.action_mode, vn)
    final = evaluation_rows(policy, config, env_steps, wall)
    final_eval = {
        sc: float(np.mean([r["return"] for r in final if r["scenario"] == sc]))
        for sc in config.scenarios
    }
    write_json_atomic(
        run_dir / "result.json",
        {"env_steps": env_steps, "sb3_timesteps": int(model.num_timesteps),
         "wall_s_this_segment": round(wall, 2), "resumed_from": start if ck else None,
         "final_eval_mean_return": final_eval,
         "eval_seeds": [config.eval_seed + k for k in range(config.eval_episodes)]},
    )  # fmt: skip
    return TrainResult(run_dir, env_steps, wall, final_eval)
