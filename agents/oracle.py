"""The oracle: an upper bound that reads the simulator and the future. NOT DEPLOYABLE.

A real host knows neither the guests' future references nor its own future counters.
This policy knows both: it copies the live simulator (whose workload is exogenous and
counter-based, so a copy replays exactly the references the real run will see) and
plays candidate balloon plans forward. Use it only as the ceiling of a comparison.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from agents.base import BalloonTargetPolicy, Observation, ticks_for
from envs.reward import step_reward
from envs.sim.core import Simulator

ORACLE_HORIZON_S = 24.0  # look-ahead of every plan
ORACLE_REPLAN_S = 8.0  # seconds between decisions
ORACLE_MARGINS = (0.05, 0.15)  # slack above the future working set, fraction of M
ORACLE_TIGHT_CAP = 0.95  # a more conservative capacity for one extra plan


class OraclePolicy(BalloonTargetPolicy):
    """Model-predictive control on copies of the simulator with hindsight working sets.

    **Not deployable**: it reads the full simulator state and the future reference stream.

    Rule, every 8 s (ticks via ``tick_ms``):

    1. Advance a copy of the workload 24 s and count, for every guest page, the ticks
       in which it will be referenced: the *hindsight working set* ``U_i`` of each VM
       (its distinct upcoming pages) and each page's future reference count.
    2. Build candidate plans (balloon targets per VM): **hold** the current targets;
       **no balloon**; and **fit** plans: give VM ``i`` ``K_i + |U_i| + m · M_i`` pages
       (``m`` = 0.05 or 0.15), and if the guests together still exceed the host's
       capacity (``host_frames − host_min_free`` + KSM savings) balloon the rest in
       proportion to each VM's idle memory; when even the hindsight working sets do not
       fit, the capacity goes to the pages with the most future references, across VMs.
       A last plan repeats the ``m = 0.05`` fit at 95 % of the capacity.
    3. Play each plan 24 s forward on its own deep copy of the simulator (the exact
       future, host swapping, dedup and all) and keep, per env, the plan with the least
       cost (the negative reward summed over the horizon, up to the episode's end; ties
       keep the current targets).

    Constants (ours): horizon 24 s, replanning every 8 s, margins 5 % / 15 %, the 95 %
    capacity plan. Cost: about ``5 · 24 / 8 = 15`` simulator steps per env step.

    Args:
        env: a ``BalloonVectorEnv`` or ``BalloonEnv`` (it needs ``env.core.sim``).
        horizon_s, replan_s: look-ahead and decision period in seconds.
    """

    name = "oracle"

    def __init__(
        self,
        env: Any,
        horizon_s: float = ORACLE_HORIZON_S,
        replan_s: float = ORACLE_REPLAN_S,
    ) -> None:
        self.period_s = replan_s
        super().__init__(env)
        core = getattr(env, "core", None)
        sim = getattr(core, "sim", None)
        if not isinstance(sim, Simulator):
            raise ValueError(
                "the oracle reads the simulator: it needs a ReclaimGym env with env.core.sim "
                f"(BalloonVectorEnv or BalloonEnv), got {type(env).__name__}"
            )
        self.core = core
        self.horizon = ticks_for(horizon_s, self.params.tick_ms)

    @property
    def sim(self) -> Simulator:
        return self.core.sim

    # ---------------------------------------------------------------- hindsight
    def future_counts(self) -> np.ndarray:
        """(B, V, F) int32: ticks of the next ``horizon`` in which each page is referenced."""
        wl = copy.deepcopy(self.sim.workload)
        B, V, F = self.num_envs, self.num_vms, self.sim.F
        counts = np.zeros(B * V * F, dtype=np.int64)
        row = (np.arange(B * V, dtype=np.int64) * F)[:, None]
        for _ in range(self.horizon):
            d = wl.draw()
            refs = d.refs.reshape(B * V, -1).astype(np.int64)
            flat = np.where(refs >= 0, row + refs, -1).ravel()
            flat = np.unique(flat[flat >= 0])
            counts += np.bincount(flat, minlength=B * V * F)
        return counts.reshape(B, V, F)

    def fit_plan(self, counts: np.ndarray, margin: float, cap: np.ndarray) -> np.ndarray:
        """(B, V) balloon targets that keep each VM's hindsight working set plus
        ``margin · M`` and make the guests fit ``cap`` (B,) frames."""
        M = self.M[None, :].astype(np.float64)
        K = self.K[None, :].astype(np.float64)
        u = (counts > 0).sum(axis=2).astype(np.float64)
        need = np.minimum(K + u + margin * M, M)
        idle = M - need
        excess = np.maximum(M.sum(axis=1) - cap, 0.0)  # guest memory to balloon away
        fits = need.sum(axis=1) <= cap
        ratio = np.clip(excess / np.maximum(idle.sum(axis=1), 1.0), 0.0, 1.0)
        plan = idle * ratio[:, None]
        if (~fits).any():
            plan[~fits] = self.squeeze(counts[~fits], cap[~fits])
        return plan

    def squeeze(self, counts: np.ndarray, cap: np.ndarray) -> np.ndarray:
        """(n, V) targets giving ``cap`` frames to the kernels and then to the pages with
        the most future references (across VMs; ties to the lower VM and page)."""
        n, V, F = counts.shape
        keep = np.maximum(cap - self.K.sum(), 0.0).astype(np.int64)
        out = np.zeros((n, V))
        for b in range(n):
            c = counts[b].ravel()
            order = np.argsort(-c, kind="stable")[: keep[b]]
            order = order[c[order] > 0]
            m = np.bincount(order // F, minlength=V)
            out[b] = self.M - self.K - m
        return out

    # ---------------------------------------------------------------- rollouts
    def rollout_cost(self, targets: np.ndarray, remaining: np.ndarray) -> np.ndarray:
        """(B,) negative reward summed over the horizon (at most ``remaining`` ticks) when
        the balloon targets are held at ``targets`` (B, V) on a copy of the simulator."""
        sim = copy.deepcopy(self.sim)
        tg = np.clip(np.rint(targets), 0, self.maxb).astype(np.int64)
        cost = np.zeros(self.num_envs)
        steps = int(min(self.horizon, remaining.max()))
        for h in range(steps):
            res = sim.step(tg)
            c = -step_reward(self.params, res.vm, res.host).reward  # the env's own reward
            cost += np.where(h < remaining, c, 0.0)
        return cost

    def decide(self, obs: Observation, due: np.ndarray) -> np.ndarray:
        remaining = np.maximum(self.core.limit - self.core.elapsed, 1)
        counts = self.future_counts()
        cap = (
            self.H
            - self.params.host_min_free
            + obs.host_gauge("sharing_saved_frames").astype(np.float64)
        )
        plans = [self._targets.astype(np.float64), np.zeros((self.num_envs, self.num_vms))]
        plans += [self.fit_plan(counts, m, cap) for m in ORACLE_MARGINS]
        plans.append(self.fit_plan(counts, ORACLE_MARGINS[0], ORACLE_TIGHT_CAP * cap))
        costs = np.stack([self.rollout_cost(p, remaining) for p in plans])  # (C, B)
        best = np.argmin(costs, axis=0)  # first minimum: holding wins ties
        return np.stack(plans)[best, np.arange(self.num_envs)]


__all__ = ["OraclePolicy"]
