"""The invariants of docs/model.md §8, checked on one env's snapshot and counters.

``check_invariants`` works on any snapshot laid out as SEMANTICS.md "Snapshot" says, so the
same checker runs after every tick of the reference simulator and of the vectorized core.
It is a checker, not dynamics: numpy-vectorized, and it raises ``AssertionError`` naming the
invariant, the VM and the offending pages.
"""

from __future__ import annotations

import numpy as np

from envs.sim.counters import HOST_INDEX, VM_FIELDS, VM_INDEX
from envs.sim.params import HostParams, VmParams
from envs.sim.workload import page_layout

# State codes (SEMANTICS.md "State").
UNALLOCATED, RESIDENT_V, SWAPPED, EVICTED = 0, 1, 2, 3
NONE, KERNEL, USED, FREE, BALLOON = -1, 0, 1, 2, 3
UNBACKED, RESIDENT, HOST_SWAPPED, SHARED = 0, 1, 2, 3

_HOST_STATES = (UNBACKED, RESIDENT, HOST_SWAPPED, SHARED)


def _fail(msg: str) -> None:
    raise AssertionError(msg)


def _first(mask: np.ndarray, limit: int = 8) -> list[int]:
    return np.flatnonzero(mask)[:limit].tolist()


def check_invariants(
    params: HostParams,
    snap: dict[str, np.ndarray],
    vm_counters: np.ndarray,
    host_counters: np.ndarray,
) -> None:
    """Raise ``AssertionError`` unless every docs/model.md §8 invariant holds.

    Args:
        params: the env's parameters.
        snap: ``snapshot(env)`` as SEMANTICS.md "Snapshot" lays it out.
        vm_counters: (V, len(VM_FIELDS)) counters of the tick that produced ``snap``.
        host_counters: (len(HOST_FIELDS),) host counters of that tick.
    """
    vm_counters = np.asarray(vm_counters)
    host_counters = np.asarray(host_counters)
    _check_shapes(params, snap, vm_counters, host_counters)
    host_oom = _check_counter_signs(vm_counters, host_counters)
    for v in range(params.num_vms):
        _check_vm(params, v, snap, vm_counters[v])
    _check_host(params, snap, host_counters, host_oom)


def _check_shapes(
    params: HostParams, snap: dict[str, np.ndarray], vm_counters, host_counters
) -> None:
    V, P, F = params.num_vms, params.max_guest_pages, params.max_footprint_pages
    if vm_counters.shape != (V, len(VM_FIELDS)):
        _fail(f"vm_counters shape {vm_counters.shape} != {(V, len(VM_FIELDS))}")
    if host_counters.shape != (len(HOST_INDEX),):
        _fail(f"host_counters shape {host_counters.shape} != {(len(HOST_INDEX),)}")
    for name, shape in (
        ("vstate", (V, F)), ("vgpp", (V, F)), ("vdirty", (V, F)), ("vcontent", (V, F)),
        ("gstate", (V, P)), ("hstate", (V, P)), ("gcontent", (V, P)), ("glast", (V, P)),
        ("hlast", (V, P)), ("gchanged", (V, P)), ("gfree_since", (V, P)),
        ("balloon", (V,)), ("guest_swap_used", (V,)), ("vslot", (V, F)),
        ("guest_slot_next", (V,)), ("tick", ()), ("host_swap_used", ()),
        ("ksm_cursor", ()), ("n_shared", (params.content_space,)),
    ):  # fmt: skip
        if np.shape(snap[name]) != shape:
            _fail(f"snapshot[{name!r}] shape {np.shape(snap[name])} != {shape}")


def _check_counter_signs(vm_counters: np.ndarray, host_counters: np.ndarray) -> int:
    """Counters are non-negative (host_free_frames may be negative only when host_oom).
    Returns host_oom."""
    host_oom = int(host_counters[HOST_INDEX["host_oom"]])
    if host_oom not in (0, 1):
        _fail(f"host_oom must be 0 or 1, got {host_oom}")
    neg = np.argwhere(vm_counters < 0)
    if neg.size:
        v, k = neg[0]
        _fail(f"VM {v}: counter {VM_FIELDS[k]} = {vm_counters[v, k]} < 0")
    for name, idx in HOST_INDEX.items():
        val = int(host_counters[idx])
        if val < 0 and not (name == "host_free_frames" and host_oom):
            _fail(f"host counter {name} = {val} < 0 (host_oom={host_oom})")
    return host_oom


