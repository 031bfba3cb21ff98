"""Names and layout of the per-tick counters and gauges (docs/model.md §5, SEMANTICS.md §8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Per-VM events of one tick (docs/model.md §5, plus the two major-fault sub-counts).
VM_EVENTS: tuple[str, ...] = (
    "refs",
    "guest_hits",
    "guest_minor_faults",
    "guest_major_faults",
    "guest_swapins",  # major faults served from guest swap (placed pages)
    "guest_file_reads",  # major faults served from guest disk (placed pages)
    "guest_swapouts",
    "guest_writebacks",
    "guest_drops",
    "host_minor_faults",
    "host_swapins",
    "host_swapouts",
    "silent_swap_writes",
    "double_paging",
    "false_swap_reads",
    "cow_breaks",
    "balloon_inflated",
    "balloon_deflated",
    "balloon_stalls",
    "guest_oom_kills",
    # I/O requests of the tick after readahead and clustering (SEMANTICS.md §9): exact
    # integers, in simulated pages (the cost model scales them by page_kib / 4).
    "guest_swapin_ios",  # distinct aligned clusters of guest swap slots swapped in
    "guest_file_read_ios",  # distinct aligned readahead windows of the file reads
    "guest_write_ios",  # swap-out slot clusters + writeback windows
    "host_swap_read_ios",  # host swap-ins + double paging + false swap reads (1 per page)
    "host_swap_write_ios",  # host swap-outs (1 per page)
)
# Per-VM levels at the end of the tick.
VM_GAUGES: tuple[str, ...] = (
    "balloon_pages",
    "balloon_target",
    "guest_free_pages",
    "guest_used_pages",
    "guest_cache_pages",
    "guest_committed_pages",
    "guest_swap_used",
    "host_resident_pages",
    "host_swapped_pages",
    "host_shared_pages",
    "ws_sample_touched",
)
VM_FIELDS: tuple[str, ...] = VM_EVENTS + VM_GAUGES
HOST_FIELDS: tuple[str, ...] = (
    "host_free_frames",
    "host_swap_used",
    "shared_frames",
    "sharing_saved_frames",
    "host_oom",
)
VM_INDEX = {name: i for i, name in enumerate(VM_FIELDS)}
HOST_INDEX = {name: i for i, name in enumerate(HOST_FIELDS)}


@dataclass(frozen=True)
class StepResult:
    """Counters of one tick for a batch of ``B`` envs with ``V`` VMs.

    ``vm`` is (B, V, len(VM_FIELDS)) int64, ``host`` is (B, len(HOST_FIELDS)) int64; both
    are fresh arrays owned by the caller.
    """

    vm: np.ndarray  # (B, V, NV) int64
    host: np.ndarray  # (B, NH) int64

    def vm_field(self, name: str) -> np.ndarray:
        return self.vm[..., VM_INDEX[name]]

    def host_field(self, name: str) -> np.ndarray:
        return self.host[..., HOST_INDEX[name]]
