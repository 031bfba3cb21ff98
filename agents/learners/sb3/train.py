"""Train Stable-Baselines3 agents on ReclaimGym: config, checkpoints, resume.

One run = one algorithm, one set of training scenarios, one seed, in
``<runs_dir>/<name>/<seed>/``; :mod:`agents.runs` describes (and owns) the files of that
directory, whose ``config.json`` records ``"method": "sb3"`` (:data:`METHOD`) for the
loader registry of :mod:`agents.learners`. ``--resume`` continues from the newest intact
checkpoint (a damaged one is skipped with a warning); resuming a run that has finished
its budget does nothing.
Evaluations fall on the first step at or past each multiple of ``eval_freq`` env steps,
whether or not the run was resumed, so learning curves of resumed and uninterrupted runs
line up. Checkpoints fall on the first rollout boundary (after a training update, before
the next rollout) at or past each multiple of ``checkpoint_freq``, and hold everything
the rest of the run depends on: the model and optimizer, VecNormalize's statistics and
running returns, the replay buffer, every host's simulator state and the random
generators. A run killed at any point and resumed therefore gives the same models and
evaluations, bit for bit, as one never stopped.

Time is counted in **env steps** (host ticks summed over the hosts): with the per-VM
layout SB3 counts one step per VM, so its ``num_timesteps`` is ``V`` times larger. A
fine-tuned imitation run (``init_from``, :mod:`agents.learners.sb3.finetune`) steps the
imitation run's env, one decision (``decision_period_s``) per step: its env steps are
decisions summed over the hosts.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import pickle
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from agents.learners.sb3 import METHOD
from agents.learners.sb3.algos import (
    ALGOS,
    CONTINUOUS_ONLY,
    LAYOUTS,
    ON_POLICY,
    REWARDS,
    algo_class,
)
from agents.learners.sb3.finetune import (
    BC_DECAY,
    CRITIC_WARMUP_ROLLOUTS,
    INIT_LOG_STD,
    ImitationRun,
    default_bc_coef,
    read_imitation_run,
)
from agents.policies import check_residual
from agents.provenance import run_metadata
from agents.residual import RESIDUAL_SCALE
from agents.runs import Checkpoint, ConfigError, RunDir, check_same_config
from envs.env_batch import ACTION_MODES, ALL_ACTION_MODES, make_config
from envs.files import atomic_save
from envs.scenarios import (
    DEFAULT_SCENARIO_V1,
    get_scenario,
    load_scenario_module,
    resolve_scenarios,
)
from envs.sim.checks import check_int, check_number

log = logging.getLogger("reclaim.train")

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
_SAC_DEFAULTS: dict[str, Any] = dict(
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
    "sac": _SAC_DEFAULTS,
    # SAC's, with TD3's own step size and its Gaussian exploration noise.
    "td3": {**_SAC_DEFAULTS, "learning_rate": 1e-3, "action_noise": 0.1},
}
# Hyperparameters that an algorithm does not take (an explicit value is an error).
_ACCEPTS = {a: set(d) for a, d in ALGO_DEFAULTS.items()}
_HYPER = (
    "n_envs", "n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda",
    "ent_coef", "clip_range", "net_arch", "log_std_init", "lstm_hidden_size", "buffer_size",
    "learning_starts", "train_freq", "gradient_steps", "tau", "action_noise",
)  # fmt: skip
# Config fields that may change when a run is resumed.
# runs_dir is where the run lives, not what it is: a moved run directory resumes.
# scenario_module too: it says where the scenario file is, not what the scenario is.
RESUMABLE_CHANGES = ("total_timesteps", "resume", "overwrite", "progress_bar", "verbose",
                     "torch_threads", "tensorboard", "runs_dir", "scenario_module")  # fmt: skip

# Fields added after runs were published, with the default that means "as before": a
# config.json without them reads as the default (to_dict, check_same_config).
LATER_FIELDS: dict[str, Any] = {
    "seed_group_size": 1, "reward": "host", "init_from": None, "critic_warmup_rollouts": None,
    "bc_coef": None, "bc_decay": None, "obs_version": None, "decision_period_s": None,
    "hold_deadband": None,
}  # fmt: skip

ENV_OPTION_FIELDS = ("obs_version", "decision_period_s", "hold_deadband")
"""TrainConfig fields that are env options (the agent interface; docs/env.md)."""

DEFAULT_IN_HELP = tyro.conf.arg(help_behavior_hint="")
"""tyro marker of a field whose help text states its default itself (a None that stands
for a value chosen later): tyro then does not add a second "(default: None)"."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (``reclaim train --help`` shows each field)."""

    algo: str = "ppo"
    """algorithm: ppo, a2c, sac, td3 or recurrent-ppo"""
    scenario: str = DEFAULT_SCENARIO_V1
    """scenario id, comma-separated ids, or 'split:train' / 'split:test' for a whole split
    (of the v1 scenarios; 'split:train@v0' for the v0 ones)"""
    scenario_module: str | None = None
    """a Python file that registers more scenarios (envs.scenarios.demand_scenario /
    trace_scenario), loaded before the scenario ids are checked; stored in config.json
    (absolute), so --resume finds it without the flag"""
    seed: int = 0
    """seed of the networks, the exploration and the training episodes"""
    total_timesteps: int = 200_000
    """training budget in env steps (host ticks summed over the hosts)"""
    name: Annotated[str | None, DEFAULT_IN_HELP] = None
    """run name (default: '<algo>-<scenario>'); the run lives in <runs-dir>/<name>/<seed>/"""
    runs_dir: str = "runs"
    """where run directories are created"""
    layout: str = "per-vm"
    """'per-vm': one shared network sets each VM's balloon from its own, host-mean, host-max
    and host features (any VM count); 'flat': one network sees all VMs (one VM count)"""
    action_mode: str = "absolute"
    """absolute, delta or discrete (SAC and TD3 need absolute or delta); absolute-hold
    with --init-from of a run in that mode"""
    residual: str | None = None
    """a heuristic (esx, static, mom, ...) whose absolute balloon actions the agent learns
    to correct instead of setting targets itself (needs --action-mode absolute)"""
    residual_scale: Annotated[float | None, DEFAULT_IN_HELP] = None
    """weight of the residual correction, in (0, 2] (default agents.residual.RESIDUAL_SCALE)"""
    max_episode_steps: Annotated[int | None, DEFAULT_IN_HELP] = None
    """episode length override (default: each scenario's)"""
    normalize_obs: bool = True
    """normalize observations with running statistics (VecNormalize, saved with the model)"""
    normalize_reward: bool = True
    """scale rewards by a running estimate of the return's std (VecNormalize)"""
    seed_group_size: int = 1
    """on-policy variance reduction (1: off): the hosts come in groups of this many that
    replay one workload seed, restarting together, and each step's advantage is the
    return minus its group's mean return (an input-dependent baseline: Mao et al.,
    ICLR 2019; Decima, SIGCOMM 2019); the hosts per scenario must be a multiple of it"""
    reward: str = "host"
    """'host': every VM's agent is paid the host's reward; 'per-vm' (layout per-vm):
    each VM's agent its own (info['vm_reward']: its stall, its guest OOM kills, the
    host OOM), for per-VM credit assignment"""
    n_envs: Annotated[int | None, DEFAULT_IN_HELP] = None
    """hosts stepped together, split evenly over the scenarios, at least one each
    (default: 16 for ppo/a2c/recurrent-ppo, 4 for sac/td3)"""
    n_steps: Annotated[int | None, DEFAULT_IN_HELP] = None
    """on-policy: steps per host per rollout (default ppo 64, a2c 8)"""
    batch_size: Annotated[int | None, DEFAULT_IN_HELP] = None
    """minibatch size in transitions (default ppo 512, sac/td3 256)"""
    n_epochs: Annotated[int | None, DEFAULT_IN_HELP] = None
    """PPO epochs per rollout (default 10)"""
    learning_rate: Annotated[float | None, DEFAULT_IN_HELP] = None
    """Adam/RMSprop step size (default 3e-4; a2c 7e-4, td3 1e-3)"""
    gamma: Annotated[float | None, DEFAULT_IN_HELP] = None
    """discount factor (default 0.99: a horizon of ~100 ticks)"""
    gae_lambda: Annotated[float | None, DEFAULT_IN_HELP] = None
    """GAE lambda (default 0.95)"""
    ent_coef: Annotated[float | None, DEFAULT_IN_HELP] = None
    """entropy bonus (default 0)"""
    clip_range: Annotated[float | None, DEFAULT_IN_HELP] = None
    """PPO clip range (default 0.2)"""
    net_arch: Annotated[tuple[int, ...] | None, DEFAULT_IN_HELP] = None
    """hidden layer sizes of the policy and value networks (default 64,64; sac/td3 128,128)"""
    log_std_init: Annotated[float | None, DEFAULT_IN_HELP] = None
    """initial log std of Gaussian on-policy actions (default -0.5; --init-from: log(0.1))"""
    lstm_hidden_size: Annotated[int | None, DEFAULT_IN_HELP] = None
    """recurrent-ppo LSTM units (default 64)"""
    buffer_size: Annotated[int | None, DEFAULT_IN_HELP] = None
    """sac/td3 replay buffer size in transitions (default 200000)"""
    learning_starts: Annotated[int | None, DEFAULT_IN_HELP] = None
    """sac/td3 transitions collected before learning (default 2000)"""
    train_freq: Annotated[int | None, DEFAULT_IN_HELP] = None
    """sac/td3 env steps between updates (default 1)"""
    gradient_steps: Annotated[int | None, DEFAULT_IN_HELP] = None
    """sac/td3 gradient steps per update (default 1)"""
    tau: Annotated[float | None, DEFAULT_IN_HELP] = None
    """sac/td3 target network update rate (default 0.005)"""
    action_noise: Annotated[float | None, DEFAULT_IN_HELP] = None
    """td3 Gaussian exploration noise std (default 0.1)"""
    obs_version: Annotated[int | None, DEFAULT_IN_HELP] = None
    """observation version of the env: 2 is Balloon-v2's, every gauge a heuristic reads
    (default 1, Balloon-v1's; with --init-from, the run's)"""
    decision_period_s: Annotated[float | None, DEFAULT_IN_HELP] = None
    """seconds per env step, a positive multiple of the tick: the action is held and the
    rewards summed (default one tick; with --init-from, the run's)"""
    hold_deadband: Annotated[float | None, DEFAULT_IN_HELP] = None
    """the env's hold dead-band, a fraction of max balloon in [0, 1): a target closer than
    it to the balloon keeps the balloon (default 0, off; with --init-from, the run's)"""
    init_from: str | None = None
    """a finished run directory of reclaim imitate to fine-tune (ppo, per-vm): PPO starts
    from its student's actor, its frozen observation statistics and its env options
    (observation version, decision period, dead-band; --action-mode must be the run's);
    one env step is then one decision of a host (docs/training.md, "Fine-tuning an
    imitation run")"""
    critic_warmup_rollouts: Annotated[int | None, DEFAULT_IN_HELP] = None
    """--init-from: the first rollouts train only the critic, the actor frozen (default 4;
    0: none)"""
    bc_coef: Annotated[float | None, DEFAULT_IN_HELP] = None
    """--init-from: first weight of a behaviour-cloning term, the MSE between PPO's action
    mean and the imitation policy's (default 1/(2σ²) of the initial std σ: a KL penalty of
    weight 1 to the imitation policy; 50 at σ = 0.1; 0: none)"""
    bc_decay: Annotated[float | None, DEFAULT_IN_HELP] = None
    """--init-from: the term's weight is bc_coef * bc_decay^j at the j-th policy update
    after the warm-up, in [0, 1] (default 0.95, DAPG's decay)"""
    eval_freq: int = 20_000
    """env steps between evaluations on held-out seeds (0: none)"""
    eval_episodes: int = 4
    """episodes per training scenario in each evaluation"""
    eval_seed: int = 1_000_000
    """first seed of the evaluation episodes (training episodes use other seeds)"""
    checkpoint_freq: int = 20_000
    """env steps between checkpoints (a killed run loses at most this much, plus a rollout)"""
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
        self._load_scenario_module()  # before any scenario id is checked
        if self.algo not in ALGOS:
            raise ConfigError(f"unknown algorithm {self.algo!r}; choose one of {list(ALGOS)}")
        scenarios = self.scenarios  # ConfigError for a bad spec or an unknown id
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {list(LAYOUTS)}, got {self.layout!r}")
        modes = ALL_ACTION_MODES if self.init_from is not None else ACTION_MODES
        if self.action_mode not in modes:
            raise ConfigError(f"action_mode must be one of {list(modes)}, got {self.action_mode!r}")
        check_int("seed_group_size", self.seed_group_size, 1, error=ConfigError)
        if self.seed_group_size > 1:
            self._check_seed_groups(scenarios)
        if self.reward not in REWARDS:
            raise ConfigError(f"reward must be one of {list(REWARDS)}, got {self.reward!r}")
        if self.reward == "per-vm" and self.layout != "per-vm":
            raise ConfigError("--reward per-vm needs --layout per-vm (one agent per VM)")
        if self.residual_scale is not None and self.residual is None:
            raise ConfigError("residual_scale needs --residual")
        try:
            check_residual(self.residual, self.residual_weight, self.action_mode)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.algo in CONTINUOUS_ONLY and self.action_mode == "discrete":
            raise ConfigError(
                f"{self.algo} needs continuous actions: use --action-mode absolute or delta, "
                "not discrete"
            )
        if self.layout == "flat":
            counts = sorted({get_scenario(s).num_vms for s in scenarios})
            if len(counts) > 1:
                raise ConfigError(
                    f"layout 'flat' needs one VM count, the scenarios have {counts}; "
                    "use --layout per-vm"
                )
        for name in ("seed", "eval_seed"):
            check_int(name, getattr(self, name), 0, error=ConfigError)
        positive = ("total_timesteps", "eval_episodes", "checkpoint_freq", "torch_threads")
        for name in positive:
            check_int(name, getattr(self, name), 1, error=ConfigError)
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
        self._check_init_from()
        if self.init_from is None and self.env_options:
            for sc in scenarios:  # the env checks each option (ValueError naming it)
                try:
                    make_config(sc, max_episode_steps=self.max_episode_steps,
                                action_mode=self.action_mode, **self.env_options)  # fmt: skip
                except ValueError as e:
                    raise ConfigError(f"scenario {sc}: {e}") from None
        hp = self.hyperparams
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "buffer_size",
                     "train_freq", "gradient_steps", "lstm_hidden_size"):  # fmt: skip
            if hp.get(name) is not None:
                check_int(name, hp[name], 1, error=ConfigError)
        if any(n < 1 for n in hp["net_arch"]):
            raise ConfigError(f"net_arch sizes must be >= 1, got {hp['net_arch']}")
        _check_ranges(hp)

    def _check_seed_groups(self, scenarios: tuple[str, ...]) -> None:
        k = self.seed_group_size
        if self.algo not in ON_POLICY:
            raise ConfigError(
                f"seed_group_size applies to the on-policy algorithms {list(ON_POLICY)} "
                f"(their advantages), not {self.algo}"
            )
        n_envs = ALGO_DEFAULTS[self.algo]["n_envs"] if self.n_envs is None else self.n_envs
        per = max(1, n_envs // len(scenarios))
        if n_envs % k or per % k:
            raise ConfigError(
                f"n_envs ({n_envs}) must be a multiple of seed_group_size ({k}) for each of "
                f"the {len(scenarios)} scenario(s): {per} host(s) per scenario"
            )

    def _check_init_from(self) -> None:
        """The fine-tuning fields: only with --init-from, in range, and a run that PPO
        with this config can start from (ConfigError naming what differs)."""
        E = ConfigError
        tune = ("critic_warmup_rollouts", "bc_coef", "bc_decay")
        if self.init_from is None:
            given = [f for f in tune if getattr(self, f) is not None]
            if given:
                raise E(f"{given} need --init-from")
            return
        if self.critic_warmup_rollouts is not None:
            check_int("critic_warmup_rollouts", self.critic_warmup_rollouts, 0, error=E)
        if self.bc_coef is not None:
            check_number("bc_coef", self.bc_coef, 0.0, error=E)
        if self.bc_decay is not None:
            check_number("bc_decay", self.bc_decay, 0.0, 1.0, error=E)
        need = {"algo": "ppo", "layout": "per-vm", "residual": None, "normalize_obs": True}
        for name, want in need.items():
            if getattr(self, name) != want:
                got = getattr(self, name)
                raise E(f"--init-from needs {name}={want!r} (the student is PPO's per-VM "
                        f"actor on normalized observations), got {got!r}")  # fmt: skip
        # Stored absolute, so that a resume from another directory finds the same run.
        object.__setattr__(self, "init_from", str(Path(self.init_from).expanduser().resolve()))
        im = self.imitation  # ConfigError for anything but a finished, intact imitation run
        for k in ENV_OPTION_FIELDS:
            mine, run = getattr(self, k), im.env_options.get(k)
            if mine is not None and mine != run:
                raise E(f"--init-from {self.init_from} has {k}={run!r}; this config "
                        f"{mine!r} (leave it out to take the run's)")  # fmt: skip
        mode = im.env_options["action_mode"]
        if self.action_mode != mode:
            raise E(f"--init-from {self.init_from} acts in action mode {mode!r}: pass "
                    f"--action-mode {mode} (this config has {self.action_mode!r})")  # fmt: skip
        arch = tuple(im.config["net_arch"])
        if self.net_arch is not None and tuple(self.net_arch) != arch:
            raise E(f"--init-from {self.init_from} has net_arch {list(arch)}, "
                    f"this config {list(self.net_arch)}")  # fmt: skip
        for sc in self.scenarios:
            try:
                make_config(sc, max_episode_steps=self.max_episode_steps,
                            action_mode=self.action_mode, **self.env_options)  # fmt: skip
            except ValueError as e:
                raise E(f"scenario {sc} with the env options of --init-from: {e}") from None

    @functools.cached_property
    def imitation(self) -> ImitationRun | None:
        """The verified imitation run of ``init_from`` (None without)."""
        return None if self.init_from is None else read_imitation_run(self.init_from)

    @property
    def env_options(self) -> dict[str, Any]:
        """Env options besides the action mode (``obs_version``, ``decision_period_s``,
        ``hold_deadband``): the imitation run's with --init-from, else those given (none:
        Balloon-v1's agent interface, observation v1, one tick per step)."""
        own = {k: getattr(self, k) for k in ENV_OPTION_FIELDS if getattr(self, k) is not None}
        if self.imitation is None:
            return own
        return {k: v for k, v in self.imitation.env_options.items() if k != "action_mode"}

    @property
    def finetune(self) -> dict[str, Any] | None:
        """The resolved fine-tuning settings (None without --init-from)."""
        if self.init_from is None:
            return None
        pick = lambda v, d: d if v is None else v  # noqa: E731
        return {
            "critic_warmup_rollouts": pick(self.critic_warmup_rollouts, CRITIC_WARMUP_ROLLOUTS),
            "bc_coef": float(pick(self.bc_coef, default_bc_coef(self.hyperparams["log_std_init"]))),
            "bc_decay": float(pick(self.bc_decay, BC_DECAY)),
        }

    def _load_scenario_module(self) -> None:
        """Load ``scenario_module`` (``--resume`` without it: the run's saved one) and
        keep its absolute path, so that every process that rebuilds this config (compare's
        jobs, a resume from another directory) loads the same file."""
        path = self.scenario_module
        if path is None and self.resume:
            try:
                path = self.run.read_config()["config"].get("scenario_module")
            except ConfigError:
                path = None  # no run to resume: check_run_dir says so later
        if path is None:
            return
        try:
            load_scenario_module(path)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        object.__setattr__(self, "scenario_module", str(Path(path).expanduser().resolve()))

    # ------------------------------------------------------------- derived
    @property
    def scenarios(self) -> tuple[str, ...]:
        """The ids ``scenario`` names (``envs.scenarios.resolve_scenarios``)."""
        try:
            return resolve_scenarios(self.scenario)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    @property
    def run_name(self) -> str:
        return self.name or f"{self.algo}-{self.scenario.replace(':', '-').replace(',', '+')}"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.run_name / str(self.seed)

    @property
    def run(self) -> RunDir:
        return RunDir(self.run_dir)

    @property
    def hyperparams(self) -> dict[str, Any]:
        """The algorithm's hyperparameters: given values over ALGO_DEFAULTS."""
        out = dict(ALGO_DEFAULTS[self.algo])
        out.update({h: getattr(self, h) for h in _HYPER if getattr(self, h) is not None})
        if self.action_mode == "discrete":
            out.pop("log_std_init", None)
        if self.imitation is not None:  # the student's network, a small initial std
            if self.net_arch is None:
                out["net_arch"] = tuple(self.imitation.config["net_arch"])
            if self.log_std_init is None:
                out["log_std_init"] = INIT_LOG_STD
        return out

    @property
    def residual_weight(self) -> float:
        return RESIDUAL_SCALE if self.residual_scale is None else self.residual_scale

    @property
    def residual_spec(self) -> tuple[str, float] | None:
        """(heuristic, scale) of a residual run (``policy.policy_from_model``)."""
        return None if self.residual is None else (self.residual, self.residual_weight)

    @property
    def env_obs_version(self) -> int:
        """The observation version the run's env has (--obs-version, the --init-from
        run's, or 1)."""
        return int(self.env_options.get("obs_version", 1))

    @property
    def hosts_per_scenario(self) -> int:
        return max(1, self.hyperparams["n_envs"] // len(self.scenarios))

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values; a field of :data:`LATER_FIELDS` at its default is left
        out, so that a run that does not use it has the config.json of a run made before
        it existed."""
        d = dataclasses.asdict(self)
        d["net_arch"] = list(d["net_arch"]) if d["net_arch"] is not None else None
        for name, default in LATER_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d


# (lo, lo_open, hi, hi_open) of each float hyperparameter; None: unbounded.
_RANGES: dict[str, tuple[float, bool, float | None, bool]] = {
    "learning_rate": (0.0, True, None, False),
    "gamma": (0.0, True, 1.0, False),
    "gae_lambda": (0.0, False, 1.0, False),
    "ent_coef": (0.0, False, None, False),
    "clip_range": (0.0, True, None, False),
    "tau": (0.0, True, 1.0, False),
    "action_noise": (0.0, False, None, False),
    "learning_starts": (0.0, False, None, False),
}


def _check_ranges(hp: dict[str, Any]) -> None:
    """One ConfigError per field out of its range (NaN is out of every range)."""
    for name, (lo, lo_open, hi, hi_open) in _RANGES.items():
        if name not in hp:
            continue
        v = hp[name]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        ok = ok and (v > lo if lo_open else v >= lo)
        ok = ok and (hi is None or (v < hi if hi_open else v <= hi))
        if not ok:
            left = "(" if lo_open else "["
            right = "inf)" if hi is None else (f"{hi:g})" if hi_open else f"{hi:g}]")
            raise ConfigError(f"{name} must be in {left}{lo:g}, {right}, got {v!r}")


# ----------------------------------------------------------------- building
def make_train_env(config: TrainConfig):
    from agents.learners.sb3.vec_env import BalloonSB3VecEnv

    return BalloonSB3VecEnv(
        config.hosts_per_scenario,
        config.scenarios,
        layout=config.layout,
        action_mode=config.action_mode,
        max_episode_steps=config.max_episode_steps,
        step_info=False,  # training reads no per-step counters
        residual=config.residual,
        residual_scale=config.residual_weight,
        seed_group_size=config.seed_group_size,
        reward=config.reward,
        **config.env_options,
    )


def make_model(config: TrainConfig, venv, logdir: Path | None = None):
    """A fresh SB3 model for ``config`` on ``venv`` (hyperparameters resolved)."""
    hp = config.hyperparams
    cls = algo_class(config.algo)
    extra: dict[str, Any] = {}
    if config.finetune is not None:
        from agents.learners.sb3.finetune_ppo import FineTunePPO

        cls, extra = FineTunePPO, dict(config.finetune)
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
    return cls(policy, venv, **kw, **extra)


def wrap_normalize(venv, config: TrainConfig, stats_path: Path | None = None,
                   student: Any = None):  # fmt: skip
    """VecNormalize over ``venv`` (fresh, or with the statistics saved at ``stats_path``);
    a fresh one over an imitation ``student`` takes its frozen observation statistics."""
    from stable_baselines3.common.vec_env import VecNormalize

    if stats_path is not None:
        vn = VecNormalize.load(str(stats_path), venv)
        vn.training = True
        return vn
    vn = VecNormalize(
        venv,
        norm_obs=config.normalize_obs,
        norm_reward=config.normalize_reward,
        clip_obs=10.0,
        clip_reward=10.0,
        gamma=config.hyperparams["gamma"],
    )
    if student is not None:
        from agents.learners.sb3.finetune_ppo import frozen_obs_rms

        vn.obs_rms = frozen_obs_rms(student)
    return vn


# -------------------------------------------------------------- checkpoints
def _check_same_config(config: TrainConfig, run: RunDir) -> None:
    """ConfigError unless ``run``'s config.json is ``config`` (up to RESUMABLE_CHANGES)."""
    check_same_config(run, config.to_dict(), RESUMABLE_CHANGES, defaults=LATER_FIELDS)


def _check_same_imitation(config: TrainConfig, run: RunDir) -> None:
    """ConfigError unless the imitation run of ``--init-from`` is the one this run started
    from (its student's and its config's sha256, recorded in config.json)."""
    if config.imitation is None:
        return
    was = run.read_config().get("init_from") or {}
    now = config.imitation.provenance()
    diff = [k for k in ("student_sha256", "config_sha256") if was.get(k) != now[k]]
    if diff:
        raise ConfigError(
            f"cannot resume {run.path}: the imitation run {config.init_from} changed since "
            f"the run started ({', '.join(diff)} differ)"
        )


def check_run_dir(config: TrainConfig) -> Checkpoint | None:
    """Validate the run directory against ``config`` before any training; returns the
    checkpoint to resume from (``--resume``) or None for a fresh run."""
    run = config.run
    if config.resume:
        _check_same_config(config, run)
        _check_same_imitation(config, run)
        ck = run.latest_checkpoint()
        if ck.env_steps > config.total_timesteps:
            raise ConfigError(
                f"cannot resume: checkpoint at {ck.env_steps} env steps is past "
                f"--total-timesteps {config.total_timesteps}"
            )
        return ck
    if run.path.exists() and any(run.path.iterdir()):
        if not config.overwrite:
            raise ConfigError(
                f"run directory {run.path} exists: pass --resume to continue it or "
                "--overwrite to start again"
            )
    return None


def save_checkpoint(model, run_dir: Path, env_steps: int, eval_rows: int, keep: int = 2) -> None:
    """Save model, VecNormalize and replay buffer, then their index (with checksums)."""
    run = RunDir(run_dir)
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    files = {"model": run.checkpoint_file("model", env_steps)}
    atomic_save(files["model"], lambda p: model.save(str(p)))
    vn = model.get_vec_normalize_env()
    if vn is not None:
        files["vecnormalize"] = run.checkpoint_file("vecnormalize", env_steps)
        atomic_save(files["vecnormalize"], lambda p: vn.save(str(p)))
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        files["replay_buffer"] = run.checkpoint_file("replay_buffer", env_steps)
        atomic_save(files["replay_buffer"], lambda p: model.save_replay_buffer(str(p)))
    files["train_state"] = run.checkpoint_file("train_state", env_steps)
    state = train_state(model)
    atomic_save(files["train_state"], lambda p: p.write_bytes(pickle.dumps(state)))
    run.write_checkpoint_index(env_steps, int(model.num_timesteps), eval_rows, files)
    run.prune_checkpoints(keep)


def _base_venv(model):
    """The BalloonSB3VecEnv under the model's VecNormalize (if any)."""
    env = model.get_env()
    while hasattr(env, "venv"):
        env = env.venv
    return env


def train_state(model) -> dict[str, Any]:
    """What model.save and VecNormalize.save leave out but the next steps depend on: the
    env's simulator and episode state, VecNormalize's running returns, and the random
    generators (torch samples actions, numpy shuffles PPO's minibatches). Restored by
    :func:`restore_train_state`, a resumed run continues bit for bit as if never stopped."""
    import random

    import torch

    vn = model.get_vec_normalize_env()
    return {
        "env": _base_venv(model).get_state(),
        "vecnormalize_returns": None if vn is None else vn.returns.copy(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),  # noqa: NPY002 - SB3 draws from it
        "python_rng": random.getstate(),
        "action_space_rng": model.action_space.np_random.bit_generator.state,
    }


def restore_train_state(model, state: dict[str, Any]) -> None:
    import random

    import torch

    _base_venv(model).set_state(state["env"])
    vn = model.get_vec_normalize_env()
    if vn is not None and state["vecnormalize_returns"] is not None:
        vn.returns = state["vecnormalize_returns"].copy()
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])  # noqa: NPY002 - SB3 draws from it
    random.setstate(state["python_rng"])
    model.action_space.np_random.bit_generator.state = state["action_space_rng"]


