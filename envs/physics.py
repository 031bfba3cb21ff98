"""Env v1 physics (and the partial v2): the v0 host configuration of a scenario, with the
v1 (v2) mechanisms on.

Every v1 mechanism is a parameter of ``envs.sim.params`` whose default is the v0
behaviour, so that v0 scenarios, records and results keep their meaning. :func:`with_v1_physics`
switches them on for one host configuration; the ``-v1`` scenarios (``envs.scenarios``)
are the ``-v0`` ones passed through it. docs/model.md §12 states each mechanism, its
parameters and its source; docs/design/physics-v1.md has the derivations.

What changes, and why (sources in docs/model.md §12):

- **Scale.** A simulated page stands for ``V1_PAGE_KIB`` = 1 MiB, so the scenarios'
  512-4096-page VMs stand for 0.5-4 GiB VMs, and every per-page cost, I/O and rate follows
  (``HostParams.page_kib``; physics-v1.md §8).
- **Storage.** One device per host (Intel DC P3700 figures) whose queueing delay grows
  with its utilization; guest and host I/O share it (``CostParams.dev_*``), and a VM that
  needs frames below ``host_min_free`` waits for the host's swap-out writes
  (``CostParams.sync_reclaim``; Linux direct reclaim, ``mm/vmscan.c``).
- **Blocking.** A guest fault blocks one thread, and half of its wait is filled by the
  VM's other runnable thread (``vcpus=2``, ``runnable_threads=2``); a host swap-in blocks
  the vCPU (no async page faults: an ESX-like host; ``HostParams.async_pf``).
- **Blind host paging.** ``host_policy="random"`` is uniform over all host-resident pages
  (Waldspurger, OSDI 2002, §3.3); a scenario that chose ``"lru"`` keeps it.
- **Free page reporting** is off (it needs the guest driver's feature negotiation), and
  where a scenario turns it on it reports aligned 2 MiB blocks (``mm/page_reporting.c``).
- **Saturation.** A VM loses at most all of its vCPUs' time in a tick
  (``CostParams.stall_cap``): the sum of latencies is capped where the device is
  overloaded.
- **Balloon and page costs.** 2.25 µs of guest time per 4 KiB ballooned (Wang & Li,
  virtio-balloon, 2017) and 0.30 µs to zero a 4 KiB frame on a host refault; the balloon
  moves at most the pages that one tick of that cost allows.
- **Page sharing** scans at Linux's default rate, 100 pages per 20 ms
  (``Documentation/admin-guide/mm/ksm.rst``).
- **Readahead** (``guest_page_cluster``, ``file_readahead_pages``) is below one simulated
  page at this scale (8 × 4 KiB swap clusters, 128 KiB file readahead), so each simulated
  I/O stands for ``r`` real requests (physics-v1.md §3, §8).
"""

from __future__ import annotations

import dataclasses

from envs.sim.params import HostParams, VmParams

V1_PAGE_KIB = 1024
"""KiB one simulated page stands for in the v1 scenarios (the VMs of 512-4096 pages stand
for 0.5-4 GiB guests, the size of small cloud instances)."""

# Sources: docs/model.md §12 (each with its paper, kernel file or datasheet).
KSM_REAL_PAGES_PER_S = 5000  # 100 pages / 20 ms, ksm.rst defaults
BALLOON_US_PER_4K = 2.25  # Wang & Li 2017: 7 GiB of an idle 8 GiB guest in 4126 ms
ZERO_US_PER_4K = 0.30  # clear_pages(): 13.7 GB/s on AMD Milan
SWAP_CLUSTER_KIB = 4 * (1 << 3)  # vm.page-cluster = 3 (mm/swap.c swap_setup)
FILE_READAHEAD_KIB = 128  # VM_READAHEAD_PAGES (include/linux/pagemap.h; mm.h in older kernels)
REPORT_BLOCK_KIB = 2048  # pageblock_order 9 on x86-64 (mm/page_reporting.c)
# A modelling choice, not a measured figure (none was found, physics-v1.md §1): two vCPUs,
# as the smallest general-purpose cloud instances have (e.g. AWS m5.large, 2 vCPUs and
# 8 GiB), with one more runnable thread than the faulting one, so that half of a guest
# fault's wait is filled (o = 0.5). Host swap-ins get none of it without async PF.
VCPUS = 2
RUNNABLE_THREADS = 2


