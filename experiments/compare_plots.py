"""The plots of ``reclaim compare`` (PNG, written atomically beside the tables).

Pure drawing: every function takes the data ``experiments.compare_report`` computed, draws it
and saves it; nothing here picks runs or runs simulations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from envs.files import atomic_save
from experiments.compare_stats import rliable_seed


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
    """IQM and mean normalized score per policy with their CIs. The mean panel's axis is
    symmetric-log (linear in [-1, 1], logarithmic beyond), so one policy at -40 does
    not squash the others into dots near 0."""
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
        if np.nanmin(lo) < -1.5:  # an outlier: keep [-1, 1] linear, compress the rest
            ax.set_xscale("symlog", linthresh=1.0)
            ticks = [t for t in (-1000, -100, -10, -1, 0, 1) if t >= np.nanmin(lo) * 1.5]
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_xlabel("0 = no-balloon, 1 = oracle (symmetric log beyond ±1)")
    axes[0].set_yticks(y, order)
    _save(fig, out / "aggregate.png")


PROFILE_MAX = 8  # curves in the performance profile: more are not told apart at a glance


def profile_policies(order: list[str], keep: tuple[str, ...] = ()) -> list[str]:
    """The policies the performance profile draws, in ``order`` (ranked by IQM): every one
    of ``keep`` (the learned algorithms and the references) that is ranked, then the best
    ranked others up to :data:`PROFILE_MAX` (all of them when that many or fewer)."""
    if len(order) <= PROFILE_MAX:
        return list(order)
    chosen = {k for k in keep if k in order}
    for k in order:
        if len(chosen) >= PROFILE_MAX:
            break
        chosen.add(k)
    return [k for k in order if k in chosen]


def plot_profiles(out: Path, mats: dict[str, np.ndarray], order: list[str], reps: int,
                  keep: tuple[str, ...] = ()) -> None:  # fmt: skip
    """rliable's performance profiles (the share of runs scoring above τ) of
    :func:`profile_policies`, for τ in [-1, 1]: between no-balloon and the oracle, and a
    gap below no-balloon as deep again. A score below -1 counts as below every τ drawn
    (the per-scenario heatmap and the aggregate's symlog axis show how far below)."""
    from matplotlib.lines import Line2D
    from rliable import library as rly
    from rliable import plot_utils

    plt = _plt()
    shown = profile_policies(order, keep)
    taus = np.linspace(-1.0, 1.0, 81)
    with rliable_seed(0):  # its bands' bootstrap draws from numpy's global generator
        prof, prof_ci = rly.create_performance_profile({k: mats[k] for k in shown}, taus,
                                                       reps=reps)  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 4.5))
    palette = plt.cm.tab10(np.arange(10))
    colors = {k: palette[i % 10] for i, k in enumerate(shown)}
    plot_utils.plot_performance_profiles(
        prof, taus, performance_profile_cis=prof_ci, colors=colors, ax=ax
    )
    # One legend entry per curve, by its colour: rliable draws a line and a CI band per
    # policy, so labels given in order would land on the bands.
    handles = [Line2D([0], [0], color=colors[k], lw=2) for k in shown]
    ax.legend(handles, shown, fontsize=8, loc="lower left")
    ax.set_title("Performance profiles (score distribution, 95 % CIs)"
                 + (f"\n{len(shown)} of {len(order)} policies; all in aggregate.png"
                    if len(shown) < len(order) else ""), fontsize=10)  # fmt: skip
    ax.set_xlim(-1.0, 1.0)
    _save(fig, out / "performance_profile.png")


