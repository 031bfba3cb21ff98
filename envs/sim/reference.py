"""The slow reference simulator: one page at a time, in plain Python.

This is the deliberate second copy of the dynamics (STYLE.md): it exists only so that tests
can compare the vectorized core against it with integer equality. It is written directly
from ``docs/model.md`` and ``SEMANTICS.md`` and shares no dynamics code with
``core.py``; each step below names the SEMANTICS.md section it implements, so a reader can
check it line by line. Speed is not a goal: state is Python lists, loops go page by page.

Decisions where SEMANTICS.md leaves room (the core must make the same ones):

- A reference is *valid* when ``0 <= vpage < live[v]`` (``live`` clipped to the VM's
  footprint); only valid references count in ``refs`` (per reference) and enter ``U``.
  ``guest_hits`` counts distinct pages, so ``refs`` is not hits + faults.
- Padding GPPs (``g >= guest_pages``) are ``gchanged = False`` and ``hlast = 0`` (besides
  ``NONE``, ``UNBACKED``, content 0 and the masked ``glast``/``gfree_since``); padding
  virtual pages are ``UNALLOCATED``, ``vgpp = -1``.
- ``gchanged`` is set only at reset, by a write (step 3) and by a placement (step 4), and
  cleared only by a KSM visit: host swap-out/swap-in, double paging, COW breaks, freeing,
  ballooning and free page reporting leave it as it was. ``hlast`` is likewise kept when
  the host backing is released.
- Evicting an anon page to guest swap leaves ``vdirty`` as it was (only a dirty *file* page
  is cleaned by writeback); a page placed from swap is dirty in any case.
- A written page that hits a ``HOST_SWAPPED`` GPP is one host swap-in, not a COW break.
- ``host_oom`` is ``free_frames < 0`` right after host reclaim (step 5), as SEMANTICS.md
  says; ``host_free_frames`` is measured at the end of the tick (after dedup and free page
  reporting, which can only free frames).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.sim.checks import check_int
from envs.sim.costs import loop_stall_frac
from envs.sim.counters import HOST_FIELDS, VM_EVENTS, VM_FIELDS, StepResult
from envs.sim.footprint import check_footprint
from envs.sim.hashing import derive_seeds, page_key_int, walk_params, ws_sample_index
from envs.sim.params import CONTENT_UNIQUE, CONTENT_ZERO, OOM_DEFLATE_PAGES, HostParams
from envs.sim.workload import Workload, WorkloadData, page_layout

# Guest view of a virtual page (SEMANTICS.md "State").
UNALLOCATED, RESIDENT_V, SWAPPED, EVICTED = 0, 1, 2, 3
# Guest view of a GPP.
NONE, KERNEL, USED, FREE, BALLOON = -1, 0, 1, 2, 3
# Host view of a GPP.
UNBACKED, RESIDENT, HOST_SWAPPED, SHARED = 0, 1, 2, 3


class ReferenceSimulator:
    """One env of the host/guest memory model, one page at a time.

    Args:
        params: the host and its VMs.
        seed: episode seed (``None``: fresh entropy); see ``hashing.derive_seeds``.
        data: the traces and demand series the workloads replay (as for the core).
        max_bytes: refuse params whose estimated memory exceeds this (None: half the
            physical memory); see ``footprint``.
    """

    def __init__(
        self,
        params: HostParams,
        seed: int | None = None,
        data: WorkloadData | None = None,
        max_bytes: int | None = None,
    ):
        if not isinstance(params, HostParams):
            raise ValueError(f"params must be a HostParams, got {type(params).__name__}")
        check_footprint(params, 1, max_bytes, reference=True)
        self.params = params
        self.V = params.num_vms
        self.P = params.max_guest_pages
        self.F = params.max_footprint_pages
        self.M = [vm.guest_pages for vm in params.vms]  # guest pages per VM
        # Kernel GPPs per VM: the image's pages, then its struct-page metadata (§13.2).
        self.K = [vm.kernel_reserved_pages for vm in params.vms]
        self.K_image = [vm.kernel_pages for vm in params.vms]
        self.Fv = [vm.workload.footprint_pages for vm in params.vms]  # footprint per VM
        # Virtual pages >= this are the stream region (file data, unique content).
        self.stream_first = [vm.workload.stream_first_page for vm in params.vms]
        self.is_file: list[list[bool]] = []
        self.is_shareable: list[list[bool]] = []
        for vm in params.vms:
            is_file, is_shareable = page_layout(vm.workload)
            self.is_file.append([bool(x) for x in is_file])
            self.is_shareable.append([bool(x) for x in is_shareable])
        # First-touch pool entry of each shareable page: the first page of its run of
        # shareable_copies shareable pages, counted in virtual-page order.
        self.pool_entry: list[list[int]] = []
        for v, vm in enumerate(params.vms):
            entry, rank, first = [], 0, 0
            for u, sh in enumerate(self.is_shareable[v]):
                if sh:
                    if rank % vm.workload.shareable_copies == 0:
                        first = u
                    rank += 1
                entry.append(first if sh else -1)
            self.pool_entry.append(entry)
        self.workload = Workload(params, num_envs=1, data=data)
        self.reset(seed)

    # ------------------------------------------------------------------ reset
    def reset(self, seed: int | None) -> None:
        """SEMANTICS.md "Reset (tick 0)"."""
        wl_seq, self.host_seed = derive_seeds(seed)
        self.workload.reset(np.array([0]), [wl_seq])
        p = self.params
        self.tick = 0
        self.host_swap_used = 0
        self.ksm_cursor = 0
        self.n_shared = [0] * p.content_space
        self.balloon = [0] * self.V
        self.guest_swap_used = [0] * self.V
        self.target = [0] * self.V  # clipped balloon target of the last step
        # Closed loop (SEMANTICS.md "Closed loop"): credit in ticks of the VM's time, and
        # the nominal batches issued so far.
        self.loop_credit = [0.0] * self.V
        self.loop_cursor = [0] * self.V
        # Guest swap slots (SEMANTICS.md §9): the slot of each SWAPPED virtual page, given
        # in swap-out order from a per-VM counter that only grows.
        self.vslot = [[-1] * f for f in self.Fv]
        self.slot_next = [0] * self.V
        # This tick's I/O requests per VM: sets of (aligned) cluster / window ids.
        self.io_sets: list[dict[str, set[int]]] = []
        # Per virtual page.
        self.vstate = [[UNALLOCATED] * f for f in self.Fv]
        self.vgpp = [[-1] * f for f in self.Fv]
        self.vdirty = [[False] * f for f in self.Fv]
        self.vcontent = [[CONTENT_ZERO] * f for f in self.Fv]
        # Per GPP.
        self.gstate, self.hstate, self.gvpage, self.gcontent = [], [], [], []
        self.glast, self.hlast, self.gchanged, self.gfree_since = [], [], [], []
        for v in range(self.V):
            m, k = self.M[v], self.K[v]
            self.gstate.append([KERNEL] * k + [FREE] * (m - k))
            self.hstate.append([RESIDENT] * k + [UNBACKED] * (m - k))
            self.gvpage.append([-1] * m)
            ki = self.K_image[v]
            self.gcontent.append([p.kernel_content(v, g) for g in range(ki)]
                                 + [CONTENT_UNIQUE] * (k - ki) + [0] * (m - k))  # fmt: skip
            self.glast.append([0] * m)
            self.hlast.append([0] * m)
            self.gchanged.append([True] * m)
            self.gfree_since.append([0] * m)

    # ------------------------------------------------------------------ derived
    def shared_frames(self) -> int:
        cap = self.params.ksm_max_sharing
        return sum(math.ceil(n / cap) for n in self.n_shared)

    def free_frames(self) -> int:
        resident = sum(h == RESIDENT for v in range(self.V) for h in self.hstate[v])
        return self.params.host_frames - resident - self.shared_frames()

    # ------------------------------------------------------------------ helpers
    def _leave_share(self, v: int, g: int) -> None:
        self.n_shared[self.gcontent[v][g]] -= 1

    def _release_backing(self, v: int, g: int) -> None:
        """Give a GPP's host backing back with no I/O (balloon, free page reporting)."""
        h = self.hstate[v][g]
        if h == HOST_SWAPPED:
            self.host_swap_used -= 1
        elif h == SHARED:
            self._leave_share(v, g)
        # RESIDENT: the frame is freed (frames are derived from the page states).
        self.hstate[v][g] = UNBACKED
        self.gcontent[v][g] = CONTENT_ZERO

    def _free_vpage(self, v: int, u: int, t: int) -> None:
        """Free an allocated virtual page (SEMANTICS.md §1; also the OOM kill)."""
        if self.vstate[v][u] == RESIDENT_V:
            g = self.vgpp[v][u]
            self.gstate[v][g] = FREE
            self.gfree_since[v][g] = t
            self.gvpage[v][g] = -1
        elif self.vstate[v][u] == SWAPPED:
            self.guest_swap_used[v] -= 1
        self.vstate[v][u] = UNALLOCATED
        self.vgpp[v][u] = -1
        self.vdirty[v][u] = False
        self.vcontent[v][u] = CONTENT_ZERO

    def _evictable(self, v: int, candidates: list[int]) -> list[int]:
        """Eviction rule: candidates in (glast, g) order, anon ones only while swap has room."""
        slots = self.params.vms[v].guest_swap_pages - self.guest_swap_used[v]
        out = []
        for g in sorted(candidates, key=lambda g: (self.glast[v][g], g)):
            u = self.gvpage[v][g]
            if not self.is_file[v][u]:
                if slots == 0:
                    continue  # guest swap full: this anon page cannot be evicted
                slots -= 1
            out.append(g)
        return out

    def _evict(self, v: int, g: int, t: int, ev: dict[str, int], touched: list[bool]) -> None:
        """Evict the virtual page in USED GPP ``g`` (SEMANTICS.md "Eviction rule")."""
        u = self.gvpage[v][g]
        if not self.is_file[v][u]:
            ev["guest_swapouts"] += 1
            self.guest_swap_used[v] += 1
            self.vstate[v][u] = SWAPPED
            self.vslot[v][u] = self.slot_next[v]
            self.slot_next[v] += 1
            self.io_sets[v]["swapout"].add(self.vslot[v][u] >> self.params.guest_page_cluster)
            wrote = True
        elif self.vdirty[v][u]:
            ev["guest_writebacks"] += 1
            self.io_sets[v]["writeback"].add(u // self.params.file_readahead_pages)
            self.vstate[v][u] = EVICTED
            self.vdirty[v][u] = False
            wrote = True
        else:
            ev["guest_drops"] += 1
            self.vstate[v][u] = EVICTED
            wrote = False
        if wrote:
            if self.hstate[v][g] == HOST_SWAPPED:
                ev["double_paging"] += 1
                self.host_swap_used -= 1
                self.hstate[v][g] = RESIDENT
            touched[g] = True
            self.hlast[v][g] = t
        self.gstate[v][g] = FREE
        self.gvpage[v][g] = -1
        self.gfree_since[v][g] = t
        self.vgpp[v][u] = -1

    def _deflate(self, v: int, n: int, t: int, ev: dict[str, int]) -> None:
        """The ``n`` lowest-index BALLOON GPPs become FREE (they are already UNBACKED)."""
        balloon_gpps = [g for g in range(self.M[v]) if self.gstate[v][g] == BALLOON][:n]
        for g in balloon_gpps:
            self.gstate[v][g] = FREE
            self.gfree_since[v][g] = t
        self.balloon[v] -= len(balloon_gpps)
        ev["balloon_deflated"] += len(balloon_gpps)

    def _place(
        self,
        v: int,
        u: int,
        g: int,
        t: int,
        writes: set[int],
        ev: dict[str, int],
        touched: list[bool],
    ) -> None:
        """Faulting virtual page ``u`` lands on FREE GPP ``g`` (SEMANTICS.md §4 "Placing")."""
        p = self.params
        h = self.hstate[v][g]
        if h == UNBACKED:
            ev["host_minor_faults"] += 1
        elif h == SHARED:
            ev["cow_breaks"] += 1
            self._leave_share(v, g)
        elif h == HOST_SWAPPED:
            ev["host_minor_faults" if p.false_read_preventer else "false_swap_reads"] += 1
            self.host_swap_used -= 1
        self.hstate[v][g] = RESIDENT

        prior = self.vstate[v][u]
        if prior == UNALLOCATED:
            ev["guest_minor_faults"] += 1
            if self.is_shareable[v][u]:
                self.vcontent[v][u] = p.pool_content(self.pool_entry[v][u],
                                                     p.vms[v].kernel_image)  # fmt: skip
            elif u >= self.stream_first[v]:  # a streamed file page: like no other page
                self.vcontent[v][u] = CONTENT_UNIQUE
            elif p.content_model == "image" and self.is_file[v][u]:  # file data from disk
                self.vcontent[v][u] = p.pool_content(u, p.vms[v].kernel_image)
            else:
                self.vcontent[v][u] = CONTENT_ZERO
        elif prior == SWAPPED:
            ev["guest_major_faults"] += 1
            ev["guest_swapins"] += 1
            self.guest_swap_used[v] -= 1
            self.io_sets[v]["swapin"].add(self.vslot[v][u] >> p.guest_page_cluster)
            self.vslot[v][u] = -1
        else:  # EVICTED
            ev["guest_major_faults"] += 1
            ev["guest_file_reads"] += 1
            self.io_sets[v]["fileread"].add(u // p.file_readahead_pages)
        self.vdirty[v][u] = u in writes or prior == SWAPPED
        if u in writes:
            self.vcontent[v][u] = CONTENT_UNIQUE
        self.vstate[v][u] = RESIDENT_V
        self.vgpp[v][u] = g
        self.gstate[v][g] = USED
        self.gvpage[v][g] = u
        self.gcontent[v][g] = self.vcontent[v][u]
        self.gchanged[v][g] = True
        self.glast[v][g] = t
        self.hlast[v][g] = t
        touched[g] = True

    # ------------------------------------------------------------------ step
    def step(self, targets: Sequence[int], demand: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Advance one tick. Returns ``(vm, host)`` counters in the order of ``counters.py``.

        The phases of a tick, in SEMANTICS.md's order ("One tick").

        Args:
            targets: one balloon target (pages) per VM; clipped as SEMANTICS.md §2 says.
            demand: a ``workload.Demand`` for this env (arrays with a leading axis of 1, or
                without it); ``None`` draws from this simulator's own workload.
        """
        loop = self.params.closed_loop
        if loop and demand is not None:
            raise ValueError("a closed-loop host draws its own demand (closed_loop=True)")
        if loop:  # SEMANTICS.md "Closed loop": a batch when a whole tick of credit is there
            advance = []
            for v in range(self.V):
                self.loop_credit[v] = self.loop_credit[v] + 1.0
                go = self.loop_credit[v] >= 1.0
                if go:
                    self.loop_credit[v] = self.loop_credit[v] - 1.0
                    self.loop_cursor[v] += 1
                advance.append(go)
            demand = self.workload.draw(np.array([advance], dtype=bool))
        elif demand is None:
            demand = self.workload.draw()
        live_arr = np.asarray(demand.live)
        refs_arr = np.asarray(demand.refs)
        writes_arr = np.asarray(demand.writes)
        if live_arr.ndim == 2:  # (1, V) batch of one
            live_arr, refs_arr, writes_arr = live_arr[0], refs_arr[0], writes_arr[0]

        self.tick += 1
        t = self.tick
        touched = [[False] * self.M[v] for v in range(self.V)]
        ev = [dict.fromkeys(VM_EVENTS, 0) for _ in range(self.V)]
        kinds = ("swapin", "swapout", "fileread", "writeback")
        self.io_sets = [{k: set() for k in kinds} for _ in range(self.V)]
        live = [min(int(live_arr[v]), self.Fv[v]) for v in range(self.V)]

        self._free_above_live(live, t)  # 1. Workload
        for v in range(self.V):
            self._balloon(v, int(targets[v]), t, ev[v], touched[v])  # 2. Balloon
        # 3. References, and 4. placement (per VM; the host side is derived state).
        for v in range(self.V):
            ref_count, written = self._count_refs(v, refs_arr[v], writes_arr[v], live[v])
            ev[v]["refs"] = sum(ref_count.values())
            faulting = self._references(v, ref_count, written, t, ev[v], touched[v])
            self._placement(v, faulting, ref_count, written, t, ev[v], touched[v])
        self._host_reclaim(t, ev, touched)  # 5. Host reclaim
        host_oom = self.free_frames() < 0
        if self.params.ksm_pages_per_tick > 0:
            self._dedup()  # 6. Deduplication
        if self.params.free_page_reporting:
            self._report_free(t)  # 7. Free page reporting
        self._io_counts(ev)  # 8. Accounting: I/O requests (SEMANTICS.md §9), gauges
        vm, host = self._accounting(t, ev, host_oom)
        if loop:  # the tick's stall is time the VM's threads did not run
            raw = loop_stall_frac(self.params, np.asarray(vm)[None])[0]
            for v in range(self.V):
                self.loop_credit[v] = self.loop_credit[v] - float(raw[v])
        return vm, host

    def _io_counts(self, ev: list[dict[str, int]]) -> None:
        """SEMANTICS.md §9: one guest I/O per distinct cluster / window of the tick; the
        host reads and writes one page per I/O."""
        for v in range(self.V):
            sets, e = self.io_sets[v], ev[v]
            e["guest_swapin_ios"] = len(sets["swapin"])
            e["guest_file_read_ios"] = len(sets["fileread"])
            e["guest_write_ios"] = len(sets["swapout"]) + len(sets["writeback"])
            e["host_swap_read_ios"] = e["host_swapins"] + e["double_paging"] + e["false_swap_reads"]
            e["host_swap_write_ios"] = e["host_swapouts"]

    def _free_above_live(self, live: list[int], t: int) -> None:
        """SEMANTICS.md §1: free every allocated virtual page at or above the live footprint."""
        for v in range(self.V):
            for u in range(live[v], self.Fv[v]):
                if self.vstate[v][u] != UNALLOCATED:
                    self._free_vpage(v, u, t)

    def _balloon(self, v: int, target: int, t: int, ev: dict[str, int], touched: list[bool]):
        """SEMANTICS.md §2 for VM ``v``: inflate or deflate towards the clipped target."""
        p = self.params
        target = min(max(target, 0), p.vms[v].max_balloon_pages)
        self.target[v] = target
        n = min(abs(target - self.balloon[v]), p.balloon_rate_pages)
        if target > self.balloon[v]:
            free = [g for g in range(self.M[v]) if self.gstate[v][g] == FREE]
            taken = free[:n]
            if len(taken) < n:
                used = [g for g in range(self.M[v]) if self.gstate[v][g] == USED]
                victims = self._evictable(v, used)[: n - len(taken)]
                for g in victims:
                    self._evict(v, g, t, ev, touched)
                taken += victims
            ev["balloon_stalls"] += n - len(taken)
            for g in taken:
                self._release_backing(v, g)
                self.gstate[v][g] = BALLOON
            self.balloon[v] += len(taken)
            ev["balloon_inflated"] += len(taken)
        elif target < self.balloon[v]:
            self._deflate(v, n, t, ev)

    @staticmethod
    def _count_refs(
        v: int, refs: np.ndarray, writes: np.ndarray, live: int
    ) -> tuple[Counter[int], set[int]]:
        """Per valid referenced page its count, and the set of written pages."""
        ref_count: Counter[int] = Counter()
        written: set[int] = set()
        for r, w in zip(refs.tolist(), writes.tolist(), strict=True):
            if 0 <= r < live:
                ref_count[r] += 1
                if w:
                    written.add(r)
        return ref_count, written

    def _references(
        self,
        v: int,
        ref_count: Counter[int],
        written: set[int],
        t: int,
        ev: dict[str, int],
        touched: list[bool],
    ) -> list[int]:
        """SEMANTICS.md §3 for VM ``v``: touch kernel pages, serve hits; return the
        faulting pages in ascending order."""
        for g in range(self.K[v]):  # kernel pages: referenced every tick, never written
            if self.hstate[v][g] == HOST_SWAPPED:  # swapped by a blind ("random") host
                ev["host_swapins"] += 1
                self.host_swap_used -= 1
                self.hstate[v][g] = RESIDENT
            self.glast[v][g] = t
            self.hlast[v][g] = t
            touched[g] = True
        faulting = []
        for u in sorted(ref_count):
            if self.vstate[v][u] != RESIDENT_V:
                faulting.append(u)
                continue
            g = self.vgpp[v][u]
            ev["guest_hits"] += 1
            if self.hstate[v][g] == HOST_SWAPPED:
                ev["host_swapins"] += 1
                self.host_swap_used -= 1
                self.hstate[v][g] = RESIDENT
            elif self.hstate[v][g] == SHARED and u in written:
                ev["cow_breaks"] += 1
                self._leave_share(v, g)
                self.hstate[v][g] = RESIDENT
            self.glast[v][g] = t
            self.hlast[v][g] = t
            touched[g] = True
            if u in written:
                self.vdirty[v][u] = True
                self.vcontent[v][u] = CONTENT_UNIQUE
                self.gcontent[v][g] = CONTENT_UNIQUE
                self.gchanged[v][g] = True
        return faulting

    def _placement(
        self,
        v: int,
        faulting: list[int],
        ref_count: Counter[int],
        written: set[int],
        t: int,
        ev: dict[str, int],
        touched: list[bool],
    ) -> None:
        """SEMANTICS.md §4 for VM ``v``: make room, then place the faulting pages."""
        free_list, evicted = self._make_room(v, len(faulting), set(ref_count), t, ev, touched)
        slots = free_list + evicted
        for u, g in zip(faulting, slots, strict=False):  # overflow: fewer slots
            self._place(v, u, g, t, written, ev, touched)
        for u in faulting[len(slots) :]:
            ev["guest_major_faults"] += ref_count[u]  # unplaced: one major per ref

    def _make_room(
        self, v: int, need: int, in_u: set[int], t: int, ev: dict[str, int], touched: list[bool]
    ) -> tuple[list[int], list[int]]:
        """SEMANTICS.md §4 steps 1-4: ``(free list, evicted GPPs)`` for ``need`` faults,
        after guest OOM handling (deflate or kill) where the swap limit binds."""
        p = self.params
        while True:
            free_list = [g for g in range(self.M[v]) if self.gstate[v][g] == FREE]
            if need <= len(free_list):
                return free_list, []
            e = need - len(free_list)
            cands = [
                g
                for g in range(self.M[v])
                if self.gstate[v][g] == USED and self.gvpage[v][g] not in in_u
            ]
            evictable = self._evictable(v, cands)
            if len(evictable) >= e:
                for g in evictable[:e]:
                    self._evict(v, g, t, ev, touched)
                return free_list, evictable[:e]
            n_anon = sum(not self.is_file[v][self.gvpage[v][g]] for g in cands)
            swap_slots = p.vms[v].guest_swap_pages - self.guest_swap_used[v]
            if n_anon > swap_slots:  # the swap limit binds: guest OOM
                if p.deflate_on_oom and self.balloon[v] > 0:
                    steps = -(-(e - len(evictable)) // OOM_DEFLATE_PAGES)  # ceil
                    d = min(self.balloon[v], OOM_DEFLATE_PAGES * steps)
                    self._deflate(v, d, t, ev)
                    continue
                ev["guest_oom_kills"] += 1
                for u in range(self.Fv[v]):
                    if (
                        self.vstate[v][u] != UNALLOCATED
                        and not self.is_file[v][u]
                        and u not in in_u
                    ):
                        self._free_vpage(v, u, t)
                continue
            # Overflow: evict every candidate and place what fits.
            for g in evictable:
                self._evict(v, g, t, ev, touched)
            return free_list, evictable

    def _host_reclaim(self, t: int, ev: list[dict[str, int]], touched: list[list[bool]]):
        """SEMANTICS.md §5: swap out untouched resident GPPs while free frames are short."""
        p = self.params
        deficit = p.host_min_free - self.free_frames()
        if deficit <= 0:
            return
        blind = p.host_policy == "random"  # touched pages (kernel included) are eligible
        eligible = [
            (v, g)
            for v in range(self.V)
            for g in range(self.M[v])
            if self.hstate[v][g] == RESIDENT and (blind or not touched[v][g])
        ]
        if p.host_policy in ("random", "random-unaccessed"):
            n_flat = self.V * self.P
            a, stride = walk_params(self.host_seed, t, n_flat)
            elig = set(eligible)
            order = []
            for j in range(n_flat):
                i = (a + j * stride) % n_flat
                vg = (i // self.P, i % self.P)
                if vg in elig:
                    order.append(vg)
        else:  # lru
            order = sorted(
                eligible, key=lambda vg: (self.hlast[vg[0]][vg[1]], vg[0] * self.P + vg[1])
            )
        n = min(deficit, len(order), p.host_swap_pages - self.host_swap_used)
        for v, g in order[:n]:
            ev[v]["host_swapouts"] += 1
            if self.gstate[v][g] == FREE:
                ev[v]["silent_swap_writes"] += 1
            self.hstate[v][g] = HOST_SWAPPED
            self.host_swap_used += 1

    def _dedup(self) -> None:
        """SEMANTICS.md §6: the KSM scanner visits the next resident GPPs from its cursor."""
        p = self.params
        n_flat = self.V * self.P
        visited = 0
        last = -1
        for j in range(n_flat):
            if visited == p.ksm_pages_per_tick:
                break
            i = (self.ksm_cursor + j) % n_flat
            v, g = divmod(i, self.P)
            if g >= self.M[v] or self.hstate[v][g] != RESIDENT:
                continue
            visited += 1
            last = i
            if self.gchanged[v][g]:
                self.gchanged[v][g] = False
            elif self.gcontent[v][g] >= 0:
                self.hstate[v][g] = SHARED
                self.n_shared[self.gcontent[v][g]] += 1
        if last >= 0:
            self.ksm_cursor = (last + 1) % n_flat

    def _report_free(self, t: int) -> None:
        """SEMANTICS.md §7: release the backing of every aligned block of
        ``report_block_pages`` GPPs whose pages are all free for ``report_delay_ticks``."""
        delay, n = self.params.report_delay_ticks, self.params.report_block_pages
        for v in range(self.V):
            gs, since, hs = self.gstate[v], self.gfree_since[v], self.hstate[v]

            def free_for_delay(g: int, gs=gs, since=since) -> bool:
                return gs[g] == FREE and since[g] <= t - delay

            # Only a block holding a backed GPP free for the delay has anything to release.
            blocks = sorted(
                {g // n for g in range(self.M[v]) if hs[g] != UNBACKED and free_for_delay(g)}
            )
            for k in blocks:
                block = range(k * n, (k + 1) * n)
                if block.stop <= self.M[v] and all(free_for_delay(g) for g in block):
                    for g in block:  # a whole aligned block, all of it free: due
                        if hs[g] != UNBACKED:
                            self._release_backing(v, g)

    def _ws_sample_touched(self, v: int, t: int) -> int:
        """ESX working-set sample of VM ``v``: fixed for a period, touched since it began."""
        p = self.params
        start = (t - 1) // p.ws_sample_period_ticks * p.ws_sample_period_ticks + 1
        sample = 0
        for j in range(p.ws_sample_pages):
            key = page_key_int(self.host_seed, start, ws_sample_index(v, j))
            sample += self.hlast[v][key % self.M[v]] >= start
        return sample

    def _accounting(
        self, t: int, ev: list[dict[str, int]], host_oom: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """SEMANTICS.md §8: the tick's events and the end-of-tick gauges."""
        vm_out = np.zeros((self.V, len(VM_FIELDS)), dtype=np.int64)
        for v in range(self.V):
            gs, hs = self.gstate[v], self.hstate[v]
            resident_pages = [u for u in range(self.Fv[v]) if self.vstate[v][u] == RESIDENT_V]
            row = dict(ev[v])
            row.update(
                balloon_pages=self.balloon[v],
                balloon_target=self.target[v],
                guest_free_pages=gs.count(FREE),
                guest_used_pages=gs.count(USED),
                guest_cache_pages=sum(self.is_file[v][u] for u in resident_pages),
                guest_committed_pages=len(resident_pages) + self.vstate[v].count(SWAPPED),
                guest_swap_used=self.guest_swap_used[v],
                host_resident_pages=hs.count(RESIDENT),
                host_swapped_pages=hs.count(HOST_SWAPPED),
                host_shared_pages=hs.count(SHARED),
                ws_sample_touched=self._ws_sample_touched(v, t),
            )
            vm_out[v] = [row[name] for name in VM_FIELDS]
        shared = self.shared_frames()
        host_row = dict(
            host_free_frames=self.free_frames(),
            host_swap_used=self.host_swap_used,
            shared_frames=shared,
            sharing_saved_frames=sum(self.n_shared) - shared,
            host_oom=int(host_oom),
        )
        host_out = np.array([host_row[name] for name in HOST_FIELDS], dtype=np.int64)
        return vm_out, host_out

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, np.ndarray]:
        """SEMANTICS.md "Snapshot": fresh arrays, masked for comparison, padding as at reset."""
        V, P, F = self.V, self.P, self.F
        s = {
            "vstate": np.zeros((V, F), np.int64),
            "vgpp": np.full((V, F), -1, np.int64),
            "vdirty": np.zeros((V, F), bool),
            "vcontent": np.zeros((V, F), np.int64),
            "gstate": np.full((V, P), NONE, np.int64),
            "hstate": np.full((V, P), UNBACKED, np.int64),
            "gcontent": np.zeros((V, P), np.int64),
            "glast": np.full((V, P), -1, np.int64),
            "hlast": np.zeros((V, P), np.int64),
            "gchanged": np.zeros((V, P), bool),
            "gfree_since": np.full((V, P), -1, np.int64),
            "balloon": np.array(self.balloon, np.int64),
            "guest_swap_used": np.array(self.guest_swap_used, np.int64),
            "vslot": np.full((V, F), -1, np.int64),
            "guest_slot_next": np.array(self.slot_next, np.int64),
            "tick": np.array(self.tick, np.int64),
            "host_swap_used": np.array(self.host_swap_used, np.int64),
            "ksm_cursor": np.array(self.ksm_cursor, np.int64),
            "n_shared": np.array(self.n_shared, np.int64),
        }
        if self.params.closed_loop:
            s["loop_credit"] = np.array(self.loop_credit, np.float64)
            s["loop_cursor"] = np.array(self.loop_cursor, np.int64)
        for v in range(V):
            for u in range(self.Fv[v]):
                s["vstate"][v, u] = self.vstate[v][u]
                s["vgpp"][v, u] = self.vgpp[v][u]
                if self.vstate[v][u] != UNALLOCATED:
                    s["vdirty"][v, u] = self.vdirty[v][u]
                    s["vcontent"][v, u] = self.vcontent[v][u]
                if self.vstate[v][u] == SWAPPED:
                    s["vslot"][v, u] = self.vslot[v][u]
            for g in range(self.M[v]):
                s["gstate"][v, g] = self.gstate[v][g]
                s["hstate"][v, g] = self.hstate[v][g]
                if self.hstate[v][g] != UNBACKED:
                    s["gcontent"][v, g] = self.gcontent[v][g]
                if self.gstate[v][g] == USED:
                    s["glast"][v, g] = self.glast[v][g]
                s["hlast"][v, g] = self.hlast[v][g]
                s["gchanged"][v, g] = self.gchanged[v][g]
                if self.gstate[v][g] == FREE:
                    s["gfree_since"][v, g] = self.gfree_since[v][g]
        return s


class ReferenceBatch:
    """``B`` independent reference simulators behind the vectorized core's API.

    Args:
        params: the host and its VMs (the same for every env).
        num_envs: ``B``.
        data, max_bytes: as for ``ReferenceSimulator`` (the limit applies to the batch).
    """

    def __init__(
        self,
        params: HostParams,
        num_envs: int,
        data: WorkloadData | None = None,
        max_bytes: int | None = None,
    ):
        if not isinstance(params, HostParams):
            raise ValueError(f"params must be a HostParams, got {type(params).__name__}")
        num_envs = check_int("num_envs", num_envs, 1)
        check_footprint(params, num_envs, max_bytes, reference=True)
        self.params = params
        self.num_envs = num_envs
        self.sims = [ReferenceSimulator(params, None, data, max_bytes) for _ in range(num_envs)]

    def reset(self, seeds: Sequence[int | None], env_mask: np.ndarray | None = None) -> None:
        """Reset env ``i`` with ``seeds[i]`` where ``env_mask[i]`` (every env if ``None``)."""
        for i, sim in enumerate(self.sims):
            if env_mask is None or bool(env_mask[i]):
                sim.reset(seeds[i])

    def step(self, balloon_targets: np.ndarray) -> StepResult:
        """One tick of every env; ``balloon_targets`` is (B, V) pages."""
        targets = np.asarray(balloon_targets)
        vms, hosts = [], []
        for i, sim in enumerate(self.sims):
            vm, host = sim.step([int(x) for x in targets[i]])
            vms.append(vm)
            hosts.append(host)
        return StepResult(vm=np.stack(vms), host=np.stack(hosts))

    def snapshot(self, env: int) -> dict[str, np.ndarray]:
        return self.sims[env].snapshot()
