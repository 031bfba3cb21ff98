"""reclaim compare / demo: normalization, rliable matrices, config errors, demo smoke."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.compare_config import CompareConfig
from experiments.compare_stats import bracket, cell_matrices, score_matrices
from experiments.scoring import RunLabel, normalized_scores
from tests import REPO  # noqa: E402
from tests.processes import kill_when  # noqa: E402


def _ep(policy, scenario, seed, ret):
    return {"policy": policy, "scenario": scenario, "seed": seed, "return": ret}


def test_normalized_scores_and_no_headroom_cells():
    eps = [
        _ep("no-balloon", "a", 0, -10.0), _ep("oracle", "a", 0, -2.0), _ep("esx", "a", 0, -4.0),
        # degenerate: the oracle gains nothing: no headroom, left out (never floored)
        _ep("no-balloon", "a", 1, -10.0), _ep("oracle", "a", 1, -10.0), _ep("esx", "a", 1, -11.0),
        # a gain under 5 % of |R_none| is no headroom either
        _ep("no-balloon", "b", 0, -10.0), _ep("oracle", "b", 0, -9.6), _ep("esx", "b", 0, -30.0),
    ]  # fmt: skip
    for e, stall in zip(eps, [10.0, 2.0, 4.0, 10.0, 10.0, 11.0, 5.0, 5.0, 50.0], strict=True):
        e["stall_us"] = stall
    scored, none = normalized_scores(eps, 0.05)
    s = {(e["policy"], e["scenario"], e["seed"]): e for e in scored}
    assert s[("no-balloon", "a", 0)]["score"] == 0.0 and s[("oracle", "a", 0)]["score"] == 1.0
    assert s[("esx", "a", 0)]["score"] == pytest.approx(0.75)
    assert none == 2
    for key in (("esx", "a", 1), ("esx", "b", 0)):
        assert not s[key]["headroom"] and np.isnan(s[key]["score"])
    assert s[("esx", "b", 0)]["stall_ratio"] == pytest.approx(10.0)
    mats, cells = cell_matrices(scored)
    assert cells == [("a", 0)] and mats["esx"].tolist() == [[0.75]]
    with pytest.raises(ValueError, match="missing no-balloon/oracle"):
        normalized_scores([_ep("esx", "b", 0, -1.0)], 0.05)


def test_run_label_round_trips_through_its_csv_text():
    label = RunLabel("recurrent-ppo", 12)
    assert str(label) == "recurrent-ppo/seed12" and RunLabel.parse(str(label)) == label
    for name in ("esx", "no-balloon", "ppo/seed", "ppo/seedx", "/seed3"):
        assert RunLabel.parse(name) is None


def test_episode_csvs_read_back_learned_runs_as_run_labels(tmp_path):
    from envs.files import write_csv
    from experiments.compare import read_episodes

    rows = [_ep(str(RunLabel("ppo", 1)), "a", 3, -1.5), _ep("esx", "a", 3, -2.0)]
    write_csv(tmp_path / "e.csv", rows)
    back = read_episodes(tmp_path / "e.csv")
    assert back == [_ep(RunLabel("ppo", 1), "a", 3, -1.5), _ep("esx", "a", 3, -2.0)]
    assert isinstance(back[0]["seed"], int) and isinstance(back[0]["return"], float)


def test_bracket_shares():
    eps = [_ep("no-balloon", "a", 0, -10.0), _ep("oracle", "a", 0, -6.0),
           _ep("esx", "a", 0, -8.0)]  # fmt: skip
    for e in eps:
        e["bound_return"] = -2.0
    (b,) = bracket(eps, ("a",))
    assert b["bound"] == -2.0 and b["oracle_share"] == pytest.approx(0.5)
    assert b["best_baseline"] == "esx" and b["best_baseline_share"] == pytest.approx(0.25)


def test_score_matrices_runs_by_tasks():
    scored = []
    for sc in ("a", "b"):
        for seed in (0, 1, 2):
            scored.append({"policy": "esx", "scenario": sc, "seed": seed, "score": 0.5})
            for ts in (0, 1):
                scored.append({"policy": RunLabel("ppo", ts), "scenario": sc, "seed": seed,
                               "score": float(ts)})  # fmt: skip
    m = score_matrices(scored, ("a", "b"))
    assert m["esx"].shape == (3, 2)
    assert m["ppo"].shape == (6, 2)  # training seeds × evaluation seeds
    assert np.array_equal(m["ppo"][:3], np.zeros((3, 2)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(algos=("dqn",)), "unknown algorithm"),
        (dict(test_scenarios="nope-v0"), "unknown scenario"),
        (dict(baselines=("esx", "magic")), "unknown policy 'magic'"),
        (dict(seeds=0), "seeds must be an int >= 1"),
        (dict(name="../x"), "plain directory name"),
        (dict(residual="oracle"), "residual must be one of"),
    ],
)
def test_compare_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompareConfig(**kwargs)


def test_compare_cli_flags():
    from experiments.cli import parse

    args = parse(
        [
            "compare",
            "--algos",
            "ppo,sac",
            "--seeds",
            "3",
            "--n-envs",
            "32",
            "--total-timesteps",
            "1000",
            "--name",
            "x",
        ]  # fmt: skip
    )
    assert args.algos == ("ppo", "sac") and args.seeds == 3 and args.n_envs == 32


def test_demo_quick_smoke_and_rerun_skips(tmp_path):
    res_dir, runs_dir = str(tmp_path / "res"), str(tmp_path / "runs")
    cmd = [sys.executable, "-m", "experiments.cli", "demo", "--quick",
           "--results-dir", res_dir, "--runs-dir", runs_dir]  # fmt: skip
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "| ppo |" in res.stdout and "IQM" in res.stdout
    out = tmp_path / "res" / "demo-quick"
    for f in ("table.md", "summary.csv", "poi.csv", "scores.csv", "per_scenario.csv",
              "learning_curves.csv", "episodes.csv", "config.json", "aggregate.png",
              "performance_profile.png", "per_scenario.png", "learning_curves.png",
              "timeline.png", "timeline_best.png"):  # fmt: skip
        assert (out / f).exists(), f
    result = tmp_path / "runs" / "demo-quick-ppo" / "0" / "result.json"
    stamp = result.stat().st_mtime_ns
    res2 = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res2.returncode == 0, res2.stderr
    assert result.stat().st_mtime_ns == stamp  # finished training reused
    assert "training:" not in res2.stdout and "evaluation:" not in res2.stdout
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["algos"] == ["ppo"]
    head = json.loads((out / "headline.json").read_text())
    assert head["best_learned"] == "ppo" and head["best_heuristic"] not in ("oracle", "no-balloon")
    assert 0.0 <= head["poi_ci"][0] <= head["poi_vs_best_heuristic"] <= head["poi_ci"][1] <= 1.0
    assert f"ppo>{head['best_heuristic']}" in head["poi"] and "ppo>oracle" in head["poi"]


def _compare_cmd(root: Path) -> list[str]:
    # Checkpoints every 256 env steps of 1024: a run killed in training resumes from one,
    # and (resume being exact) its results must equal the uninterrupted run's.
    return [sys.executable, "-m", "experiments.cli", "compare", "--name", "fi",
            "--algos", "ppo", "--seeds", "1", "--train-scenarios", "default-v0",
            "--test-scenarios", "default-v0,boot-storm-v0", "--total-timesteps", "1024",
            "--n-envs", "4", "--eval-seeds", "2", "--baselines", "no-balloon",
            "--max-episode-steps", "32", "--eval-freq", "256", "--eval-episodes", "1",
            "--checkpoint-freq", "256", "--jobs", "1", "--bootstrap-reps", "20",
            "--no-progress-bar", "--runs-dir", str(root / "runs"),
            "--results-dir", str(root / "res")]  # fmt: skip


def _tables(out: Path) -> dict[str, list[dict[str, str]]]:
    """Every CSV of a compare result, without the wall-clock column."""
    import csv

    tables = {}
    for p in sorted(out.rglob("*.csv")):
        with open(p, newline="") as f:
            rows = [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]
        tables[str(p.relative_to(out))] = rows
    return tables


def _kill_when(cmd: list[str], ready, timeout: float = 240) -> None:
    kill_when(cmd, ready, timeout, what="compare")


def test_compare_killed_in_training_and_in_evaluation_gives_the_same_results(tmp_path):

    ref = subprocess.Popen(_compare_cmd(tmp_path / "ref"), cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    root = tmp_path / "killed"
    run, episodes = root / "runs" / "fi-ppo" / "0", root / "res" / "fi" / "episodes"
    # 1. SIGKILL during training, once its first checkpoint (at 256 of 1024 env steps) is
    # written: the rerun resumes from it.
    _kill_when(_compare_cmd(root), lambda: (run / "checkpoints" / "checkpoint.json").exists())
    assert not (run / "result.json").exists()
    # 2. SIGKILL during evaluation (once the first (policy, scenario) result is written).
    _kill_when(_compare_cmd(root), lambda: any(episodes.rglob("*.csv")))
    done = {p: p.stat().st_mtime_ns for p in episodes.rglob("*.csv")}
    assert (run / "result.json").exists() and 0 < len(done) < 10  # 10 evaluation jobs
    assert json.loads((run / "result.json").read_text())["resumed_from"] >= 256
    # 3. Rerun to the end: finished evaluations are reused, the rest are run.
    res = subprocess.run(_compare_cmd(root), cwd=REPO, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "training:" not in res.stdout
    assert f"evaluation: {10 - len(done)} job(s)" in res.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode() if ref.stderr else ""
    got, want = _tables(root / "res" / "fi"), _tables(tmp_path / "ref" / "res" / "fi")
    assert set(got) == set(want) and len(want) >= 16
    for name in want:
        assert got[name] == want[name], name


def test_a_finished_run_of_another_config_is_not_reused(tmp_path):
    """compare skips a finished training run only when it is the same config: one trained
    on other scenarios under the same name is a clear error, not a silent reuse."""
    from experiments.compare import train_plan
    from experiments.user_errors import UserError

    def cfg(train: str) -> CompareConfig:
        return CompareConfig(name="reuse", algos=("ppo",), seeds=1, total_timesteps=512,
                             train_scenarios=train, test_scenarios="default-v0",
                             runs_dir=str(tmp_path / "runs"),
                             results_dir=str(tmp_path / "res"))  # fmt: skip

    old = cfg("default-v0")
    tc = old.train_config("ppo", 0, False, False)
    tc.run.path.mkdir(parents=True)
    tc.run.write_config({"config": tc.to_dict()})
    tc.run.write_result({"env_steps": 512, "total_timesteps": 512})
    assert train_plan(old) == []  # the same config: finished, skipped
    with pytest.raises(UserError, match="another config"):
        train_plan(cfg("default-v1"))


def test_headline_names_the_strongest_heuristic_in_aggregate():
    from experiments.compare_report import best_scenario, headline, worst_scenario

    cfg = CompareConfig(algos=("ppo", "a2c"), train_scenarios="default-v1",
                        test_scenarios="bursty-v1")  # fmt: skip

    def row(p, iqm):
        return {"policy": p, "IQM": iqm, "IQM_lo": iqm - 0.1, "IQM_hi": iqm + 0.1}

    summary = [row("oracle", 1.0), row("ppo", 0.8), row("static", 0.9), row("esx", 0.95),
               row("a2c", 0.5), row("no-balloon", 0.0)]  # fmt: skip
    poi = [{"policy": "ppo", "vs": "esx", "P_improve": 0.3, "lo": 0.2, "hi": 0.4},
           {"policy": "ppo", "vs": "oracle", "P_improve": 0.1, "lo": 0.0, "hi": 0.2}]  # fmt: skip
    per_sc = [{"policy": "ppo", "scenario": "a", "mean_score": 0.5},
              {"policy": "esx", "scenario": "a", "mean_score": 0.9},
              {"policy": "ppo", "scenario": "b", "mean_score": 0.9},
              {"policy": "esx", "scenario": "b", "mean_score": 0.8}]  # fmt: skip
    h = headline(cfg, summary, poi, per_sc)
    assert (h["best_learned"], h["best_heuristic"]) == ("ppo", "esx")  # not the oracle
    assert h["poi_vs_best_heuristic"] == 0.3 and h["poi_ci"] == [0.2, 0.4]
    assert not h["goal_met"] and h["gap_closed"] == {"ppo": 0.8, "a2c": 0.5}
    assert worst_scenario(per_sc, "ppo", "esx") == "a"
    assert best_scenario(per_sc, "ppo", "esx") == "b"
    assert best_scenario(per_sc, None, "esx") is None


def test_headline_counts_tuned_heuristics_among_the_strongest_and_names_the_best_tuned():
    """Headline v2 (issue #26): the strongest heuristic is chosen among stock and tuned
    rules alike, and the strongest tuned one gets its own P and CI."""
    from experiments.compare_report import _headline_markdown, headline

    cfg = CompareConfig(algos=("ppo",), train_scenarios="default-v1", test_scenarios="bursty-v1")

    def row(p, iqm):
        return {"policy": p, "IQM": iqm, "IQM_lo": iqm - 0.1, "IQM_hi": iqm + 0.1}

    summary = [row("ppo", 0.8), row("esx", 0.7), row("esx-tuned", 0.9), row("mom-tuned", 0.6)]
    poi = [{"policy": "ppo", "vs": v, "P_improve": p, "lo": p - 0.1, "hi": p + 0.1}
           for v, p in (("esx", 0.7), ("esx-tuned", 0.4), ("mom-tuned", 0.9))]  # fmt: skip
    h = headline(cfg, summary, poi, [])
    assert h["best_heuristic"] == "esx-tuned" and h["poi_vs_best_heuristic"] == 0.4
    assert h["strongest_tuned_heuristic"] == "esx-tuned"
    assert h["poi_vs_strongest_tuned"] == 0.4
    assert h["poi_vs_strongest_tuned_ci"] == pytest.approx([0.3, 0.5])
    assert "Strongest tuned heuristic: **esx-tuned**" in _headline_markdown(h, poi, [])
    stock = headline(cfg, summary[:2], poi[:1], [])  # no tuned rule among the baselines
    assert stock["best_heuristic"] == "esx" and "strongest_tuned_heuristic" not in stock


def test_diagnosis_pools_a_learned_algorithms_seeds_per_scenario():
    from experiments.compare_report import DIAGNOSIS_FIELDS, diagnosis, diagnosis_markdown

    def ep(policy, scenario, k):
        e = _ep(policy, scenario, k, -float(k))
        e.update({f: float(k) for f in DIAGNOSIS_FIELDS if f != "return"})
        return e

    eps = [ep(RunLabel("ppo", 0), "a", 1), ep(RunLabel("ppo", 1), "a", 3), ep("esx", "a", 5),
           ep("esx", "b", 7), ep("static", "a", 100)]  # fmt: skip
    del eps[3]["double_paging"]  # an older episode row without the field
    rows = diagnosis(eps, ["ppo", "esx"], ("a", "b"))
    by = {(r["scenario"], r["policy"]): r for r in rows}
    assert set(by) == {("a", "ppo"), ("a", "esx"), ("b", "esx")}  # no ppo episode on b
    assert by[("a", "ppo")]["episodes"] == 2 and by[("a", "ppo")]["guest_oom_kills"] == 2.0
    assert by[("a", "ppo")]["return"] == -2.0 and by[("a", "esx")]["host_swapins"] == 5.0
    assert np.isnan(by[("b", "esx")]["double_paging"])
    md = diagnosis_markdown(rows)
    # the header and one line per row
    assert "| a | ppo | -2.000 |" in md and md.count("\n| ") == 1 + len(rows)


@pytest.mark.parametrize("name", ["headline-v1", "headline-v2"])
def test_the_committed_headline_is_consistent(name):
    """headline.json names the strongest heuristic of summary.csv and the best learned
    algorithm, with P(best learned > best heuristic) from poi_learned.csv; v2 also the
    strongest tuned heuristic, with its P."""
    import csv

    from agents.policies import TUNED_NAMES

    out = REPO / "experiments" / "results" / name
    head = json.loads((out / "headline.json").read_text())
    for key in ("best_learned", "best_heuristic", "poi_vs_best_heuristic", "poi_ci"):
        assert key in head, key
    with open(out / "summary.csv") as f:
        iqm = {r["policy"]: float(r["IQM"]) for r in csv.DictReader(f)}
    heur = {p: v for p, v in iqm.items() if p not in (*head["algos"], "no-balloon", "oracle")}
    assert head["best_heuristic"] == max(heur, key=heur.get)
    assert head["best_learned"] == max(head["algos"], key=iqm.get)
    with open(out / "poi_learned.csv") as f:
        poi = {(r["policy"], r["vs"]): r for r in csv.DictReader(f)}
    p = poi[(head["best_learned"], head["best_heuristic"])]
    assert head["poi_vs_best_heuristic"] == pytest.approx(float(p["P_improve"]))
    lo, hi = head["poi_ci"]
    assert lo <= head["poi_vs_best_heuristic"] <= hi
    assert head["goal_met"] == (head["poi_vs_best_heuristic"] > 0.75 and lo > 0.5)
    tuned = {p: v for p, v in heur.items() if p in TUNED_NAMES}
    if name == "headline-v1":
        assert not tuned and "strongest_tuned_heuristic" not in head
        return
    assert len(tuned) == 10 and {"oracle", "no-balloon"} <= set(iqm)  # every tuned rule
    assert head["strongest_tuned_heuristic"] == max(tuned, key=tuned.get)
    pt = poi[(head["best_learned"], head["strongest_tuned_heuristic"])]
    assert head["poi_vs_strongest_tuned"] == pytest.approx(float(pt["P_improve"]))
    assert head["poi_vs_strongest_tuned_ci"] == pytest.approx([float(pt["lo"]), float(pt["hi"])])
    assert head["seeds"] >= 3 and len(head["algos"]) >= 2
    # its README states the committed figures
    text = (out / "README.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}  # a table row by its first cell, the first table's
    for line in text.splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].replace("*", "").strip("| ").split(" (")[0], line)
    with open(out / "summary.csv") as f:
        listed = [r for r in csv.DictReader(f) if r["policy"] in rows]
    assert len(listed) >= 15  # the result table has a row per policy (pairs merged)
    for r in listed:  # each row's interval is the committed one
        m, lo, hi = (float(r[k]) for k in ("IQM", "IQM_lo", "IQM_hi"))
        cell = f"{m:.3f} [{lo:.3f}, {hi:.3f}]".replace("-", "−") if lo < hi else f"{m:.3f}"
        assert cell in rows[r["policy"]], f"{name} README: {r['policy']} is not {cell}"
    # the per-scenario table: mean scores (and the best learned one's CIs) as committed
    with open(out / "per_scenario.csv") as f:
        per = {(r["policy"], r["scenario"]): r for r in csv.DictReader(f)}
    shown = ("dagger-esx-ppo", "dagger-oracle-ppo", "esx", "mrc-tuned-v2")
    for t in head["test_scenarios"]:
        cells = [c.replace("*", "").strip() for c in rows[t].strip("|").split("|")][1:5]
        for pol, c in zip(shown, cells, strict=True):
            r = per[(pol, t)]
            want = f"{float(r['mean_score']):.2f}"
            if "[" in c:
                want += f" [{float(r['score_lo']):.2f}, {float(r['score_hi']):.2f}]"
            assert c == want.replace("-", "−"), (t, pol, c, want)
    for prob, (a, b) in ((head["poi_vs_best_heuristic"], head["poi_ci"]),
                         (head["poi_vs_strongest_tuned"], head["poi_vs_strongest_tuned_ci"])):
        assert f"**{prob:.3f}**" in text and f"[{a:.3f}, {b:.3f}]" in text


def test_a_committed_headline_v2_model_replays_its_test_episode():
    """models/ holds the models that were scored: one replays its committed test episode
    exactly (the physics, the observation and the loader unchanged since the run)."""
    from experiments.compare import read_episodes
    from experiments.evaluate import run_policy

    out = REPO / "experiments" / "results" / "headline-v2"
    model = out / "models" / "dagger-esx-ppo" / "2" / "best_model.zip"
    (row,) = run_policy(str(model), "bursty-v2", [2_000_000], action_mode="absolute")
    (cell,) = [e for e in read_episodes(out / "episodes/test/dagger-esx-ppo_seed2__bursty-v2.csv")
               if e["seed"] == 2_000_000]  # fmt: skip
    assert row["return"] == cell["return"] and row["length"] == cell["length"] == 512
    assert row["balloon_inflated"] == cell["balloon_inflated"]
