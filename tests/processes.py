"""Test helper: run a command in a subprocess and kill it (SIGKILL) at a chosen point,
as a machine that loses power would, to test that finished work survives and resumes."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence

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
