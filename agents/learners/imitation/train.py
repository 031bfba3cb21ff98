"""Imitation of a teacher policy: behaviour cloning, then DAgger.

DAgger (Ross, Gordon & Bagnell, "A Reduction of Imitation Learning and Structured
Prediction to No-Regret Online Learning", AISTATS 2011, Algorithm 3.1): iteration ``i``
plays ``π_i = β_i·π* + (1 − β_i)·π̂_i`` on the env, the teacher ``π*`` labels every
state visited, the labelled states are added to the aggregate data set ``D`` and
``π̂_{i+1}`` is fitted on all of ``D``. Here:

- iteration 0 has ``β_0 = 1``: the teacher acts alone, plain behaviour cloning;
- iteration ``i ≥ 1`` mixes with ``β_i = p^i`` (``beta_decay = p``; the paper's
  ``β_i = p^{i−1}`` counted from its first DAgger iteration). Each env draws at each
  step whether the teacher's action (probability ``β_i``) or the student's is applied.
  The default ``p = 0`` gives ``β_0 = 1`` then 0, the paper's simplest choice, which
  issue #23's probe used (a clone of ESX within 8-13 % of ESX after 4 iterations);
- the student is refitted after each iteration, warm-started from its last weights,
  with a fresh Adam optimizer whose step size decays linearly to 0, for ``epochs``
  passes over all of ``D`` (MSE on the actor's mean).

Teacher: a heuristic of :mod:`agents.policies` (``esx``, ``mom``, ...), run beside the
student on the same observations and info, as ``agents.sb3_env`` runs a residual's
heuristic beside the agent; its label is its balloon target as an absolute action
(``a = 2·target/max_balloon − 1`` per VM), and in ``absolute-hold`` mode also a hold flag
(+1 where its target equals the env's current target, else −1). ``teacher="oracle"``
takes labels from :class:`agents.teacher.OracleTeacher` (``label(env) -> (B, V)``
targets in pages for the env's current state, read through the simulator's privileged
view: not deployable).

Student: PPO's per-VM actor-critic (:mod:`agents.learners.imitation.networks`), one
network for every VM.

The run directory (``<runs_dir>/<name>/<seed>/``, :class:`agents.runs.RunDir`'s paths):
``config.json`` (``"method": "imitation"``, the config, the env options, seed, versions,
git revision), ``checkpoints/`` (after each iteration ``i``: ``student_<i>.pt``,
``data_<i>.npz`` (that iteration's labelled rows; every one is kept, they are ``D``) and
``checkpoint_<i>.json``, an index with the sha256 of each file it needs and of itself;
the last two students are kept), ``student.pt`` (the final student), ``result.json``
(written last: the per-iteration history and the final evaluation), ``logs/``
(TensorBoard scalars, optional). ``resume=True`` continues from the newest intact
checkpoint: every random draw of iteration ``i`` (episode seeds, the β coins, the
minibatch order, torch's seed) is derived from ``(seed, i)`` and each fit starts a fresh
optimizer, so a resumed run ends with the same weights, bit for bit, as one never
stopped.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.learners.imitation.networks import Student, actions_per_vm, per_vm_to_env
from agents.provenance import run_metadata
from agents.runs import ConfigError, RunDir, check_same_config, index_digest, sha256_file
from envs import BALLOON_V2_DECISION_PERIOD_S, BALLOON_V2_HOLD_DEADBAND, ENV_ID_V2, ENV_IDS
from envs.env_batch import make_config
from envs.files import atomic_save, write_json_atomic
from envs.scenarios import resolve_scenarios
from envs.sim.checks import check_choice, check_int, check_number

log = logging.getLogger("reclaim.imitate")

METHOD = "imitation"
IMITATION_ACTION_MODES = ("absolute", "absolute-hold")
SEED_STRIDE = 100_000  # training episode seeds of run seed s: s·SEED_STRIDE + ...
# Config fields that may change when a run is resumed (more iterations extend it).
RESUMABLE_CHANGES = ("iterations", "resume", "overwrite", "progress_bar", "tensorboard",
                     "torch_threads", "runs_dir", "eval_episodes", "dataset",
                     "dataset_only")  # fmt: skip
STUDENT_FILE = "student.pt"


@dataclass(frozen=True)
class ImitateConfig:
    """Everything that defines an imitation run (``reclaim imitate --help`` shows each field)."""

    teacher: str = "esx"
    """the teacher: a heuristic of agents.policies (esx, mom, selfballoon, hyperv, mrc,
    static, no-balloon) or 'oracle' (agents.teacher.OracleTeacher's labels; not
    deployable)"""
    scenario: str = ENV_IDS[ENV_ID_V2]
    """training scenario id, comma-separated ids, or 'split:train' (the v1 train split)"""
    seed: int = 0
    """seed of the network, the training episodes and the minibatches"""
    iterations: int = 4
    """DAgger iterations after behaviour cloning (0: behaviour cloning only)"""
    episodes: int = 8
    """episodes per scenario and iteration (one batch of hosts each)"""
    beta_decay: float = 0.0
    """p of the mixing schedule beta_i = p^i, in [0, 1] (0: the teacher acts in iteration 0,
    the student in every later one; 1: behaviour cloning on teacher rollouts only)"""
    obs_version: int = 2
    """observation version of the env (2: Balloon-v2's)"""
    decision_period_s: float = BALLOON_V2_DECISION_PERIOD_S
    """seconds per env step (one decision; a positive multiple of the tick)"""
    hold_deadband: float = BALLOON_V2_HOLD_DEADBAND
    """the env's dead-band, a fraction of max balloon in [0, 1) (0: off)"""
    action_mode: str = "absolute"
    """'absolute' (a target per VM) or 'absolute-hold' (a target and a hold flag per VM)"""
    max_episode_steps: int | None = None
    """episode length override in ticks (None: each scenario's)"""
    net_arch: tuple[int, ...] = (64, 64)
    """hidden layers of the actor and the critic (as PPO's per-VM network)"""
    log_std_init: float = -0.5
    """initial log std of the Gaussian (as PPO's; imitation fits only the mean)"""
    epochs: int = 30
    """passes over the aggregate data set per fit"""
    batch_size: int = 256
    """minibatch size in per-VM rows"""
    learning_rate: float = 1e-3
    """Adam step size"""
    eval_episodes: int = 4
    """held-out episodes per scenario in the final evaluation (0: none)"""
    eval_seed: int = 1_000_000
    """first seed of the evaluation episodes (training episodes use other seeds)"""
    name: str | None = None
    """run name (None: 'imitation-<teacher>-<scenario>'); the run lives in
    <runs-dir>/<name>/<seed>/"""
    runs_dir: str = "runs"
    """where run directories are created"""
    resume: bool = False
    """continue the run from its last finished iteration (it must exist)"""
    overwrite: bool = False
    """delete an existing run directory of the same name and seed first (with --dataset:
    and an existing dataset of that id)"""
    dataset: str | None = None
    """also write the teacher's demonstrations (its own rollouts on the seeds of the
    behaviour-cloning episodes) as the Minari dataset of this id, (namespace/)name-vN,
    e.g. reclaim/default-v1/esx-v0, under $MINARI_DATASETS_PATH (default
    ~/.minari/datasets); load it with minari.load_dataset(id). One scenario only; needs
    the offline extra (pip install 'reclaim-gym[offline]')"""
    dataset_only: bool = False
    """with --dataset: write the dataset and stop (no training, no run directory)"""
    progress_bar: bool = True
    """show a progress bar over the iterations (tqdm)"""
    tensorboard: bool = False
    """write TensorBoard scalars (per iteration) to <run>/logs"""
    torch_threads: int = 1
    """torch CPU threads (1 is fastest for these small networks)"""

    def __post_init__(self) -> None:
        E = ConfigError
        check_teacher(self.teacher)
        scenarios = self.scenarios
        check_int("seed", self.seed, 0, error=E)
        check_int("eval_seed", self.eval_seed, 0, error=E)
        check_int("iterations", self.iterations, 0, 1000, error=E)
        check_int("episodes", self.episodes, 1, 10_000, error=E)
        check_int("epochs", self.epochs, 1, error=E)
        check_int("batch_size", self.batch_size, 1, error=E)
        check_int("eval_episodes", self.eval_episodes, 0, error=E)
        check_int("torch_threads", self.torch_threads, 1, error=E)
        check_number("beta_decay", self.beta_decay, 0.0, 1.0, error=E)
        check_choice("obs_version", self.obs_version, (1, 2), error=E)
        check_choice("action_mode", self.action_mode, IMITATION_ACTION_MODES, error=E)
        check_number("hold_deadband", self.hold_deadband, 0.0, error=E)
        if self.hold_deadband >= 1.0:
            raise E(f"hold_deadband must be in [0, 1), got {self.hold_deadband!r}")
        check_number("learning_rate", self.learning_rate, error=E)
        if self.learning_rate <= 0:
            raise E(f"learning_rate must be > 0, got {self.learning_rate!r}")
        check_number("log_std_init", self.log_std_init, error=E)
        if not self.net_arch or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.net_arch
        ):
            raise E(f"net_arch must be one or more layer sizes >= 1, got {self.net_arch!r}")
        if self.max_episode_steps is not None:
            check_int("max_episode_steps", self.max_episode_steps, 1, error=E)
        if self.resume and self.overwrite:
            raise E("resume and overwrite contradict each other")
        if self.dataset is not None:
            from agents.learners.imitation.dataset_id import check_dataset_id

            check_dataset_id(self.dataset)
            if self.resume:
                raise E("dataset is written when a run starts: resume without --dataset")
            if len(scenarios) != 1:
                raise E(f"dataset: a Minari dataset holds one env, so --dataset needs one "
                        f"scenario, got {len(scenarios)} ({self.scenario})")  # fmt: skip
        elif self.dataset_only:
            raise E("dataset_only needs --dataset NAME")
        if self.name is not None and (not self.name or "/" in self.name or self.name[0] == "."):
            raise E(f"name must be a plain directory name, got {self.name!r}")
        for sid in scenarios:  # the env options must build every scenario's env
            try:
                make_config(sid, **self.env_options, max_episode_steps=self.max_episode_steps)
            except ValueError as e:
                raise E(f"scenario {sid}: {e}") from None
        lo, hi = self.train_seed(0, 0, 0), self.train_seed(self.iterations + 1, 0, 0)
        if lo < self.eval_seed + self.eval_episodes and self.eval_seed < hi:
            raise E(
                f"eval_seed {self.eval_seed} overlaps the training episode seeds [{lo}, {hi}) "
                f"of seed {self.seed}: choose eval_seed >= {hi} or another seed"
            )

    # ------------------------------------------------------------- derived
    @property
    def scenarios(self) -> tuple[str, ...]:
        try:
            return resolve_scenarios(self.scenario)
        except ValueError as e:
            raise ConfigError(f"scenario: {e}") from None

    @property
    def env_options(self) -> dict[str, Any]:
        """The env options of the run (``BalloonVectorEnv`` keywords)."""
        return {
            "obs_version": self.obs_version,
            "decision_period_s": float(self.decision_period_s),
            "hold_deadband": float(self.hold_deadband),
            "action_mode": self.action_mode,
        }

    def train_seed(self, iteration: int, group: int, j: int) -> int:
        """The seed of episode ``j`` of scenario ``group`` in ``iteration``."""
        n = self.episodes * len(self.scenarios)
        return self.seed * SEED_STRIDE + iteration * n + group * self.episodes + j

    def beta(self, iteration: int) -> float:
        """β_i = p^i (β_0 = 1)."""
        return 1.0 if iteration == 0 else float(self.beta_decay) ** iteration

    @property
    def run_name(self) -> str:
        sc = self.scenario.replace(":", "-").replace(",", "+")
        return self.name or f"imitation-{self.teacher}-{sc}"

    @property
    def run(self) -> RunDir:
        return RunDir(Path(self.runs_dir) / self.run_name / str(self.seed))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["net_arch"] = list(d["net_arch"])
        return d


