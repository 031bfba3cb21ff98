"""Test helper: run a command in a subprocess and kill it (SIGKILL) at a chosen point,
as a machine that loses power would, to test that finished work survives and resumes."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests import REPO


def kill_when(cmd: Sequence[str], ready: Callable[[], bool], timeout: float = 240,
              what: str = "the command") -> None:  # fmt: skip
    """Start ``cmd`` in the repository root, poll ``ready()`` and SIGKILL the process as
    soon as it is true; fail if the process ends first or ``timeout`` seconds pass."""
    proc = subprocess.Popen(list(cmd), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + timeout
        while not ready():
            assert proc.poll() is None, f"{what} ended before the kill point"
            assert time.time() < deadline, f"timed out waiting for {what}'s kill point"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def run_cli(args: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m experiments.cli ARGS`` in the repository root; fails on a non-zero exit."""
    import sys

    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], cwd=REPO,
                          capture_output=True, text=True, check=True, timeout=timeout)  # fmt: skip


def kill_and_resume_train(args_of: Callable[[Path], list[str]], root: Path,
                          timeout: float = 240) -> tuple[Path, Path]:  # fmt: skip
    """``reclaim train`` run whole and run killed (SIGKILL right after its first
    checkpoint) then ``--resume``d: ``args_of(runs_dir)`` gives the CLI arguments (``train
    ... --name x``, seed 0). Checks both exit 0 and that the resumed run started from the
    checkpoint's step; returns the two run directories (whole, killed)."""
    import json
    import sys

    def cli(*args: str) -> None:
        res = subprocess.run([sys.executable, "-m", "experiments.cli", *args], cwd=REPO,
                             capture_output=True, text=True, timeout=timeout)  # fmt: skip
        assert res.returncode == 0, res.stderr

    cli(*args_of(root / "whole"))
    killed = root / "killed" / "x" / "0"
    index = killed / "checkpoints" / "checkpoint.json"
    kill_when([sys.executable, "-m", "experiments.cli", *args_of(root / "killed")],
              index.exists, timeout=180, what="training")  # fmt: skip
    assert not (killed / "result.json").exists(), "the kill came after the run finished"
    steps = json.loads(index.read_text())["env_steps"]
    cli(*args_of(root / "killed"), "--resume")
    assert json.loads((killed / "result.json").read_text())["resumed_from"] == steps
    return root / "whole" / "x" / "0", killed


def evaluations(run_dir: Path) -> list[dict]:
    """A run's evaluations.csv rows without their wall times (what a resume reproduces)."""
    import csv

    with open(run_dir / "evaluations.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]
