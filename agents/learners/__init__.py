"""Learners: each learning method in its own package behind one seam.

A method is a package ``agents/learners/<method>/`` (as Brax's ``training/agents/``)
that exposes:

- ``METHOD``: its name, written as ``"method"`` into every run's ``config.json``;
- ``load_policy(path, env=None)``: a run directory of that method (or a model file in
  it) as a policy (``reset(seed)``, ``act(obs, info)``), checked against ``env``;
- optionally ``env_options(path)``: the env options the run was trained under
  (observation version, decision period, holding, action mode), which evaluation uses
  to build the run's env (:func:`run_env_options`).

Training, checkpoints and resume are each method's own (``reclaim train`` for SB3,
``reclaim imitate`` for imitation); evaluation, comparison and replay need only
:func:`load_policy` here, which reads a run's method from its ``config.json`` (runs
written before this seam have none: they are SB3 runs) and calls that method's loader.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

# method -> the module that implements it (imported only when a run of it is loaded:
# the SB3 learner imports torch).
LEARNERS: dict[str, str] = {
    "sb3": "agents.learners.sb3",
    "imitation": "agents.learners.imitation",
}
DEFAULT_METHOD = "sb3"  # runs written before the seam recorded no method


def run_method(path: str | Path) -> str:
    """The method of the run at ``path`` (a run directory or a file inside one).

    Raises FileNotFoundError when no ``config.json`` is found beside or above ``path``,
    ValueError for an unknown method.
    """
    p = Path(path)
    # A run directory, or a model in it or in its checkpoints/ folder.
    for d in (p,) if p.is_dir() else (p.parent, p.parent.parent):
        cfg = d / "config.json"
        if cfg.is_file():
            method = json.loads(cfg.read_text()).get("method", DEFAULT_METHOD)
            if method not in LEARNERS:
                raise ValueError(
                    f"{cfg}: unknown learning method {method!r}; known: {sorted(LEARNERS)}"
                )
            return method
    raise FileNotFoundError(f"no config.json of a run found at or above {p}")


def run_env_options(path: str | Path) -> dict[str, Any]:
    """The env options (``obs_version``, ``decision_period_s``, ``hold_deadband``,
    ``action_mode``) that the run at ``path`` was trained under, for building the env it
    is evaluated on: the method's ``env_options(path)``, or {} for a method without."""
    module = importlib.import_module(LEARNERS[run_method(path)])
    options = getattr(module, "env_options", None)
    return {} if options is None else dict(options(path))


def load_policy(path: str | Path, env: Any = None) -> Any:
    """The run at ``path``, of any method, as a policy for ``env`` (see the module doc)."""
    return importlib.import_module(LEARNERS[run_method(path)]).load_policy(path, env)
