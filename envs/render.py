"""Render modes of the Balloon envs: an ANSI table and a numpy-only memory map.

Both read only the last tick's counters (``(V, NV)`` VM counters, ``(NH,)`` host
counters), never the simulator state, so they show what the agent could see plus the
guest's own breakdown of its memory.
"""

from __future__ import annotations

import numpy as np

from envs.sim.costs import tick_costs
from envs.sim.counters import HOST_INDEX, VM_INDEX
from envs.sim.params import HostParams

# Memory-map colours (RGB).
COLOURS: dict[str, tuple[int, int, int]] = {
    "kernel": (90, 90, 90),
    "used": (66, 133, 244),
    "free": (200, 230, 201),
    "balloon": (251, 188, 5),
    "resident": (220, 220, 220),
    "host_swapped": (219, 68, 55),
    "shared": (156, 39, 176),
    "unbacked": (255, 255, 255),
    "target": (0, 0, 0),
    "background": (245, 245, 245),
}
BAR_WIDTH_PX = 400
GUEST_BAR_PX = 14
HOST_BAR_PX = 6
GAP_PX = 6
MARGIN_PX = 8


def ansi(params: HostParams, vm: np.ndarray, host: np.ndarray, elapsed: int, limit: int) -> str:
    """A per-VM table of memory (pages) and this tick's counters, then the host line."""

    def c(i: int, name: str) -> int:
        return int(vm[i, VM_INDEX[name]])

    stall_frac = tick_costs(params, vm[None]).stall_frac[0]
    cols = (
        ("vm", 3),
        ("guest", 6),
        ("kernel", 6),
        ("used", 6),
        ("free", 6),
        ("cache", 6),
        ("balloon", 7),
        ("target", 6),
        ("hswap", 6),
        ("shared", 6),
        ("majflt", 6),
        ("minflt", 6),
        ("gswout", 6),
        ("hswin", 6),
        ("dblpg", 6),
        ("stall%", 6),
    )
    lines = [f"tick {int(elapsed)}/{int(limit)}", " ".join(f"{n:>{w}}" for n, w in cols)]
    for i, v in enumerate(params.vms):
        vals = (
            i,
            v.guest_pages,
            v.kernel_reserved_pages,
            c(i, "guest_used_pages"),
            c(i, "guest_free_pages"),
            c(i, "guest_cache_pages"),
            c(i, "balloon_pages"),
            c(i, "balloon_target"),
            c(i, "host_swapped_pages"),
            c(i, "host_shared_pages"),
            c(i, "guest_major_faults"),
            c(i, "guest_minor_faults"),
            c(i, "guest_swapouts"),
            c(i, "host_swapins"),
            c(i, "double_paging"),
        )
        cells = [f"{x:>{w}}" for x, (_, w) in zip(vals, cols[:-1], strict=True)]
        cells.append(f"{100.0 * stall_frac[i]:>6.1f}")
        lines.append(" ".join(cells))

    def h(name: str) -> int:
        return int(host[HOST_INDEX[name]])

    lines.append(
        f"host: free {h('host_free_frames')}/{params.host_frames} frames, "
        f"swap {h('host_swap_used')}/{params.host_swap_pages}, "
        f"shared frames {h('shared_frames')} (saving {h('sharing_saved_frames')}), "
        f"oom {h('host_oom')}"
    )
    return "\n".join(lines) + "\n"


def _segments(row: np.ndarray, x0: int, width: int, counts: list[int], total: int, colours):
    """Fill ``row[:, x0 : x0 + width]`` with consecutive segments proportional to counts."""
    edges = np.rint(np.cumsum([0, *counts]) * width / max(1, total)).astype(int)
    edges = np.minimum(edges, width)
    for k, colour in enumerate(colours):
        row[:, x0 + edges[k] : x0 + edges[k + 1]] = colour


def rgb_array(params: HostParams, vm: np.ndarray) -> np.ndarray:
    """A (H, W, 3) uint8 memory map. Per VM (top to bottom): a guest bar of kernel / used
    / free / balloon pages with a black marker where the balloon would start at its
    target, and below it a host bar of host-swapped / shared / resident / unbacked GPPs.
    Bar lengths are proportional to guest pages (the largest VM spans the width)."""
    V = params.num_vms
    band = GUEST_BAR_PX + HOST_BAR_PX + GAP_PX
    img = np.empty((2 * MARGIN_PX + V * band - GAP_PX, 2 * MARGIN_PX + BAR_WIDTH_PX, 3), np.uint8)
    img[:] = COLOURS["background"]
    pmax = params.max_guest_pages
    for i, v in enumerate(params.vms):

        def c(name: str, i: int = i) -> int:
            return int(vm[i, VM_INDEX[name]])

        m = v.guest_pages
        width = int(round(BAR_WIDTH_PX * m / pmax))
        y = MARGIN_PX + i * band
        guest = img[y : y + GUEST_BAR_PX]
        kernel, used = v.kernel_reserved_pages, c("guest_used_pages")
        free, balloon = c("guest_free_pages"), c("balloon_pages")
        _segments(
            guest,
            MARGIN_PX,
            width,
            [kernel, used, free, balloon],
            m,
            [COLOURS[k] for k in ("kernel", "used", "free", "balloon")],
        )
        hs, sh = c("host_swapped_pages"), c("host_shared_pages")
        res = c("host_resident_pages")
        hostbar = img[y + GUEST_BAR_PX : y + GUEST_BAR_PX + HOST_BAR_PX]
        _segments(
            hostbar,
            MARGIN_PX,
            width,
            [hs, sh, res, max(0, m - hs - sh - res)],
            m,
            [COLOURS[k] for k in ("host_swapped", "shared", "resident", "unbacked")],
        )
        target = c("balloon_target")
        x = MARGIN_PX + int(round(width * (m - target) / m))
        x = min(max(x, MARGIN_PX), MARGIN_PX + width - 1)
        guest[:, max(x - 1, MARGIN_PX) : x + 1] = COLOURS["target"]
    return img
