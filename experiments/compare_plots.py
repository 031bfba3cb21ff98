"""The plots of ``reclaim compare`` (PNG, written atomically beside the tables)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        _plt().close(fig)


def plot_aggregate(out: Path, order: list[str], point: dict, ci: dict) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(order) + 1.5), sharey=True)
    y = np.arange(len(order))[::-1]
    for ax, j, title in ((axes[0], 0, "IQM"), (axes[1], 1, "Mean")):
        pts = np.array([point[k][j] for k in order])
        lo = np.array([ci[k][0, j] for k in order])
        hi = np.array([ci[k][1, j] for k in order])
        ax.errorbar(pts, y, xerr=[pts - lo, hi - pts], fmt="o", capsize=3)
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        ax.axvline(1, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{title} normalized score (95 % CI)")
        ax.set_xlabel("0 = no-balloon, 1 = oracle")
    axes[0].set_yticks(y, order)
    _save(fig, out / "aggregate.png")


def plot_profiles(out: Path, mats: dict[str, np.ndarray], order: list[str], reps: int) -> None:
    from rliable import library as rly
    from rliable import plot_utils

    plt = _plt()
    allv = np.concatenate([m.reshape(-1) for m in mats.values()])
    lo, hi = float(np.percentile(allv, 1)), float(np.percentile(allv, 99))
    taus = np.linspace(min(lo, 0.0), max(hi, 1.0), 81)
    prof, prof_ci = rly.create_performance_profile({k: mats[k] for k in order}, taus, reps=reps)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = dict(zip(order, plt.cm.tab10(np.linspace(0, 1, max(10, len(order)))), strict=False))
    plot_utils.plot_performance_profiles(
        prof, taus, performance_profile_cis=prof_ci, colors=colors, ax=ax
    )
    ax.legend(order, fontsize=8, loc="lower left")
    ax.set_title("Performance profiles (score distribution, 95 % CIs)")
    _save(fig, out / "performance_profile.png")


def plot_per_scenario(out: Path, per_sc: list[dict[str, Any]], order: list[str]) -> None:
    plt = _plt()
    scen = list(dict.fromkeys(r["scenario"] for r in per_sc))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(scen) * max(1, len(order)) / 3), 4.5))
    w = 0.8 / len(order)
    for i, k in enumerate(order):
        rows = {r["scenario"]: r for r in per_sc if r["policy"] == k}
        m = np.array([rows[s]["mean_score"] for s in scen])
        lo = np.array([rows[s]["lo"] for s in scen])
        hi = np.array([rows[s]["hi"] for s in scen])
        x = np.arange(len(scen)) + (i - (len(order) - 1) / 2) * w
        ax.bar(x, m, w, yerr=[m - lo, hi - m], capsize=2, label=k)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhline(1, color="grey", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(scen)), scen, rotation=20, ha="right")
    ax.set_ylabel("normalized score (mean, 95 % CI)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Per-scenario scores on the test scenarios")
    _save(fig, out / "per_scenario.png")


def plot_curves(out: Path, curves: list[dict[str, Any]], refs: list[dict[str, Any]]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rs = np.random.default_rng(0)
    for algo in dict.fromkeys(r["algo"] for r in curves):
        seeds = sorted({r["seed"] for r in curves if r["algo"] == algo})
        steps = sorted({r["env_steps"] for r in curves if r["algo"] == algo})
        table = {(r["seed"], r["env_steps"]): r["mean_return"] for r in curves if r["algo"] == algo}
        steps = [s for s in steps if all((sd, s) in table for sd in seeds)]
        if not steps:
            continue
        y = np.array([[table[(sd, s)] for s in steps] for sd in seeds])  # (seeds, T)
        m = y.mean(axis=0)
        ax.plot(steps, m, marker="o", ms=3, label=f"{algo} ({len(seeds)} seed(s))")
        if len(seeds) > 1:
            idx = rs.integers(0, len(seeds), size=(1000, len(seeds)))
            boots = y[idx].mean(axis=1)
            ax.fill_between(steps, *np.percentile(boots, [2.5, 97.5], axis=0), alpha=0.25)
    for pol, ls in (("no-balloon", "--"), ("esx", ":")):
        v = [float(r["return"]) for r in refs if r["policy"] == pol]
        if v:
            ax.axhline(np.mean(v), color="k", ls=ls, lw=1, label=f"{pol} (same seeds)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return (mean over training scenarios)")
    ax.set_title("Learning curves (held-out seeds; 95 % bootstrap CI over training seeds)")
    ax.legend(fontsize=8)
    _save(fig, out / "learning_curves.png")


def episode_timeline(policy: str, scenario: str, seed: int, action_mode: str,
                     steps: int | None) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-tick per-VM gauges of one episode: balloon, guest used, host swapped, double
    paging (each (T, V))."""
    from agents.policies import make_policy
    from envs.rollout import rollout_steps
    from envs.vector_env import BalloonVectorEnv

    env = BalloonVectorEnv(1, scenario, max_episode_steps=steps, action_mode=action_mode)
    keys = ("balloon_pages", "guest_used_pages", "host_swapped_pages", "double_paging")
    rec: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for step in rollout_steps(env, make_policy(policy, env), [seed]):
        for k in keys:
            rec[k].append(np.asarray(step.info["vm"][k][0]).copy())
    return {k: np.array(v) for k, v in rec.items()}


