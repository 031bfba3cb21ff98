"""The teacher's demonstrations as a `Minari <https://minari.farama.org>`_ dataset
(``reclaim imitate --dataset NAME``), Farama's format for offline RL data sets.

What is recorded. The teacher's own rollouts: the teacher acts alone (DAgger's β = 1,
imitate's iteration 0, the behaviour-cloning rollouts) on one
``gymnasium.make("reclaim/Balloon-v2", scenario=..., **env_options)`` env built with the
run's env options, one episode per seed ``config.train_seed(0, 0, j)``, ``j <
config.episodes``: the seeds of iteration 0's episodes, so episode ``j`` is the one
``reclaim imitate`` clones the teacher on (the single env and the vector env give the
same episode for a seed: tests/envs/test_vector_env.py). Each step's action is the
teacher's label (:func:`agents.learners.imitation.train.labels`) in the env's action
layout, float32, the action the env was stepped with. Per episode, as Minari stores it:
``observations`` (T + 1, D) float32, ``actions`` (T, A) float32, ``rewards``,
``terminations``, ``truncations`` (T,), and ``infos`` with ``info["vm"]`` (every per-VM
counter and gauge, (T + 1, V) int64) and ``info["host"]`` (T + 1,) of every observation,
the reset's included: the two parts of the env's info present at every observation
(``episode_summary`` is only at the last step, so it is left out; Minari needs one
layout per episode). The episode's seed is its ``seed`` (episode metadata).

The dataset's metadata holds Minari's own (``env_spec``: the env id and every keyword,
so ``dataset.recover_environment()`` rebuilds the env; ``algorithm_name``:
``"teacher:<name>"``) and, under ``"reclaim"``, the imitate config, the scenario, the
env options, the episode seeds, the git revision and the package versions
(:func:`agents.provenance.run_metadata`).

Where. Minari's convention: ``$MINARI_DATASETS_PATH/<id>/``, or
``~/.minari/datasets/<id>/`` when the variable is unset, so that
``minari.load_dataset(id)`` finds it. Minari's ``DataCollector`` wrapper needs jax
(``minari[create]``), so the episodes are collected here and written with
``minari.create_dataset_from_buffers``, Minari's route for data collected outside it,
as HDF5 (``data/main_data.hdf5`` beside ``data/metadata.json``; ``minari[hdf5]``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from agents.learners.imitation.dataset_id import check_dataset_id, import_minari
from agents.runs import ConfigError

DATA_FORMAT = "hdf5"
DATA_FILE = "main_data.hdf5"  # Minari's HDF5 storage file, in <dataset>/data/
METADATA_FILE = "metadata.json"  # Minari's metadata file, in <dataset>/data/


def dataset_path(dataset_id: str) -> Path:
    """Where Minari keeps ``dataset_id``: ``$MINARI_DATASETS_PATH/<id>`` (default
    ``~/.minari/datasets/<id>``)."""
    from minari.storage.datasets_root_dir import get_dataset_path

    return Path(get_dataset_path(dataset_id))


# ------------------------------------------------------------------ loading
def load_demonstrations(dataset_id: str) -> Any:
    """``minari.load_dataset(dataset_id)``, checked: ConfigError naming the file when the
    dataset is missing or damaged (no or unreadable ``metadata.json``; an HDF5 file that
    is missing, truncated or holds other episodes than the metadata counts)."""
    minari = import_minari()
    check_dataset_id(dataset_id)
    root = dataset_path(dataset_id)
    meta_path = root / "data" / METADATA_FILE
    if not root.exists():
        raise ConfigError(f"no Minari dataset {dataset_id} at {root}")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise ConfigError(f"damaged Minari dataset {dataset_id}: {meta_path}: {e}") from None
    data_path = root / "data" / DATA_FILE
    try:
        dataset = minari.load_dataset(dataset_id)
        episodes = list(dataset.storage.get_episode_metadata(range(dataset.total_episodes)))
        steps = sum(int(e["total_steps"]) for e in episodes)
        if steps != dataset.total_steps:
            raise ValueError(f"it holds {steps} steps, the metadata says {dataset.total_steps}")
        if meta.get("data_format") == DATA_FORMAT:  # every episode counted, none more
            with _open_h5(data_path) as f:
                if len(f.keys()) != dataset.total_episodes:
                    raise ValueError(f"it holds {len(f.keys())} episodes, the metadata "
                                     f"says {dataset.total_episodes}")  # fmt: skip
    except (OSError, ValueError, KeyError, AssertionError, TypeError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"damaged Minari dataset {dataset_id}: {data_path}: {msg}") from None
    return dataset


def _open_h5(path: Path) -> Any:
    import h5py

    return h5py.File(path, "r")


# ---------------------------------------------------------------- recording
def make_single_env(config: Any, scenario: str) -> Any:
    """``gymnasium.make`` of ``reclaim/Balloon-v2`` with the run's scenario and env options
    (and its episode length override, in ticks, as an env keyword: ``gymnasium.make``
    would take ``max_episode_steps`` for its own TimeLimit, counted in steps)."""
    import gymnasium as gym

    import envs  # noqa: F401 - registers the ids
    from envs import ENV_ID_V2

    kwargs = {**gym.spec(ENV_ID_V2).kwargs, "scenario": scenario, **config.env_options}
    if config.max_episode_steps is not None:
        kwargs["max_episode_steps"] = config.max_episode_steps
    return gym.make(dataclasses.replace(gym.spec(ENV_ID_V2), kwargs=kwargs))


def _stack_infos(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-observation ``{"vm": {...}, "host": {...}}`` → arrays with a leading time axis."""
    return {part: {k: np.stack([np.asarray(i[part][k]) for i in infos])
                   for k in infos[0][part]} for part in ("vm", "host")}  # fmt: skip


