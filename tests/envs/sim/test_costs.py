"""The cost model (envs.sim.costs): v0 bit-identity, a scalar twin, the queue, async PF,
synchronous reclaim, balloon cost and scale."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envs.sim.costs import COST_TERMS, FRAME_COUNTERS, tick_costs
from envs.sim.counters import VM_FIELDS, VM_INDEX
from envs.sim.params import CostParams, HostParams, VmParams

NV = len(VM_FIELDS)
EVENTS_V0 = (
    "guest_major_faults", "guest_minor_faults", "host_swapins", "double_paging",
    "false_swap_reads", "cow_breaks", "host_minor_faults",
)  # fmt: skip


def _v0_stall_us(costs: CostParams, vm: np.ndarray) -> np.ndarray:
    """The v0 formula exactly as counters.stall_us computed it before v1 (a frozen copy)."""
    hyper = costs.exit_us
    lats = (
        costs.guest_major_us,
        costs.guest_minor_us,
        costs.host_swapin_us + hyper,
        costs.host_swapin_us + hyper + costs.guest_write_us,
        costs.false_read_us + hyper,
        costs.cow_us + hyper,
        costs.host_minor_us + hyper,
    )
    total = None
    for name, lat in zip(EVENTS_V0, lats, strict=True):
        term = lat * vm[..., VM_INDEX[name]].astype(np.float64)
        total = term if total is None else total + term
    return total


def _counters(rng: np.random.Generator, B: int, V: int, hi: int = 5000) -> np.ndarray:
    """Consistent random counters: sub-counts below their totals, I/Os below pages."""
    vm = rng.integers(0, hi, size=(B, V, NV)).astype(np.int64)

    def col(n):
        return vm[..., VM_INDEX[n]]

    col("guest_swapins")[:] = rng.integers(0, col("guest_major_faults") // 2 + 1)
    col("guest_file_reads")[:] = rng.integers(0, col("guest_major_faults") // 2 + 1)
    for ios, pages in (("guest_swapin_ios", "guest_swapins"), ("guest_file_read_ios",
                       "guest_file_reads")):  # fmt: skip
        col(ios)[:] = rng.integers(0, col(pages) + 1)
    col("guest_write_ios")[:] = rng.integers(0, col("guest_swapouts") + col("guest_writebacks") + 1)
    col("host_swap_read_ios")[:] = (
        col("host_swapins") + col("double_paging") + col("false_swap_reads")
    )
    col("host_swap_write_ios")[:] = col("host_swapouts")
    return vm


def _one_io_per_page(vm: np.ndarray) -> np.ndarray:
    vm = vm.copy()
    vm[..., VM_INDEX["guest_swapin_ios"]] = vm[..., VM_INDEX["guest_swapins"]]
    vm[..., VM_INDEX["guest_file_read_ios"]] = vm[..., VM_INDEX["guest_file_reads"]]
    return vm


def _host(costs: CostParams | None = None, vms=None, **kw) -> HostParams:
    vms = vms or (VmParams(), VmParams(), VmParams())
    return HostParams(vms=vms, costs=costs or CostParams(), **kw)


@settings(max_examples=60, deadline=None)
@given(
    lat=st.lists(st.floats(0.0, 500.0), min_size=8, max_size=8),
    seed=st.integers(0, 2**31),
)
def test_v0_params_give_v0_stall_bit_for_bit(lat, seed):
    costs = CostParams(
        guest_major_us=lat[0], guest_minor_us=lat[1], host_swapin_us=lat[2], exit_us=lat[3],
        guest_write_us=lat[4], false_read_us=lat[5], cow_us=lat[6], host_minor_us=lat[7],
    )  # fmt: skip
    prm = _host(costs)
    vm = _one_io_per_page(_counters(np.random.default_rng(seed), 4, 3))
    tc = tick_costs(prm, vm)
    assert np.array_equal(tc.stall_us, _v0_stall_us(costs, vm))
    assert np.array_equal(tc.stall_frac, _v0_stall_us(costs, vm) / prm.tick_us)
    assert not tc.components["balloon_op"].any() and not tc.components["reclaim_stall"].any()
    assert not tc.device_busy_frac.any()


# ----------------------------------------------------------------- scalar twin
def _scalar_costs(prm: HostParams, vm: np.ndarray) -> tuple[list, list]:
    """A slow, obvious second copy of the cost formula (envs.sim.costs' docstring), one
    env and one VM at a time in Python floats. Returns (stall_us[b][v], busy[b])."""
    c = prm.costs
    r = prm.page_kib / 4
    stalls, busy_out = [], []
    for b in range(vm.shape[0]):
        rows = [{n: int(vm[b, v, k]) for k, n in enumerate(VM_FIELDS)} for v in range(prm.num_vms)]
        if c.dev_enabled:
            occ = 0.0
            nreq = 0.0
            for e in rows:
                over = e["guest_major_faults"] - e["guest_swapins"] - e["guest_file_reads"]
                reads = (
                    (e["guest_swapin_ios"], 2**prm.guest_page_cluster),
                    (e["guest_file_read_ios"], prm.file_readahead_pages),
                    (over, 1),
                    (e["host_swap_read_ios"], 1),
                )
                for count, pages in reads:
                    occ += max(r * count * 1e6 / c.dev_read_iops,
                               r * count * pages * 4096 / c.dev_read_mbps)  # fmt: skip
                    nreq += r * count
                wpages = e["guest_swapouts"] + e["guest_writebacks"]
                hw = e["host_swap_write_ios"]
                for count, pages_total in ((e["guest_write_ios"], wpages), (hw, hw)):
                    occ += max(r * count * 1e6 / c.dev_write_iops,
                               r * pages_total * 4096 / c.dev_write_mbps)  # fmt: skip
                    nreq += r * count
            rho = min(occ / prm.tick_us, c.dev_rho_max)
            mean_s = occ / nreq if nreq else 0.0
            wait = (
                rho * mean_s * (1 + c.dev_cs2) / (2 * (1 - rho)) + max(0.0, occ - prm.tick_us) / 2
            )
            l_read = c.dev_read_lat_us + wait
            l_write = c.dev_write_lat_us + wait
            lgr = lhr = lfr = l_read
            lgw = l_write
            busy = min(1.0, occ / prm.tick_us)
        else:
            lgr, lhr, lfr, lgw = (
                c.guest_major_us,
                c.host_swapin_us,
                c.false_read_us,
                c.guest_write_us,
            )
            l_write = 0.0
            busy = 0.0
        frames = [sum(e[n] for n in FRAME_COUNTERS) for e in rows]
        writes = sum(e["host_swap_write_ios"] for e in rows) * r
        out = []
        for v, e in enumerate(rows):
            vp = prm.vms[v]
            o = min(1.0, (vp.runnable_threads - 1) / vp.vcpus)
            a = vp.user_fault_fraction if prm.async_pf else 0.0
            greads = (e["guest_major_faults"] - e["guest_swapins"] - e["guest_file_reads"]
                      + e["guest_swapin_ios"] + e["guest_file_read_ios"])  # fmt: skip
            s = greads * lgr * (1 - o) * r
            s += e["guest_minor_faults"] * c.guest_minor_us * r
            s += e["host_swapins"] * (lhr + c.exit_us) * (1 - o * a) * r
            s += e["double_paging"] * (lhr + c.exit_us + lgw) * r
            s += e["false_swap_reads"] * (lfr + c.exit_us) * r
            s += e["cow_breaks"] * (c.cow_us + c.exit_us) * r
            s += (
                e["host_minor_faults"] * (c.host_minor_us + c.exit_us + c.host_zero_us_per_page) * r
            )
            s += (e["balloon_inflated"] + e["balloon_deflated"]) * c.balloon_us_per_page * r
            if c.sync_reclaim and sum(frames) > 0:
                # the async-PF worker, not the vCPU, waits for those frames' reclaim
                vcpu_frames = frames[v] - e["host_swapins"] * o * a
                s += vcpu_frames / sum(frames) * writes * l_write
            cap = vp.vcpus * prm.tick_us  # with stall_cap a VM loses at most all its time
            out.append(min(s, cap) if c.stall_cap else s)
        stalls.append(out)
        busy_out.append(busy)
    return stalls, busy_out


@st.composite
def _cost_setup(draw):
    dev = draw(st.booleans())
    costs = CostParams(
        guest_major_us=draw(st.sampled_from([100.0, 80.0])),
        host_zero_us_per_page=draw(st.sampled_from([0.0, 0.3])),
        balloon_us_per_page=draw(st.sampled_from([0.0, 2.25])),
        dev_enabled=dev,
        dev_read_lat_us=draw(st.sampled_from([20.0, 100.0])),
        dev_cs2=draw(st.sampled_from([0.0, 1.0])),
        sync_reclaim=dev and draw(st.booleans()),
        stall_cap=draw(st.booleans()),
    )
    vms = tuple(
        VmParams(
            vcpus=(k := draw(st.integers(1, 4))),
            runnable_threads=draw(st.integers(1, 2 * k + 1)),
            user_fault_fraction=draw(st.sampled_from([0.5, 1.0])),
        )
        for _ in range(draw(st.integers(1, 4)))
    )
    prm = HostParams(
        vms=vms,
        host_frames=4 * 8192,
        costs=costs,
        page_kib=draw(st.sampled_from([4, 16, 64])),
        guest_page_cluster=draw(st.sampled_from([0, 3])),
        file_readahead_pages=draw(st.sampled_from([1, 32])),
        async_pf=draw(st.booleans()),
    )
    hi = draw(st.sampled_from([10, 5000, 200_000]))  # light, busy and saturated devices
    return prm, hi


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=_cost_setup(), seed=st.integers(0, 2**31))
def test_cost_model_equals_its_scalar_twin(setup, seed):
    prm, hi = setup
    vm = _counters(np.random.default_rng(seed), 3, prm.num_vms, hi)
    tc = tick_costs(prm, vm)
    stalls, busy = _scalar_costs(prm, vm)
    np.testing.assert_allclose(tc.stall_us, np.array(stalls), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(tc.device_busy_frac, np.array(busy), rtol=1e-12)
    summed = sum(tc.components[n] for n in COST_TERMS)
    np.testing.assert_allclose(summed, tc.stall_us, rtol=1e-12)
    vcpus = np.array([v.vcpus for v in prm.vms], dtype=np.float64)
    np.testing.assert_allclose(tc.stall_frac, tc.stall_us / (vcpus * prm.tick_us), rtol=1e-12)


# ----------------------------------------------------------------------- queue
DEV = CostParams(dev_enabled=True)
S_4K = max(1e6 / DEV.dev_read_iops, 4096 / DEV.dev_read_mbps)  # 2.17 µs, IOPS-bound


def _host_reads(n: int, costs: CostParams = DEV) -> tuple[HostParams, np.ndarray]:
    prm = _host(costs, vms=(VmParams(),))
    vm = np.zeros((1, 1, NV), dtype=np.int64)
    vm[0, 0, VM_INDEX["host_swapins"]] = n
    vm[0, 0, VM_INDEX["host_swap_read_ios"]] = n
    return prm, vm


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_queue_latency_follows_the_mg1_formula(rho):
    n = round(rho * 1e6 / S_4K)
    prm, vm = _host_reads(n)
    tc = tick_costs(prm, vm)
    occ = n * S_4K
    r = occ / 1e6
    want = DEV.dev_read_lat_us + r * S_4K * (1 + DEV.dev_cs2) / (2 * (1 - r))
    assert tc.read_latency_us[0] == pytest.approx(want, rel=1e-12)
    assert tc.device_busy_frac[0] == pytest.approx(rho, rel=1e-5)
    # M/M/1 at rho: W = rho / (1 - rho) service times: 1 at 0.5, 9 at 0.9.
    assert tc.read_latency_us[0] - DEV.dev_read_lat_us == pytest.approx(
        rho / (1 - rho) * S_4K, rel=1e-4
    )
    # Each host swap-in waits L_read + exit_us (one vCPU, no overlap).
    assert tc.components["host_swapins"][0, 0] == pytest.approx(n * (want + DEV.exit_us))


def test_device_saturates_at_its_iops():
    """Busy fraction reaches 1 at dev_read_iops random 4 KiB reads per second (the
    P3700's 460k), the queue factor is capped at dev_rho_max, and demand beyond the
    tick waits half the excess."""
    _, vm_half = _host_reads(230_000)
    prm, vm_full = _host_reads(460_000)
    assert tick_costs(prm, vm_half).device_busy_frac[0] == pytest.approx(0.5)
    assert tick_costs(prm, vm_full).device_busy_frac[0] == pytest.approx(1.0)
    _, vm_over = _host_reads(920_000)
    tc = tick_costs(prm, vm_over)
    cap = DEV.dev_rho_max
    queue = cap * S_4K * (1 + DEV.dev_cs2) / (2 * (1 - cap))
    assert tc.device_busy_frac[0] == 1.0
    assert tc.read_latency_us[0] == pytest.approx(DEV.dev_read_lat_us + queue + 0.5e6)


def test_bandwidth_bounds_large_requests():
    """A 128 KiB readahead request is bandwidth-bound: 131072 B / 2800 MB/s = 46.8 µs."""
    prm = _host(DEV, vms=(VmParams(),), file_readahead_pages=32)
    vm = np.zeros((1, 1, NV), dtype=np.int64)
    for name in ("guest_major_faults", "guest_file_reads"):
        vm[0, 0, VM_INDEX[name]] = 32_000
    vm[0, 0, VM_INDEX["guest_file_read_ios"]] = 1000
    tc = tick_costs(prm, vm)
    assert tc.device_busy_frac[0] == pytest.approx(1000 * 131072 / 2800 / 1e6)


# -------------------------------------------------------------------- async PF
def test_async_pf_halves_host_swapin_stall_with_half_the_vcpus_free():
    """o = min(1, (3 − 1) / 4) = 0.5: with async PF half of each host swap-in's wait is
    filled by other threads; without it the whole vCPU waits."""
    vm_p = VmParams(vcpus=4, runnable_threads=3)
    prm = _host(vms=(vm_p,), async_pf=False)
    vm = np.zeros((1, 1, NV), dtype=np.int64)
    vm[0, 0, VM_INDEX["host_swapins"]] = 1000
    off = tick_costs(prm, vm).components["host_swapins"][0, 0]
    on = tick_costs(dataclasses.replace(prm, async_pf=True), vm).components["host_swapins"][0, 0]
    assert off == 1000 * 101.0
    assert on / off == pytest.approx(0.5)


def test_async_pf_doubles_co_runner_throughput_in_natapovs_setup():
    """Natapov 2010 (KVM async PF cover letter): 4 vCPUs, more runnable threads than
    vCPUs; co-runner throughput about 2x with async PF (band [1.59, 2.49]). When host
    swap-ins block half of the VM's vCPU time, throughput 1 − stall_frac doubles."""
    vm_p = VmParams(vcpus=4, runnable_threads=8)
    prm = _host(vms=(vm_p,))
    n = int(0.5 * 4 * prm.tick_us / 101.0)  # half of 4 vCPU-seconds of host swap-ins
    vm = np.zeros((1, 1, NV), dtype=np.int64)
    vm[0, 0, VM_INDEX["host_swapins"]] = n
    off = 1 - tick_costs(prm, vm).stall_frac[0, 0]
    on = 1 - tick_costs(dataclasses.replace(prm, async_pf=True), vm).stall_frac[0, 0]
    assert 1.59 <= on / off <= 2.49
    # Guest faults overlap without async PF: one thread waits, others run.
    vm2 = np.zeros_like(vm)
    vm2[0, 0, VM_INDEX["guest_major_faults"]] = n
    assert tick_costs(prm, vm2).stall_us[0, 0] == 0.0  # o = 1: every wait is filled


# ------------------------------------------------------- reclaim, balloon, scale
def test_sync_reclaim_charges_host_writes_by_frame_demand():
    costs = CostParams(dev_enabled=True, sync_reclaim=True)
    prm = _host(costs, vms=(VmParams(), VmParams()))
    vm = np.zeros((1, 2, NV), dtype=np.int64)
    vm[0, 0, VM_INDEX["host_minor_faults"]] = 300
    vm[0, 1, VM_INDEX["host_swapins"]] = 100
    vm[0, 1, VM_INDEX["host_swap_read_ios"]] = 100
    vm[0, 0, VM_INDEX["host_swapouts"]] = 400
    vm[0, 0, VM_INDEX["host_swap_write_ios"]] = 400
    tc = tick_costs(prm, vm)
    lw = tc.write_latency_us[0]
    np.testing.assert_allclose(tc.components["reclaim_stall"][0], [300 * lw, 100 * lw])
    # No VM took a frame: the swap-outs catch up an old deficit and stall nobody.
    vm[0, :, VM_INDEX["host_minor_faults"]] = 0
    vm[0, :, VM_INDEX["host_swapins"]] = 0
    assert not tick_costs(prm, vm).components["reclaim_stall"].any()


def test_balloon_cost_matches_the_measured_inflation_time():
    """Wang & Li 2017: 7 GiB of an idle 8 GiB guest inflate in 4126 ms (legacy path),
    band [3.30, 5.16] s; at page_kib = 64 the same memory is 1/16 of the pages."""
    for page_kib in (4, 64):
        prm = _host(CostParams(balloon_us_per_page=2.25), vms=(VmParams(),), page_kib=page_kib)
        vm = np.zeros((1, 1, NV), dtype=np.int64)
        vm[0, 0, VM_INDEX["balloon_inflated"]] = 7 * 2**30 // (page_kib * 1024)
        seconds = tick_costs(prm, vm).components["balloon_op"][0, 0] / 1e6
        assert 3.30 <= seconds <= 5.16
        assert seconds == pytest.approx(4.129, abs=1e-3)


def test_every_per_page_cost_scales_with_page_kib():
    """A simulated page of 16 KiB is 4 real pages: with the device off every event
    costs 4x; a scaled VM with 1/4 of the events stalls as much as the full-size one."""
    rng = np.random.default_rng(1)
    vm = _counters(rng, 2, 3)
    base = _host(CostParams(balloon_us_per_page=2.25, host_zero_us_per_page=0.3))
    big = dataclasses.replace(base, page_kib=16)
    np.testing.assert_allclose(tick_costs(big, vm).stall_us, 4 * tick_costs(base, vm).stall_us)


# --------------------------------------------------------------------- params
@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: VmParams(vcpus=0), "vcpus"),
        (lambda: VmParams(runnable_threads=0), "runnable_threads"),
        (lambda: VmParams(user_fault_fraction=1.5), "user_fault_fraction"),
        (lambda: HostParams(guest_page_cluster=-1), "guest_page_cluster"),
        (lambda: HostParams(file_readahead_pages=0), "file_readahead_pages"),
        (lambda: HostParams(async_pf=1), "async_pf"),
        (lambda: HostParams(async_pf=True, host_swap_pages=0), "async_pf"),
        (lambda: CostParams(dev_read_iops=0.0), "dev_read_iops"),
        (lambda: CostParams(dev_write_mbps=-1.0), "dev_write_mbps"),
        (lambda: CostParams(dev_rho_max=1.0), "dev_rho_max"),
        (lambda: CostParams(dev_enabled=1), "dev_enabled"),
        (lambda: CostParams(sync_reclaim=True), "sync_reclaim"),
        (lambda: CostParams(balloon_us_per_page=math.inf), "balloon_us_per_page"),
    ],
)
def test_bad_cost_params_name_the_field(build, field):
    with pytest.raises(ValueError, match=field):
        build()


