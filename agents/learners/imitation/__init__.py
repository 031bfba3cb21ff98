"""Imitation learning: behaviour cloning, then DAgger, from a teacher policy.

DAgger: Ross, Gordon & Bagnell, "A Reduction of Imitation Learning and Structured
Prediction to No-Regret Online Learning", AISTATS 2011. The student acts on the env, the
teacher (a heuristic of :mod:`agents.policies`, run beside it on the same observations;
or the oracle's labels, :class:`agents.teacher.OracleTeacher`) labels every state the student
visits, and the student is refitted on all labels so far. The student is PPO's per-VM
actor-critic (one shared network for every VM), so PPO can fine-tune it.

- :mod:`.train`: :class:`ImitateConfig`, :func:`train`, :func:`load_policy`
  (``reclaim imitate``);
- :mod:`.networks`: the student network and the policy around it;
- :mod:`.demonstrations`: the teacher's demonstrations as a Minari dataset
  (:func:`record_demonstrations`, :func:`load_demonstrations`; ``reclaim imitate --dataset``).
"""

from __future__ import annotations

from agents.learners.imitation.demonstrations import load_demonstrations, record_demonstrations
from agents.learners.imitation.train import (
    METHOD,
    ImitateConfig,
    ImitateResult,
    env_options,
    load_policy,
    train,
)

__all__ = [
    "METHOD",
    "ImitateConfig",
    "ImitateResult",
    "env_options",
    "load_demonstrations",
    "load_policy",
    "record_demonstrations",
    "train",
]
