"""The algorithm of :mod:`agents.learners.sb3.finetune`: SB3's PPO with a critic warm-up
and a decaying behaviour-cloning term, and the start from an imitation student."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from agents.learners.imitation.networks import Student
from agents.learners.sb3.finetune import ImitationRun
from agents.runs import ConfigError


def actor_mean(policy: Any, obs: th.Tensor) -> th.Tensor:
    """The Gaussian mean of an SB3 ``ActorCriticPolicy`` for (normalized) ``obs``."""
    features = policy.extract_features(obs, policy.pi_features_extractor)
    return policy.action_net(policy.mlp_extractor.forward_actor(features))


class FrozenRunningMeanStd(RunningMeanStd):
    """VecNormalize's observation statistics, fixed: the student's network was fitted on
    observations normalized by them, so they must not drift under it (VecNormalize
    updates its ``obs_rms`` and its reward statistics together, whenever ``training``)."""

    def update(self, arr: np.ndarray) -> None:
        """Keep the statistics."""


def frozen_obs_rms(student: Student) -> FrozenRunningMeanStd:
    """The student's statistics as VecNormalize's ``obs_rms``: VecNormalize divides by
    ``sqrt(var + epsilon)`` with its default epsilon, which ``wrap_normalize`` keeps and
    the student's ``OBS_EPS`` is (a test checks that PPO's first actions are the
    student's, bit for bit)."""
    rms = FrozenRunningMeanStd(shape=student.obs_mean.shape)
    rms.mean = student.obs_mean.astype(np.float64).copy()
    rms.var = student.obs_var.astype(np.float64).copy()
    return rms


def check_student(student: Student, run: ImitationRun, model: Any) -> None:
    """ConfigError unless ``student`` is the network of ``run`` and fits ``model``'s
    observation and action spaces."""
    for key in ("obs_version", "action_mode"):
        if getattr(student, key) != run.env_options[key]:
            raise ConfigError(
                f"--init-from {run.path}: its student has {key}={getattr(student, key)!r}, "
                f"its config {run.env_options[key]!r}"
            )
    spaces = (("observation", student.net.observation_space, model.observation_space),
              ("action", student.net.action_space, model.action_space))  # fmt: skip
    for what, have, want in spaces:
        if have.shape != want.shape:
            raise ConfigError(
                f"--init-from {run.path}: the student's {what} shape {have.shape} is not "
                f"the PPO policy's {want.shape}"
            )


def init_from_student(model: FineTunePPO, student: Student, log_std: float) -> None:
    """Load the student's actor into ``model``'s policy and set its log std (the critic
    stays PPO's own)."""
    src = student.net.state_dict()
    actor = {k: v for k, v in src.items()
             if k.startswith(("mlp_extractor.policy_net.", "action_net."))}  # fmt: skip
    own = model.policy.state_dict()
    for k, v in actor.items():
        if own[k].shape != v.shape:
            raise ConfigError(
                f"--init-from: the student's {k} has shape {tuple(v.shape)}, PPO's "
                f"{tuple(own[k].shape)} (net_arch differs)"
            )
    model.policy.load_state_dict({**own, **actor})
    with th.no_grad():
        model.policy.log_std.fill_(log_std)
    model.reference = student


# ------------------------------------------------------------------ the algorithm
class FineTunePPO(PPO):
    """SB3's PPO with a critic warm-up and a decaying behaviour-cloning term.

    Args (besides PPO's):
        critic_warmup_rollouts: the first rollouts train the value network only.
        bc_coef, bc_decay: weight ``bc_coef · bc_decay^j`` of the term at the ``j``-th
            policy update.

    ``reference`` (set by :func:`init_from_student`, not saved with the model) is the
    frozen imitation student whose action mean the term pulls towards. Box actions only
    (the student's).
    """

    def __init__(self, *args: Any, critic_warmup_rollouts: int = 0, bc_coef: float = 0.0,
                 bc_decay: float = 1.0, **kwargs: Any) -> None:  # fmt: skip
        self.critic_warmup_rollouts = int(critic_warmup_rollouts)
        self.bc_coef = float(bc_coef)
        self.bc_decay = float(bc_decay)
        self.reference: Student | None = None
        super().__init__(*args, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "reference"]

    def rollouts_done(self) -> int:
        """Rollouts collected so far (``num_timesteps`` counts n_envs per step)."""
        return int(self.num_timesteps) // (self.n_steps * self.n_envs)

    def bc_weight(self, policy_update: int) -> float:
        """The term's weight at policy update ``policy_update`` (0 = the first)."""
        return self.bc_coef * self.bc_decay**policy_update

    def train(self) -> None:
        """SB3 2.x ``PPO.train`` with two changes, marked below: during the warm-up the
        loss is the value loss alone (the actor gets no gradient), and after it the
        behaviour-cloning term is added. With neither it is PPO's update exactly (a test
        compares the weights)."""
        rollout = self.rollouts_done() - 1  # the rollout just collected, from 0
        warmup = rollout < self.critic_warmup_rollouts  # CHANGE
        bc_w = 0.0 if warmup else self.bc_weight(rollout - self.critic_warmup_rollouts)
        if bc_w > 0 and self.reference is None:
            raise RuntimeError("FineTunePPO: bc_coef > 0 needs the reference (init_from_student)")
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)
        entropy_losses, pg_losses, value_losses, clip_fractions, bc_losses = [], [], [], [], []
        continue_training = True
        for _epoch in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                values, log_prob, entropy = self.policy.evaluate_actions(
                    rollout_data.observations, actions
                )
                values = values.flatten()
                advantages = rollout_data.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
                pg_losses.append(policy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())
                if self.clip_range_vf is None:
                    values_pred = values
                else:
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                value_losses.append(value_loss.item())
                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                entropy_losses.append(entropy_loss.item())
                if warmup:  # CHANGE: the critic alone
                    loss = self.vf_coef * value_loss
                else:
                    loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                if bc_w > 0:  # CHANGE: towards the frozen imitation policy's mean action
                    with th.no_grad():
                        target = self.reference.mean(rollout_data.observations)
                    bc_loss = F.mse_loss(actor_mean(self.policy, rollout_data.observations), target)
                    bc_losses.append(bc_loss.item())
                    loss = loss + bc_w * bc_loss
                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    break
                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()
            self._n_updates += 1
            if not continue_training:
                break
        explained_var = explained_variance(
            self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()
        )
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if self.clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
        self.logger.record("finetune/critic_warmup", float(warmup))  # CHANGE: logs
        self.logger.record("finetune/bc_weight", bc_w)
        if bc_losses:
            self.logger.record("finetune/bc_loss", float(np.mean(bc_losses)))
