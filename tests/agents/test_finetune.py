"""reclaim train --init-from: PPO fine-tuning of an imitation run (issue #25).

A tiny end to end: imitate ESX for one behaviour-cloning iteration on a short Balloon-v2
episode, then fine-tune it with PPO for a few rollouts."""

from __future__ import annotations

import csv
import json
import math
import shutil
import zipfile

import numpy as np
import pytest
import torch

from agents.learners import load_policy
from agents.learners.imitation import ImitateConfig
from agents.learners.imitation import train as imitate
from agents.learners.imitation.networks import Student
from agents.learners.sb3.finetune import BC_DECAY, INIT_LOG_STD
from agents.learners.sb3.train import (
    ConfigError,
    TrainConfig,
    _start_fresh,
    make_train_env,
    train,
)
from agents.runs import RunDir
from experiments.cli import main as cli_main
from experiments.evaluate import run_policy
from tests.processes import evaluations, kill_and_resume_train

# Imitation: 2 episodes of 30 ticks, 6 decisions of 5 s each (tests/agents/test_imitation.py).
IMITATE = dict(episodes=2, max_episode_steps=30, epochs=3, eval_episodes=0, iterations=0,
               progress_bar=False, decision_period_s=5.0, hold_deadband=0.0)  # fmt: skip
# PPO: 2 hosts × 8 decisions per rollout (16 env steps; 64 SB3 steps, one per VM).
ROLLOUT = 16
FINETUNE = dict(scenario="default-v1", n_envs=2, n_steps=8, batch_size=32, n_epochs=2,
                max_episode_steps=30, eval_freq=ROLLOUT, eval_episodes=2,
                checkpoint_freq=ROLLOUT, progress_bar=False, tensorboard=False)  # fmt: skip
ACTOR = ("mlp_extractor.policy_net.", "action_net.", "log_std")


@pytest.fixture(scope="module")
def imitation_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("imitate")
    return imitate(ImitateConfig(runs_dir=str(root), **IMITATE)).run_dir


def finetune(imitation_run, tmp_path, **kw) -> TrainConfig:
    return TrainConfig(init_from=str(imitation_run), runs_dir=str(tmp_path),
                       **{**FINETUNE, **kw})  # fmt: skip


def fresh_model(config: TrainConfig):
    """The model of a fresh run of ``config``, before any update."""
    config.run.path.mkdir(parents=True)
    torch.set_num_threads(1)
    return _start_fresh(config, config.run, make_train_env(config))


def test_initial_policy_is_the_student_with_the_configured_std(imitation_run, tmp_path):
    """Before any update PPO's deterministic actions are the student's, on the same raw
    observations, and its std is the configured one (default σ = 0.1)."""
    model = fresh_model(finetune(imitation_run, tmp_path / "a"))
    student = Student.load(imitation_run / "student.pt")
    vn = model.get_env()
    obs = vn.reset()  # normalized by the student's frozen statistics
    raw = vn.get_original_obs()
    ppo, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(ppo, student.predict(student.normalize(raw)))
    assert float(np.exp(model.policy.log_std.detach().numpy())[0]) == pytest.approx(0.1)
    assert INIT_LOG_STD == pytest.approx(math.log(0.1))
    other = fresh_model(finetune(imitation_run, tmp_path / "b", log_std_init=-1.0, seed=1))
    assert other.policy.log_std.detach().numpy().tolist() == pytest.approx([-1.0])
    # The actor is the student's, the critic PPO's own (imitation never trains it): with
    # another seed than the imitation run's, it is not the student's untrained one.
    own, theirs = other.policy.state_dict(), student.net.state_dict()
    for k in own:
        if k.endswith(".weight"):  # (biases start at 0 in both)
            assert torch.equal(own[k], theirs[k]) == k.startswith(ACTOR[:2]), k


