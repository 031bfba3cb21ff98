"""The v1 dynamics mechanisms (issue 10 items 4-6), in the vectorized core.

Blind host victim selection (``host_policy="random"``), free page reporting of aligned
blocks (``report_block_pages``) and page-cache-filling streams (``stream_pages_per_tick``):
physics that would fail if a mechanism broke, and batch independence with each one on.
The differential test (``test_differential.py``) compares the core with the reference twin
on hypothesis draws of the same parameters.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from envs.sim.core import BALLOON, HOST_SWAPPED, KERNEL, RESIDENT, UNBACKED, Simulator
from envs.sim.invariants import check_invariants
from envs.sim.params import HostParams, Phase, VmParams, WorkloadParams
from envs.sim.reference import ReferenceSimulator
from envs.sim.workload import Demand, Workload


def _run(params: HostParams, targets, ticks: int, seed: int = 0):
    sim = Simulator(params, 1)
    sim.reset([seed])
    tg = np.asarray(targets, dtype=np.int64).reshape(1, -1)
    return [sim.step(tg) for _ in range(ticks)], sim


def _total(results, name: str) -> int:
    return int(sum(r.vm_field(name).sum() for r in results))


# ------------------------------------------------------------ host victim selection
def _hot_host(policy: str) -> HostParams:
    """Two VMs that touch (almost) every page of their footprint every tick, on a host a
    little short of frames: only a blind host finds victims."""
    wl = WorkloadParams(
        footprint_pages=200,
        phases=(Phase(ws_pages=200, refs_per_tick=2048),),
        cold_fraction=1.0,  # uniform over the footprint: each page missed w.p. ~e^-10
        write_fraction=0.0,
    )
    vm = VmParams(guest_pages=256, kernel_pages=8, guest_reserve_pages=4, workload=wl)
    return HostParams(
        vms=(vm, vm),
        host_frames=430,  # 2 x (8 + 200) = 416 resident: 14 free, min free 32
        host_min_free=32,
        host_policy=policy,
        ksm_pages_per_tick=0,
    )


def test_random_host_swaps_hot_and_kernel_pages_that_come_straight_back():
    """ESX's random policy (Waldspurger 2002 §3.3) evicts pages in use: the hot set and the
    kernel are swapped out and swapped back in on the next tick. The accessed-bit
    approximation (v0's policy, now "random-unaccessed") finds nothing to evict."""
    res, sim = _run(_hot_host("random"), [0, 0], 40)
    outs, ins = _total(res, "host_swapouts"), _total(res, "host_swapins")
    assert outs >= 30 * 18  # the deficit (32 - 14) every tick once the footprint is in
    assert ins >= 0.9 * (outs - int(res[-1].vm_field("host_swapouts").sum()))
    res_u, _ = _run(_hot_host("random-unaccessed"), [0, 0], 40)
    assert _total(res_u, "host_swapins") <= 0.05 * ins
    assert _total(res_u, "host_swapouts") <= 0.05 * outs


def test_random_host_swaps_kernel_pages_and_they_come_back_next_tick():
    sim = Simulator(_hot_host("random"), 1)
    sim.reset([3])
    seen = 0
    for _ in range(40):
        before = sim.snapshot(0)
        k_out = int(np.sum((before["gstate"] == KERNEL) & (before["hstate"] == HOST_SWAPPED)))
        res = sim.step(np.zeros((1, 2), np.int64))
        seen += k_out
        # The kernel is referenced every tick: each swapped kernel page is a swap-in.
        assert int(res.vm_field("host_swapins").sum()) >= k_out
        assert int(res.host_field("host_oom")[0]) == 0
    assert seen > 0


# ------------------------------------------------------------- free page reporting
class _Scripted:
    """Feeds both simulators the same hand-written demand: ``live`` and refs per tick."""

    def __init__(self, params: HostParams, seed: int = 0):
        self.params = params
        self.core = Simulator(params, 1)
        self.core.reset([seed])
        self.ref = ReferenceSimulator(params, seed=seed)

    def step(self, refs: list[int], live: int, balloon: int = 0) -> dict[str, np.ndarray]:
        R = max(1, len(refs))
        arr = np.full((1, 1, R), -1, np.int32)
        arr[0, 0, : len(refs)] = refs
        demand = Demand(np.array([[live]], np.int32), arr, np.zeros((1, 1, R), bool))
        self.core.workload.draw = lambda: demand
        res = self.core.step(np.full((1, 1), balloon, np.int64))
        vm, host = self.ref.step([balloon], demand)
        assert np.array_equal(res.vm[0], vm) and np.array_equal(res.host[0], host)
        snap = self.core.snapshot(0)
        for k, val in self.ref.snapshot().items():
            assert np.array_equal(snap[k], val), k
        check_invariants(self.params, snap, res.vm[0], res.host[0])
        return snap


def _reporting_host(block: int) -> HostParams:
    wl = WorkloadParams(footprint_pages=36, phases=(Phase(ws_pages=36, refs_per_tick=36),))
    vm = VmParams(guest_pages=40, kernel_pages=4, guest_reserve_pages=0, workload=wl)
    return HostParams(
        vms=(vm,),
        host_frames=100,
        host_min_free=0,
        ksm_pages_per_tick=0,
        free_page_reporting=True,
        report_delay_ticks=2,
        report_block_pages=block,
    )


@pytest.mark.parametrize("block", [1, 8])
def test_reporting_releases_only_whole_aligned_free_blocks(block):
    """Blocks of 8 GPPs: [0, 8) holds the kernel (never reports), the rest report only when
    all 8 pages are free for the delay (mm/page_reporting.c: whole buddy blocks of at
    least pageblock order). With blocks of 1 every free page reports (v0)."""
    sim = _Scripted(_reporting_host(block))
    snap = sim.step(list(range(36)), live=36)  # vpage u -> GPP u + 4: GPPs [4, 40) backed
    assert np.all(snap["hstate"][0, 4:40] == RESIDENT)
    sim.step([], live=21)  # tick 2: vpages [21, 36) freed -> GPPs [25, 40) FREE
    snap = sim.step([], live=21)  # tick 3: not yet due
    assert np.all(snap["hstate"][0, 25:40] == RESIDENT)
    snap = sim.step([], live=21)  # tick 4 = 2 + delay
    hs = snap["hstate"][0]
    assert np.all(hs[32:40] == UNBACKED)  # the whole block [32, 40)
    # Block [24, 32) still holds vpage 20 in GPP 24: its 7 free pages stay backed.
    assert np.all(hs[25:32] == (UNBACKED if block == 1 else RESIDENT))
    sim.step([], live=20)  # tick 5: GPP 24 freed, block [24, 32) complete
    snap = sim.step([], live=20)  # tick 6: the block became whole at 5, due at 7
    assert np.all(snap["hstate"][0, 24] == RESIDENT)
    assert np.all(snap["hstate"][0, 25:32] == (UNBACKED if block == 1 else RESIDENT))
    snap = sim.step([], live=20)  # tick 7
    assert np.all(snap["hstate"][0, 24:40] == UNBACKED)
    assert np.all(snap["hstate"][0, 4:24] == RESIDENT)


def test_reporting_block_with_balloon_pages_is_not_free():
    """A balloon page is allocated in the guest (the balloon driver holds it), so a block
    holding one is not a free buddy block and does not report."""
    sim = _Scripted(_reporting_host(8))
    sim.step(list(range(36)), live=36)
    sim.step([], live=20)  # tick 2: GPPs [24, 40) FREE
    snap = sim.step([], live=20, balloon=2)  # tick 3: the balloon takes GPPs 24, 25
    assert snap["gstate"][0, 24] == snap["gstate"][0, 25] == BALLOON
    for _ in range(3):
        snap = sim.step([], live=20, balloon=2)
    hs = snap["hstate"][0]
    assert np.all(hs[32:40] == UNBACKED) and np.all(hs[26:32] == RESIDENT)


def test_bad_report_block_pages_name_the_field():
    with pytest.raises(ValueError, match="report_block_pages must be an int >= 1"):
        HostParams(report_block_pages=0)
    with pytest.raises(ValueError, match=r"report_block_pages must be <= 4096 here"):
        HostParams(free_page_reporting=True, report_block_pages=8192)
    HostParams(free_page_reporting=False, report_block_pages=8192)  # off: never used


# ------------------------------------------------------------- streaming file reads
def _streaming_vm(stream_pages_per_tick: int = 16, stream_file_pages: int = 4096) -> VmParams:
    """A guest with a 128-page anon hot set touched every tick (uniform refs) and, on top,
    a stream of fresh file pages read once: far more file data than guest memory."""
    wl = WorkloadParams(
        footprint_pages=128 + stream_file_pages,
        phases=(Phase(ws_pages=128, refs_per_tick=512),),
        cold_fraction=1.0,
        write_fraction=0.2,
        file_fraction=0.0,
        shareable_fraction=0.0,
        stream_pages_per_tick=stream_pages_per_tick,
        stream_file_pages=stream_file_pages,
    )
    return VmParams(guest_pages=512, kernel_pages=16, guest_reserve_pages=8, workload=wl)


def _plain_vm() -> VmParams:
    """The streaming VM without its stream region."""
    vm = _streaming_vm()
    wl = dataclasses.replace(
        vm.workload, footprint_pages=128, stream_pages_per_tick=0, stream_file_pages=0
    )
    return dataclasses.replace(vm, workload=wl)


def test_stream_draws_the_same_phase_references_plus_fresh_file_pages():
    """A VM with a stream issues exactly the phase references of the same VM with the
    stream region cut off, and then k consecutive pages of the region per tick, cycling."""
    plain_vm = _plain_vm()
    k, n = 16, 40  # the region wraps every 2.5 ticks
    stream_vm = _streaming_vm(k, n)
    a = Workload(HostParams(vms=(plain_vm,), host_frames=600, host_min_free=0), 2)
    b = Workload(HostParams(vms=(stream_vm,), host_frames=600, host_min_free=0), 2)
    seeds = [np.random.SeedSequence(s) for s in (4, 5)]
    a.reset(np.arange(2), seeds)
    b.reset(np.arange(2), [np.random.SeedSequence(s) for s in (4, 5)])
    for t in range(6):
        da, db = a.draw(), b.draw()
        assert np.array_equal(db.live, np.full((2, 1), 128 + n))
        assert np.array_equal(db.refs[:, :, :512], da.refs) and not db.writes[..., 512:].any()
        want = 128 + (k * t + np.arange(k)) % n
        assert np.array_equal(db.refs[:, 0, 512:], np.broadcast_to(want, (2, k)))


def test_streaming_guest_fills_free_memory_with_clean_cache():
    """Stylized fact: a Linux guest runs with little free memory, most of it clean page
    cache (DAMON_RECLAIM doc, docs/design/physics-v1.md §6). The guest drops the cache
    (no I/O) and never swaps its hot anon set for it."""
    host = dict(host_frames=2048, host_min_free=0, ksm_pages_per_tick=0)
    res, _ = _run(HostParams(vms=(_streaming_vm(),), **host), [0], 200)
    last = res[-1]
    free = int(last.vm_field("guest_free_pages")[0, 0])
    cache = int(last.vm_field("guest_cache_pages")[0, 0])
    assert free <= 512 // 100  # little free memory
    assert cache >= 0.6 * 512  # a large page cache
    assert _total(res, "guest_drops") > 0
    for name in ("guest_swapouts", "guest_writebacks", "guest_major_faults"):
        assert _total(res, name) == 0, name
    # Without the stream the same guest keeps its free memory free.
    res0, _ = _run(HostParams(vms=(_plain_vm(),), **host), [0], 200)
    assert int(res0[-1].vm_field("guest_free_pages")[0, 0]) == 512 - 16 - 128
    assert int(res0[-1].vm_field("guest_cache_pages")[0, 0]) == 0


@pytest.mark.parametrize("preventer", [False, True])
def test_host_swaps_the_streamed_cache_and_reads_it_back_for_nothing(preventer):
    """Under host pressure without a balloon the host cannot tell the clean cache from anon
    memory (VSwapper's "false page anonymity"): it swaps cache pages out, the guest drops
    them and reuses their GPPs for new file data, and the host reads the stale contents
    back (false swap reads), unless the false-read preventer maps a fresh frame."""
    vm = _streaming_vm()
    params = HostParams(
        vms=(vm, vm),
        host_frames=2 * (16 + 128) + 400,  # the hot sets fit, half the cache does not
        host_min_free=16,
        ksm_pages_per_tick=0,
        false_read_preventer=preventer,
    )
    res, sim = _run(params, [0, 0], 200)
    assert _total(res, "host_swapouts") > 1000
    false_reads, minor = _total(res, "false_swap_reads"), _total(res, "host_minor_faults")
    if preventer:
        assert false_reads == 0 and minor > 1000
    else:
        assert false_reads > 1000
    assert _total(res, "double_paging") == 0  # the cache is clean: drops write nothing
    # The pages the host holds in swap are the guests' cache and free pages, not hot anon.
    snap = sim.snapshot(0)
    for v in range(2):
        hs, gs = snap["hstate"][v], snap["gstate"][v]
        vg = snap["vgpp"][v]
        hot = vg[:128][vg[:128] >= 0]
        assert not np.any(hs[hot] == HOST_SWAPPED)
        cache = vg[128:][vg[128:] >= 0]
        assert np.sum(hs[cache] == HOST_SWAPPED) > 0.2 * cache.size
        assert np.all(gs[hs == HOST_SWAPPED] != KERNEL)


# ----------------------------------------------------------------- batch independence
def _small_host(**kw) -> HostParams:
    stream = kw.pop("workload", {})
    wl = WorkloadParams(
        footprint_pages=160 + stream.get("stream_file_pages", 0),
        # Grows, then restarts (frees whole runs of GPPs); the stream region is live.
        initial_live_pages=40 + stream.get("stream_file_pages", 0),
        growth_pages_per_tick=8,
        restart_period_ticks=25,
        phases=(Phase(ws_pages=100, refs_per_tick=48), Phase(ws_pages=40, refs_per_tick=48)),
        write_fraction=0.3,
        file_fraction=0.3,
        shareable_fraction=0.2,
        **stream,
    )
    vm = VmParams(guest_pages=128, kernel_pages=4, guest_reserve_pages=2, workload=wl)
    base = dict(
        vms=(vm, vm, vm),
        host_frames=300,
        host_min_free=8,
        balloon_rate_pages=16,
        deflate_on_oom=True,
        ksm_pages_per_tick=16,
        free_page_reporting=True,
    )
    base.update(kw)
    return HostParams(**base)


@pytest.mark.parametrize(
    "params",
    [
        _small_host(host_policy="random"),
        _small_host(report_block_pages=8, report_delay_ticks=1),
        _small_host(workload=dict(stream_pages_per_tick=6, stream_file_pages=200)),
        _small_host(
            host_policy="random",
            report_block_pages=16,
            workload=dict(stream_pages_per_tick=6, stream_file_pages=200),
        ),
    ],
    ids=["random", "report-blocks", "stream", "all"],
)
def test_env_in_batch_equals_env_alone_with_v1_dynamics(params):
    """Env b stepped inside a batch (with a partial reset of another env) draws and does
    exactly what it does alone, with each v1 mechanism on."""
    seeds, ticks = [3, 14, 8], 60
    rng = np.random.default_rng(2)
    tgs = [rng.integers(0, 32, size=(3, 3)) for _ in range(ticks)]
    batch = Simulator(params, 3)
    batch.reset(seeds)
    out = []
    for t, tg in enumerate(tgs):
        if t == 20:  # restart env 1 only
            batch.reset([None, 99, None], env_mask=np.array([False, True, False]))
        out.append(batch.step(tg))
    for b in (0, 2):
        alone = Simulator(params, 1)
        alone.reset([seeds[b]])
        for t, tg in enumerate(tgs):
            r = alone.step(tg[b : b + 1])
            assert np.array_equal(out[t].vm[b], r.vm[0]), f"env {b} tick {t + 1}"
            assert np.array_equal(out[t].host[b], r.host[0]), f"env {b} tick {t + 1}"
        for k, val in alone.snapshot(0).items():
            assert np.array_equal(batch.snapshot(b)[k], val), k
        check_invariants(params, batch.snapshot(b), out[-1].vm[b], out[-1].host[b])


def test_stream_layout_is_file_and_not_shareable_on_top_of_the_v0_layout():
    from envs.sim.workload import page_layout

    wl = WorkloadParams(
        footprint_pages=300,
        phases=(Phase(ws_pages=100),),
        file_fraction=0.3,
        shareable_fraction=0.2,
        stream_pages_per_tick=5,
        stream_file_pages=100,
    )
    f, s = page_layout(wl)
    f0, s0 = page_layout(
        dataclasses.replace(wl, footprint_pages=200, stream_pages_per_tick=0, stream_file_pages=0)
    )
    assert np.array_equal(f[:200], f0) and np.array_equal(s[:200], s0)
    assert f[200:].all() and not s[200:].any()
    assert wl.max_refs_per_tick == 256 + 5


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            dict(stream_file_pages=7000, stream_pages_per_tick=1),
            r"stream_file_pages must be an int in",
        ),
        (dict(stream_file_pages=10), r"stream_pages_per_tick must be >= 1 when stream_file"),
        (dict(stream_pages_per_tick=3), r"stream_pages_per_tick must be <= stream_file_pages"),
        (dict(stream_file_pages=6144, stream_pages_per_tick=1), r"stream_file_pages must be <"),
        (dict(stream_file_pages=9, stream_pages_per_tick=-1), r"stream_pages_per_tick must be"),
    ],
)
def test_bad_stream_params_name_the_field(kw, match):
    with pytest.raises(ValueError, match=match):
        WorkloadParams(**kw)
    # A pure stream (no phase references) may fill the whole footprint.
    WorkloadParams(
        footprint_pages=64,
        phases=(Phase(ws_pages=1, refs_per_tick=0),),
        stream_pages_per_tick=4,
        stream_file_pages=64,
    )