# ---------------------------------------------------------------- evaluation


def evaluation_rows(policy, config: TrainConfig, env_steps: int, wall_s: float) -> list[dict]:
    """One row per training scenario and held-out seed (``eval_seed`` + k): the episode's
    return and length on the run's env options."""
    from agents.learners.sb3.policy import run_episodes
    from agents.policies import over_env

    rows = []
    seeds = [config.eval_seed + k for k in range(config.eval_episodes)]
    for sc in config.scenarios:
        res = run_episodes(policy, sc, seeds, config.action_mode, config.max_episode_steps,
                           for_env=over_env, **config.env_options)  # fmt: skip
        for s, r, n in zip(seeds, res["return"], res["length"], strict=True):
            rows.append({"env_steps": env_steps, "wall_s": round(wall_s, 3), "scenario": sc,
                         "seed": s, "return": float(r), "length": int(n)})  # fmt: skip
    return rows


def _make_callback(config: TrainConfig, run: RunDir, agents_per_host: float,
                   eval_rows: list[dict], t0: float, start_env_steps: int):  # fmt: skip
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.learners.sb3.policy import policy_from_model

    def floor(steps: int, freq: int) -> int:
        return steps - steps % freq if freq else steps

    class TrainCallback(BaseCallback):
        """Evaluates on held-out seeds and checkpoints, each on the first step at or past
        a multiple of its frequency (in env steps, counted from 0 even after a resume)."""

        def __init__(self) -> None:
            super().__init__()
            # A checkpoint is saved after the evaluation of the same step, so every
            # multiple of eval_freq up to the resumed step has been evaluated.
            self.last_eval = floor(start_env_steps, config.eval_freq)
            self.last_ckpt = floor(start_env_steps, config.checkpoint_freq)
            self.best = -math.inf
            by_step: dict[int, list[float]] = {}
            for r in eval_rows:
                by_step.setdefault(int(r["env_steps"]), []).append(float(r["return"]))
            if by_step:
                self.best = max(float(np.mean(v)) for v in by_step.values())

        def env_steps(self) -> int:
            return int(round(self.num_timesteps / agents_per_host))

        def _evaluate(self, steps: int) -> None:
            vn = self.model.get_vec_normalize_env()
            policy = policy_from_model(
                self.model,
                config.layout,
                config.action_mode,
                vn,
                residual=config.residual_spec,
                obs_version=config.env_obs_version,
            )
            rows = evaluation_rows(policy, config, steps, time.time() - t0)
            eval_rows.extend(rows)
            run.write_evaluations(eval_rows)
            mean = float(np.mean([r["return"] for r in rows]))
            self.logger.record("eval/mean_return", mean)
            for sc in config.scenarios:
                self.logger.record(
                    f"eval/{sc}", float(np.mean([r["return"] for r in rows if r["scenario"] == sc]))
                )
            if mean > self.best:
                self.best = mean
                atomic_save(run.best_model_zip, lambda p: self.model.save(str(p)))
                if vn is not None:
                    atomic_save(run.best_vecnormalize_pkl, lambda p: vn.save(str(p)))

        def _on_training_start(self) -> None:
            # A fine-tuned run starts from a policy worth keeping: evaluate it before any
            # update, so the best model is never worse (on these seeds) than the start.
            if config.init_from is not None and start_env_steps == 0 and config.eval_freq:
                self._evaluate(0)

        def _on_step(self) -> bool:
            steps = self.env_steps()
            if config.eval_freq and steps - self.last_eval >= config.eval_freq:
                self.last_eval = floor(steps, config.eval_freq)
                self._evaluate(steps)
            return True

        def _on_rollout_start(self) -> None:
            # Checkpoints fall between a training update and the next rollout, where the
            # model, the env and the generators are the whole state (no half-filled
            # rollout buffer), so that a resume is exact.
            self._checkpoint()

        def _on_training_end(self) -> None:
            self._checkpoint()  # after the last update: a rollout boundary too

        def _checkpoint(self) -> None:
            steps = self.env_steps()
            if steps - self.last_ckpt >= config.checkpoint_freq:
                self.last_ckpt = floor(steps, config.checkpoint_freq)
                save_checkpoint(self.model, run.path, steps, len(eval_rows))

    return TrainCallback()