def test_critic_warmup_changes_only_the_value_network(imitation_run, tmp_path):
    for warmup, actor_moves in ((1, False), (0, True)):
        cfg = finetune(imitation_run, tmp_path / str(warmup), critic_warmup_rollouts=warmup,
                       total_timesteps=ROLLOUT)  # fmt: skip
        model = fresh_model(cfg)
        before = {k: v.clone() for k, v in model.policy.state_dict().items()}
        model.learn(total_timesteps=model.n_steps * model.n_envs)
        after = model.policy.state_dict()
        moved = {k for k in before if not torch.equal(before[k], after[k])}
        assert moved, "nothing trained"
        assert any(k.startswith("value_net.") or ".value_net." in k for k in moved)
        actor_moved = {k for k in moved if k.startswith(ACTOR)}
        assert bool(actor_moved) == actor_moves, (warmup, sorted(moved))
        if not actor_moves:  # the warm-up played the initial policy and kept it
            assert moved == {k for k in before if "value_net" in k}


def _progress(run: RunDir) -> list[dict[str, str]]:
    with open(run.segment_logs(0) / "progress.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("finetune/bc_weight")]


def test_bc_weight_decays_as_configured_and_the_best_model_is_chosen_on_held_out_seeds(
    imitation_run, tmp_path
):
    cfg = finetune(imitation_run, tmp_path, critic_warmup_rollouts=1, bc_coef=0.5, bc_decay=0.5,
                   total_timesteps=4 * ROLLOUT)  # fmt: skip
    res = train(cfg)
    # SB3 writes an update's logs with the next rollout's: the last update's are not there.
    rows = _progress(cfg.run)
    assert [float(r["finetune/critic_warmup"]) for r in rows] == [1, 0, 0]
    assert [float(r["finetune/bc_weight"]) for r in rows] == [0, 0.5, 0.25]
    assert all(float(r["finetune/bc_loss"]) >= 0 for r in rows[1:])
    meta = json.loads((res.run_dir / "config.json").read_text())
    assert meta["finetune"] == {"critic_warmup_rollouts": 1, "bc_coef": 0.5, "bc_decay": 0.5}
    assert meta["init_from"]["path"] == str(imitation_run.resolve())
    assert len(meta["init_from"]["config_sha256"]) == 64
    assert meta["env_options"]["obs_version"] == 2 and meta["seed"] == 0
    assert meta["git_revision"] and "stable-baselines3" in meta["versions"]
    # Defaults: a KL penalty of weight 1 at the initial std, DAPG's decay.
    default = finetune(imitation_run, tmp_path / "d").finetune
    assert default["bc_coef"] == pytest.approx(50.0) and default["bc_decay"] == BC_DECAY == 0.95
    wide = finetune(imitation_run, tmp_path / "d", log_std_init=math.log(0.5)).finetune
    assert wide["bc_coef"] == pytest.approx(2.0)

    # Evaluations: the train scenario, the held-out seeds only, from step 0 (the student).
    evals = RunDir(res.run_dir).read_evaluations()
    seeds = [cfg.eval_seed, cfg.eval_seed + 1]
    assert {int(r["seed"]) for r in evals} == set(seeds)
    assert {r["scenario"] for r in evals} == {"default-v1"}
    steps = sorted({int(r["env_steps"]) for r in evals})
    assert steps[0] == 0 and steps[-1] == 4 * ROLLOUT
    mean = {s: np.mean([float(r["return"]) for r in evals if int(r["env_steps"]) == s])
            for s in steps}  # fmt: skip
    # Step 0 is the imitation policy itself, played on its own env options.
    student = run_policy(str(imitation_run), "default-v1", seeds, max_episode_steps=30)
    assert mean[0] == pytest.approx(np.mean([r["return"] for r in student]))
    # best_model.zip is the evaluation with the highest mean (the first of ties).
    best = max(mean.values())
    got = run_policy(str(res.run_dir / "best_model.zip"), "default-v1", seeds,
                     max_episode_steps=30)  # fmt: skip
    assert np.mean([r["return"] for r in got]) == pytest.approx(best)


def test_without_warmup_and_bc_it_is_sb3_ppo(imitation_run, tmp_path):
    """FineTunePPO.train is SB3's PPO.train plus two terms: with both off, the same
    weights as SB3's PPO from the same start."""
    from stable_baselines3 import PPO

    cfg = finetune(imitation_run, tmp_path, critic_warmup_rollouts=0, bc_coef=0.0)
    ours = fresh_model(cfg)
    start = {k: v.clone() for k, v in ours.policy.state_dict().items()}
    venv = make_train_env(cfg)
    from agents.learners.sb3.train import wrap_normalize

    vn = wrap_normalize(venv, cfg, student=Student.load(imitation_run / "student.pt"))
    sb3 = PPO("MlpPolicy", vn, n_steps=8, batch_size=32, n_epochs=2, seed=0, device="cpu",
              policy_kwargs={"net_arch": [64, 64], "log_std_init": INIT_LOG_STD})  # fmt: skip
    sb3.policy.load_state_dict(start)
    for m in (ours, sb3):
        m.set_random_seed(0)
        m.learn(total_timesteps=3 * m.n_steps * m.n_envs)
    a, b = ours.policy.state_dict(), sb3.policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["action_net.weight"], start["action_net.weight"])


