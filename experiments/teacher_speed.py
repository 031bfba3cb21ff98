"""The teacher's labelling cost against a heuristic's: ``agents.teacher.OracleTeacher``.

:func:`teacher_speed` drives a ``BalloonVectorEnv`` with ESX (``EsxPolicy``) and labels
every state it reaches, as DAgger labels its learner's states; it times ESX's ``act``
and the teacher's ``label`` per (batched) step, the teacher's per-episode curve
computations included (they run at the first label of each episode). The target is a
ratio of at most 5 (issue #23). Run ``python -m experiments.teacher_speed``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.policies import make_policy
from agents.teacher import TEACHER_PLAN, OracleTeacher
from envs.sim.checks import check_int
from envs.vector_env import BalloonVectorEnv


def teacher_speed(scenario: str = "default-v1", num_envs: int = 4, episodes: int = 2,
                  max_episode_steps: int | None = None, seed: int = 0,
                  window: int = TEACHER_PLAN[0], horizon: int = TEACHER_PLAN[1],
                  ) -> dict[str, Any]:  # fmt: skip
    """Time ESX's act and the teacher's label along ESX's trajectory.

    Args:
        scenario: a registered scenario id.
        num_envs: envs of the vector env (``B``).
        episodes: episodes per env (each new episode recomputes the teacher's curves).
        max_episode_steps: episode length (default: the scenario's).
        seed: the envs' seed (env ``i`` gets ``seed + i``; later episodes autoreset).
        window, horizon: the teacher's plan.

    Returns:
        ``esx_act_s`` and ``label_s``: seconds per batched step (means over every step);
        ``ratio``: ``label_s / esx_act_s``; ``steps``, ``num_envs``, ``rebuilds`` (the
        teacher's curve computations), ``scenario``, ``window``, ``horizon``.
    """
    check_int("num_envs", num_envs, 1)
    check_int("episodes", episodes, 1)
    env = BalloonVectorEnv(num_envs, scenario, max_episode_steps=max_episode_steps)
    esx = make_policy("esx", env)
    teacher = OracleTeacher(window, horizon)
    obs, info = env.reset(seed=seed)
    esx.reset(seed)
    # NEXT_STEP autoreset: the step after an episode's last one restarts it.
    steps = episodes * (int(env.core.limit.max()) + 1) - 1
    act_s = label_s = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        actions = esx.act(obs, info)
        t1 = time.perf_counter()
        labels = teacher.label(env)
        t2 = time.perf_counter()
        act_s += t1 - t0
        label_s += t2 - t1
        assert labels.shape == (num_envs, env.config.params.num_vms)
        obs, _r, _term, _trunc, info = env.step(actions)
    env.close()
    return {
        "scenario": scenario,
        "num_envs": num_envs,
        "steps": steps,
        "window": window,
        "horizon": horizon,
        "rebuilds": teacher.rebuilds,
        "esx_act_s": act_s / steps,
        "label_s": label_s / steps,
        "ratio": float(label_s / act_s) if act_s > 0 else float(np.inf),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="default-v1")
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="episode length")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=int, default=TEACHER_PLAN[0])
    p.add_argument("--horizon", type=int, default=TEACHER_PLAN[1])
    a = p.parse_args(argv)
    out = teacher_speed(a.scenario, a.num_envs, a.episodes, a.steps, a.seed, a.window, a.horizon)
    print(
        f"{out['scenario']} B={out['num_envs']} plan=({out['window']}, {out['horizon']}) "
        f"steps={out['steps']} rebuilds={out['rebuilds']}: ESX act "
        f"{out['esx_act_s'] * 1e3:.3f} ms/step, label {out['label_s'] * 1e3:.3f} ms/step, "
        f"ratio {out['ratio']:.2f}"
    )
    return out


if __name__ == "__main__":
    main()


__all__ = ["main", "teacher_speed"]
