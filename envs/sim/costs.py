"""The cost model: what one tick's counters cost each VM, in µs of vCPU time.

The one copy of the stall formula (docs/model.md §6, v1 mechanisms in
docs/design/physics-v1.md §1, §2, §7, §8). The env's reward and the oracle's look-ahead
reach it through ``envs.reward.step_reward``. Costs are computed from the tick's integer
counters and the params only: the reference stream is exogenous, so a cost never feeds
back into the dynamics, and the function is stateless (the same counters always cost
the same). One exception, off by default: on a closed-loop host (``closed_loop``) each
simulator subtracts :func:`loop_stall_frac` of its own counters from the VM's credit,
which sets when the VM issues its next batch (SEMANTICS.md §10). Numpy only.

Per VM ``i`` and tick, with ``r = page_kib / 4`` real 4 KiB pages per simulated page
(every per-page event is charged as ``r`` real ones, §8), the overlap
``o_i = min(1, (runnable_threads − 1) / vcpus)`` and ``a_i = user_fault_fraction`` if
``async_pf`` else 0:

component: count × µs per count

- guest_major_faults: guest read requests (major faults, with the swap-ins and file
  reads replaced by their I/Os ``guest_swapin_ios``, ``guest_file_read_ios``) ×
  ``L_guest_read · (1 − o) · r`` (one thread waits; others may use the vCPU);
- guest_minor_faults: guest minor faults × ``guest_minor_us · r`` (CPU);
- host_swapins: host swap-ins × ``(L_host_read + exit_us) · (1 − o · a) · r`` (the
  whole vCPU waits, unless an async PF lets the guest run another thread);
- double_paging: double paging × ``(L_host_read + exit_us + L_guest_write) · r``;
- false_swap_reads: false swap reads × ``(L_false_read + exit_us) · r``;
- cow_breaks: COW breaks × ``(cow_us + exit_us) · r``;
- host_minor_faults: host minor faults ×
  ``(host_minor_us + exit_us + host_zero_us_per_page) · r`` (zeroing on refault);
- balloon_op: pages inflated + deflated × ``balloon_us_per_page · r``;
- reclaim_stall: the host's swap-outs of the tick (``sync_reclaim``) × ``r · L_write``,
  shared by frame demand (below).

``stall_us[i]`` is the sum of the components in this order; with ``stall_cap`` (v1) it
is capped at the VM's time ``vcpus_i · tick_us`` (a saturated VM's components are scaled
to sum to the cap); ``saturated`` flags a VM whose formula exceeded it either way, and
``stall_frac[i] = stall_us[i] / (vcpus_i · tick_us)``.

Device off (``dev_enabled=False``, v0): the latencies are CostParams' constants,
``L_guest_read = guest_major_us``, ``L_host_read = host_swapin_us``,
``L_false_read = false_read_us``, ``L_guest_write = guest_write_us``; the device is not
modelled (``device_busy_frac = 0``). Device on: every one of them is the device's
latency this tick, ``L_read = dev_read_lat_us + wait_us`` (writes: ``dev_write_lat_us +
wait_us``), from every real I/O of the host's VMs (guest swap and file reads, guest
writes, host swap reads and writes share the device):

``S(b) = max(1e6 / iops, b / bw)`` per request of ``b`` bytes (bw in bytes/µs = MB/s);
``D_us = Σ_requests S(b)``; ``ρ = min(D_us / tick_us, dev_rho_max)``;
``S̄ = D_us / n_requests``;
``wait_us = ρ · S̄ · (1 + dev_cs2) / (2 (1 − ρ)) + max(0, D_us − tick_us) / 2``
(Pollaczek–Khinchine mean wait of an M/G/1 queue, with the utilization capped; demand
beyond the tick's capacity waits on average half the excess: the design note's carried
backlog is not kept, so that costs stay a function of the tick's counters);
``device_busy_frac = min(1, D_us / tick_us)``.

Request sizes: a guest swap-in request reads its whole cluster (``2**guest_page_cluster``
pages), a file read its readahead window (``file_readahead_pages``), overflow majors and
host requests one page; a VM's guest writes carry its written pages
(``swapouts + writebacks``) over its write requests. Occupancy is summed per VM and
kind of request. Each simulated request stands for
``r`` real ones of that many 4 KiB pages.

Synchronous reclaim (``sync_reclaim``): every host swap-out of the model is made because
free frames fell below ``host_min_free`` while the tick placed frames (SEMANTICS.md §5),
so every one is a direct-reclaim write that an allocation waits for (Linux
``mm/vmscan.c`` direct reclaim; ESX hard state). The tick's ``r · host_swap_write_ios``
real writes, ``L_write`` each, are charged to the VMs in proportion to the frames they
took this tick (host swap-ins + host minor faults + COW breaks + double paging + false
swap reads); a tick whose swap-outs only catch up an older deficit (no VM took a frame)
stalls nobody. With ``async_pf``, the share ``o · a`` of a VM's host swap-ins that async
page faults serve is faulted in by KVM's async-PF worker (``virt/kvm/async_pf.c``), which
then waits for its frame's reclaim instead of the vCPU: those frames are left out of the
VM's charge (but not of the attribution's denominator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.sim.counters import VM_INDEX
from envs.sim.params import HostParams

PAGE_BYTES = 4096  # one real page
# Per-VM stall components, in the order stall_us sums them.
COST_TERMS: tuple[str, ...] = (
    "guest_major_faults",
    "guest_minor_faults",
    "host_swapins",
    "double_paging",
    "false_swap_reads",
    "cow_breaks",
    "host_minor_faults",
    "balloon_op",
    "reclaim_stall",
)
# Counters that take a host frame (the synchronous-reclaim attribution rule).
FRAME_COUNTERS: tuple[str, ...] = (
    "host_swapins",
    "host_minor_faults",
    "cow_breaks",
    "double_paging",
    "false_swap_reads",
)


@dataclass(frozen=True)
class TickCosts:
    """What one tick cost, for ``B`` envs of ``V`` VMs (every array fresh)."""

    stall_us: np.ndarray  # (B, V) float64: each VM's stall (vCPU µs)
    stall_frac: np.ndarray  # (B, V) float64: stall_us / (vcpus · tick_us) (≤ 1 if capped)
    saturated: np.ndarray  # (B, V) bool: the formula exceeded the tick, stall_us is capped
    components: dict[str, np.ndarray]  # COST_TERMS -> (B, V) µs; they sum to stall_us
    device_busy_frac: np.ndarray  # (B,) share of the tick the device was busy (0: off)
    read_latency_us: np.ndarray  # (B,) latency of one guest read request (L_guest_read)
    write_latency_us: np.ndarray  # (B,) latency of one write (L_guest_write)
    # (B, V) closed loop only (else 0): ticks the tick's batch waited beyond its one tick
    # of computation (loop_stall_frac), which set the VM's pace
    loop_stall_frac: np.ndarray


def device_latency(
    params: HostParams, occupancy_us: np.ndarray, requests: np.ndarray, backlog: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(L_read, L_write, busy_frac)`` of the device given the tick's total occupancy
    ``D_us`` and number of real requests (both (B,)), by the queue formula above
    (``backlog=False``: without the wait for the demand beyond the tick's capacity)."""
    c = params.costs
    tick = params.tick_us
    occ = np.asarray(occupancy_us, dtype=np.float64)
    n = np.asarray(requests, dtype=np.float64)
    rho = np.minimum(occ / tick, c.dev_rho_max)
    mean_s = np.divide(occ, n, out=np.zeros_like(occ), where=n > 0)
    wait = rho * mean_s * (1.0 + c.dev_cs2) / (2.0 * (1.0 - rho))
    if backlog:
        wait = wait + np.maximum(0.0, occ - tick) / 2.0
    return c.dev_read_lat_us + wait, c.dev_write_lat_us + wait, np.minimum(1.0, occ / tick)