def teacher_episode(config: Any, env: Any, seed: int) -> dict[str, Any]:
    """One episode of the teacher acting alone on ``env`` (a ``gymnasium.make`` of a
    ReclaimGym env) from ``seed``: the arrays a Minari episode holds."""
    from agents.base import _batch_info, unwrap_env
    from agents.learners.imitation.networks import per_vm_to_env
    from agents.learners.imitation.train import Teacher, labels

    base = unwrap_env(env)
    teacher = Teacher(config.teacher, base)
    maxb = np.array([v.max_balloon_pages for v in base.config.params.vms], dtype=np.int64)
    obs, info = env.reset(seed=seed)
    teacher.reset(seed)
    observations, infos, actions = [obs], [info], []
    rewards, terminations, truncations = [], [], []
    done = False
    while not done:
        binfo = _batch_info(info)
        y = labels(teacher.targets(obs[None], binfo), binfo, maxb, config.action_mode)
        action = per_vm_to_env(y)[0].astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        infos.append(info)
        actions.append(action)
        rewards.append(reward)
        terminations.append(terminated)
        truncations.append(truncated)
        done = terminated or truncated
    return {
        "observations": np.stack(observations).astype(np.float32),
        "actions": np.stack(actions),
        "rewards": np.asarray(rewards, dtype=np.float64),
        "terminations": np.asarray(terminations, dtype=bool),
        "truncations": np.asarray(truncations, dtype=bool),
        "infos": _stack_infos(infos),
    }


def episode_seeds(config: Any) -> list[int]:
    """The seeds of the recorded episodes: iteration 0's (``config.train_seed(0, 0, j)``)."""
    return [config.train_seed(0, 0, j) for j in range(config.episodes)]


def check_can_write(config: Any) -> Path:
    """Before any rollout: ConfigError for an existing dataset of ``config.dataset``
    (unless ``config.overwrite``; a damaged one is named as such). Returns its path."""
    dataset_id = check_dataset_id(config.dataset)
    path = dataset_path(dataset_id)
    if path.exists() and not config.overwrite:
        load_demonstrations(dataset_id)  # a damaged one: ConfigError naming the file
        raise ConfigError(
            f"Minari dataset {dataset_id} exists at {path}: pass --overwrite to replace it "
            "or choose another name or version"
        )
    return path


def record_demonstrations(config: Any) -> Any:
    """Write the teacher's demonstrations of ``config`` (an
    :class:`~agents.learners.imitation.ImitateConfig` with ``dataset`` set) as the Minari
    dataset ``config.dataset`` (module docstring); returns the loaded dataset."""
    minari = import_minari()
    from minari.data_collector import EpisodeBuffer

    from agents.provenance import run_metadata

    path = check_can_write(config)
    (scenario,) = config.scenarios
    seeds = episode_seeds(config)
    env = make_single_env(config, scenario)
    episodes = [teacher_episode(config, env, s) for s in seeds]
    spec = env.spec
    env.close()
    buffers = [
        EpisodeBuffer(id=j, seed=s, observations=ep["observations"], actions=ep["actions"],
                      rewards=ep["rewards"], terminations=ep["terminations"],
                      truncations=ep["truncations"], infos=ep["infos"])
        for j, (s, ep) in enumerate(zip(seeds, episodes, strict=True))
    ]  # fmt: skip
    if path.exists():  # overwrite (check_can_write refused otherwise)
        shutil.rmtree(path)
    meta = run_metadata(
        teacher=config.teacher, scenario=scenario, env_options=config.env_options,
        max_episode_steps=config.max_episode_steps, episode_seeds=seeds,
        config=config.to_dict(),
    )  # fmt: skip
    try:
        with warnings.catch_warnings():
            # Minari warns for each optional field left out (author, code_permalink, ...):
            # the provenance is in the "reclaim" metadata instead.
            warnings.filterwarnings("ignore", message=r"`\w+` is set to None",
                                    category=UserWarning)  # fmt: skip
            dataset = minari.create_dataset_from_buffers(
                dataset_id=config.dataset, buffer=buffers, env=spec,
                algorithm_name=f"teacher:{config.teacher}",
                description=(
                    f"reclaim imitate: the {config.teacher} teacher acting alone on "
                    f"{spec.id} scenario {scenario}, {len(seeds)} episodes (seeds "
                    f"{seeds[0]}..{seeds[-1]}); actions are the teacher's labels"
                ),
                data_format=DATA_FORMAT, jpeg_encoding=False,
            )  # fmt: skip
            dataset.storage.update_metadata({"reclaim": json.loads(json.dumps(meta))})
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # no half-written dataset left behind
        raise
    return load_demonstrations(config.dataset)


__all__ = [
    "check_can_write",
    "check_dataset_id",
    "dataset_path",
    "episode_seeds",
    "load_demonstrations",
    "make_single_env",
    "record_demonstrations",
    "teacher_episode",
]
