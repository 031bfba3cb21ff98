"""Balloon policies over the native vector env: the protocol and the base class.

A policy drives every env of a :class:`~envs.vector_env.BalloonVectorEnv` at once:
``reset(seed)`` once after ``env.reset``, then each step ``act(obs, info)`` with the
(B, D) observation and the vector env's info dict, returning (B, V) actions in the env's
action space (float32 in ``absolute`` / ``delta`` mode, int64 in ``discrete`` mode).

Most policies decide a **balloon target in pages** per VM;
:class:`BalloonTargetPolicy` turns targets into actions for every action mode
(``absolute``: ``a = 2·target / max_balloon − 1``; ``delta``: ``a = (target − balloon) /
balloon_rate``; ``discrete``: the ±``balloon_rate`` step nearest the target), holds them
between decisions (each policy has its own period, mapped from seconds to ticks with
``params.tick_ms``), and restarts its per-env state when an env starts a new episode
(``time_left_frac == 1`` in the observation, as after a reset or an autoreset).

Clocks count ticks, not steps. On an env whose step is ``k`` ticks (a decision period,
``reclaim/Balloon-v2``) a policy sees every ``k``-th tick and is the same rule decided
every ``k`` ticks: it decides at the first step at or after each multiple of its period
(every step when the period is shorter than ``k``), and its other clocks (ESX's
working-set sampling period) advance ``k`` ticks per step (:meth:`BalloonTargetPolicy.crossed`).
When ``k`` divides the rule's periods it decides and updates at exactly the ticks it
would on a one-tick env (``tests/agents/test_policies.py`` checks it on ESX).

What a policy may read. Heuristics read only what a real host sees: the observation
(docs/model.md §7) and the host-visible gauges of ``info["vm"]`` / ``info["host"]`` that each
one lists in ``info_keys`` / ``host_info_keys`` (balloon size, guest free / committed /
swap-used pages from the guest agent or virtio-balloon stats, host-side resident /
swapped / shared pages, host free frames and KSM savings). Only the oracle
(:mod:`agents.oracle`) and its teacher (:mod:`agents.teacher`) read the simulator state
and the workload's future, through the read-only ``Simulator.privileged_view()``, and
they are not deployable.

Building a policy for an env it cannot drive (an action mode it does not support, an env
whose info lacks a gauge the policy lists) raises ``ValueError`` before any step. An env
names the gauges of its info in ``info_vm_keys`` / ``info_host_keys``; the ReclaimGym envs
(which do not set them) report every counter of ``envs.sim.counters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from envs.env_batch import ACTION_MODES, HOST_FEATURES, VM_FEATURES, observation_size
from envs.sim.counters import HOST_FIELDS, VM_FIELDS

_NVF = len(VM_FEATURES)
_VF = {name: i for i, name in enumerate(VM_FEATURES)}
_HF = {name: i for i, name in enumerate(HOST_FEATURES)}


@runtime_checkable
class Policy(Protocol):
    """What the evaluation harness needs from a policy (batched over the envs)."""

    name: str
    action_modes: tuple[str, ...]

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray: ...


def unwrap_env(env: Any) -> Any:
    """The ReclaimGym env under ``env``'s wrappers: ``env`` itself when it has a
    ``.config`` (a ``BalloonEnv`` or ``BalloonVectorEnv``), else the first env down the
    ``.env`` chain that has one (Gymnasium's ``Wrapper`` and ``VectorWrapper`` keep the
    wrapped env in ``.env``; ``gym.make`` adds ``OrderEnforcing``, ``PassiveEnvChecker``
    and ``TimeLimit``). When no env down the chain has a config, the innermost one (so
    that the error of the policy names it: ``CartPoleEnv``, not ``TimeLimit``).

    A policy reads the raw observation and acts in the raw action space, so every
    wrapper on the way must keep both spaces: ``ValueError`` otherwise (a policy over a
    wrapper that rescales observations or actions would act on the wrong numbers)."""
    outer, seen = env, 0
    while getattr(env, "config", None) is None and seen < 64:
        inner = getattr(env, "env", None)
        if inner is None or inner is env:
            return env
        env, seen = inner, seen + 1
    if env is not outer:
        for space in ("observation_space", "action_space"):
            if getattr(outer, space, None) != getattr(env, space, None):
                raise ValueError(
                    f"{type(outer).__name__} changes the {space} of the "
                    f"{type(env).__name__} it wraps: a policy acts on the env's own "
                    "observations and actions, so build it for an env whose wrappers keep "
                    "both spaces"
                )
    return env


def ticks_for(seconds: float, tick_ms: int) -> int:
    """A period in seconds as a whole number of ticks (at least 1)."""
    return max(1, int(round(seconds * 1000.0 / tick_ms)))


class BalloonTargetPolicy:
    """Base class: a policy that sets a balloon target (pages) per VM.

    Subclasses implement :meth:`decide` (the rule) and, if they keep per-env state,
    :meth:`reset_envs`. The base class handles action modes, the decision period, the
    held targets, new-episode detection and the checks on the env.

    Args:
        env: the env to drive: anything with ``config`` (an :class:`envs.env_batch.EnvConfig`)
            and ``num_envs`` (a ``BalloonVectorEnv``; a single ``BalloonEnv`` counts as one
            env, with ``(D,)`` observations and ``(V,)`` actions).
    """

    name = "target"
    action_modes: tuple[str, ...] = ACTION_MODES
    info_keys: tuple[str, ...] = ()  # info["vm"] gauges the rule reads
    host_info_keys: tuple[str, ...] = ()  # info["host"] gauges the rule reads
    period_s: float = 1.0  # seconds between decisions

    def __init__(self, env: Any) -> None:
        env = unwrap_env(env)
        config = getattr(env, "config", None)
        if config is None or not hasattr(config, "params"):
            raise ValueError(
                f"{type(self).__name__} needs a ReclaimGym env (BalloonVectorEnv or "
                f"BalloonEnv) with a .config, got {type(env).__name__}"
            )
        mode = config.action_mode
        if mode not in self.action_modes:
            raise ValueError(
                f"policy {self.name!r} supports action modes {list(self.action_modes)}, "
                f"but the env uses {mode!r}"
            )
        self.check_info(env)
        self.env = env
        self.config = config
        self.params = prm = config.params
        self.action_mode = mode
        self.single = not hasattr(env, "num_envs") or not hasattr(env, "single_action_space")
        self.num_envs = B = 1 if self.single else int(env.num_envs)
        self.num_vms = V = prm.num_vms
        self.M = np.array([v.guest_pages for v in prm.vms], dtype=np.int64)  # (V,)
        self.K = np.array([v.kernel_pages for v in prm.vms], dtype=np.int64)  # (V,)
        self.maxb = np.array([v.max_balloon_pages for v in prm.vms], dtype=np.int64)  # (V,)
        self.refs = np.array(
            [max(1, v.workload.max_refs_per_tick) for v in prm.vms], dtype=np.float64
        )  # (V,) the observation's rate scale R
        self.rate = int(prm.balloon_rate_pages)
        self.H = int(prm.host_frames)
        # Every clock of a rule counts ticks, so that on an env whose step is k ticks
        # (a decision period, Balloon-v2) the rule is the same rule decided every k
        # ticks: it decides at the first step at or after each multiple of its period.
        self.ticks_per_step = int(getattr(config, "ticks_per_step", 1))  # k
        self.period = ticks_for(self.period_s, prm.tick_ms)  # the rule's period in ticks
        # Observation v2 is v1 followed by more features: the rules read the v1 prefix.
        self.obs_size = observation_size(V, getattr(config, "obs_version", 1))
        self._targets = np.zeros((B, V), dtype=np.int64)  # (B, V) held balloon targets
        self._t = np.zeros(B, dtype=np.int64)  # (B,) ticks since the episode started
        self._seed: int | None = None

    # ----------------------------------------------------------------- protocol
    def reset(self, seed: int | None = None) -> None:
        """Forget every env's state (call after ``env.reset``)."""
        self._seed = seed
        self._t[:] = 0
        self._targets[:] = 0
        self.reset_envs(np.ones(self.num_envs, dtype=bool))

    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        obs = np.asarray(obs)
        if self.single:
            obs, info = obs[None], _batch_info(info)
        B, V = self.num_envs, self.num_vms
        if obs.shape != (B, self.obs_size):
            raise ValueError(
                f"{self.name}: observation must have shape ({B}, {self.obs_size}), got {obs.shape}"
            )
        new = obs[:, V * _NVF + _HF["time_left_frac"]] >= 1.0
        if new.any():
            self._t[new] = 0
            self.reset_envs(new)
        view = ObservationView(obs, info, self)
        self.observe(view)
        due = self.crossed(self.period)
        if due.any():
            targets = np.asarray(self.decide(view, due), dtype=np.float64)
            targets = np.clip(np.rint(targets), 0, self.maxb).astype(np.int64)
            self._targets[due] = targets[due]
        self._t += self.ticks_per_step
        actions = self.to_actions(self._targets, view.balloon)
        return actions[0] if self.single else actions

    @property
    def tick(self) -> np.ndarray:
        """(B,) int64: the tick of the observation being acted on (ticks since each env's
        episode started; a copy). Valid in :meth:`observe` and :meth:`decide`."""
        return self._t.copy()

    def crossed(self, period_ticks: int) -> np.ndarray:
        """(B,) bool: a multiple of ``period_ticks`` falls in the ticks the env ran since
        the last observation, ``(t − k, t]`` (``t`` = :attr:`tick`, ``k`` ticks per step),
        or this is an episode's first observation (``t = 0``). With ``k = 1``: ``t %
        period_ticks == 0``; with ``k`` dividing ``period_ticks``: the same ticks."""
        t, k = self._t, self.ticks_per_step
        return (t == 0) | (t // period_ticks > (t - k) // period_ticks)

    @property
    def held_targets(self) -> np.ndarray:
        """(B, V) int64: the balloon targets the rule holds now (pages; a copy), those
        the last :meth:`act` turned into actions."""
        return self._targets.copy()

    def set_held_targets(self, targets: np.ndarray) -> None:
        """Make the rule hold ``targets`` (B, V) pages from now on (clipped to
        ``[0, max_balloon]``), as if its last decision had set them: for a rule run beside
        another policy (a teacher labelling the states a student visits), the env's
        current targets, which rules that hold or only lower their targets start from."""
        t = np.asarray(targets)
        if t.shape != self._targets.shape:
            raise ValueError(f"targets must have shape {self._targets.shape}, got {t.shape}")
        self._targets[:] = np.clip(t, 0, self.maxb)

    # ----------------------------------------------------------------- to override
    def reset_envs(self, mask: np.ndarray) -> None:
        """Reset the per-env state of the envs in ``mask`` (B,) bool."""

    def observe(self, obs: ObservationView) -> None:
        """Called every step (before :meth:`decide`) to update running statistics."""

    def decide(self, obs: ObservationView, due: np.ndarray) -> np.ndarray:
        """(B, V) balloon targets in pages for the envs in ``due`` (other rows ignored)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- helpers
    def to_actions(self, targets: np.ndarray, balloon: np.ndarray) -> np.ndarray:
        """(B, V) balloon targets (pages) as actions of the env's action mode."""
        t = targets.astype(np.float64)
        if self.action_mode == "absolute":
            a = np.where(self.maxb > 0, 2.0 * t / np.maximum(self.maxb, 1) - 1.0, -1.0)
            return np.clip(a, -1.0, 1.0).astype(np.float32)
        d = t - balloon
        if self.action_mode == "delta":
            a = d / self.rate if self.rate > 0 else np.zeros_like(d)
            return np.clip(a, -1.0, 1.0).astype(np.float32)
        half = self.rate / 2.0
        step = np.where(d >= half, 2, np.where(d <= -half, 0, 1))
        if self.rate == 0:
            step[:] = 1
        return step.astype(np.int64)

    def check_info(self, env: Any) -> None:
        """Raise ValueError when ``env``'s info lacks a gauge this policy reads.

        ``env.info_vm_keys`` / ``env.info_host_keys`` name the gauges of its
        ``info["vm"]`` / ``info["host"]``; an env without them (every ReclaimGym env)
        reports all of ``VM_FIELDS`` / ``HOST_FIELDS``."""
        for where, needed, attr, default in (
            ("vm", self.info_keys, "info_vm_keys", VM_FIELDS),
            ("host", self.host_info_keys, "info_host_keys", HOST_FIELDS),
        ):
            given = getattr(env, attr, None)
            provided = set(default if given is None else given)
            missing = [k for k in needed if k not in provided]
            if missing:
                raise ValueError(
                    f"policy {self.name!r} reads info[{where!r}] gauges {missing}, which "
                    f"{type(env).__name__} does not provide (it has {sorted(provided)})"
                )


def _batch_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """Single-env info with a leading batch axis of 1 on every leaf."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        out[k] = _batch_info(v) if isinstance(v, Mapping) else np.asarray(v)[None]
    return out


class ObservationView:
    """Named, typed views of one batched observation and its info (what hosts see)."""

    def __init__(self, obs: np.ndarray, info: Mapping[str, Any], policy: BalloonTargetPolicy):
        B, V = policy.num_envs, policy.num_vms
        self.raw = obs
        self.vm = obs[:, : V * _NVF].reshape(B, V, _NVF).astype(np.float64)  # (B, V, F)
        self.host = obs[:, V * _NVF : V * _NVF + len(HOST_FEATURES)].astype(np.float64)  # (B, 4)
        self.info = info
        self._p = policy
        gauges = info.get("vm", {})
        if "balloon_pages" in gauges:
            self.balloon = np.asarray(gauges["balloon_pages"], dtype=np.int64)  # (B, V)
        else:
            self.balloon = np.rint(self.feature("balloon_frac") * policy.M).astype(np.int64)

    def feature(self, name: str) -> np.ndarray:
        """(B, V) per-VM feature ``name`` of VM_FEATURES."""
        return self.vm[:, :, _VF[name]]

    def host_feature(self, name: str) -> np.ndarray:
        """(B,) host feature ``name`` of HOST_FEATURES."""
        return self.host[:, _HF[name]]

    def gauge(self, name: str) -> np.ndarray:
        """(B, V) int64 per-VM gauge of info["vm"] (host-visible ones only, see info_keys)."""
        try:
            return np.asarray(self.info["vm"][name], dtype=np.int64)
        except KeyError:
            raise ValueError(f"{self._p.name}: info['vm'] has no {name!r}") from None

    def host_gauge(self, name: str) -> np.ndarray:
        """(B,) int64 host gauge of info["host"] (see host_info_keys)."""
        try:
            return np.asarray(self.info["host"][name], dtype=np.int64)
        except KeyError:
            raise ValueError(f"{self._p.name}: info['host'] has no {name!r}") from None

    @property
    def guest_mem(self) -> np.ndarray:
        """(B, V) pages the guest has (configured memory minus balloon)."""
        return self._p.M[None, :] - self.balloon
