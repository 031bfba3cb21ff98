"""The reward of one tick, from the simulator's counters: the one copy of the formula.

The env (:class:`envs.env_batch.EnvBatch`) and the oracle's look-ahead
(``agents.oracle``) both call :func:`step_reward`, so what the oracle minimizes is exactly
the negative of what the env pays. The layout of the reward and of its terms is
specified in the docstring of :class:`envs.balloon_env.BalloonEnv`.

Imports only numpy and the simulator's counter layout and cost model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.sim.costs import COST_TERMS, TickCosts, tick_costs
from envs.sim.counters import HOST_INDEX, VM_INDEX
from envs.sim.params import HostParams

# Stall components of every VM (each one reward term; envs.sim.costs), then the two OOM
# penalties.
STALL_TERMS: tuple[str, ...] = COST_TERMS
REWARD_TERMS: tuple[str, ...] = STALL_TERMS + ("guest_oom_kills", "host_oom")


@dataclass(frozen=True)
class StepReward:
    """The reward of one tick of ``B`` envs and what it is made of.

    ``reward`` is the sum of ``terms`` up to rounding (it is computed as the formula
    states, not by summing the terms, so that its bits never depend on the split).
    """

    reward: np.ndarray  # (B,) float64
    terms: dict[str, np.ndarray]  # REWARD_TERMS -> (B,) float64
    stall_us: np.ndarray  # (B, V) float64: each VM's stall time this tick
    # (B, V) float64: each VM's own reward (step_reward's docstring); its mean over the
    # VMs is ``reward`` up to rounding
    vm_reward: np.ndarray
    host_oom: np.ndarray  # (B,) int64: the host OOM flag (ends the episode)
    costs: TickCosts  # the tick's cost breakdown (envs.sim.costs)


def step_reward(params: HostParams, vm: np.ndarray, host: np.ndarray) -> StepReward:
    """The reward of the tick whose counters are ``vm`` (B, V, NV) and ``host`` (B, NH).

    ``reward = −mean over VMs of stall_frac − w_guest_oom · guest OOM kills
    − w_host_oom · host OOM``, with ``stall_frac = stall µs / (vcpus · tick µs)``
    (``envs.sim.costs.tick_costs``; one vCPU in v0); each stall component's share of
    the first part and the two penalties are the named ``terms`` (negative, in reward
    units).

    On a closed-loop host (``HostParams.closed_loop``, docs/model.md §13.5) the stall part
    is the time each VM lost, ``TickCosts.loop_stall_frac`` (uncapped: a batch that waits
    five ticks costs five ticks, the ticks the VM then issues nothing in cost nothing more),
    with the components scaled to sum to it. The capped ``stall_frac`` would charge at
    most one tick for a five-tick wait, so a policy that made a VM thrash would pay less
    the longer the VM waited. With the lost time, an episode's stall part is the work the
    VMs did not do: ``Σ_t s_i(t) = T − batches issued − final credit``.

    Per-VM reward (``vm_reward``, (B, V)): VM ``i``'s own part of the same formula,
    ``r_i = −s_i − V · w_guest_oom · guest_oom_kills_i − w_host_oom · host_oom``, with
    ``s_i`` its stall part above (``stall_frac``, or ``loop_stall_frac`` on a closed-loop
    host). ``s_i`` already holds VM ``i``'s own host swap-ins, double paging, false swap
    reads, COW breaks and host minor faults, and its share of the host's synchronous
    reclaim (by the frames it took: ``envs.sim.costs``), so each host-level stall is
    charged to the VM that waited for it. A guest OOM kill is charged to the VM whose
    guest killed (its balloon squeezed it), ``V`` times so that the mean over the VMs
    keeps the host's weight; the host OOM, which ends every VM's episode, is charged in
    full to every VM. So ``mean_i r_i = reward``, up to float rounding.
    """
    costs, tick_us = params.costs, params.tick_us
    tc = tick_costs(params, vm)
    vcpus = np.array([v.vcpus for v in params.vms], dtype=np.float64)
    oom_kills = vm[:, :, VM_INDEX["guest_oom_kills"]].sum(axis=1)
    host_oom = host[:, HOST_INDEX["host_oom"]]
    k = len(STALL_TERMS)
    terms = np.empty((vm.shape[0], len(REWARD_TERMS)), dtype=np.float64)
    # Every stall term at once: the mean over the VMs (the last, contiguous axis) of each
    # component, as one reduction per (env, term) row: the same sums as term by term.
    comps = np.stack([tc.components[name] for name in STALL_TERMS], axis=1)  # (B, T, V)
    stall_frac = tc.stall_frac
    if params.closed_loop:  # the time lost (docstring), each component its share of it
        stall_frac = tc.loop_stall_frac
        lost_us = stall_frac * (tick_us * vcpus)
        scale = np.divide(lost_us, tc.stall_us, out=np.zeros_like(lost_us), where=tc.stall_us > 0)
        comps = comps * scale[:, None, :]
        # A wait with no charged latency (async page faults hide every host swap-in, yet
        # the batch cannot end before the device served the VM's requests: the
        # occupancy floor of loop_stall_frac) is counted as guest major faults' time.
        unexplained = np.where(tc.stall_us > 0, 0.0, lost_us)
        comps[:, STALL_TERMS.index("guest_major_faults")] += unexplained
    terms[:, :k] = 0.0 - (comps / vcpus).mean(axis=2) / tick_us
    terms[:, k] = 0.0 - costs.w_guest_oom * oom_kills
    terms[:, k + 1] = 0.0 - costs.w_host_oom * host_oom
    V = vm.shape[1]
    vm_reward = (
        0.0
        - stall_frac
        - (V * costs.w_guest_oom) * vm[:, :, VM_INDEX["guest_oom_kills"]]
        - (costs.w_host_oom * host_oom)[:, None]
    )
    reward = (
        0.0
        - stall_frac.mean(axis=1)
        - costs.w_guest_oom * oom_kills
        - costs.w_host_oom * host_oom
    )
    return StepReward(
        reward=reward,
        terms={n: terms[:, j].copy() for j, n in enumerate(REWARD_TERMS)},
        stall_us=tc.stall_us,
        vm_reward=vm_reward,
        host_oom=host_oom,
        costs=tc,
    )
