"""``reclaim compare``: train on the train scenarios, evaluate on the test scenarios, rliable.

1. **Train** every algorithm of ``--algos`` on the training scenarios (one per-VM policy
   over all of them at once) with seeds ``0 .. seeds-1``: ``reclaim train`` runs in
   ``<runs-dir>/<name>-<algo>/<seed>/``, ``--jobs`` of them in parallel processes (or
   as tasks on a Ray cluster: ``--backend ray [--address ADDR]``, see docs/cluster.md).
2. **Evaluate** every trained model and every baseline on every test scenario with fresh
   seeds (``eval_seed_base + k``, disjoint from the training and in-training evaluation
   seeds), one batched native vector env per (policy, scenario): paired by seed.
3. **Report** with rliable: the normalized score ``(R − R_none) / (R_oracle − R_none)``
   per scenario and seed (0 = NoBalloonPolicy, 1 = OraclePolicy); IQM with
   stratified-bootstrap 95 % CIs; the probability of improvement over EsxPolicy;
   performance profiles; learning curves; per-scenario scores; and a per-VM memory
   timeline of one test episode (best learned policy vs EsxPolicy).

A learned policy's runs are (training seed, evaluation seed) pairs; a baseline's runs
are the evaluation seeds. A (scenario, seed) cell where the oracle gains less than
``min_gap_frac · |R_none|`` over no-balloon has *no headroom*: it is left out of the
aggregates (counted in the report), never floored, so near-zero denominators cannot
blow scores up. The aggregates treat every cell with headroom as a task (the bootstrap
resamples cells and runs). Beside the scores: every policy's stall relative to
no-balloon, and per scenario the bracket ``[oracle, bound]`` (``agents.bound``) with
the share of it that the oracle and the best baseline close.

Everything is written to ``experiments/results/<name>/`` atomically, and each finished
part as soon as it finishes (``runs/.../result.json``, ``episodes/<policy>__<scenario>.csv``):
rerunning the same command skips finished parts and resumes killed trainings from their
last checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.provenance import REPO_ROOT, run_metadata
from envs.files import write_json_atomic, write_text_atomic
from experiments.user_errors import UserError, check_int, check_scenarios, split_list

NONE, ORACLE, ESX = "no-balloon", "oracle", "esx"


@dataclass(frozen=True)
class CompareConfig:
    """The headline experiment (``reclaim compare --help`` shows each field)."""

    name: str = "headline"
    """experiment name: results in <results-dir>/<name>/, runs in <runs-dir>/<name>-<algo>/"""
    algos: tuple[str, ...] = ("ppo",)
    """algorithms to train, comma- or space-separated (ppo, a2c, sac, td3, recurrent-ppo)"""
    train_scenarios: str = "split:train"
    """training scenarios: comma-separated ids or split:train (the v1 ones; split:train@v0)"""
    test_scenarios: str = "split:test"
    """test scenarios: comma-separated ids or split:test (the v1 ones; split:test@v0)"""
    seeds: int = 5
    """training seeds per algorithm (0 .. seeds-1)"""
    total_timesteps: int = 1_000_000
    """training budget per run in env steps (host ticks summed over hosts)"""
    n_envs: int | None = None
    """hosts stepped together per training run (default: the algorithm's)"""
    eval_seeds: int = 10
    """test episodes per (policy, scenario)"""
    eval_seed_base: int = 2_000_000
    """first test seed (training uses seeds < 1e6 + ..., in-training evaluation 1e6 + k)"""
    baselines: tuple[str, ...] = ("no-balloon", "static", "esx", "mom", "selfballoon",
                                  "hyperv", "mrc", "oracle")  # fmt: skip
    """baseline policies to evaluate, comma- or space-separated (no-balloon, oracle and esx
    are always included)"""
    action_mode: str = "absolute"
    """action mode of the trained agents"""
    layout: str = "per-vm"
    """observation layout of the trained agents (per-vm runs on any VM count)"""
    normalize_reward: bool = True
    """scale the training rewards by VecNormalize (reclaim ablate: raw rewards did better)"""
    residual: str | None = None
    """train residual agents: corrections of this heuristic's balloon actions (absolute
    mode; see reclaim train --residual)"""
    max_episode_steps: int | None = None
    """episode length override for training and evaluation (default: each scenario's)"""
    eval_freq: int = 50_000
    """env steps between in-training evaluations (the learning curves)"""
    eval_episodes: int = 4
    """episodes per training scenario in each in-training evaluation"""
    checkpoint_freq: int = 50_000
    """env steps between checkpoints"""
    jobs: int = 0
    """parallel processes (training runs, evaluations); 0 = all CPU cores (backend ray:
    the CPUs of the local Ray; ignored with --address)"""
    backend: str = "process"
    """where the jobs run: process (local processes) or ray (one Ray task per training run
    and per (policy, scenario) evaluation; needs the cluster extra)"""
    address: str | None = None
    """backend ray: the cluster to join (HOST:PORT of its head, ray://HOST:PORT or auto);
    none = start a local Ray with --jobs CPUs"""
    min_gap_frac: float = 0.05
    """headroom threshold: a (scenario, seed) cell whose oracle − no-balloon is under this
    fraction of |R_none| has no headroom and is left out of the aggregates"""
    bootstrap_reps: int = 2000
    """stratified bootstrap resamples for the CIs"""
    runs_dir: str = "runs"
    """where the training runs live"""
    results_dir: str = "experiments/results"
    """where the report is written"""
    progress_bar: bool = True
    """progress bars (only when jobs = 1)"""

    def __post_init__(self) -> None:
        from agents.training import ALGOS

        object.__setattr__(self, "algos", split_list(self.algos))
        object.__setattr__(self, "baselines", split_list(self.baselines))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise ValueError(f"name must be a plain directory name, got {self.name!r}")
        bad = [a for a in self.algos if a not in ALGOS]
        if bad or not self.algos:
            raise ValueError(f"unknown algorithm(s) {bad}; choose from {list(ALGOS)}")
        for field in ("seeds", "total_timesteps", "eval_seeds", "bootstrap_reps"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        from agents.algos import RESIDUAL_SCALE
        from agents.policies import check_policy_name, check_residual

        for p in self.baselines:
            check_policy_name(p)
        try:
            check_residual(self.residual, RESIDUAL_SCALE, self.action_mode)
        except ValueError as e:
            raise UserError(str(e)) from None
        check_int("jobs", self.jobs, 0)
        check_int("eval_seed_base", self.eval_seed_base, 0)
        if not (math.isfinite(self.min_gap_frac) and self.min_gap_frac >= 0):
            raise UserError(f"min_gap_frac must be a number >= 0, got {self.min_gap_frac!r}")
        for field in ("train_scenarios", "test_scenarios"):
            try:
                ids = _resolve(getattr(self, field))
            except ValueError as e:
                raise UserError(f"{field}: {e}") from None
            check_scenarios(field, ids)
        from experiments.backends import BACKENDS

        if self.backend not in BACKENDS:
            raise UserError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if self.address is not None and self.backend != "ray":
            raise UserError("address needs backend ray (--backend ray)")

    @property
    def train_ids(self) -> tuple[str, ...]:
        return _resolve(self.train_scenarios)

    @property
    def test_ids(self) -> tuple[str, ...]:
        return _resolve(self.test_scenarios)

    @property
    def all_baselines(self) -> tuple[str, ...]:
        extra = [p for p in (NONE, ESX, ORACLE) if p not in self.baselines]
        return tuple(self.baselines) + tuple(extra)

    @property
    def n_jobs(self) -> int:
        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)

    @property
    def out_dir(self) -> Path:
        return _abs(self.results_dir) / self.name

    def train_config(self, algo: str, seed: int, resume: bool, overwrite: bool):
        from agents.training import TrainConfig

        return TrainConfig(
            algo=algo, scenario=",".join(self.train_ids), seed=seed,
            total_timesteps=self.total_timesteps, name=f"{self.name}-{algo}",
            runs_dir=str(_abs(self.runs_dir)), layout=self.layout, action_mode=self.action_mode,
            normalize_reward=self.normalize_reward, residual=self.residual,
            max_episode_steps=self.max_episode_steps, n_envs=self.n_envs,
            eval_freq=self.eval_freq, eval_episodes=self.eval_episodes,
            checkpoint_freq=self.checkpoint_freq, resume=resume, overwrite=overwrite,
            progress_bar=self.progress_bar and self.n_jobs == 1 and self.backend == "process",
            torch_threads=1,
        )  # fmt: skip


def _abs(p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() else REPO_ROOT / path


def _resolve(spec: str) -> tuple[str, ...]:
    from envs.scenarios import get_scenario, split_ids

    if spec.startswith("split:"):
        ids = tuple(split_ids(spec))
        if not ids:
            raise ValueError(f"no scenarios in {spec!r}")
        return ids
    ids = tuple(s.strip() for s in spec.split(",") if s.strip())
    if not ids:
        raise ValueError("need at least one scenario")
    for s in ids:
        get_scenario(s)
    return ids


# ------------------------------------------------------------------ stage 1: train
def _train_job(cfg_dict: dict[str, Any]) -> str:
    from agents.training import TrainConfig, train

    cfg_dict = dict(cfg_dict)
    cfg_dict["net_arch"] = tuple(cfg_dict["net_arch"]) if cfg_dict.get("net_arch") else None
    return str(train(TrainConfig(**cfg_dict)).run_dir)


def _train_plan(config: CompareConfig) -> list[Any]:
    """The training configs still to run (finished runs are skipped, killed ones resume)."""
    todo = []
    for algo in config.algos:
        for seed in range(config.seeds):
            tc = config.train_config(algo, seed, False, False)
            run = tc.run
            if run.is_finished(config.total_timesteps):
                from agents.training import ConfigError, _check_same_config

                try:  # a finished run of another config must not be taken for this one
                    _check_same_config(tc, run)
                except ConfigError as e:
                    raise UserError(
                        f"{e}: a finished run of another config; pass another --name or "
                        f"delete {run.path}"
                    ) from None
                continue
            has_ckpt = run.has_checkpoint()
            todo.append(config.train_config(algo, seed, resume=has_ckpt, overwrite=not has_ckpt))
    return todo


def _run_jobs(fn, args: list[Any], backend, label: str) -> list[Any]:
    """``fn`` on each of ``args`` on ``backend`` (an ``experiments.backends`` backend)."""
    if not args:
        return []
    t0 = time.time()
    n = backend.parallelism(len(args))
    print(f"[compare] {label}: {len(args)} job(s), {n} in parallel", flush=True)
    out = backend.map(fn, args)
    print(f"[compare] {label}: done in {time.time() - t0:.0f} s", flush=True)
    return out


# --------------------------------------------------------------- stage 2: evaluate
def _policy_key(policy: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", policy)


def _eval_job(job: tuple[str, str, str, list[int], str, int | None, str]) -> str:
    policy, label, scenario, seeds, action_mode, steps, path = job
    from experiments.evaluate import run_policy

    rows = run_policy(policy, scenario, seeds, max_episode_steps=steps, action_mode=action_mode)
    for r in rows:
        r["policy"] = label
    write_text_atomic(path, _to_csv(rows))
    return path


def _to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))  # every row's keys, in order
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = int(v)
            except ValueError:
                try:
                    r[k] = float(v)
                except ValueError:
                    pass
    return rows


def learned_policies(config: CompareConfig) -> dict[str, tuple[str, int, Path]]:
    """label -> (algo, training seed, model zip) of every finished training run."""
    out = {}
    for algo in config.algos:
        for seed in range(config.seeds):
            run = config.train_config(algo, seed, False, False).run
            if run.is_finished(config.total_timesteps):
                out[f"{algo}/seed{seed}"] = (algo, seed, run.model_zip)
    return out


def _eval_plan(config: CompareConfig, scenarios: tuple[str, ...], seeds: list[int],
               tag: str, policies: dict[str, tuple[str, str]]) -> list[tuple]:  # fmt: skip
    """(policy, label, scenario, seeds, mode, steps, csv path) jobs not yet done."""
    jobs = []
    for label, (policy, mode) in policies.items():
        for sc in scenarios:
            path = config.out_dir / "episodes" / tag / f"{_policy_key(label)}__{sc}.csv"
            if not path.exists():
                jobs.append((policy, label, sc, seeds, mode, config.max_episode_steps, str(path)))
    return jobs


def _load_episodes(config: CompareConfig, tag: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for p in sorted((config.out_dir / "episodes" / tag).glob("*.csv")):
        rows.extend(_read_csv(p))
    return rows


# ----------------------------------------------------------------- stage 3: report
def normalized_scores(
    episodes: list[dict[str, Any]], min_gap_frac: float
) -> tuple[list[dict[str, Any]], int]:
    """One row per episode with ``score`` (0 = no-balloon, 1 = oracle, same scenario and
    seed) and ``stall_ratio`` (its stall over no-balloon's); returns the rows and how
    many (scenario, seed) cells have no headroom.

    A cell whose headroom ``R_oracle − R_none`` is under ``min_gap_frac · |R_none|`` has
    *no headroom*: its rows get ``headroom = False`` and a NaN score, and the aggregates
    leave them out (no floor: a near-zero denominator would make scores explode)."""
    ref: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for e in episodes:
        if e["policy"] in (NONE, ORACLE):
            ref.setdefault((e["scenario"], int(e["seed"])), {})[e["policy"]] = e
    none_cells = set()
    out = []
    for e in episodes:
        key = (e["scenario"], int(e["seed"]))
        r = ref.get(key, {})
        if NONE not in r or ORACLE not in r:
            raise ValueError(f"missing no-balloon/oracle reference for {key}")
        r_none, r_oracle = float(r[NONE]["return"]), float(r[ORACLE]["return"])
        gap = r_oracle - r_none
        ok = gap >= min_gap_frac * abs(r_none) and gap > 0
        if not ok:
            none_cells.add(key)
        stall_none = float(r[NONE].get("stall_us", math.nan))
        stall = float(e.get("stall_us", math.nan))
        ratio = stall / stall_none if stall_none > 0 else math.nan
        score = (float(e["return"]) - r_none) / gap if ok else math.nan
        out.append({**e, "score": score, "headroom": ok, "stall_ratio": ratio})
    return out, len(none_cells)


def cell_matrices(scored: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """policy (algo for learned runs) -> (runs, cells) scores over the (scenario, seed)
    cells with headroom, for rliable (runs: training seeds of a learned policy, one for
    a baseline); and the cells, in column order."""
    cells = sorted({(e["scenario"], int(e["seed"])) for e in scored if e["headroom"]})
    col = {c: j for j, c in enumerate(cells)}
    by: dict[str, dict[int, np.ndarray]] = {}
    for e in scored:
        if not e["headroom"]:
            continue
        pol = str(e["policy"])
        group, run = (
            (pol.split("/seed")[0], int(pol.split("/seed")[1])) if "/seed" in pol else (pol, -1)
        )
        row = by.setdefault(group, {}).setdefault(run, np.full(len(cells), np.nan))
        row[col[(e["scenario"], int(e["seed"]))]] = e["score"]
    out = {}
    for group, runs in by.items():
        mat = np.stack([runs[k] for k in sorted(runs)])
        out[group] = mat[~np.isnan(mat).any(axis=1)]
    return out, cells


def score_matrices(scored: list[dict[str, Any]], tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    """policy (algo for learned runs) -> (runs, tasks) scores for rliable."""
    cells: dict[str, dict[tuple[Any, int], dict[str, float]]] = {}
    for e in scored:
        pol = str(e["policy"])
        group, run = (
            (pol.split("/seed")[0], int(pol.split("/seed")[1])) if "/seed" in pol else (pol, -1)
        )
        cells.setdefault(group, {}).setdefault((run, int(e["seed"])), {})[e["scenario"]] = e[
            "score"
        ]
    out = {}
    for group, runs in cells.items():
        keys = sorted(runs)
        mat = np.array([[runs[k].get(t, np.nan) for t in tasks] for k in keys], dtype=np.float64)
        out[group] = mat[~np.isnan(mat).any(axis=1)]
    return out


def _iqm(x: np.ndarray) -> float:
    from scipy.stats import trim_mean

    return float(trim_mean(x.reshape(-1), 0.25))


AGGREGATES = ("IQM", "Mean", "Median", "OptimalityGap")


def _aggregates(mats: dict[str, np.ndarray], order: list[str], reps: int,
                rs: np.random.RandomState) -> tuple[list[dict[str, Any]], dict, dict]:  # fmt: skip
    """IQM, mean, median and optimality gap per policy with stratified-bootstrap CIs:
    the summary rows, and rliable's point estimates and intervals (for the plots)."""
    from rliable import library as rly
    from rliable import metrics

    fns = (metrics.aggregate_iqm, metrics.aggregate_mean, metrics.aggregate_median,
           metrics.aggregate_optimality_gap)  # fmt: skip
    point, ci = rly.get_interval_estimates(
        {k: mats[k] for k in order},
        lambda x: np.array([f(x) for f in fns]),
        reps=reps,
        random_state=rs,
        task_bootstrap=True,  # cells are (scenario, seed): resample them too
    )
    summary = []
    for k in order:
        row = {"policy": k, "runs": mats[k].shape[0], "tasks": mats[k].shape[1]}
        for j, name in enumerate(AGGREGATES):
            row[name] = float(point[k][j])
            row[f"{name}_lo"], row[f"{name}_hi"] = float(ci[k][0, j]), float(ci[k][1, j])
        summary.append(row)
    return summary, point, ci


def _improvement_over_esx(mats: dict[str, np.ndarray], order: list[str], reps: int,
                          rs: np.random.RandomState) -> list[dict[str, Any]]:  # fmt: skip
    """Probability of improvement of every other policy over esx, with its CI."""
    return improvements(mats, [k for k in order if k != ESX], [ESX], reps, rs)


def improvements(mats: dict[str, np.ndarray], learned: list[str], refs: list[str], reps: int,
                 rs: np.random.RandomState) -> list[dict[str, Any]]:  # fmt: skip
    """P(learned > X) with its stratified-bootstrap CI for every learned group and every
    reference X (each heuristic and the oracle)."""
    from rliable import library as rly
    from rliable import metrics

    pairs = {f"{k},{x}": (mats[k], mats[x]) for k in learned for x in refs
             if k in mats and x in mats}  # fmt: skip
    if not pairs:
        return []
    p_pt, p_ci = rly.get_interval_estimates(
        pairs, metrics.probability_of_improvement, reps=reps, random_state=rs,
        task_bootstrap=True,
    )
    rows = []
    for k in pairs:
        lo, hi = np.ravel(p_ci[k])[:2]
        a, b = k.split(",")
        rows.append({"policy": a, "vs": b, "P_improve": float(np.ravel(p_pt[k])[0]),
                     "lo": float(lo), "hi": float(hi)})  # fmt: skip
    return rows


def headline(config: CompareConfig, summary: list[dict[str, Any]], poi: list[dict[str, Any]],
             per_sc: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """The machine-readable result (``headline.json``): the best learned algorithm and the
    strongest heuristic in aggregate (IQM; no-balloon and the oracle are references, not
    heuristics), P(best learned > best heuristic) with its CI, P against each heuristic
    and the oracle, and the share of the [no-balloon, oracle] gap closed (the IQM of the
    normalized score)."""
    iqm = {r["policy"]: r for r in summary}
    learned = [a for a in config.algos if a in iqm]
    heur = [r["policy"] for r in summary if r["policy"] not in (*config.algos, NONE, ORACLE)]
    out: dict[str, Any] = {
        "name": config.name, "test_scenarios": list(config.test_ids),
        "train_scenarios": list(config.train_ids), "algos": list(config.algos),
        "seeds": config.seeds, "total_timesteps": config.total_timesteps,
        "eval_seeds": config.eval_seeds,
        "iqm": {k: {"IQM": r["IQM"], "ci": [r["IQM_lo"], r["IQM_hi"]]} for k, r in iqm.items()},
    }  # fmt: skip
    if not learned or not heur:
        return out
    best_l = max(learned, key=lambda k: iqm[k]["IQM"])
    best_h = max(heur, key=lambda k: iqm[k]["IQM"])
    by = {(r["policy"], r["vs"]): r for r in poi}
    p = by.get((best_l, best_h))
    out.update({
        "best_learned": best_l, "best_heuristic": best_h,
        "poi_vs_best_heuristic": None if p is None else p["P_improve"],
        "poi_ci": None if p is None else [p["lo"], p["hi"]],
        "goal": "P(best learned > best heuristic) > 0.75 with CI low > 0.5",
        "goal_met": bool(p is not None and p["P_improve"] > 0.75 and p["lo"] > 0.5),
        "gap_closed": {k: iqm[k]["IQM"] for k in learned},
        "poi": {f"{a}>{b}": {"P": r["P_improve"], "ci": [r["lo"], r["hi"]]}
                for (a, b), r in by.items()},
        "per_scenario_score": {f"{r['policy']}@{r['scenario']}": r["mean_score"]
                               for r in per_sc if r["policy"] in (best_l, best_h)},
    })  # fmt: skip
    return out


def _per_scenario(scored: list[dict[str, Any]], order: list[str], tasks: tuple[str, ...],
                  reps: int, rs: np.random.RandomState) -> list[dict[str, Any]]:  # fmt: skip
    """Per (policy, scenario): the mean score over its cells with headroom (NaN when
    none has), the geometric-mean stall ratio to no-balloon, both with percentile-
    bootstrap CIs over the episodes, and how many cells had no headroom."""

    def group(p: str) -> str:
        return p.split("/seed")[0]

    per_sc = []
    for k in order:
        for t in tasks:
            eps = [e for e in scored if group(str(e["policy"])) == k and e["scenario"] == t]
            x = np.array([e["score"] for e in eps if e["headroom"]], dtype=np.float64)
            lr = np.log([e["stall_ratio"] for e in eps
                         if np.isfinite(e["stall_ratio"]) and e["stall_ratio"] > 0])  # fmt: skip
            row: dict[str, Any] = {"policy": k, "scenario": t}
            for name, v, f in (("score", x, lambda m: m), ("stall_ratio", lr, np.exp)):
                if v.size:
                    boots = rs.choice(v, size=(reps, v.size), replace=True).mean(axis=1)
                    row[f"mean_{name}"] = float(f(v.mean()))
                    row[f"{name}_lo"] = float(f(np.percentile(boots, 2.5)))
                    row[f"{name}_hi"] = float(f(np.percentile(boots, 97.5)))
                else:
                    row[f"mean_{name}"] = row[f"{name}_lo"] = row[f"{name}_hi"] = math.nan
            row["no_headroom_cells"] = len({e["seed"] for e in eps if not e["headroom"]})
            per_sc.append(row)
    return per_sc


def bracket(episodes: list[dict[str, Any]], tasks: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per scenario (means over seeds): no-balloon, the best other baseline, the oracle
    and the bound's returns, and the share of the bracket ``[R_none, R_bound]`` that the
    oracle and the best baseline close."""
    rows = []
    for t in tasks:
        eps = [e for e in episodes if e["scenario"] == t]

        def mean(p: str, key: str = "return", eps=eps) -> float:
            v = [float(e[key]) for e in eps if e["policy"] == p]
            return float(np.mean(v)) if v else math.nan

        pols = sorted({str(e["policy"]) for e in eps} - {NONE, ORACLE})
        base = [p for p in pols if "/seed" not in p]
        best = max(base, key=lambda p: mean(p)) if base else None
        r_none, r_or = mean(NONE), mean(ORACLE)
        r_best = mean(best) if best else math.nan
        r_bound = mean(NONE, "bound_return") if all("bound_return" in e for e in eps) else math.nan
        span = r_bound - r_none
        rows.append({
            "scenario": t, "no_balloon": r_none, "best_baseline": best,
            "best_baseline_return": r_best, "oracle": r_or, "bound": r_bound,
            "oracle_share": (r_or - r_none) / span if span > 0 else math.nan,
            "best_baseline_share": (r_best - r_none) / span if span > 0 else math.nan,
        })  # fmt: skip
    return rows


def _markdown(config: CompareConfig, summary: list[dict[str, Any]],
              poi_rows: list[dict[str, Any]], n_cells: int, clamped: int,
              wall_s: float, brackets: list[dict[str, Any]] | None = None,
              per_sc: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """The report's table and its caption."""
    tasks = config.test_ids
    lines = [
        f"# {config.name}: normalized score on {len(tasks)} test scenario(s)",
        "",
        f"Score per scenario and seed: 0 = {NONE}, 1 = {ORACLE}, on the {n_cells - clamped} "
        f"of {n_cells} (scenario, seed) cells with headroom (R_oracle − R_none ≥ "
        f"{config.min_gap_frac:g}·|R_none|; the other {clamped} are left out, not floored). "
        f"IQM / mean with stratified bootstrap 95 % CIs over runs and cells "
        f"({config.bootstrap_reps} resamples). P(> esx): probability of improvement over "
        "EsxPolicy. Learned runs: training seeds; baselines: one run.",
        "",
        "| policy | runs | IQM [95 % CI] | mean [95 % CI] | optimality gap | P(> esx) [95 % CI] |",
        "|---|---|---|---|---|---|",
    ]
    poi = {r["policy"]: r for r in poi_rows}
    for r in summary:
        p = poi.get(r["policy"])
        pstr = "–" if p is None else f"{p['P_improve']:.2f} [{p['lo']:.2f}, {p['hi']:.2f}]"
        lines.append(
            f"| {r['policy']} | {r['runs']} | {r['IQM']:.3f} [{r['IQM_lo']:.3f}, {r['IQM_hi']:.3f}]"
            f" | {r['Mean']:.3f} [{r['Mean_lo']:.3f}, {r['Mean_hi']:.3f}] "
            f"| {r['OptimalityGap']:.3f} | {pstr} |"
        )
    lines += [
        "",
        f"Train: {', '.join(config.train_ids)}. Test: {', '.join(tasks)} "
        f"({config.eval_seeds} seeds from {config.eval_seed_base}). Budget "
        f"{config.total_timesteps} env steps per run, {config.seeds} seed(s). "
        f"No headroom on {clamped} of {n_cells} (scenario, seed) cells. "
        f"Wall time {wall_s:.0f} s.",
        "",
    ]
    if brackets:
        lines += [
            "## Bracket per scenario: [oracle, bound]",
            "",
            "Mean returns over the test seeds. bound: the hindsight bound (agents.bound), "
            "no policy returns more. share: the part of [no-balloon, bound] closed.",
            "",
            "| scenario | no-balloon | best baseline | oracle | bound | oracle share "
            "| best baseline share |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in brackets:
            lines.append(
                f"| {b['scenario']} | {b['no_balloon']:.4f} | {b['best_baseline']} "
                f"{b['best_baseline_return']:.4f} | {b['oracle']:.4f} | {b['bound']:.4f} "
                f"| {b['oracle_share']:.3f} | {b['best_baseline_share']:.3f} |"
            )
        lines.append("")
    if per_sc:
        pols = list(dict.fromkeys(r["policy"] for r in per_sc))
        lines += [
            "## Stall relative to no-balloon (geometric mean over seeds)",
            "",
            "| scenario | " + " | ".join(pols) + " |",
            "|---|" + "---|" * len(pols),
        ]
        for t in tasks:
            cells = {r["policy"]: r["mean_stall_ratio"] for r in per_sc if r["scenario"] == t}
            lines.append(f"| {t} | " + " | ".join(f"{cells[p]:.3f}" for p in pols) + " |")
        lines.append("")
    return "\n".join(lines)


def best_run_timelines(config: CompareConfig, mats: dict[str, np.ndarray], order: list[str],
                       scenario: str | None = None,
                       versus: str = ESX) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """Per-VM gauges of the first test episode (on ``scenario``, default the first test
    scenario) of the best learned run and of ``versus`` (``{}`` when no run finished).
    Best: the algorithm with the best IQM, its run with the best mean score."""
    from experiments.timeline import episode_timeline

    learned = learned_policies(config)
    if not learned:
        return {}
    algo = next((k for k in order if k in config.algos), config.algos[0])
    runs = [lab for lab in learned if lab.startswith(f"{algo}/")]
    scores = mats.get(algo)
    if scores is None or scores.shape[0] != len(runs) or scores.size == 0:
        best = runs[0]
    else:
        best = runs[int(np.argmax(scores.mean(axis=1)))]
    scenario = scenario or config.test_ids[0]
    seed, steps = config.eval_seed_base, config.max_episode_steps
    return {
        best: episode_timeline(str(learned[best][2]), scenario, seed, config.action_mode, steps),
        versus: episode_timeline(versus, scenario, seed, "absolute", steps),
    }


def report(config: CompareConfig, test_eps: list[dict[str, Any]], curves: list[dict[str, Any]],
           curve_refs: list[dict[str, Any]], wall_s: float) -> str:  # fmt: skip
    """Write the CSVs, the markdown table and the plots; returns the markdown."""
    import warnings

    from experiments import compare_plots

    # rliable passes arch a RandomState, which arch deprecates (harmless here).
    warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    out, tasks, reps = config.out_dir, config.test_ids, config.bootstrap_reps
    scored, clamped = normalized_scores(test_eps, config.min_gap_frac)
    write_text_atomic(out / "scores.csv", _to_csv(scored))
    mats, _cells = cell_matrices(scored)
    mats = {k: m for k, m in mats.items() if m.size}
    groups = list(dict.fromkeys(str(e["policy"]).split("/seed")[0] for e in scored))
    order = sorted(mats, key=lambda k: -_iqm(mats[k])) + [g for g in groups if g not in mats]
    rs = np.random.RandomState(0)  # one stream, drawn in this order: reproducible CIs
    ranked = [k for k in order if k in mats]
    summary, point, ci = _aggregates(mats, ranked, reps, rs) if ranked else ([], {}, {})
    poi_rows = _improvement_over_esx(mats, ranked, reps, rs) if ranked else []
    learned = [a for a in config.algos if a in mats]
    refs = [k for k in ranked if k not in config.algos and k != NONE]
    poi_learned = improvements(mats, learned, refs, reps, rs)
    per_sc = _per_scenario(scored, order, tasks, reps, rs)
    brackets = bracket(test_eps, tasks)
    head = headline(config, summary, poi_learned, per_sc)
    write_json_atomic(out / "headline.json", head)
    for name, rows in (("summary", summary), ("poi", poi_rows), ("per_scenario", per_sc),
                       ("poi_learned", poi_learned),
                       ("learning_curves", curves), ("episodes", test_eps),
                       ("bracket", brackets)):  # fmt: skip
        write_text_atomic(out / f"{name}.csv", _to_csv(rows))
    n_cells = len({(e["scenario"], e["seed"]) for e in test_eps})
    md = _markdown(config, summary, poi_rows, n_cells, clamped, wall_s, brackets, per_sc)
    md += _headline_markdown(head, poi_learned, per_sc)
    if "best_learned" in head:
        diag = diagnosis(test_eps, [head["best_learned"], head["best_heuristic"], NONE], tasks)
        write_text_atomic(out / "diagnosis.csv", _to_csv(diag))
        md += _diagnosis_markdown(diag)
    write_text_atomic(out / "table.md", md)
    compare_plots.plot_all(out, mats, ranked, point, ci, per_sc, curves, curve_refs,
                           reps=min(reps, 1000))  # fmt: skip
    versus = head.get("best_heuristic", ESX)
    scenario = worst_scenario(per_sc, head.get("best_learned"), versus) or tasks[0]
    timelines = best_run_timelines(config, mats, order, scenario, versus)
    if timelines:
        compare_plots.plot_timeline(out, timelines, scenario, config.eval_seed_base)
    return md


def worst_scenario(per_sc: list[dict[str, Any]], learned: str | None, versus: str) -> str | None:
    """The test scenario where ``learned`` trails ``versus`` most in mean score."""
    if learned is None:
        return None
    a = {r["scenario"]: r["mean_score"] for r in per_sc if r["policy"] == learned}
    b = {r["scenario"]: r["mean_score"] for r in per_sc if r["policy"] == versus}
    diffs = {t: a[t] - b[t] for t in a if t in b and np.isfinite(a[t] - b[t])}
    return min(diffs, key=lambda t: diffs[t]) if diffs else None


# The per-episode totals that say what a policy does with the balloon and what it costs:
# how much it moves (SEMANTICS.md §2), what the guests pay for it (their major faults
# and OOM kills), what the host pays (its swap-ins, double paging), and the episode's
# share of vCPU time lost to paging.
DIAGNOSIS_FIELDS = ("return", "stall_frac", "balloon_inflated", "balloon_deflated",
                    "guest_major_faults", "guest_oom_kills", "host_swapins", "double_paging",
                    "host_oom")  # fmt: skip


def diagnosis(episodes: list[dict[str, Any]], policies: list[str],
              tasks: tuple[str, ...]) -> list[dict[str, Any]]:  # fmt: skip
    """Per (scenario, policy group): the mean over its test episodes of each of
    ``DIAGNOSIS_FIELDS`` (a learned group pools its training seeds), and the episodes
    counted. Groups absent from a scenario are skipped; a field an episode lacks is NaN."""
    rows = []
    for t in tasks:
        for p in policies:
            eps = [e for e in episodes if e["scenario"] == t
                   and str(e["policy"]).split("/seed")[0] == p]  # fmt: skip
            if not eps:
                continue
            row: dict[str, Any] = {"scenario": t, "policy": p, "episodes": len(eps)}
            for f in DIAGNOSIS_FIELDS:
                v = [float(e[f]) for e in eps if f in e and e[f] != ""]
                row[f] = float(np.mean(v)) if v else math.nan
            rows.append(row)
    return rows


def _diagnosis_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = ["", "## What the policies do (means per test episode)", "",
             "moved: balloon pages inflated + deflated; major: guest major faults; OOM: "
             "guest OOM kills; swap-ins and double paging: the host's; stall: the share of "
             "vCPU time lost to paging.", "",
             "| scenario | policy | return | stall | moved | major | OOM | host swap-ins "
             "| double paging |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        moved = r["balloon_inflated"] + r["balloon_deflated"]
        lines.append(
            f"| {r['scenario']} | {r['policy']} | {r['return']:.3f} | {r['stall_frac']:.4f} "
            f"| {moved:.0f} | {r['guest_major_faults']:.0f} | {r['guest_oom_kills']:.1f} "
            f"| {r['host_swapins']:.0f} | {r['double_paging']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _headline_markdown(head: dict[str, Any], poi: list[dict[str, Any]],
                       per_sc: list[dict[str, Any]]) -> str:  # fmt: skip
    if "best_learned" not in head:
        return ""
    bl, bh = head["best_learned"], head["best_heuristic"]
    lines = ["## Headline", "",
             f"Best learned: **{bl}** (gap closed, IQM: {head['gap_closed'][bl]:.3f}). "
             f"Strongest heuristic in aggregate: **{bh}**. "
             f"P({bl} > {bh}) = {head['poi_vs_best_heuristic']:.3f} "
             f"[{head['poi_ci'][0]:.3f}, {head['poi_ci'][1]:.3f}]; goal "
             f"({head['goal']}): {'met' if head['goal_met'] else 'not met'}.", "",
             "| learned | vs | P(learned > vs) [95 % CI] |", "|---|---|---|"]  # fmt: skip
    for r in poi:
        lines.append(f"| {r['policy']} | {r['vs']} | {r['P_improve']:.3f} "
                     f"[{r['lo']:.3f}, {r['hi']:.3f}] |")  # fmt: skip
    tasks = list(dict.fromkeys(r["scenario"] for r in per_sc))
    score = {(r["policy"], r["scenario"]): r["mean_score"] for r in per_sc}
    lines += ["", f"Mean score per test scenario ({bl} vs {bh}):", "",
              f"| scenario | {bl} | {bh} |", "|---|---:|---:|"]  # fmt: skip
    for t in tasks:
        lines.append(f"| {t} | {score.get((bl, t), math.nan):.3f} "
                     f"| {score.get((bh, t), math.nan):.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def learning_curves(config: CompareConfig) -> list[dict[str, Any]]:
    """Mean in-training evaluation return per (algo, seed, env steps), averaged over the
    training scenarios."""
    rows = []
    for algo in config.algos:
        for seed in range(config.seeds):
            run = config.train_config(algo, seed, False, False).run
            by: dict[int, list[float]] = {}
            for r in run.read_evaluations():
                by.setdefault(int(r["env_steps"]), []).append(float(r["return"]))
            for steps, v in sorted(by.items()):
                rows.append({"algo": algo, "seed": seed, "env_steps": steps,
                             "mean_return": float(np.mean(v))})  # fmt: skip
    return rows


# ------------------------------------------------------------------------ driver
def compare(config: CompareConfig) -> str:
    """Run (or finish) the whole experiment; returns the markdown table."""
    from experiments.backends import open_backend

    # Opened (and, for Ray, checked: reachable, runs/results directories shared) before
    # any job starts.
    dirs = (_abs(config.runs_dir), config.out_dir)
    with open_backend(config.backend, config.n_jobs, config.address, dirs) as backend:
        return _compare(config, backend)


def _compare(config: CompareConfig, backend) -> str:
    """``compare`` with its jobs on ``backend`` (``experiments.backends``)."""
    t0 = time.time()
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        out / "config.json",
        run_metadata(command="compare", config=dataclasses.asdict(config),
                     train_scenarios=list(config.train_ids), test_scenarios=list(config.test_ids)),
    )  # fmt: skip
    # 1. train
    todo = _train_plan(config)
    _run_jobs(_train_job, [c.to_dict() for c in todo], backend, "training")
    learned = learned_policies(config)
    # 2. evaluate on the test scenarios, and the references of the learning curves
    test_seeds = [config.eval_seed_base + k for k in range(config.eval_seeds)]
    pols = {b: (b, "absolute") for b in config.all_baselines}
    pols.update({lab: (str(p), config.action_mode) for lab, (_, _, p) in learned.items()})
    ref_seeds = [1_000_000 + k for k in range(config.eval_episodes)]
    ref_pols = {b: (b, "absolute") for b in (NONE, ESX)}
    plan = _eval_plan(config, config.test_ids, test_seeds, "test", pols)
    plan += _eval_plan(config, config.train_ids, ref_seeds, "train-ref", ref_pols)
    # Longest first (the oracle), so parallel workers finish together.
    plan.sort(key=lambda j: (j[0] != ORACLE, j[1]))
    _run_jobs(_eval_job, plan, backend, "evaluation")
    test_eps = _load_episodes(config, "test")
    from experiments.evaluate import add_bounds

    for sc in config.test_ids:  # the hindsight bound of every test (scenario, seed)
        add_bounds([e for e in test_eps if e["scenario"] == sc], sc, test_seeds,
                   max_episode_steps=config.max_episode_steps)  # fmt: skip
    curve_refs = _load_episodes(config, "train-ref")
    # 3. report
    md = report(config, test_eps, learning_curves(config), curve_refs, time.time() - t0)
    return md


def run(config: CompareConfig) -> int:
    md = compare(config)
    print(md)
    print(f"results: {config.out_dir}")
    return 0
