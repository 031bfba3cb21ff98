"""``reclaim evaluate``: every policy on every scenario and seed, paired, with CIs.

Each (policy, scenario) runs all its seeds together in one native
:class:`~envs.vector_env.BalloonVectorEnv` (env ``i`` gets seed ``seeds[i]``), so every
policy sees exactly the same reference streams (the workload is exogenous): the
comparison is paired by seed. One row per episode (the first episode of each env; a
host OOM ends it early) with the return, length, host OOM flag, stall time and the total
of every per-VM event counter (docs/model.md §5) summed over the VMs.

Summary per (policy, scenario): the mean of every column and a 95 % confidence interval
of the mean return (Student t, ``t_{0.975, n−1} · s / √n``), and the paired difference
of the return to ``esx`` (the classic ballooning heuristic) with its t interval over the
per-seed differences. The hindsight bound (``agents.bound``: no policy returns more) is
computed per scenario and seed: every episode row carries ``bound_return`` and
``bound_stall_us``, every summary their means, and the markdown a ``bound`` row per
scenario (it is not a policy). Results go to ``runs/evaluate/<UTC timestamp>/`` under the
current directory (or ``--out``):
``episodes.csv``, ``summary.csv``, ``summary.md`` and ``config.json`` (seeds, options,
versions, git revision), each written atomically.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro

from agents.learners.sb3.train import DEFAULT_IN_HELP
from agents.provenance import run_metadata
from envs.files import write_csv, write_json_atomic, write_text_atomic
from experiments.user_errors import (
    UserError,
    check_int,
    check_policies,
    check_scenarios,
    load_scenario_module_arg,
    split_list,
)

BASELINE = "esx"
EPISODE_KEYS = ("policy", "scenario", "seed", "return", "length", "host_oom", "stall_us")
BOUND = "bound"  # the markdown row of the hindsight bound (not a policy)


def _event_names() -> tuple[str, ...]:
    from envs.sim.counters import VM_EVENTS

    return VM_EVENTS


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    try:
        from scipy.stats import t

        return float(t.ppf(0.975, df))
    except ImportError:  # pragma: no cover - scipy ships with the rl extras
        table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
        return table[df - 1] if df <= len(table) else 1.96 + 2.5 / df


def mean_ci(x: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t interval (NaN for fewer than 2 values)."""
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return math.nan, math.nan
    if a.size < 2:
        return float(a.mean()), math.nan
    return float(a.mean()), float(t_quantile(a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))


