"""The invariants of docs/model.md §8, checked on one env's snapshot and counters.

``check_invariants`` works on any snapshot laid out as SEMANTICS.md "Snapshot" says, so the
same checker runs after every tick of the reference simulator and of the vectorized core.
It is a checker, not dynamics: numpy-vectorized, and it raises ``AssertionError`` naming the
invariant, the VM and the offending pages.
"""

from __future__ import annotations

import numpy as np

from envs.sim.counters import HOST_INDEX, VM_FIELDS, VM_INDEX
from envs.sim.params import HostParams
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
    V, P, F = params.num_vms, params.max_guest_pages, params.max_footprint_pages
    vm_counters = np.asarray(vm_counters)
    host_counters = np.asarray(host_counters)
    if vm_counters.shape != (V, len(VM_FIELDS)):
        _fail(f"vm_counters shape {vm_counters.shape} != {(V, len(VM_FIELDS))}")
    if host_counters.shape != (len(HOST_INDEX),):
        _fail(f"host_counters shape {host_counters.shape} != {(len(HOST_INDEX),)}")
    for name, shape in (
        ("vstate", (V, F)), ("vgpp", (V, F)), ("vdirty", (V, F)), ("vcontent", (V, F)),
        ("gstate", (V, P)), ("hstate", (V, P)), ("gcontent", (V, P)), ("glast", (V, P)),
        ("hlast", (V, P)), ("gchanged", (V, P)), ("gfree_since", (V, P)),
        ("balloon", (V,)), ("guest_swap_used", (V,)), ("tick", ()), ("host_swap_used", ()),
        ("ksm_cursor", ()), ("n_shared", (params.content_space,)),
    ):  # fmt: skip
        if np.shape(snap[name]) != shape:
            _fail(f"snapshot[{name!r}] shape {np.shape(snap[name])} != {shape}")

    def vmc(name: str) -> np.ndarray:
        return vm_counters[:, VM_INDEX[name]]

    def hostc(name: str) -> int:
        return int(host_counters[HOST_INDEX[name]])

    host_oom = hostc("host_oom")
    if host_oom not in (0, 1):
        _fail(f"host_oom must be 0 or 1, got {host_oom}")

    # Counters are non-negative (host_free_frames may be negative only when host_oom).
    neg = np.argwhere(vm_counters < 0)
    if neg.size:
        v, k = neg[0]
        _fail(f"VM {v}: counter {VM_FIELDS[k]} = {vm_counters[v, k]} < 0")
    for name, idx in HOST_INDEX.items():
        val = int(host_counters[idx])
        if val < 0 and not (name == "host_free_frames" and host_oom):
            _fail(f"host counter {name} = {val} < 0 (host_oom={host_oom})")

    gstate, hstate, gcontent = snap["gstate"], snap["hstate"], snap["gcontent"]
    vstate, vgpp = snap["vstate"], snap["vgpp"]
    n_shared = np.asarray(snap["n_shared"])

    for v, vm in enumerate(params.vms):
        M, K, Fv = vm.guest_pages, vm.kernel_pages, vm.workload.footprint_pages
        gs, hs, vs, vg = gstate[v], hstate[v], vstate[v], vgpp[v]

        # GPP layout: kernel at [0, K), padding NONE and UNBACKED at [M, P).
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

        # kernel + used + free + balloon == guest_pages.
        n_used, n_free, n_balloon = (int(np.sum(gs == s)) for s in (USED, FREE, BALLOON))
        if K + n_used + n_free + n_balloon != M:
            _fail(
                f"VM {v}: kernel {K} + used {n_used} + free {n_free} + balloon {n_balloon} "
                f"!= guest_pages {M}"
            )
        if int(snap["balloon"][v]) != n_balloon:
            _fail(f"VM {v}: balloon {int(snap['balloon'][v])} != #BALLOON GPPs {n_balloon}")

        # Resident virtual pages <-> USED GPPs: a bijection.
        res = vs == RESIDENT_V
        if np.any(vg[~res] != -1):
            _fail(
                f"VM {v}: non-resident virtual pages with vgpp != -1: {_first((vg != -1) & ~res)}"
            )
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

        # The snapshot's masks (SEMANTICS.md "Snapshot").
        masks = (
            ("vdirty of unallocated pages", (vs == UNALLOCATED) & (snap["vdirty"][v] != 0)),
            ("vcontent of unallocated pages", (vs == UNALLOCATED) & (snap["vcontent"][v] != 0)),
            ("gcontent of UNBACKED GPPs", (hs == UNBACKED) & (gcontent[v] != 0)),
            ("glast of GPPs not USED", (gs != USED) & (snap["glast"][v] != -1)),
            ("gfree_since of GPPs not FREE", (gs != FREE) & (snap["gfree_since"][v] != -1)),
        )
        for what, bad in masks:
            if bad.any():
                _fail(f"VM {v}: snapshot not masked: {what} at {_first(bad)}")

        # Host view of the guest's GPPs.
        bad = (gs == BALLOON) & (hs != UNBACKED)
        if bad.any():
            _fail(f"VM {v}: BALLOON GPPs {_first(bad)} are not UNBACKED")
        bad = (gs == USED) & (hs == UNBACKED)
        if bad.any():
            _fail(f"VM {v}: USED GPPs {_first(bad)} are UNBACKED")
        bad = (gs == KERNEL) & ~np.isin(hs, (RESIDENT, SHARED))
        if bad.any():
            _fail(f"VM {v}: kernel GPPs {_first(bad)} are neither RESIDENT nor SHARED")
        bad = (hs == SHARED) & ((gcontent[v] < 0) | (gcontent[v] >= params.content_space))
        if bad.any():
            _fail(f"VM {v}: SHARED GPPs {_first(bad)} hold unmergeable content")

        # Guest swap: used slots == #SWAPPED virtual pages <= guest_swap_pages.
        n_swapped = int(np.sum(vs == SWAPPED))
        if int(snap["guest_swap_used"][v]) != n_swapped:
            _fail(
                f"VM {v}: guest_swap_used {int(snap['guest_swap_used'][v])} != #SWAPPED {n_swapped}"
            )
        if n_swapped > vm.guest_swap_pages:
            _fail(f"VM {v}: guest swap used {n_swapped} > guest_swap_pages {vm.guest_swap_pages}")

        # Anon pages go to swap, file pages are evicted (the static layout).
        is_file, _ = page_layout(vm.workload)
        is_file = np.asarray(is_file, dtype=bool)[:Fv]
        if np.any((vs[:Fv] == SWAPPED) & is_file):
            _fail(f"VM {v}: file pages SWAPPED: {_first((vs[:Fv] == SWAPPED) & is_file)}")
        if np.any((vs[:Fv] == EVICTED) & ~is_file):
            _fail(f"VM {v}: anon pages EVICTED: {_first((vs[:Fv] == EVICTED) & ~is_file)}")

        # Gauges agree with the state.
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
        for name, want in expect.items():
            got = int(vmc(name)[v])
            if got != want:
                _fail(f"VM {v}: gauge {name} = {got} but the snapshot gives {want}")
        if not 0 <= int(vmc("balloon_target")[v]) <= vm.max_balloon_pages:
            _fail(f"VM {v}: balloon_target {int(vmc('balloon_target')[v])} outside the clip")
        if int(vmc("ws_sample_touched")[v]) > params.ws_sample_pages:
            _fail(f"VM {v}: ws_sample_touched > ws_sample_pages")
        subs = int(vmc("guest_swapins")[v]) + int(vmc("guest_file_reads")[v])
        if subs > int(vmc("guest_major_faults")[v]):
            _fail(f"VM {v}: guest_swapins + guest_file_reads {subs} > guest_major_faults")

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

    if not 0 <= int(snap["ksm_cursor"]) < V * P:
        _fail(f"ksm_cursor {int(snap['ksm_cursor'])} outside [0, {V * P})")
    if int(snap["tick"]) < 0:
        _fail(f"tick {int(snap['tick'])} < 0")