def oracle_label_fn() -> Any:
    """The oracle's labels: :meth:`agents.teacher.OracleTeacher.label` of a teacher with
    its default plan, ``label(env) -> (B, V)`` balloon targets (pages) for the env's
    current state."""
    from agents.teacher import OracleTeacher

    return OracleTeacher().label


def check_teacher(name: str) -> None:
    from agents.policies import HEURISTIC_NAMES

    if name != "oracle" and name not in HEURISTIC_NAMES:
        raise ConfigError(f"teacher must be one of {[*HEURISTIC_NAMES, 'oracle']}, got {name!r}")


# ------------------------------------------------------------------ teachers
class _TeacherView:
    """What a heuristic needs of the env (``agents.base``): its config, in ``absolute``
    mode (the teacher's targets are the labels whatever the env's action mode), and B
    (1 for a single env: :mod:`.demonstrations` passes it batched observations)."""

    single_action_space = None

    def __init__(self, env: Any) -> None:
        self.config = dataclasses.replace(env.config, action_mode="absolute")
        self.num_envs = getattr(env, "num_envs", 1)  # a single BalloonEnv: a batch of 1


class Teacher:
    """The teacher of one batch of envs: ``targets(obs, info)`` → (B, V) pages.

    A heuristic is stepped on every observation, whoever acts (it keeps its own
    running statistics: ESX's working-set averages, MoM's samples), from the env's
    current targets (:meth:`agents.base.BalloonTargetPolicy.set_held_targets`); the
    oracle is asked on the env itself.
    """

    def __init__(self, name: str, env: Any) -> None:
        self.env = env
        if name == "oracle":
            self._label = oracle_label_fn()
            self._policy = None
        else:
            from agents.policies import make_policy

            self._label = None
            self._policy = make_policy(name, _TeacherView(env))

    def reset(self, seed: int | None) -> None:
        if self._policy is not None:
            self._policy.reset(seed)

    def targets(self, obs: np.ndarray, info: Any) -> np.ndarray:
        if self._policy is None:
            return np.asarray(self._label(self.env), dtype=np.int64)
        # The rule starts from the env's current targets (the state's), not from the
        # ones it would hold had it acted: ESX holds its targets in the hard state and
        # only lowers them above soft, so its label depends on them.
        self._policy.set_held_targets(np.asarray(info["vm"]["balloon_target"]))
        self._policy.act(obs, info)
        return self._policy.held_targets