def plot_timeline(out: Path, runs: dict[str, dict[str, np.ndarray]], scenario: str,
                  seed: int) -> None:  # fmt: skip
    plt = _plt()
    names = list(runs)
    V = next(iter(runs.values()))["balloon_pages"].shape[1]
    fig, axes = plt.subplots(V, len(names), figsize=(6 * len(names), 2.2 * V), sharex=True,
                             squeeze=False)  # fmt: skip
    for c, name in enumerate(names):
        r = runs[name]
        t = np.arange(1, r["balloon_pages"].shape[0] + 1)
        for i in range(V):
            ax = axes[i, c]
            ax.plot(t, r["guest_used_pages"][:, i], label="guest used")
            ax.plot(t, r["balloon_pages"][:, i], label="balloon")
            ax.plot(t, r["host_swapped_pages"][:, i], label="host swapped")
            ax2 = ax.twinx()
            ax2.plot(t, np.cumsum(r["double_paging"][:, i]), color="tab:red", lw=1, ls="--",
                     label="double paging (cum.)")  # fmt: skip
            ax2.tick_params(axis="y", labelcolor="tab:red", labelsize=7)
            ax.set_ylabel(f"VM {i} pages", fontsize=8)
            if i == 0:
                ax.set_title(f"{name} on {scenario} (seed {seed})", fontsize=9)
                h1, l1 = ax.get_legend_handles_labels()
                h2, l2 = ax2.get_legend_handles_labels()
                ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="upper left")
        axes[-1, c].set_xlabel("tick")
    _save(fig, out / "timeline.png")


def plot_all(config: Any, mats: dict[str, np.ndarray], order: list[str], point: dict,
             ci: dict, per_sc: list[dict[str, Any]], curves: list[dict[str, Any]],
             curve_refs: list[dict[str, Any]]) -> None:  # fmt: skip
    from experiments.compare import ESX, learned_policies

    out = config.out_dir
    plot_aggregate(out, order, point, ci)
    plot_profiles(out, mats, order, min(config.bootstrap_reps, 1000))
    plot_per_scenario(out, per_sc, order)
    plot_curves(out, curves, curve_refs)
    learned = learned_policies(config)
    if not learned:
        return
    # The best learned run: the algorithm with the best IQM, its run with the best mean.
    algo = next(k for k in order if k in config.algos)
    scores = mats[algo]
    runs = [lab for lab in learned if lab.startswith(f"{algo}/")]
    per_run = scores.reshape(len(runs), -1, scores.shape[1]).mean(axis=(1, 2))
    best = runs[int(np.argmax(per_run))]
    scenario, seed = config.test_ids[0], config.eval_seed_base
    path = str(learned[best][2])
    tl = {
        best: episode_timeline(path, scenario, seed, config.action_mode, config.max_episode_steps),
        ESX: episode_timeline(ESX, scenario, seed, "absolute", config.max_episode_steps),
    }
    plot_timeline(out, tl, scenario, seed)
