"""Variance reduction for the on-policy learners: an input-dependent baseline.

ReclaimGym is input-driven: each host's workload (its reference streams) is an
exogenous input that the actions never change, and much of a return's variance comes from
the workload the episode happened to draw, not from the actions. Mao et al. show that a
baseline may depend on the whole future input sequence ``z_{t:∞}`` and stay bias-free,
and that it removes that variance ("Variance reduction for reinforcement learning in
input-driven environments", ICLR 2019, §4); where the simulator can replay an input
sequence, the simplest such baseline is the mean return of several rollouts on the same
sequence. Decima (Mao et al., "Learning scheduling algorithms for data processing
clusters", SIGCOMM 2019, §5.3 and Algorithm 1) trains this way: N episodes on one job
arrival sequence, and the baseline of step ``t`` is the average over the N episodes of
their return-to-go from ``t``.

Here, with ``TrainConfig.seed_group_size = k > 1``, the training hosts come in seed
groups of ``k`` that replay the same workload, in lockstep (``BalloonSB3VecEnv``'s
module docstring), and after SB3 computes the rollout's returns
(``RolloutBuffer.compute_returns_and_advantage``: ``returns = GAE(λ) advantages +
values``, the λ-return, bootstrapped by the value network where the rollout or an
episode was cut), :class:`GroupBaselineCallback` replaces each advantage by

    ``A[t, i] = R[t, i] − mean_{j ∈ group(i)} R[t, j]``

:func:`group_baseline_advantages`, the group mean of the λ-returns at the same step:
Decima's baseline, with the λ-return standing for the return-to-go (with ``λ = 1`` and a
whole episode in the rollout it is the return-to-go exactly). The value network is still
trained on ``R`` (unchanged), and bootstraps the returns of rollouts that end mid-episode.
Like Decima's, the mean includes the row's own return, which scales the expected
gradient by ``(k − 1) / k`` (the leave-one-out mean would make it exactly unbiased; the
members' returns are independent given the workload); PPO normalizes the advantages of
each minibatch, so for PPO the scale cancels.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


def group_baseline_advantages(returns: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``returns[t, i] − mean_{j: groups[j] = groups[i]} returns[t, j]``.

    Args:
        returns: (T, N) returns of ``N`` rows over ``T`` steps (SB3's buffer layout).
        groups: (N,) integer group id of each row.

    Returns:
        (T, N) float advantages, a fresh array (zero for a row alone in its group).
    """
    returns = np.asarray(returns, dtype=np.float64)
    groups = np.asarray(groups)
    if returns.ndim != 2 or groups.shape != returns.shape[1:]:
        raise ValueError(
            f"returns must be (T, N) and groups (N,), got {returns.shape} and {groups.shape}"
        )
    _, inv = np.unique(groups, return_inverse=True)
    member = np.zeros((groups.size, int(inv.max()) + 1))  # (N, G) one-hot
    member[np.arange(groups.size), inv] = 1.0
    mean = (returns @ member) / member.sum(axis=0)  # (T, G)
    return returns - mean[:, inv]


class GroupBaselineCallback(BaseCallback):
    """Sets the rollout buffer's advantages to :func:`group_baseline_advantages` of its
    returns, after SB3 computed them (``on_rollout_end`` follows
    ``compute_returns_and_advantage`` in ``OnPolicyAlgorithm.collect_rollouts``, and
    precedes ``train``). For PPO, A2C and RecurrentPPO, whose buffers keep
    ``(n_steps, n_envs)`` advantages until ``train``.

    Args:
        groups: (n_envs,) group id of each SB3 row (``BalloonSB3VecEnv.baseline_groups``).
    """

    def __init__(self, groups: np.ndarray) -> None:
        super().__init__()
        self.groups = np.asarray(groups, dtype=np.int64)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buf = self.model.rollout_buffer
        adv = group_baseline_advantages(buf.returns, self.groups)
        buf.advantages[...] = adv.astype(buf.advantages.dtype)