def target_actions(targets: np.ndarray, maxb: np.ndarray) -> np.ndarray:
    """(B, V) balloon targets (pages) → absolute actions ``2·target/max_balloon − 1``."""
    t = np.clip(targets.astype(np.float64), 0, maxb)
    a = np.where(maxb > 0, 2.0 * t / np.maximum(maxb, 1) - 1.0, -1.0)
    return np.clip(a, -1.0, 1.0)


def labels(targets: np.ndarray, info: Any, maxb: np.ndarray, action_mode: str) -> np.ndarray:
    """The teacher's (B, V, A) per-VM labels: the target action, and in ``absolute-hold``
    mode a hold flag, +1 where the target equals the env's current one, else −1."""
    a = target_actions(targets, maxb)[..., None]
    if actions_per_vm(action_mode) == 1:
        return a
    cur = np.asarray(info["vm"]["balloon_target"], dtype=np.int64)
    hold = np.where(np.clip(targets, 0, maxb) == cur, 1.0, -1.0)[..., None]
    return np.concatenate([a, hold], axis=2)


# ------------------------------------------------------------------ rollouts
def make_env(config: ImitateConfig, scenario: str, num_envs: int, **override: Any) -> Any:
    from envs.vector_env import BalloonVectorEnv

    opts = {**config.env_options, **override}
    return BalloonVectorEnv(num_envs, scenario, max_episode_steps=config.max_episode_steps, **opts)


