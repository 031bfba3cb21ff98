"""The policy registry: every policy by name, and :func:`make_policy` ``(name, env)``.

The protocol and the base class are in :mod:`agents.base`; the simplest baselines in
:mod:`agents.baselines`, the heuristics in :mod:`agents.heuristics`, the oracle in
:mod:`agents.oracle`, trained runs of every learning method through the loader registry
of :mod:`agents.learners`. :data:`POLICY_NAMES`
and :data:`HEURISTIC_NAMES` are derived from :data:`REGISTRY`.

Tuned heuristics. Every heuristic whose constants a finished ``reclaim tune --policy
<name>`` study searched on the train split (committed in ``agents/tuned_heuristics.json``,
:mod:`agents.tuned`) is registered as ``<name>-tuned`` after the stock rules
(:data:`TUNED_NAMES`): any command takes them by name (``reclaim evaluate --policies
esx-tuned``, ``reclaim compare --baselines ...``). :data:`HEURISTIC_NAMES` stays the
stock rules with their published constants, the list every v1 result was made with:
``reclaim compare``'s default baselines, :class:`RegistryOracle`'s candidates, the
headroom's best heuristic, the heuristic features and ``reclaim ablate``'s reference, so
committed results keep their meaning. The tuned rules join those where a new benchmark
is measured anew (headline v2). Building a policy for an
env it cannot drive (an action mode it does not support, an env without the info it
reads, an oracle without a simulator) raises ``ValueError`` before any step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.base import BalloonTargetPolicy, ObservationView, Policy, ticks_for, unwrap_env
from agents.baselines import NoBalloonPolicy, RandomPolicy, StaticPartitionPolicy
from agents.heuristics import EsxPolicy, HyperVPolicy, MomPolicy, MrcPolicy, SelfBalloonPolicy
from agents.oracle import OraclePolicy, plan_candidates
from agents.residual import ResidualPolicy
from agents.tuned import tuned_registry


class RegistryOracle(OraclePolicy):
    """The oracle over the allocation plans and every heuristic of the registry
    (:data:`HEURISTIC_NAMES`, no-balloon included): so no baseline beats it."""

    def __init__(self, env: Any) -> None:
        super().__init__(env, {**plan_candidates(), **{n: REGISTRY[n] for n in HEURISTIC_NAMES}})


_TUNED = tuned_registry()
REGISTRY: dict[str, Callable[[Any], Policy]] = {
    NoBalloonPolicy.name: NoBalloonPolicy,
    StaticPartitionPolicy.name: StaticPartitionPolicy,
    EsxPolicy.name: EsxPolicy,
    MomPolicy.name: MomPolicy,
    SelfBalloonPolicy.name: SelfBalloonPolicy,
    HyperVPolicy.name: HyperVPolicy,
    MrcPolicy.name: MrcPolicy,
    **_TUNED,  # <name>-tuned(-v2): the committed tuned constants (agents.tuned)
    RegistryOracle.name: RegistryOracle,
    RandomPolicy.name: RandomPolicy,
}
POLICY_NAMES: tuple[str, ...] = tuple(REGISTRY)
# Deployable rules of the literature: not the oracle (hindsight) nor random actions.
# With their published constants: the v1 list (no <name>-tuned).
# The same rules with their constants tuned on a train split (agents.tuned): <name>-tuned
# on v1's, <name>-tuned-v2 on v2's.
TUNED_NAMES: tuple[str, ...] = tuple(n for n in REGISTRY if n in _TUNED)
HEURISTIC_NAMES: tuple[str, ...] = tuple(
    n for n in REGISTRY if n not in (OraclePolicy.name, RandomPolicy.name, *TUNED_NAMES)
)


def is_run_path(name: str) -> bool:
    """Whether ``name`` names a trained run rather than a policy of the registry: a model
    ``.zip`` path, or a directory (a run directory of any learning method)."""
    return name not in REGISTRY and (name.endswith(".zip") or Path(name).is_dir())


def load_model_policy(path: str, env: Any = None) -> Policy:
    """A trained run of any learning method (its run directory, or a model file in it)
    as a policy for ``env``, through the loader registry :func:`agents.learners.load_policy`
    (the run's method is read from its ``config.json``; torch is imported only by the
    methods that need it)."""
    from agents.learners import load_policy

    return load_policy(path, env)


def over_env(policy: Any, env: Any) -> Any:
    """``policy`` ready to drive ``env``: a trained policy of a residual run
    (``policy.residual`` = (heuristic, scale)) gets its heuristic, built for ``env``, as a
    :class:`agents.residual.ResidualPolicy`; any other policy is returned as it is."""
    residual = getattr(policy, "residual", None)
    if residual is None:
        return policy

    base, scale = residual
    return ResidualPolicy(make_policy(base, env), policy, scale)


def check_residual(residual: str | None, scale: float, action_mode: str) -> None:
    """ValueError unless ``residual`` is None or a heuristic, with absolute actions and a
    scale in (0, 2]."""
    if residual is None:
        return
    if residual not in HEURISTIC_NAMES:
        raise ValueError(f"residual must be one of {list(HEURISTIC_NAMES)}, got {residual!r}")
    if action_mode != "absolute":
        raise ValueError(f"residual needs action_mode 'absolute', got {action_mode!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 2:
        raise ValueError(f"residual_scale must be in (0, 2], got {scale!r}")


def check_policy_name(name: str) -> None:
    """ValueError for a name that is neither a policy of the registry nor a trained run
    (:func:`is_run_path`); it suggests the closest names, else lists them all."""
    if name not in REGISTRY and not is_run_path(name):
        from envs.scenarios import did_you_mean

        hint = did_you_mean(str(name), POLICY_NAMES) or f"valid names: {', '.join(POLICY_NAMES)} "
        raise ValueError(
            f"unknown policy {name!r}; {hint}(or a trained run's directory or model .zip path)"
        )


def make_policy(name: str, env: Any) -> Policy:
    """Build policy ``name`` for ``env``: a ``BalloonVectorEnv`` or ``BalloonEnv``, bare or
    as ``gym.make`` / ``gym.make_vec`` return it (wrappers that keep the observation and
    action spaces are looked through, :func:`agents.base.unwrap_env`).

    ``name`` is one of :data:`POLICY_NAMES`, or a trained run of any learning method: its
    run directory or a model ``.zip`` in it (:func:`load_model_policy`, through the
    loader registry of :mod:`agents.learners`). Raises ``ValueError`` listing the valid names
    for an unknown name, and ``ValueError`` when the policy cannot drive this env.
    """
    check_policy_name(name)
    env = unwrap_env(env)
    if is_run_path(name):
        return load_model_policy(name, env)
    return REGISTRY[name](env)


__all__ = [
    "HEURISTIC_NAMES",
    "POLICY_NAMES",
    "REGISTRY",
    "BalloonTargetPolicy",
    "NoBalloonPolicy",
    "ObservationView",
    "Policy",
    "RegistryOracle",
    "RandomPolicy",
    "StaticPartitionPolicy",
    "TUNED_NAMES",
    "check_policy_name",
    "check_residual",
    "is_run_path",
    "load_model_policy",
    "make_policy",
    "over_env",
    "ticks_for",
    "unwrap_env",
]
