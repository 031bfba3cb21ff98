"""``reclaim tune``: an Optuna study on the training scenarios, resumable (issue 14)."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("optuna")
pytest.importorskip("stable_baselines3")

from experiments.cli import main  # noqa: E402
from experiments.tune import TuneConfig  # noqa: E402


def _tiny(out, trials: int) -> list[str]:
    return ["tune", "--scenarios", "steady-v0", "--trials", str(trials), "--timesteps", "200",
            "--evals", "2", "--eval-episodes", "1", "--n-envs", "1",
            "--max-episode-steps", "20", "--out", str(out), "--name", "tiny"]  # fmt: skip


def _rows(out) -> list[dict[str, str]]:
    with open(out / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_study_writes_its_outputs_and_resumes_to_the_new_total(tmp_path, capsys):
    import optuna

    out = tmp_path / "study"
    assert main(_tiny(out, 2)) == 0
    err = capsys.readouterr().err
    assert err.count("[tune] trial ") == 2  # a progress line per trial
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1"]
    assert all(r["state"] == "COMPLETE" for r in rows)
    best = json.loads((out / "best.json").read_text())["best"]
    assert best["value"] == max(float(r["value"]) for r in rows)
    assert best["train_config_fields"]["net_arch"] in ([64, 64], [128, 128], [256, 256])
    meta = json.loads((out / "config.json").read_text())
    assert meta["command"] == "tune" and meta["config"]["trials"] == 2
    assert "git_revision" in meta and "optuna_version" in meta
    assert meta["eval_seeds"] == [1_500_000]
    # Evaluations on the tuning seeds only, never compare's test seeds (2e6 + k).
    res = json.loads((out / "trials" / "trial-0" / "0" / "result.json").read_text())
    assert res["eval_seeds"] == [1_500_000]
    # Intermediate evaluations reach the pruner, at the chunk budgets.
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    for t in study.trials:
        assert set(t.intermediate_values) <= {100, 200} and 200 in t.intermediate_values
        assert t.value == t.intermediate_values[200]
    first = [(r["number"], r["datetime_start"], r["value"]) for r in rows]

    # Rerun with a larger total: the old trials are kept, one more is run.
    assert main(_tiny(out, 3)) == 0
    assert "2 of 3 trials finished" in capsys.readouterr().err
    rows = _rows(out)
    assert [(r["number"], r["datetime_start"], r["value"]) for r in rows[:2]] == first
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    # Already at the total: nothing runs.
    assert main(_tiny(out, 3)) == 0
    assert "[tune] trial " not in capsys.readouterr().err
    assert len(_rows(out)) == 3


@pytest.mark.parametrize("scenarios", ["thrash-v0", "steady-v0,bursty-v0", "split:test"])
def test_a_test_split_scenario_is_refused(scenarios, tmp_path, capsys):
    rc = main(["tune", "--scenarios", scenarios, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "--scenarios" in err[0] and "train split only" in err[0]
    assert not (tmp_path / "x").exists()  # refused before any work


@pytest.mark.parametrize("argv, name", [
    (["--trials", "0"], "--trials"),
    (["--timesteps", "0"], "--timesteps"),
    (["--evals", "0"], "--evals"),
    (["--jobs", "0"], "--jobs"),
    (["--pruner", "hyperband"], "--pruner"),
    (["--algo", "dqn"], "--algo"),
    (["--eval-seed", "3"], "--eval-seed"),
    (["--eval-seed", "1999999", "--eval-episodes", "2"], "--eval-seed"),
])  # fmt: skip
def test_bad_values_exit_2_with_one_line(argv, name, tmp_path, capsys):
    rc = main(["tune", *argv, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert name in err[0] and "Traceback" not in err[0]


def test_eval_seeds_stay_between_training_and_compares_test_seeds():
    from experiments.compare import CompareConfig

    test_base = CompareConfig.__dataclass_fields__["eval_seed_base"].default
    c = TuneConfig(scenarios=("steady-v0",), eval_episodes=10)
    tc = c.train_config(0, 0, 1, {})
    seeds = range(tc.eval_seed, tc.eval_seed + tc.eval_episodes)
    assert min(seeds) >= 1_000_000 and max(seeds) < test_base
    assert tc.scenarios == ("steady-v0",) and tc.eval_freq == 0


@pytest.mark.parametrize("algo", ["ppo", "a2c", "sac", "td3", "recurrent-ppo"])
def test_every_algorithms_search_space_maps_onto_train_config(algo):
    import optuna

    from experiments.tune import sample_params

    c = TuneConfig(algo=algo, scenarios=("steady-v0",))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        params = sample_params(study.ask(), algo)
        tc = c.train_config(0, 0, 1, params)  # TrainConfig's own checks accept every sample
        assert tc.algo == algo and tc.hyperparams["learning_rate"] == params["learning_rate"]
        if "train_freq" in params:
            assert tc.gradient_steps == tc.train_freq


# ------------------------------------------------------------- heuristics (issue 26)
def _tiny_heuristic(out, trials: int, policy: str = "esx") -> list[str]:
    return ["tune", "--policy", policy, "--scenarios", "default-v1", "--trials", str(trials),
            "--eval-episodes", "2", "--max-episode-steps", "60", "--out", str(out),
            "--name", "tiny-h"]  # fmt: skip


def test_tiny_heuristic_study_starts_from_stock_and_resumes(tmp_path, capsys):
    import optuna

    from agents.tuned import SEARCH_SPACES, constants
    from experiments.tune import heuristic_returns, mean_return

    out = tmp_path / "h"
    assert main(_tiny_heuristic(out, 2)) == 0
    assert capsys.readouterr().err.count("[tune] trial ") == 2
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1"] and {r["state"] for r in rows} == {"COMPLETE"}
    best = json.loads((out / "best.json").read_text())
    stock = SEARCH_SPACES["esx"].stock_params
    assert best["policy"] == "esx" and best["seeds"] == [1_500_000, 1_500_001]
    assert best["scenarios"] == ["default-v1"] and best["finished_trials"] == 2
    study = optuna.load_study(study_name="tiny-h", storage=f"sqlite:///{out / 'study.db'}")
    assert study.trials[0].params == stock  # the first trial is the stock heuristic
    # The values are real rollouts: recomputed from the trials' parameters.
    for t in study.trials:
        returns = heuristic_returns("esx", t.params, ["default-v1"], [1_500_000, 1_500_001], 60)
        assert t.value == mean_return(returns) and t.user_attrs["returns"] == returns
    assert best["stock_value"] == study.trials[0].value
    assert best["best"]["value"] == max(t.value for t in study.trials) >= best["stock_value"]
    want = constants("esx", best["best"]["params"])
    assert best["best"]["constants"]["fractions"] == list(want["fractions"])
    # Resume to a larger total: the stock trial is not enqueued again.
    assert main(_tiny_heuristic(out, 3)) == 0
    assert "2 of 3 trials finished" in capsys.readouterr().err
    study = optuna.load_study(study_name="tiny-h", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 3 and study.trials[2].params != stock


@pytest.mark.parametrize("scenarios", ["thrash-v0", "default-v1,thrash-v0", "split:test"])
def test_a_heuristic_study_refuses_test_scenarios(scenarios, tmp_path, capsys):
    rc = main(["tune", "--policy", "mom", "--scenarios", scenarios, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "--scenarios" in err[0] and "train split only" in err[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("policy", ["static", "no-balloon", "oracle", "esx-tuned", "nope"])
def test_a_policy_without_constants_is_refused(policy, tmp_path, capsys):
    rc = main(["tune", "--policy", policy, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "--policy" in err[0] and "no tunable constants" in err[0]
    assert not (tmp_path / "x").exists()


def test_a_study_of_one_heuristic_is_not_resumed_for_another(tmp_path, capsys):
    out = tmp_path / "h"
    assert main(_tiny_heuristic(out, 1, "hyperv")) == 0
    capsys.readouterr()
    rc = main(_tiny_heuristic(out, 2, "mom"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "tunes 'hyperv', not 'mom'" in err[-1]