def _occupancy(n_requests, n_bytes, iops: float, mbps: float):
    """Device time (µs) of ``n_requests`` requests carrying ``n_bytes`` in all."""
    return np.maximum(n_requests * (1e6 / iops), n_bytes / mbps)


def _tick_latencies(
    params: HostParams, vm: np.ndarray, guest_reads: np.ndarray, backlog: bool = True
) -> tuple:
    """The latencies of the tick: ``(L_read, L_write, busy)`` per env (B,), the four
    latencies the components use (device on: the queue's, broadcast per env; off: v0's
    constants) and each VM's device occupancy (B, V) µs (0 with the device off)."""
    c = params.costs
    B = vm.shape[0]
    r = params.real_pages_per_page

    def n(name: str) -> np.ndarray:  # (B, V) int64
        return vm[:, :, VM_INDEX[name]]

    zeros_b = np.zeros(B, dtype=np.float64)
    occ_vm = np.zeros(vm.shape[:2], dtype=np.float64)
    if c.dev_enabled:
        cl = float(1 << params.guest_page_cluster)
        ra = float(params.file_readahead_pages)

        def f(name: str) -> np.ndarray:  # (B, V) real requests (or pages)
            return n(name).astype(np.float64) * r

        overflow = (guest_reads - n("guest_swapin_ios") - n("guest_file_read_ios")) * r
        swapin, fileread = f("guest_swapin_ios"), f("guest_file_read_ios")
        hread, hwrite = f("host_swap_read_ios"), f("host_swap_write_ios")
        gwrite = f("guest_write_ios")
        gw_pages = f("guest_swapouts") + f("guest_writebacks")
        riops, rbw = c.dev_read_iops, c.dev_read_mbps
        wiops, wbw = c.dev_write_iops, c.dev_write_mbps
        # Per VM and kind of request (a kind's requests have one size per VM), summed.
        occ_vm = (
            _occupancy(swapin, swapin * cl * PAGE_BYTES, riops, rbw)
            + _occupancy(fileread, fileread * ra * PAGE_BYTES, riops, rbw)
            + _occupancy(overflow, overflow * PAGE_BYTES, riops, rbw)
            + _occupancy(hread, hread * PAGE_BYTES, riops, rbw)
            + _occupancy(gwrite, gw_pages * PAGE_BYTES, wiops, wbw)
            + _occupancy(hwrite, hwrite * PAGE_BYTES, wiops, wbw)
        )
        occ = occ_vm.sum(axis=1)
        reqs = (swapin + fileread + overflow + hread + gwrite + hwrite).sum(axis=1)
        l_read, l_write, busy = device_latency(params, occ, reqs, backlog)
        lr = l_read[:, None]  # (B, 1)
        lw = l_write[:, None]
        l_guest_read = l_host_read = l_false_read = lr
        l_guest_write = lw
    else:
        l_guest_read, l_host_read = c.guest_major_us, c.host_swapin_us
        l_false_read, l_guest_write = c.false_read_us, c.guest_write_us
        l_read = zeros_b + c.guest_major_us
        l_write = zeros_b + c.guest_write_us
        busy = zeros_b
    return l_read, l_write, busy, l_guest_read, l_host_read, l_false_read, l_guest_write, occ_vm