def plot_per_scenario(out: Path, per_sc: list[dict[str, Any]], order: list[str]) -> None:
    """A heatmap: per policy (rows) and scenario (columns), the mean normalized score over
    the scenario's cells with headroom (0 = no-balloon, 1 = oracle), written in each
    square; the colours are clipped to [-1, 1] so that one disastrous cell does not wash
    out the rest (its number still says how bad). Blank: no cell with headroom."""
    plt = _plt()
    scen = list(dict.fromkeys(r["scenario"] for r in per_sc))
    pols = [k for k in order if any(r["policy"] == k for r in per_sc)]
    table = {(r["policy"], r["scenario"]): r["mean_score"] for r in per_sc}
    z = np.array([[table.get((k, t), np.nan) for t in scen] for k in pols], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(min(16.0, 2.0 + 1.05 * len(scen)), 1.0 + 0.42 * len(pols)))
    im = ax.imshow(np.clip(z, -1.0, 1.0), cmap="RdYlGn", vmin=-1.0, vmax=1.0, aspect="auto")
    for i in range(len(pols)):
        for j in range(len(scen)):
            if np.isfinite(z[i, j]):
                v = z[i, j]
                text = f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if abs(np.clip(v, -1, 1)) > 0.75 else "black")  # fmt: skip
    ax.set_xticks(np.arange(len(scen)), [t.removesuffix("-v1") for t in scen], rotation=30,
                  ha="right", fontsize=9)  # fmt: skip
    ax.set_yticks(np.arange(len(pols)), pols, fontsize=9)
    cbar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    cbar.set_label("score (clipped to ±1)", fontsize=8)
    ax.set_title("Mean normalized score per test scenario (0 = no-balloon, 1 = oracle; "
                 "higher is better)", fontsize=10)  # fmt: skip
    _save(fig, out / "per_scenario.png")


def plot_curves(out: Path, curves: list[dict[str, Any]], refs: list[dict[str, Any]]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rs = np.random.default_rng(0)
    # by env steps: an imitation run's rows are by round (learning_curves.csv has them)
    curves = [r for r in curves if r.get("env_steps") not in (None, "")]
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
                  seed: int, name: str = "timeline", note: str = "") -> None:  # fmt: skip
    """Per VM (rows) and policy (columns): guest-used, balloon and host-swapped pages over
    the episode, on one y scale per VM row shared by the policies, so the columns compare
    at a glance. Double paging, when any policy has some, gets its own row of cumulative
    counts (no second axis whose labels collide with the first). Written to
    ``<name>.png``; ``note`` ends the title."""
    plt = _plt()
    names = list(runs)
    V = next(iter(runs.values()))["balloon_pages"].shape[1]
    dp = any(np.any(r["double_paging"]) for r in runs.values())
    rows = V + int(dp)
    fig, axes = plt.subplots(rows, len(names), figsize=(5.5 * len(names), 1.9 * rows + 0.6),
                             sharex=True, sharey="row", squeeze=False)  # fmt: skip
    series = (("guest_used_pages", "guest used"), ("balloon_pages", "balloon"),
              ("host_swapped_pages", "host swapped"))  # fmt: skip
    for c, policy in enumerate(names):
        r = runs[policy]
        t = np.arange(1, r["balloon_pages"].shape[0] + 1)
        axes[0, c].set_title(policy, fontsize=10)
        for i in range(V):
            ax = axes[i, c]
            for key, label in series:
                ax.plot(t, r[key][:, i], label=label, lw=1.2)
            if c == 0:
                ax.set_ylabel(f"VM {i}\npages", fontsize=8)
            ax.tick_params(labelsize=7)
        if dp:
            ax = axes[V, c]
            shades = plt.cm.Reds(np.linspace(0.45, 0.95, V))  # not the page series' colours
            for i in range(V):
                ax.plot(t, np.cumsum(r["double_paging"][:, i]), lw=1, ls="--",
                        color=shades[i], label=f"VM {i}")  # fmt: skip
            if c == 0:
                ax.set_ylabel("double paging\n(cumulative)", fontsize=8)
                ax.legend(fontsize=7, loc="upper left")
            ax.tick_params(labelsize=7)
        axes[-1, c].set_xlabel("tick", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8,
               bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    title = f"{scenario}, seed {seed}" + (f": {note}" if note else "")
    fig.suptitle(title, y=1.03, fontsize=10)
    fig.tight_layout()
    _save(fig, out / f"{name}.png")


def plot_all(out: Path, mats: dict[str, np.ndarray], order: list[str], point: dict,
             ci: dict, per_sc: list[dict[str, Any]], curves: list[dict[str, Any]],
             curve_refs: list[dict[str, Any]], reps: int = 1000,
             keep: tuple[str, ...] = ()) -> None:  # fmt: skip
    """The aggregate, profile, per-scenario and learning-curve plots into ``out`` (the
    first two need at least one (scenario, seed) cell with headroom). ``keep``: the
    policies the performance profile always draws (:func:`profile_policies`)."""
    if order:
        plot_aggregate(out, order, point, ci)
        plot_profiles(out, mats, order, reps, keep)
    plot_per_scenario(out, per_sc, list(dict.fromkeys(r["policy"] for r in per_sc)))
    plot_curves(out, curves, curve_refs)