def test_stall_cap_limits_a_vm_to_its_time_and_keeps_the_terms_summing():
    """With stall_cap (v1), an overloaded tick costs a VM at most vcpus · tick, its terms
    scaled to sum to that, and it is flagged; without it (v0) the formula is uncapped."""
    vm = _counters(np.random.default_rng(1), 2, 2, 200_000)
    for cap in (False, True):
        prm = HostParams(vms=(VmParams(vcpus=2), VmParams()), host_frames=4 * 8192,
                         costs=CostParams(guest_major_us=100.0, stall_cap=cap))  # fmt: skip
        tc = tick_costs(prm, vm)
        limit = np.array([2.0, 1.0]) * prm.tick_us
        assert tc.saturated.any()
        if cap:
            assert (tc.stall_us <= limit).all() and (tc.stall_frac <= 1.0).all()
            np.testing.assert_allclose(
                tc.stall_us[tc.saturated], np.broadcast_to(limit, tc.stall_us.shape)[tc.saturated]
            )
        else:
            assert (
                tc.stall_us[tc.saturated] > np.broadcast_to(limit, tc.stall_us.shape)[tc.saturated]
            ).all()
        summed = sum(tc.components[n] for n in COST_TERMS)
        np.testing.assert_allclose(summed, tc.stall_us, rtol=1e-12)