def test_resume_from_a_checkpoint_is_exact(imitation_run, tmp_path):
    """Resumed from its first checkpoint (during the BC phase), a fine-tuning run ends
    with the weights and evaluations of the uninterrupted run."""
    kw = dict(critic_warmup_rollouts=1, total_timesteps=4 * ROLLOUT)
    whole = finetune(imitation_run, tmp_path / "whole", **kw)
    train(whole)
    part = tmp_path / "part"
    shutil.copytree(tmp_path / "whole", part)
    resumed = finetune(imitation_run, part, resume=True, **kw)
    (resumed.run_dir / "result.json").unlink()
    ck_dir = resumed.run_dir / "checkpoints"
    cks = sorted(p.name for p in ck_dir.glob("checkpoint_*.json"))
    assert len(cks) == 2
    shutil.copy(ck_dir / cks[0], ck_dir / "checkpoint.json")
    (ck_dir / cks[1]).unlink()
    res = train(resumed)
    assert res.env_steps == 4 * ROLLOUT
    assert json.loads((resumed.run_dir / "result.json").read_text())["resumed_from"] == 3 * ROLLOUT
    for member in ("policy.pth", "policy.optimizer.pth"):
        a = zipfile.ZipFile(whole.run_dir / "model.zip").read(member)
        assert zipfile.ZipFile(resumed.run_dir / "model.zip").read(member) == a, member

    assert evaluations(resumed.run_dir) == evaluations(whole.run_dir)
    # The fine-tuned run loads through the registry on its own env options.
    policy = load_policy(whole.run_dir)
    assert policy.obs_version == 2


