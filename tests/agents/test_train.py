"""reclaim train: config validation, run directory, checkpoints and resume, model → policy."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.learners.sb3.train import ConfigError, TrainConfig, check_run_dir, train
from agents.runs import RunDir
from experiments.cli import main as cli_main
from tests import REPO  # noqa: E402
from tests.processes import evaluations, kill_and_resume_train  # noqa: E402

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
        (dict(gamma=1.5), r"gamma must be in \(0, 1\], got 1.5"),
        (dict(gamma=0.0, learning_rate=0.1), r"gamma must be in \(0, 1\], got 0.0"),
        (dict(learning_rate=0.0), r"learning_rate must be in \(0, inf\), got 0.0"),
        (dict(learning_rate=float("nan")), r"learning_rate must be in \(0, inf\), got nan"),
        (dict(gae_lambda=1.2), r"gae_lambda must be in \[0, 1\], got 1.2"),
        (dict(obs_version=3), r"obs_version must be one of \(1, 2\), got 3"),
        (dict(decision_period_s=1.5), "decision_period_s"),
        (dict(hold_deadband=1.0), "hold_deadband"),
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
    # An index with the right checksums: the zip check itself must catch the bad model.
    RunDir(run).write_checkpoint_index(128, 512, 0, {"model": ck / "model_000000000128.zip"})
    with pytest.raises(ConfigError, match="missing or corrupt"):
        check_run_dir(cfg)
    (ck / "checkpoint_000000000128.json").unlink()
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
    assert meta["method"] == "sb3"  # the loader registry's key (agents.learners)
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
    from agents.learners import load_policy
    from agents.learners.sb3.policy import load_model_policy
    from agents.policies import make_policy
    from envs.vector_env import BalloonVectorEnv
    from experiments.evaluate import evaluate

    cfg = TrainConfig(runs_dir=str(tmp_path), **TINY)
    train(cfg)
    model, run_dir = str(cfg.run_dir / "model.zip"), str(cfg.run_dir)
    # Ranked beside a heuristic, on the training scenario and on one with 6 VMs; the run
    # is named by its model zip or by its directory (the loader registry reads its method).
    episodes, summaries = evaluate(
        [model, run_dir, "no-balloon"], ["default-v0", "boot-storm-v0"], [0, 1],
        max_episode_steps=8,
    )  # fmt: skip
    assert {s["policy"] for s in summaries} == {model, run_dir, "no-balloon"}
    assert len(episodes) == 12 and all(np.isfinite(e["return"]) for e in episodes)
    by = {(e["policy"], e["scenario"], e["seed"]): e["return"] for e in episodes}
    assert all(by[(model, sc, s)] == by[(run_dir, sc, s)] for _p, sc, s in by)
    # The loaded policy is deterministic and its actions are in the env's space.
    env = BalloonVectorEnv(3, "default-v0", max_episode_steps=8)
    pol = make_policy(model, env)
    obs, info = env.reset(seed=0)
    a1 = pol.act(obs, info)
    a2 = load_model_policy(cfg.run_dir).act(obs, info)
    a3 = load_policy(cfg.run_dir, env).act(obs, info)
    assert a1.shape == (3, 4) and a1.dtype == np.float32
    assert np.array_equal(a1, a2) and np.array_equal(a1, a3) and np.all(np.abs(a1) <= 1)
    # The wrong action mode is refused before any step.
    with pytest.raises(ValueError, match="action mode 'absolute'"):
        make_policy(model, BalloonVectorEnv(1, "default-v0", action_mode="delta"))


def test_ppo_on_the_v2_interface_records_it_and_plays_on_it(tmp_path):
    """PPO from scratch on Balloon-v2's interface (--obs-version 2, a decision period, a
    dead-band; issue #25's "PPO on observation v2"): the run records the env options, and
    evaluate plays it on them: its return on a held-out seed is the final evaluation's."""
    from agents.learners import run_env_options
    from experiments.evaluate import run_policy

    cfg = TrainConfig(runs_dir=str(tmp_path), scenario="default-v2", obs_version=2,
                      decision_period_s=2.0, hold_deadband=0.05, **TINY)  # fmt: skip
    res = train(cfg)
    opts = run_env_options(cfg.run_dir)
    assert opts == {"action_mode": "absolute", "obs_version": 2, "decision_period_s": 2.0,
                    "hold_deadband": 0.05}  # fmt: skip
    (ep,) = run_policy(str(cfg.run_dir), "default-v2", [cfg.eval_seed], max_episode_steps=32)
    assert ep["return"] == pytest.approx(res.final_eval["default-v2"], rel=1e-9)
    # a config without the options writes the config.json of a run made before them
    assert "obs_version" not in TrainConfig(**TINY).to_dict()


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_resume_of_finished_run_changes_nothing(tmp_path, caplog, capsys):
    cfg = TrainConfig(runs_dir=str(tmp_path), name="done", **TINY)
    first = train(cfg)
    before = _snapshot(cfg.run_dir)
    with caplog.at_level("INFO", logger="reclaim.train"):
        res = train(dataclasses.replace(cfg, resume=True))
    assert res.already_finished and res.env_steps == first.env_steps
    assert res.final_eval == first.final_eval
    assert "already finished" in caplog.text  # logged at INFO: the CLI says it once
    assert _snapshot(cfg.run_dir) == before  # model, evaluations, result: byte-identical
    # The CLI exits 0 and still changes nothing.
    args = ["train", "--runs-dir", str(tmp_path), "--name", "done", "--resume",
            *(f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if not isinstance(v, bool)),
            "--no-progress-bar", "--no-tensorboard"]  # fmt: skip
    capsys.readouterr()
    assert cli_main(args) == 0
    assert _snapshot(cfg.run_dir) == before
    # it says the run is finished, and nothing more (no "trained ppo for ..." line)
    assert capsys.readouterr().out.strip().splitlines() == [
        f"{cfg.run_dir} already finished ({first.env_steps} env steps): nothing to resume, "
        "results kept"
    ]
    # A larger budget is not finished: it resumes (and result.json is rewritten).
    more = train(dataclasses.replace(cfg, resume=True, total_timesteps=384))
    assert not more.already_finished and more.env_steps >= 384
    assert json.loads((cfg.run_dir / "result.json").read_text())["total_timesteps"] == 384