def test_trace_vm_with_a_stream_replays_below_the_stream_region():
    """A replayed trace folds onto the pages below the stream region, exactly as it does
    for the same VM without the stream; the stream reads follow."""
    from envs.sim.params import TraceSpec
    from envs.sim.workload import ResolvedTrace, WorkloadData

    spec = TraceSpec("lirs", "not/a/file")
    pages = np.array([0, 1, 0, 2, 1, 3, 0, 2, 2, 4, 6, 5], np.int32)
    data = WorkloadData(traces={spec: ResolvedTrace(pages, None, 7, "memory")})
    plain = WorkloadParams(footprint_pages=5, phases=(Phase(ws_pages=1, refs_per_tick=3),))
    plain = dataclasses.replace(plain, traces=(spec,))
    streamed = dataclasses.replace(
        plain, footprint_pages=25, stream_pages_per_tick=2, stream_file_pages=20
    )
    out = []
    for wl in (plain, streamed):
        vm = VmParams(guest_pages=16, kernel_pages=1, guest_reserve_pages=0, workload=wl)
        w = Workload(HostParams(vms=(vm,), host_frames=32, host_min_free=0), 1, data)
        w.reset(np.arange(1), [np.random.SeedSequence(1)])
        out.append([w.draw().copy() for _ in range(6)])
    for t, (a, b) in enumerate(zip(*out, strict=True)):
        assert np.array_equal(b.refs[0, 0, :3], a.refs[0, 0, :3])
        assert b.refs[0, 0, 3:].tolist() == [5 + (2 * t) % 20, 5 + (2 * t + 1) % 20]
