"""The report's figures stay readable: bounded widths, no empty axes (compare_plots)."""

import struct

import numpy as np

from experiments import compare_plots


def _png_size(path):
    w, h = struct.unpack(">II", path.read_bytes()[16:24])
    return w, h


def test_per_scenario_is_a_heatmap_at_most_2000_px_wide(tmp_path):
    scen = [f"scenario-{j}-test-v1" for j in range(12)]
    pols = [f"policy-{i}" for i in range(11)]
    rng = np.random.default_rng(0)
    per_sc = [{"policy": k, "scenario": t, "mean_score": float(rng.normal(0.5, 30.0))}
              for k in pols for t in scen]  # fmt: skip
    compare_plots.plot_per_scenario(tmp_path, per_sc, pols)
    w, h = _png_size(tmp_path / "per_scenario.png")
    assert w <= 2000 and h <= 1200


def test_aggregate_mean_axis_goes_symlog_with_outliers(tmp_path, monkeypatch):
    order = ["a", "b", "c"]
    point = {k: np.array([0.5, v]) for k, v in zip(order, (0.9, 0.5, -40.0), strict=True)}
    ci = {k: np.array([[p[0] - 0.1, p[1] - 1.0], [p[0] + 0.1, p[1] + 1.0]])
          for k, p in point.items()}  # fmt: skip
    scales = []
    real = compare_plots._save
    monkeypatch.setattr(compare_plots, "_save", lambda fig, path: (
        scales.extend(ax.get_xscale() for ax in fig.axes), real(fig, path)))
    compare_plots.plot_aggregate(tmp_path, order, point, ci)
    assert scales == ["linear", "symlog"]


def _runs(double_paging: bool):
    T, V = 30, 2
    z = np.zeros((T, V), dtype=np.int64)
    run = {"guest_used_pages": z + 5, "balloon_pages": z + 1, "host_swapped_pages": z,
           "double_paging": z + int(double_paging)}  # fmt: skip
    return {"ppo/seed0": run, "esx": dict(run)}


def test_timeline_shares_y_and_draws_no_empty_axis(tmp_path, monkeypatch):
    seen = []
    real = compare_plots._save
    monkeypatch.setattr(compare_plots, "_save", lambda fig, path: (seen.append(fig.axes),
                                                                   real(fig, path)))  # fmt: skip
    compare_plots.plot_timeline(tmp_path, _runs(False), "s-v1", 0)
    compare_plots.plot_timeline(tmp_path, _runs(True), "s-v1", 0)
    no_dp, with_dp = seen
    assert len(no_dp) == 2 * 2  # V rows x 2 policies: no double-paging axes when none
    assert len(with_dp) == 3 * 2
    for axes in seen:  # the two policies of a row share their y limits
        for left, right in zip(axes[0::2], axes[1::2], strict=True):
            assert left.get_ylim() == right.get_ylim()


def test_timeline_is_written_under_its_name_with_its_note_in_the_title(tmp_path, monkeypatch):
    titles = []
    real = compare_plots._save
    monkeypatch.setattr(compare_plots, "_save", lambda fig, path: (
        titles.append((path.name, fig._suptitle.get_text())), real(fig, path)))  # fmt: skip
    runs = {**_runs(False), "esx-tuned-v2": _runs(False)["esx"]}
    compare_plots.plot_timeline(tmp_path, runs, "s-v2", 7, name="timeline_best",
                                note="where it leads esx-tuned-v2 most")  # fmt: skip
    assert (tmp_path / "timeline_best.png").exists() and not (tmp_path / "timeline.png").exists()
    assert titles == [("timeline_best.png", "s-v2, seed 7: where it leads esx-tuned-v2 most")]


def test_profile_draws_the_kept_policies_and_labels_each_curve_by_its_colour(tmp_path,
                                                                              monkeypatch):
    order = [f"h{i}" for i in range(12)]  # ranked by IQM
    rng = np.random.default_rng(0)
    mats = {k: rng.normal(1.0 - 0.1 * i, 0.2, size=(1, 9)) for i, k in enumerate(order)}
    keep = ("h11", "h9", "absent")
    shown = compare_plots.profile_policies(order, keep)
    assert len(shown) == compare_plots.PROFILE_MAX and {"h11", "h9"} <= set(shown)
    assert shown == [k for k in order if k in shown]  # still ranked
    assert compare_plots.profile_policies(order[:5], keep) == order[:5]
    seen = []
    real = compare_plots._save
    monkeypatch.setattr(compare_plots, "_save", lambda fig, path: (seen.append(fig.axes[0]),
                                                                   real(fig, path)))  # fmt: skip
    compare_plots.plot_profiles(tmp_path, mats, order, reps=20, keep=keep)
    (ax,) = seen
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == shown
    curve = {tuple(line.get_color()): line for line in ax.get_lines()}
    for handle in legend.legend_handles:  # each entry's colour is a drawn curve's
        assert tuple(handle.get_color()) in curve
    assert ax.get_xlim() == (-1.0, 1.0)
