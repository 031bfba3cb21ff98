"""Hand-built scenarios for the reference simulator, with known answers (SEMANTICS.md).

Every step runs ``check_invariants`` on the snapshot it produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from envs.sim.counters import HOST_INDEX, VM_INDEX
from envs.sim.hashing import derive_seeds, page_key_int, walk_params, ws_sample_index
from envs.sim.invariants import check_invariants
from envs.sim.params import HostParams, Phase, VmParams, WorkloadParams
from envs.sim.reference import (
    BALLOON,
    EVICTED,
    FREE,
    HOST_SWAPPED,
    KERNEL,
    RESIDENT,
    SHARED,
    SWAPPED,
    UNALLOCATED,
    UNBACKED,
    USED,
    ReferenceBatch,
    ReferenceSimulator,
)
from envs.sim.workload import page_layout

# --------------------------------------------------------------------------- helpers


@dataclass
class FakeDemand:
    live: np.ndarray  # (1, V) int32
    refs: np.ndarray  # (1, V, R) int32, -1 padded
    writes: np.ndarray  # (1, V, R) bool


def w(page: int) -> tuple[int, bool]:
    """A write reference."""
    return (page, True)


def make_demand(params: HostParams, refs: list[list], live: list[int] | None = None) -> FakeDemand:
    V = params.num_vms
    R = max([1] + [len(r) for r in refs])
    ref_arr = np.full((1, V, R), -1, np.int32)
    wr_arr = np.zeros((1, V, R), bool)
    for v, rs in enumerate(refs):
        for j, r in enumerate(rs):
            page, is_write = r if isinstance(r, tuple) else (r, False)
            ref_arr[0, v, j] = page
            wr_arr[0, v, j] = is_write
    if live is None:
        live = [vm.workload.footprint_pages for vm in params.vms]
    return FakeDemand(np.array([live], np.int32), ref_arr, wr_arr)


class Tick:
    """The counters of one tick, by name."""

    def __init__(self, vm: np.ndarray, host: np.ndarray):
        self.vm_arr, self.host_arr = vm, host

    def vm(self, name: str, v: int = 0) -> int:
        return int(self.vm_arr[v, VM_INDEX[name]])

    def host(self, name: str) -> int:
        return int(self.host_arr[HOST_INDEX[name]])


def step(sim: ReferenceSimulator, refs: list[list], targets=None, live=None) -> Tick:
    if targets is None:
        targets = [0] * sim.params.num_vms
    vm, host = sim.step(targets, make_demand(sim.params, refs, live))
    check_invariants(sim.params, sim.snapshot(), vm, host)
    return Tick(vm, host)


def vmp(
    guest: int = 8,
    kernel: int = 2,
    swap: int = 64,
    footprint: int = 32,
    file: float = 0.0,
    share: float = 0.0,
    image: int = 0,
    reserve: int = 0,
) -> VmParams:
    wl = WorkloadParams(
        footprint_pages=footprint,
        file_fraction=file,
        shareable_fraction=share,
        phases=(Phase(ws_pages=footprint, refs_per_tick=8),),
    )
    return VmParams(
        guest_pages=guest,
        kernel_pages=kernel,
        guest_reserve_pages=reserve,
        guest_swap_pages=swap,
        kernel_image=image,
        workload=wl,
    )


def hostp(*vms: VmParams, **kw) -> HostParams:
    base: dict = dict(
        host_frames=64,
        host_swap_pages=64,
        host_min_free=0,
        ksm_pages_per_tick=0,
        balloon_rate_pages=1024,
        ws_sample_pages=8,
    )
    base.update(kw)
    return HostParams(vms=tuple(vms), **base)


def assert_layout(vm: VmParams, file: bool, share: bool) -> None:
    """The scenarios rely on an all-anon / all-file / all-shareable layout."""
    is_file, is_shareable = page_layout(vm.workload)
    assert np.all(np.asarray(is_file) == file)
    assert np.all(np.asarray(is_shareable) == share)


IO = ("guest_swapouts", "guest_writebacks", "guest_drops", "double_paging")


# --------------------------------------------------------------------------- reset


def test_reset_state_and_padding():
    params = hostp(vmp(guest=8, kernel=2, footprint=16), vmp(guest=6, kernel=1, footprint=10))
    sim = ReferenceSimulator(params, seed=1)
    s = sim.snapshot()
    assert s["gstate"].shape == (2, 8) and s["vstate"].shape == (2, 16)
    assert s["gstate"][0].tolist() == [KERNEL] * 2 + [FREE] * 6
    assert s["gstate"][1].tolist() == [KERNEL] + [FREE] * 5 + [-1, -1]
    assert s["hstate"][1].tolist() == [RESIDENT] + [UNBACKED] * 7
    assert s["gcontent"][0, :2].tolist() == [
        params.kernel_content(0, 0),
        params.kernel_content(0, 1),
    ]
    assert s["gchanged"][1].tolist() == [True] * 6 + [False] * 2
    assert s["glast"].tolist() == [[-1] * 8] * 2  # masked: no USED GPP
    assert s["gfree_since"][1].tolist() == [-1] + [0] * 5 + [-1, -1]
    assert np.all(s["vstate"] == UNALLOCATED) and np.all(s["vgpp"] == -1)
    assert int(s["tick"]) == 0 and int(s["ksm_cursor"]) == 0
    assert s["n_shared"].shape == (params.content_space,) and not s["n_shared"].any()
    assert int(sim.free_frames()) == 64 - 3


def test_snapshot_is_fresh_and_seeds_are_derived():
    params = hostp(vmp())
    sim = ReferenceSimulator(params, seed=7)
    assert sim.host_seed == derive_seeds(7)[1]
    s = sim.snapshot()
    s["gstate"][:] = 99
    assert sim.snapshot()["gstate"][0, 0] == KERNEL


# --------------------------------------------------------------------------- balloon


def test_inflate_into_free_pages_causes_no_guest_io():
    params = hostp(vmp())
    assert_layout(params.vms[0], file=False, share=False)
    sim = ReferenceSimulator(params, seed=0)
    t = step(sim, [[0, 1, 2]])
    assert t.vm("guest_minor_faults") == 3 and t.vm("host_minor_faults") == 3
    assert t.vm("refs") == 3 and t.vm("guest_hits") == 0
    t = step(sim, [[]], targets=[2])
    assert all(t.vm(k) == 0 for k in IO)
    assert t.vm("balloon_inflated") == 2 and t.vm("balloon_pages") == 2
    assert t.vm("balloon_target") == 2 and t.vm("balloon_stalls") == 0
    s = sim.snapshot()
    assert s["gstate"][0].tolist() == [KERNEL] * 2 + [USED] * 3 + [BALLOON] * 2 + [FREE]


def test_balloon_target_is_clipped_and_rate_limited():
    params = hostp(vmp(guest=16, kernel=2, reserve=3), balloon_rate_pages=4)
    sim = ReferenceSimulator(params, seed=0)
    t = step(sim, [[]], targets=[1000])
    assert t.vm("balloon_target") == 16 - 2 - 3
    assert t.vm("balloon_inflated") == 4 and t.vm("balloon_pages") == 4
    t = step(sim, [[]], targets=[1000])
    t = step(sim, [[]], targets=[1000])
    assert t.vm("balloon_inflated") == 3 and t.vm("balloon_pages") == 11
    t = step(sim, [[]], targets=[-5])
    assert t.vm("balloon_target") == 0 and t.vm("balloon_deflated") == 4
    s = sim.snapshot()
    # The lowest-index balloon GPPs come back, FREE and UNBACKED since this tick.
    assert s["gstate"][0, 2:6].tolist() == [FREE] * 4
    assert s["gfree_since"][0, 2:6].tolist() == [4] * 4
    assert s["gstate"][0, 6:13].tolist() == [BALLOON] * 7
    # A page landing on a deflated GPP costs a host minor fault (zero frame).
    t = step(sim, [[0]], targets=[7])
    assert t.vm("host_minor_faults") == 1 and int(sim.snapshot()["vgpp"][0, 0]) == 2


def test_inflate_past_free_evicts_in_lru_order():
    anon, files = vmp(guest=8, kernel=2), vmp(guest=8, kernel=2, file=1.0)
    params = hostp(anon, files)
    assert_layout(anon, file=False, share=False)
    assert_layout(files, file=True, share=False)
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0, 1, 2], [w(0), 1, w(2)]])  # GPPs 2, 3, 4 (glast 1)
    step(sim, [[3, 4, 5], [3, w(4), 5]])  # GPPs 5, 6, 7 (glast 2)
    step(sim, [[1], [1]])  # GPP 3 (glast 3)
    t = step(sim, [[], []], targets=[3, 4])
    s = sim.snapshot()
    # (glast, gpp) order: GPP 2 (1), GPP 4 (1), GPP 5 (2), GPP 6 (2), GPP 7 (2), GPP 3 (3).
    assert t.vm("guest_swapouts", 0) == 3 and t.vm("guest_writebacks", 0) == 0
    assert np.flatnonzero(s["gstate"][0] == BALLOON).tolist() == [2, 4, 5]
    assert [int(x) for x in s["vstate"][0, :6]] == [SWAPPED, 1, SWAPPED, SWAPPED, 1, 1]
    assert int(s["guest_swap_used"][0]) == 3
    # File VM: u0 dirty -> writeback, u2 dirty -> writeback, u3 clean -> drop, u4 dirty.
    assert t.vm("guest_writebacks", 1) == 3 and t.vm("guest_drops", 1) == 1
    assert t.vm("guest_swapouts", 1) == 0
    assert np.flatnonzero(s["gstate"][1] == BALLOON).tolist() == [2, 4, 5, 6]
    assert [int(x) for x in s["vstate"][1, :6]] == [EVICTED, 1, EVICTED, EVICTED, EVICTED, 1]
    assert not s["vdirty"][1, [0, 2, 3, 4]].any()
    assert t.vm("balloon_inflated", 0) == 3 and t.vm("balloon_inflated", 1) == 4
    # Written-back pages keep their content; re-reading one is a major file read.
    assert int(s["vcontent"][1, 0]) == -1
    t = step(sim, [[0], [0]], targets=[3, 4])
    assert t.vm("guest_major_faults", 0) == 1 and t.vm("guest_swapins", 0) == 1
    assert t.vm("guest_major_faults", 1) == 1 and t.vm("guest_file_reads", 1) == 1
    s = sim.snapshot()
    assert bool(s["vdirty"][0, 0]) and not bool(s["vdirty"][1, 0])  # anon from swap: dirty
    assert int(s["vcontent"][1, 0]) == -1 and int(s["gcontent"][1, s["vgpp"][1, 0]]) == -1


def test_inflate_out_of_puff_counts_stalls():
    params = hostp(vmp(swap=0))
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0, 1, 2, 3]])  # GPPs 2..5 used, 6 and 7 free
    t = step(sim, [[]], targets=[4])
    assert t.vm("balloon_inflated") == 2 and t.vm("balloon_stalls") == 2
    assert all(t.vm(k) == 0 for k in IO)


# --------------------------------------------------------------------------- host paging


def test_double_paging_and_host_swapin():
    params = hostp(vmp(), host_frames=8, host_min_free=1, host_policy="lru")
    sim = ReferenceSimulator(params, seed=0)
    t = step(sim, [[0, 1, 2, 3, 4, 5]])  # every GPP used, free frames 0, none eligible
    assert t.vm("host_swapouts") == 0 and t.host("host_free_frames") == 0
    assert t.host("host_oom") == 0
    t = step(sim, [[1, 2, 3, 4, 5]])  # GPP 2 untouched -> host swapped
    assert t.vm("host_swapouts") == 1 and t.vm("silent_swap_writes") == 0
    assert sim.snapshot()["hstate"][0, 2] == HOST_SWAPPED
    t = step(sim, [[6]])  # the guest evicts page 0 from host-swapped GPP 2
    assert t.vm("guest_swapouts") == 1 and t.vm("double_paging") == 1
    assert t.vm("host_swapins") == 0 and t.vm("guest_minor_faults") == 1
    assert t.vm("host_minor_faults") == 0 and t.vm("false_swap_reads") == 0
    s = sim.snapshot()
    assert int(s["vgpp"][0, 6]) == 2 and s["hstate"][0, 2] == RESIDENT
    # Reclaim again: GPP 3 (page 1) is the untouched one with the lowest (hlast, i).
    assert t.vm("host_swapouts") == 1 and s["hstate"][0, 3] == HOST_SWAPPED
    t = step(sim, [[1, 6]])
    assert t.vm("host_swapins") == 1 and t.vm("guest_hits") == 2
    assert t.host("host_swap_used") == 1  # page 1's slot freed, one new swap-out


@pytest.mark.parametrize("preventer", [False, True])
def test_false_swap_read(preventer):
    params = hostp(
        vmp(), host_frames=5, host_min_free=2, host_policy="lru", false_read_preventer=preventer
    )
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0, 1]], live=[32])  # GPPs 2, 3
    t = step(sim, [[0]], live=[1])  # page 1 freed; its FREE GPP 3 is host swapped
    assert t.vm("host_swapouts") == 1 and t.vm("silent_swap_writes") == 1
    s = sim.snapshot()
    assert s["gstate"][0, 3] == FREE and s["hstate"][0, 3] == HOST_SWAPPED
    assert int(s["gfree_since"][0, 3]) == 2 and s["vstate"][0, 1] == UNALLOCATED
    t = step(sim, [[1]], live=[32])  # page 1 faults onto the first free GPP, 3
    assert int(sim.snapshot()["vgpp"][0, 1]) == 3
    assert t.vm("guest_minor_faults") == 1
    if preventer:
        assert t.vm("false_swap_reads") == 0 and t.vm("host_minor_faults") == 1
    else:
        assert t.vm("false_swap_reads") == 1 and t.vm("host_minor_faults") == 0


def _reclaim_scenario(policy: str, seed: int = 5, **kw) -> tuple[ReferenceSimulator, Tick]:
    params = hostp(vmp(guest=10), host_frames=9, host_min_free=4, host_policy=policy, **kw)
    sim = ReferenceSimulator(params, seed=seed)
    step(sim, [[0, 1, 2]])  # GPPs 2, 3, 4 (hlast 1)
    step(sim, [[0]])  # GPP 2 hlast 2
    return sim, step(sim, [[3, 4]])  # GPPs 5, 6; free frames 2, deficit 2


def test_host_reclaim_lru():
    sim, t = _reclaim_scenario("lru")
    assert t.vm("host_swapouts") == 2 and t.host("host_free_frames") == 4
    assert np.flatnonzero(sim.snapshot()["hstate"][0] == HOST_SWAPPED).tolist() == [3, 4]


def test_host_reclaim_random_unaccessed():
    seed = 5
    sim, t = _reclaim_scenario("random-unaccessed", seed=seed)
    host_seed = derive_seeds(seed)[1]
    eligible = [2, 3, 4]  # RESIDENT and not touched in tick 3 (P = 10, VM 0)
    a, stride = walk_params(host_seed, 3, 10)  # V * P = 10 positions
    walk = [(a + j * stride) % 10 for j in range(10)]
    want = [i for i in walk if i in eligible][:2]
    assert t.vm("host_swapouts") == 2
    assert np.flatnonzero(sim.snapshot()["hstate"][0] == HOST_SWAPPED).tolist() == sorted(want)


def test_host_reclaim_random_is_blind_to_touches():
    """ "random" walks over every host-resident GPP: kernel pages and pages touched this tick
    are eligible (ESX), and a swapped kernel page is swapped back in on the next tick."""
    for seed in range(50):
        host_seed = derive_seeds(seed)[1]
        a, stride = walk_params(host_seed, 3, 10)
        resident = [0, 1, 2, 3, 4, 5, 6]  # kernel 0, 1; pages in 2..4; placed in tick 3: 5, 6
        want = [i for i in [(a + j * stride) % 10 for j in range(10)] if i in resident][:2]
        if set(want) & {0, 1} and set(want) & {5, 6}:
            break
    else:
        raise AssertionError("no seed swaps both a kernel page and a page touched this tick")
    sim, t = _reclaim_scenario("random", seed=seed)
    assert t.vm("host_swapouts") == 2
    assert np.flatnonzero(sim.snapshot()["hstate"][0] == HOST_SWAPPED).tolist() == sorted(want)
    # Next tick: the kernel page is referenced (every tick), the touched page is hit again.
    t = step(sim, [[0, 1, 2, 3, 4]])
    assert t.vm("host_swapins") == 2 and t.vm("double_paging") == 0


def test_host_reclaim_limited_by_host_swap():
    sim, t = _reclaim_scenario("lru", host_swap_pages=1)
    assert t.vm("host_swapouts") == 1 and t.host("host_swap_used") == 1
    assert t.host("host_free_frames") == 3 and t.host("host_oom") == 0


def test_host_oom():
    params = hostp(vmp(), host_frames=4, host_swap_pages=0, host_min_free=1)
    sim = ReferenceSimulator(params, seed=0)
    t = step(sim, [[0, 1, 2]])
    assert t.host("host_oom") == 1 and t.host("host_free_frames") == -1


# --------------------------------------------------------------------------- dedup


def test_ksm_merges_kernel_pages_of_two_vms():
    params = hostp(vmp(), vmp(), host_frames=20, ksm_pages_per_tick=100)
    sim = ReferenceSimulator(params, seed=0)
    t = step(sim, [[], []])  # first visit clears gchanged
    assert t.host("shared_frames") == 0 and t.host("host_free_frames") == 16
    assert int(sim.snapshot()["ksm_cursor"]) == 10  # one past VM 1's GPP 1 (i = 9)
    assert not sim.snapshot()["gchanged"][:, :2].any()
    t = step(sim, [[], []])
    s = sim.snapshot()
    assert np.all(s["hstate"][:, :2] == SHARED)
    assert s["n_shared"][params.kernel_content(0, 0)] == 2
    assert s["n_shared"][params.kernel_content(0, 1)] == 2
    assert t.host("shared_frames") == 2 and t.host("sharing_saved_frames") == 2
    assert t.host("host_free_frames") == 18
    assert t.vm("host_shared_pages", 0) == 2 and t.vm("host_resident_pages", 1) == 0


def test_ksm_different_kernel_images_save_nothing():
    params = hostp(vmp(), vmp(image=1), host_frames=20, ksm_pages_per_tick=100)
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[], []])
    t = step(sim, [[], []])
    assert t.vm("host_shared_pages", 0) == 2 and t.host("shared_frames") == 4
    assert t.host("sharing_saved_frames") == 0 and t.host("host_free_frames") == 16


def test_ksm_cursor_round_robin():
    params = hostp(vmp(), vmp(), host_frames=20, ksm_pages_per_tick=3)
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[], []])  # visits i = 0, 1, 8
    s = sim.snapshot()
    assert int(s["ksm_cursor"]) == 9 and s["gchanged"][1, 1]
    step(sim, [[], []])  # visits 9 (clears), wraps to 0, 1 (merge)
    s = sim.snapshot()
    assert int(s["ksm_cursor"]) == 2
    assert s["hstate"][0, :2].tolist() == [SHARED, SHARED]
    assert s["hstate"][1, :2].tolist() == [RESIDENT, RESIDENT]


def test_ksm_max_sharing_packs_frames():
    vms = [vmp(guest=4, kernel=1) for _ in range(5)]
    params = hostp(*vms, host_frames=20, ksm_pages_per_tick=100, ksm_max_sharing=2)
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[]] * 5)
    t = step(sim, [[]] * 5)  # 5 sharers of one content, 2 per frame -> 3 frames
    assert t.host("shared_frames") == 3 and t.host("sharing_saved_frames") == 2


def test_cow_break_on_write_to_shared_page():
    a, b = vmp(share=1.0), vmp(share=1.0)
    assert_layout(a, file=False, share=True)
    params = hostp(a, b, host_frames=20, ksm_pages_per_tick=100)
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0], [0]])  # both VMs: page 0 with pool content, GPP 2
    s = sim.snapshot()
    pool0 = params.pool_content(0)
    assert int(s["vcontent"][0, 0]) == pool0 and int(s["gcontent"][1, 2]) == pool0
    step(sim, [[], []])  # merged
    s = sim.snapshot()
    assert s["hstate"][0, 2] == SHARED and s["n_shared"][pool0] == 2
    t = step(sim, [[w(0)], [0]])
    assert t.vm("cow_breaks", 0) == 1 and t.vm("cow_breaks", 1) == 0
    assert t.vm("guest_hits", 0) == 1
    s = sim.snapshot()
    assert s["hstate"][0, 2] == RESIDENT and s["n_shared"][pool0] == 1
    assert int(s["vcontent"][0, 0]) == -1 and bool(s["vdirty"][0, 0])
    assert s["hstate"][1, 2] == SHARED


def test_cow_break_when_placing_on_shared_free_gpp():
    params = hostp(vmp(), host_frames=20, ksm_pages_per_tick=100)
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0]], live=[32])  # page 0 zero-filled on GPP 2
    step(sim, [[]], live=[0])  # page 0 freed: GPP 2 FREE, zero content, merged by KSM
    step(sim, [[]], live=[0])
    assert sim.snapshot()["hstate"][0, 2] == SHARED
    t = step(sim, [[5]], live=[32])
    assert t.vm("cow_breaks") == 1 and t.vm("host_minor_faults") == 0
    assert sim.snapshot()["hstate"][0, 2] == RESIDENT


# --------------------------------------------------------------------------- guest OOM


def test_guest_oom_kill_when_swap_full():
    params = hostp(vmp(swap=2))
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0, 1, 2, 3, 4, 5]])  # GPPs 2..7
    t = step(sim, [[6, 7]])  # evicts pages 0, 1 (GPPs 2, 3): swap now full
    assert t.vm("guest_swapouts") == 2 and t.vm("guest_swap_used") == 2
    t = step(sim, [[8, w(9)]])
    assert t.vm("guest_oom_kills") == 1
    assert t.vm("guest_swapouts") == 0 and t.vm("guest_swap_used") == 0
    s = sim.snapshot()
    assert np.all(s["vstate"][0, :8] == UNALLOCATED)
    assert int(s["vgpp"][0, 8]) == 2 and int(s["vgpp"][0, 9]) == 3
    assert t.vm("guest_used_pages") == 2 and t.vm("guest_free_pages") == 4
    assert int(s["gfree_since"][0, 4]) == 3


def test_deflate_on_oom_gives_back_256_pages():
    params = hostp(vmp(guest=300, swap=0), host_frames=400, deflate_on_oom=True)
    sim = ReferenceSimulator(params, seed=0)
    t = step(sim, [list(range(18))], targets=[280])  # balloon GPPs 2..281; pages on 282..299
    assert t.vm("balloon_pages") == 280 and t.vm("guest_free_pages") == 0
    t = step(sim, [[18]], targets=[280])
    assert t.vm("guest_oom_kills") == 0 and t.vm("balloon_deflated") == 256
    assert t.vm("balloon_pages") == 24 and t.vm("balloon_target") == 280
    s = sim.snapshot()
    assert int(s["vgpp"][0, 18]) == 2 and t.vm("host_minor_faults") == 1
    assert t.vm("guest_free_pages") == 255


def test_deflate_on_oom_then_kill_when_balloon_too_small():
    params = hostp(vmp(guest=10, swap=0), deflate_on_oom=True)
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0, 1, 2, 3, 4, 5]], targets=[2])  # balloon GPPs 2, 3; pages on 4..9
    t = step(sim, [[6, 7, 8]], targets=[2])
    assert t.vm("balloon_deflated") == 2 and t.vm("guest_oom_kills") == 1
    s = sim.snapshot()
    assert [int(s["vgpp"][0, u]) for u in (6, 7, 8)] == [2, 3, 4]
    assert np.all(s["vstate"][0, :6] == UNALLOCATED)


# --------------------------------------------------------------------------- overflow


def test_overflow_major_fault_per_reference():
    params = hostp(vmp(guest=6))
    sim = ReferenceSimulator(params, seed=0)
    refs = [0, 1, 2, 3, 4, 5, 5, w(4)]
    t = step(sim, [refs])
    assert t.vm("refs") == 8
    assert t.vm("guest_minor_faults") == 4  # pages 0..3 placed on GPPs 2..5
    assert t.vm("guest_major_faults") == 4  # page 4: 2 refs, page 5: 2 refs
    assert t.vm("guest_swapins") == 0 and t.vm("guest_file_reads") == 0
    s = sim.snapshot()
    assert s["vstate"][0, 4] == UNALLOCATED and s["vstate"][0, 5] == UNALLOCATED
    t = step(sim, [refs])
    assert t.vm("guest_hits") == 4 and t.vm("guest_major_faults") == 4
    assert all(t.vm(k) == 0 for k in IO)


def test_overflow_evicts_every_candidate_first():
    params = hostp(vmp(guest=6))
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0, 1, 2, 3]])  # GPPs 2..5
    t = step(sim, [[0, 4, 5, 6, 7]])  # 4 faulting, 3 candidates (pages 1..3 on GPPs 3..5)
    assert t.vm("guest_swapouts") == 3 and t.vm("guest_minor_faults") == 3
    assert t.vm("guest_major_faults") == 1  # page 7, the highest, is not placed
    s = sim.snapshot()
    assert [int(s["vgpp"][0, u]) for u in (4, 5, 6, 7)] == [3, 4, 5, -1]
    t = step(sim, [[0, 1, 2, 3, 4, 5, 6, 7]])  # 4 faulting (1, 2, 3, 7), no candidate
    assert t.vm("guest_swapouts") == 0 and t.vm("guest_hits") == 4
    assert t.vm("guest_major_faults") == 4 and t.vm("guest_swapins") == 0


# --------------------------------------------------------------------------- reporting


def test_free_page_reporting_releases_after_delay():
    params = hostp(vmp(), free_page_reporting=True, report_delay_ticks=2)
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0, 1]], live=[32])
    t = step(sim, [[]], live=[1])  # page 1 freed at tick 2, its GPP 3 stays backed
    assert t.vm("host_resident_pages") == 4 and t.host("host_free_frames") == 60
    t = step(sim, [[]], live=[1])
    assert t.vm("host_resident_pages") == 4
    t = step(sim, [[]], live=[1])  # 2 <= 4 - 2: released, no I/O
    assert t.vm("host_resident_pages") == 3 and t.host("host_free_frames") == 61
    assert all(t.vm(k) == 0 for k in IO + ("host_swapouts",))
    s = sim.snapshot()
    assert s["gstate"][0, 3] == FREE and s["hstate"][0, 3] == UNBACKED
    assert int(s["gcontent"][0, 3]) == 0


def test_balloon_releases_host_swapped_free_gpp():
    params = hostp(vmp(), host_frames=5, host_min_free=2, host_policy="lru")
    sim = ReferenceSimulator(params, seed=0)
    step(sim, [[0, 1]])
    step(sim, [[0]], live=[1])  # GPP 3 FREE and host swapped
    assert sim.snapshot()["host_swap_used"] == 1
    t = step(sim, [[0]], targets=[1])  # the balloon takes GPP 3: slot freed, no I/O
    assert t.host("host_swap_used") == 0 and all(t.vm(k) == 0 for k in IO)
    assert sim.snapshot()["gstate"][0, 3] == BALLOON


# --------------------------------------------------------------------------- accounting


def test_ws_sample_and_gauges():
    params = hostp(vmp(guest=8, footprint=16, file=1.0), ws_sample_pages=20)
    sim = ReferenceSimulator(params, seed=3)
    t = step(sim, [[0, 1, 1]])
    touched = {0, 1, 2, 3}  # kernel GPPs and the two placed pages
    host_seed = derive_seeds(3)[1]
    keys = [page_key_int(host_seed, 1, ws_sample_index(0, j)) % 8 for j in range(20)]
    assert t.vm("ws_sample_touched") == sum(k in touched for k in keys)
    assert t.vm("guest_cache_pages") == 2 and t.vm("guest_committed_pages") == 2
    assert t.vm("guest_used_pages") == 2 and t.vm("guest_free_pages") == 4
    assert t.vm("refs") == 3 and t.vm("guest_minor_faults") == 2


def test_references_outside_live_footprint_are_ignored():
    params = hostp(vmp(footprint=8))
    sim = ReferenceSimulator(params, seed=0)
    t = step(sim, [[0, 3, 5, 7]], live=[4])
    assert t.vm("refs") == 2 and t.vm("guest_minor_faults") == 2


def test_invariant_checker_catches_corruption():
    params = hostp(vmp())
    sim = ReferenceSimulator(params, seed=0)
    vm, host = sim.step([0], make_demand(params, [[0, 1]]))
    check_invariants(params, sim.snapshot(), vm, host)
    s = sim.snapshot()
    s["gstate"][0, 7] = BALLOON
    with pytest.raises(AssertionError, match="#BALLOON"):
        check_invariants(params, s, vm, host)
    s = sim.snapshot()
    s["hstate"][0, 6] = HOST_SWAPPED
    with pytest.raises(AssertionError, match="host_swapped_pages"):
        check_invariants(params, s, vm, host)
    s = sim.snapshot()
    s["vgpp"][0, 1] = 2
    with pytest.raises(AssertionError, match="share a GPP"):
        check_invariants(params, s, vm, host)
    bad = host.copy()
    bad[HOST_INDEX["host_free_frames"]] += 1
    with pytest.raises(AssertionError, match="host_free_frames"):
        check_invariants(params, sim.snapshot(), vm, bad)


# --------------------------------------------------------------------------- workload-driven


def test_batch_matches_single_and_is_deterministic():
    params = hostp(
        vmp(guest=32, kernel=2, footprint=40, file=0.3, share=0.2, swap=8),
        vmp(guest=24, kernel=2, footprint=30, file=0.3, share=0.2, swap=8),
        host_frames=40,
        host_min_free=2,
        ksm_pages_per_tick=8,
        free_page_reporting=True,
        deflate_on_oom=True,
        balloon_rate_pages=4,
    )
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 20, size=(12, 2, 2))
    batch = ReferenceBatch(params, num_envs=2)
    batch.reset([11, 12])
    singles = [ReferenceSimulator(params, seed=11), ReferenceSimulator(params, seed=12)]
    for k in range(12):
        res = batch.step(targets[k])
        for i, sim in enumerate(singles):
            vm, host = sim.step(targets[k, i])
            check_invariants(params, sim.snapshot(), vm, host)
            assert np.array_equal(res.vm[i], vm) and np.array_equal(res.host[i], host)
            snap_b, snap_s = batch.snapshot(i), sim.snapshot()
            assert all(np.array_equal(snap_b[key], snap_s[key]) for key in snap_s)
    # Reset only env 1 with env 0's seed: env 1 replays env 0's episode.
    batch.reset([None, 11], env_mask=np.array([False, True]))
    assert int(batch.snapshot(0)["tick"]) == 12 and int(batch.snapshot(1)["tick"]) == 0
    fresh = ReferenceSimulator(params, seed=11)
    for k in range(3):
        res = batch.step(np.stack([targets[k, 0], targets[k, 0]]))
        vm, host = fresh.step(targets[k, 0])
        assert np.array_equal(res.vm[1], vm) and np.array_equal(res.host[1], host)


@pytest.mark.parametrize(
    "policy, swap, flags",
    [
        ("random-unaccessed", 4, dict(deflate_on_oom=True, free_page_reporting=True)),
        ("lru", 4, dict(false_read_preventer=True)),
        ("random-unaccessed", 64, dict(free_page_reporting=True, host_swap_pages=8)),
        ("random", 4, dict(deflate_on_oom=True, free_page_reporting=True)),
    ],
)
def test_invariants_hold_under_random_workload(policy, swap, flags):
    flags = dict(flags)
    wl = WorkloadParams(
        footprint_pages=56,
        phases=(Phase(ws_pages=40, refs_per_tick=24), Phase(ws_pages=12, refs_per_tick=24)),
        write_fraction=0.3,
        file_fraction=0.3,
        shareable_fraction=0.2,
    )
    vm = VmParams(
        guest_pages=48, kernel_pages=3, guest_reserve_pages=2, guest_swap_pages=swap, workload=wl
    )
    params = HostParams(
        vms=(vm, vm, vm),
        host_frames=90,
        host_swap_pages=flags.pop("host_swap_pages", 120),
        host_min_free=3,
        host_policy=policy,
        balloon_rate_pages=6,
        ksm_pages_per_tick=6,
        ksm_max_sharing=2,
        ws_sample_pages=10,
        **flags,
    )
    rng = np.random.default_rng(1)
    sim = ReferenceSimulator(params, seed=2)
    for _ in range(60):
        vm_c, host_c = sim.step(rng.integers(0, 48, size=3))
        check_invariants(params, sim.snapshot(), vm_c, host_c)
