"""Replayable episode records (CompilerGym's ``CompilerEnvState`` idea).

A record is (env id, scenario id, parameter overrides, action mode, episode length,
decision period and hold dead-band, seed, actions; one action per env step, i.e. per
decision) plus what the episode produced: every counter of every step and the
return. :func:`validate` rebuilds the env, replays the actions and compares every
counter exactly, reporting the first mismatching step and counter names. Records are
JSON (``save`` / ``load``); ``reclaim replay RECORD`` validates one from the command line.

Integrity: a saved record carries ``digest``, the sha256 of its canonical content (every
other field, as sorted compact JSON). Loading checks every field's type (``ValueError``
naming the field) and then the digest (:class:`RecordDigestError`), so a record that was
edited or cut short is reported as such instead of replaying "OK". A record without a
digest (written before digests existed) loads with a :class:`LegacyRecordWarning`.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs import ENV_ID, ENV_ID_V2, ENV_IDS
from envs.balloon_env import BalloonEnv
from envs.scenarios import DEFAULT_SCENARIO
from envs.sim.counters import HOST_FIELDS, VM_FIELDS
from envs.sim.params import HostParams, params_repr

RECORD_FORMAT = 1
_JSON_SCALARS = (str, int, float, bool, type(None))


def params_digest(params: HostParams) -> str:
    """A short fingerprint of the full parameters (frozen dataclass reprs are stable;
    fields added after v1 count only once set: ``envs.sim.params.params_repr``)."""
    return hashlib.sha256(params_repr(params).encode()).hexdigest()[:16]


class RecordDigestError(Exception):
    """A record whose content does not match its digest (edited or truncated)."""


class LegacyRecordWarning(UserWarning):
    """A record without a digest: its integrity cannot be checked."""


def record_digest(data: dict[str, Any]) -> str:
    """sha256 (hex) of a record's canonical content: every field but ``digest``."""
    content = {k: v for k, v in data.items() if k != "digest"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: object) -> bool:
    return (_is_int(x) or isinstance(x, float)) and math.isfinite(x)  # type: ignore[arg-type]


def _check_list_of_lists(name: str, value: object, ok: Callable[[object], bool], what: str) -> None:
    if not isinstance(value, list):
        raise ValueError(f"record field {name!r} must be a list of lists of {what}, got "
                         f"{type(value).__name__}")  # fmt: skip
    for t, row in enumerate(value):
        if not isinstance(row, list) or not all(ok(x) for x in row):
            raise ValueError(
                f"record field {name!r}: entry {t} must be a list of {what}, got {row!r:.80}"
            )