def tick_costs(params: HostParams, vm: np.ndarray) -> TickCosts:
    """The costs of the tick whose counters are ``vm`` (B, V, NV) (the module docstring
    gives the formula)."""
    comps, total, l_read, l_write, busy, _ = _stall(params, vm, backlog=True)
    vcpus = np.array([v.vcpus for v in params.vms], dtype=np.float64)
    # A VM cannot lose more than all of its vCPUs' time: past that the formula (a sum of
    # latencies, right while requests wait less than a tick) would charge waits that no
    # thread could be blocked in within the tick. Saturated VMs are flagged, and their
    # components scaled so that they still sum to the stall (physics-v1.md §1 (c)).
    cap = params.tick_us * vcpus  # (V,)
    saturated = total > cap
    if params.costs.stall_cap and saturated.any():
        scale = np.where(saturated, cap / np.where(saturated, total, 1.0), 1.0)
        comps = {k: v * scale for k, v in comps.items()}
        total = np.where(saturated, cap, total)
    if params.closed_loop:
        loop = loop_stall_frac(params, vm)
    else:
        loop = np.zeros_like(total)
    return TickCosts(
        stall_us=total,
        stall_frac=total / (params.tick_us * vcpus),
        saturated=saturated,
        components=comps,
        device_busy_frac=busy,
        read_latency_us=np.asarray(l_read, dtype=np.float64).copy(),
        write_latency_us=np.asarray(l_write, dtype=np.float64).copy(),
        loop_stall_frac=loop,
    )