def _check_vm(params: HostParams, v: int, snap: dict[str, np.ndarray], row: np.ndarray) -> None:
    """Every per-VM invariant of VM ``v``; ``row`` is its (len(VM_FIELDS),) counters."""
    vm = params.vms[v]
    gs, vs = snap["gstate"][v], snap["vstate"][v]
    _check_layout(vm, v, snap)
    n_used, n_free, n_balloon = (int(np.sum(gs == s)) for s in (USED, FREE, BALLOON))
    if vm.kernel_reserved_pages + n_used + n_free + n_balloon != vm.guest_pages:
        _fail(
            f"VM {v}: kernel {vm.kernel_reserved_pages} + used {n_used} + free {n_free} + balloon "
            f"{n_balloon} != guest_pages {vm.guest_pages}"
        )
    if int(snap["balloon"][v]) != n_balloon:
        _fail(f"VM {v}: balloon {int(snap['balloon'][v])} != #BALLOON GPPs {n_balloon}")
    _check_mapping(vm, v, snap, n_used)
    _check_masks(v, snap)
    _check_host_view(params, v, snap)
    _check_reporting(params, v, snap)
    n_swapped = int(np.sum(vs == SWAPPED))
    if int(snap["guest_swap_used"][v]) != n_swapped:
        _fail(f"VM {v}: guest_swap_used {int(snap['guest_swap_used'][v])} != #SWAPPED {n_swapped}")
    if n_swapped > vm.guest_swap_pages:
        _fail(f"VM {v}: guest swap used {n_swapped} > guest_swap_pages {vm.guest_swap_pages}")
    _check_slots(v, snap)
    # Anon pages go to swap, file pages are evicted (the static layout).
    Fv = vm.workload.footprint_pages
    is_file = np.asarray(page_layout(vm.workload)[0], dtype=bool)[:Fv]
    if np.any((vs[:Fv] == SWAPPED) & is_file):
        _fail(f"VM {v}: file pages SWAPPED: {_first((vs[:Fv] == SWAPPED) & is_file)}")
    if np.any((vs[:Fv] == EVICTED) & ~is_file):
        _fail(f"VM {v}: anon pages EVICTED: {_first((vs[:Fv] == EVICTED) & ~is_file)}")
    # The stream region is only ever read (workload "Streaming file reads").
    first = vm.workload.stream_first_page
    dirty_stream = snap["vdirty"][v][first:Fv]
    if np.any(dirty_stream):
        _fail(f"VM {v}: stream pages dirty: {[first + u for u in _first(dirty_stream)]}")
    hs = snap["hstate"][v]
    res = vs == RESIDENT_V
    expect = {
        "balloon_pages": n_balloon,
        "guest_free_pages": n_free,
        "guest_used_pages": n_used,
        "guest_cache_pages": int(np.sum(res[:Fv] & is_file)),
        "guest_committed_pages": int(res.sum()) + n_swapped,
        "guest_swap_used": n_swapped,
        "host_resident_pages": int(np.sum(hs == RESIDENT)),
        "host_swapped_pages": int(np.sum(hs == HOST_SWAPPED)),
        "host_shared_pages": int(np.sum(hs == SHARED)),
    }
    _check_gauges(params, v, row, expect)
    _check_io_counts(params, v, row)


