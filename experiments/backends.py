"""Where ``reclaim compare`` runs its jobs: local processes, or tasks on a Ray cluster.

Both backends have one interface, ``map(fn, args) -> [fn(a) for a in args]`` (results in
the order of ``args``), plus ``parallelism(n)`` for the log line and ``close()``. A job
(``fn``) is a module-level function of the project that writes its own result file and
skips finished work itself, so restartability does not depend on the backend: the Ray
backend runs exactly the job functions the process backend runs, with the same arguments.

The Ray backend (``ray``, an optional dependency: ``pip install -e '.[cluster]'``)
either starts a local Ray with ``num_cpus = jobs`` or joins a running cluster at
``address``; each job becomes a Ray task with ``num_cpus=1``. Before any job starts it
checks, on every node with CPUs, that the workers can import the project and see the
shared directories (the runs and the results directories): a probe file written by the
driver must be readable there, and one written there must be readable by the driver.
Failures are ``ValueError``s (``reclaim compare`` turns them into exit status 2).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from experiments.user_errors import UserError

BACKENDS = ("process", "ray")
CONNECT_TIMEOUT_S = 30
"""How long a test connection to the cluster at ``--address`` may take. Ray itself
retries an address that accepts TCP connections but does not answer as a Ray cluster for
minutes (about 40 s a try, 20 tries), so the test connection runs in a child process that
is killed after this long."""
PROBE_TIMEOUT_S = 120
"""How long the pre-flight probe tasks may wait for a worker (workers start on demand)."""
ENV_PREFIXES = ("RECLAIM_",)
"""The driver's environment variables forwarded to the workers of a local Ray
(``RECLAIM_DATA_DIR``, ``RECLAIM_CACHE_DIR``, ...)."""


class ProcessBackend:
    """``jobs`` spawned processes on this machine (in this process when ``jobs <= 1``)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)

    def parallelism(self, n_jobs: int) -> int:
        return min(self.jobs, n_jobs)

    def map(self, fn: Callable[[Any], Any], args: Sequence[Any]) -> list[Any]:
        if self.jobs <= 1 or len(args) <= 1:
            return [fn(a) for a in args]
        # spawn, not fork: torch and the SB3 models are not fork-safe once initialized.
        ctx = mp.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=self.parallelism(len(args)), mp_context=ctx) as ex:
            return list(ex.map(fn, args))

    def close(self) -> None:
        pass

    def __enter__(self) -> ProcessBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise UserError(
            "backend 'ray' needs Ray, which is not installed: "
            "pip install -e '.[cluster]' (or pip install 'ray>=2.9')"
        ) from e
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a cluster address, or None for ``auto`` (the local ``ray start``)."""
    if address == "auto":
        return None
    rest = address.removeprefix("ray://")
    default_port = 10001 if address.startswith("ray://") else 6379
    host, sep, port = rest.rpartition(":")
    if not sep:
        host, port = rest, str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"address must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
    return host, int(port)


def _last_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


def check_reachable(address: str, timeout_s: float | None = None) -> None:
    """``ValueError`` unless ``address`` is a Ray cluster that this machine can join
    within ``timeout_s`` (default ``CONNECT_TIMEOUT_S``): first a plain TCP connection
    (an immediate answer for refused ports and unknown hosts), then ``ray.init(address)``
    in a child process with that deadline."""
    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    hint = "start one with `ray start --head` or fix --address"
    hp = _host_port(address)
    if hp is not None:
        try:
            socket.create_connection(hp, timeout=timeout_s).close()
        except OSError as e:
            raise UserError(
                f"cannot reach a Ray cluster at address {address!r} ({e.strerror or e}); {hint}"
            ) from None
    code = "import sys, ray; ray.init(address=sys.argv[1], log_to_driver=False); ray.shutdown()"
    proc = subprocess.Popen([sys.executable, "-c", code, address], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    err: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise UserError(
                    f"no Ray cluster answered at address {address!r} within {timeout_s:g} s; {hint}"
                ) from None
            if line is None:
                break
            if line.strip():
                err.append(line.strip())
            # Ray retries a refused token for ~20 s; say why at once.
            if "InvalidAuthToken" in line or "Unauthenticated" in line:
                raise UserError(
                    f"the Ray cluster at address {address!r} refused this machine's "
                    "authentication token: set RAY_AUTH_MODE=token and give this machine "
                    "the cluster's token (RAY_AUTH_TOKEN, or the head's ~/.ray/auth_token)"
                )
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if proc.returncode != 0:
        raise UserError(
            f"cannot join a Ray cluster at address {address!r}: "
            f"{err[-1] if err else f'exit status {proc.returncode}'}"
        )


def _worker_env() -> dict[str, str]:
    """Environment for the workers of a local Ray: the project on ``PYTHONPATH`` (a
    worktree or checkout that is not pip-installed must still be importable) and the
    ``RECLAIM_*`` variables (the data directory)."""
    from agents.provenance import REPO_ROOT

    paths = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                if p and p != str(REPO_ROOT)]  # fmt: skip
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    env.update({k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)})
    return env


def _probe_dirs(dirs: Sequence[str], token: str, tag: str) -> dict[str, Any]:
    """Runs on a worker: can it see ``dirs``? Reads the driver's probe file in each and
    writes one back (suffixed ``tag``). Returns the node's name and what went wrong."""
    node = socket.gethostname()
    errors = []
    for d in dirs:
        p = Path(d)
        if not p.is_dir():
            errors.append(f"{d} is not a directory")
            continue
        try:
            mine = p / f".reclaim-probe-{token}"
            if not mine.is_file() or mine.read_text() != token:
                errors.append(f"{d} exists but is not the driver's (its probe file is missing)")
                continue
            (p / f".reclaim-probe-{token}-{tag}").write_text(token)
        except OSError as e:
            errors.append(f"{d}: {e.strerror or e} ({type(e).__name__})")
    return {"node": node, "tag": tag, "errors": errors}


