"""reclaim compare with learner recipes (imitation, fine-tuning) beside the SB3 algorithms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.compare_config import CompareConfig
from experiments.scoring import RunLabel
from tests import REPO

# Train on default-v2 (cheap), test on boot-storm-v2: at 32 steps its oracle gains half
# of no-balloon's cost, so the cells have headroom and the learned groups are scored.
TINY = dict(seeds=1, train_scenarios="default-v2", test_scenarios="boot-storm-v2",
            total_timesteps=256, n_envs=2, eval_seeds=2, baselines=("no-balloon",),
            max_episode_steps=32, eval_freq=128, eval_episodes=1, checkpoint_freq=128,
            jobs=1, bootstrap_reps=20, progress_bar=False, imitate_iterations=1,
            imitate_episodes=1)  # fmt: skip


def _cfg(tmp: Path, **kw) -> CompareConfig:
    return CompareConfig(**{**TINY, "name": "cl", "runs_dir": str(tmp / "runs"),
                            "results_dir": str(tmp / "res"), **kw})  # fmt: skip


def test_compare_trains_a_recipe_beside_ppo_and_reuses_its_run(tmp_path):
    from experiments.compare import compare, read_episodes, train_plan
    from experiments.compare_config import learned_policies, learning_curves
    from experiments.compare_learners import imitate_plan

    cfg = _cfg(tmp_path, algos=("dagger-esx", "ppo"))
    compare(cfg)
    head = json.loads((cfg.out_dir / "headline.json").read_text())
    assert {"dagger-esx", "ppo"} <= set(head["iqm"]) and head["algos"] == ["dagger-esx", "ppo"]
    assert head["best_learned"] in ("dagger-esx", "ppo")
    labels = {e["policy"] for p in (cfg.out_dir / "episodes" / "test").glob("*.csv")
              for e in read_episodes(p)}  # fmt: skip
    assert {RunLabel("dagger-esx", 0), RunLabel("ppo", 0)} <= labels
    runs = learned_policies(cfg)
    im = tmp_path / "runs" / "cl-dagger-esx" / "0"
    assert runs[RunLabel("dagger-esx", 0)] == im  # a recipe: its run directory
    assert runs[RunLabel("ppo", 0)].name == "model.zip"  # SB3: its model
    meta = json.loads((im / "config.json").read_text())
    assert meta["method"] == "imitation" and meta["config"]["teacher"] == "esx"
    assert meta["config"]["iterations"] == 1 and meta["env_options"]["obs_version"] == 2
    curves = learning_curves(cfg)
    rounds = [r["round"] for r in curves if r["algo"] == "dagger-esx"]
    assert rounds == [0, 1]
    assert all(r["env_steps"] > 0 for r in curves if r["algo"] == "ppo")
    from experiments.timeline import episode_timeline  # on the run's own env options

    tl = episode_timeline(str(im), "boot-storm-v2", cfg.eval_seed_base, "absolute", 8)
    assert tl["balloon_pages"].shape == (8, 6)
    # rerun: nothing is trained again
    stamp = (im / "result.json").stat().st_mtime_ns
    assert imitate_plan(cfg) == [] and train_plan(cfg) == []
    compare(cfg)
    assert (im / "result.json").stat().st_mtime_ns == stamp
    # killed after its last checkpoint: resumed from it, to the same result
    from experiments.compare_learners import learner_job

    history = json.loads((im / "result.json").read_text())["history"]
    (im / "result.json").unlink()
    (job,) = imitate_plan(cfg)
    assert job[0]["resume"] and not job[0]["overwrite"]
    learner_job(("imitate", job))
    again = json.loads((im / "result.json").read_text())["history"]
    assert [h["rollout_return"] for h in again] == [h["rollout_return"] for h in history]
    # a finished run of another config is refused, not reused
    from experiments.user_errors import UserError

    with pytest.raises(UserError, match="another config"):
        imitate_plan(_cfg(tmp_path, algos=("dagger-esx",), imitate_episodes=2))


def test_finetune_recipe_starts_from_its_imitation_run_of_the_same_seed(tmp_path):
    """dagger-oracle-ppo: the dagger-oracle run (shared with that recipe), then PPO from
    it; the plans go empty once both are done."""
    from experiments.compare_config import learned_policies, learning_curves
    from experiments.compare_learners import finetune_plan, imitate_plan, learner_job

    cfg = _cfg(tmp_path, algos=("dagger-oracle", "dagger-oracle-ppo"), imitate_iterations=0,
               max_episode_steps=16)  # fmt: skip
    assert finetune_plan(cfg) == []  # its imitation run is not there yet
    jobs = imitate_plan(cfg)
    assert len(jobs) == 1  # one imitation run for both recipes
    for j in jobs:
        learner_job(("imitate", j))
    (tc,) = finetune_plan(cfg)
    assert tc.init_from == str(tmp_path / "runs" / "cl-dagger-oracle" / "0")
    learner_job(("train", tc.to_dict()))
    assert imitate_plan(cfg) == [] and finetune_plan(cfg) == []
    runs = learned_policies(cfg)
    ft = tmp_path / "runs" / "cl-dagger-oracle-ppo" / "0"
    # scored as the agent-v2 ablation that chose the recipe scored it: the imitation run's
    # student (its directory), the fine-tuned run's best checkpoint on held-out train seeds
    assert runs == {RunLabel("dagger-oracle", 0): tmp_path / "runs" / "cl-dagger-oracle" / "0",
                    RunLabel("dagger-oracle-ppo", 0): ft / "best_model.zip"}  # fmt: skip
    assert (ft / "best_model.zip").is_file() and (ft / "model.zip").is_file()
    meta = json.loads((ft / "config.json").read_text())
    assert meta["config"]["init_from"] == tc.init_from and meta["env_options"]["obs_version"] == 2
    assert any(r["algo"] == "dagger-oracle-ppo" and r["env_steps"] for r in learning_curves(cfg))


def test_unknown_algo_names_the_algorithms_and_the_recipes():
    import subprocess
    import sys

    from experiments.user_errors import UserError

    with pytest.raises(ValueError, match=r"unknown algorithm\(s\) \['dagger'\].*dagger-oracle-ppo"):
        CompareConfig(algos=("ppo", "dagger"), train_scenarios="default-v2",
                      test_scenarios="default-v2")  # fmt: skip
    res = subprocess.run([sys.executable, "-m", "experiments.cli", "compare", "--algos",
                          "ppo,dagger", "--train-scenarios", "default-v2", "--test-scenarios",
                          "default-v2"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert res.returncode == 2
    assert "'dagger'" in res.stderr and "a2c" in res.stderr and "dagger-esx" in res.stderr
    for kw, match in ((dict(obs_version=3), "obs_version"),
                      (dict(decision_period_s=0.0), "decision_period_s must be > 0"),
                      (dict(hold_deadband=1.0), r"hold_deadband must be in \[0, 1\)")):
        with pytest.raises(UserError, match=match):
            CompareConfig(train_scenarios="default-v2", test_scenarios="default-v2", **kw)
    with pytest.raises(UserError, match="imitation recipes act in action mode"):
        CompareConfig(algos=("bc-esx",), action_mode="delta", train_scenarios="default-v2",
                      test_scenarios="default-v2")  # fmt: skip


def test_plain_ppo_config_json_keeps_headline_v1s_keys():
    """The new fields are left out of a config that does not use them: headline-v1's
    config reads back the same (its config.json predates scenario_module only; its
    scenarios are swapped for data-free ones, the v1 split replays the shared data)."""
    committed = json.loads(
        (REPO / "experiments" / "results" / "headline-v1" / "config.json").read_text()
    )["config"]
    same = {**committed, "train_scenarios": "default-v1", "test_scenarios": "bursty-v1"}
    cfg = CompareConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in same.items()})
    d = json.loads(json.dumps(cfg.to_dict()))
    assert set(d) - set(committed) == {"scenario_module"} and set(committed) <= set(d)
    assert {k: d[k] for k in committed} == same
    from experiments.agent_v2 import Budget
    from experiments.compare_learners import IMITATE_EPISODES, IMITATE_ITERATIONS

    assert (IMITATE_ITERATIONS, IMITATE_EPISODES) == (Budget.iterations, Budget.episodes)
    v2 = CompareConfig(algos=("ppo",), train_scenarios="default-v2", test_scenarios="default-v2",
                       obs_version=2, decision_period_s=1.0, imitate_iterations=5)  # fmt: skip
    d2 = v2.to_dict()
    assert (d2["obs_version"], d2["decision_period_s"], d2["imitate_iterations"]) == (2, 1.0, 5)
    assert "hold_deadband" not in d2 and "imitate_episodes" not in d2
    d3 = CompareConfig(algos=("dagger-oracle-ppo",), train_scenarios="default-v2",
                       test_scenarios="default-v2").to_dict()  # fmt: skip
    assert (d3["imitate_iterations"], d3["imitate_episodes"]) == (3, 4)  # used: recorded
    assert "obs_version" not in d3
    tc = v2.train_config("ppo", 0, False, False)
    assert tc.env_options == {"obs_version": 2, "decision_period_s": 1.0}
