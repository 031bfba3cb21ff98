"""I/O requests after readahead and clustering (SEMANTICS.md §9), in both simulators."""

from __future__ import annotations

import numpy as np

from envs.sim.core import Simulator
from envs.sim.counters import VM_INDEX
from envs.sim.params import HostParams, Phase, VmParams, WorkloadParams, standard_params
from envs.sim.reference import ReferenceSimulator
from envs.sim.workload import Demand
from tests.envs.sim.differential import run_differential


def _scan_host(file_fraction: float, **host_kw) -> HostParams:
    """One VM of 512 pages scanning a 2048-page footprint, 128 pages per tick."""
    wl = WorkloadParams(
        footprint_pages=2048,
        file_fraction=file_fraction,
        write_fraction=0.0,
        shareable_fraction=0.0,
        phases=(Phase(ws_pages=2048, refs_per_tick=128),),
    )
    vm = VmParams(
        guest_pages=512, kernel_pages=16, guest_reserve_pages=0, guest_swap_pages=4096, workload=wl
    )
    return HostParams(
        vms=(vm,), host_frames=4096, host_swap_pages=0, host_min_free=0,
        ksm_pages_per_tick=0, **host_kw,
    )  # fmt: skip


def _scan(sim, ticks: int, stride: int = 128, footprint: int = 2048) -> np.ndarray:
    """Step ``sim`` (core, B = 1) with a sequential scan; returns the summed events."""
    total = None
    for t in range(ticks):
        start = (t * stride) % footprint
        refs = (start + np.arange(stride, dtype=np.int32))[None, None, :] % footprint
        demand = Demand(
            live=np.full((1, 1), footprint, np.int32),
            refs=refs,
            writes=np.zeros_like(refs, dtype=bool),
        )
        sim.workload.draw = lambda d=demand: d  # the exogenous stream, replaced
        vm = sim.step(np.zeros((1, 1), np.int64)).vm[0, 0]
        total = vm.copy() if total is None else total + vm
    return total


def _ratio(tot: np.ndarray, ios: str, pages: str) -> float:
    return tot[VM_INDEX[ios]] / tot[VM_INDEX[pages]]


def test_sequential_file_scan_reads_one_io_per_readahead_window():
    """128 KiB readahead = 32 pages per I/O: a sequential file scan costs 1/32 of its
    faults in I/Os (include/linux/pagemap.h VM_READAHEAD_PAGES)."""
    sim = Simulator(_scan_host(1.0, file_readahead_pages=32), 1)
    sim.reset([0])
    tot = _scan(sim, 64)
    assert tot[VM_INDEX["guest_file_reads"]] > 4000
    assert _ratio(tot, "guest_file_read_ios", "guest_file_reads") == 1 / 32
    # v0: one I/O per page.
    sim0 = Simulator(_scan_host(1.0), 1)
    sim0.reset([0])
    tot0 = _scan(sim0, 64)
    assert tot0[VM_INDEX["guest_file_read_ios"]] == tot0[VM_INDEX["guest_file_reads"]]


def test_sequential_anon_scan_swaps_in_whole_clusters():
    """page-cluster 3 = 8 slots per I/O: pages swapped out together come back together
    (mm/swap_state.c readahead over slots given in swap-out order)."""
    sim = Simulator(_scan_host(0.0, guest_page_cluster=3), 1)
    sim.reset([0])
    tot = _scan(sim, 64)
    assert tot[VM_INDEX["guest_swapins"]] > 4000
    assert 1 / 8 <= _ratio(tot, "guest_swapin_ios", "guest_swapins") <= 1.25 / 8
    # Writes cluster the same way: swap-outs of a tick take consecutive slots.
    assert 1 / 8 <= _ratio(tot, "guest_write_ios", "guest_swapouts") <= 1.25 / 8


def test_random_swapins_do_not_cluster_much():
    """Random (Zipf, cold) references: swap-ins hit scattered slots, so clustering helps
    little compared with the sequential scan."""
    wl = WorkloadParams(
        footprint_pages=1024,
        file_fraction=0.0,
        zipf_alpha=0.6,
        cold_fraction=0.3,
        phases=(Phase(ws_pages=1024, refs_per_tick=256),),
    )
    vm = VmParams(guest_pages=512, kernel_pages=16, guest_swap_pages=1024, workload=wl)
    prm = HostParams(vms=(vm,), host_frames=4096, ksm_pages_per_tick=0, guest_page_cluster=3)
    sim = Simulator(prm, 1)
    sim.reset([3])
    tot = sum(sim.step(np.zeros((1, 1), np.int64)).vm[0, 0] for _ in range(80))
    assert tot[VM_INDEX["guest_swapins"]] > 1000
    assert _ratio(tot, "guest_swapin_ios", "guest_swapins") > 0.5


def test_reference_counts_the_same_clusters_on_a_scan():
    """Exact equality of the scan's I/O counts between the core and the reference."""
    for frac, kw in ((1.0, {"file_readahead_pages": 32}), (0.0, {"guest_page_cluster": 3})):
        prm = _scan_host(frac, **kw)
        core = Simulator(prm, 1)
        core.reset([0])
        ref = ReferenceSimulator(prm, 0)
        for t in range(40):
            start = (t * 128) % 2048
            refs = (start + np.arange(128, dtype=np.int32))[None, None, :]
            d = Demand(np.full((1, 1), 2048, np.int32), refs, np.zeros_like(refs, dtype=bool))
            core.workload.draw = lambda d=d: d
            cv = core.step(np.zeros((1, 1), np.int64)).vm[0]
            rv, _ = ref.step([0], demand=d)
            assert np.array_equal(cv, rv), t


def test_differential_with_clustering_on():
    """The standard configuration with v1 clustering, core == reference every tick."""
    params = standard_params(
        num_vms=2, guest_pages=192, refs_per_tick=96, guest_page_cluster=3, file_readahead_pages=8
    )
    run_differential(params, [4, 5], action_seed=9, ticks=80)
