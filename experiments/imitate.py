"""``reclaim imitate``: train a per-VM network by behaviour cloning, then DAgger, from a
teacher policy (ESX by default) on Balloon-v2's agent interface.

The options are the fields of :class:`agents.learners.imitation.ImitateConfig`. The run
lives in ``<runs-dir>/<name>/<seed>/`` (``config.json`` with ``"method": "imitation"``
and the env options, per-iteration checkpoints, ``student.pt``, ``result.json``);
``agents.learners.load_policy(run_dir, env)`` loads it. A bad config, a missing
teacher, or (``--resume``) a missing or corrupt checkpoint fails before any training
(``ConfigError``: exit status 2).

``--dataset ID`` first writes the teacher's demonstrations as the Minari dataset ``ID``
(:mod:`agents.learners.imitation.demonstrations`; ``--dataset-only``: that alone). A bad
id, several scenarios, an existing dataset (without ``--overwrite``; a damaged one is
named with its file) or a missing ``minari`` fail before any rollout (exit status 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.learners.imitation import ImitateConfig


def run(config: ImitateConfig) -> int:
    from agents.learners.imitation import train
    from experiments.user_errors import check_scenarios

    check_scenarios("--scenario", config.scenarios)  # their trace data must be present
    if config.dataset is not None:
        from agents.learners.imitation.demonstrations import check_can_write, record_demonstrations
        from agents.learners.imitation.train import check_new_run

        check_can_write(config)
        if not config.dataset_only:
            check_new_run(config)  # before the dataset, not after it
        ds = record_demonstrations(config)
        print(
            f"wrote {ds.total_episodes} episodes, {ds.total_steps} steps of "
            f"{config.teacher} to Minari dataset {config.dataset} -> {ds.storage.data_path}"
        )
        if config.dataset_only:
            return 0
    result = train(config)
    print(
        f"imitated {config.teacher} for {result.iterations} DAgger iterations in "
        f"{result.wall_s:.1f} s -> {result.run_dir}"
    )
    for sid, ev in result.final_eval.items():
        line = f"{sid}: student {ev['student']['return']:.3f}"
        if "teacher" in ev:
            line += (
                f", {config.teacher} {ev['teacher']['return']:.3f} (cost ratio "
                f"{ev['cost_ratio_vs_teacher']:.3f}), {config.teacher} one tick per step "
                f"{ev['teacher_one_tick']['return']:.3f} (cost ratio "
                f"{ev['cost_ratio_vs_teacher_one_tick']:.3f})"
            )
        print(f"{line} (mean return, {config.eval_episodes} held-out seeds)")
    return 0
