"""The reward of one tick, from the simulator's counters: the one copy of the formula.

The env (:class:`envs.adapter.EnvBatch`) and the oracle's look-ahead
(``agents.oracle``) both call :func:`step_reward`, so what the oracle minimizes is exactly
the negative of what the env pays. The layout of the reward and of its terms is
specified in the docstring of :class:`envs.balloon_env.BalloonEnv`.

Imports only numpy and the simulator's counter layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.sim.counters import (
    HOST_INDEX,
    STALL_COUNTERS,
    VM_INDEX,
    stall_latencies_us,
    stall_us,
)
from envs.sim.params import HostParams

# Counters that stall a VM (each one reward term), then the two OOM penalties.
STALL_TERMS: tuple[str, ...] = STALL_COUNTERS
REWARD_TERMS: tuple[str, ...] = STALL_TERMS + ("guest_oom_kills", "host_oom")
_STALL_COLS = np.array([VM_INDEX[n] for n in STALL_TERMS])


@dataclass(frozen=True)
class StepReward:
    """The reward of one tick of ``B`` envs and what it is made of.

    ``reward`` is the sum of ``terms`` up to rounding (it is computed as the formula
    states, not by summing the terms, so that its bits never depend on the split).
    """

    reward: np.ndarray  # (B,) float64
    terms: dict[str, np.ndarray]  # REWARD_TERMS -> (B,) float64
    stall_us: np.ndarray  # (B, V) float64: each VM's stall time this tick
    host_oom: np.ndarray  # (B,) int64: the host OOM flag (ends the episode)


def step_reward(params: HostParams, vm: np.ndarray, host: np.ndarray) -> StepReward:
    """The reward of the tick whose counters are ``vm`` (B, V, NV) and ``host`` (B, NH).

    ``reward = −mean over VMs of (stall µs / tick µs) − w_guest_oom · guest OOM kills
    − w_host_oom · host OOM``; each stall counter's share of the first part and the two
    penalties are the named ``terms`` (negative, in reward units).
    """
    costs, tick_us = params.costs, params.tick_us
    stall = stall_us(costs, vm)  # (B, V)
    lat = np.array(stall_latencies_us(costs), dtype=np.float64)  # (K,)
    comp = vm[:, :, _STALL_COLS] * lat  # (B, V, K) µs
    oom_kills = vm[:, :, VM_INDEX["guest_oom_kills"]].sum(axis=1)
    host_oom = host[:, HOST_INDEX["host_oom"]]
    k = len(STALL_TERMS)
    terms = np.empty((vm.shape[0], len(REWARD_TERMS)), dtype=np.float64)
    terms[:, :k] = 0.0 - comp.mean(axis=1) / tick_us
    terms[:, k] = 0.0 - costs.w_guest_oom * oom_kills
    terms[:, k + 1] = 0.0 - costs.w_host_oom * host_oom
    reward = (
        0.0
        - (stall / tick_us).mean(axis=1)
        - costs.w_guest_oom * oom_kills
        - costs.w_host_oom * host_oom
    )
    return StepReward(
        reward=reward,
        terms={n: terms[:, j].copy() for j, n in enumerate(REWARD_TERMS)},
        stall_us=stall,
        host_oom=host_oom,
    )