def check_record_fields(data: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first field of a record dict with a wrong type."""
    required = ("scenario_id", "seed", "actions", "counters", "episode_return")
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"record is missing the fields {missing}")
    for name in ("scenario_id", "action_mode", "params_digest", "env_id", "digest"):
        if name in data and not isinstance(data[name], str):
            raise ValueError(f"record field {name!r} must be a string, got {data[name]!r:.80}")
    if not _is_int(data["seed"]) or data["seed"] < 0:
        raise ValueError(f"record field 'seed' must be an int >= 0, got {data['seed']!r:.80}")
    steps = data.get("max_episode_steps")
    if steps is not None and (not _is_int(steps) or steps < 1):
        raise ValueError(f"record field 'max_episode_steps' must be None or an int >= 1, "
                         f"got {steps!r:.80}")  # fmt: skip
    period = data.get("decision_period_s")
    if period is not None and (not _is_number(period) or period <= 0):
        raise ValueError(f"record field 'decision_period_s' must be None or a number > 0, "
                         f"got {period!r:.80}")  # fmt: skip
    deadband = data.get("hold_deadband", 0.0)
    if not _is_number(deadband) or not 0 <= deadband < 1:
        raise ValueError(f"record field 'hold_deadband' must be a number in [0, 1), "
                         f"got {deadband!r:.80}")  # fmt: skip
    if not _is_number(data["episode_return"]):
        raise ValueError(f"record field 'episode_return' must be a finite number, "
                         f"got {data['episode_return']!r:.80}")  # fmt: skip
    _check_list_of_lists("actions", data["actions"], _is_number, "numbers")
    _check_list_of_lists("counters", data["counters"], _is_int, "ints")
    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict) or not all(
        isinstance(v, _JSON_SCALARS) for v in overrides.values()
    ):
        raise ValueError(f"record field 'overrides' must be an object of JSON scalars, "
                         f"got {overrides!r:.80}")  # fmt: skip


def env_id_for(scenario_id: str) -> str:
    """The env id a record of ``scenario_id`` is labelled with: the first of
    ``envs.ENV_IDS`` whose default scenario has the same version suffix (``default-v1`` →
    ``reclaim/Balloon-v1``), :data:`envs.ENV_ID` for a scenario of no known version.

    Records written before this label existed say ``reclaim/Balloon-v0`` for every
    scenario; they replay all the same, since the scenario id carries the physics."""
    version = scenario_id.rpartition("-")[2]
    for env_id, default in ENV_IDS.items():
        if default.rpartition("-")[2] == version:
            return env_id
    return ENV_ID


def counter_names(num_vms: int) -> list[str]:
    """Names of the columns of :attr:`EpisodeRecord.counters`."""
    names = [f"vm{i}.{f}" for i in range(num_vms) for f in VM_FIELDS]
    return names + [f"host.{f}" for f in HOST_FIELDS]


@dataclass
class EpisodeRecord:
    """One episode, enough to replay it and to check the replay."""

    scenario_id: str
    seed: int  # the simulator seed: reset(seed=seed)
    actions: list[list[float] | list[int]]  # one per step
    counters: list[list[int]]  # per step: V·NV VM counters, then NH host counters (of the
    # step's last tick)
    episode_return: float
    overrides: dict[str, Any] = field(default_factory=dict)  # JSON scalars only
    action_mode: str = "absolute"
    max_episode_steps: int | None = None  # as resolved when recorded (None: the scenario's)
    params_digest: str = ""
    env_id: str = ENV_ID  # set by record_episode: env_id_for(scenario_id)
    format: int = RECORD_FORMAT
    digest: str = field(default="", compare=False)  # sha256 of the content as loaded
    # Env options of the agent interface (Balloon-v2). Written to JSON only when not the
    # default, so a record without them is byte for byte what it was before they existed
    # (and older records replay as before).
    decision_period_s: float | None = None  # seconds per step; None: one tick
    hold_deadband: float = 0.0

    def to_json(self) -> str:
        """The record as JSON, sealed with the digest of its current content."""
        data = asdict(self)
        for name, default in _OPTIONAL_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        data["digest"] = record_digest(data)
        return json.dumps(data, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> EpisodeRecord:
        """Parse and check a record: ``ValueError`` for malformed content (naming the
        field), :class:`RecordDigestError` when the content does not match its digest."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("an episode record must be a JSON object")
        if data.get("format") != RECORD_FORMAT:
            raise ValueError(
                f"unsupported record format {data.get('format')!r} (expected {RECORD_FORMAT})"
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown record fields {unknown}; known: {sorted(known)}")
        check_record_fields(data)
        if not data.get("digest"):
            warnings.warn(
                "record has no digest (written before digests existed): its integrity is "
                "not checked",
                LegacyRecordWarning,
                stacklevel=2,
            )
        elif record_digest(data) != data["digest"]:
            raise RecordDigestError(
                f"content does not match its digest (recorded {data['digest'][:16]}..., "
                f"content {record_digest(data)[:16]}...): the record was edited or truncated"
            )
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> EpisodeRecord:
        return cls.from_json(Path(path).read_text())

    def make_env(self) -> BalloonEnv:
        return BalloonEnv(
            self.scenario_id,
            max_episode_steps=self.max_episode_steps,
            action_mode=self.action_mode,
            decision_period_s=self.decision_period_s,
            hold_deadband=self.hold_deadband,
            **self.overrides,
        )


# The record fields omitted from JSON at their default (EpisodeRecord.to_json).
_OPTIONAL_DEFAULTS: dict[str, Any] = {"decision_period_s": None, "hold_deadband": 0.0}


def save(record: EpisodeRecord, path: str | Path) -> Path:
    return record.save(path)


def load(path: str | Path) -> EpisodeRecord:
    return EpisodeRecord.load(path)


def _counter_row(info: dict[str, Any], num_vms: int) -> list[int]:
    vm = np.stack([info["vm"][f] for f in VM_FIELDS], axis=-1)  # (V, NV)
    return [int(x) for x in vm.reshape(-1)] + [int(info["host"][f]) for f in HOST_FIELDS]


def _action_list(action_mode: str, action: Any) -> list:
    a = np.asarray(action)
    if action_mode == "discrete":
        return [int(x) for x in a]
    return [float(x) for x in a.astype(np.float32)]  # float32 values are exact in JSON


class _ActionSource:
    """The actions of :func:`record_episode` as a policy of a one-env batch: the given
    ``actions`` in order, else ``policy(obs)``, else samples of ``space``."""

    def __init__(self, actions: Sequence[Any] | None, policy: Any, space: Any) -> None:
        self.actions, self.policy, self.space = actions, policy, space
        self.t = 0

    def reset(self, seed: int | None = None) -> None:
        self.t = 0

    def act(self, obs: np.ndarray, info: Any) -> np.ndarray:
        if self.actions is not None:
            a = self.actions[self.t]
        elif self.policy is not None:
            a = self.policy(obs[0])
        else:
            a = self.space.sample()
        self.t += 1
        return np.asarray(a)[None]


def record_episode(
    scenario: str = DEFAULT_SCENARIO,
    *,
    seed: int = 0,
    actions: Sequence[Any] | None = None,
    policy: Callable[[np.ndarray], Any] | None = None,
    max_steps: int | None = None,
    action_mode: str = "absolute",
    max_episode_steps: int | None = None,
    decision_period_s: float | None = None,
    hold_deadband: float = 0.0,
    obs_version: int = 1,
    **overrides: Any,
) -> EpisodeRecord:
    """Run one episode of ``scenario`` and record it, labelled with the env id of the
    scenario's version (:func:`env_id_for`: ``reclaim/Balloon-v1`` for a ``-v1`` scenario).

    Actions come from ``actions`` (until they run out or the episode ends), else from
    ``policy(obs)``, else from the action space sampled with ``seed``. ``max_steps``
    stops early (steps are decisions: ``decision_period_s`` / tick ticks each).
    ``obs_version`` is what ``policy`` sees (the replay needs only the actions, so it is
    not recorded). ``overrides`` must be JSON scalars (str, int, float, bool, None).
    """
    from envs.env_batch import info_row
    from envs.rollout import rollout_steps
    from envs.vector_env import BalloonVectorEnv

    if actions is not None and policy is not None:
        raise ValueError("give actions or policy, not both")
    bad = sorted(k for k, v in overrides.items() if not isinstance(v, _JSON_SCALARS))
    if bad:
        raise ValueError(f"record overrides must be JSON scalars; not: {bad}")
    interface = {"max_episode_steps": max_episode_steps, "action_mode": action_mode,
                 "obs_version": obs_version, "decision_period_s": decision_period_s,
                 "hold_deadband": hold_deadband}  # fmt: skip
    env = BalloonVectorEnv(1, scenario, **interface, **overrides)
    rec = EpisodeRecord(
        scenario_id=scenario,
        seed=seed,
        actions=[],
        counters=[],
        episode_return=0.0,
        overrides=dict(overrides),
        action_mode=action_mode,
        # As resolved (not None for the scenario's): the record survives scenario edits.
        max_episode_steps=env.config.max_episode_steps,
        params_digest=params_digest(env.params),
        decision_period_s=env.config.decision_period_s,
        hold_deadband=env.config.hold_deadband,
        # The observation v2 interface is reclaim/Balloon-v2's; otherwise the scenario's.
        env_id=ENV_ID_V2 if obs_version == 2 else env_id_for(scenario),
    )
    space = env.single_action_space
    space.seed(seed)
    limit = len(actions) if actions is not None else None
    if max_steps is not None:
        limit = max_steps if limit is None else min(limit, max_steps)
    ret = 0.0
    if limit is None or limit > 0:
        source = _ActionSource(actions, policy, space)
        for step in rollout_steps(env, source, [seed]):
            rec.actions.append(_action_list(action_mode, step.action[0]))
            rec.counters.append(_counter_row(info_row(step.info, 0), env.config.num_vms))
            ret += float(step.reward[0])
            if step.t == limit:
                break
    rec.episode_return = ret
    return rec


@dataclass(frozen=True)
class Mismatch:
    step: int  # 1-based step (decision; a tick at one tick per step); 0: the configuration
    counter: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return f"step {self.step}: {self.counter}: recorded {self.expected}, replayed {self.actual}"


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of replaying a record; truthy when the replay matched exactly."""

    steps: int  # steps replayed
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def __bool__(self) -> bool:
        return self.ok

    def report(self, limit: int = 20) -> str:
        if self.ok:
            return f"OK: {self.steps} steps replayed, every counter matches"
        first = self.mismatches[0]
        lines = [
            f"MISMATCH: {len(self.mismatches)} difference(s) over {self.steps} steps replayed; "
            f"first at step {first.step} ({first.counter})"
        ]
        lines += [f"  {m}" for m in self.mismatches[:limit]]
        if len(self.mismatches) > limit:
            lines.append(f"  ... and {len(self.mismatches) - limit} more")
        return "\n".join(lines)


def validate(record: EpisodeRecord) -> ValidationResult:
    """Replay ``record`` and compare every counter of every step, and the return, exactly.

    Configuration problems (unknown scenario, changed parameters, bad actions) are
    reported as mismatches at step 0 or at the step where they happen, not raised."""
    mismatches: list[Mismatch] = []
    if record.env_id not in ENV_IDS:
        return ValidationResult(0, (Mismatch(0, "env_id", record.env_id, list(ENV_IDS)),))
    try:
        env = record.make_env()
    except ValueError as e:
        return ValidationResult(0, (Mismatch(0, "config", "a valid configuration", str(e)),))
    digest = params_digest(env.params)
    if record.params_digest and digest != record.params_digest:
        # Parameters changed since recording (a scenario or default was edited): still
        # replay, so the report shows where the counters diverge.
        mismatches.append(Mismatch(0, "params_digest", record.params_digest, digest))
    names = counter_names(env.config.num_vms)
    if len(record.counters) != len(record.actions):
        mismatches.append(Mismatch(0, "len(counters)", len(record.actions), len(record.counters)))
    env.reset(seed=record.seed)
    ret = 0.0
    steps = 0
    dtype = np.int64 if record.action_mode == "discrete" else np.float32
    for t, a in enumerate(record.actions, start=1):
        try:
            _, r, term, trunc, info = env.step(np.asarray(a, dtype=dtype))
        except ValueError as e:
            mismatches.append(Mismatch(t, "action", a, f"rejected: {e}"))
            break
        steps = t
        ret += r
        if t <= len(record.counters):
            got = _counter_row(info, env.config.num_vms)
            want = record.counters[t - 1]
            if len(want) != len(got):
                mismatches.append(Mismatch(t, "len(counters)", len(want), len(got)))
            else:
                for name, w, g in zip(names, want, got, strict=True):
                    if w != g:
                        mismatches.append(Mismatch(t, name, w, g))
        if (term or trunc) and t < len(record.actions):
            mismatches.append(Mismatch(t, "episode_end", "episode continues", "episode ended"))
            break
    if ret != record.episode_return:
        mismatches.append(Mismatch(steps, "episode_return", record.episode_return, ret))
    return ValidationResult(steps, tuple(mismatches))