# ------------------------------------------------------------------ closed loop
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), cap=st.booleans())
def test_loop_stall_is_the_uncapped_stall_with_the_device_off(seed, cap):
    """Device off (no queue, no backlog term): the closed loop's wait is the stall
    formula over the VM's time, not capped; open loop: 0 in TickCosts."""
    from envs.sim.costs import loop_stall_frac

    vm = _counters(np.random.default_rng(seed), 2, 3)
    prm = _host(CostParams(stall_cap=cap), closed_loop=True)
    uncapped = tick_costs(dataclasses.replace(prm, costs=CostParams()), vm).stall_frac
    np.testing.assert_array_equal(loop_stall_frac(prm, vm), uncapped)
    np.testing.assert_array_equal(tick_costs(prm, vm).loop_stall_frac, uncapped)
    np.testing.assert_array_equal(
        tick_costs(dataclasses.replace(prm, closed_loop=False), vm).loop_stall_frac, 0.0
    )


def test_loop_stall_drops_the_backlog_term_and_keeps_the_vms_device_time():
    """An overloaded device (5 ticks of reads): the open loop's latency carries half the
    excess per request; the closed loop's does not, and the wait is at least the device
    time beyond the tick; with async PF hiding every host swap-in it is exactly that."""
    from envs.sim.costs import loop_stall_frac

    n = round(5e6 / S_4K)
    prm, vm = _host_reads(n)
    prm = dataclasses.replace(prm, closed_loop=True, host_swap_pages=1)
    occ = n * S_4K
    open_frac = tick_costs(dataclasses.replace(prm, costs=dataclasses.replace(
        DEV, stall_cap=False)), vm).stall_frac[0, 0]  # fmt: skip
    loop = loop_stall_frac(prm, vm)[0, 0]
    assert occ / 1e6 - 1 <= loop < open_frac / 100
    vcpu = VmParams(vcpus=1, runnable_threads=2)  # o = 1
    apf = dataclasses.replace(prm, vms=(vcpu,), async_pf=True)
    assert loop_stall_frac(apf, vm)[0, 0] == pytest.approx(occ / 1e6 - 1)