# --------------------------------------------------------------------- train
@dataclass
class TrainResult:
    run_dir: Path
    env_steps: int
    wall_s: float
    final_eval: dict[str, float]
    already_finished: bool = False
    """True when ``--resume`` found the run finished and did nothing"""


def _already_finished(config: TrainConfig) -> TrainResult | None:
    """The result of a finished run that ``--resume`` would only overwrite, or None."""
    run = config.run
    _check_same_config(config, run)
    if not run.is_finished(config.total_timesteps):
        return None
    res = run.read_result() or {}
    log.info(
        "%s already finished (%s env steps, result.json): nothing to resume, results kept",
        run.path, res.get("env_steps"),
    )  # fmt: skip
    return TrainResult(
        run.path,
        int(res.get("env_steps", 0)),
        float(res.get("wall_s_this_segment", 0.0)),
        dict(res.get("final_eval_mean_return", {})),
        already_finished=True,
    )


def _start_fresh(config: TrainConfig, run: RunDir, venv) -> Any:
    im = config.imitation
    extra: dict[str, Any] = {}
    if config.env_options:  # the agent interface the run acts on (its loaders read it)
        extra["env_options"] = {**config.env_options, "action_mode": config.action_mode}
    if im is not None:
        extra.update(init_from=im.provenance(), finetune=config.finetune)
    unit = "decisions summed over hosts" if config.env_options else "host ticks summed over hosts"
    run.write_config(
        run_metadata(method=METHOD, config=config.to_dict(), seed=config.seed,
                     hyperparams=config.hyperparams, scenarios=list(config.scenarios),
                     env_steps_unit=unit, agents_per_host=venv.agents_per_host, **extra),
    )  # fmt: skip
    if im is None:
        return make_model(config, wrap_normalize(venv, config))
    from agents.learners.sb3.finetune_ppo import check_student, init_from_student

    student = im.load_student()
    model = make_model(config, wrap_normalize(venv, config, student=student))
    check_student(student, im, model)
    init_from_student(model, student, config.hyperparams["log_std_init"])
    return model