def _flip_bit(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_checkpoints_verified_and_fall_back(tmp_path, caplog):
    # Rollouts of 8 steps x 4 hosts = 32 env steps: checkpoints (at rollout boundaries)
    # every 64 env steps.
    cfg = TrainConfig(runs_dir=str(tmp_path), **{**TINY, "checkpoint_freq": 64, "n_steps": 8})
    train(cfg)
    run = RunDir(cfg.run_dir)
    index = json.loads(run.checkpoint_index.read_text())
    newest = index["env_steps"]
    assert {"model", "vecnormalize"} <= set(index["files"]) and len(index["sha256"]) == 64
    assert all(len(e["sha256"]) == 64 for e in index["files"].values())
    tags = sorted(p.name for p in run.checkpoints.glob("checkpoint_*.json"))
    assert len(tags) == 2  # the last two are kept
    older = json.loads((run.checkpoints / tags[0]).read_text())["env_steps"]
    resume = dataclasses.replace(cfg, resume=True, total_timesteps=512)
    assert check_run_dir(resume).env_steps == newest
    # One bit of the newest VecNormalize statistics: resume falls back, and says so.
    _flip_bit(run.checkpoints / index["files"]["vecnormalize"]["name"], offset=-20)
    with caplog.at_level("WARNING", logger="reclaim.train"):
        ck = check_run_dir(resume)
    assert ck.env_steps == older
    assert "sha256 mismatch" in caplog.text and f"at {older} env steps" in caplog.text
    res = train(resume)
    assert res.env_steps >= 512
    # Both damaged: a clear error, no traceback from torch or pickle.
    (run.result_json).unlink()
    for p in run.checkpoints.glob("vecnormalize_*.pkl"):
        _flip_bit(p)
    with pytest.raises(ConfigError, match="no intact checkpoint"):
        check_run_dir(dataclasses.replace(resume, total_timesteps=1024))


@pytest.mark.parametrize(
    "tamper, match",
    [
        (lambda d: {**d, "env_steps": d["env_steps"] + 1}, "checksum does not match"),
        (lambda d: {**d, "files": ["model.zip"]}, "'files' must map"),
        (lambda d: {**d, "env_steps": "lots"}, "must be ints >= 0"),
        (lambda d: {**d, "files": {"model": {"name": "../../x.zip", "sha256": "0" * 64}}},
         "bad file entry"),
        (lambda d: [1, 2], "no checksum"),
    ],
)
def test_tampered_checkpoint_index_is_a_clear_error(tmp_path, tamper, match):
    from agents.runs import index_digest

    run = RunDir(tmp_path)
    run.checkpoints.mkdir(parents=True)
    model = run.checkpoint_file("model", 128)
    model.write_bytes(b"x")
    run.write_checkpoint_index(128, 512, 0, {"model": model})
    index = run.checkpoints / "checkpoint_000000000128.json"
    body = tamper(json.loads(index.read_text()))
    if isinstance(body, dict) and "checksum" not in match:
        body["sha256"] = index_digest(body)  # consistent checksum: the content is checked
    index.write_text(json.dumps(body))
    with pytest.raises(ConfigError, match=match):
        run.read_checkpoint_index(index)


def test_resume_keeps_the_evaluation_schedule_and_moved_runs_resume(tmp_path):
    # Checkpoints every 96 env steps (at rollout boundaries: 8 steps x 4 hosts = 32 env
    # steps), evaluations every 128: the resumed segment starts at 192 and must evaluate
    # at 256 and 384, as an uninterrupted run does.
    cfg = TrainConfig(runs_dir=str(tmp_path / "a"), **{**TINY, "total_timesteps": 192,
                                                         "checkpoint_freq": 96,
                                                         "n_steps": 8})  # fmt: skip
    train(cfg)
    assert RunDir(cfg.run_dir).latest_checkpoint().env_steps == 192
    # The runs directory moves: the run still resumes.
    (tmp_path / "a").rename(tmp_path / "b")
    moved = dataclasses.replace(cfg, runs_dir=str(tmp_path / "b"), resume=True,
                                total_timesteps=320)  # fmt: skip
    res = train(moved)
    steps = sorted({r["env_steps"] for r in RunDir(moved.run_dir).read_evaluations()})
    assert res.env_steps >= 320
    assert steps == list(range(128, res.env_steps + 1, 128))
    ckpts = sorted(p.name for p in RunDir(moved.run_dir).checkpoints.glob("checkpoint_*.json"))
    # Each at the first rollout boundary at or past a multiple of 96 (32 env steps apart).
    assert all(int(p[len("checkpoint_") : -len(".json")]) % 96 < 32 for p in ckpts)


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """SIGKILL after the first checkpoint, --resume: the same evaluations (every return
    of every held-out episode) and the same final model, bit for bit."""
    import zipfile

    def args(root: Path) -> list[str]:
        return ["train", "--total-timesteps", "2048", "--n-envs", "4",
                "--max-episode-steps", "32", "--eval-freq", "256", "--eval-episodes", "1",
                "--checkpoint-freq", "256", "--runs-dir", str(root), "--name", "x",
                "--no-progress-bar", "--no-tensorboard"]  # fmt: skip

    whole, killed = kill_and_resume_train(args, tmp_path)
    assert evaluations(killed) == evaluations(whole)
    for member in ("policy.pth", "policy.optimizer.pth"):
        a = zipfile.ZipFile(whole / "model.zip").read(member)
        assert zipfile.ZipFile(killed / "model.zip").read(member) == a, member


@pytest.mark.parametrize("algo, extra", [
    ("a2c", dict()),
    ("sac", dict(learning_starts=64, batch_size=32, buffer_size=1000)),
    ("ppo", dict(residual="mom", n_steps=32, batch_size=64)),  # the heuristic's state too
    ("ppo", dict(seed_group_size=2, reward="per-vm", n_steps=32, batch_size=64)),
])  # fmt: skip
def test_resume_from_a_checkpoint_is_exact(tmp_path, algo, extra):
    """A run resumed from its own mid-run checkpoint ends where the uninterrupted run did
    (on-policy and off-policy: the replay buffer and exploration state are restored)."""
    import shutil
    import zipfile

    kw = dict(TINY, algo=algo, n_envs=2, total_timesteps=384, eval_freq=0, **extra)
    whole = TrainConfig(runs_dir=str(tmp_path / "whole"), **kw)
    train(whole)
    cks = sorted(p.name for p in (whole.run_dir / "checkpoints").glob("checkpoint_*.json"))
    assert cks, "no mid-run checkpoint"
    part = tmp_path / "part"
    shutil.copytree(tmp_path / "whole", part)
    resumed = TrainConfig(runs_dir=str(part), resume=True, **kw)
    (resumed.run_dir / "result.json").unlink()
    ck_dir = resumed.run_dir / "checkpoints"
    shutil.copy(ck_dir / cks[0], ck_dir / "checkpoint.json")  # resume from the oldest kept
    for newer in cks[1:]:
        (ck_dir / newer).unlink()
    train(resumed)
    a = zipfile.ZipFile(whole.run_dir / "model.zip").read("policy.pth")
    assert zipfile.ZipFile(resumed.run_dir / "model.zip").read("policy.pth") == a
