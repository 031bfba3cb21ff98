"""reclaim train: config validation, run directory, checkpoints and resume, model → policy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.training import ConfigError, TrainConfig, check_run_dir, train
from experiments.cli import main as cli_main

REPO = Path(__file__).resolve().parent.parent
TINY = dict(
    total_timesteps=256, n_envs=4, max_episode_steps=32, eval_freq=128, eval_episodes=1,
    checkpoint_freq=128, progress_bar=False, tensorboard=False,
)  # fmt: skip


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(algo="dqn"), "unknown algorithm 'dqn'"),
        (dict(algo="sac", action_mode="discrete"), "sac needs continuous actions"),
        (dict(algo="td3", action_mode="discrete"), "td3 needs continuous actions"),
        (dict(scenario="nope-v0"), "unknown scenario 'nope-v0'"),
        (dict(algo="sac", n_epochs=3), r"sac does not take \['n_epochs'\]"),
        (dict(total_timesteps=0), "total_timesteps must be an int >= 1"),
        (dict(layout="grid"), "layout must be one of"),
        (dict(n_envs=0), "n_envs must be an int >= 1"),
        (dict(resume=True, overwrite=True), "contradict"),
        (dict(scenario="default-v0,boot-storm-v0", layout="flat"), "one VM count"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_cli_error_before_training(tmp_path, capsys):
    rc = cli_main(
        ["train", "--algo", "sac", "--action-mode", "discrete", "--runs-dir", str(tmp_path)]
    )
    assert rc == 2
    assert "sac needs continuous actions" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing created


def test_resume_errors(tmp_path):
    cfg = TrainConfig(runs_dir=str(tmp_path), resume=True, **TINY)
    with pytest.raises(ConfigError, match="config.json does not exist"):
        check_run_dir(cfg)
    run = cfg.run_dir
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": cfg.to_dict()}))
    with pytest.raises(ConfigError, match="no checkpoint"):
        check_run_dir(cfg)
    ck = run / "checkpoints"
    ck.mkdir()
    (ck / "model_000000000128.zip").write_bytes(b"not a zip")
    (ck / "checkpoint.json").write_text(
        json.dumps({"env_steps": 128, "files": {"model": "model_000000000128.zip"}})
    )
    with pytest.raises(ConfigError, match="missing or corrupt"):
        check_run_dir(cfg)
    (ck / "checkpoint.json").write_text("{broken")
    with pytest.raises(ConfigError, match="corrupt checkpoint index"):
        check_run_dir(cfg)
    other = TrainConfig(runs_dir=str(tmp_path), resume=True, **{**TINY, "n_envs": 8})
    with pytest.raises(ConfigError, match=r"config differs in \['n_envs'\]"):
        check_run_dir(other)
    with pytest.raises(ConfigError, match="exists: pass --resume"):
        check_run_dir(TrainConfig(runs_dir=str(tmp_path), **TINY))


def test_train_subprocess_writes_run_dir(tmp_path):
    res = _cli(
        "train", "--total-timesteps", "256", "--n-envs", "4", "--max-episode-steps", "32",
        "--eval-freq", "128", "--eval-episodes", "1", "--checkpoint-freq", "128",
        "--runs-dir", str(tmp_path), "--name", "tiny", "--seed", "3", "--no-progress-bar",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    run = tmp_path / "tiny" / "3"
    for f in ("config.json", "model.zip", "vecnormalize.pkl", "evaluations.csv", "result.json",
              "checkpoints/checkpoint.json"):  # fmt: skip
        assert (run / f).exists(), f
    meta = json.loads((run / "config.json").read_text())
    assert meta["seed"] == 3 and meta["config"]["algo"] == "ppo"
    assert meta["git_revision"] and "stable-baselines3" in meta["versions"]
    assert meta["hyperparams"]["n_steps"] == 64
    assert list((run / "logs").glob("events.out.tfevents*"))  # tensorboard
    assert json.loads((run / "result.json").read_text())["env_steps"] >= 256


def test_resume_after_kill(tmp_path):
    args = [
        "train", "--total-timesteps", "200000", "--n-envs", "4", "--max-episode-steps", "32",
        "--eval-freq", "0", "--checkpoint-freq", "256", "--runs-dir", str(tmp_path),
        "--name", "killed", "--no-progress-bar", "--no-tensorboard",
    ]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    index = tmp_path / "killed" / "0" / "checkpoints" / "checkpoint.json"
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not index.exists():
            time.sleep(0.5)
        assert index.exists(), "no checkpoint written"
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    steps = json.loads(index.read_text())["env_steps"]
    assert steps >= 256 and steps % 256 == 0
    total = str(steps + 256)
    args[2] = total
    res = _cli(*args, "--resume")
    assert res.returncode == 0, res.stderr
    result = json.loads((tmp_path / "killed" / "0" / "result.json").read_text())
    assert result["resumed_from"] == steps
    assert result["env_steps"] >= steps + 256


@pytest.mark.parametrize(
    "algo, extra",
    [
        ("sac", dict(learning_starts=64, batch_size=32, buffer_size=1000)),
        ("td3", dict(learning_starts=64, batch_size=32, buffer_size=1000)),
        ("a2c", dict()),
        ("recurrent-ppo", dict(n_steps=16, batch_size=64)),
    ],
)
def test_other_algorithms_train_and_resume(tmp_path, algo, extra):
    cfg = TrainConfig(algo=algo, runs_dir=str(tmp_path), **{**TINY, "n_envs": 2}, **extra)
    train(cfg)
    assert (cfg.run_dir / "result.json").exists()
    ck = json.loads((cfg.run_dir / "checkpoints" / "checkpoint.json").read_text())
    if algo in ("sac", "td3"):
        assert "replay_buffer" in ck["files"]
    more = TrainConfig(algo=algo, runs_dir=str(tmp_path), resume=True,
                       **{**TINY, "n_envs": 2, "total_timesteps": 384}, **extra)  # fmt: skip
    res = train(more)
    assert res.env_steps >= 384


def test_model_policy_round_trip_in_evaluate(tmp_path):
    from agents.policies import make_policy
    from agents.sb3_policy import load_model_policy
    from envs.vector_env import BalloonVectorEnv
    from experiments.evaluate import evaluate

    cfg = TrainConfig(runs_dir=str(tmp_path), **TINY)
    train(cfg)
    model = str(cfg.run_dir / "model.zip")
    # Ranked beside a heuristic, on the training scenario and on one with 6 VMs.
    episodes, summaries = evaluate(
        [model, "no-balloon"], ["default-v0", "boot-storm-v0"], [0, 1], max_episode_steps=8
    )
    assert {s["policy"] for s in summaries} == {model, "no-balloon"}
    assert len(episodes) == 8 and all(np.isfinite(e["return"]) for e in episodes)
    # The loaded policy is deterministic and its actions are in the env's space.
    env = BalloonVectorEnv(3, "default-v0", max_episode_steps=8)
    pol = make_policy(model, env)
    obs, info = env.reset(seed=0)
    a1 = pol.act(obs, info)
    a2 = load_model_policy(cfg.run_dir).act(obs, info)
    assert a1.shape == (3, 4) and a1.dtype == np.float32
    assert np.array_equal(a1, a2) and np.all(np.abs(a1) <= 1)
    # The wrong action mode is refused before any step.
    with pytest.raises(ValueError, match="action mode 'absolute'"):
        make_policy(model, BalloonVectorEnv(1, "default-v0", action_mode="delta"))
