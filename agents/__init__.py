"""ReclaimGym's policies and learners: the public API.

    import gymnasium as gym
    import envs  # registers the reclaim/* ids
    from agents import HEURISTIC_NAMES, make_policy

    env = gym.make("reclaim/Balloon-v1")
    policy = make_policy("esx", env)  # any of POLICY_NAMES, or a trained run's directory
    obs, info = env.reset(seed=0)
    policy.reset(0)
    obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))

Policies (numpy only, imported with the package): :func:`make_policy`,
:data:`POLICY_NAMES`, :data:`HEURISTIC_NAMES`, :class:`Policy` (the protocol),
:class:`BalloonTargetPolicy` (the base class of the rules), :func:`unwrap_env` and
:func:`load_model_policy` (a trained run of any learning method as a policy, through the
loader registry of :mod:`agents.learners`; SB3 runs import torch when loaded). The agent
views every learner trains on are the vector wrappers of :mod:`agents.wrappers`.

Training (Stable-Baselines3, torch): :class:`TrainConfig`, :func:`train` and
:class:`TrainResult` from :mod:`agents.learners.sb3.train` (each learning method is a
package of :mod:`agents.learners`), loaded on first access (module
``__getattr__``), so ``import agents`` does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from agents.base import BalloonTargetPolicy, Policy, unwrap_env
from agents.policies import HEURISTIC_NAMES, POLICY_NAMES, load_model_policy, make_policy

# name -> module of the names that import torch / SB3, resolved on first access.
_LAZY = {
    "TrainConfig": "agents.learners.sb3.train",
    "TrainResult": "agents.learners.sb3.train",
    "train": "agents.learners.sb3.train",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "HEURISTIC_NAMES",
    "POLICY_NAMES",
    "BalloonTargetPolicy",
    "Policy",
    "TrainConfig",
    "TrainResult",
    "load_model_policy",
    "make_policy",
    "train",
    "unwrap_env",
]
