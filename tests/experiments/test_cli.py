"""The ``reclaim`` command line: help, and the exit-status convention (issue 16).

Every user error exits 2 with one line on stderr naming the argument; rc 1 is kept for
failed checks (tests/envs/test_records.py); a bug keeps its traceback.
"""

from __future__ import annotations

import pytest

from experiments import cli
from experiments.cli import main


def _one_line_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("reclaim"), err
    return lines[0]


BAD = [
    (["bogus"], "bogus"),
    (["evaluate", "--bogus", "1"], "--bogus"),
    (["evaluate", "--seeds", "0"], "--seeds"),
    (["ablate", "--variants", "nope"], "nope"),
    (["ablate", "--seeds", "0"], "--seeds"),
    (["scenarios", "--headroom", "--seeds", "0"], "--seeds"),
    (["scenarios", "--headroom", "--ids", "nope-v1"], "nope-v1"),
    (["evaluate", "--seeds", "abc"], "--seeds"),
    (["evaluate", "--seed-base", "-1"], "--seed-base"),
    (["evaluate", "--steps", "0"], "--steps"),
    (["evaluate", "--policies", ""], "--policies"),
    (["evaluate", "--policies", ","], "--policies"),
    (["evaluate", "--policies", "bogus"], "--policies"),
    (["evaluate", "--policies", "missing.zip"], "--policies"),
    (["evaluate", "--scenarios", ""], "--scenarios"),
    (["evaluate", "--scenarios", "nope-v0"], "--scenarios"),
    (["evaluate", "--action-mode", "sideways"], "--action-mode"),
    (["evaluate", "--set", "novalue"], "--set"),
    (["evaluate", "--set", "no_such_knob=1"], "--set"),
    (["bench", "--seed", "-1"], "--seed"),
    (["bench", "--envs", "0"], "--envs"),
    (["fidelity", "--max-refs", "-5"], "--max-refs"),
    (["fidelity", "--refs-per-tick", "0"], "--refs-per-tick"),
    (["fidelity", "--traces", "recording:no-such-recording"], "--traces"),
    (["fidelity", "--traces", "nocolon"], "--traces"),
    (["fidelity", "--traces", "bogus:x"], "--traces"),
    (["compare", "--jobs", "-1"], "jobs"),
    (["compare", "--min-gap-frac", "-1"], "min_gap_frac"),
    (["compare", "--seeds", "0"], "seeds"),
    (["compare", "--algos", ""], "algorithm"),
    (["compare", "--test-scenarios", ","], "test_scenarios"),
    (["compare", "--baselines", "magic"], "magic"),
    (["train", "--seed", "-1"], "seed"),
    (["tune", "--trials", "0"], "--trials"),
    (["tune", "--scenarios", "thrash-v0"], "--scenarios"),
    (["train", "--total-timesteps", "0"], "total_timesteps"),
    (["train", "--layout", "grid"], "layout"),
    (["imitate", "--beta-decay", "2"], "beta_decay"),
    (["imitate", "--dataset", "no-version"], "dataset"),
    (["replay"], "RECORD"),
    (["replay", "no-such-record.json"], "no-such-record.json"),
    (["replay", "x.json", "--max-report", "-1"], "--max-report"),
    (["scenarios", "--split", "validation"], "--split"),
    (["demo", "--seed", "3"], "--seed"),
    (["validate", "--facts", "nope"], "--facts"),
    (["validate", "--set", "host_policy='magic'"], "--set"),
    (["data", "chek"], "chek"),
    (["data", "check", "--scenarios", "nope-v1"], "--scenarios"),
]


@pytest.mark.parametrize("argv, names", BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_user_errors_exit_2_with_one_line_naming_the_argument(argv, names, capsys, tmp_path,
                                                              monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)  # relative paths (missing.zip, ...) resolve in an empty dir
    line = _one_line_error(capsys, argv)
    assert names in line
    assert "Traceback" not in line


def test_every_subcommand_is_covered_by_a_bad_argument_case():
    assert set(cli.COMMANDS) <= {a[0] for a, _ in BAD}


def test_missing_trace_data_is_a_user_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RECLAIM_DATA_DIR", str(tmp_path))  # empty: no traces, no demand
    argv = ["evaluate", "--scenarios", "trace-lirs-v0", "--seeds", "1", "--steps", "2",
            "--out", str(tmp_path / "out")]  # fmt: skip
    line = _one_line_error(capsys, argv)
    assert "--scenarios" in line and "trace-lirs-v0" in line and "RECLAIM_DATA_DIR" in line
    assert not (tmp_path / "out").exists()
    line = _one_line_error(capsys, ["train", "--scenario", "trace-lirs-v0",
                                    "--runs-dir", str(tmp_path / "runs")])  # fmt: skip
    assert "--scenario" in line and not (tmp_path / "runs").exists()


def test_help_lists_commands_and_field_docs(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "--policies" in out and "comma- or space-separated" in out and "--no-progress" in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--total-timesteps" in out and "training budget in env steps" in out


def test_comma_and_space_separated_lists_are_the_same():
    a = cli.parse(["evaluate", "--policies", "esx,oracle", "--scenarios", "steady-v0"])
    b = cli.parse(["evaluate", "--policies", "esx", "oracle", "--scenarios", "steady-v0"])
    assert a == b and a.policies == ("esx", "oracle")
    c = cli.parse(["evaluate", "--set", "host_policy='lru'", "--set", "ksm_pages_per_tick=0"])
    assert c.override_dict == {"host_policy": "lru", "ksm_pages_per_tick": 0}


def test_a_bug_in_a_command_keeps_its_traceback(monkeypatch):
    """Only the project's user-error types become rc 2; a plain ValueError from inside a
    job is a bug and propagates."""

    def broken(config):
        raise ValueError("an internal bug, not the user's input")

    cls, _, text = cli.COMMANDS["scenarios"]
    monkeypatch.setitem(cli.COMMANDS, "scenarios", (cls, broken, text))
    with pytest.raises(ValueError, match="internal bug"):
        main(["scenarios"])