def with_v1_physics(params: HostParams, page_kib: int = V1_PAGE_KIB) -> HostParams:
    """``params`` (a v0 host configuration) with the v1 physics switched on."""
    r = page_kib / 4.0
    tick_s = params.tick_ms / 1000.0
    balloon_rate = max(1, int(params.tick_us / (BALLOON_US_PER_4K * r)))
    costs = dataclasses.replace(
        params.costs,
        dev_enabled=True,
        sync_reclaim=True,
        stall_cap=True,
        balloon_us_per_page=BALLOON_US_PER_4K,
        host_zero_us_per_page=ZERO_US_PER_4K,
    )
    vms = tuple(
        dataclasses.replace(vm, vcpus=VCPUS, runnable_threads=RUNNABLE_THREADS)
        for vm in params.vms
    )
    cluster_pages = max(1, SWAP_CLUSTER_KIB // page_kib)
    return dataclasses.replace(
        params,
        vms=vms,
        page_kib=page_kib,
        costs=costs,
        host_policy="lru" if params.host_policy == "lru" else "random",
        async_pf=False,
        free_page_reporting=False,
        report_block_pages=max(1, REPORT_BLOCK_KIB // page_kib),
        guest_page_cluster=cluster_pages.bit_length() - 1,
        file_readahead_pages=max(1, FILE_READAHEAD_KIB // page_kib),
        ksm_pages_per_tick=max(1, round(KSM_REAL_PAGES_PER_S * tick_s / r)),
        balloon_rate_pages=balloon_rate,
    )


# ------------------------------------------------------------------ v2 (partial)
# Sources: docs/model.md §13 (each with its mark: verified or recalled).
# Random 4 KiB reads at queue depth 1, Intel SSD DC P3700: "The P3700 manages 36.5MB/s
# (~8900 IOPS)" (AnandTech, "Intel SSD DC P3700 Review", 2014, "Random Read
# Performance"; verified). One outstanding request at a time: its latency is 1 / IOPS.
P3700_QD1_READ_IOPS = 8900.0
P3700_QD8_READ_IOPS = 77000.0  # same page: "~77000 IOPS" at QD8 (verified; a fact, not a parameter)
V2_DEV_READ_LAT_US = 1e6 / P3700_QD1_READ_IOPS  # 112.4 µs
# Writes: no random-write QD1 figure of the P3700 was found (AnandTech's client-workload
# review measures random writes at QD3 and QD32 only), so the datasheet's 20 µs stays
# (CostParams.dev_write_lat_us): a gap, docs/model.md §13.1.
# x86-64 Linux: one struct page (include/linux/mm_types.h) of 64 bytes per 4 KiB frame
# of configured memory (STRUCT_PAGE_MAX_SHIFT = order_base_2(sizeof(struct page)) = 6,
# include/linux/mm.h), 1.56 % of the guest.
STRUCT_PAGE_BYTES = 64


def _with_metadata(vm: VmParams) -> VmParams:
    """``vm`` with struct-page metadata; a guest reserve that held every non-kernel page
    (a guest the balloon may not touch) still does, now that the kernel holds more."""
    m = dataclasses.replace(vm, page_metadata_bytes=0, guest_reserve_pages=0)
    m = dataclasses.replace(m, page_metadata_bytes=STRUCT_PAGE_BYTES)
    room = m.guest_pages - m.kernel_reserved_pages
    return dataclasses.replace(m, guest_reserve_pages=min(vm.guest_reserve_pages, room))


def with_v2_physics(params: HostParams, page_kib: int = V1_PAGE_KIB) -> HostParams:
    """``params`` (a v0 host configuration) with the v1 physics and the v2 mechanisms
    so far: the device's random-read latency at queue depth 1 (112.4 µs), struct-page
    metadata sized by each guest's configured memory, and per-image content pools.

    And the closed loop (``HostParams.closed_loop``, docs/model.md §13.5): a thread that
    stalls issues no references while it waits, so each VM's batches of references come
    at the pace its stalls leave it (Natapov's async-PF benchmark, whose 2× does not
    depend on the access rate).

    **Partial v2** (issue #24): no scenario is registered with it; docs/model.md §13.
    Within-VM copies of shareable content (``WorkloadParams.shareable_copies``) are a
    workload property that the preset leaves as the scenario set it.
    """
    p = with_v1_physics(params, page_kib)
    costs = dataclasses.replace(p.costs, dev_read_lat_us=V2_DEV_READ_LAT_US)
    vms = tuple(_with_metadata(vm) for vm in p.vms)
    return dataclasses.replace(p, vms=vms, costs=costs, content_model="image", closed_loop=True)
