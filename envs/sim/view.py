"""The privileged, read-only view of a simulator: what the oracle and the teacher read.
NOT DEPLOYABLE.

A real host sees neither the guests' page tables nor their future references. The
hindsight oracle (``agents.oracle``) and the teacher (``agents.teacher``) need both; they
read them through :class:`PrivilegedView` (``Simulator.privileged_view()``) and never
through the simulator's internal arrays, so what they may know is written in one place.

Every array of a view is read-only (``flags.writeable`` is False: writing raises
``ValueError``). Arrays marked *live* are views of the simulator's state and change
when it steps or resets; copy them to keep them. Taking a view, reading it and drawing
references change nothing in the simulator (the references come from a copy of its
workload).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from envs.sim.workload import Workload


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (``a`` itself stays writeable)."""
    v = a.view()
    v.flags.writeable = False
    return v


@dataclass(frozen=True)
class PrivilegedView:
    """One simulator's state and future, for hindsight policies (module docstring).

    Shapes: ``B`` envs, ``V`` VMs, ``F`` virtual pages per VM (``max_footprint_pages``).
    Page states are the codes of ``envs.sim.core`` (``UNALLOCATED, RESIDENT_V, SWAPPED,
    EVICTED``); gauges are those of ``envs.sim.counters`` after the last step or reset.
    """

    tick: np.ndarray  # (B,) int64 ticks done in each env's episode (live)
    episode_key: np.ndarray  # (B,) uint64 identity of each env's reference stream: equal
    # keys give equal streams (a reset with the same seed keeps the key)
    guest_pages: np.ndarray  # (V,) int64 M_i
    kernel_pages: np.ndarray  # (V,) int64 K_i: kernel GPPs, metadata included
    max_balloon_pages: np.ndarray  # (V,) int64
    guest_swap_pages: np.ndarray  # (V,) int64 guest swap slots
    host_frames: int  # H
    host_min_free: int  # host_min_free
    footprint_pages: int  # F
    is_file: np.ndarray  # (V, F) bool: virtual page j of VM v is file-backed
    vstate: np.ndarray  # (B, V, F) int8 guest view of each virtual page (live)
    balloon_pages: np.ndarray  # (B, V) int64 (live)
    guest_used_pages: np.ndarray  # (B, V) int64 (live)
    guest_cache_pages: np.ndarray  # (B, V) int64 resident file pages (live)
    guest_swap_used: np.ndarray  # (B, V) int64 (live)
    sharing_saved_frames: np.ndarray  # (B,) int64 frames KSM saves now (a copy)
    _workload: Workload = field(repr=False, compare=False)

    def progress(self) -> np.ndarray:
        """(B, V) int64, a copy: the batches each VM has issued in its env's episode, its
        cursor into its stream (SEMANTICS.md "Closed loop"): :meth:`future_references`
        starts there, and ``episode_references(n)[k]`` is each VM's batch ``k``. On an
        open-loop host every VM's equals ``tick``."""
        return self._workload.vm_ticks.astype(np.int64, copy=True)

    def future_references(self, ticks: int) -> np.ndarray:
        """(ticks, B, V, R) int32, read-only: the references each env's next ``ticks``
        ticks will issue (virtual pages, ``-1`` padding), from a copy of the workload
        (the stream is exogenous, docs/model.md §2: no action changes it).

        On a closed-loop host (``HostParams.closed_loop``) the stream is indexed by
        progress, not by tick: entry ``k`` is each VM's ``k``-th next batch, the batch it
        issues at its ``k``-th next advancing tick (which tick that is depends on the
        stalls to come; SEMANTICS.md "Closed loop")."""
        return _draw(copy.deepcopy(self._workload), ticks)

    def episode_references(self, ticks: int) -> np.ndarray:
        """(ticks, B, V, R) int32, read-only: the references of the first ``ticks``
        ticks of each env's current episode (past and future alike), replayed from the
        start of the episode on a rewound copy of the workload. Closed loop: by progress,
        the first ``ticks`` batches of each VM (as :meth:`future_references`)."""
        return _draw(self._workload.rewound(), ticks)


def _draw(wl: Workload, ticks: int) -> np.ndarray:
    ticks = int(ticks)
    if ticks < 0:
        raise ValueError(f"ticks must be >= 0, got {ticks}")
    out = np.empty((ticks, wl.num_envs, wl.num_vms, wl.R), dtype=np.int32)
    for t in range(ticks):
        out[t] = wl.draw().refs
    out.flags.writeable = False
    return out


__all__ = ["PrivilegedView", "read_only"]
