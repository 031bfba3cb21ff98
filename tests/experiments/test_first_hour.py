"""A newcomer's first hour (issue 22): v1 defaults, outputs where the user is, scenarios
from a file of one's own, close-name suggestions, time estimates and a yardstick."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from agents.learners.sb3.train import TrainConfig, TrainResult
from envs.scenarios import get_scenario, load_scenario_module, scenario_ids
from experiments import cli, estimate
from experiments.cli import main
from tests import REPO

EXAMPLE = REPO / "docs" / "examples" / "my_scenarios.py"


def _env() -> dict[str, str]:
    """The environment of a CLI subprocess run outside the repository: this checkout on
    the path, no bytecode written into it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _reclaim(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def _help(name: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    with pytest.raises(SystemExit):
        main([name, "--help"])
    return capsys.readouterr().out


# ------------------------------------------------------------------ safe defaults
def test_commands_default_to_the_v1_benchmark(capsys, monkeypatch):
    assert "(default: default-v1)" in _help("evaluate", capsys, monkeypatch)
    assert "(default: default-v1)" in _help("train", capsys, monkeypatch)
    assert TrainConfig().scenarios == ("default-v1",)
    assert cli.parse(["evaluate"]).scenarios == ("default-v1",)
    c = cli.parse(["compare"])
    assert c.train_scenarios == "split:train" and c.test_scenarios == "split:test"
    assert all(sid.endswith("-v1") for sid in c.train_ids + c.test_ids)


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_help_prints_each_default_once(name, capsys, monkeypatch):
    out = _help(name, capsys, monkeypatch)
    for line in out.splitlines():
        # "default" as a word ("default-v1" is a scenario id, not a default)
        assert len(re.findall(r"\bdefault\b(?!-)", line)) <= 1, line
        assert "(default: )" not in line, line


def test_compare_and_ablate_never_write_into_committed_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    committed = REPO / "experiments" / "results"
    compare, ablate, demo = (cli.parse([c]) for c in ("compare", "ablate", "demo"))
    assert compare.out_dir == tmp_path / "results" / "compare"
    from experiments.demo import demo_config

    for out in (compare.out_dir, Path(ablate.results_dir).resolve(),
                demo_config(False, demo.results_dir, demo.runs_dir).out_dir):  # fmt: skip
        assert out.is_relative_to(tmp_path) and not out.is_relative_to(committed), out
    # the committed results are reproduced by naming them
    makefile = (REPO / "Makefile").read_text()
    assert "--name headline-v1 --results-dir experiments/results" in makefile
    readme = (committed / "headline-v1" / "README.md").read_text()
    assert "--results-dir experiments/results" in readme
    assert "reclaim ablate --results-dir experiments/results/headline-v1/ablations" in readme


def test_long_runs_say_how_long_before_they_start(capsys):
    assert estimate.announce("train", 1, 256, 1) is None  # seconds: nothing said
    line = estimate.announce("compare", 5, 1_000_000, 2)
    assert line is not None and line in capsys.readouterr().out
    assert "an estimate" in line and "about 1 h 31 min" in line  # 3 waves of 1e6 / 550 s
    assert estimate.training_seconds(6, 1_000_000, 2) == pytest.approx(3 * 1e6 / 550)


# ---------------------------------------------------------- outputs where the user is
def test_cli_outputs_go_under_the_current_directory(tmp_path):
    before = _git_status()
    ev = _reclaim("evaluate", "--policies", "esx", "--seeds", "1", "--steps", "4",
                  "--no-progress", cwd=tmp_path)  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    tr = _reclaim("train", "--total-timesteps", "128", "--n-envs", "2", "--n-steps", "64",
                  "--batch-size", "64", "--n-epochs", "1", "--max-episode-steps", "8",
                  "--eval-freq", "0", "--eval-episodes", "1", "--checkpoint-freq", "128",
                  "--no-progress-bar", "--no-tensorboard", cwd=tmp_path)  # fmt: skip
    assert tr.returncode == 0, tr.stderr
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert any(p.parts[:2] == ("runs", "evaluate") and p.name == "summary.csv" for p in made)
    assert Path("runs/ppo-default-v1/0/result.json") in made
    assert not any((REPO / p).exists() for p in made if p.parts[1] == "evaluate")
    assert _git_status() == before
    # the yardstick: the trained return beside ESX's and no-balloon's on the same seeds
    header = next(ln for ln in tr.stdout.splitlines() if ln.startswith("scenario"))
    assert header.split() == ["scenario", "ppo", "esx", "no-balloon"]
    row = next(ln for ln in tr.stdout.splitlines() if ln.startswith("default-v1"))
    assert len([float(x) for x in row.split()[1:]]) == 3


def test_train_prints_the_thread_hint_and_the_yardstick(tmp_path, monkeypatch, capsys):
    import agents.learners.sb3.train
    import experiments.train

    def fake_train(config):
        return TrainResult(Path(config.run_dir), 64, 1.0, {"default-v1": -8.408})

    monkeypatch.setattr(agents.learners.sb3.train, "train", fake_train)
    monkeypatch.setattr(experiments.train, "yardstick",
                        lambda c: {"default-v1": {"esx": -3.8, "no-balloon": -31.0}})  # fmt: skip
    assert main(["train", "--torch-threads", "2", "--total-timesteps", "64",
                 "--runs-dir", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "--torch-threads 2" in out and "one torch thread" in out and "in parallel" in out
    assert re.search(r"default-v1\s+-8\.408\s+-3\.800\s+-31\.000", out), out


# -------------------------------------------------------------- your own scenarios
def test_scenario_module_from_the_cli(tmp_path):
    rel = str(EXAMPLE.relative_to(REPO))
    ev = _reclaim("evaluate", "--scenario-module", rel, "--scenarios", "my-recordings-v1",
                  "--policies", "esx", "--seeds", "1", "--steps", "8", "--no-progress",
                  "--out", str(tmp_path / "ev"), cwd=REPO)  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    assert "my-recordings-v1" in (tmp_path / "ev" / "summary.csv").read_text()
    cfg = json.loads((tmp_path / "ev" / "config.json").read_text())
    assert cfg["scenario_module"] == str(EXAMPLE)  # absolute: jobs elsewhere find it
    ls = _reclaim("scenarios", "--scenario-module", rel, cwd=REPO)
    assert ls.returncode == 0, ls.stderr
    assert any(ln.startswith("my-recordings-v1 ") for ln in ls.stdout.splitlines())
    without = _reclaim("evaluate", "--scenarios", "my-recordings-v1", cwd=tmp_path)
    assert without.returncode == 2 and "unknown scenario 'my-recordings-v1'" in without.stderr


def test_train_keeps_the_scenario_module_and_resume_finds_it(tmp_path):
    args = ["train", "--scenario", "my-recordings-v1", "--total-timesteps", "64",
            "--n-envs", "1", "--n-steps", "64", "--batch-size", "64", "--n-epochs", "1",
            "--max-episode-steps", "8", "--eval-freq", "0", "--eval-episodes", "1",
            "--checkpoint-freq", "64", "--no-progress-bar", "--no-tensorboard",
            "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    tr = _reclaim(*args, "--scenario-module", str(EXAMPLE), cwd=tmp_path)
    assert tr.returncode == 0, tr.stderr
    run = tmp_path / "runs" / "ppo-my-recordings-v1" / "0"
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["scenario_module"] == str(EXAMPLE)
    # --resume without the flag: the saved module is loaded before the id is checked
    again = _reclaim(*args, "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    # a finished run says so, and nothing more
    assert again.stdout.strip().splitlines() == [
        f"{run} already finished (64 env steps): nothing to resume, results kept"
    ]


def test_compare_jobs_in_fresh_processes_load_the_scenario_module(tmp_path):
    """compare's evaluation jobs run in spawned processes (and on Ray workers), which know
    only the built-in scenarios until the job loads the module."""
    from experiments.backends import ProcessBackend
    from experiments.compare import eval_job

    jobs = [("esx", "esx", "my-recordings-v1", [s], "absolute", 4, str(tmp_path / f"{s}.csv"),
             str(EXAMPLE)) for s in (0, 1)]  # fmt: skip
    with ProcessBackend(2) as be:
        done = be.map(eval_job, jobs)
    assert done == [j[6] for j in jobs]
    assert all("my-recordings-v1" in Path(p).read_text() for p in done)


def _module(tmp_path: Path, body: str) -> tuple[Path, str]:
    sid = f"tmp-{uuid.uuid4().hex[:8]}-v1"
    path = tmp_path / f"{sid}.py"
    path.write_text(
        "from envs.scenarios import trace_scenario\n"
        "from envs.sim.params import TraceSpec\n"
        f"trace_scenario({sid!r}, [TraceSpec('recording', 'gzip')], steps=8)\n" + body
    )
    return path, sid


def test_load_scenario_module_is_idempotent_and_clear_on_errors(tmp_path):
    path, sid = _module(tmp_path, "")
    first = load_scenario_module(path)
    assert load_scenario_module(str(path)) is first  # again: no "already registered"
    assert get_scenario(sid).id == sid and sid in scenario_ids()
    with pytest.raises(ValueError, match="does not exist"):
        load_scenario_module(tmp_path / "missing.py")
    bad, bad_id = _module(tmp_path, "raise RuntimeError('boom')\n")
    with pytest.raises(ValueError, match="failed: RuntimeError: boom"):
        load_scenario_module(bad)
    assert bad_id not in scenario_ids()  # what it registered is gone: a fixed file loads
    bad.write_text(bad.read_text().replace("raise RuntimeError('boom')\n", ""))
    load_scenario_module(bad)
    assert bad_id in scenario_ids()


@pytest.mark.parametrize("argv, names", [
    (["evaluate", "--scenario-module", "missing.py"], "--scenario-module"),
    (["scenarios", "--scenario-module", "missing.py"], "--scenario-module"),
    (["train", "--scenario-module", "missing.py"], "missing.py"),
    (["compare", "--scenario-module", "missing.py"], "scenario_module"),
    (["tune", "--scenario-module", "missing.py"], "--scenario-module"),
    (["ablate", "--scenario-module", "missing.py"], "--scenario-module"),
])  # fmt: skip
def test_a_missing_scenario_module_is_one_line(argv, names, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and names in err[0] and "does not exist" in err[0]


# ------------------------------------------------------------------------ papercuts
def test_unknown_names_suggest_the_closest(capsys):
    with pytest.raises(ValueError, match=r"unknown scenario 'defualt-v1'; did you mean "
                                         r"'default-v1'.*\(reclaim scenarios lists all\)"):
        get_scenario("defualt-v1")
    msg = str(pytest.raises(ValueError, get_scenario, "defualt-v1").value)
    assert "steady-v0" not in msg  # not every id
    assert main(["evaluate", "--scenarios", "defualt-v1", "--policies", "esxx"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'esx'" in err
    assert main(["evaluate", "--scenarios", "defualt-v1"]) == 2
    assert "did you mean 'default-v1'" in capsys.readouterr().err