def _resume(config: TrainConfig, run: RunDir, venv, ck: Checkpoint) -> tuple[Any, list[dict]]:
    """The model of checkpoint ``ck`` and the evaluation rows it had seen."""
    run.result_json.unlink(missing_ok=True)  # a larger budget: the run is unfinished again
    files = ck.files
    env = wrap_normalize(venv, config, files.get("vecnormalize"))
    # force_reset=False: the model keeps its last observation, and the env its state.
    cls = algo_class(config.algo)
    if config.imitation is not None:
        from agents.learners.sb3.finetune_ppo import FineTunePPO

        cls = FineTunePPO
    model = cls.load(str(files["model"]), env=env, device="cpu", force_reset=False)
    if config.imitation is not None:
        model.reference = config.imitation.load_student()  # frozen, not in the checkpoint
    if "replay_buffer" in files:
        model.load_replay_buffer(str(files["replay_buffer"]))
    if "train_state" not in files:
        raise ConfigError(
            f"cannot resume from {files['model']}: the checkpoint has no train_state "
            "(written by an older version); start again with --overwrite"
        )
    restore_train_state(model, pickle.loads(files["train_state"].read_bytes()))
    eval_rows = run.read_evaluations()[: ck.eval_rows]
    run.write_evaluations(eval_rows)
    return model, eval_rows


