"""Argument checks shared by every layer: integers, numbers in a range, names in a set.

One set of helpers so that every bad argument, from a simulator parameter to a CLI
option, is reported the same way: the field's name, the allowed range and the value
given. Each raises ``error`` (``ValueError`` by default); the CLI passes its
``UserError`` (a ``ValueError`` subclass) so that the message becomes one line, exit 2.
Imports only numpy and the standard library, so the simulator core may use it.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


def _within(v: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or v >= lo) and (hi is None or v <= hi)


def check_int(
    name: str,
    value: object,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    error: type[ValueError] = ValueError,
) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (numpy integers too, never a bool).

    Raises ``error`` naming ``name``, the allowed range and the value.
    """
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))
    if not ok or not _within(value, minimum, maximum):  # type: ignore[arg-type]
        raise error(f"{name} must be an int{_range(minimum, maximum)}, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def check_number(
    name: str,
    value: object,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    error: type[ValueError] = ValueError,
) -> float:
    """``value`` as a finite float in ``[minimum, maximum]`` (ints too, never a bool)."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (int, float, np.integer, np.floating)
    )
    if not ok or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise error(f"{name} must be a finite number{_range(minimum, maximum)}, got {value!r}")
    if not _within(float(value), minimum, maximum):  # type: ignore[arg-type]
        raise error(f"{name} must be a number{_range(minimum, maximum)}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_choice(
    name: str, value: object, allowed: Collection[object], *, error: type[ValueError] = ValueError
) -> None:
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        raise error(f"{name} must be one of {tuple(allowed)}, got {value!r}")
