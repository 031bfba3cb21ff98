"""Every script of docs/examples/ runs, with tiny budgets, in a fresh interpreter.

Each script runs as a user runs it (``python docs/examples/<name>.py ...``) in a
subprocess, with this checkout first on ``sys.path``; ``my_scenarios.py`` is a scenario
module (for ``--scenario-module``), so it is imported instead and its scenario driven for
a few steps. A new example must be added to ``RUNS`` (the last test says so).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from tests import REPO

EXAMPLES = REPO / "docs" / "examples"
# script -> (arguments with tiny budgets, a line its output must contain)
RUNS = {
    "baselines.py": (["--seeds", "1", "--steps", "16"], "esx"),
    "custom_scenario.py": (["--seeds", "1", "--steps", "16"], "mean return"),
    "custom_learner.py": (["--updates", "2", "--steps", "16"], "REINFORCE after 2 updates"),
    # ~12 s on 2 busy cores: PPO's first 256 steps and 3 held-out episodes of 16 ticks
    "sb3_train.py": (["--timesteps", "256", "--steps", "16"], "PPO after 256 steps"),
}
MODULES = ("my_scenarios.py",)


def _run(args: list[str]) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)  # fmt: skip


@pytest.mark.parametrize("script", sorted(RUNS))
def test_example_script_runs(script: str) -> None:
    args, expect = RUNS[script]
    res = _run([str(EXAMPLES / script), *args])
    assert res.returncode == 0, f"{script} failed:\n{res.stderr[-3000:]}"
    assert expect in res.stdout, res.stdout


def test_scenario_module_imports_and_its_scenario_runs() -> None:
    code = textwrap.dedent(f"""
        import runpy
        import gymnasium as gym
        import envs
        from agents import make_policy
        from envs.scenarios import get_scenario
        runpy.run_path({str(EXAMPLES / "my_scenarios.py")!r})
        sc = get_scenario("my-recordings-v1")
        env = gym.make("reclaim/Balloon-v1", scenario=sc.id, max_episode_steps=8)
        policy = make_policy("esx", env)
        obs, info = env.reset(seed=0)
        policy.reset(0)
        for _ in range(8):
            obs, r, term, trunc, info = env.step(policy.act(obs, info))
        assert trunc and not term, (term, trunc)
        print("ok", sc.id, sc.num_vms)
    """)
    res = _run(["-c", code])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "ok my-recordings-v1 2" in res.stdout


def test_custom_learner_trains_without_sb3() -> None:
    """The learner seam's promise: a plain PyTorch loop over agents.wrappers, no SB3."""
    script = EXAMPLES / "custom_learner.py"
    code = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = [{str(script)!r}, "--updates", "1", "--steps", "4", "--hosts", "1"]
        runpy.run_path(sys.argv[0], run_name="__main__")
        print("sb3 loaded:", "stable_baselines3" in sys.modules)
    """)
    res = _run(["-c", code])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "sb3 loaded: False" in res.stdout


def test_every_example_is_covered() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(RUNS) | set(MODULES), "add the new example to RUNS or MODULES"


def _readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_blocks_run(tmp_path) -> None:
    """The README's Python examples run as printed, with a tiny training budget and one
    scenario (the printed one trains on the whole train split)."""
    blocks = _readme_python_blocks()
    assert len(blocks) >= 2
    code = "\n".join(blocks)
    assert 'scenario="split:train", total_timesteps=50_000' in code
    code = code.replace('scenario="split:train", total_timesteps=50_000',
                        'scenario="default-v1", total_timesteps=256, n_steps=64, '
                        "batch_size=64, progress_bar=False, tensorboard=False")  # fmt: skip
    code += "\nassert ppo.act(*env.reset(seed=1)).shape == (4,)\nprint('README OK')\n"
    script = tmp_path / "readme.py"
    script.write_text(code)
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ESX:" in proc.stdout and "README OK" in proc.stdout
    assert (tmp_path / "runs").is_dir()  # the run landed where the user is