class RayBackend:
    """Ray tasks (``num_cpus=1`` each) on a local Ray or on the cluster at ``address``.

    Args:
        jobs: CPUs of the local Ray started when ``address`` is None (ignored otherwise:
            a cluster runs as many jobs at once as it has CPUs).
        address: a running cluster (``HOST:PORT`` of its head, ``ray://HOST:PORT`` or
            ``auto``), or None to start a local Ray.
        shared_dirs: directories every worker must see (created here first).
    """

    def __init__(self, jobs: int, address: str | None, shared_dirs: Sequence[Path]) -> None:
        ray = _import_ray()
        self.ray = ray
        self.jobs = max(1, jobs)
        self.address = address
        # A Ray this process already joined (a notebook's ray.init) is used and left up.
        self._owned = not ray.is_initialized()
        if self._owned and address is None:
            # "local": a Ray of our own, even where RAY_ADDRESS is set or a `ray start`
            # cluster runs on this machine (which a plain ray.init() would join).
            ray.init(address="local", num_cpus=self.jobs, include_dashboard=False,
                     runtime_env={"env_vars": _worker_env()})  # fmt: skip
        elif self._owned:
            check_reachable(address)
            self._join(address)
        try:
            self._check_shared(shared_dirs)
        except BaseException:
            self.close()
            raise

    def _join(self, address: str) -> None:
        try:
            self.ray.init(address=address)
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            if self.ray.is_initialized():
                self.ray.shutdown()
            raise UserError(
                f"cannot join the Ray cluster at address {address!r}: {_last_line(e)}"
            ) from None

    def _cpu_nodes(self) -> list[str]:
        return [n["NodeID"] for n in self.ray.nodes()
                if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]  # fmt: skip

    def _check_shared(self, dirs: Sequence[Path]) -> None:
        """``ValueError`` unless every node with CPUs can import the project, see each of
        ``dirs`` and exchange a probe file with the driver through it."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        dirs = [Path(os.path.abspath(d)) for d in dirs]  # the paths the jobs use
        token = secrets.token_hex(8)
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
            (d / f".reclaim-probe-{token}").write_text(token)
        try:
            nodes = self._cpu_nodes()
            if not nodes:
                raise UserError(f"the Ray cluster at {self.address!r} has no node with CPUs")
            probe = self.ray.remote(num_cpus=0, max_retries=0)(_probe_dirs)
            refs = [
                probe.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)
                ).remote([str(d) for d in dirs], token, n[:16])
                for n in nodes
            ]
            try:
                reports = self.ray.get(refs, timeout=PROBE_TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 - any worker failure is a setup error
                raise UserError(
                    "Ray workers could not run the pre-flight check (is the project "
                    f"installed or on PYTHONPATH on every node?): {_last_line(e)}"
                ) from None
            problems = []
            for r in reports:
                errs = list(r["errors"])
                for d in dirs:
                    back = d / f".reclaim-probe-{token}-{r['tag']}"
                    if not r["errors"] and not (back.is_file() and back.read_text() == token):
                        errs.append(f"{d}: the driver cannot read the file the worker wrote")
                if errs:
                    problems.append(f"node {r['node']}: " + "; ".join(errs))
            if problems:
                raise UserError(
                    "the runs and results directories must be shared with every Ray worker "
                    "(same path, e.g. NFS; see docs/cluster.md): " + " | ".join(problems)
                )
        finally:
            for d in dirs:
                for f in d.glob(f".reclaim-probe-{token}*"):
                    f.unlink(missing_ok=True)

    def parallelism(self, n_jobs: int) -> int:
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        return min(cpus, n_jobs)

    def map(self, fn: Callable[[Any], Any], args: Sequence[Any]) -> list[Any]:
        task = self.ray.remote(num_cpus=1)(fn)
        refs = [task.remote(a) for a in args]
        try:
            # Like the process pool: every job runs to its end (and writes its result)
            # even when another fails; the first failure, in job order, is raised.
            self.ray.wait(refs, num_returns=len(refs), fetch_local=False)
            return self.ray.get(refs)
        except BaseException:
            for r in refs:
                self.ray.cancel(r, force=True)
            raise

    def close(self) -> None:
        if self._owned and self.ray.is_initialized():
            self.ray.shutdown()
        self._owned = False

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_backend(name: str, jobs: int, address: str | None = None,
                 shared_dirs: Sequence[Path] = ()) -> ProcessBackend | RayBackend:  # fmt: skip
    """The backend ``name`` (``process`` or ``ray``), ready to run jobs (a context
    manager; ``close()`` stops a Ray it started). ``ValueError`` on bad input."""
    if name not in BACKENDS:
        raise UserError(f"backend must be one of {list(BACKENDS)}, got {name!r}")
    if name == "process":
        if address is not None:
            raise UserError("address needs backend 'ray'")
        return ProcessBackend(jobs)
    return RayBackend(jobs, address, shared_dirs)


__all__ = ["BACKENDS", "ProcessBackend", "RayBackend", "check_reachable", "open_backend"]
