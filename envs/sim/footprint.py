"""How much memory a simulator of given params will need, checked before allocating.

``estimate_bytes`` adds up the arrays the vectorized core (``core.py`` and its
``Workload``) keeps, plus the largest temporaries of one step, from the params alone; the
reference twin (Python lists, one object per page field) has its own estimate. The
constructors call ``check_footprint`` first, so a config that would need more than the
limit (default: half the machine's physical memory) fails at once with a ``ValueError``
that names the fields driving the size, instead of a ``MemoryError`` minutes later or
gigabytes allocated silently. The estimate is rough (within ~2x of the measured peak of
a construction, a reset and a few steps; see tests/envs/sim/test_footprint.py).
"""

from __future__ import annotations

import os

from envs.sim.checks import check_int
from envs.sim.params import HostParams

_GIB = 1 << 30


def _fmt(n: float) -> str:
    return f"{n / _GIB:.3g} GiB" if n >= _GIB / 10 else f"{n / (1 << 20):.3g} MiB"


def physical_memory_bytes() -> int:
    """The machine's physical memory (POSIX ``sysconf``; 16 GiB where it is unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 16 * _GIB


def default_max_bytes() -> int:
    """Half the physical memory: room for the rest of the process and the machine."""
    return physical_memory_bytes() // 2


def footprint_terms(params: HostParams, num_envs: int, reference: bool = False) -> dict[str, int]:
    """Estimated bytes per group of arrays, keyed by the fields that size the group.

    Args:
        params: the host and its VMs.
        num_envs: ``B``.
        reference: estimate the reference twin (``ReferenceBatch`` of ``B`` envs) instead
            of the vectorized core.
    """
    B, V = num_envs, params.num_vms
    P, F, C = params.max_guest_pages, params.max_footprint_pages, params.content_space
    R = max(vm.workload.max_refs_per_tick for vm in params.vms)
    ns = params.ws_sample_pages
    n_trace_refs = R * sum(1 for vm in params.vms if vm.workload.traces)
    if reference:
        # Python lists: an 8-byte pointer per entry plus an int object (~32 bytes) where
        # values are not small cached ints; plus one B=1 Workload per env.
        return {
            "guest_pages": B * V * P * (8 * 8 + 4 * 32),
            "footprint_pages": B * V * F * (6 * 8 + 32),
            "refs_per_tick": B * V * R * 60,
            "ws_sample_pages": 0,
            "content_space": B * C * 8,
        }
    cap = max(64, 4 * P)  # LRU log entries per row (core.py)
    return {
        # State (24 B per GPP) + LRU log (8 B per entry) + reset temporaries (~40 B).
        "guest_pages": B * V * (P * 64 + cap * 8),
        # State and scratch marks (12 B per page) + static layout (5 B per VM and page).
        "footprint_pages": B * V * F * 12 + V * F * 5,
        # Workload buffers and the core's reference index (17 B) + draw temporaries
        # (~30 B); trace replay adds ~48 B per reference of a trace VM.
        "refs_per_tick": B * V * R * 48 + B * n_trace_refs * 48,
        # The sample index (8 B per VM and sample) + the gauge's keys (~40 B).
        "ws_sample_pages": V * ns * 8 + B * V * ns * 40,
        "content_space": B * C * 8,
    }


def estimate_bytes(params: HostParams, num_envs: int, reference: bool = False) -> int:
    """Estimated peak bytes of a simulator of ``params`` with ``num_envs`` envs."""
    return sum(footprint_terms(params, num_envs, reference).values()) + (1 << 20)


def _driver_text(params: HostParams, num_envs: int, field: str) -> str:
    vms = params.vms
    what = {
        "guest_pages": f"guest_pages (max {params.max_guest_pages})",
        "footprint_pages": f"footprint_pages (max {params.max_footprint_pages})",
        "refs_per_tick": f"refs_per_tick (max {max(v.workload.max_refs_per_tick for v in vms)})",
        "ws_sample_pages": f"ws_sample_pages ({params.ws_sample_pages})",
        "content_space": f"kernel_pages and footprint_pages (content_space {params.content_space})",
    }[field]
    return f"{what} x num_vms ({params.num_vms}) x num_envs ({num_envs})"


def check_footprint(
    params: HostParams, num_envs: int, max_bytes: int | None = None, reference: bool = False
) -> int:
    """Return the estimate, or raise ``ValueError`` when it exceeds ``max_bytes``.

    Args:
        params, num_envs, reference: as for ``footprint_terms``.
        max_bytes: the limit; None means ``default_max_bytes()``.
    """
    limit = default_max_bytes() if max_bytes is None else max_bytes
    check_int("max_bytes", limit, 1)
    terms = footprint_terms(params, num_envs, reference)
    total = sum(terms.values()) + (1 << 20)
    if total <= limit:
        return total
    top = sorted(terms.items(), key=lambda kv: -kv[1])
    drivers = "; ".join(
        f"{_driver_text(params, num_envs, k)}: {_fmt(v)}" for k, v in top[:2] if v > limit // 10
    )
    raise ValueError(
        f"this simulator would need about {_fmt(total)}, over the limit of {_fmt(limit)} "
        f"(default: half the physical memory; set RECLAIM_MAX_SIM_BYTES or max_bytes to "
        f"change it). Mostly {drivers}. Reduce those fields or num_envs"
    )
