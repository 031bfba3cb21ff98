"""ReclaimGym environments.

``import envs`` registers ``reclaim/Balloon-v0`` (and ``-v1``, ``-v2``: ENV_IDS) with
Gymnasium without importing Gymnasium itself, so that ``import envs.sim`` (the simulator
core, numpy only) stays free of it: if gymnasium is already imported, registration
happens now; otherwise a one-shot ``sys.meta_path`` finder registers right after
gymnasium's own module has executed, then removes itself. Registration is idempotent.
``gymnasium.make("envs:reclaim/Balloon-v0")`` (Gymnasium's ``module:id`` form) works too.

Why a hook and not an entry point: Gymnasium 0.26-0.29 loaded third-party envs from
entry points in the ``gymnasium.envs`` group (``load_plugin_envs``); Gymnasium 1.0 removed
that plugin system (Farama-Foundation/Arcade-Learning-Environment#487), and the installed
1.x has no loader, so an entry point would never run. Registering at ``import envs`` time
directly would import gymnasium into ``import envs.sim`` (the numpy-only core), which
``tests/envs/test_env.py`` forbids.

Episode length. An episode lasts its scenario's ``max_episode_steps`` (256 for
``default-v0`` / ``default-v1``, 320-1200 for others) unless the caller gives
``max_episode_steps``: ``BalloonEnv`` and ``BalloonVectorEnv`` take it as an option (so
does ``gymnasium.make_vec``, which passes it on); ``gymnasium.make`` consumes it itself and
wraps the env in a ``TimeLimit`` of N steps (the env's ``time_left_frac`` and
``episode_summary`` then keep the scenario's clock). The registered specs carry no
``max_episode_steps``, deliberately: Gymnasium 1.x ``make`` wraps every env of an id whose
spec has one in ``TimeLimit(spec.max_episode_steps)`` whatever the keyword arguments, and
``make_vec`` passes it to the vector env as ``max_episode_steps``, so a spec of 256 would
cut ``gym.make("reclaim/Balloon-v1", scenario="mixed-v1")`` (384 steps) at 256, with no
way for the env to tell a registry default from a limit the caller chose. Instead each
made env's own spec (``gymnasium.make(...).spec``) carries its limit, counted in steps:
``BalloonEnv`` fills ``max_episode_steps`` in when ``make`` assigns the spec, so tools that
read ``env.spec.max_episode_steps`` see 256 for ``default-v1`` and 384 for ``mixed-v1``.
``tests/envs/test_episode_limit.py`` checks where episodes end through each route.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from typing import Any

ENV_ID = "reclaim/Balloon-v0"
ENV_ID_V1 = "reclaim/Balloon-v1"
ENV_ID_V2 = "reclaim/Balloon-v2"
# Each env id and its default scenario. The physics is the scenario's: a -v1 scenario id
# runs the v1 physics (envs/physics.py, docs/model.md §12), a -v0 id the v0 physics.
# Balloon-v2 keeps the v1 physics (there is no default-v2 scenario): what changes is the
# agent interface (ENV_KWARGS).
ENV_IDS = {ENV_ID: "default-v0", ENV_ID_V1: "default-v1", ENV_ID_V2: "default-v1"}
# Balloon-v2's decision period and holding, the one place they are written. Chosen by
# measurement (experiments/results/interface-v2/README.md): a per-VM network trained by
# DAgger from ESX on three train scenarios, periods 1 / 5 / 15 s x no hold / a dead-band
# of 0.05 / an explicit hold flag. Every period longer than the 1 s tick cost more (ESX
# itself costs ~9 % more deciding every 5 s); at 1 s, holding cut the student's cost
# from 1.07-1.11x stock ESX to 1.00-1.05x and its balloon traffic below ESX's. The
# dead-band and the hold flag were within noise of each other; the dead-band keeps the
# Box(V) action every policy drives (a heuristic on this env pays ~4 % for it).
BALLOON_V2_DECISION_PERIOD_S = 1.0
BALLOON_V2_HOLD_DEADBAND = 0.05
# Each env id's env options beyond the scenario (BalloonEnv's keyword arguments).
ENV_KWARGS: dict[str, dict[str, Any]] = {
    ENV_ID: {},
    ENV_ID_V1: {},
    ENV_ID_V2: {"obs_version": 2, "decision_period_s": BALLOON_V2_DECISION_PERIOD_S,
                "hold_deadband": BALLOON_V2_HOLD_DEADBAND},
}


def register_envs() -> None:
    """Register the ReclaimGym ids with Gymnasium (a no-op for ids already registered)."""
    import gymnasium

    for env_id, scenario in ENV_IDS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="envs.balloon_env:BalloonEnv",
            vector_entry_point="envs.vector_env:BalloonVectorEnv",
            kwargs={"scenario": scenario, **ENV_KWARGS[env_id]},
        )


class _RegisterOnGymnasiumImport(MetaPathFinder):
    """Finds nothing itself: it lets the other finders find ``gymnasium`` and wraps that
    spec's loader so that registration runs once gymnasium's module has executed."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "gymnasium":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        _uninstall()
        exec_module = loader.exec_module

        def exec_then_register(module: Any) -> None:
            exec_module(module)
            register_envs()

        loader.exec_module = exec_then_register  # this spec's own loader instance
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterOnGymnasiumImport)]


def _install() -> None:
    if "gymnasium" in sys.modules:
        register_envs()
    elif not any(type(f).__name__ == "_RegisterOnGymnasiumImport" for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnGymnasiumImport())


_install()
