"""The Stable-Baselines3 learner (``reclaim train``): PPO, A2C, SAC, TD3, RecurrentPPO.

- :mod:`.train`: :class:`~agents.learners.sb3.train.TrainConfig` and ``train`` (config,
  checkpoints, bit-exact resume; the run directory format is :mod:`agents.runs`);
- :mod:`.algos`: the algorithms, their SB3 classes, the agent layouts;
- :mod:`.vec_env`: the SB3 ``VecEnv`` it trains on;
- :mod:`.policy`: a trained model as a policy;
- :mod:`.finetune` and :mod:`.finetune_ppo`: PPO from an imitation run
  (``reclaim train --init-from``).

The seam (:mod:`agents.learners`) needs only :data:`METHOD` and :func:`load_policy`, both
here without importing torch: torch is imported when a model is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

METHOD = "sb3"


def env_options(path: str | Path) -> dict[str, Any]:
    """The env options of a ``reclaim train`` run: its action mode (SB3 runs train on
    observation v1, one decision per tick), and for a fine-tuned imitation run
    (``--init-from``) the imitation run's observation version, decision period and
    dead-band (its config.json's ``env_options``)."""
    from agents.runs import RunDir

    run, _model = RunDir.of_model(path)
    meta = run.read_config()
    cfg = meta["config"]
    return {"action_mode": cfg.get("action_mode", "absolute"), **(meta.get("env_options") or {})}


def load_policy(path: str | Path, env: Any = None) -> Any:
    """A ``reclaim train`` run (its directory, or a model ``.zip`` in it) as a policy.

    With ``env`` the policy is checked against it and ready to drive it (a residual run
    gets its heuristic, built for ``env``); without, a residual run is refused (its
    heuristic needs the env)."""
    from agents.learners.sb3.policy import load_model_policy
    from agents.policies import over_env

    policy = load_model_policy(path, env)
    if env is None:
        if policy.residual is not None:
            raise ValueError(f"{path} corrects {policy.residual[0]!r}: load it with its env")
        return policy
    return over_env(policy, env)