def run_policy(
    policy: str,
    scenario: str,
    seeds: Sequence[int],
    *,
    max_episode_steps: int | None = None,
    action_mode: str = "absolute",
    overrides: Mapping[str, Any] | None = None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """One episode per seed of ``policy`` on ``scenario``; one dict per episode.

    A trained run (a run directory or model of any learner) plays on the env options it
    was trained under (``agents.learners.run_env_options``: observation version,
    decision period, holding, action mode); the returns stay comparable with the other
    policies' (a step's reward is the sum over its ticks)."""
    from agents.learners import run_env_options
    from agents.policies import is_run_path, make_policy
    from envs.rollout import first_episodes
    from envs.vector_env import BalloonVectorEnv

    options: dict[str, Any] = {"action_mode": action_mode}
    if is_run_path(policy):
        options.update(run_env_options(policy))
    env = BalloonVectorEnv(
        len(seeds),
        scenario,
        max_episode_steps=max_episode_steps,
        **options,
        **dict(overrides or {}),
    )
    pol = make_policy(policy, env)
    prm = env.config.params
    vcpus = np.array([v.vcpus for v in prm.vms], dtype=np.float64)
    tick_us = prm.tick_us
    tick = None if progress is None else (lambda _step: progress.update(1))
    t0 = time.perf_counter()
    episodes = first_episodes(env, pol, [int(s) for s in seeds], on_step=tick)
    wall = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    for seed, ep in zip(seeds, episodes, strict=True):
        row: dict[str, Any] = {
            "policy": policy,
            "scenario": scenario,
            "seed": int(seed),
            "return": float(ep["return"]),
            "length": int(ep["length"]),
            "host_oom": int(ep["host_oom"]),
            "stall_us": float(ep["stall_us"].sum()),
            # vCPU time lost to paging: mean over VMs and ticks of stall / (vcpus · tick)
            "stall_frac": float(np.mean(ep["stall_us"] / vcpus) / (tick_us * max(1, ep["length"]))),
        }
        for name in _event_names():
            row[name] = int(ep["totals"][name].sum())
        row["wall_s"] = round(wall / len(seeds), 4)
        rows.append(row)
    return rows


def add_bounds(rows: Sequence[dict[str, Any]], scenario: str, seeds: Sequence[int], *,
               max_episode_steps: int | None = None,
               overrides: Mapping[str, Any] | None = None) -> None:  # fmt: skip
    """Set ``bound_return`` / ``bound_stall_us`` (``agents.bound``) on the episode rows
    of ``scenario``, by seed."""
    from agents.bound import episode_bounds

    bounds = episode_bounds(scenario, list(seeds), max_episode_steps=max_episode_steps,
                            overrides=overrides)  # fmt: skip
    by_seed = {int(s): b for s, b in zip(seeds, bounds, strict=True)}
    for r in rows:
        b = by_seed[int(r["seed"])]
        r["bound_return"] = b.bound_return
        r["bound_stall_us"] = b.bound_stall_us


def summarize(episodes: Sequence[Mapping[str, Any]], baseline: str = BASELINE) -> list[dict]:
    """One summary dict per (policy, scenario), in first-seen order."""
    events = _event_names()
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for e in episodes:
        groups.setdefault((e["policy"], e["scenario"]), []).append(e)
    out = []
    for (pol, sc), eps in groups.items():
        ret = [e["return"] for e in eps]
        m, ci = mean_ci(ret)
        s: dict[str, Any] = {
            "policy": pol,
            "scenario": sc,
            "episodes": len(eps),
            "return_mean": m,
            "return_ci95": ci,
            "host_ooms": int(sum(e["host_oom"] for e in eps)),
            "length_mean": float(np.mean([e["length"] for e in eps])),
            "stall_us": float(np.mean([e["stall_us"] for e in eps])),
        }
        for name in events:
            s[name] = float(np.mean([e[name] for e in eps]))
        if all("bound_return" in e for e in eps):
            s["bound_return_mean"] = float(np.mean([e["bound_return"] for e in eps]))
            s["bound_stall_us_mean"] = float(np.mean([e["bound_stall_us"] for e in eps]))
        base = {e["seed"]: e["return"] for e in groups.get((baseline, sc), [])}
        diffs = [e["return"] - base[e["seed"]] for e in eps if e["seed"] in base]
        dm, dci = mean_ci(diffs) if diffs else (math.nan, math.nan)
        s[f"diff_vs_{baseline}_mean"] = dm
        s[f"diff_vs_{baseline}_ci95"] = dci
        out.append(s)
    return out


def evaluate(
    policies: Sequence[str],
    scenarios: Sequence[str],
    seeds: int | Sequence[int],
    *,
    max_episode_steps: int | None = None,
    action_mode: str = "absolute",
    overrides: Mapping[str, Any] | None = None,
    progress: bool = False,
    bound: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every policy on every scenario with the same seeds.

    Args:
        policies: names of ``agents.policies.POLICY_NAMES``.
        scenarios: scenario ids.
        seeds: a count ``n`` (seeds ``0 .. n-1``) or the seeds themselves.
        max_episode_steps: episode length (default: each scenario's).
        action_mode: the env's action mode.
        overrides: HostParams / CostParams overrides applied to every scenario.
        progress: show a tqdm bar (on stderr).
        bound: add each (scenario, seed)'s hindsight bound to its episode rows.

    Returns:
        ``(episodes, summaries)``: one dict per episode, one per (policy, scenario).

    Raises:
        ValueError: an unknown policy or scenario name (listing the valid ones).
    """
    from agents.policies import check_policy_name
    from envs.scenarios import get_scenario

    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("need at least one seed")
    if not policies or not scenarios:
        raise ValueError(f"need at least one policy and one scenario, got {policies}, {scenarios}")
    for p in policies:
        check_policy_name(p)
    steps_total = 0
    for sc in scenarios:
        n = get_scenario(sc).max_episode_steps if max_episode_steps is None else max_episode_steps
        steps_total += n * len(policies)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps_total, unit="step", file=sys.stderr, dynamic_ncols=True)
    episodes: list[dict[str, Any]] = []
    try:
        for sc in scenarios:
            for p in policies:
                if bar is not None:
                    bar.set_description(f"{p} on {sc}")
                rows = run_policy(
                    p,
                    sc,
                    seed_list,
                    max_episode_steps=max_episode_steps,
                    action_mode=action_mode,
                    overrides=overrides,
                    progress=bar,
                )
                episodes.extend(rows)
            if bound:
                add_bounds([e for e in episodes if e["scenario"] == sc], sc, seed_list,
                           max_episode_steps=max_episode_steps, overrides=overrides)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    return episodes, summarize(episodes)


# ------------------------------------------------------------------------ output
def _fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        return f"{x:.{digits}f}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


MD_COLUMNS = (
    "guest_major_faults",
    "host_swapins",
    "double_paging",
    "false_swap_reads",
    "host_swapouts",
    "guest_swapouts",
    "cow_breaks",
    "guest_oom_kills",
)


def to_markdown(summaries: Sequence[Mapping[str, Any]], baseline: str = BASELINE) -> str:
    """A markdown table: return (mean ± 95 % t CI), paired difference to the baseline,
    and the mean per-episode totals of the stalling counters."""
    head = ["scenario", "policy", "n", "return", f"Δ vs {baseline}", "host OOM"] + [
        c for c in MD_COLUMNS
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, s in enumerate(summaries):
        d, dci = s[f"diff_vs_{baseline}_mean"], s[f"diff_vs_{baseline}_ci95"]
        cells = [
            s["scenario"],
            s["policy"],
            str(s["episodes"]),
            f"{_fmt(s['return_mean'])} ± {_fmt(s['return_ci95'])}",
            "–" if math.isnan(d) else f"{_fmt(d)} ± {_fmt(dci)}",
            str(s["host_ooms"]),
        ] + [f"{s[c]:.0f}" for c in MD_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
        last = i + 1 == len(summaries) or summaries[i + 1]["scenario"] != s["scenario"]
        if last and "bound_return_mean" in s:
            cells = [s["scenario"], f"({BOUND})", str(s["episodes"]),
                     _fmt(s["bound_return_mean"]), "–", "–"]  # fmt: skip
            cells += ["–" for _ in MD_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    note = (
        "\nReturn: mean over seeds ± half-width of the 95 % Student-t interval. "
        f"Δ vs {baseline}: paired (same seeds) difference of returns, mean ± 95 % t "
        "interval; positive = better than the baseline. Counters: mean per-episode totals "
        f"summed over VMs. ({BOUND}): the hindsight bound on the return (agents.bound), "
        "mean over the same seeds: no policy returns more.\n"
    )
    return "\n".join(lines) + "\n" + note


def bound_rows(episodes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, seed) with its ``bound_return`` and ``bound_stall_us``."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for e in episodes:
        if "bound_return" in e:
            key = (e["scenario"], int(e["seed"]))
            out.setdefault(key, {"scenario": key[0], "seed": key[1],
                                 "bound_return": e["bound_return"],
                                 "bound_stall_us": e["bound_stall_us"]})  # fmt: skip
    return list(out.values())


def write_results(
    out_dir: Path,
    episodes: Sequence[Mapping[str, Any]],
    summaries: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any],
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "episodes.csv", episodes)
    write_csv(out_dir / "summary.csv", summaries)
    write_text_atomic(out_dir / "summary.md", to_markdown(summaries))
    bounds = bound_rows(episodes)
    if bounds:
        write_csv(out_dir / "bounds.csv", bounds)
    write_json_atomic(out_dir / "config.json", run_metadata(**config))


# ------------------------------------------------------------------------ CLI
DEFAULT_POLICIES = ("no-balloon", "static", "esx", "mom", "selfballoon", "hyperv", "mrc", "random")


def _parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise UserError(f"--set expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        val = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        val = value
    return key.strip(), val


@dataclass(frozen=True)
class EvaluateConfig:
    """Evaluate policies on scenarios: every policy sees the same seeds (paired), with
    95 % confidence intervals and the paired difference to esx."""

    policies: tuple[str, ...] = DEFAULT_POLICIES
    """policy names, comma- or space-separated: no-balloon, static, esx, mom, selfballoon, hyperv, mrc, oracle, random, or a trained run (its directory, any learning method, or a model .zip in it)"""  # noqa: E501
    scenarios: tuple[str, ...] = ("default-v1",)
    """scenario ids, comma- or space-separated (see reclaim scenarios)"""
    scenario_module: str | None = None
    """a Python file that registers more scenarios (envs.scenarios.demand_scenario /
    trace_scenario), loaded before --scenarios is checked"""
    seeds: int = 5
    """episodes per (policy, scenario): seeds seed-base .. seed-base + seeds - 1"""
    seed_base: int = 0
    """first seed"""
    steps: Annotated[int | None, DEFAULT_IN_HELP] = None
    """max_episode_steps (default: each scenario's)"""
    action_mode: Literal["absolute", "delta", "discrete"] = "absolute"
    """the env's action mode"""
    overrides: Annotated[
        tuple[str, ...], tyro.conf.arg(name="set", metavar="KEY=VALUE"), tyro.conf.UseAppendAction
    ] = ()
    """HostParams / CostParams override for every scenario, e.g. --set host_policy='lru'"""
    out: Annotated[Path | None, DEFAULT_IN_HELP] = None
    """run directory (default: runs/evaluate/<UTC time>, under the current directory)"""
    json: bool = False
    """print the summaries as one JSON list on stdout"""
    progress: bool = True
    """progress bar on stderr"""
    bound: bool = True
    """compute the hindsight bound of every (scenario, seed) (agents.bound)"""

    def __post_init__(self) -> None:
        from envs.env_batch import make_config

        object.__setattr__(self, "policies", split_list(self.policies))
        object.__setattr__(self, "scenarios", split_list(self.scenarios))
        object.__setattr__(self, "scenario_module",
                           load_scenario_module_arg("--scenario-module", self.scenario_module))
        check_policies("--policies", self.policies)
        check_scenarios("--scenarios", self.scenarios)
        check_int("--seeds", self.seeds, 1)
        check_int("--seed-base", self.seed_base, 0)
        if self.steps is not None:
            check_int("--steps", self.steps, 1)
        overrides = self.override_dict  # checks KEY=VALUE
        for sc in self.scenarios:
            try:
                make_config(sc, max_episode_steps=self.steps, action_mode=self.action_mode,
                            **overrides)  # fmt: skip
            except ValueError as e:
                raise UserError(f"--set: {e}") from None

    @property
    def override_dict(self) -> dict[str, Any]:
        return dict(_parse_override(t) for t in self.overrides)

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed_base, self.seed_base + self.seeds))


def run(config: EvaluateConfig) -> int:
    seeds = config.seed_list
    overrides = config.override_dict
    episodes, summaries = evaluate(
        config.policies,
        config.scenarios,
        seeds,
        max_episode_steps=config.steps,
        action_mode=config.action_mode,
        overrides=overrides,
        progress=config.progress,
        bound=config.bound,
    )
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = config.out if config.out is not None else Path("runs") / "evaluate" / stamp
    meta = {
        "command": "evaluate",
        "policies": list(config.policies),
        "scenarios": list(config.scenarios),
        "seeds": seeds,
        "max_episode_steps": config.steps,
        "action_mode": config.action_mode,
        "overrides": overrides,
        "scenario_module": config.scenario_module,
        "ci": "95 % Student t on the mean; paired t on per-seed differences to esx",
    }
    write_results(Path(out_dir), episodes, summaries, meta)
    if config.json:
        by_seed: dict[str, dict[str, float]] = {}
        for r in bound_rows(episodes):
            by_seed.setdefault(r["scenario"], {})[str(r["seed"])] = r["bound_return"]
        rows = [{**s, **({"bound_return_by_seed": by_seed[s["scenario"]]}
                         if s["scenario"] in by_seed else {})} for s in summaries]  # fmt: skip
        print(json.dumps(_jsonable(rows)))
    else:
        print(to_markdown(summaries))
        print(f"results: {out_dir}")
    return 0


def _jsonable(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and math.isnan(v) else v

    return [{k: clean(v) for k, v in r.items()} for r in rows]
