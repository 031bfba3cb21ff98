"""The data the numpy simulator core replays, found, parsed and cached here.

``envs.sim`` reads no files: it receives arrays in a ``WorkloadData``. This module turns
the ``TraceSpec`` / ``DemandSpec`` names in a ``HostParams`` into that object: it finds the
files (``$RECLAIM_DATA_DIR``, else ``<repo>/../shared/data``; the shipped lackey
recordings in ``experiments/traces/data``), parses them with the loaders of
``envs.traces`` (which cache parsed arrays on disk) and keeps the results in memory, keyed
by path, mtime and size, so building many envs of one scenario reads each file once.

:func:`check_published_data` says, for each trace-driven scenario, which of the published
files it reads are present, missing or damaged (``reclaim data check``), against the
checksums shipped with the package in ``envs/data_sha256.txt``.

It also reads the simulator's memory limit from the environment (``max_sim_bytes``), and
``make_simulator`` builds a core with both.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from envs import traces
from envs.scenarios import get_scenario, scenario_ids
from envs.sim.core import Simulator
from envs.sim.footprint import default_max_bytes
from envs.sim.params import HostParams, TraceSpec
from envs.sim.workload import ResolvedTrace, WorkloadData, required_data

__all__ = [
    "CHECKSUMS_FILE",
    "DEMAND_SAMPLE_S",
    "DataFile",
    "ScenarioData",
    "check_published_data",
    "published_checksums",
    "data_dir",
    "demand_path",
    "load_workload_data",
    "make_simulator",
    "max_sim_bytes",
    "published_files",
    "recordings_dir",
    "repo_dir",
    "resolve_demand",
    "resolve_trace",
    "trace_path",
]

DEMAND_SAMPLE_S = 300  # Bitbrains samples every 5 minutes
MAX_SIM_BYTES_ENV = "RECLAIM_MAX_SIM_BYTES"
_TRACE_SUFFIXES = {
    "lirs": (".trace.gz", ".trace", ".gz", ""),
    "spec2000": (".trace.gz", ".trace", ".gz", ""),
    "arc": (".lis.gz", ".lis", ".gz", ""),
    "recording": (".npz", ""),
}
_DEMAND_SUFFIXES = (".csv.gz", ".csv", ".gz", "")


def repo_dir() -> Path:
    """The repository root (holding ``envs/`` and ``experiments/``)."""
    return Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """``$RECLAIM_DATA_DIR`` if set, else ``<repo>/../shared/data``."""
    env = os.environ.get("RECLAIM_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return repo_dir().parent / "shared" / "data"


def recordings_dir() -> Path:
    """Where the shipped lackey recordings live (``experiments/traces/data``)."""
    return repo_dir() / "experiments" / "traces" / "data"


def _find(base: Path, suffixes: Sequence[str], what: str, given: bool = False) -> Path:
    """The first file of ``base`` + each of ``suffixes`` (``base`` alone when its name
    already ends with one of them). ``FileNotFoundError`` otherwise: for a path the user
    gave (``given``: an absolute path) it names that path; for a name under the data
    folder it lists the paths tried and how to point at another data folder."""
    if any(s and base.name.endswith(s) for s in suffixes):
        tried = [base]
    else:
        tried = [base.with_name(base.name + suf) for suf in suffixes]
    for c in tried:
        if c.is_file():
            return c
    if given:
        others = [s for s in suffixes if s] if len(tried) > 1 else []
        also = f" (nor with {', '.join(others)} appended)" if others else ""
        raise FileNotFoundError(f"{what} not found: no file {base}{also}")
    root = data_dir()
    hint = (
        f"the data folder {root} does not exist" if not root.is_dir() else f"data folder {root}"
    )
    raise FileNotFoundError(
        f"{what} not found; tried {', '.join(map(str, tried))} ({hint}; set "
        "RECLAIM_DATA_DIR to the folder holding traces/ and demand/, and run "
        "`reclaim data check`)"
    )


def trace_path(spec: TraceSpec) -> Path:
    """The file a ``TraceSpec`` names (see ``TraceSpec``); ``FileNotFoundError`` if none."""
    p = Path(spec.name).expanduser()
    given = p.is_absolute()
    if not given:
        root = recordings_dir() if spec.kind == "recording" else data_dir() / "traces"
        p = root / spec.name
    return _find(p, _TRACE_SUFFIXES[spec.kind], f"{spec.kind} trace {spec.name!r}", given)


def demand_path(name: str) -> Path:
    """The file of a demand series name (see ``DemandSpec``)."""
    p = Path(name).expanduser()
    given = p.is_absolute()
    if not given:
        p = data_dir() / "demand" / name
    return _find(p, _DEMAND_SUFFIXES, f"demand series {name!r}", given)


def resolve_trace(spec: TraceSpec) -> ResolvedTrace:
    """Load, truncate (``max_refs``) and compact the trace a spec names (cached)."""
    path = trace_path(spec)
    st = path.stat()
    return _load_trace(spec, str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=32)
def _load_trace(spec: TraceSpec, path: str, _mtime_ns: int, _size: int) -> ResolvedTrace:
    if spec.kind == "lirs":
        tr = traces.load_lirs(path, spec.blocks_per_page)
    elif spec.kind == "spec2000":
        tr = traces.load_spec2000(path)
    elif spec.kind == "arc":
        tr = traces.load_arc(path, spec.blocks_per_page)
    else:
        tr = traces.load_recording(path)
    pages, writes = tr.pages, tr.writes
    if spec.max_refs:
        pages = pages[: spec.max_refs]
        writes = None if writes is None else writes[: spec.max_refs]
    if pages.size == 0:
        raise ValueError(f"trace {path} has no references")
    c = traces.compact(pages).astype(np.int32)
    c.setflags(write=False)
    if writes is not None:
        writes = np.array(writes, dtype=bool)
        writes.setflags(write=False)
    return ResolvedTrace(c, writes, int(c.max()) + 1, path)


def resolve_demand(name: str, normalize: str = "capacity") -> np.ndarray:
    """(T,) float64 demand fraction in [0, 1] on the 300 s grid (``envs.sim.workload``,
    "Demand-driven W(t)"), read-only and cached."""
    path = demand_path(name)
    st = path.stat()
    return _load_demand(str(path), normalize, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=256)
def _load_demand(path: str, normalize: str, _mtime_ns: int, _size: int) -> np.ndarray:
    d = traces.load_bitbrains(path)
    t = d.times_s
    n = int((t[-1] - t[0]) // DEMAND_SAMPLE_S) + 1
    grid = t[0] + DEMAND_SAMPLE_S * np.arange(n, dtype=np.float64)
    idx = np.searchsorted(t, grid, side="right") - 1
    usage, cap = d.usage_kb[idx], d.capacity_kb[idx]
    if normalize == "capacity":
        f = usage / cap
    else:
        peak = float(d.usage_kb.max())
        f = usage / peak if peak > 0 else np.zeros(n)
    f = np.clip(f, 0.0, 1.0)
    f.setflags(write=False)
    return f


def load_workload_data(params: HostParams) -> WorkloadData | None:
    """Every trace and demand series ``params`` replays, as a ``WorkloadData``.

    Returns None for purely synthetic workloads (nothing to read). Raises
    ``FileNotFoundError`` naming the paths tried when a file is missing.
    """
    if not isinstance(params, HostParams):
        raise ValueError(f"params must be a HostParams, got {type(params).__name__}")
    specs, demand = required_data(params)
    if not specs and not demand:
        return None
    return WorkloadData(
        traces={s: resolve_trace(s) for s in specs},
        demand={(n, norm): resolve_demand(n, norm) for n, norm in demand},
    )


def max_sim_bytes() -> int:
    """The simulator's memory limit: ``$RECLAIM_MAX_SIM_BYTES`` (bytes) if set, else
    ``envs.sim.footprint.default_max_bytes()`` (half the physical memory)."""
    env = os.environ.get(MAX_SIM_BYTES_ENV, "").strip()
    if not env:
        return default_max_bytes()
    try:
        value = int(float(env))
    except ValueError:
        raise ValueError(f"{MAX_SIM_BYTES_ENV} must be a number of bytes, got {env!r}") from None
    if value < 1:
        raise ValueError(f"{MAX_SIM_BYTES_ENV} must be >= 1 byte, got {env!r}")
    return value


def make_simulator(params: HostParams, num_envs: int) -> Simulator:
    """A ``Simulator`` of ``params`` with its data loaded and the environment's memory
    limit (``max_sim_bytes``): how every env of ``envs/`` builds its core."""
    return Simulator(params, num_envs, data=load_workload_data(params), max_bytes=max_sim_bytes())


# ------------------------------------------------------------------ the published files
CHECKSUMS_FILE = Path(__file__).with_name("data_sha256.txt")
"""SHA-256 of every published file a scenario reads, in ``sha256sum`` format, paths
relative to the data folder (docs/data.md, "Checksums")."""
FILE_STATES = ("ok", "missing", "damaged")


def published_checksums(path: Path = CHECKSUMS_FILE) -> dict[str, str]:
    """``{path relative to the data folder: sha256 hex}`` of ``path`` (sha256sum format:
    ``<64 hex>  <path>`` per line). ``ValueError`` naming the line for any other line."""
    out: dict[str, str] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        sha, sep, rel = line.partition("  ")
        if not sep or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha) or not rel:
            raise ValueError(f"{path}:{i}: not '<sha256>  <path>': {line[:120]!r}")
        out[rel] = sha
    return out


def published_files(params: HostParams, checksums: dict[str, str]) -> list[str]:
    """The published files (paths relative to the data folder, as ``checksums`` names
    them) that ``params`` replays, in first-use order. Traces and demand series named by
    an absolute path, and the shipped recordings, are not published data: left out. A
    relative name no checksum covers is listed as ``traces/<name>`` or
    ``demand/<name>`` with the first suffix the loader tries."""
    specs, demand = required_data(params)
    wanted: list[tuple[str, Sequence[str]]] = []
    for s in specs:
        if s.kind != "recording" and not Path(s.name).expanduser().is_absolute():
            wanted.append((f"traces/{s.name}", _TRACE_SUFFIXES[s.kind]))
    for name, _ in demand:
        if not Path(name).expanduser().is_absolute():
            wanted.append((f"demand/{name}", _DEMAND_SUFFIXES))
    out: dict[str, None] = {}
    for base, suffixes in wanted:
        names = [base + suf for suf in suffixes]
        out[next((n for n in names if n in checksums), names[0])] = None
    return list(out)


@dataclass(frozen=True)
class DataFile:
    """One published file in the data folder and its state."""

    path: str  # relative to the data folder
    state: str  # one of FILE_STATES
    detail: str = ""  # why it is damaged


@dataclass(frozen=True)
class ScenarioData:
    """The published files one trace-driven scenario reads."""

    scenario: str
    files: tuple[DataFile, ...]

    def count(self, state: str) -> int:
        return sum(f.state == state for f in self.files)

    @property
    def ok(self) -> bool:
        return all(f.state == "ok" for f in self.files)


def _file_state(root: Path, rel: str, sha: str | None) -> DataFile:
    path = root / rel
    if not path.is_file():
        return DataFile(rel, "missing")
    if sha is None:
        return DataFile(rel, "damaged", "no published checksum for this file")
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        return DataFile(rel, "damaged", f"unreadable: {e.strerror or e}")
    if h.hexdigest() != sha:
        return DataFile(rel, "damaged", f"SHA-256 {h.hexdigest()[:16]}... is not the "
                                         f"published {sha[:16]}...")  # fmt: skip
    return DataFile(rel, "ok")


def check_published_data(
    scenarios: Sequence[str] | None = None, root: Path | None = None
) -> list[ScenarioData]:
    """For each trace-driven scenario (``scenarios``, default every registered one that
    reads published data), the state of each published file it reads under ``root``
    (default :func:`data_dir`): ``ok``, ``missing``, or ``damaged`` (its SHA-256 differs
    from :data:`CHECKSUMS_FILE`'s, or it cannot be read). Each file is hashed once."""
    root = data_dir() if root is None else Path(root)
    checksums = published_checksums()
    states: dict[str, DataFile] = {}
    out = []
    for sid in scenario_ids() if scenarios is None else scenarios:
        files = published_files(get_scenario(sid).params, checksums)
        if not files:
            continue
        for rel in files:
            if rel not in states:
                states[rel] = _file_state(root, rel, checksums.get(rel))
        out.append(ScenarioData(sid, tuple(states[rel] for rel in files)))
    return out