def collect(config: ImitateConfig, student: Student | None, iteration: int) -> dict[str, Any]:
    """Play iteration ``iteration``'s episodes (β mixing) and label every visited state.

    Returns ``x`` (N, F) raw per-VM rows, ``y`` (N, A) labels, and statistics: the mean
    return and balloon pages moved per episode of the rollouts, the share of actions the
    student took."""
    from agents.layout import per_vm_features

    beta = config.beta(iteration)
    xs, ys, returns, moved = [], [], [], []
    student_steps = total_steps = 0
    for g, sid in enumerate(config.scenarios):
        env = make_env(config, sid, config.episodes)
        teacher = Teacher(config.teacher, env)
        maxb = np.array([v.max_balloon_pages for v in env.config.params.vms], dtype=np.int64)
        rng = np.random.default_rng([config.seed, iteration, g])
        seeds = [config.train_seed(iteration, g, j) for j in range(config.episodes)]
        obs, info = env.reset(seed=seeds)
        teacher.reset(seeds[0])
        B = env.num_envs
        running = np.ones(B, dtype=bool)
        while running.any():
            y = labels(teacher.targets(obs, info), info, maxb, config.action_mode)  # (B, V, A)
            xs.append(per_vm_features(obs[running], config.obs_version))
            ys.append(y[running].reshape(-1, y.shape[2]).astype(np.float32))
            action = per_vm_to_env(y)
            use_student = rng.random(B) >= beta
            if student is not None and use_student.any():
                action = np.where(use_student[:, None], student.env_actions(obs), action)
            student_steps += int((use_student & running).sum())
            total_steps += int(running.sum())
            obs, _, terminated, truncated, info = env.step(action.astype(np.float32))
            ended = running & (terminated | truncated)
            for b in np.nonzero(ended)[0]:
                s = info["episode_summary"]
                returns.append(float(s["return"][b]))
                tot = s["totals"]
                moved.append(
                    int(tot["balloon_inflated"][b].sum() + tot["balloon_deflated"][b].sum())
                )
            running &= ~ended
        env.close()
    return {
        "x": np.concatenate(xs).astype(np.float32),
        "y": np.concatenate(ys).astype(np.float32),
        "return": float(np.mean(returns)),
        "balloon_pages_moved": float(np.mean(moved)),
        "student_share": student_steps / max(total_steps, 1) if student is not None else 0.0,
    }