def test_refusals(imitation_run, tmp_path, capsys):
    def refused(match, **kw):
        with pytest.raises(ConfigError, match=match):
            finetune(imitation_run, tmp_path, **kw)

    refused("needs algo='ppo'", algo="a2c", batch_size=None, n_epochs=None)
    refused("needs layout='per-vm'", layout="flat")
    refused("needs residual=None", residual="esx")
    refused("needs normalize_obs=True", normalize_obs=False)
    refused("acts in action mode 'absolute': pass --action-mode absolute", action_mode="delta")
    refused(r"has net_arch \[64, 64\], this config \[32\]", net_arch=(32,))
    refused("bc_decay must be", bc_decay=1.5)
    refused("critic_warmup_rollouts must be", critic_warmup_rollouts=-1)
    with pytest.raises(ConfigError, match=r"\['bc_coef'\] need --init-from"):
        TrainConfig(bc_coef=0.1)
    # Not an imitation run: an empty directory, an SB3 run.
    with pytest.raises(ConfigError, match="no readable config.json"):
        finetune(tmp_path, tmp_path / "x")
    sb3 = tmp_path / "sb3"
    sb3.mkdir()
    (sb3 / "config.json").write_text(json.dumps({"method": "sb3", "config": {}}))
    with pytest.raises(ConfigError, match="not an imitation run"):
        finetune(sb3, tmp_path / "x")
    # A damaged student: its checksum no longer matches the checkpoint's index.
    broken = tmp_path / "broken"
    shutil.copytree(imitation_run, broken)
    student = broken / "checkpoints" / "student_0000.pt"
    student.write_bytes(student.read_bytes()[:-10])
    with pytest.raises(ConfigError, match="corrupt"):
        finetune(broken, tmp_path / "x")
    student.unlink()
    with pytest.raises(ConfigError, match="missing"):
        finetune(broken, tmp_path / "x")
    # A student whose network does not fit the env (observation v1 on a v2 env).
    from agents.learners.sb3.finetune import read_imitation_run
    from agents.learners.sb3.finetune_ppo import check_student

    model = fresh_model(finetune(imitation_run, tmp_path / "m"))
    with pytest.raises(ConfigError, match="obs_version=1"):
        check_student(Student(1, "absolute", (64, 64)), read_imitation_run(imitation_run), model)
    # The CLI: exit status 2, one line, nothing created.
    out = tmp_path / "cli"
    rc = cli_main(["train", "--init-from", str(sb3), "--runs-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not an imitation run" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_resume_refuses_a_changed_imitation_run(imitation_run, tmp_path):
    cfg = finetune(imitation_run, tmp_path, total_timesteps=2 * ROLLOUT)
    train(cfg)
    meta = json.loads(cfg.run.config_json.read_text())
    meta["init_from"]["student_sha256"] = "0" * 64  # as if the student had been retrained
    cfg.run.config_json.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"changed since the run started \(student_sha256"):
        train(finetune(imitation_run, tmp_path, total_timesteps=3 * ROLLOUT, resume=True))


def test_absolute_hold_run_fine_tunes_and_sets_targets_and_flags(tmp_path):
    """A student of the absolute-hold mode: PPO acts (target, hold flag) per VM, and the
    fine-tuned run drives a Balloon-v2 env with (B, 2·V) actions."""
    from envs.vector_env import BalloonVectorEnv

    run = imitate(ImitateConfig(runs_dir=str(tmp_path / "im"), action_mode="absolute-hold",
                                **IMITATE)).run_dir  # fmt: skip
    with pytest.raises(ConfigError, match="pass --action-mode absolute-hold"):
        finetune(run, tmp_path)
    cfg = finetune(run, tmp_path, action_mode="absolute-hold", total_timesteps=2 * ROLLOUT)
    res = train(cfg)
    env = BalloonVectorEnv(2, "default-v1", obs_version=2, decision_period_s=5,
                           action_mode="absolute-hold")  # fmt: skip
    policy = load_policy(res.run_dir, env)
    obs, info = env.reset(seed=0)
    a = policy.act(obs, info)
    assert a.shape == (2, 8) and a.dtype == np.float32 and (np.abs(a) <= 1).all()
    one_tick = BalloonVectorEnv(1, "default-v1", obs_version=2, action_mode="absolute-hold")
    with pytest.raises(ValueError, match="decision_period_s"):
        load_policy(res.run_dir, one_tick)


@pytest.mark.slow  # three CLI processes (~40 s on 2 busy cores)
def test_killed_and_resumed_fine_tuning_equals_an_uninterrupted_one(imitation_run, tmp_path):
    """SIGKILL of ``reclaim train --init-from`` after its first checkpoint (in the critic's
    warm-up), then --resume: the same evaluations and the same final weights as the run
    never stopped."""
    def args(root) -> list[str]:
        return ["train", "--init-from", str(imitation_run), "--scenario", "default-v1",
                "--total-timesteps", "256", "--n-envs", "2", "--n-steps", "8",
                "--batch-size", "32", "--n-epochs", "2", "--max-episode-steps", "30",
                "--critic-warmup-rollouts", "5", "--eval-freq", "64", "--eval-episodes", "1",
                "--checkpoint-freq", "64", "--runs-dir", str(root), "--name", "x",
                "--no-progress-bar", "--no-tensorboard"]  # fmt: skip

    whole, killed = kill_and_resume_train(args, tmp_path)
    assert evaluations(killed) == evaluations(whole)
    assert len(evaluations(whole)) == 5  # steps 0, 64, ..., 256
    a = zipfile.ZipFile(whole / "model.zip").read("policy.pth")
    assert zipfile.ZipFile(killed / "model.zip").read("policy.pth") == a
    # Adam's state, tensor by tensor (a run resumed in the warm-up creates the actor's
    # moments later than it loads the critic's, which pickles differently, not to
    # other values).
    opt = [_optimizer_state(run / "model.zip") for run in (whole, killed)]
    assert opt[0]["param_groups"] == opt[1]["param_groups"]
    assert list(opt[0]["state"]) == list(opt[1]["state"])
    for k, moments in opt[0]["state"].items():
        for name, t in moments.items():
            assert torch.equal(t, opt[1]["state"][k][name]), (k, name)


def _optimizer_state(model_zip) -> dict:
    import io

    data = zipfile.ZipFile(model_zip).read("policy.optimizer.pth")
    return torch.load(io.BytesIO(data), weights_only=False)
