"""The RL algorithms ``reclaim train`` knows, their Stable-Baselines3 classes, the agent layouts.

A leaf module: :mod:`agents.learners.sb3.train` (which builds models) and
:mod:`agents.learners.sb3.policy` (which loads them) both import it, and neither imports
the other's loading code.
"""

from __future__ import annotations

from typing import Any

ALGOS = ("ppo", "a2c", "sac", "td3", "recurrent-ppo")
ON_POLICY = ("ppo", "a2c", "recurrent-ppo")
CONTINUOUS_ONLY = ("sac", "td3")
# How the SB3 VecEnv presents a host to the agent (agents.learners.sb3.vec_env): one agent
# per VM with shared parameters ("per-vm", agents.wrappers.PerVmObservation's view), or
# one agent per host ("flat").
LAYOUTS = ("per-vm", "flat")
# What each agent is paid: its host's reward, or (per-vm layout) its VM's own
# (agents.learners.sb3.vec_env, "Per-VM reward").
REWARDS = ("host", "per-vm")


def algo_class(algo: str) -> Any:
    """The SB3 (or sb3-contrib) class of ``algo``; imported lazily (torch is heavy)."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {list(ALGOS)}")
    if algo == "recurrent-ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    import stable_baselines3 as sb3

    return {"ppo": sb3.PPO, "a2c": sb3.A2C, "sac": sb3.SAC, "td3": sb3.TD3}[algo]