def _set_logger(model, config: TrainConfig, run: RunDir, start: int) -> None:
    from stable_baselines3.common.logger import Logger, make_output_format

    seg = run.segment_logs(start)
    formats = [make_output_format("csv", str(seg))]
    if config.tensorboard:
        formats.append(make_output_format("tensorboard", str(run.logs)))
    if config.verbose:
        formats.append(make_output_format("stdout", str(seg)))
    model.set_logger(Logger(str(seg), formats))


def _finish(config: TrainConfig, run: RunDir, model, env_steps: int, wall: float,
            resumed_from: int | None) -> TrainResult:  # fmt: skip
    """Save the final model, evaluate it, and write result.json (last)."""
    from agents.learners.sb3.policy import policy_from_model

    atomic_save(run.model_zip, lambda p: model.save(str(p)))
    vn = model.get_vec_normalize_env()
    if vn is not None:
        atomic_save(run.vecnormalize_pkl, lambda p: vn.save(str(p)))
    policy = policy_from_model(
        model,
        config.layout,
        config.action_mode,
        vn,
        residual=config.residual_spec,
        obs_version=config.env_obs_version,
    )
    final = evaluation_rows(policy, config, env_steps, wall)
    final_eval = {
        sc: float(np.mean([r["return"] for r in final if r["scenario"] == sc]))
        for sc in config.scenarios
    }
    run.write_result(
        {"env_steps": env_steps, "total_timesteps": config.total_timesteps,
         "sb3_timesteps": int(model.num_timesteps),
         "wall_s_this_segment": round(wall, 2), "resumed_from": resumed_from,
         "final_eval_mean_return": final_eval,
         "eval_seeds": [config.eval_seed + k for k in range(config.eval_episodes)]},
    )  # fmt: skip
    return TrainResult(run.path, env_steps, wall, final_eval)


