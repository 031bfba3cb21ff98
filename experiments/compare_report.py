"""The report of ``reclaim compare``: CSV tables, ``headline.json``, ``table.md``, plots.

:func:`report` scores the test episodes (``experiments.scoring``), computes the
statistics (``experiments.compare_stats``) and writes, atomically, into the result
folder: ``scores.csv``, ``summary.csv`` (IQM / mean / median / optimality gap with CIs),
``poi.csv`` (P(> esx)), ``poi_learned.csv`` (P(learned > X)), ``per_scenario.csv``,
``bracket.csv``, ``learning_curves.csv``, ``episodes.csv``, ``headline.json`` (the best
learned algorithm against the strongest heuristic), ``diagnosis.csv`` (what the policies
do with the balloon), ``table.md`` and the plots of ``experiments.compare_plots``
(with per-VM timelines of the best learned run where it trails the strongest heuristic
most, ``timeline.png``, and where it leads it most, ``timeline_best.png``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from agents.policies import TUNED_NAMES
from envs.files import write_csv, write_json_atomic, write_text_atomic
from experiments.compare_config import CompareConfig
from experiments.compare_stats import (
    aggregates,
    bracket,
    cell_matrices,
    improvement_over_esx,
    improvements,
    iqm,
    per_scenario,
)
from experiments.scoring import ESX, NONE, ORACLE, RunLabel, normalized_scores, policy_group


def headline(config: CompareConfig, summary: list[dict[str, Any]], poi: list[dict[str, Any]],
             per_sc: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """The machine-readable result (``headline.json``): the best learned algorithm and the
    strongest heuristic in aggregate (IQM; stock and tuned rules alike; no-balloon and the
    oracle are references, not heuristics), P(best learned > best heuristic) with its CI,
    P against each heuristic and the oracle, and the share of the [no-balloon, oracle]
    gap closed (the IQM of the normalized score). Where tuned heuristics
    (``agents.policies.TUNED_NAMES``) are among the baselines, also the strongest of them
    and P(best learned > it) with its CI."""
    iqm = {r["policy"]: r for r in summary}
    learned = [a for a in config.algos if a in iqm]
    heur = [r["policy"] for r in summary if r["policy"] not in (*config.algos, NONE, ORACLE)]
    out: dict[str, Any] = {
        "name": config.name, "test_scenarios": list(config.test_ids),
        "train_scenarios": list(config.train_ids), "algos": list(config.algos),
        "seeds": config.seeds, "total_timesteps": config.total_timesteps,
        "eval_seeds": config.eval_seeds,
        "iqm": {k: {"IQM": r["IQM"], "ci": [r["IQM_lo"], r["IQM_hi"]]} for k, r in iqm.items()},
    }  # fmt: skip
    if not learned or not heur:
        return out
    best_l = max(learned, key=lambda k: iqm[k]["IQM"])
    best_h = max(heur, key=lambda k: iqm[k]["IQM"])  # stock and tuned rules alike
    by = {(r["policy"], r["vs"]): r for r in poi}
    p = by.get((best_l, best_h))
    tuned = [k for k in heur if k in TUNED_NAMES]
    if tuned:
        best_t = max(tuned, key=lambda k: iqm[k]["IQM"])
        pt = by.get((best_l, best_t))
        out.update({
            "strongest_tuned_heuristic": best_t,
            "poi_vs_strongest_tuned": None if pt is None else pt["P_improve"],
            "poi_vs_strongest_tuned_ci": None if pt is None else [pt["lo"], pt["hi"]],
        })  # fmt: skip
    out.update({
        "best_learned": best_l, "best_heuristic": best_h,
        "poi_vs_best_heuristic": None if p is None else p["P_improve"],
        "poi_ci": None if p is None else [p["lo"], p["hi"]],
        "goal": "P(best learned > best heuristic) > 0.75 with CI low > 0.5",
        "goal_met": bool(p is not None and p["P_improve"] > 0.75 and p["lo"] > 0.5),
        "gap_closed": {k: iqm[k]["IQM"] for k in learned},
        "poi": {f"{a}>{b}": {"P": r["P_improve"], "ci": [r["lo"], r["hi"]]}
                for (a, b), r in by.items()},
        "per_scenario_score": {f"{r['policy']}@{r['scenario']}": r["mean_score"]
                               for r in per_sc if r["policy"] in (best_l, best_h)},
    })  # fmt: skip
    return out


def _markdown(config: CompareConfig, summary: list[dict[str, Any]],
              poi_rows: list[dict[str, Any]], n_cells: int, clamped: int,
              wall_s: float, brackets: list[dict[str, Any]] | None = None,
              per_sc: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """The report's table and its caption."""
    tasks = config.test_ids
    lines = [
        f"# {config.name}: normalized score on {len(tasks)} test scenario(s)",
        "",
        f"Score per scenario and seed: 0 = {NONE}, 1 = {ORACLE}, on the {n_cells - clamped} "
        f"of {n_cells} (scenario, seed) cells with headroom (R_oracle − R_none ≥ "
        f"{config.min_gap_frac:g}·|R_none|; the other {clamped} are left out, not floored). "
        f"IQM / mean with stratified bootstrap 95 % CIs over runs and cells "
        f"({config.bootstrap_reps} resamples). P(> esx): probability of improvement over "
        "EsxPolicy. Learned runs: training seeds; baselines: one run.",
        "",
        "| policy | runs | IQM [95 % CI] | mean [95 % CI] | optimality gap | P(> esx) [95 % CI] |",
        "|---|---|---|---|---|---|",
    ]
    poi = {r["policy"]: r for r in poi_rows}
    for r in summary:
        p = poi.get(r["policy"])
        pstr = "–" if p is None else f"{p['P_improve']:.2f} [{p['lo']:.2f}, {p['hi']:.2f}]"
        lines.append(
            f"| {r['policy']} | {r['runs']} | {r['IQM']:.3f} [{r['IQM_lo']:.3f}, {r['IQM_hi']:.3f}]"
            f" | {r['Mean']:.3f} [{r['Mean_lo']:.3f}, {r['Mean_hi']:.3f}] "
            f"| {r['OptimalityGap']:.3f} | {pstr} |"
        )
    lines += [
        "",
        f"Train: {', '.join(config.train_ids)}. Test: {', '.join(tasks)} "
        f"({config.eval_seeds} seeds from {config.eval_seed_base}). Budget "
        f"{config.total_timesteps} env steps per run, {config.seeds} seed(s). "
        f"No headroom on {clamped} of {n_cells} (scenario, seed) cells. "
        f"Wall time of this invocation {wall_s:.0f} s (work it found finished is not "
        "counted).",
        "",
    ]
    if brackets:
        lines += [
            "## Bracket per scenario: [oracle, bound]",
            "",
            "Mean returns over the test seeds. bound: the hindsight bound (agents.bound), "
            "no policy returns more. share: the part of [no-balloon, bound] closed.",
            "",
            "| scenario | no-balloon | best baseline | oracle | bound | oracle share "
            "| best baseline share |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in brackets:
            lines.append(
                f"| {b['scenario']} | {b['no_balloon']:.4f} | {b['best_baseline']} "
                f"{b['best_baseline_return']:.4f} | {b['oracle']:.4f} | {b['bound']:.4f} "
                f"| {b['oracle_share']:.3f} | {b['best_baseline_share']:.3f} |"
            )
        lines.append("")
    if per_sc:
        pols = list(dict.fromkeys(r["policy"] for r in per_sc))
        lines += [
            "## Stall relative to no-balloon (geometric mean over seeds)",
            "",
            "| scenario | " + " | ".join(pols) + " |",
            "|---|" + "---|" * len(pols),
        ]
        for t in tasks:
            cells = {r["policy"]: r["mean_stall_ratio"] for r in per_sc if r["scenario"] == t}
            lines.append(f"| {t} | " + " | ".join(f"{cells[p]:.3f}" for p in pols) + " |")
        lines.append("")
    return "\n".join(lines)


def best_run_timelines(config: CompareConfig, runs: dict[RunLabel, Path],
                       mats: dict[str, np.ndarray], order: list[str],
                       scenario: str | None = None,
                       versus: tuple[str, ...] = (ESX,),
                       ) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """Per-VM gauges of the first test episode (on ``scenario``, default the first test
    scenario) of the best learned run of ``runs`` (finished runs: their models) and of
    each policy of ``versus`` (``{}`` when no run finished). Best: the algorithm with the
    best IQM, its run with the best mean score."""
    from experiments.timeline import episode_timeline

    if not runs:
        return {}
    algo = next((k for k in order if k in config.algos), config.algos[0])
    labels = [lab for lab in runs if lab.algo == algo]
    scores = mats.get(algo)
    if scores is None or scores.shape[0] != len(labels) or scores.size == 0:
        best = labels[0]
    else:
        best = labels[int(np.argmax(scores.mean(axis=1)))]
    scenario = scenario or config.test_ids[0]
    seed, steps = config.eval_seed_base, config.max_episode_steps
    out = {str(best): episode_timeline(str(runs[best]), scenario, seed, config.action_mode, steps)}
    for v in dict.fromkeys(versus):
        out[v] = episode_timeline(v, scenario, seed, "absolute", steps)
    return out


def report(config: CompareConfig, test_eps: list[dict[str, Any]], curves: list[dict[str, Any]],
           curve_refs: list[dict[str, Any]], runs: dict[RunLabel, Path],
           wall_s: float) -> str:  # fmt: skip
    """Write the CSVs, the markdown table and the plots; returns the markdown. ``runs``:
    the model of every finished training run (``compare_config.learned_policies``)."""
    import warnings

    from experiments import compare_plots

    # rliable passes arch a RandomState, which arch deprecates (harmless here).
    warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    out, tasks, reps = config.out_dir, config.test_ids, config.bootstrap_reps
    scored, clamped = normalized_scores(test_eps, config.min_gap_frac)
    write_csv(out / "scores.csv", scored)
    mats, _cells = cell_matrices(scored)
    mats = {k: m for k, m in mats.items() if m.size}
    groups = list(dict.fromkeys(policy_group(e["policy"]) for e in scored))
    order = sorted(mats, key=lambda k: -iqm(mats[k])) + [g for g in groups if g not in mats]
    rs = np.random.RandomState(0)  # one stream, drawn in this order: reproducible CIs
    ranked = [k for k in order if k in mats]
    summary, point, ci = aggregates(mats, ranked, reps, rs) if ranked else ([], {}, {})
    rng = np.random.default_rng(0)  # the paired cell-and-run bootstrap's own stream
    poi_rows = improvement_over_esx(mats, ranked, reps, rng) if ranked else []
    learned = [a for a in config.algos if a in mats]
    refs = [k for k in ranked if k not in config.algos and k != NONE]
    poi_learned = improvements(mats, learned, refs, reps, rng)
    per_sc = per_scenario(scored, order, tasks, reps, rs)
    brackets = bracket(test_eps, tasks)
    head = headline(config, summary, poi_learned, per_sc)
    write_json_atomic(out / "headline.json", head)
    for name, rows in (("summary", summary), ("poi", poi_rows), ("per_scenario", per_sc),
                       ("poi_learned", poi_learned),
                       ("learning_curves", curves), ("episodes", test_eps),
                       ("bracket", brackets)):  # fmt: skip
        write_csv(out / f"{name}.csv", rows)
    n_cells = len({(e["scenario"], e["seed"]) for e in test_eps})
    md = _markdown(config, summary, poi_rows, n_cells, clamped, wall_s, brackets, per_sc)
    md += _headline_markdown(head, poi_learned, per_sc)
    if "best_learned" in head:
        diag = diagnosis(test_eps, [head["best_learned"], head["best_heuristic"], NONE], tasks)
        write_csv(out / "diagnosis.csv", diag)
        md += diagnosis_markdown(diag)
    write_text_atomic(out / "table.md", md)
    # The profile draws the learned algorithms, the references, ESX and the strongest
    # heuristics (stock and tuned) at the least.
    keep = (*learned, ORACLE, NONE, ESX, head.get("best_heuristic", ESX),
            head.get("strongest_tuned_heuristic", ESX))  # fmt: skip
    compare_plots.plot_all(out, mats, ranked, point, ci, per_sc, curves, curve_refs,
                           reps=min(reps, 1000), keep=keep)  # fmt: skip
    # The best learned run against ESX and the strongest heuristic (when another), on the
    # scenario where it trails that heuristic most (timeline.png) and where it leads it
    # most (timeline_best.png).
    strongest = head.get("best_heuristic", ESX)
    versus = (ESX, strongest)
    for name, pick, verb in (("timeline", worst_scenario, "trails"),
                             ("timeline_best", best_scenario, "leads")):  # fmt: skip
        scenario = pick(per_sc, head.get("best_learned"), strongest) or tasks[0]
        timelines = best_run_timelines(config, runs, mats, order, scenario, versus)
        if timelines:
            compare_plots.plot_timeline(out, timelines, scenario, config.eval_seed_base,
                                        name=name, note=f"where the learned policy {verb} "
                                        f"{strongest} most")  # fmt: skip
    return md


def _score_gaps(per_sc: list[dict[str, Any]], learned: str | None,
                versus: str) -> dict[str, float]:  # fmt: skip
    """Per test scenario: ``learned``'s mean score minus ``versus``'s (finite ones)."""
    if learned is None:
        return {}
    a = {r["scenario"]: r["mean_score"] for r in per_sc if r["policy"] == learned}
    b = {r["scenario"]: r["mean_score"] for r in per_sc if r["policy"] == versus}
    return {t: a[t] - b[t] for t in a if t in b and np.isfinite(a[t] - b[t])}


def worst_scenario(per_sc: list[dict[str, Any]], learned: str | None, versus: str) -> str | None:
    """The test scenario where ``learned`` trails ``versus`` most in mean score."""
    gaps = _score_gaps(per_sc, learned, versus)
    return min(gaps, key=lambda t: gaps[t]) if gaps else None


def best_scenario(per_sc: list[dict[str, Any]], learned: str | None, versus: str) -> str | None:
    """The test scenario where ``learned`` leads ``versus`` most (trails it least)."""
    gaps = _score_gaps(per_sc, learned, versus)
    return max(gaps, key=lambda t: gaps[t]) if gaps else None


# The per-episode totals that say what a policy does with the balloon and what it costs:
# how much it moves (SEMANTICS.md §2), what the guests pay for it (their major faults
# and OOM kills), what the host pays (its swap-ins, double paging), and the episode's
# share of vCPU time lost to paging.
DIAGNOSIS_FIELDS = ("return", "stall_frac", "balloon_inflated", "balloon_deflated",
                    "guest_major_faults", "guest_oom_kills", "host_swapins", "double_paging",
                    "host_oom")  # fmt: skip


def diagnosis(episodes: list[dict[str, Any]], policies: list[str],
              tasks: tuple[str, ...]) -> list[dict[str, Any]]:  # fmt: skip
    """Per (scenario, policy group): the mean over its test episodes of each of
    ``DIAGNOSIS_FIELDS`` (a learned group pools its training seeds), and the episodes
    counted. Groups absent from a scenario are skipped; a field an episode lacks is NaN."""
    rows = []
    for t in tasks:
        for p in policies:
            eps = [e for e in episodes if e["scenario"] == t and policy_group(e["policy"]) == p]
            if not eps:
                continue
            row: dict[str, Any] = {"scenario": t, "policy": p, "episodes": len(eps)}
            for f in DIAGNOSIS_FIELDS:
                v = [float(e[f]) for e in eps if f in e and e[f] != ""]
                row[f] = float(np.mean(v)) if v else math.nan
            rows.append(row)
    return rows


def diagnosis_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = ["", "## What the policies do (means per test episode)", "",
             "moved: balloon pages inflated + deflated; major: guest major faults; OOM: "
             "guest OOM kills; swap-ins and double paging: the host's; stall: the share of "
             "vCPU time lost to paging.", "",
             "| scenario | policy | return | stall | moved | major | OOM | host swap-ins "
             "| double paging |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        moved = r["balloon_inflated"] + r["balloon_deflated"]
        lines.append(
            f"| {r['scenario']} | {r['policy']} | {r['return']:.3f} | {r['stall_frac']:.4f} "
            f"| {moved:.0f} | {r['guest_major_faults']:.0f} | {r['guest_oom_kills']:.1f} "
            f"| {r['host_swapins']:.0f} | {r['double_paging']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _headline_markdown(head: dict[str, Any], poi: list[dict[str, Any]],
                       per_sc: list[dict[str, Any]]) -> str:  # fmt: skip
    if "best_learned" not in head:
        return ""
    bl, bh = head["best_learned"], head["best_heuristic"]
    lines = ["## Headline", "",
             f"Best learned: **{bl}** (gap closed, IQM: {head['gap_closed'][bl]:.3f}). "
             f"Strongest heuristic in aggregate: **{bh}**. "
             f"P({bl} > {bh}) = {head['poi_vs_best_heuristic']:.3f} "
             f"[{head['poi_ci'][0]:.3f}, {head['poi_ci'][1]:.3f}]; goal "
             f"({head['goal']}): {'met' if head['goal_met'] else 'not met'}.", ""]  # fmt: skip
    if head.get("strongest_tuned_heuristic"):
        bt, pt, ci = (head["strongest_tuned_heuristic"], head["poi_vs_strongest_tuned"],
                      head["poi_vs_strongest_tuned_ci"])  # fmt: skip
        lines += [f"Strongest tuned heuristic: **{bt}**; P({bl} > {bt}) = "
                  + ("n/a" if pt is None else f"{pt:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]") + ".", ""]
    lines += ["| learned | vs | P(learned > vs) [95 % CI] |", "|---|---|---|"]
    for r in poi:
        lines.append(f"| {r['policy']} | {r['vs']} | {r['P_improve']:.3f} "
                     f"[{r['lo']:.3f}, {r['hi']:.3f}] |")  # fmt: skip
    tasks = list(dict.fromkeys(r["scenario"] for r in per_sc))
    score = {(r["policy"], r["scenario"]): r["mean_score"] for r in per_sc}
    lines += ["", f"Mean score per test scenario ({bl} vs {bh}):", "",
              f"| scenario | {bl} | {bh} |", "|---|---:|---:|"]  # fmt: skip
    for t in tasks:
        lines.append(f"| {t} | {score.get((bl, t), math.nan):.3f} "
                     f"| {score.get((bh, t), math.nan):.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"