def fit(
    config: ImitateConfig, student: Student, x: np.ndarray, y: np.ndarray, iteration: int
) -> float:
    """``epochs`` passes of Adam on the MSE between the actor's mean and the labels, over
    all rows; returns the MSE over all rows afterwards."""
    import torch

    torch.manual_seed(config.seed * 1_000_003 + iteration)
    rng = np.random.default_rng([config.seed, iteration, 1 << 20])
    net = student.net
    params = [*net.mlp_extractor.policy_net.parameters(), *net.action_net.parameters()]
    opt = torch.optim.Adam(params, lr=config.learning_rate)
    X = torch.as_tensor(student.normalize(x))
    Y = torch.as_tensor(y)
    n = X.shape[0]
    per_epoch = -(-n // config.batch_size)
    # The step size decays linearly to 0 over the fit, so that the fit ends at a settled
    # point rather than wherever the last minibatches left it.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 - k / (config.epochs * per_epoch))
    net.set_training_mode(True)
    for _ in range(config.epochs):
        perm = torch.as_tensor(rng.permutation(n))
        for lo in range(0, n, config.batch_size):
            idx = perm[lo : lo + config.batch_size]
            loss = torch.mean((student.mean(X[idx]) - Y[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.set_training_mode(False)
    with torch.no_grad():
        return float(torch.mean((student.mean(X) - Y) ** 2))


def evaluate(config: ImitateConfig, policy: Any, scenario: str, seeds: list[int],
             **override: Any) -> dict[str, float]:  # fmt: skip
    """Mean return and balloon pages moved per episode of ``policy`` (a policy, or a
    heuristic's name built for the env) on ``seeds`` of ``scenario``."""
    from agents.policies import make_policy
    from envs.rollout import first_episodes

    env = make_env(config, scenario, len(seeds), **override)
    pol = make_policy(policy, env) if isinstance(policy, str) else policy
    eps = first_episodes(env, pol, seeds)
    env.close()
    moved = [int(e["totals"]["balloon_inflated"].sum() + e["totals"]["balloon_deflated"].sum())
             for e in eps]  # fmt: skip
    return {
        "return": float(np.mean([e["return"] for e in eps])),
        "balloon_pages_moved": float(np.mean(moved)),
    }


def final_evaluation(config: ImitateConfig, student: Student) -> dict[str, Any]:
    """On ``eval_episodes`` held-out seeds of each training scenario: the student, the
    teacher on the same env (its decision period), and a heuristic teacher deciding at its
    own period on a one-tick env (same observation version); the cost ratio is
    ``student cost / teacher cost`` (cost = −return)."""
    from agents.learners.imitation.networks import ImitationPolicy

    out: dict[str, Any] = {}
    if config.eval_episodes == 0:
        return out
    seeds = [config.eval_seed + j for j in range(config.eval_episodes)]
    policy = ImitationPolicy(student, config.env_options)
    for sid in config.scenarios:
        row: dict[str, Any] = {"seeds": seeds, "student": evaluate(config, policy, sid, seeds)}
        if config.teacher != "oracle":
            row["teacher"] = evaluate(config, config.teacher, sid, seeds, action_mode="absolute")
            row["teacher_one_tick"] = evaluate(
                config, config.teacher, sid, seeds, action_mode="absolute",
                decision_period_s=None, hold_deadband=0.0,
            )  # fmt: skip
            for key in ("teacher", "teacher_one_tick"):
                row[f"cost_ratio_vs_{key}"] = cost_ratio(row["student"], row[key])
        out[sid] = row
    return out


def cost_ratio(student: dict[str, float], reference: dict[str, float]) -> float:
    """``student cost / reference cost`` (cost = −return); inf for a free reference."""
    ref = -reference["return"]
    return -student["return"] / ref if ref > 0 else math.inf


# --------------------------------------------------------------- checkpoints
def _ckpt_name(kind: str, iteration: int, ext: str) -> str:
    return f"{kind}_{iteration:04d}.{ext}"


def save_checkpoint(run: RunDir, iteration: int, student: Student, data: dict[str, Any],
                    history: list[dict[str, Any]]) -> None:  # fmt: skip
    """Write the student and this iteration's data, then the index with their checksums
    (and those of every earlier iteration's data, which the aggregate needs)."""
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    spath = run.checkpoints / _ckpt_name("student", iteration, "pt")
    dpath = run.checkpoints / _ckpt_name("data", iteration, "npz")
    atomic_save(spath, student.save)
    buf = io.BytesIO()
    np.savez(buf, x=data["x"], y=data["y"])
    atomic_save(dpath, lambda p: p.write_bytes(buf.getvalue()))
    files = {"student": {"name": spath.name, "sha256": sha256_file(spath)}}
    for i in range(iteration + 1):
        p = run.checkpoints / _ckpt_name("data", i, "npz")
        files[f"data_{i:04d}"] = {"name": p.name, "sha256": sha256_file(p)}
    body: dict[str, Any] = {"iteration": iteration, "files": files, "history": history}
    body["sha256"] = index_digest(body)
    write_json_atomic(run.checkpoints / _ckpt_name("checkpoint", iteration, "json"), body)
    for old in sorted(run.checkpoints.glob("student_*.pt"))[:-2]:
        old.unlink(missing_ok=True)


def latest_checkpoint(run: RunDir) -> dict[str, Any]:
    """The newest intact checkpoint: its index, with ``files`` as verified paths.
    A damaged newer one is skipped with a warning; ConfigError when none is intact."""
    indexes = sorted(run.checkpoints.glob("checkpoint_*.json"), reverse=True)
    if not indexes:
        raise ConfigError(f"cannot resume: no checkpoint in {run.checkpoints}")
    problems: list[str] = []
    for index in indexes:
        try:
            body = json.loads(index.read_text())
            if body.get("sha256") != index_digest(body):
                raise ValueError("its checksum does not match its content")
            paths = {}
            for key, ent in body["files"].items():
                p = run.checkpoints / ent["name"]
                if "/" in ent["name"] or not p.exists():
                    raise ValueError(f"{key} file {ent['name']} is missing")
                if sha256_file(p) != ent["sha256"]:
                    raise ValueError(f"{key} file {ent['name']} is corrupt (sha256 mismatch)")
                paths[key] = p
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            problems.append(f"{index.name}: {e}")
            continue
        if problems:
            log.warning("resuming %s from %s, skipping: %s", run.path, index.name,
                        "; ".join(problems))  # fmt: skip
        return {**body, "files": paths}
    raise ConfigError(
        f"cannot resume: no intact checkpoint in {run.checkpoints}: " + "; ".join(problems)
    )


def _check_same_config(config: ImitateConfig, run: RunDir) -> None:
    """ConfigError unless ``run``'s config.json is ``config`` (up to RESUMABLE_CHANGES)."""
    check_same_config(run, config.to_dict(), RESUMABLE_CHANGES)


# ------------------------------------------------------------------ training
@dataclass(frozen=True)
class ImitateResult:
    run_dir: Path
    iterations: int  # DAgger iterations finished (behaviour cloning not counted)
    wall_s: float
    history: list[dict[str, Any]]
    final_eval: dict[str, Any]


def new_student(config: ImitateConfig) -> Student:
    import torch

    torch.manual_seed(config.seed)
    return Student(config.obs_version, config.action_mode, config.net_arch,
                   config.log_std_init, config.learning_rate)  # fmt: skip


def check_new_run(config: ImitateConfig) -> None:
    """ConfigError when a new run would replace an existing run directory without
    ``overwrite``."""
    run = config.run
    if run.path.exists() and any(run.path.iterdir()) and not config.overwrite:
        raise ConfigError(
            f"run directory {run.path} exists: pass resume to continue it or "
            "overwrite to start again"
        )


def train(config: ImitateConfig) -> ImitateResult:
    """Behaviour cloning then ``config.iterations`` DAgger iterations (module docstring)."""
    import torch

    torch.set_num_threads(config.torch_threads)
    run = config.run
    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    datasets: list[dict[str, np.ndarray]] = []
    student = new_student(config)
    start = 0
    if config.resume:
        _check_same_config(config, run)
        ck = latest_checkpoint(run)
        if ck["iteration"] > config.iterations:
            raise ConfigError(
                f"cannot resume: the checkpoint has {ck['iteration']} iterations, more than "
                f"iterations={config.iterations}"
            )
        student = Student.load(ck["files"]["student"])
        for i in range(ck["iteration"] + 1):
            with np.load(ck["files"][f"data_{i:04d}"]) as z:
                datasets.append({"x": z["x"], "y": z["y"]})
        history = list(ck["history"])
        start = ck["iteration"] + 1
        meta = run.read_config()
        meta["config"] = config.to_dict()
        run.write_config(meta)
    else:
        check_new_run(config)
        if run.path.exists() and any(run.path.iterdir()):
            shutil.rmtree(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(
            run_metadata(
                method=METHOD,
                seed=config.seed,
                config=config.to_dict(),
                env_options=config.env_options,
            )  # fmt: skip
        )
    writer = None
    if config.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run.logs))
    from tqdm.auto import tqdm

    bar = tqdm(total=config.iterations + 1, initial=start, desc="imitate",
               disable=not config.progress_bar)  # fmt: skip
    for i in range(start, config.iterations + 1):
        ti = time.perf_counter()
        data = collect(config, None if i == 0 else student, i)
        if i == 0:
            student.fit_normalization(data["x"])
        datasets.append({"x": data["x"], "y": data["y"]})
        x = np.concatenate([d["x"] for d in datasets])
        y = np.concatenate([d["y"] for d in datasets])
        mse = fit(config, student, x, y, i)
        row = {
            "iteration": i, "beta": config.beta(i), "rows": int(x.shape[0]), "mse": mse,
            "rollout_return": data["return"], "rollout_balloon_pages_moved":
            data["balloon_pages_moved"], "student_share": data["student_share"],
            "wall_s": time.perf_counter() - ti,
        }  # fmt: skip
        history.append(row)
        save_checkpoint(run, i, student, data, history)
        if writer is not None:
            for k in ("beta", "rows", "mse", "rollout_return", "student_share"):
                writer.add_scalar(f"imitate/{k}", row[k], i)
        bar.update(1)
        bar.set_postfix(mse=f"{mse:.4f}", ret=f"{data['return']:.3f}")
    bar.close()
    if writer is not None:
        writer.close()
    atomic_save(run.path / STUDENT_FILE, student.save)
    final = final_evaluation(config, student)
    wall = time.perf_counter() - t0
    run.write_result({"method": METHOD, "iterations": config.iterations, "history": history,
                      "final_eval": final, "wall_s": wall})  # fmt: skip
    return ImitateResult(run.path, config.iterations, wall, history, final)


# ------------------------------------------------------------------- loading
def env_options(path: str | Path) -> dict[str, Any]:
    """The env options an imitation run was trained under (its ``config.json``)."""
    p = Path(path)
    run = RunDir(p if p.is_dir() else (p.parent.parent if p.parent.name == "checkpoints"
                                       else p.parent))  # fmt: skip
    return dict(run.read_config()["env_options"])


def load_policy(path: str | Path, env: Any = None) -> Any:
    """An imitation run (its directory, its ``student.pt``, or a checkpoint's
    ``student_<i>.pt``) as an :class:`~agents.learners.imitation.networks.ImitationPolicy`.

    ``env`` (optional) is checked against the run's env options: the observation version
    and the action mode must be the run's, and so must the decision period and the
    dead-band (the student learned to decide at that period); ValueError naming the
    option otherwise. Build the env with the policy's ``env_options``.
    """
    from agents.base import unwrap_env
    from agents.learners.imitation.networks import ImitationPolicy

    p = Path(path)
    if p.is_dir():
        run, model = RunDir(p), p / STUDENT_FILE
    else:
        run = RunDir(p.parent.parent if p.parent.name == "checkpoints" else p.parent)
        model = p
    if not model.exists():
        raise FileNotFoundError(f"no imitation student at {model} (unfinished run? pass a "
                                "checkpoint's student_<i>.pt)")  # fmt: skip
    meta = run.read_config()
    if meta.get("method") != METHOD:
        raise ValueError(
            f"{run.config_json} is not an imitation run (method {meta.get('method')!r})"
        )
    opts = dict(meta["env_options"])
    student = Student.load(model)
    policy = ImitationPolicy(
        student, opts, name=f"imitation:{run.path.parent.name}/{run.path.name}"
    )
    config = None if env is None else getattr(unwrap_env(env), "config", None)
    if config is not None:
        have = {
            "obs_version": config.obs_version,
            "decision_period_s": float(config.ticks_per_step * config.params.tick_ms / 1000.0),
            "hold_deadband": float(config.hold_deadband),
            "action_mode": config.action_mode,
        }
        bad = [k for k in opts if have[k] != opts[k]]
        if bad:
            raise ValueError(
                f"{path} was trained on an env with {', '.join(f'{k}={opts[k]!r}' for k in bad)}; "
                f"this env has {', '.join(f'{k}={have[k]!r}' for k in bad)}"
            )
    return policy
