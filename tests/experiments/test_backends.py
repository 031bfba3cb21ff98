"""reclaim compare --backend ray (experiments/backends.py): the same results as local
processes, restartability through Ray, and the errors raised before any job starts."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from agents.provenance import REPO_ROOT
from experiments import backends
from experiments.cli import main as cli_main
from experiments.compare import CompareConfig, compare

# One PPO run of 1024 env steps on one scenario, three baselines, one test seed.
TINY = dict(
    name="tiny", algos=("ppo",), train_scenarios="default-v0", test_scenarios="default-v0",
    seeds=1, total_timesteps=1024, n_envs=8, eval_seeds=1,
    baselines=("no-balloon", "esx", "oracle"), max_episode_steps=32, eval_freq=512,
    eval_episodes=1, checkpoint_freq=512, bootstrap_reps=50, jobs=2, progress_bar=False,
)  # fmt: skip
WALL_CLOCK = {"wall_s"}


def _config(root: Path, **kw) -> CompareConfig:
    return CompareConfig(**{**TINY, "results_dir": str(root / "res"),
                            "runs_dir": str(root / "runs"), **kw})  # fmt: skip


def _cli_args(root: Path, *extra: str) -> list[str]:
    return ["compare", "--name", "tiny", "--algos", "ppo", "--train-scenarios", "default-v0",
            "--test-scenarios", "default-v0", "--seeds", "1", "--total-timesteps", "1024",
            "--results-dir", str(root / "res"), "--runs-dir", str(root / "runs"),
            *extra]  # fmt: skip


def _csv_without_wall_clock(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return rows
    keep = [i for i, h in enumerate(rows[0]) if h not in WALL_CLOCK]
    return [[r[i] for i in keep] for r in rows]


def _results(out: Path) -> dict[str, list[list[str]]]:
    return {str(p.relative_to(out)): _csv_without_wall_clock(p) for p in out.rglob("*.csv")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ no Ray needed
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(backend="slurm"), "backend must be one of"),
        (dict(address="127.0.0.1:6379"), "address needs backend ray"),
    ],
)
def test_backend_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompareConfig(**kwargs)


def test_ray_not_installed_is_an_error_before_any_job(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ValueError, match=r"needs Ray, which is not installed.*\[cluster\]"):
        compare(_config(tmp_path, backend="ray"))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "res").exists()
    assert cli_main(_cli_args(tmp_path, "--backend", "ray")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Ray" in err[0], err


def test_process_backend_map_keeps_order():
    with backends.open_backend("process", 2) as b:
        assert b.map(abs, [-3, 1, -2]) == [3, 1, 2]
        assert b.parallelism(5) == 2 and b.parallelism(1) == 1


def test_worker_env_carries_project_path_and_data_dir(monkeypatch):
    monkeypatch.setenv("RECLAIM_DATA_DIR", "/data/reclaim")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/elsewhere", str(REPO_ROOT)]))
    monkeypatch.setenv("UNRELATED_VAR", "x")
    env = backends._worker_env()
    assert env["RECLAIM_DATA_DIR"] == "/data/reclaim"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/elsewhere"]
    assert "UNRELATED_VAR" not in env


# -------------------------------------------------------------------- needs Ray
def test_unreachable_address_is_an_error_before_any_job(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray")
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="cannot reach a Ray cluster.*ray start --head"):
        compare(_config(tmp_path, backend="ray", address=f"127.0.0.1:{port}"))
    with pytest.raises(ValueError, match="cannot reach"):
        backends.check_reachable("no-such-host.invalid:6379")
    with pytest.raises(ValueError, match="address must be HOST:PORT"):
        backends.check_reachable("head:port")
    assert time.monotonic() - t0 < 10
    assert not (tmp_path / "runs").exists() and not (tmp_path / "res").exists()
    rc = cli_main(_cli_args(tmp_path, "--backend", "ray", "--address", f"127.0.0.1:{port}"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot reach" in err[0], err

    # A port that accepts connections but is no Ray cluster: Ray alone would retry for
    # minutes; the test connection gives up after CONNECT_TIMEOUT_S.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def accept_and_drop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=accept_and_drop, daemon=True).start()
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT_S", 4)
    t0 = time.monotonic()
    try:
        with pytest.raises(ValueError, match="no Ray cluster answered .* within 4 s"):
            backends.check_reachable(f"127.0.0.1:{srv.getsockname()[1]}")
    finally:
        srv.close()
    assert time.monotonic() - t0 < 10


_REAL_PROBE = backends._probe_dirs


def _probe_on_unshared_fs(dirs, token, tag):
    """A worker on another machine whose copies of ``dirs`` are local, not shared: the
    directories exist there, but hold nothing the driver wrote."""
    import tempfile

    with tempfile.TemporaryDirectory() as other:
        local = [os.path.join(other, d.lstrip("/")) for d in dirs]
        for d in local:
            os.makedirs(d)
        return _REAL_PROBE(local, token, tag)


def _probe_without_dirs(dirs, token, tag):
    """A worker on another machine that does not have ``dirs`` at all."""
    return _REAL_PROBE([d + "-not-mounted" for d in dirs], token, tag)


def test_ray_env_and_unshared_dirs_are_errors_before_any_job(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    data = tmp_path / "data"
    monkeypatch.setenv("RECLAIM_DATA_DIR", str(data))
    with backends.open_backend("ray", 2, None, [tmp_path / "ok"]) as b:
        # The local Ray's workers see the driver's data directory and the project.
        assert b.map(os.getenv, ["RECLAIM_DATA_DIR"]) == [str(data)]
        assert not list((tmp_path / "ok").iterdir())  # probe files cleaned up
        for probe, match in ((_probe_on_unshared_fs, "is not the driver.s"),
                             (_probe_without_dirs, "is not a directory")):  # fmt: skip
            monkeypatch.setattr(backends, "_probe_dirs", probe)
            with pytest.raises(ValueError, match=rf"must be shared .*node .*{match}"):
                compare(_config(tmp_path, backend="ray"))  # joins the running Ray
            assert not (tmp_path / "runs" / "tiny-ppo").exists()  # no training started
            assert not (tmp_path / "res" / "tiny" / "config.json").exists()
            assert not list((tmp_path / "runs").iterdir())  # probe files cleaned up
        # A Ray this process had already joined stays up after compare.
        assert ray.is_initialized()
    assert not ray.is_initialized()


def test_ray_and_process_backends_give_the_same_results_and_restart(tmp_path, capsys):
    ray = pytest.importorskip("ray")
    proc = _config(tmp_path / "process", backend="process")
    compare(proc)
    on_ray = _config(tmp_path / "ray", backend="ray")  # a local Ray with num_cpus = 2
    compare(on_ray)
    assert not ray.is_initialized()  # the Ray compare started is stopped again
    ref, got = _results(proc.out_dir), _results(on_ray.out_dir)
    assert "episodes/test/ppo_seed0__default-v0.csv" in ref and "summary.csv" in ref
    assert len(ref["episodes/test/ppo_seed0__default-v0.csv"]) == 2  # header + 1 episode
    assert got == ref
    wall = r"Wall time of this invocation \d+ s"
    tables = [re.sub(wall, "", (c.out_dir / "table.md").read_text()) for c in (proc, on_ray)]
    assert tables[0] == tables[1]

    # Restart through Ray: a training killed after its last checkpoint resumes from it,
    # an evaluation whose CSV is missing runs again, everything else is kept.
    run = tmp_path / "ray" / "runs" / "tiny-ppo" / "0"
    ckpt = json.loads((run / "checkpoints" / "checkpoint.json").read_text())["env_steps"]
    (run / "result.json").unlink()
    lost = on_ray.out_dir / "episodes" / "test" / "esx__default-v0.csv"
    lost.unlink()
    kept = on_ray.out_dir / "episodes" / "test" / "oracle__default-v0.csv"
    stamp = kept.stat().st_mtime_ns
    capsys.readouterr()
    compare(on_ray)
    out = capsys.readouterr().out
    assert "training: 1 job(s)" in out and "evaluation: 1 job(s)" in out, out
    assert json.loads((run / "result.json").read_text())["resumed_from"] == ckpt
    assert kept.stat().st_mtime_ns == stamp
    assert _results(on_ray.out_dir) == ref
