"""``reclaim validate``: stylized facts of the literature, checked against the simulator.

Each fact is a function of a :class:`Physics` (the physics version, ``v1`` by default:
``envs.physics.with_v1_physics``, the preset of the ``-v1`` scenarios; ``v2``, the partial
v2 preset ``with_v2_physics``, whose table adds the v2 facts g-k; or ``v0``; the
host policy and any other ``HostParams`` / ``CostParams`` fields to apply) returning a
:class:`FactResult`: the claim, its source, the published figure, the simulated figure,
the pass band and the
verdict. The facts build their hosts directly from ``HostParams`` / ``VmParams`` /
``WorkloadParams`` (small: each runs in a few seconds) and step the vectorized simulator
with fixed balloon targets, so a fact measures the physics, not a policy. Under v1 the
host a fact builds goes through ``envs.physics.with_v1_physics``; the fields of the fact's
measurement protocol that v1 would override (its ``keep``: a KSM rate chosen so that
the savings converge within the fact's ticks, the benchmark's vCPUs and threads, the
variable measured) are then put back, each named with its reason in the fact's note;
``--set`` overrides come last.

Bands follow one rule (docs/design/physics-v1.md, "Pass bands"), written here before any
run and never tuned per fact: a published point ``v`` gets ``[v/1.25, 1.25·v]``, a range
``[a, b]`` gets ``[a/1.25, 1.25·b]``, an inequality is tested with the same factor on its
bound, a qualitative ordering as an ordering. Where the brief of a fact gives a tighter
band (fact a: within 5 %), that band is used. A fact the simulator misses is reported as
missed, with its figures: the band is never loosened.

Modules: ``experiments.fact_harness`` holds the physics, the simulation and the result
row; ``experiments.facts`` the facts and their registry (adding a fact: see there); this
one the table and the command.

Exit status: 0 when the table was computed (missed facts included), 1 with ``--strict``
when a fact is missed, 2 on a user error.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from agents.learners.sb3.train import DEFAULT_IN_HELP
from envs.files import write_json_atomic
from experiments import facts, facts_v2  # noqa: F401  (they register the facts)
from experiments.fact_harness import FACTS, FactResult, Physics
from experiments.user_errors import UserError, split_list


# ------------------------------------------------------------------ the table
def validate(ids: Sequence[str] | None = None, physics: Physics | None = None) -> list[FactResult]:
    """Run the facts ``ids`` (default: those of ``physics.version``'s table, in registry
    order) under ``physics``."""
    physics = Physics() if physics is None else physics
    table = [i for i, f in FACTS.items() if f.applies_to(physics.version)]
    chosen = table if not ids else list(ids)
    for i in chosen:
        if i not in FACTS:
            raise ValueError(f"unknown fact {i!r}; valid: {', '.join(FACTS)}")
    return [FACTS[i].fn(physics) for i in chosen]


def to_text(results: Sequence[FactResult]) -> str:
    """The table as printed: one block per fact."""
    lines = []
    for r in results:
        kind = r.kind if r.counted else f"{r.kind} (not counted)"
        lines += [
            f"[{'PASS' if r.passed else 'MISS'}] {r.fact}",
            f"    kind:      {kind}",
            f"    source:    {r.source}",
            f"    published: {r.published}",
            f"    simulated: {r.simulated}",
            f"    band:      {r.band}",
        ]
        if r.note:
            lines.append(f"    note:      {r.note}")
    n = sum(r.passed for r in results)
    counted = [r for r in results if r.counted]
    ni = sum(r.passed for r in counted)
    lines.append(
        f"{n}/{len(results)} facts reproduced; independent: {ni}/{len(counted)} (facts that "
        "hold by construction or check consistency are not counted)"
    )
    return "\n".join(lines) + "\n"


def _parse_value(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


@dataclass(frozen=True)
class ValidateConfig:
    """Check the simulator against stylized facts from the literature: each with its
    source, the published figure, the simulated figure and a verdict. Exit status 0 when
    the table is computed (missed facts included), 1 with --strict when a fact is missed."""

    facts: Annotated[tuple[str, ...], DEFAULT_IN_HELP] = ()
    """fact ids, comma- or space-separated (default: all)"""
    overrides: Annotated[
        tuple[str, ...], tyro.conf.arg(name="set", metavar="KEY=VALUE"), tyro.conf.UseAppendAction
    ] = ()
    """HostParams override for every host the facts build, applied last (after v1 and a fact's kept fields), e.g. --set host_policy='lru'"""  # noqa: E501
    physics_version: Annotated[Literal["v2", "v1", "v0"], tyro.conf.arg(name="physics")] = "v2"
    """physics the facts run under: v2 (envs.physics.with_v2_physics, the -v2 scenarios', the current one; its table adds the facts g-k), v1 (with_v1_physics, the -v1 scenarios') or v0 (the simulator's defaults, for comparison)"""  # noqa: E501
    json: bool = False
    """print the table as one JSON list of objects (fact, source, published, simulated, band, passed, note, values, kind)"""  # noqa: E501
    out: Path | None = None
    """also write the table as JSON to this file (atomically)"""
    strict: bool = False
    """exit 1 when a fact is missed"""

    def __post_init__(self) -> None:
        from envs.sim.params import HostParams

        object.__setattr__(self, "facts", split_list(self.facts))
        for i in self.facts:
            if i not in FACTS:
                raise UserError(f"--facts: unknown fact {i!r}; valid: {', '.join(FACTS)}")
        names = {f.name for f in dataclasses.fields(HostParams)} - {"vms"}
        for text in self.overrides:
            key = text.split("=", 1)[0].strip()
            if "=" not in text:
                raise UserError(f"--set expects KEY=VALUE, got {text!r}")
            if key not in names:
                raise UserError(f"--set: {key!r} is not a HostParams field; valid: "
                                f"{', '.join(sorted(names))}")  # fmt: skip
        try:
            HostParams(**self.override_dict)
        except (ValueError, TypeError) as e:
            raise UserError(f"--set: {e}") from None

    @property
    def override_dict(self) -> dict[str, Any]:
        return {
            t.split("=", 1)[0].strip(): _parse_value(t.split("=", 1)[1]) for t in self.overrides
        }

    @property
    def physics(self) -> Physics:
        return Physics.of(self.physics_version, **self.override_dict)


def run(config: ValidateConfig) -> int:
    try:
        results = validate(config.facts, config.physics)
    except ValueError as e:
        if not config.overrides:
            raise  # the facts' own hosts are valid: this is a bug
        raise UserError(f"--set: {e}") from None  # an override a fact's host rejects
    rows = [r.row() for r in results]
    if config.out is not None:
        write_json_atomic(config.out, rows)
    if config.json:
        print(json.dumps(rows))
    else:
        print(to_text(results), end="")
    if config.strict and not all(r.passed for r in results):
        return 1
    return 0


__all__ = ["ValidateConfig", "run", "to_text", "validate"]
