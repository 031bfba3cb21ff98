"""``reclaim ablate``: the agent-design ablations of the headline, on training scenarios only.

Each variant changes one design choice of the base agent (PPO, one network shared by the
VMs, absolute balloon targets, returns normalized by ``VecNormalize``):

- ``recurrent``: observation history, by an LSTM policy (sb3-contrib ``RecurrentPPO``);
- ``flat``: no parameter sharing: one network sees every VM (one VM count only, so the
  ablations run on the 4-VM training scenarios);
- ``raw-reward``: no reward scaling (``VecNormalize(norm_reward=False)``);
- ``delta``: the action moves the balloon by up to its rate instead of setting a target;
- ``residual``: the action corrects ESX's balloon target (``TrainConfig.residual``,
  ``agents.residual.RESIDUAL_SCALE``) instead of setting one from scratch;
- ``residual-quiet``: ``residual`` with less exploration noise (initial action std
  e^-2 ≈ 0.14 instead of e^-0.5 ≈ 0.61): one change from ``residual``, not from the base.

Every run trains on the same training scenarios with the same budget and seeds, and is
scored on held-out *seeds* of those scenarios (``TrainConfig.eval_seed`` onwards, never a
training episode's seed) - the test split is not touched. A run's score on a scenario is
its **cost ratio** ``cost / cost_best`` (cost = −return: stall plus OOM penalties; best:
the best heuristic on the same seeds), so 1 is as good as the best heuristic and 2 twice
as costly; a run's score is the geometric mean over scenarios, a variant's the geometric
mean over its seeds. (A score normalized between no-balloon and the best heuristic
explodes where the two nearly tie, e.g. on trace-recorded-v1.) Runs are ``reclaim train`` runs under
``<runs-dir>/<name>-<variant>/<seed>/``: finished ones are reused, killed ones resume.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.provenance import run_metadata
from envs.files import write_json_atomic, write_text_atomic
from experiments.scoring import NONE, cost_ratio, geomean
from experiments.user_errors import UserError, check_int, load_scenario_module_arg, split_list

VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "recurrent": {"algo": "recurrent-ppo"},
    "flat": {"layout": "flat"},
    "raw-reward": {"normalize_reward": False},
    "delta": {"action_mode": "delta"},
    "residual": {"residual": "esx"},
    "residual-quiet": {"residual": "esx", "log_std_init": -2.0},
}
"""name -> the ``TrainConfig`` fields it changes from the base agent."""


@dataclass(frozen=True)
class AblateConfig:
    """Agent-design ablations on training scenarios (held-out seeds, never the test split)."""

    name: str = "ablate"
    """runs in <runs-dir>/<name>-<variant>/, the report in <results-dir>/"""
    variants: tuple[str, ...] = tuple(VARIANTS)
    """variants to run, comma- or space-separated (base, recurrent, flat, raw-reward, delta,
    residual, residual-quiet)"""
    scenarios: str = "split:train"
    """training scenarios (the 4-VM ones are kept, so that 'flat' applies)"""
    scenario_module: str | None = None
    """a Python file that registers more scenarios (envs.scenarios.demand_scenario /
    trace_scenario), loaded here and in every training job"""
    seeds: int = 2
    """training seeds per variant"""
    total_timesteps: int = 80_000
    """training budget per run in env steps"""
    eval_episodes: int = 4
    """held-out seeds per scenario for the final score"""
    eval_freq: int = 20_000
    """env steps between in-training evaluations and checkpoints (the learning curves)"""
    jobs: int = 0
    """parallel training runs (0: all CPU cores)"""
    runs_dir: str = "runs"
    """where the training runs live (relative: to the current directory)"""
    results_dir: str = "results/ablate"
    """where the report is written (relative: to the current directory; the committed
    ablations: --results-dir experiments/results/headline-v1/ablations)"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenario_module",
                           load_scenario_module_arg("--scenario-module", self.scenario_module))
        object.__setattr__(self, "variants", split_list(self.variants))
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise UserError(f"unknown variant(s) {bad}; choose from {list(VARIANTS)}")
        for f, lo in (("seeds", 1), ("total_timesteps", 1), ("eval_episodes", 1), ("jobs", 0),
                      ("eval_freq", 1)):  # fmt: skip
            check_int(f"--{f.replace('_', '-')}", getattr(self, f), lo)
        if not self.scenario_ids:
            raise UserError(f"--scenarios {self.scenarios!r} has no 4-VM scenario")

    @property
    def scenario_ids(self) -> tuple[str, ...]:
        from envs.scenarios import get_scenario, resolve_scenarios

        try:
            ids = resolve_scenarios(self.scenarios)
        except ValueError as e:
            raise UserError(f"--scenarios: {e}") from None
        return tuple(s for s in ids if get_scenario(s).num_vms == 4)

    def train_config(self, variant: str, seed: int, **kw: Any):
        from agents.learners.sb3.train import TrainConfig

        fields = dict(
            scenario=",".join(self.scenario_ids), seed=seed,
            total_timesteps=self.total_timesteps, name=f"{self.name}-{variant}",
            runs_dir=self.runs_dir, scenario_module=self.scenario_module,
            eval_episodes=self.eval_episodes,
            eval_freq=self.eval_freq, checkpoint_freq=self.eval_freq,
            progress_bar=False, tensorboard=False, torch_threads=1,
        )  # fmt: skip
        fields.update(VARIANTS[variant])
        fields.update(kw)
        return TrainConfig(**fields)


def train_job(args: tuple[dict[str, Any]]) -> dict[str, Any]:
    from agents.learners.sb3.train import TrainConfig, train

    (fields,) = args
    res = train(TrainConfig(**fields))
    return {"run_dir": str(res.run_dir), "final_eval": res.final_eval}


