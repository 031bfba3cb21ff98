"""The single-host Gymnasium env ``reclaim/Balloon-v0/-v1/-v2``: a thin adapter over
EnvBatch."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from envs.env_batch import (
    ACTION_MODES,
    ALL_ACTION_MODES,
    RENDER_MODES,
    EnvBatch,
    EnvConfig,
    action_size,
    check_render_mode,
    check_seed,
    info_row,
    make_config,
    observation_names,
    observation_size,
)
from envs.scenarios import DEFAULT_SCENARIO


def observation_space(config: EnvConfig) -> spaces.Box:
    n = observation_size(config.num_vms, config.obs_version)
    return spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32)


def action_space(config: EnvConfig) -> spaces.Space:
    V = config.num_vms
    if config.action_mode == "discrete":
        return spaces.MultiDiscrete(np.full(V, 3, dtype=np.int64))
    n = action_size(V, config.action_mode)
    return spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)


class BalloonEnv(gym.Env):
    """One overcommitted host; each step the agent sets a balloon target per VM.

    ## Description

    A host runs ``V`` VMs whose memory adds up to more than the host has (the scenario's
    overcommit ratio). The host reclaims memory by swapping guest pages blindly (ESX
    random or LRU), by deduplication (KSM) and, under the agent's control, by ballooning:
    the balloon in VM ``i`` takes guest pages that the guest chooses by its own LRU. The
    agent's job is to balance balloons so that the host never has to swap blindly, while
    no guest is squeezed below its working set. Dynamics: ``docs/model.md`` and
    ``envs/sim/SEMANTICS.md``; one step is one tick of ``tick_ms`` (default 1 s), or, with
    a decision period (``decision_period_s``; ``reclaim/Balloon-v2``: 1 s), ``k =
    decision_period_s · 1000 / tick_ms`` ticks with the same action (see Decision Period).

    ## Action Space

    ``action_mode="absolute"`` (default): ``Box(-1, 1, (V,), float32)``; VM ``i``'s balloon
    target is ``round((a_i + 1) / 2 · max_balloon_pages_i)`` pages (``max_balloon_pages =
    guest_pages − kernel_pages − guest_reserve_pages``), so −1 asks for no balloon and
    +1 for the largest one. ``action_mode="delta"``: same Box; target = current balloon +
    ``round(a_i · balloon_rate_pages)``. ``action_mode="discrete"``: ``MultiDiscrete([3] *
    V)``; 0 deflates, 1 holds, 2 inflates by ``balloon_rate_pages``. Rounding is numpy's
    ``rint`` (half to even). The balloon then moves toward its target by at most
    ``balloon_rate_pages`` per tick (docs/model.md §4.2).

    ``action_mode="absolute-hold"``: ``Box(-1, 1, (2·V,), float32)``; entries ``0 … V−1``
    are absolute targets as in ``absolute``, entry ``V + i`` is VM ``i``'s hold flag: if
    it is > 0, VM ``i`` keeps its current target (the last tick's ``balloon_target``; 0
    after a reset) and its target entry is ignored. A flat Box (not ``(V, 2)``) so that
    every Gymnasium and SB3 policy takes it as is.

    Holding by a dead-band, ``hold_deadband=f`` (``absolute`` and ``absolute-hold``; 0,
    the default, is off; ``f`` in [0, 1)): VM ``i``'s target changes only if the new one,
    clipped to ``[0, max_balloon_pages_i]``, differs from its current target by more than
    ``f · max_balloon_pages_i`` pages; otherwise the current target is kept. Both rules
    apply at every tick (with a decision period, each tick of the step re-applies them
    to the same action).

    Bad actions: a wrong shape, a non-numeric dtype (or non-integer in discrete mode),
    NaN or ±inf, or a discrete value outside {0, 1, 2} raise ``ValueError``. A finite Box
    action outside [−1, 1] is clipped to [−1, 1] after validation, and the simulator
    clips every target to ``[0, max_balloon_pages]`` (docs/model.md §4.2).

    ## Observation Space

    ``Box(0, 1, (13 · V + 4,), float32)``: one 13-feature block per VM (VM ``i`` at
    indices ``13·i … 13·i + 12``), then a 4-feature host block. Only what a real host can
    see (virtio-balloon stats, host, KSM and PSI-like counters of the last tick; docs/model.md
    §7), never the workload's future nor the guest LRU. ``M`` = the VM's guest pages,
    ``R`` = its workload's largest ``refs_per_tick`` (at least 1), ``rate`` =
    ``balloon_rate_pages``. Every feature is clipped to [0, 1]; only the two marked ones
    can actually leave it. :func:`envs.env_batch.observation_names` names every index.
    ``ws_estimate`` is ESX's working-set sample: a fixed random sample of GPPs per period
    of ``ws_sample_period_ticks`` (30 s), the share touched since the period began.

    | index | feature | definition (unit) | range |
    |---|---|---|---|
    | 13i+0 | balloon_frac | balloon_pages / M | [0, 1] |
    | 13i+1 | balloon_target_frac | balloon target (after the clip) / M | [0, 1] |
    | 13i+2 | guest_free_frac | guest free pages / M | [0, 1] |
    | 13i+3 | guest_available_frac | (free + page-cache pages) / M | [0, 1] |
    | 13i+4 | guest_cache_frac | page-cache (resident file) pages / M | [0, 1] |
    | 13i+5 | major_fault_rate | guest major faults this tick / R | [0, 1] |
    | 13i+6 | minor_fault_rate | guest minor faults this tick / R | [0, 1] |
    | 13i+7 | guest_swapin_rate | guest swap-ins this tick / R | [0, 1] |
    | 13i+8 | guest_swapout_rate | guest swap-outs this tick / (R + rate) | [0, 1] |
    | 13i+9 | host_swapped_frac | GPPs of the VM on host swap / M | [0, 1] |
    | 13i+10 | host_swapin_rate | host swap-ins this tick / R | [0, 1] |
    | 13i+11 | ws_estimate | sampled GPPs touched this period / ws_sample_pages (ESX) | [0, 1] |
    | 13i+12 | stall_frac | stall_us / (vcpus · tick_us), **clipped** at 1 (PSI-like) | [0, 1] |
    | 13V+0 | host_free_frac | host free frames / host_frames, **clipped** at 0 (OOM) | [0, 1] |
    | 13V+1 | host_swap_used_frac | host swap slots used / host_swap_pages | [0, 1] |
    | 13V+2 | shared_frames_frac | KSM shared frames / host_frames | [0, 1] |
    | 13V+3 | time_left_frac | (max_episode_steps − steps taken) / max_episode_steps | [0, 1] |

    At reset the observation is that of tick 0: no balloon, every non-kernel page free,
    no events, time left 1.

    **Observation v2** (``obs_version=2``; ``reclaim/Balloon-v2``): ``Box(0, 1, (20 · V +
    5,), float32)``: the whole v1 vector above (indices ``0 … 13V+3``, unchanged, so every
    v1 reader works on v2's prefix), then a 7-feature block per VM (VM ``i`` at ``13V + 4
    + 7i … 13V + 10 + 7i``), then one more host feature. These are the host-visible gauges
    that a registered heuristic reads (``agents/heuristics.py`` ``info_keys`` /
    ``host_info_keys``) and v1 lacks (``host_swapped_pages`` is v1's
    ``host_swapped_frac``, ``host_free_frames`` v1's ``host_free_frac``, ``balloon_pages``
    v1's ``balloon_frac``), plus the guest's swap capacity and its OOM kills.
    ``S`` = the VM's ``guest_swap_pages`` (0: a swapless guest).

    | index | feature | definition (unit) | range |
    |---|---|---|---|
    | 13V+4+7i+0 | guest_used_frac | guest used (anonymous, resident) pages / M | [0, 1] |
    | 13V+4+7i+1 | committed_frac | committed (resident + swapped) / M, **clipped** at 1 | [0, 1] |
    | 13V+4+7i+2 | guest_swap_used_frac | guest swap slots used / S (0 if S = 0) | [0, 1] |
    | 13V+4+7i+3 | guest_swap_capacity_frac | S / (M + S): 0 without swap, 0.5 for S = M | [0, 1) |
    | 13V+4+7i+4 | host_resident_frac | GPPs backed by a host frame / M | [0, 1] |
    | 13V+4+7i+5 | host_shared_frac | GPPs on a KSM-shared frame / M | [0, 1] |
    | 13V+4+7i+6 | guest_oom_kill | guest OOM kills of the last tick, **clipped** at 1 | {0, 1} |
    | 20V+4 | ksm_saved_frac | frames KSM saves (sharing_saved_frames) / host_frames | [0, 1] |

    With a decision period every feature is that of the step's last tick (rates are per
    tick, not per step), and ``time_left_frac`` counts ticks.

    ## Rewards

    ``r = −mean_i(stall_us[i] / (vcpus_i · tick_us)) − w_guest_oom · Σ_i guest_oom_kills[i] −
    w_host_oom · host_oom`` (docs/model.md §6; the stall fraction is not clipped here), with
    ``stall_us[i] = Σ_k latency_k · count_k[i]`` (``envs.sim.costs``, which also gives the
    v1 rules: device latency, overlap and async PF, readahead I/Os, scale ``page_kib/4``).
    With a decision period the step's reward is the sum of its ticks' rewards. Each term
    is reported on its own in ``info["reward_terms"]`` (summed over the step's ticks);
    they sum to the reward (up to float rounding):

    | term | count | latency / weight (CostParams, default) |
    |---|---|---|
    | guest_major_faults | guest major faults | guest_major_us (100 µs) |
    | guest_minor_faults | guest minor faults (zero fill) | guest_minor_us (0.5 µs) |
    | host_swapins | host swap-ins | host_swapin_us + exit_us (101 µs) |
    | double_paging | double paging | host_swapin_us + exit_us + guest_write_us (201 µs) |
    | false_swap_reads | false swap reads | false_read_us + exit_us (101 µs) |
    | cow_breaks | COW breaks | cow_us + exit_us (3 µs) |
    | host_minor_faults | host minor faults | host_minor_us + exit_us + host_zero_us_per_page (2) |
    | balloon_op | pages inflated + deflated | balloon_us_per_page (0 µs; v1 2.25 µs) |
    | reclaim_stall | host swap-outs, by frame demand (sync_reclaim) | device write latency (off) |
    | guest_oom_kills | Σ_i guest OOM kills | w_guest_oom (10) |
    | host_oom | host OOM (0/1) | w_host_oom (1000) |

    Stall terms are ``−mean_i(latency · count_i / vcpus_i) / tick_us``; OOM terms
    ``−weight · count``. The latencies shown are the v0 defaults; under the ``-v1``
    scenarios' physics (docs/model.md §12) reads and writes take the device's queue
    latency, host swap-ins block the vCPU, and every per-page cost is × ``page_kib / 4``.

    ## Info

    Every step: ``info["vm"][name]`` a (V,) int64 array for every per-VM counter and gauge
    of ``envs.sim.counters.VM_FIELDS`` (docs/model.md §5), ``info["host"][name]`` an int for
    every ``HOST_FIELDS`` counter, ``info["stall_us"]`` (V,) float64,
    ``info["reward_terms"][term]`` floats, ``info["vm_reward"]`` (V,) float64 (each VM's
    own reward, whose mean over the VMs is the reward: ``envs.reward.step_reward``), the
    cost model's outputs
    ``info["stall_components_us"][term]`` (V,) (one per stall term),
    ``info["reclaim_stall_us"]`` and ``info["balloon_op_us"]`` (V,), and the host device's
    ``info["device_busy_frac"]``, ``info["device_read_latency_us"]`` and
    ``info["device_write_latency_us"]`` floats. Reset: ``info["vm"]`` and ``info["host"]`` at
    tick 0. At the last step of an episode, ``info["episode_summary"]``: ``return``,
    ``length``, ``host_oom``, ``seed`` (the simulator seed of the episode),
    ``stall_us`` (V,) and ``totals[event]`` (V,) summed over the episode for every event
    counter (``VM_EVENTS``); ``length`` counts ticks.

    With a decision period (``k > 1`` ticks per step) ``info`` is the step's last tick's
    (counters, gauges, stall, cost outputs: the events of that tick only), except
    ``reward_terms`` and ``vm_reward`` (summed, above); in addition ``info["ticks"]``
    (int, the ticks this step ran: ``k``, or fewer when the episode ended inside it) and
    ``info["step_totals"][event]`` (V,) (each ``VM_EVENTS`` counter summed over the step's
    ticks).

    ## Starting State

    Every VM boots with its kernel resident and all other guest pages free and unbacked;
    the workload starts allocating and referencing pages on the first step. The
    workload's reference stream depends only on the scenario and the seed.

    ## Episode End

    Terminated when the host runs out of memory (``host_oom``: host swap full, or too few
    pages left to swap out; docs/model.md §4.5). Truncated
    after ``max_episode_steps`` steps (the scenario's, unless overridden); a host OOM on
    the last step counts as terminated, not truncated.

    ## Decision Period

    ``decision_period_s`` (seconds; default None = one tick per step; ``reclaim/Balloon-v2``:
    ``envs.BALLOON_V2_DECISION_PERIOD_S`` = 1) must be a positive whole multiple of the tick
    (``tick_ms / 1000`` s), else ``ValueError`` naming the field. One step is one decision:
    the action is applied on each of the next ``k = decision_period_s · 1000 / tick_ms``
    ticks, as frame-skip does (targets are recomputed each tick from the same action, so
    ``delta`` and ``discrete`` actions move the balloon on every tick), and the rewards
    are summed. The result equals a one-tick env stepped ``k`` times with that action.
    An episode that ends inside the ``k`` ticks ends the step there (terminated or
    truncated, the reward summed so far, the observation and info of its last tick).

    The episode length stays in ticks: ``max_episode_steps`` (the option, and the
    scenario's) counts ticks, so an episode has ``ceil(max_episode_steps / k)`` steps
    (``config.max_decisions``), the last one shorter when ``k`` does not divide it.

    ## Arguments

    ``gymnasium.make("reclaim/Balloon-v1", scenario="default-v1", action_mode="absolute",
    render_mode=None, **overrides)`` (``reclaim/Balloon-v0`` defaults to ``default-v0``; the
    physics is the scenario's). ``overrides``: any :class:`HostParams` field
    (``host_policy="lru"``, ``ksm_pages_per_tick=0``, ...) or :class:`CostParams` field
    (latencies, ``w_guest_oom``, ``w_host_oom``), applied with ``dataclasses.replace``.
    ``max_episode_steps`` is an env option when constructing ``BalloonEnv`` directly or
    through ``gymnasium.make_vec``; note that ``gymnasium.make(..., max_episode_steps=N)``
    is consumed by gymnasium itself, which adds a ``TimeLimit`` wrapper outside the env
    (the env's ``time_left_frac`` and ``episode_summary`` then keep the scenario's
    length). Unknown keys, an unknown scenario or action mode raise ``ValueError`` listing
    what is allowed. Seeding: ``reset(seed=s)`` runs the episode with simulator seed ``s``;
    later ``reset()`` calls draw the next simulator seed from the env's ``np_random``.
    ``render_mode``: ``"ansi"`` (a per-VM table) or ``"rgb_array"`` (a memory map).
    ``obs_version`` (1 or 2, default 1), ``decision_period_s`` (default None: one tick) and
    ``hold_deadband`` (default 0: off) are the agent-interface options of Balloon-v2 (above);
    ``reclaim/Balloon-v2`` sets ``obs_version=2, decision_period_s=1, hold_deadband=0.05``
    (chosen by measurement: experiments/results/interface-v2) and takes any of them as
    keywords (``gymnasium.make("reclaim/Balloon-v2", decision_period_s=5)``).

    ## Version History

    * v0: initial version (simulator semantics v0).
    * v1: the physics of the ``-v1`` scenarios (``envs.physics.with_v1_physics``;
      docs/model.md §12): a storage device with a queue, synchronous host reclaim, vCPU
      blocking, blind ``random`` host paging, free page reporting off, balloon and
      zeroing costs, 1 MiB pages. The reward terms gain ``balloon_op`` and
      ``reclaim_stall``; the stall comes from ``envs/sim/costs.py`` (v0 parameters give
      v0's stall bit for bit), capped at each VM's time. ``reclaim/Balloon-v1`` starts on
      ``default-v1``.
    * v2: the agent interface (issue #23), same physics as v1 (default scenario
      ``default-v1``; scenarios keep their physics suffix). Observation v2: v1 followed by
      every host-visible gauge a registered heuristic reads (committed, guest used, guest
      swap used and capacity, host-resident and shared pages, guest OOM kills; KSM
      savings), ``20·V + 5`` features. One step is one decision of ``decision_period_s =
      5`` s (5 ticks), rewards summed. New options, off by default: ``hold_deadband`` and
      ``action_mode="absolute-hold"``. v0 and v1 are unchanged (observation v1, one tick
      per step).
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}
    _spec: EnvSpec | None = None

    @property
    def spec(self) -> EnvSpec | None:
        """The env's spec, as ``gymnasium.make`` assigns it, carrying this env's own episode
        limit in steps (``max_episode_steps``: the scenario's length, or the one given,
        counted in decisions): the registered specs carry none (envs/__init__.py says why)."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None and value.max_episode_steps is None:
            value = dataclasses.replace(value, max_episode_steps=self.config.max_decisions)
        self._spec = value

    def __init__(
        self,
        scenario: str = DEFAULT_SCENARIO,
        *,
        max_episode_steps: int | None = None,
        action_mode: str = "absolute",
        render_mode: str | None = None,
        obs_version: int = 1,
        decision_period_s: float | None = None,
        hold_deadband: float = 0.0,
        **overrides: Any,
    ) -> None:
        check_render_mode(render_mode)
        self.config = make_config(
            scenario,
            max_episode_steps=max_episode_steps,
            action_mode=action_mode,
            obs_version=obs_version,
            decision_period_s=decision_period_s,
            hold_deadband=hold_deadband,
            **overrides,
        )
        self.render_mode = render_mode
        self.core = EnvBatch(self.config, 1)
        self.observation_space = observation_space(self.config)
        self.action_space = action_space(self.config)

    @property
    def params(self):
        return self.config.params

    @property
    def observation_names(self) -> list[str]:
        return observation_names(self.config.num_vms, self.config.obs_version)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        seed = check_seed(seed)  # a Python int: gymnasium rejects numpy integers
        super().reset(seed=seed)
        obs = self.core.reset([seed])
        self._np_random = self.core.rngs[0]  # one generator: env.np_random draws the seeds
        return obs[0], info_row(self.core.reset_info(), 0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action)
        n = action_size(self.config.num_vms, self.config.action_mode)
        if a.shape != (n,):
            per = "one per VM" if n == self.config.num_vms else "targets, then hold flags"
            raise ValueError(f"action must have shape ({n},) ({per}), got {a.shape}")
        out = self.core.step(a[None])
        info = info_row(out.info, 0)
        if out.done[0]:
            info["episode_summary"] = info_row(out.summary, 0)
        return (
            out.obs[0],
            float(out.reward[0]),
            bool(out.terminated[0]),
            bool(out.truncated[0]),
            info,
        )

    def render(self) -> Any:
        return self.core.render(self.render_mode, 0)


__all__ = ["ACTION_MODES", "ALL_ACTION_MODES", "BalloonEnv", "action_space", "observation_space"]