def _check_slots(v: int, snap: dict[str, np.ndarray]) -> None:
    """Guest swap slots (SEMANTICS.md §9): each SWAPPED page holds a distinct slot below
    the VM's next slot id; other pages hold none (-1, the mask)."""
    vs, sl = snap["vstate"][v], snap["vslot"][v]
    nxt = int(snap["guest_slot_next"][v])
    sw = vs == SWAPPED
    if np.any(sl[~sw] != -1):
        _fail(f"VM {v}: snapshot not masked: vslot of pages not SWAPPED at {_first(sl[~sw] != -1)}")
    held = sl[sw]
    if np.any((held < 0) | (held >= nxt)):
        _fail(
            f"VM {v}: guest swap slots {held[(held < 0) | (held >= nxt)][:8].tolist()} "
            f"outside [0, guest_slot_next={nxt})"
        )
    if np.unique(held).size != held.size:
        _fail(f"VM {v}: two SWAPPED pages share a guest swap slot")


def _check_io_counts(params: HostParams, v: int, row: np.ndarray) -> None:
    """I/O requests (SEMANTICS.md §9): clustering only merges pages, never drops one, so
    a tick with k pages moved has between ceil(k / window) and k requests (one per page
    when clustering is off); host I/Os are one per page."""

    def c(name: str) -> int:
        return int(row[VM_INDEX[name]])

    cl = 1 << params.guest_page_cluster
    ra = params.file_readahead_pages
    for ios, pages, window in (
        ("guest_swapin_ios", c("guest_swapins"), cl),
        ("guest_file_read_ios", c("guest_file_reads"), ra),
    ):
        n = c(ios)
        if not -(-pages // window) <= n <= pages or (window == 1 and n != pages):
            _fail(f"VM {v}: {ios} {n} not in [ceil({pages} / {window}), {pages}]")
    outs, wbs, w = c("guest_swapouts"), c("guest_writebacks"), c("guest_write_ios")
    lo = -(-outs // cl) + -(-wbs // ra)
    if not lo <= w <= outs + wbs or (cl == 1 and ra == 1 and w != outs + wbs):
        _fail(f"VM {v}: guest_write_ios {w} not in [{lo}, {outs + wbs}]")
    reads = c("host_swapins") + c("double_paging") + c("false_swap_reads")
    if c("host_swap_read_ios") != reads:
        _fail(f"VM {v}: host_swap_read_ios {c('host_swap_read_ios')} != {reads}")
    if c("host_swap_write_ios") != c("host_swapouts"):
        _fail(f"VM {v}: host_swap_write_ios {c('host_swap_write_ios')} != host_swapouts")


def _check_layout(vm: VmParams, v: int, snap: dict[str, np.ndarray]) -> None:
    """GPP layout: kernel at [0, K), padding NONE and UNBACKED at [M, P); valid codes."""
    M, K, Fv = vm.guest_pages, vm.kernel_reserved_pages, vm.workload.footprint_pages
    gs, hs, vs = snap["gstate"][v], snap["hstate"][v], snap["vstate"][v]
    if not np.all(gs[:K] == KERNEL):
        _fail(f"VM {v}: kernel GPPs not KERNEL at {_first(gs[:K] != KERNEL)}")
    bad = ~np.isin(gs[K:M], (USED, FREE, BALLOON))
    if bad.any():
        _fail(f"VM {v}: GPPs {[K + g for g in _first(bad)]} have bad gstate")
    if not (np.all(gs[M:] == NONE) and np.all(hs[M:] == UNBACKED)):
        _fail(f"VM {v}: padding GPPs (>= {M}) must be NONE and UNBACKED")
    if not np.all(np.isin(hs, _HOST_STATES)):
        _fail(f"VM {v}: bad hstate at {_first(~np.isin(hs, _HOST_STATES))}")
    if not np.all(np.isin(vs, (UNALLOCATED, RESIDENT_V, SWAPPED, EVICTED))):
        _fail(f"VM {v}: bad vstate at {_first(~np.isin(vs, (0, 1, 2, 3)))}")
    if np.any(vs[Fv:] != UNALLOCATED):
        _fail(f"VM {v}: padding virtual pages (>= {Fv}) must be UNALLOCATED")


def _check_mapping(vm: VmParams, v: int, snap: dict[str, np.ndarray], n_used: int) -> None:
    """Resident virtual pages <-> USED GPPs: a bijection."""
    M, K = vm.guest_pages, vm.kernel_reserved_pages
    gs, vs, vg = snap["gstate"][v], snap["vstate"][v], snap["vgpp"][v]
    res = vs == RESIDENT_V
    if np.any(vg[~res] != -1):
        _fail(f"VM {v}: non-resident virtual pages with vgpp != -1: {_first((vg != -1) & ~res)}")
    res_g = vg[res]
    if np.any((res_g < K) | (res_g >= M)):
        _fail(f"VM {v}: resident virtual pages point outside [{K}, {M}): {res_g.tolist()[:8]}")
    if np.unique(res_g).size != res_g.size:
        _fail(f"VM {v}: two resident virtual pages share a GPP")
    if np.any(gs[res_g] != USED):
        bad_u = np.flatnonzero(res)[gs[res_g] != USED][:8].tolist()
        _fail(f"VM {v}: resident virtual pages {bad_u} sit in GPPs that are not USED")
    if res_g.size != n_used:
        _fail(f"VM {v}: {res_g.size} resident virtual pages but {n_used} USED GPPs")


def _check_masks(v: int, snap: dict[str, np.ndarray]) -> None:
    """The snapshot's masks (SEMANTICS.md "Snapshot")."""
    gs, hs, vs = snap["gstate"][v], snap["hstate"][v], snap["vstate"][v]
    masks = (
        ("vdirty of unallocated pages", (vs == UNALLOCATED) & (snap["vdirty"][v] != 0)),
        ("vcontent of unallocated pages", (vs == UNALLOCATED) & (snap["vcontent"][v] != 0)),
        ("gcontent of UNBACKED GPPs", (hs == UNBACKED) & (snap["gcontent"][v] != 0)),
        ("glast of GPPs not USED", (gs != USED) & (snap["glast"][v] != -1)),
        ("gfree_since of GPPs not FREE", (gs != FREE) & (snap["gfree_since"][v] != -1)),
    )
    for what, bad in masks:
        if bad.any():
            _fail(f"VM {v}: snapshot not masked: {what} at {_first(bad)}")


def _check_host_view(params: HostParams, v: int, snap: dict[str, np.ndarray]) -> None:
    """Host view of the guest's GPPs."""
    gs, hs, gc = snap["gstate"][v], snap["hstate"][v], snap["gcontent"][v]
    bad = (gs == BALLOON) & (hs != UNBACKED)
    if bad.any():
        _fail(f"VM {v}: BALLOON GPPs {_first(bad)} are not UNBACKED")
    bad = (gs == USED) & (hs == UNBACKED)
    if bad.any():
        _fail(f"VM {v}: USED GPPs {_first(bad)} are UNBACKED")
    # Only the blind "random" host swaps kernel pages (they are touched every tick).
    kernel_states: tuple[int, ...] = (RESIDENT, SHARED)
    if params.host_policy == "random":
        kernel_states += (HOST_SWAPPED,)
    bad = (gs == KERNEL) & ~np.isin(hs, kernel_states)
    if bad.any():
        _fail(f"VM {v}: kernel GPPs {_first(bad)} are in host states outside {kernel_states}")
    bad = (hs == SHARED) & ((gc < 0) | (gc >= params.content_space))
    if bad.any():
        _fail(f"VM {v}: SHARED GPPs {_first(bad)} hold unmergeable content")


def _check_reporting(params: HostParams, v: int, snap: dict[str, np.ndarray]) -> None:
    """Free page reporting leaves no due block backed: every aligned block of
    ``report_block_pages`` GPPs that is entirely FREE for the delay is UNBACKED (a FREE GPP
    never regains backing, and the block was released when it became due)."""
    if not params.free_page_reporting:
        return
    n, M = params.report_block_pages, params.vms[v].guest_pages
    nb = M // n
    if nb == 0:
        return
    gs, hs = snap["gstate"][v][: nb * n], snap["hstate"][v][: nb * n]
    since = snap["gfree_since"][v][: nb * n]
    due = ((gs == FREE) & (since <= int(snap["tick"]) - params.report_delay_ticks)).reshape(nb, n)
    backed = (hs != UNBACKED).reshape(nb, n)
    bad = due.all(axis=1) & backed.any(axis=1)
    if bad.any():
        _fail(f"VM {v}: free page reporting left due blocks backed: {_first(bad)} (x {n} GPPs)")


def _check_gauges(params: HostParams, v: int, row: np.ndarray, expect: dict[str, int]) -> None:
    """Gauges agree with the state; clipped and bounded counters are in range."""
    for name, want in expect.items():
        got = int(row[VM_INDEX[name]])
        if got != want:
            _fail(f"VM {v}: gauge {name} = {got} but the snapshot gives {want}")
    target = int(row[VM_INDEX["balloon_target"]])
    if not 0 <= target <= params.vms[v].max_balloon_pages:
        _fail(f"VM {v}: balloon_target {target} outside the clip")
    if int(row[VM_INDEX["ws_sample_touched"]]) > params.ws_sample_pages:
        _fail(f"VM {v}: ws_sample_touched > ws_sample_pages")
    subs = int(row[VM_INDEX["guest_swapins"]]) + int(row[VM_INDEX["guest_file_reads"]])
    if subs > int(row[VM_INDEX["guest_major_faults"]]):
        _fail(f"VM {v}: guest_swapins + guest_file_reads {subs} > guest_major_faults")


def _check_host(
    params: HostParams, snap: dict[str, np.ndarray], host_counters: np.ndarray, host_oom: int
) -> None:
    """Sharing, host frames, host swap and the KSM cursor."""

    def hostc(name: str) -> int:
        return int(host_counters[HOST_INDEX[name]])

    hstate, gcontent = snap["hstate"], snap["gcontent"]
    n_shared = np.asarray(snap["n_shared"])
    # n_shared[c] == #SHARED GPPs with content c.
    shared = hstate == SHARED
    counted = np.bincount(gcontent[shared].astype(np.int64), minlength=params.content_space)
    if counted.shape != n_shared.shape or np.any(counted != n_shared):
        diff = np.flatnonzero(counted[: n_shared.size] != n_shared)[:8].tolist()
        _fail(f"n_shared disagrees with the SHARED GPPs at content ids {diff}")

    # Host frames: resident + shared frames + free == host_frames.
    shared_frames = int(np.sum(-(-n_shared // params.ksm_max_sharing)))
    resident = int(np.sum(hstate == RESIDENT))
    free = params.host_frames - resident - shared_frames
    if hostc("host_free_frames") != free:
        _fail(
            f"host_free_frames {hostc('host_free_frames')} != host_frames {params.host_frames} "
            f"- resident {resident} - shared_frames {shared_frames} = {free}"
        )
    if free < 0 and not host_oom:
        _fail(f"free frames {free} < 0 without host_oom")
    if hostc("shared_frames") != shared_frames:
        _fail(f"shared_frames counter {hostc('shared_frames')} != {shared_frames}")
    saved = int(n_shared.sum()) - shared_frames
    if hostc("sharing_saved_frames") != saved:
        _fail(f"sharing_saved_frames {hostc('sharing_saved_frames')} != {saved}")

    # Host swap: slots in use == #HOST_SWAPPED GPPs <= host_swap_pages.
    n_hswapped = int(np.sum(hstate == HOST_SWAPPED))
    for name, val in (
        ("snapshot host_swap_used", int(snap["host_swap_used"])),
        ("counter host_swap_used", hostc("host_swap_used")),
    ):
        if val != n_hswapped:
            _fail(f"{name} {val} != #HOST_SWAPPED GPPs {n_hswapped}")
    if n_hswapped > params.host_swap_pages:
        _fail(f"host swap used {n_hswapped} > host_swap_pages {params.host_swap_pages}")

    VP = params.num_vms * params.max_guest_pages
    if not 0 <= int(snap["ksm_cursor"]) < VP:
        _fail(f"ksm_cursor {int(snap['ksm_cursor'])} outside [0, {VP})")
    if int(snap["tick"]) < 0:
        _fail(f"tick {int(snap['tick'])} < 0")
