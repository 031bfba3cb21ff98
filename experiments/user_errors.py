"""User errors of the ``reclaim`` command and the checks of its arguments that raise them.

A :class:`UserError` is bad input from the user (an option out of range, an unknown
name, a missing input file): ``reclaim`` reports it as one line on stderr and exits 2.
Config dataclasses run these checks in ``__post_init__``, so every bad option fails
before any work starts; anything else raised later is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from envs.sim import checks


class UserError(ValueError):
    """Bad input from the user: reported as one line, exit status 2."""


def split_list(values: str | Iterable[str]) -> tuple[str, ...]:
    """Names given space- and/or comma-separated (``a,b c`` -> ``("a", "b", "c")``)."""
    items = [values] if isinstance(values, str) else list(values)
    return tuple(t.strip() for v in items for t in str(v).split(",") if t.strip())


def check_int(flag: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` must be an int in ``[minimum, maximum]`` (not a bool):
    ``envs.sim.checks.check_int`` raising :class:`UserError`."""
    return checks.check_int(flag, value, minimum, maximum, error=UserError)


def check_number(flag: str, value: object, minimum: float | None = None,
                 maximum: float | None = None) -> float:  # fmt: skip
    """``value`` must be a finite number in ``[minimum, maximum]``:
    ``envs.sim.checks.check_number`` raising :class:`UserError`."""
    return checks.check_number(flag, value, minimum, maximum, error=UserError)


def load_scenario_module_arg(flag: str, path: str | None) -> str | None:
    """Load the scenario module ``path`` (``envs.scenarios.load_scenario_module``; None:
    nothing) and return its absolute path, for the config to keep: jobs in other processes
    load it again from there. A missing file or one that raises is a :class:`UserError`."""
    if path is None:
        return None
    from envs.scenarios import load_scenario_module

    try:
        load_scenario_module(path)
    except ValueError as e:
        raise UserError(f"{flag}: {e}") from None
    return str(Path(path).expanduser().resolve())


def check_nonempty(flag: str, values: Sequence[object], what: str) -> None:
    if not values:
        raise UserError(f"{flag} must name at least one {what}, got none")


def check_policies(flag: str, names: Sequence[str]) -> None:
    """Known policy names, or trained runs of any learning method (a run directory, or a
    model zip in one) that exist and record a known method."""
    from agents.learners import run_method
    from agents.policies import check_policy_name, is_run_path

    check_nonempty(flag, names, "policy")
    for name in names:
        try:
            check_policy_name(name)
        except ValueError as e:
            raise UserError(f"{flag}: {e}") from None
        if name.endswith(".zip") and not Path(name).is_file():
            raise UserError(f"{flag}: model file {name!r} does not exist")
        if is_run_path(name):
            try:
                run_method(name)
            except (FileNotFoundError, ValueError) as e:
                raise UserError(f"{flag}: {name!r} is not a trained run: {e}") from None


def check_scenarios(flag: str, ids: Sequence[str]) -> None:
    """Registered scenario ids whose trace and demand files are all present."""
    from envs.data import demand_path, trace_path
    from envs.scenarios import get_scenario

    check_nonempty(flag, ids, "scenario")
    for sid in ids:
        try:
            sc = get_scenario(sid)
        except ValueError as e:
            raise UserError(f"{flag}: {e}") from None
        try:
            for vm in sc.params.vms:
                for spec in vm.workload.traces:
                    trace_path(spec)
                for name in vm.workload.demand.names if vm.workload.demand else ():
                    demand_path(name)
        except FileNotFoundError as e:
            raise UserError(f"{flag}: scenario {sid!r} needs data that is missing: {e}") from None
