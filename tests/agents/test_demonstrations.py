"""The teacher's demonstrations as a Minari dataset (``reclaim imitate --dataset``): the
round trip through ``minari.load_dataset`` against imitate's own behaviour-cloning
rollouts, the dataset id rules, existing and damaged datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest

minari = pytest.importorskip("minari")  # the offline extra
pytest.importorskip("h5py")

from agents.layout import per_vm_features  # noqa: E402
from agents.learners.imitation import ImitateConfig  # noqa: E402
from agents.learners.imitation.demonstrations import (  # noqa: E402
    check_can_write,
    dataset_path,
    load_demonstrations,
    record_demonstrations,
)
from agents.learners.imitation.train import collect  # noqa: E402
from agents.runs import ConfigError  # noqa: E402
from experiments.cli import main  # noqa: E402

NAME = "reclaim/default-v1/esx-v0"
# 2 episodes of 12 ticks (12 decisions of 1 s: Balloon-v2's period and dead-band).
SMALL = dict(episodes=2, max_episode_steps=12, epochs=1, eval_episodes=0, progress_bar=False)


@pytest.fixture(autouse=True)
def datasets_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))  # Minari's own variable
    return root


def small(tmp_path, **kw) -> ImitateConfig:
    return ImitateConfig(runs_dir=str(tmp_path / "runs"), **{**SMALL, "dataset": NAME, **kw})


@pytest.mark.parametrize(("teacher", "action_mode"), [("esx", "absolute"),
                                                      ("mom", "absolute-hold")])  # fmt: skip
def test_dataset_holds_imitates_behaviour_cloning_rollouts(tmp_path, datasets_root, teacher,
                                                           action_mode):  # fmt: skip
    config = small(tmp_path, teacher=teacher, action_mode=action_mode)
    record_demonstrations(config)
    assert dataset_path(NAME) == datasets_root / NAME
    ds = minari.load_dataset(NAME)  # what a Minari user does
    assert ds.total_episodes == 2 and ds.total_steps == 2 * 12
    meta = list(ds.storage.get_episode_metadata(range(2)))
    assert [int(m["seed"]) for m in meta] == [config.train_seed(0, 0, j) for j in range(2)]
    # imitate's own iteration 0 (the teacher acting alone, on the vector env): the same
    # states and the same labels, row for row (rows: step, then episode, then VM).
    data = collect(config, None, 0)
    V = 4
    x = data["x"].reshape(12, 2, V, -1)
    y = data["y"].reshape(12, 2, V, -1)
    A = y.shape[3]
    returns = []
    for b in range(2):
        ep = ds[b]
        assert ep.observations.shape == (13, 20 * V + 5)
        assert ep.actions.shape == (12, A * V) and ep.actions.dtype == np.float32
        np.testing.assert_array_equal(per_vm_features(ep.observations[:-1], 2), x[:, b].reshape(
            12 * V, -1))  # fmt: skip
        # the env layout: every VM's target, then (absolute-hold) every VM's hold flag
        np.testing.assert_array_equal(ep.actions.reshape(12, A, V).transpose(0, 2, 1), y[:, b])
        assert not ep.terminations.any() and ep.truncations.tolist() == [False] * 11 + [True]
        assert ep.infos["vm"]["balloon_target"].shape == (13, V)
        assert ep.infos["host"]["host_free_frames"].shape == (13,)
        returns.append(float(ep.rewards.sum()))
    assert np.mean(returns) == pytest.approx(data["return"], rel=1e-9)
    # the recorded env spec rebuilds the env: the recorded actions replay the episode
    env = ds.recover_environment()
    obs, _ = env.reset(seed=int(meta[1]["seed"]))
    np.testing.assert_array_equal(obs, ds[1].observations[0])
    for t, a in enumerate(ds[1].actions):
        obs, r, *_ = env.step(a)
        np.testing.assert_array_equal(obs, ds[1].observations[t + 1])
        assert r == ds[1].rewards[t]
    env.close()
    prov = ds.storage.metadata["reclaim"]
    assert prov["teacher"] == teacher and prov["scenario"] == "default-v1"
    assert prov["env_options"]["action_mode"] == action_mode and prov["git_revision"]
    assert env.spec.kwargs["max_episode_steps"] == 12


def test_bad_ids_and_options_are_config_errors(tmp_path):
    for bad in ("esx", "reclaim/esx", "/esx-v0", "reclaim/../esx-v0", "a b-v0"):
        with pytest.raises(ConfigError, match="dataset"):
            small(tmp_path, dataset=bad)
    with pytest.raises(ConfigError, match="one scenario"):
        small(tmp_path, scenario="default-v1,mixed-v1")
    with pytest.raises(ConfigError, match="resume"):
        small(tmp_path, resume=True)
    with pytest.raises(ConfigError, match="dataset_only"):
        ImitateConfig(dataset_only=True)


def test_existing_dataset_is_refused_unless_overwrite(tmp_path):
    record_demonstrations(small(tmp_path, episodes=1))
    with pytest.raises(ConfigError, match="exists.*--overwrite"):
        record_demonstrations(small(tmp_path))
    assert minari.load_dataset(NAME).total_episodes == 1  # untouched
    record_demonstrations(small(tmp_path, overwrite=True))
    assert minari.load_dataset(NAME).total_episodes == 2


def test_damaged_dataset_errors_name_the_file(tmp_path, datasets_root):
    record_demonstrations(small(tmp_path, episodes=1))
    data = datasets_root / NAME / "data"
    h5 = data / "main_data.hdf5"
    body = h5.read_bytes()
    h5.write_bytes(body[: len(body) // 2])  # truncated
    for check in (lambda: load_demonstrations(NAME), lambda: check_can_write(small(tmp_path))):
        with pytest.raises(ConfigError, match="damaged") as e:
            check()
        assert str(h5) in str(e.value)
    h5.write_bytes(body)
    load_demonstrations(NAME)  # intact again
    meta = data / "metadata.json"
    doc = json.loads(meta.read_text())
    meta.write_text(json.dumps({**doc, "total_steps": doc["total_steps"] + 1}))
    with pytest.raises(ConfigError, match="holds 12 steps") as e:
        load_demonstrations(NAME)
    assert str(h5) in str(e.value)
    meta.unlink()
    with pytest.raises(ConfigError, match="damaged") as e:
        load_demonstrations(NAME)
    assert str(meta) in str(e.value)
    with pytest.raises(ConfigError, match="no Minari dataset"):
        load_demonstrations("reclaim/default-v1/none-v0")


def _cli(tmp_path, *extra: str) -> list[str]:
    return ["imitate", "--dataset", NAME, "--episodes", "1", "--max-episode-steps", "4",
            "--eval-episodes", "0", "--epochs", "1", "--iterations", "0",
            "--no-progress-bar", "--runs-dir", str(tmp_path / "runs"), *extra]  # fmt: skip


def test_cli_dataset_only_then_refuses_to_replace_it(tmp_path, capsys):
    assert main(_cli(tmp_path, "--dataset-only")) == 0
    assert "Minari dataset " + NAME in capsys.readouterr().out
    assert minari.load_dataset(NAME).total_steps == 4
    assert not (tmp_path / "runs").exists()  # no training
    rc = main(_cli(tmp_path))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--overwrite" in err[0]
    assert not (tmp_path / "runs").exists()  # refused before any training
    assert main(_cli(tmp_path, "--overwrite")) == 0  # the dataset again, then a BC run
    assert (tmp_path / "runs").exists() and minari.load_dataset(NAME).total_steps == 4
