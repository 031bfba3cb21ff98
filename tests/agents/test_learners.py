"""The learner seam (agents.learners): one loader registry keyed by a run's method."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from agents.learners import DEFAULT_METHOD, LEARNERS, load_policy, run_method
from agents.policies import check_policy_name, is_run_path, make_policy
from envs.vector_env import BalloonVectorEnv
from tests import REPO

# A run written before the seam: its config.json records no method.
OLD_RUN = REPO / "experiments" / "results" / "headline-v1" / "models" / "ppo" / "0"


def test_every_method_package_provides_the_seam():
    for method, module in LEARNERS.items():
        mod = importlib.import_module(module)
        assert mod.METHOD == method and callable(mod.load_policy)


def test_method_packages_import_without_torch():
    code = ("import sys, agents.learners as L, importlib\n"
            "[importlib.import_module(m) for m in L.LEARNERS.values()]\n"
            "print('torch' in sys.modules, 'stable_baselines3' in sys.modules)")  # fmt: skip
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "False"]


def test_an_old_run_without_method_is_sb3_and_loads():
    assert "method" not in json.loads((OLD_RUN / "config.json").read_text())
    assert run_method(OLD_RUN) == run_method(OLD_RUN / "model.zip") == DEFAULT_METHOD == "sb3"
    env = BalloonVectorEnv(2, "boot-storm-v0", max_episode_steps=4)  # 6 VMs: per-VM net
    pol = load_policy(OLD_RUN, env)
    obs, info = env.reset(seed=0)
    a = pol.act(obs, info)
    assert a.shape == (2, env.config.num_vms) and np.all(np.abs(a) <= 1)
    # make_policy takes the run directory and its model zip alike, through the registry
    assert is_run_path(str(OLD_RUN)) and is_run_path(str(OLD_RUN / "model.zip"))
    check_policy_name(str(OLD_RUN))
    for path in (OLD_RUN, OLD_RUN / "model.zip"):
        assert np.array_equal(make_policy(str(path), env).act(obs, info), a)


def test_unknown_method_and_missing_config(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    meta = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**meta, "method": "telepathy"}))
    with pytest.raises(ValueError, match="unknown learning method 'telepathy'"):
        load_policy(run)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_policy(empty)
    with pytest.raises(ValueError, match="unknown policy"):
        check_policy_name(str(tmp_path / "not-there"))