def loop_stall_frac(params: HostParams, vm: np.ndarray) -> np.ndarray:
    """(B, V) ticks of each VM's time that the tick's batch waited beyond its one tick of
    computation: the closed loop's pace (SEMANTICS.md "Closed loop", docs/model.md
    §13.5). The stall formula, uncapped (a VM that waits longer than a tick issues no
    references until its wait is over), with two changes that make it a closed loop's:

    - the device's latency without the backlog term ``max(0, D − tick) / 2``: that term
      is the wait of an open stream whose demand keeps arriving whatever the device
      does; in the closed loop the demand beyond the tick's capacity is the loop's own
      delay (the VM waits, its next batch comes later), and charging half the excess to
      every request would count each request's wait as many times as there are requests
      (the utilization in the queue factor stays capped at ``dev_rho_max``);
    - at least ``D_v / tick − 1``, ``D_v`` the VM's own device occupancy: its batch
      cannot finish before the device has served its requests, whatever overlaps them
      (async page faults, other threads)."""
    _, total, _, _, _, occ_vm = _stall(params, vm, backlog=False)
    vcpus = np.array([v.vcpus for v in params.vms], dtype=np.float64)
    frac = total / (params.tick_us * vcpus)
    return np.maximum(frac, occ_vm / params.tick_us - 1.0)


def _stall(params: HostParams, vm: np.ndarray, backlog: bool) -> tuple:
    """``(components, total, L_read, L_write, busy, occ_vm)`` of the tick, uncapped."""
    c = params.costs
    r = params.real_pages_per_page

    def n(name: str) -> np.ndarray:  # (B, V) int64
        return vm[:, :, VM_INDEX[name]]

    vms = params.vms
    o = np.array([v.overlap_frac for v in vms], dtype=np.float64)  # (V,)
    a = np.array([v.user_fault_fraction if params.async_pf else 0.0 for v in vms], dtype=np.float64)
    # Guest read requests (integers; == guest_major_faults with one I/O per page).
    guest_reads = (
        n("guest_major_faults")
        - n("guest_swapins")
        - n("guest_file_reads")
        + n("guest_swapin_ios")
        + n("guest_file_read_ios")
    )
    lats = _tick_latencies(params, vm, guest_reads, backlog)
    l_read, l_write, busy, l_guest_read, l_host_read, l_false_read, l_guest_write, occ_vm = lats
    hyper = c.exit_us
    # Latency per count of each component; products are formed as v0 formed them, so
    # v0 params give v0's bits (factors of exactly 1.0 and terms of 0.0 change nothing).
    per_count = (
        ("guest_major_faults", guest_reads, l_guest_read * (1.0 - o) * r),
        ("guest_minor_faults", n("guest_minor_faults"), c.guest_minor_us * r),
        ("host_swapins", n("host_swapins"), (l_host_read + hyper) * (1.0 - o * a) * r),
        ("double_paging", n("double_paging"), (l_host_read + hyper + l_guest_write) * r),
        ("false_swap_reads", n("false_swap_reads"), (l_false_read + hyper) * r),
        ("cow_breaks", n("cow_breaks"), (c.cow_us + hyper) * r),
        (
            "host_minor_faults",
            n("host_minor_faults"),
            (c.host_minor_us + hyper + c.host_zero_us_per_page) * r,
        ),
        ("balloon_op", n("balloon_inflated") + n("balloon_deflated"), c.balloon_us_per_page * r),
    )
    comps: dict[str, np.ndarray] = {}
    total: np.ndarray | None = None
    for name, count, lat in per_count:
        term = lat * count.astype(np.float64)
        comps[name] = term
        total = term if total is None else total + term
    assert total is not None
    if c.sync_reclaim:
        frames = sum(n(name) for name in FRAME_COUNTERS).astype(np.float64)  # (B, V)
        demand = frames.sum(axis=1, keepdims=True)
        share = np.divide(frames, demand, out=np.zeros_like(frames), where=demand > 0)
        writes = n("host_swap_write_ios").sum(axis=1, keepdims=True) * r  # (B, 1) real
        reclaim = share * (writes * l_write[:, None])
        if params.async_pf:
            # A host swap-in served asynchronously is faulted in by KVM's async-PF worker
            # (virt/kvm/async_pf.c, async_pf_execute -> get_user_pages_remote): the
            # worker, not the vCPU, waits for the reclaim of its frame, for the share
            # o·a of the VM's host swap-ins that async PF covers.
            apf = n("host_swapins").astype(np.float64) * (o * a)
            apf_share = np.divide(apf, demand, out=np.zeros_like(apf), where=demand > 0)
            reclaim = reclaim - apf_share * (writes * l_write[:, None])
    else:
        reclaim = np.zeros_like(total)
    comps["reclaim_stall"] = reclaim
    total = total + reclaim
    return comps, total, l_read, l_write, busy, occ_vm
