"""ReclaimGym's tests; the folders mirror the packages (envs/, envs/sim/, agents/, experiments/)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
"""The repository root (holding envs/, agents/, experiments/, tests/)."""
