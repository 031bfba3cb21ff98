"""``reclaim imitate``: train a per-VM network by behaviour cloning, then DAgger, from a
teacher policy (ESX by default) on Balloon-v2's agent interface.

The options are the fields of :class:`agents.learners.imitation.ImitateConfig`. The run
lives in ``<runs-dir>/<name>/<seed>/`` (``config.json`` with ``"method": "imitation"``
and the env options, per-iteration checkpoints, ``student.pt``, ``result.json``);
``agents.learners.load_policy(run_dir, env)`` loads it. A bad config, a missing
teacher, or (``--resume``) a missing or corrupt checkpoint fails before any training
(``ConfigError``: exit status 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.learners.imitation import ImitateConfig


def run(config: ImitateConfig) -> int:
    from agents.learners.imitation import train
    from experiments.user_errors import check_scenarios

    check_scenarios("--scenario", config.scenarios)  # their trace data must be present
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
