"""The plots of ``reclaim compare`` (PNG, written atomically beside the tables).

Pure drawing: every function takes the data ``experiments.compare_report`` computed, draws it
and saves it; nothing here picks runs or runs simulations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from envs.files import atomic_save


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    # format: the temporary file's name ends in .tmp, which matplotlib cannot read a format from
    try:
        atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    finally:
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
    """Per scenario, each policy's stall relative to no-balloon on a log axis (bars from
    1, geometric mean over seeds, 95 % CI): a policy 100× worse does not squash one 10 %
    better, and every ratio stays readable."""
    plt = _plt()
    scen = list(dict.fromkeys(r["scenario"] for r in per_sc))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(scen) * max(1, len(order)) / 3), 4.5))
    w = 0.8 / max(1, len(order))
    seen: list[float] = []
    for i, k in enumerate(order):
        rows = {r["scenario"]: r for r in per_sc if r["policy"] == k}
        if not rows:
            continue
        m = np.array([rows[s]["mean_stall_ratio"] for s in scen], dtype=np.float64)
        lo = np.array([rows[s]["stall_ratio_lo"] for s in scen], dtype=np.float64)
        hi = np.array([rows[s]["stall_ratio_hi"] for s in scen], dtype=np.float64)
        x = np.arange(len(scen)) + (i - (len(order) - 1) / 2) * w
        ok = np.isfinite(m) & (m > 0)
        ax.bar(x[ok], m[ok] - 1.0, w, bottom=1.0, label=k,
               yerr=[np.maximum(m - lo, 0)[ok], np.maximum(hi - m, 0)[ok]], capsize=2)  # fmt: skip
        for xi, mi in zip(x[ok], m[ok], strict=True):  # the value at the bar's end
            ax.annotate(f"{mi:.2g}", (xi, mi), ha="center", fontsize=6,
                        va="top" if mi < 1 else "bottom")  # fmt: skip
        seen.extend(np.concatenate([lo[ok], hi[ok], m[ok]]).tolist())
    ax.set_yscale("log")
    pos = [v for v in seen if np.isfinite(v) and v > 0]
    if pos:  # room on both sides of 1, so bars clearly start at "as no-balloon"
        ax.set_ylim(min(min(pos), 1.0) / 1.6, max(max(pos), 1.0) * 1.6)
    ax.axhline(1, color="grey", lw=0.8)
    ax.text(0.01, 0.98, "above 1: worse than no-balloon; below: better", transform=ax.transAxes,
            fontsize=7, va="top", color="grey")  # fmt: skip
    ax.set_xticks(np.arange(len(scen)), scen, rotation=20, ha="right")
    ax.set_ylabel("stall / no-balloon's (log; geometric mean, 95 % CI)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Per-scenario stall relative to no-balloon (lower is better)")
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


def plot_all(out: Path, mats: dict[str, np.ndarray], order: list[str], point: dict,
             ci: dict, per_sc: list[dict[str, Any]], curves: list[dict[str, Any]],
             curve_refs: list[dict[str, Any]], reps: int = 1000) -> None:  # fmt: skip
    """The aggregate, profile, per-scenario and learning-curve plots into ``out`` (the
    first two need at least one (scenario, seed) cell with headroom)."""
    if order:
        plot_aggregate(out, order, point, ci)
        plot_profiles(out, mats, order, reps)
    plot_per_scenario(out, per_sc, list(dict.fromkeys(r["policy"] for r in per_sc)))
    plot_curves(out, curves, curve_refs)
