"""The run directory of ``reclaim train``: its files, and reading / writing them.

One run = one algorithm, one set of training scenarios, one seed, in
``<runs_dir>/<name>/<seed>/``:

- ``config.json``: the config as given, the resolved hyperparameters, seed, versions,
  git revision, machine (written before training starts);
- ``checkpoints/``: one checkpoint per tag ``<env steps, 12 digits>``: the model
  ``model_<tag>.zip``, the VecNormalize statistics ``vecnormalize_<tag>.pkl``, for
  SAC/TD3 the replay buffer ``replay_buffer_<tag>.pkl``, and its index
  ``checkpoint_<tag>.json`` (written after the files); ``checkpoint.json`` is a copy of
  the newest index. An index records the sha256 of every file and of its own content.
  The last two checkpoints are kept, so a damaged newest one falls back to the one
  before (see :meth:`RunDir.latest_checkpoint`);
- ``evaluations.csv``: the held-out evaluations during training (long format: one row
  per env steps, scenario and seed; columns :data:`EVAL_FIELDS`);
- ``logs/``: TensorBoard event files and SB3's ``progress.csv`` (per resumed segment);
- ``model.zip``, ``vecnormalize.pkl``: the final model and its normalization statistics
  (``best_model.zip`` / ``best_vecnormalize.pkl``: the best evaluation);
- ``result.json``: written last; its presence (with the run's ``total_timesteps``)
  marks a finished run.

This module owns that format: :mod:`agents.learners.sb3.train` writes it,
:mod:`agents.learners.sb3.policy` and ``experiments.compare`` read it, all through
:class:`RunDir`. ``config.json`` also records the run's learning ``"method"``
(:mod:`agents.learners`; none in runs written before it: SB3), which every learning
method writes, so that one loader registry loads any run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.files import csv_text, read_csv, write_json_atomic, write_text_atomic

log = logging.getLogger("reclaim.train")

EVAL_FIELDS = ("env_steps", "wall_s", "scenario", "seed", "return", "length")
CKPT_DIR = "checkpoints"
CKPT_INDEX = "checkpoint.json"
CKPT_KEYS = ("model", "vecnormalize", "replay_buffer", "train_state")  # a checkpoint's files
_TAG = re.compile(r"^checkpoint_(\d{12})\.json$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


class ConfigError(ValueError):
    """A config, run directory or checkpoint that cannot be trained (raised before any
    training time is spent)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def index_digest(body: dict[str, Any]) -> str:
    """sha256 of an index's content (every key but its own ``sha256``), canonical JSON."""
    content = {k: v for k, v in body.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def checkpoint_tag(env_steps: int) -> str:
    return f"{env_steps:012d}"


@dataclass(frozen=True)
class Checkpoint:
    """One verified checkpoint: its env steps and the paths of its files."""

    env_steps: int
    sb3_timesteps: int
    eval_rows: int
    files: dict[str, Path]
    index: Path


@dataclass(frozen=True)
class RunDir:
    """The files of one run directory (see the module docstring)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # ------------------------------------------------------------------ paths
    @property
    def config_json(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / CKPT_DIR

    @property
    def checkpoint_index(self) -> Path:
        return self.checkpoints / CKPT_INDEX

    @property
    def evaluations_csv(self) -> Path:
        return self.path / "evaluations.csv"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def segment_logs(self, start_env_steps: int) -> Path:
        return self.logs / f"segment-{start_env_steps:012d}"

    @property
    def model_zip(self) -> Path:
        return self.path / "model.zip"

    @property
    def vecnormalize_pkl(self) -> Path:
        return self.path / "vecnormalize.pkl"

    @property
    def best_model_zip(self) -> Path:
        return self.path / "best_model.zip"

    @property
    def best_vecnormalize_pkl(self) -> Path:
        return self.path / "best_vecnormalize.pkl"

    @property
    def result_json(self) -> Path:
        return self.path / "result.json"

    # --------------------------------------------------------- model lookup
    @classmethod
    def of_model(cls, path: str | Path) -> tuple[RunDir, Path]:
        """(run directory, model zip) for a run directory or a model zip inside one
        (``model.zip``, ``best_model.zip`` or a checkpoint's ``model_<tag>.zip``)."""
        path = Path(path)
        if path.is_dir():
            run = cls(path)
            if not run.model_zip.exists():
                raise FileNotFoundError(
                    f"{path} has no model.zip (unfinished run? pass a checkpoint zip instead)"
                )
            return run, run.model_zip
        if not path.exists():
            raise FileNotFoundError(f"no model at {path}")
        parent = path.parent.parent if path.parent.name == CKPT_DIR else path.parent
        return cls(parent), path

    def vecnormalize_for(self, model_zip: Path) -> Path | None:
        """The VecNormalize statistics saved with ``model_zip`` (None when absent)."""
        stem = model_zip.stem
        if stem == "model":
            cand = self.vecnormalize_pkl
        elif stem == "best_model":
            cand = self.best_vecnormalize_pkl
        else:  # checkpoints/model_<tag>.zip
            cand = model_zip.with_name(stem.replace("model_", "vecnormalize_", 1) + ".pkl")
        return cand if cand.exists() else None

    # ------------------------------------------------------- config, result
    def read_config(self) -> dict[str, Any]:
        """config.json (the whole record); ConfigError when missing or corrupt."""
        if not self.config_json.exists():
            raise ConfigError(f"{self.config_json} does not exist")
        try:
            meta = json.loads(self.config_json.read_text())
            if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
                raise ValueError("no 'config' object")
        except ValueError as e:
            raise ConfigError(f"corrupt {self.config_json}: {e}") from None
        return meta

    def write_config(self, meta: dict[str, Any]) -> None:
        write_json_atomic(self.config_json, meta)

    def read_result(self) -> dict[str, Any] | None:
        """result.json, or None when the run has not finished (or it is unreadable)."""
        try:
            res = json.loads(self.result_json.read_text())
        except (OSError, ValueError):
            return None
        return res if isinstance(res, dict) else None

    def write_result(self, result: dict[str, Any]) -> None:
        write_json_atomic(self.result_json, result)

    def is_finished(self, total_timesteps: int | None = None) -> bool:
        """True when result.json is there (and, given ``total_timesteps``, is the result
        of that budget: a run extended to a larger budget is unfinished)."""
        res = self.read_result()
        if res is None:
            return False
        if total_timesteps is None:
            return True
        if "total_timesteps" in res:
            return res["total_timesteps"] == total_timesteps
        steps = res.get("env_steps")  # older results have no total_timesteps
        return isinstance(steps, int) and steps >= total_timesteps

    # ---------------------------------------------------------- evaluations
    def read_evaluations(self) -> list[dict[str, Any]]:
        """The rows of evaluations.csv (``env_steps`` int, ``return`` float); [] if none."""
        if not self.evaluations_csv.exists():
            return []
        rows: list[dict[str, Any]] = list(read_csv(self.evaluations_csv))
        for r in rows:
            r["env_steps"], r["return"] = int(r["env_steps"]), float(r["return"])
        return rows

    def write_evaluations(self, rows: list[dict[str, Any]]) -> None:
        # CRLF line ends: the csv module's default, which every evaluations.csv has had.
        text = csv_text(rows, EVAL_FIELDS).replace("\n", "\r\n")
        write_text_atomic(self.evaluations_csv, text)

    # ---------------------------------------------------------- checkpoints
    def checkpoint_file(self, key: str, env_steps: int) -> Path:
        """Where file ``key`` (of :data:`CKPT_KEYS`) of the checkpoint at ``env_steps`` goes."""
        ext = "zip" if key == "model" else "pkl"
        return self.checkpoints / f"{key}_{checkpoint_tag(env_steps)}.{ext}"

    def has_checkpoint(self) -> bool:
        return self.checkpoint_index.exists() or any(self._tagged_indexes())

    def _tagged_indexes(self) -> list[Path]:
        """The per-checkpoint indexes, newest first."""
        if not self.checkpoints.is_dir():
            return []
        found = [p for p in self.checkpoints.iterdir() if _TAG.match(p.name)]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def write_checkpoint_index(self, env_steps: int, sb3_timesteps: int, eval_rows: int,
                               files: dict[str, Path]) -> None:  # fmt: skip
        """Record a checkpoint whose ``files`` are written: their sha256, then the index
        (its own tagged copy first, then ``checkpoint.json``, each atomically)."""
        body: dict[str, Any] = {
            "env_steps": int(env_steps),
            "sb3_timesteps": int(sb3_timesteps),
            "eval_rows": int(eval_rows),
            "files": {k: {"name": p.name, "sha256": sha256_file(p)} for k, p in files.items()},
        }
        body["sha256"] = index_digest(body)
        write_json_atomic(self.checkpoints / f"checkpoint_{checkpoint_tag(env_steps)}.json", body)
        write_json_atomic(self.checkpoint_index, body)

    def prune_checkpoints(self, keep: int = 2) -> None:
        """Delete all but the newest ``keep`` checkpoints (every file of a tag)."""
        tags = sorted({_TAG.match(p.name).group(1) for p in self._tagged_indexes()})
        for old in tags[:-keep]:
            for p in self.checkpoints.glob(f"*_{old}.*"):
                p.unlink(missing_ok=True)

    def read_checkpoint_index(self, index: Path) -> Checkpoint:
        """One checkpoint, verified (index checksum, every file's sha256, the model zip);
        ConfigError saying what is wrong otherwise."""
        try:
            body = json.loads(index.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"corrupt checkpoint index {index}: {e}") from None
        try:
            if not isinstance(body, dict) or "sha256" not in body:
                raise ValueError("it has no checksum (not written by this version?)")
            if body["sha256"] != index_digest(body):
                raise ValueError("its checksum does not match its content")
            ints = [body[k] for k in ("env_steps", "sb3_timesteps", "eval_rows")]
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in ints):
                raise ValueError(f"env_steps / sb3_timesteps / eval_rows must be ints >= 0: {ints}")
            entries = body["files"]
            if not isinstance(entries, dict) or "model" not in entries:
                raise ValueError("'files' must map file keys to entries and name a model")
            files: dict[str, Path] = {}
            for key, ent in entries.items():
                name, sha = ent["name"], ent["sha256"]
                ok = isinstance(name, str) and "/" not in name and not name.startswith(".")
                ok = ok and key in CKPT_KEYS and isinstance(sha, str) and bool(_SHA.match(sha))
                if not ok:
                    raise ValueError(f"bad file entry {key!r}: {ent!r}")
                files[key] = self.checkpoints / name
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"corrupt checkpoint index {index}: {e}") from None
        for key, path in files.items():
            if not path.exists():
                raise ConfigError(f"checkpoint file {path} ({key}) is missing")
            if sha256_file(path) != entries[key]["sha256"]:
                raise ConfigError(f"checkpoint file {path} ({key}) is corrupt (sha256 mismatch)")
        _check_zip(files["model"])
        return Checkpoint(body["env_steps"], body["sb3_timesteps"], body["eval_rows"], files, index)

    def latest_checkpoint(self) -> Checkpoint:
        """The newest intact checkpoint. A damaged newer one is skipped with a warning
        (logger ``reclaim.train``); ConfigError when none is intact."""
        if not self.has_checkpoint():
            raise ConfigError(
                f"cannot resume: no checkpoint in {self.path} (missing {self.checkpoint_index})"
            )
        # Newest first; checkpoint.json (a copy of the newest index) last, as a fallback.
        candidates = [*self._tagged_indexes(), self.checkpoint_index]
        problems: list[str] = []
        for index in candidates:
            if not index.exists():
                continue
            try:
                ck = self.read_checkpoint_index(index)
            except ConfigError as e:
                problems.append(str(e))
                continue
            if problems:
                log.warning(
                    "resuming %s from the checkpoint at %d env steps (%s), skipping: %s",
                    self.path, ck.env_steps, index.name, "; ".join(problems),
                )  # fmt: skip
            return ck
        raise ConfigError(
            f"cannot resume: no intact checkpoint in {self.checkpoints}: " + "; ".join(problems)
        )


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            if bad is not None:
                raise ConfigError(f"checkpoint file {path} is corrupt (bad member {bad})")
            if "data" not in z.namelist():
                raise ConfigError(f"checkpoint file {path} is not an SB3 model (no 'data')")
    except (zipfile.BadZipFile, OSError) as e:
        raise ConfigError(f"checkpoint file {path} is missing or corrupt: {e}") from None


def check_same_config(
    run: RunDir,
    new: dict[str, Any],
    resumable: Collection[str],
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """ConfigError unless ``run``'s config.json holds ``new`` (a config's ``to_dict()``),
    up to the keys in ``resumable`` (those a resumed run may change). A key of
    ``defaults`` missing from either side reads as its default there (a field added
    later, left out of configs that do not use it)."""
    try:
        old = run.read_config()["config"]
    except ConfigError as e:
        raise ConfigError(f"cannot resume: {e}") from None
    defaults = defaults or {}
    keys = list(new) + [k for k in defaults if k not in new]
    was = {k: old.get(k, defaults.get(k)) for k in keys}
    now = {k: new.get(k, defaults.get(k)) for k in keys}
    diff = sorted(k for k in keys if k not in resumable and was[k] != now[k])
    if diff:
        raise ConfigError(
            f"cannot resume {run.path}: config differs in {diff} "
            f"(was {[was[k] for k in diff]}, now {[now[k] for k in diff]})"
        )
