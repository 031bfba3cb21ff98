"""The residual action: a heuristic's absolute action plus a learned correction.

Residual policy learning (Silver et al. 2018, "Residual Policy Learning",
arXiv:1812.06298; Johannink et al., ICRA 2019): the agent's Box action ``a`` corrects
heuristic H's absolute balloon action ``a_H``,

    clip(a_H + scale · clip(a, -1, 1), -1, 1)

:func:`residual_action` is that formula, the only copy: the training env of every
learner (``agents.wrappers.ResidualAction``, the SB3 VecEnv
``agents.learners.sb3.vec_env``) and the evaluation-time :class:`ResidualPolicy` call it.
A leaf module (numpy only), so that the policy registry and the wrappers can both use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# At 0.5 a correction moves the target by at most a quarter of the balloon's range, so the
# untrained network (actions around 0) starts near H instead of at random targets.
RESIDUAL_SCALE = 0.5


def residual_action(base: Any, correction: Any, scale: float) -> np.ndarray:
    """``clip(base + scale · clip(correction, -1, 1), -1, 1)`` as float64 (any shape).

    With a zero correction it is ``base`` exactly (heuristics act in [-1, 1])."""
    a = np.clip(np.asarray(correction, dtype=np.float64), -1.0, 1.0)
    return np.clip(np.asarray(base, dtype=np.float64) + scale * a, -1.0, 1.0)


class ResidualPolicy:
    """A heuristic's absolute actions plus a learned correction (:func:`residual_action`,
    a target of ``scale / 2`` of the balloon's range at most, either way), as a policy.

    Args:
        base: the heuristic, built for the env the policy drives (``agents.policies``).
        learned: the trained policy (absolute actions in [-1, 1]; ``action_mode``
            ``"absolute"``).
        scale: the correction's weight, > 0.
    """

    action_modes = ("absolute",)

    def __init__(self, base: Any, learned: Any, scale: float) -> None:
        if learned.action_mode != "absolute" or getattr(base, "action_mode", None) != "absolute":
            raise ValueError("a residual policy needs absolute actions (--action-mode absolute)")
        self.base, self.learned, self.scale = base, learned, float(scale)
        self.name = f"{learned.name}+{base.name}"

    def reset(self, seed: int | None = None) -> None:
        self.base.reset(seed)
        self.learned.reset(seed)

    def act(self, obs: np.ndarray, info: Any = None) -> np.ndarray:
        a = residual_action(self.base.act(obs, info), self.learned.act(obs, info), self.scale)
        return a.astype(np.float32)

    def __repr__(self) -> str:
        return f"ResidualPolicy({self.name!r}, scale={self.scale:g})"