def _plan(config: AblateConfig) -> list[tuple[str, int, dict[str, Any]]]:
    import dataclasses

    jobs = []
    for variant in config.variants:
        for seed in range(config.seeds):
            tc = config.train_config(variant, seed)
            # a finished run is reused and a killed one resumes; a new one starts fresh
            resume = tc.run.is_finished(config.total_timesteps) or tc.run.has_checkpoint()
            tc = dataclasses.replace(tc, resume=resume, overwrite=not resume)
            jobs.append((variant, seed, dataclasses.asdict(tc)))
    return jobs


def baselines(scenarios: tuple[str, ...], seeds: list[int]) -> dict[str, dict[str, float]]:
    """scenario -> policy -> mean return of every heuristic (no-balloon included) on
    ``seeds``, with its published constants (the <name>-tuned ones are left out so that
    the ablation scores keep their reference)."""
    from agents.policies import HEURISTIC_NAMES
    from experiments.evaluate import run_policy

    out: dict[str, dict[str, float]] = {}
    for sc in scenarios:
        out[sc] = {p: float(np.mean([r["return"] for r in run_policy(p, sc, seeds)]))
                   for p in HEURISTIC_NAMES}  # fmt: skip
    return out


def score(final_eval: dict[str, float], base: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per scenario the cost ratio ``(−R) / (−R_best)`` (``experiments.scoring``), R_best
    the best heuristic's mean return but no-balloon's."""
    out = {}
    for sc, r in final_eval.items():
        best = max(v for k, v in base[sc].items() if k != NONE)
        out[sc] = cost_ratio(r, best)
    return out


def summarize(results: list[dict[str, Any]], base: dict[str, dict[str, float]]) -> list[dict]:
    """One row per variant: the geometric mean over seeds of each seed's geometric-mean
    cost ratio over scenarios, and the per-scenario ratios (mean over seeds)."""
    rows = []
    for variant in dict.fromkeys(r["variant"] for r in results):
        runs = [r for r in results if r["variant"] == variant]
        per = [score(r["final_eval"], base) for r in runs]
        per_seed = [geomean(list(p.values())) for p in per]
        rows.append({
            "variant": variant, "changes": VARIANTS[variant], "seeds": len(runs),
            "cost_ratio": geomean(per_seed), "cost_ratio_per_seed": per_seed,
            "per_scenario": {sc: geomean([p[sc] for p in per]) for sc in per[0]},
            "mean_return": float(np.mean([np.mean(list(r["final_eval"].values())) for r in runs])),
        })  # fmt: skip
    return rows


def markdown(config: AblateConfig, rows: list[dict], base: dict) -> str:
    lines = [
        f"# Agent-design ablations ({config.total_timesteps:,} env steps, {config.seeds} "
        f"seeds, {len(config.scenario_ids)} training scenarios)",
        "",
        "Cost ratio: per scenario the run's cost (−return) over the best heuristic's on the "
        "same held-out seeds of the training scenarios (1 = as good as the best heuristic), "
        "geometric mean over scenarios, then over seeds; the test split is not used.",
        "",
        "| variant | changes | cost ratio | per seed | mean return |",
        "|---|---|---:|---|---:|",
    ]
    for r in rows:
        ch = ", ".join(f"{k}={v}" for k, v in r["changes"].items())
        ch = ch or "(base: PPO, per-vm, absolute, reward normalized)"
        per = ", ".join(f"{x:.2f}" for x in r["cost_ratio_per_seed"])
        lines.append(f"| {r['variant']} | {ch} | {r['cost_ratio']:.2f} | {per} | "
                     f"{r['mean_return']:.2f} |")  # fmt: skip
    scs = list(rows[0]["per_scenario"]) if rows else []
    lines += ["", "Cost ratio per scenario (geometric mean over seeds):", "",
              "| scenario | " + " | ".join(r["variant"] for r in rows) + " |",
              "|---|" + "---:|" * len(rows)]  # fmt: skip
    for sc in scs:
        lines.append(f"| {sc} | " + " | ".join(f"{r['per_scenario'][sc]:.2f}" for r in rows)
                     + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def run(config: AblateConfig) -> int:
    from experiments.backends import ProcessBackend

    plan = _plan(config)
    jobs = config.jobs or os.cpu_count() or 1
    print(f"[ablate] {len(plan)} training run(s), {min(jobs, len(plan))} in parallel", flush=True)
    from experiments.estimate import announce

    todo = [(v, s) for v, s, _f in plan
            if not config.train_config(v, s).run.is_finished(config.total_timesteps)]  # fmt: skip
    announce("ablate", len(todo), config.total_timesteps, jobs)
    with ProcessBackend(jobs) as be:
        done = be.map(train_job, [(f,) for _v, _s, f in plan])
    results = [{"variant": v, "seed": s, **d} for (v, s, _f), d in zip(plan, done, strict=True)]
    # the held-out seeds every run's final evaluation used (TrainConfig.eval_seed on)
    first = config.train_config(config.variants[0], 0).eval_seed
    seeds = [first + k for k in range(config.eval_episodes)]
    base = baselines(config.scenario_ids, seeds)
    rows = summarize(results, base)
    out = Path(config.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "ablations.json", {
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "rows": rows, "runs": results, "baselines": base, "meta": run_metadata(),
    })  # fmt: skip
    md = markdown(config, rows, base)
    write_text_atomic(out / "ablations.md", md)
    print(md, end="")
    print(json.dumps({r["variant"]: round(r["cost_ratio"], 4) for r in rows}))
    return 0