def _env_steps(callback) -> int:
    """Env steps of the TrainCallback (alone, or first in a CallbackList)."""
    cb = getattr(callback, "callbacks", [callback])[0]
    return cb.env_steps()


def train(config: TrainConfig) -> TrainResult:
    """Train one run (see the module docstring); validation errors come first.

    ``--resume`` of a run that finished ``total_timesteps`` changes nothing and returns
    its result with ``already_finished`` set (and an info message on logger
    ``reclaim.train``; ``reclaim train`` prints that the run is finished).
    """
    import torch

    if config.resume:
        done = _already_finished(config)
        if done is not None:
            return done
    ck = check_run_dir(config)  # ConfigError before any training time
    run = config.run
    if ck is None and run.path.exists():
        shutil.rmtree(run.path)  # --overwrite (check_run_dir refused otherwise)
    run.path.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.torch_threads)

    venv = make_train_env(config)  # FileNotFoundError here for missing trace data
    if ck is None:
        model, eval_rows, start = _start_fresh(config, run, venv), [], 0
    else:
        (model, eval_rows), start = _resume(config, run, venv, ck), ck.env_steps
    _set_logger(model, config, run, start)

    t0 = time.time()
    remaining = config.total_timesteps - start
    callback = _make_callback(config, run, venv.agents_per_host, eval_rows, t0, start)
    if config.seed_group_size > 1:
        from stable_baselines3.common.callbacks import CallbackList

        from agents.learners.sb3.varred import GroupBaselineCallback

        callback = CallbackList([callback, GroupBaselineCallback(venv.baseline_groups)])
    if remaining > 0:
        # In SB3 steps; a resumed model counts from its num_timesteps, so the total is the
        # uninterrupted run's exactly.
        total_sb3 = math.ceil(config.total_timesteps * venv.agents_per_host)
        model.learn(
            total_timesteps=total_sb3 - (model.num_timesteps if ck else 0),
            callback=callback,
            reset_num_timesteps=ck is None,
            progress_bar=config.progress_bar,
        )
    env_steps = _env_steps(callback) if remaining > 0 else start
    return _finish(config, run, model, env_steps, time.time() - t0, start if ck else None)
