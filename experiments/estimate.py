"""How long a training command will take, said before it starts.

An estimate from one measured figure, not a promise: the v1 headline
(``experiments/results/headline-v1/README.md``, "Wall time") trained 6 runs of PPO and
A2C x 1 M env steps on the 17 v1 training scenarios, two at a time on a 2-vCPU machine
with one torch thread each, and each run took 20-39 min of wall time: about
1 M / (30 x 60 s) ~ 550 env steps per second per training job (one job per core). Other
algorithms, larger networks (``recurrent`` took about twice as long per step in the
ablations) and other machines differ.
"""

from __future__ import annotations

import math

TRAIN_ENV_STEPS_PER_S = 550.0
"""Env steps per second of one training job on one core (the headline-v1 runs, above)."""
FEW_MINUTES_S = 180.0
"""Runs estimated shorter than this start without a word."""


def training_seconds(runs: int, env_steps: int, parallel: int) -> float:
    """Estimated wall time of ``runs`` training runs of ``env_steps`` each, ``parallel``
    at a time (each on its own core)."""
    if runs <= 0 or env_steps <= 0:
        return 0.0
    waves = math.ceil(runs / max(1, min(parallel, runs)))
    return waves * env_steps / TRAIN_ENV_STEPS_PER_S


def duration(seconds: float) -> str:
    """``'about 2 h 05 min'`` / ``'about 7 min'``."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def announce(prog: str, runs: int, env_steps: int, parallel: int, extra: str = "") -> str | None:
    """Print (and return) the estimate of a training command, when it is more than a few
    minutes; None otherwise."""
    s = training_seconds(runs, env_steps, parallel)
    if s < FEW_MINUTES_S:
        return None
    line = (
        f"[{prog}] this will take {duration(s)} of training{extra} (an estimate: {runs} run(s) "
        f"x {env_steps:,} env steps, {min(parallel, runs)} at a time, at the "
        f"~{TRAIN_ENV_STEPS_PER_S:.0f} env steps/s per job measured for the headline-v1 runs "
        "on 2 vCPUs; experiments/estimate.py)"
    )
    print(line, flush=True)
    return line
