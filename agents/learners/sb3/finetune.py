"""Fine-tuning an imitation run with PPO (``reclaim train --init-from RUN``).

A run of ``reclaim imitate`` (:mod:`agents.learners.imitation`) trains the actor of the
per-VM ``ActorCriticPolicy`` that ``reclaim train`` gives PPO with the per-VM layout
(:mod:`agents.learners.imitation.networks`), with frozen observation statistics. PPO
starts from it:

- the actor (``mlp_extractor.policy_net`` and ``action_net``) is the student's, the
  critic PPO's own fresh one, and the observation statistics the student's, frozen
  (:class:`FrozenRunningMeanStd`): before any update PPO's deterministic action is the
  student's, bit for bit;
- the Gaussian's initial std is small (:data:`INIT_LOG_STD`);
- the critic is warmed up first: the first ``critic_warmup_rollouts`` rollouts, played
  by the initial policy, train the value network only (:class:`FineTunePPO`);
- a behaviour-cloning term keeps the actor near the imitation policy early on and fades
  (DAPG: Rajeswaran et al., "Learning Complex Dexterous Manipulation with Deep
  Reinforcement Learning and Demonstrations", RSS 2018; on forgetting the pre-trained
  policy during fine-tuning: Wołczyk et al., "Fine-tuning Reinforcement Learning Models
  is Secretly a Forgetting Mitigation Problem", ICML 2024): the mean squared distance
  between PPO's action mean and the frozen imitation policy's, on the observations of
  each PPO minibatch (no teacher calls), weighted ``bc_coef · bc_decay^j`` at the
  ``j``-th policy update (rollout) after the warm-up.

Everything the schedule depends on is a function of ``num_timesteps`` (saved in every
checkpoint), so a resumed run follows it exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.runs import ConfigError, RunDir, index_digest, sha256_file

INIT_LOG_STD = math.log(0.1)
"""Initial log std of PPO's Gaussian when fine-tuning (σ = 0.1). SB3's own default
``log_std_init = 0`` (σ = 1), and ``reclaim train``'s −0.5 (σ ≈ 0.61), spread the actions
of a [−1, 1] absolute balloon action over the whole balloon range: the first rollouts
would play a random balloon instead of the imitation policy, whose advantages then say
little about it. σ = 0.1 moves a target by about ±5 % of the maximum balloon, a
perturbation around the student's choice."""

CRITIC_WARMUP_ROLLOUTS = 4
"""Rollouts whose updates train only the critic. The critic starts random while the
actor is already good: PPO's first advantages would come from noise and push the actor
away from the imitation policy, before any return has been learnt. With
PPO's defaults one rollout is 64 steps of 16 hosts and 10 epochs of minibatch updates,
so 4 rollouts are 40 passes of value regression on 4·64 = 256 decisions per host,
about 2.5 horizons of the 0.99 discount (1/(1 − γ) = 100): enough for the bootstrapped
GAE targets to reach past one horizon. A judgement, not a tuned value; 0 turns it off."""

BC_KL_WEIGHT = 1.0
"""The default first weight of the behaviour-cloning term, as a KL penalty. Between two
Gaussians of one std σ, ``KL = (μ − μ0)² / (2σ²)`` per action dimension, so the term
``bc_coef · MSE(μ, μ0)`` (the MSE averages over the dimensions) is a penalty
``β · KL(π_θ ‖ π_0)`` per dimension with ``β = 2σ²·bc_coef``. The default ``bc_coef``,
:func:`default_bc_coef` of the initial std (50 at σ = 0.1), makes β = 1, one of the
fixed KL weights {0.3, 1, 3, 10} of Schulman et al., "Proximal Policy Optimization
Algorithms", 2017, Table 1 (here added to the clipped objective, and exact only while σ
stays at its start). Not tuned."""

BC_DECAY = 0.95
"""DAPG's λ1 (Rajeswaran et al. 2018; the released configs of aravindr93/hand_dapg): the
weight of the term at the j-th policy update is ``bc_coef · BC_DECAY^j``, a tenth of its
start after 45 updates and under 1 % after 90 (92 160 env steps, 64 decisions of 16
hosts each, with PPO's defaults, after the warm-up). DAPG's own term is a different one
(the demonstrations' log-likelihood weighted by the advantage), so only the decay is
taken from it."""


def default_bc_coef(log_std: float) -> float:
    """``bc_coef`` for which the term is a KL penalty of weight :data:`BC_KL_WEIGHT` at
    the initial std ``exp(log_std)``."""
    return BC_KL_WEIGHT / (2.0 * math.exp(2.0 * log_std))


# ---------------------------------------------------------------- the run read
@dataclass(frozen=True)
class ImitationRun:
    """A finished ``reclaim imitate`` run, verified: its student and what it was trained on."""

    path: Path
    student_file: Path
    student_sha256: str
    config_sha256: str
    """sha256 of the run's config (``agents.runs.index_digest`` of its ``config`` object)"""
    config: dict[str, Any]
    env_options: dict[str, Any]

    def load_student(self) -> Any:
        from agents.learners.imitation.networks import Student

        if sha256_file(self.student_file) != self.student_sha256:
            raise ConfigError(f"--init-from: {self.student_file} changed since it was checked")
        return Student.load(self.student_file)

    def provenance(self) -> dict[str, Any]:
        """What config.json records of it."""
        return {"path": str(self.path), "student": self.student_file.name,
                "student_sha256": self.student_sha256,
                "config_sha256": self.config_sha256}  # fmt: skip


def read_imitation_run(path: str | Path) -> ImitationRun:
    """The finished imitation run at ``path``, its final student verified against the
    sha256 recorded in its last checkpoint's index (``agents.runs`` checksums).

    ConfigError (one line) for a path that is not a run directory of ``reclaim imitate``,
    an unfinished run, or a missing or damaged student or index."""
    from agents.learners.imitation.train import METHOD, latest_checkpoint

    p = Path(path).expanduser()
    run = RunDir(p)
    if not p.is_dir():
        raise ConfigError(f"--init-from {path}: not a run directory")
    try:
        meta = json.loads(run.config_json.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--init-from {path}: no readable config.json ({e})") from None
    if not isinstance(meta, dict) or meta.get("method") != METHOD:
        method = meta.get("method", "sb3") if isinstance(meta, dict) else None
        raise ConfigError(
            f"--init-from {path}: not an imitation run (method {method!r}); "
            "give a run directory of reclaim imitate"
        )
    cfg, opts = meta.get("config"), meta.get("env_options")
    if not isinstance(cfg, dict) or not isinstance(opts, dict):
        raise ConfigError(f"--init-from {path}: corrupt config.json (no config or env_options)")
    if run.read_result() is None:
        raise ConfigError(f"--init-from {path}: the run is unfinished (no result.json)")
    try:
        ck = latest_checkpoint(run)
    except ConfigError as e:
        raise ConfigError(f"--init-from {path}: {str(e).removeprefix('cannot resume: ')}") from None
    if ck["iteration"] != cfg.get("iterations"):
        raise ConfigError(
            f"--init-from {path}: its last intact checkpoint is iteration {ck['iteration']}, "
            f"the run has {cfg.get('iterations')}: the final student is damaged or missing"
        )
    student_file = ck["files"]["student"]
    return ImitationRun(
        path=p.resolve(),
        student_file=student_file,
        student_sha256=sha256_file(student_file),
        config_sha256=index_digest({"config": cfg}),
        config=cfg,
        env_options=dict(opts),
    )
