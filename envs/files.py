"""Atomic writes and CSV text: the one home for how ReclaimGym writes its files.

Every result, record, checkpoint index and cache is written to a temporary file in the
target's folder and moved over the target with ``os.replace`` (atomic on POSIX), so a
crash never leaves half a file and a reader never sees one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def atomic_save(path: str | os.PathLike[str], save: Callable[[Path], object]) -> None:
    """Call ``save(tmp)`` on a temporary path beside ``path``, then move it over ``path``.

    ``save`` may write ``tmp`` itself or ``tmp`` plus a suffix it appends on its own
    (Stable-Baselines3 adds ``.zip``; ``numpy.savez`` adds ``.npz``): either is moved.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    written = tmp
    try:
        save(tmp)
        if tmp.stat().st_size == 0:
            for suffix in (".zip", ".npz"):
                other = tmp.with_name(tmp.name + suffix)
                if other.exists():
                    written = other
                    break
        os.replace(written, path)
    finally:
        tmp.unlink(missing_ok=True)
        if written != tmp:
            written.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_save(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON (non-JSON values through ``str``) atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def csv_text(rows: Sequence[Mapping[str, Any]], fields: Sequence[str] | None = None) -> str:
    """``rows`` as CSV text with a header; the columns are ``fields``, or every row's keys
    in order of first appearance. Missing values are empty; no rows and no fields is ""."""
    if fields is None:
        fields = list(dict.fromkeys(k for r in rows for k in r))
    if not fields:
        return ""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_csv(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[str] | None = None,
) -> None:
    """Write ``rows`` to ``path`` as CSV (:func:`csv_text`), atomically."""
    write_text_atomic(path, csv_text(rows, fields))


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
