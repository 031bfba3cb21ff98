"""Fixtures shared by the test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.data import data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared datasets (``$RECLAIM_DATA_DIR`` or ``../shared/data``), or a skip that
    says where they were looked for."""
    d = data_dir()
    if not (d / "traces").is_dir() or not (d / "demand").is_dir():
        pytest.skip(f"needs the shared data at {d} (set RECLAIM_DATA_DIR to another copy)")
    return d
