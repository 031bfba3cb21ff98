"""The vectorized simulator: B independent hosts × V VMs × pages, in numpy.

Implements docs/model.md with the orders and ties fixed in SEMANTICS.md (beside this
file). The reference twin (``reference.py``) implements the same page by page; the
differential tests compare the two with exact integer equality.

Layout: guest-level arrays are ``(N, F)`` (virtual pages) and ``(N, P)`` (GPPs) with
``N = B * V`` rows (row ``r`` is VM ``r % V`` of env ``r // V``), stored flat so that a
GPP's flat index ``fg = r * P + g`` is also ``b * (V * P) + i`` with ``i`` the host's flat
index of SEMANTICS.md. Per-row counts of every page state are maintained incrementally
so that no step needs a full pass to report gauges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from envs.sim import hashing
from envs.sim.checks import check_int
from envs.sim.costs import loop_stall_frac
from envs.sim.counters import HOST_FIELDS, HOST_INDEX, VM_FIELDS, VM_INDEX, StepResult
from envs.sim.footprint import check_footprint
from envs.sim.params import CONTENT_UNIQUE, OOM_DEFLATE_PAGES, HostParams
from envs.sim.view import PrivilegedView, read_only
from envs.sim.workload import Workload, WorkloadData, first_touch_content, page_layout

# Guest view of a virtual page.
UNALLOCATED, RESIDENT_V, SWAPPED, EVICTED = 0, 1, 2, 3
# Guest view of a GPP.
NONE, KERNEL, USED, FREE, BALLOON = -1, 0, 1, 2, 3
# Host view of a GPP.
UNBACKED, RESIDENT, HOST_SWAPPED, SHARED = 0, 1, 2, 3


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, e)`` for each pair (vectorized)."""
    lengths = np.maximum(ends - starts, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return offsets + np.arange(total, dtype=np.int64)


def _pick(mask: np.ndarray, *arrays: np.ndarray):
    """``a[mask]`` for each of ``arrays`` (one array: the array), through the indices of
    ``mask``: a boolean index is several times slower on a large, mixed mask (~4 ns per
    element at half True against ~0.7 for ``flatnonzero`` and ``take``)."""
    idx = np.flatnonzero(mask)
    if len(arrays) == 1:
        return arrays[0][idx]
    return tuple(a[idx] for a in arrays)


def _clear_marks(mark: np.ndarray, idx: np.ndarray) -> None:
    """Reset a scratch bitmap that is all False but at ``idx``: by a fill where ``idx``
    is more than a sixteenth of it (a memset is ~10x cheaper per byte than a scatter)."""
    if idx.size * 16 > mark.size:
        mark.fill(False)
    else:
        mark[idx] = False


def _group_rank(groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal, sorted ``groups``."""
    n = groups.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.ones(n, dtype=bool)
    start[1:] = groups[1:] != groups[:-1]
    idx = np.arange(n, dtype=np.int64)
    first = np.maximum.accumulate(np.where(start, idx, 0))
    return idx - first


@dataclass(frozen=True)
class _TickRefs:
    """This tick's distinct referenced virtual pages (SEMANTICS.md §3), for placement."""

    ufv: np.ndarray  # (u,) flat virtual pages referenced, ascending (row, vpage)
    urow: np.ndarray  # (u,) their rows
    uw: np.ndarray  # (u,) written this tick
    hit: np.ndarray  # (u,) resident (a hit), else faulting
    fv_all: np.ndarray  # (n,) flat virtual page of every valid reference
    hfg: np.ndarray  # (h,) flat GPPs of the hits


@dataclass(frozen=True)
class _Window:
    """Ragged windows over the LRU logs of ``rows``: flat arrays, segment per row."""

    rows: np.ndarray  # (S,) rows scanned
    rid: np.ndarray  # (n,) index into rows of each entry
    starts: np.ndarray  # (S,) segment starts
    lens: np.ndarray  # (S,) segment lengths
    j: np.ndarray  # (n,) position within the row's window
    fg: np.ndarray  # (n,) flat GPP of each entry
    live: np.ndarray  # (n,) entry is the live one of a USED GPP
    evictable: np.ndarray  # (n,) live and evictable under the swap limit
    count: np.ndarray  # (S,) evictable entries in the window
    covers: np.ndarray  # (S,) the window reaches the end of the log
    swap_binds: np.ndarray  # (S,) more live anon entries in the window than free swap
    ev_cum: np.ndarray  # (n + 1,) evictable entries before each entry (0 first)


class Simulator:
    """B independent overcommitted hosts, stepped together.

    Args:
        params: the host and its VMs (shared by every env of the batch).
        num_envs: ``B``.
        data: the traces and demand series the workloads replay
            (``envs.data.load_workload_data(params)``); required when any VM replays one.
        max_bytes: refuse (``ValueError``) params whose estimated memory
            (``footprint.estimate_bytes``) exceeds this; None: half the physical memory.

    Call :meth:`reset` with one seed per env before stepping.
    """

    def __init__(
        self,
        params: HostParams,
        num_envs: int,
        data: WorkloadData | None = None,
        max_bytes: int | None = None,
    ) -> None:
        if not isinstance(params, HostParams):
            raise ValueError(f"params must be a HostParams, got {type(params).__name__}")
        num_envs = check_int("num_envs", num_envs, 1)
        check_footprint(params, num_envs, max_bytes)
        self.params = params
        self.num_envs = B = num_envs
        self.num_vms = V = params.num_vms
        self.P = params.max_guest_pages
        self.F = params.max_footprint_pages
        self.N = B * V
        self.C = params.content_space
        P = self.P
        self._p_shift = P.bit_length() - 1 if P & (P - 1) == 0 else None
        nb = -(-P // 64)  # 64-GPP blocks per row (_first_k)
        self._nb_shift = nb.bit_length() - 1 if nb & (nb - 1) == 0 else None
        self.workload = Workload(params, B, data)
        self._init_static_tables()
        self._init_state_arrays()

    def _init_static_tables(self) -> None:
        """Per-VM constants: sizes, the virtual-page layout, kernel contents, indices."""
        params = self.params
        B, V, P, F = self.num_envs, self.num_vms, self.P, self.F
        vms = params.vms
        self._M = np.array([v.guest_pages for v in vms], dtype=np.int64)
        # Kernel GPPs [0, K): the kernel image plus its per-page metadata (§13.2).
        self._K = np.array([v.kernel_reserved_pages for v in vms], dtype=np.int64)
        self._maxb = np.array([v.max_balloon_pages for v in vms], dtype=np.int64)
        self._gswap_cap = np.array([v.guest_swap_pages for v in vms], dtype=np.int64)
        # Static virtual-page layout per VM, padded to F.
        is_file = np.zeros((V, F), dtype=bool)
        first_content = np.zeros((V, F), dtype=np.int32)
        for v, vm in enumerate(vms):
            f, s = page_layout(vm.workload)
            n = vm.workload.footprint_pages
            is_file[v, :n] = f
            first_content[v, :n] = first_touch_content(params, v)
        self._is_file = is_file
        # The same flags per flat virtual page of the batch (one gather instead of two).
        self._vfile = np.tile(is_file.ravel(), B)  # (N * F,)
        self._first_content = first_content
        kcontent = np.zeros((V, P), dtype=np.int32)
        for v in range(V):
            k = vms[v].kernel_pages
            kcontent[v, :k] = params.kernel_content(v, 0) + np.arange(k)
            kcontent[v, k : int(self._K[v])] = CONTENT_UNIQUE  # this guest's struct pages
        self._kernel_content = kcontent
        g = np.arange(P)
        self._real = g[None, :] < self._M[:, None]  # (V, P)
        self._is_kernel = g[None, :] < self._K[:, None]
        kr = np.nonzero(self._is_kernel)
        self._kernel_vg = kr[0] * P + kr[1]  # flat (v, g) of kernel GPPs within one env
        self._kernel_fg = (np.arange(B)[:, None] * (V * P) + self._kernel_vg[None, :]).ravel()
        self._maxb_row = np.tile(self._maxb, B)  # (N,) largest balloon of each row
        self._ws_index = hashing.ws_sample_indices(V, params.ws_sample_pages)  # (V, ns)

    def _init_state_arrays(self) -> None:
        """The state (SEMANTICS.md "State"), its per-row counts, LRU logs and scratch."""
        B, P, F, N = self.num_envs, self.P, self.F, self.N
        self.tick = np.zeros(B, dtype=np.int64)  # (B,)
        self.host_seed = np.zeros(B, dtype=np.uint64)  # (B,)
        self.vstate = np.zeros(N * F, dtype=np.int8)  # (N, F)
        self.vgpp = np.full(N * F, -1, dtype=np.int32)  # (N, F)
        self.vdirty = np.zeros(N * F, dtype=bool)  # (N, F)
        self.vcontent = np.zeros(N * F, dtype=np.int32)  # (N, F)
        self.gstate = np.zeros(N * P, dtype=np.int8)  # (N, P)
        self.hstate = np.zeros(N * P, dtype=np.int8)  # (N, P)
        self.gvpage = np.full(N * P, -1, dtype=np.int32)  # (N, P)
        self.gcontent = np.zeros(N * P, dtype=np.int32)  # (N, P)
        # Tick of the last reference of a USED (or KERNEL) GPP; elsewhere never a tick
        # of the LRU logs (0 from reset, -1 once a GPP leaves USED), so that an entry is
        # live exactly where its tick equals its GPP's glast.
        self.glast = np.zeros(N * P, dtype=np.int32)  # (N, P)
        self.hlast = np.zeros(N * P, dtype=np.int32)  # (N, P)
        self.gchanged = np.zeros(N * P, dtype=bool)  # (N, P)
        self.gfree_since = np.zeros(N * P, dtype=np.int32)  # (N, P)
        self.balloon = np.zeros(N, dtype=np.int64)  # (N,)
        # Guest swap slot of each SWAPPED virtual page, numbered in swap-out order per row
        # (SEMANTICS.md §9); only meaningful where vstate is SWAPPED.
        self.vslot = np.full(N * F, -1, dtype=np.int64)  # (N, F)
        self.gslot_next = np.zeros(N, dtype=np.int64)  # (N,) next guest swap slot id
        self.btarget = np.zeros(N, dtype=np.int64)  # (N,)
        self.gswap_used = np.zeros(N, dtype=np.int64)  # (N,)
        self.live_prev = np.zeros(N, dtype=np.int64)  # (N,)
        self.host_swap_used = np.zeros(B, dtype=np.int64)  # (B,)
        # Closed loop (SEMANTICS.md "Closed loop"): each VM's credit, in ticks of its time.
        self.loop_credit = np.zeros(N, dtype=np.float64)  # (N,)
        self.ksm_cursor = np.zeros(B, dtype=np.int64)  # (B,)
        self.n_shared = np.zeros(B * self.C, dtype=np.int64)  # (B, C)
        self.shared_frames = np.zeros(B, dtype=np.int64)  # (B,)
        # Per-row counts of each state (gauges without full passes).
        self.gcount = np.zeros((N, 4), dtype=np.int64)  # KERNEL USED FREE BALLOON
        self.hcount = np.zeros((N, 4), dtype=np.int64)  # UNBACKED RESIDENT HOST_SWAPPED SHARED
        self.vcount = np.zeros((N, 4), dtype=np.int64)  # by vstate
        self.cache_count = np.zeros(N, dtype=np.int64)  # resident file pages
        # LRU log per row: (GPP, tick) entries in (tick, GPP) order (see _lru_window).
        self.CAP = max(64, 4 * P)
        self.log_g = np.zeros(N * self.CAP, dtype=np.int32)  # (N, CAP) GPP of each entry
        self.log_t = np.zeros(N * self.CAP, dtype=np.int32)  # (N, CAP) tick of each entry
        self.log_head = np.zeros(N, dtype=np.int64)  # (N,) first entry that may be live
        self.log_tail = np.zeros(N, dtype=np.int64)  # (N,) one past the last entry
        # GPPs that became FREE, one array per past tick (free page reporting).
        self._free_queue: list[np.ndarray] = []
        self._became_free: list[np.ndarray] = []
        # Scratch (per tick).
        self._newref = np.zeros(N * P, dtype=bool)
        self._umark = np.zeros(N * F, dtype=bool)  # all False between uses
        self._ref_base = np.zeros(0, dtype=np.int64)
        self._ufv = np.zeros(0, dtype=np.int64)
        self._ev = np.zeros((N, len(VM_FIELDS)), dtype=np.int64)
        # This tick's I/O keys (SEMANTICS.md §9), collected only when clustering is on.
        prm = self.params
        self._cluster_io = prm.guest_page_cluster > 0 or prm.file_readahead_pages > 1
        self._io_keys: dict[str, list[np.ndarray]] = {
            "swapin": [], "swapout": [], "fileread": [], "writeback": []
        }  # fmt: skip
        self._seeded = np.zeros(B, dtype=bool)
        self._t_same: int | None = None  # set by step()
        self._glast_dead = True  # glast is -1 on GPPs that left USED (see glast)

    def __setstate__(self, state: dict) -> None:
        """Unpickle, rebuilding what a pickle of an older version lacks."""
        self.__dict__.update(state)
        if "_vfile" not in state:
            self._vfile = np.tile(self._is_file.ravel(), self.num_envs)
        self.__dict__.setdefault("_t_same", None)
        if "_nb_shift" not in state:
            nb = -(-self.P // 64)
            self._nb_shift = nb.bit_length() - 1 if nb & (nb - 1) == 0 else None
        if "_glast_dead" not in state:  # older: glast kept its value past USED
            gs = self.gstate
            self.glast[(gs != USED) & (gs != KERNEL)] = -1
        self._glast_dead = True
        self.__dict__.pop("_wmark", None)
        if "loop_credit" not in state:  # older: no closed loop (SEMANTICS.md §10)
            self.loop_credit = np.zeros(self.N, dtype=np.float64)
        wl = self.workload
        if not hasattr(wl, "vm_ticks"):  # older: one workload tick per env
            wl.vm_ticks = np.repeat(wl.ticks[:, None], self.num_vms, axis=1)
            wl._live_last = np.zeros((self.num_envs, self.num_vms), np.int64)

    # ------------------------------------------------------------------ reset
    def reset(self, seeds: Sequence[int | None], env_mask: np.ndarray | None = None) -> None:
        """(Re)start the envs selected by ``env_mask`` (all if None) with ``seeds[b]``."""
        B, V, P, F = self.num_envs, self.num_vms, self.P, self.F
        if len(seeds) != B:
            raise ValueError(f"seeds must have one entry per env ({B}), got {len(seeds)}")
        if env_mask is None:
            env_mask = np.ones(B, dtype=bool)
        env_mask = np.asarray(env_mask, dtype=bool)
        if env_mask.shape != (B,):
            raise ValueError(f"env_mask must have shape ({B},), got {env_mask.shape}")
        envs = np.nonzero(env_mask)[0]
        if envs.size == 0:
            return
        wl_seeds = []
        for b in envs:
            s = seeds[b]
            if s is not None:
                s = check_int(f"seeds[{b}]", s, 0)
            wl, host = hashing.derive_seeds(s)
            wl_seeds.append(wl)
            self.host_seed[b] = host
        self.workload.reset(envs, wl_seeds)
        self.tick[envs] = 0
        rows = (envs[:, None] * V + np.arange(V)[None, :]).ravel()
        self.loop_credit[rows] = 0.0
        vsl = (rows[:, None] * F + np.arange(F)[None, :]).ravel()
        gsl = (rows[:, None] * P + np.arange(P)[None, :]).ravel()
        self.vstate[vsl] = UNALLOCATED
        self.vgpp[vsl] = -1
        self.vdirty[vsl] = False
        self.vcontent[vsl] = 0
        self.vslot[vsl] = -1
        n_env = envs.size
        real = np.tile(self._real, (n_env, 1)).ravel()
        kern = np.tile(self._is_kernel, (n_env, 1)).ravel()
        self.gstate[gsl] = np.where(kern, KERNEL, np.where(real, FREE, NONE))
        self.hstate[gsl] = np.where(kern, RESIDENT, UNBACKED)
        self.gvpage[gsl] = -1
        self.gcontent[gsl] = np.tile(self._kernel_content, (n_env, 1)).ravel()
        self.glast[gsl] = 0
        self.hlast[gsl] = 0
        self.gchanged[gsl] = real
        self.gfree_since[gsl] = 0
        self.balloon[rows] = 0
        self.btarget[rows] = 0
        self.gswap_used[rows] = 0
        self.gslot_next[rows] = 0
        self.live_prev[rows] = 0
        self.log_head[rows] = 0
        self.log_tail[rows] = 0
        drop = np.zeros(B * V * P, dtype=bool)
        drop[gsl] = True
        self._free_queue = [q[~drop[q]] for q in self._free_queue]
        self.host_swap_used[envs] = 0
        self.ksm_cursor[envs] = 0
        nsh = self.n_shared.reshape(B, self.C)
        nsh[envs] = 0
        self.shared_frames[envs] = 0
        vm_of = rows % V
        self.gcount[rows] = 0
        self.gcount[rows, KERNEL] = self._K[vm_of]
        self.gcount[rows, FREE] = self._M[vm_of] - self._K[vm_of]
        self.hcount[rows] = 0
        self.hcount[rows, UNBACKED] = self._M[vm_of] - self._K[vm_of]
        self.hcount[rows, RESIDENT] = self._K[vm_of]
        self.vcount[rows] = 0
        self.vcount[rows, UNALLOCATED] = F  # padding pages count as unallocated
        self.cache_count[rows] = 0
        self._seeded[envs] = True

    # ------------------------------------------------------------ small helpers
    def _rows_of(self, fg: np.ndarray) -> np.ndarray:
        """The rows of these flat GPPs, ``fg // P`` (a shift where P is a power of two:
        numpy's integer division is ~5x slower)."""
        return fg >> self._p_shift if self._p_shift is not None else fg // self.P

    def _t_of_g(self, fg: np.ndarray) -> np.ndarray | int:
        """The tick of these GPPs' envs (one int when every env is at the same tick)."""
        if self._t_same is not None:
            return self._t_same
        return self.tick[fg // (self.num_vms * self.P)]

    def _t_of_rows(self, rows: np.ndarray, t_row: np.ndarray) -> np.ndarray | int:
        """The tick of these rows' envs (one int when every env is at the same tick)."""
        return t_row[rows] if self._t_same is None else self._t_same

    def _count_move(
        self, counts: np.ndarray, rows: np.ndarray | None, old, new: int, per_row=None
    ) -> None:
        """Move one count per element from state ``old`` (one state or one per element)
        to state ``new`` in its row. ``per_row``: the elements per row where the caller
        knows them (``rows`` is then only needed for a per-element ``old``)."""
        N, k = counts.shape
        if per_row is None:
            if rows.size == 0:
                return
            per_row = np.bincount(rows, minlength=N)
        if isinstance(old, int):
            counts[:, old] -= per_row
        else:
            counts -= np.bincount(rows * k + old, minlength=N * k).reshape(N, k)
        counts[:, new] += per_row

    def _set_g(
        self,
        fg: np.ndarray,
        new: int,
        old: np.ndarray | int | None = None,
        rows=None,
        per_row=None,
    ) -> None:
        """Set the guest state of these GPPs. ``old``: their current states where the
        caller knows them (one state for all, or one each), which saves a gather; ``rows``
        their rows, likewise; ``per_row`` (with one ``old`` state): their count per row,
        which saves the rows."""
        if new == FREE and self.params.free_page_reporting:
            self._became_free.append(fg)
        if old is None:
            old = self.gstate[fg]
        if per_row is None and rows is None:
            rows = self._rows_of(fg)
        self._count_move(self.gcount, rows, old, new, per_row)
        self.gstate[fg] = new

    def _set_h(
        self, fg: np.ndarray, new: int, old: np.ndarray | int | None = None, rows=None
    ) -> None:
        if old is None:
            old = self.hstate[fg]
        self._count_move(self.hcount, self._rows_of(fg) if rows is None else rows, old, new)
        self.hstate[fg] = new

    def _set_v(
        self, fv: np.ndarray, new: int, old: np.ndarray | int | None = None, rows=None
    ) -> None:
        if fv.size == 0:
            return
        if rows is None:
            rows = fv // self.F
        if old is None:
            old = self.vstate[fv]
        self._count_move(self.vcount, rows, old, new)
        # Resident file pages (the page cache): a page enters or leaves RESIDENT_V.
        if isinstance(old, int):
            moved = self._vfile[fv] if (old == RESIDENT_V) != (new == RESIDENT_V) else None
        else:
            moved = self._vfile[fv] & ((old == RESIDENT_V) != (new == RESIDENT_V))
        if moved is not None and moved.any():
            d = np.bincount(rows[moved], minlength=self.N)
            if new == RESIDENT_V:
                self.cache_count += d
            else:
                self.cache_count -= d
        self.vstate[fv] = new

    def _add_rows(self, col: str, rows: np.ndarray, weights=None) -> None:
        if rows.size == 0:
            return
        if weights is None:
            self._ev[:, VM_INDEX[col]] += np.bincount(rows, minlength=self.N)
        else:
            self._ev[:, VM_INDEX[col]] += np.bincount(
                rows, weights=weights, minlength=self.N
            ).astype(np.int64)

    def _share_delta(self, fg: np.ndarray, delta: int) -> None:
        """Join (+1) or leave (-1) the shared frames of these GPPs' contents."""
        if fg.size == 0:
            return
        b = fg // (self.num_vms * self.P)
        key = np.sort(b * self.C + self.gcontent[fg].astype(np.int64))
        # Distinct keys and their counts by a sort and a diff: cheaper than np.unique.
        first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        uk, cnt = key[first], np.diff(np.append(first, key.size))
        cap = self.params.ksm_max_sharing
        n0 = self.n_shared[uk]
        n1 = n0 + delta * cnt
        self.n_shared[uk] = n1
        dframes = -(-n1 // cap) - (-(-n0 // cap))
        np.add.at(self.shared_frames, uk // self.C, dframes)

    def _release(self, fg: np.ndarray, rows=None, per_row=None) -> None:
        """Release host backing with no I/O (balloon, free page reporting). ``rows`` and
        ``per_row``: the GPPs' rows and their count per row, where the caller has them."""
        if fg.size == 0:
            return
        N = self.N
        hs = self.hstate[fg]
        if rows is None:
            rows = self._rows_of(fg)
        # Per-row counts by host state (one bincount): the swap and sharing updates only
        # where some GPP is in those states.
        hc = np.bincount(rows * 4 + hs, minlength=4 * N).reshape(N, 4)
        if hc[:, HOST_SWAPPED].any():
            self.host_swap_used -= hc[:, HOST_SWAPPED].reshape(self.num_envs, -1).sum(axis=1)
        if hc[:, SHARED].any():
            self._share_delta(fg[hs == SHARED], -1)
        self.hcount -= hc
        self.hcount[:, UNBACKED] += hc.sum(axis=1) if per_row is None else per_row
        self.hstate[fg] = UNBACKED
        self.gcontent[fg] = 0

    def _first_k(self, state_arr: np.ndarray, code: int, rows: np.ndarray, k: np.ndarray):
        """Flat GPP indices of the ``k[j]`` lowest GPPs in state ``code`` of ``rows[j]``,
        ascending within each row. Works on 64-GPP blocks so that only the blocks holding
        the wanted GPPs are expanded."""
        P = self.P
        if rows.size == 0:
            return np.zeros(0, dtype=np.int64)
        if rows.size == self.N and (rows[1:] > rows[:-1]).all():  # every row, in order
            m = (state_arr == code).reshape(self.N, P)  # no gather of the rows
        else:
            m = state_arr.reshape(self.N, P)[rows] == code
        S, nb = rows.size, -(-P // 64)
        if nb * 64 != P:
            m = np.concatenate([m, np.zeros((S, nb * 64 - P), dtype=bool)], axis=1)
        # Set bits per 64-GPP block: pack to words and count bits (one byte per 8 GPPs).
        bc = np.bitwise_count(np.packbits(m, axis=1).view(np.uint64))
        cum = np.cumsum(bc, axis=1, dtype=np.int64)  # through each block
        before = cum - bc
        flat = np.flatnonzero(before < np.minimum(cum, k[:, None]))  # blocks with wanted GPPs
        sub = m.reshape(S * nb, 64)[flat]  # (blocks, 64): a copy
        si = flat >> self._nb_shift if self._nb_shift is not None else flat // nb
        # Every wanted GPP of a block is taken but in each row's last block (at most one
        # per row), which is cut at the row's k-th GPP.
        kf = k[si]
        cut = np.flatnonzero(cum.ravel()[flat] > kf)
        if cut.size:
            part = sub[cut]
            rank = before.ravel()[flat[cut]][:, None] + np.cumsum(part, axis=1, dtype=np.int32)
            sub[cut] = part & (rank <= kf[cut][:, None])
        sel = np.flatnonzero(sub)
        # First GPP of each block: row r's block i is flat block s * nb + i.
        base = (rows * P - np.arange(S, dtype=np.int64) * (nb * 64))[si] + (flat << 6)
        return base[sel >> 6] + (sel & 63)

    def _free_vpages(self, fv: np.ndarray) -> None:
        """Free allocated virtual pages (workload shrink, OOM kill)."""
        if fv.size == 0:
            return
        vs = self.vstate[fv]
        res = fv[vs == RESIDENT_V]
        if res.size:
            rows = res // self.F
            fg = rows * self.P + self.vgpp[res]
            self._set_g(fg, FREE)
            self.gvpage[fg] = -1
            self.glast[fg] = -1
            self.gfree_since[fg] = self._t_of_g(fg)
        sw = fv[vs == SWAPPED]
        if sw.size:
            np.subtract.at(self.gswap_used, sw // self.F, 1)
        self._set_v(fv, UNALLOCATED)
        self.vgpp[fv] = -1
        self.vdirty[fv] = False
        self.vcontent[fv] = 0

    # --------------------------------------------------------------- eviction
    def _lru_window(self, rows: np.ndarray, e: np.ndarray, whole: bool = False) -> _Window:
        """The oldest entries of each row's LRU log, enough for ``e[j]`` evictions.

        Each USED GPP has exactly one live log entry (its tick equals the GPP's
        ``glast``), appended when it was last referenced; entries are appended in (tick,
        GPP) order, so the live entries are the used pages in the eviction order (glast,
        g). A page referenced in this tick has no live entry until the end of step 4,
        so it is not a candidate (SEMANTICS.md). Windows are ragged: each row scans about
        as many entries as its own ``e`` needs, scaled by its log's share of dead entries.
        """
        P, V, F, cap = self.P, self.num_vms, self.F, self.CAP
        head, avail = self.log_head[rows], self.log_tail[rows] - self.log_head[rows]
        sfree = self._gswap_cap[rows % V] - self.gswap_used[rows]
        # A row has one live entry per used page: where the free swap covers them all,
        # the limit cannot bind and the anon entries need not be counted.
        can_bind = bool((sfree < self.gcount[rows, USED]).any())
        if whole:
            w = avail.copy()
        else:
            dens = avail / np.maximum(self.gcount[rows, USED], 1)  # entries per live page
            w = np.minimum(avail, np.ceil((e + 32) * dens * 1.25).astype(np.int64))
        row_log, row_g, row_v = rows * cap + head, rows * P, rows * F
        while True:
            n = int(w.sum())
            starts = np.cumsum(w) - w
            ends = starts + w
            rid = np.repeat(np.arange(rows.size), w)
            # Row s's window is log entries row_log[s] .. row_log[s] + w[s] - 1.
            li = np.arange(n, dtype=np.int64) + np.repeat(row_log - starts, w)
            fg = row_g[rid] + self.log_g[li]
            live = self.glast[fg] == self.log_t[li]  # glast is -1 but on USED GPPs
            binds = np.zeros(rows.size, dtype=bool)
            evictable = live  # where the swap limit binds nowhere: every live entry
            if can_bind:
                # A dead entry's GPP may hold no page (gvpage -1): its index below is then
                # the previous virtual page (or -1, the last), valid and masked by ``live``.
                anon = live & ~self._vfile[row_v[rid] + self.gvpage[fg]]
                # Segment sums and ranks through one cumulative sum each (segments are
                # laid end to end): cheaper than bincount with weights.
                ca0 = np.concatenate(([0], np.cumsum(anon, dtype=np.int64)))
                binds = ca0[ends] - ca0[starts] > sfree
                if binds.any():
                    anon_rank = ca0[1:] - ca0[starts][rid]
                    evictable = live & (~anon | (anon_rank <= sfree[rid]))
            ce = np.concatenate(([0], np.cumsum(evictable, dtype=np.int64)))
            count = ce[ends] - ce[starts]
            covers = w >= avail
            short = (count < e) & ~covers
            if not short.any():
                j = li - row_log[rid]  # position within the row's window
                return _Window(
                    rows, rid, starts, w, j, fg, live, evictable, count, covers, binds, ce
                )
            w = np.where(short, np.minimum(avail, 2 * w + 64), w)

    def _evict_first(self, e: np.ndarray, win: _Window) -> np.ndarray:
        """Evict the first ``e[j]`` evictable pages of each row's window, then move every
        row's log head past the dead entries at its front (dead entries never revive).
        Returns the evicted GPPs in eviction order, grouped by row."""
        if win.fg.size == 0:
            return np.zeros(0, dtype=np.int64)
        ce = win.ev_cum
        rank = ce[1:] - ce[win.starts][win.rid]  # rank within the row
        chosen = win.evictable & (rank <= e[win.rid])
        out = self._evict_pages(_pick(chosen, win.fg))
        still = np.flatnonzero(win.live & ~chosen)
        first = win.lens.copy()  # no live entry left in the window: skip all of it
        if still.size:
            r_of = win.rid[still]  # ascending: each row's first live entry starts a run
            at = np.flatnonzero(np.concatenate(([True], r_of[1:] != r_of[:-1])))
            first[r_of[at]] = win.j[still[at]]
        self.log_head[win.rows] += first
        return out

    def _evict_pages(self, fg: np.ndarray) -> np.ndarray:
        """Evict the pages in these used GPPs (SEMANTICS.md, eviction rule)."""
        if fg.size == 0:
            return fg
        F, V, N = self.F, self.num_vms, self.N
        rows = self._rows_of(fg)
        u = self.gvpage[fg].astype(np.int64)
        fv = rows * F + u
        filev = self._vfile[fv]
        dirty = self.vdirty[fv]
        anon = ~filev
        write = anon | dirty
        # Every per-row count of the evictions from one bincount: kind 0 anon (swap-out),
        # 1 dirty file (writeback), 2 clean file (drop).
        kind = filev.view(np.int8) * (2 - dirty.view(np.int8))
        cnt = np.bincount(rows * 3 + kind, minlength=3 * N).reshape(N, 3)
        n_anon, n_file, n_all = cnt[:, 0], cnt[:, 1] + cnt[:, 2], cnt.sum(axis=1)
        ev = self._ev
        ev[:, VM_INDEX["guest_swapouts"]] += n_anon
        ev[:, VM_INDEX["guest_writebacks"]] += cnt[:, 1]
        ev[:, VM_INDEX["guest_drops"]] += cnt[:, 2]
        dp = fg[write & (self.hstate[fg] == HOST_SWAPPED)]
        if dp.size:
            self._add_rows("double_paging", dp // self.P)
            np.subtract.at(self.host_swap_used, dp // (V * self.P), 1)
            self._set_h(dp, RESIDENT, HOST_SWAPPED)
        wfg = fg if write.all() else _pick(write, fg)
        self.hlast[wfg] = self._t_of_g(wfg)
        if n_anon.any():
            self.gswap_used += n_anon
            ai = np.flatnonzero(anon)
            self._assign_slots(rows[ai], fv[ai], n_anon)
        if self._cluster_io:
            wb = filev & dirty
            self._io_keys["writeback"].append(self._file_keys(rows[wb], u[wb]))
        # vstate: anon pages to SWAPPED, file pages to EVICTED (= SWAPPED + 1), in one
        # scatter; file pages leave the page cache; file pages are clean on disk (anon
        # pages keep their flag).
        vc = self.vcount
        vc[:, RESIDENT_V] -= n_all
        vc[:, SWAPPED] += n_anon
        vc[:, EVICTED] += n_file
        self.cache_count -= n_file
        self.vstate[fv] = filev.view(np.int8) + np.int8(SWAPPED)
        self.vdirty[fv] = dirty & anon
        self.vgpp[fv] = -1
        self._set_g(fg, FREE, USED, per_row=n_all)
        self.gvpage[fg] = -1
        self.glast[fg] = -1
        self.gfree_since[fg] = self._t_of_g(fg)
        return fg

    def _assign_slots(self, arow: np.ndarray, afv: np.ndarray, per_row=None) -> None:
        """Give the anon pages just swapped out (in eviction order) the next guest swap
        slots of their rows, in that order (SEMANTICS.md §9: swap-out order = disk order).
        ``per_row``: their count per row, where the caller has it."""
        if arow.size < 2 or (arow[1:] >= arow[:-1]).all():  # grouped by row already
            rank = _group_rank(arow)
        else:
            order = np.argsort(arow, kind="stable")
            rank = np.empty(arow.size, dtype=np.int64)
            rank[order] = _group_rank(arow[order])
        slot = self.gslot_next[arow] + rank
        self.vslot[afv] = slot
        self.gslot_next += np.bincount(arow, minlength=self.N) if per_row is None else per_row
        if self._cluster_io:
            self._io_keys["swapout"].append(self._slot_keys(arow, slot))

    def _slot_keys(self, rows: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """One key per (row, aligned cluster of 2**guest_page_cluster slots)."""
        return (rows.astype(np.int64) << 40) | (slots >> self.params.guest_page_cluster)

    def _file_keys(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One key per (row, aligned window of file_readahead_pages virtual pages)."""
        return rows.astype(np.int64) * self.F + u // self.params.file_readahead_pages

    def _distinct_per_row(self, kind: str, shift: int | None) -> np.ndarray:
        """(N,) number of distinct keys of this tick's ``kind`` I/Os in each row."""
        parts = self._io_keys[kind]
        self._io_keys[kind] = []
        if not parts:
            return np.zeros(self.N, dtype=np.int64)
        keys = np.sort(np.concatenate(parts))  # a sort and a diff: cheaper than np.unique
        if keys.size > 1:
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        rows = keys >> shift if shift is not None else keys // self.F
        return np.bincount(rows, minlength=self.N).astype(np.int64)

    def _io_counts(self) -> None:
        """SEMANTICS.md §9: the tick's I/O requests after readahead and clustering."""
        ev = self._ev

        def c(name: str) -> np.ndarray:
            return ev[:, VM_INDEX[name]]

        if self._cluster_io:
            ev[:, VM_INDEX["guest_swapin_ios"]] = self._distinct_per_row("swapin", 40)
            ev[:, VM_INDEX["guest_file_read_ios"]] = self._distinct_per_row("fileread", None)
            ev[:, VM_INDEX["guest_write_ios"]] = self._distinct_per_row(
                "swapout", 40
            ) + self._distinct_per_row("writeback", None)
        else:  # one I/O per page (v0): the counts are the page counts
            ev[:, VM_INDEX["guest_swapin_ios"]] = c("guest_swapins")
            ev[:, VM_INDEX["guest_file_read_ios"]] = c("guest_file_reads")
            ev[:, VM_INDEX["guest_write_ios"]] = c("guest_swapouts") + c("guest_writebacks")
        ev[:, VM_INDEX["host_swap_read_ios"]] = (
            c("host_swapins") + c("double_paging") + c("false_swap_reads")
        )
        ev[:, VM_INDEX["host_swap_write_ios"]] = c("host_swapouts")

    def _log_append(self, fg: np.ndarray) -> None:
        """Append this tick's referenced GPPs to the LRU logs in (row, g) order."""
        P, cap = self.P, self.CAP
        self._newref[fg] = True
        nf = np.flatnonzero(self._newref)
        _clear_marks(self._newref, nf)
        rows = self._rows_of(nf)
        cnt = np.bincount(rows, minlength=self.N)
        over = np.nonzero(self.log_tail + cnt > cap)[0]
        if over.size:
            self._log_compact(over)
        # Row r's entries go to [tail_r, tail_r + cnt_r), in order.
        g = nf - rows * P
        if nf.size >= 32 * self.N:
            # Many entries per row: one slice copy per row (contiguous source and
            # destination) is cheaper than a scatter of every entry.
            dst = (np.arange(self.N, dtype=np.int64) * cap + self.log_tail).tolist()
            ends = np.cumsum(cnt).tolist()
            t_env = self.tick.tolist()
            V = self.num_vms
            lo = 0
            for r, (d, hi) in enumerate(zip(dst, ends, strict=True)):
                if hi > lo:
                    self.log_g[d : d + hi - lo] = g[lo:hi]
                    self.log_t[d : d + hi - lo] = t_env[r // V]
                lo = hi
        else:
            start = np.arange(self.N, dtype=np.int64) * cap + self.log_tail - (np.cumsum(cnt) - cnt)
            li = np.arange(nf.size, dtype=np.int64) + np.repeat(start, cnt)
            self.log_g[li] = g
            if self._t_same is not None:
                self.log_t[li] = self._t_same
            else:
                self.log_t[li] = np.repeat(np.repeat(self.tick, self.num_vms), cnt)
        self.log_tail += cnt

    def _log_compact(self, rows: np.ndarray) -> None:
        """Drop the entries that are no longer live from these rows' logs (keeps order).

        Done in chunks of rows so that the temporaries stay in cache."""
        cap, P, N = self.CAP, self.P, self.N
        lg, lt = self.log_g.reshape(N, cap), self.log_t.reshape(N, cap)
        col = np.arange(cap, dtype=np.int32)
        for i in range(0, rows.size, 16):
            rr = rows[i : i + 16]
            g, st = lg[rr], lt[rr]
            idx = g + (rr.astype(np.int32) * P)[:, None]
            live = (
                (col >= self.log_head[rr, None])
                & (col < self.log_tail[rr, None])
                & (self.glast.take(idx) == st)
            )
            n = live.sum(axis=1)
            # Each live entry moves to its rank among its row's live entries (g and st
            # are copies, so the in-place writes read nothing they overwrite).
            li = np.flatnonzero(live)
            dest = np.arange(li.size, dtype=np.int64) + np.repeat(rr * cap - (np.cumsum(n) - n), n)
            self.log_g[dest] = g.ravel()[li]
            self.log_t[dest] = st.ravel()[li]
            self.log_head[rr] = 0
            self.log_tail[rr] = n

    def _deflate(self, rows: np.ndarray, n: np.ndarray, counter: str) -> None:
        """Deflate the balloons of ``rows`` (distinct) by ``n`` pages (fewer where a
        balloon is smaller): its lowest BALLOON GPPs become FREE."""
        k = np.minimum(n, self.gcount[rows, BALLOON])
        fg = self._first_k(self.gstate, BALLOON, rows, k)
        if fg.size == 0:
            return
        per_row = np.zeros(self.N, dtype=np.int64)  # known: no bincount of the GPPs' rows
        per_row[rows] = k
        self._set_g(fg, FREE, BALLOON, per_row=per_row)
        self.gfree_since[fg] = self._t_of_g(fg)
        self.balloon -= per_row
        self._ev[:, VM_INDEX[counter]] += per_row

    # ------------------------------------------------------------------- step
    def step(self, balloon_targets: np.ndarray) -> StepResult:
        """Advance every env by one tick with these per-VM balloon targets (B, V) ints.

        The phases of a tick, in SEMANTICS.md's order ("One tick").
        """
        targets = self._check_targets(balloon_targets)
        prm = self.params
        self._ev[:] = 0
        self.tick += 1
        t_row = np.repeat(self.tick, self.num_vms)  # (N,)
        t0 = int(self.tick[0])
        # Every env at the same tick (no partial reset since): scalar ticks, cheaper writes.
        self._t_same = t0 if (self.tick == t0).all() else None
        if prm.closed_loop:  # SEMANTICS.md "Closed loop"
            self.loop_credit += 1.0
            advance = self.loop_credit >= 1.0
            self.loop_credit[advance] -= 1.0
            demand = self.workload.draw(advance.reshape(self.num_envs, self.num_vms))
        else:
            demand = self.workload.draw()
        self._free_above_live(demand.live)  # 1. Workload
        self._balloon(targets)  # 2. Balloon
        refs = self._references(demand, t_row)  # 3. References
        self._placement(refs, t_row)  # 4. Placement
        self._host_reclaim()  # 5. Host reclaim
        self._host_oom = self._free_frames() < 0
        if prm.ksm_pages_per_tick > 0:
            self._ksm()  # 6. Deduplication
        if prm.free_page_reporting:
            self._report_free(t_row)  # 7. Free page reporting
        self._io_counts()  # 8. Accounting: I/O counts (§9), then the gauges
        res = self._gauges()
        if prm.closed_loop:  # the tick's stall is time the VM's threads did not run
            self.loop_credit -= loop_stall_frac(prm, res.vm).reshape(self.N)
        return res

    def _check_targets(self, balloon_targets: np.ndarray) -> np.ndarray:
        """The targets as an (N,) int64 array, after checking the envs were reset."""
        B, V = self.num_envs, self.num_vms
        if not self._seeded.all():
            raise RuntimeError("reset() every env before step()")
        tg = np.asarray(balloon_targets)
        if tg.shape != (B, V):
            raise ValueError(f"balloon_targets must have shape ({B}, {V}), got {tg.shape}")
        if not np.issubdtype(tg.dtype, np.integer):
            raise ValueError(f"balloon_targets must be integers (pages), got dtype {tg.dtype}")
        return tg.reshape(self.N).astype(np.int64)

    def _free_above_live(self, live_bv: np.ndarray) -> None:
        """SEMANTICS.md §1: free every allocated virtual page at or above the live footprint."""
        F = self.F
        live = live_bv.reshape(self.N).astype(np.int64)
        shrink = np.nonzero(live < self.live_prev)[0]
        if shrink.size:
            fv = _ranges(shrink * F + live[shrink], shrink * F + self.live_prev[shrink])
            self._free_vpages(fv[self.vstate[fv] != UNALLOCATED])
        self.live_prev = live

    def _balloon(self, targets: np.ndarray) -> None:
        """SEMANTICS.md §2: move each balloon towards its clipped target, at most
        ``balloon_rate_pages`` per tick."""
        target = np.clip(targets, 0, self._maxb_row)
        self.btarget = target
        diff = target - self.balloon
        n = np.minimum(np.abs(diff), self.params.balloon_rate_pages)
        drows = np.nonzero((diff < 0) & (n > 0))[0]
        if drows.size:
            self._deflate(drows, n[drows], "balloon_deflated")
        irows = np.nonzero((diff > 0) & (n > 0))[0]
        if irows.size:
            self._inflate(irows, n[irows])

    def _inflate(self, rows: np.ndarray, n: np.ndarray) -> None:
        """Inflate the balloons of ``rows`` by ``n`` pages: FREE GPPs first, then evicted
        ones; the shortfall is counted in ``balloon_stalls``."""
        N = self.N
        take_free = np.minimum(n, self.gcount[rows, FREE])
        taken = [self._first_k(self.gstate, FREE, rows, take_free)]
        short = n - take_free
        er = rows[short > 0]
        n_ev = np.zeros(N, dtype=np.int64)
        if er.size:
            es = short[short > 0]
            efg = self._evict_first(es, self._lru_window(er, es))
            taken.append(efg)
            n_ev = np.bincount(self._rows_of(efg), minlength=N)
        fg = np.concatenate(taken) if len(taken) > 1 else taken[0]
        self._ev[rows, VM_INDEX["balloon_stalls"]] += n - take_free - n_ev[rows]
        per_row = n_ev  # rows are distinct: the GPPs per row are known
        per_row[rows] += take_free
        self._set_g(fg, BALLOON, FREE, per_row=per_row)  # free GPPs, and the ones evicted
        self._release(fg, self._rows_of(fg), per_row)
        self.balloon += per_row
        self._ev[:, VM_INDEX["balloon_inflated"]] += per_row

    def _references(self, demand, t_row: np.ndarray) -> _TickRefs:
        """SEMANTICS.md §3: count references, serve the hits (host swap-ins, COW breaks,
        writes) and touch the kernel pages. Returns the distinct referenced pages."""
        N, P, F = self.N, self.P, self.F
        ev = self._ev
        refs = demand.refs.reshape(-1)
        if self._ref_base.size != refs.size:
            self._ref_base = np.repeat(np.arange(N, dtype=np.int64) * F, refs.size // N)
        valid = refs >= 0
        if valid.all():  # no padding: skip the compress
            fv_all = self._ref_base + refs
            w_all = demand.writes.reshape(-1)
            ev[:, VM_INDEX["refs"]] += refs.size // N
        else:
            fv_all = (self._ref_base + refs)[valid]
            w_all = demand.writes.reshape(-1)[valid]
            ev[:, VM_INDEX["refs"]] += valid.reshape(N, -1).sum(axis=1)
        # Distinct pages, sorted (row, vpage), through a bitmap: cheaper than sorting
        # (and a bool map, whose nonzero is several times faster than an int8 one's).
        self._umark[fv_all] = True
        ufv = np.flatnonzero(self._umark)
        _clear_marks(self._umark, ufv)
        wfv_all = _pick(w_all, fv_all)
        self._umark[wfv_all] = True
        uw = self._umark[ufv]
        _clear_marks(self._umark, wfv_all)
        self._ufv = ufv
        # Rows by the row boundaries of the sorted pages (no integer division, slow).
        bounds = np.searchsorted(ufv, np.arange(N + 1, dtype=np.int64) * F)
        urow = np.repeat(np.arange(N, dtype=np.int64), np.diff(bounds))
        hit = self.vstate[ufv] == RESIDENT_V
        hfv, hw, hrow = _pick(hit, ufv, uw, urow)
        hfg = hrow * P + self.vgpp[hfv]
        self._serve_hits(hfv, hrow, hfg, hw, t_row)
        kt = self._t_same
        if kt is None:
            kt = np.repeat(self.tick, self._kernel_vg.size)
        if self.params.host_policy == "random":  # the only policy that swaps kernel pages
            kfg = self._kernel_fg[self.hstate[self._kernel_fg] == HOST_SWAPPED]
            if kfg.size:
                self._add_rows("host_swapins", kfg // P)
                np.subtract.at(self.host_swap_used, kfg // (self.num_vms * P), 1)
                self._set_h(kfg, RESIDENT, HOST_SWAPPED)
        self.hlast[self._kernel_fg] = kt
        self.glast[self._kernel_fg] = kt
        return _TickRefs(ufv, urow, uw, hit, fv_all, hfg)

    def _serve_hits(
        self, hfv: np.ndarray, hrow: np.ndarray, hfg: np.ndarray, hw: np.ndarray, t_row
    ) -> None:
        """Referenced resident pages (``hw``: written): swap-ins, COW breaks, touches."""
        V, P = self.num_vms, self.P
        self._add_rows("guest_hits", hrow)
        # Most hits are on host-RESIDENT GPPs: the others are picked once, then split.
        nr = np.flatnonzero(self.hstate[hfg] != RESIDENT)
        hs = self.hstate[hfg[nr]]
        sw = hfg[nr[hs == HOST_SWAPPED]]
        if sw.size:
            self._add_rows("host_swapins", sw // P)
            np.subtract.at(self.host_swap_used, sw // (V * P), 1)
            self._set_h(sw, RESIDENT, HOST_SWAPPED)
        nr = nr[hs == SHARED]
        cw = hfg[nr[hw[nr]]]
        if cw.size:
            self._add_rows("cow_breaks", cw // P)
            self._share_delta(cw, -1)
            self._set_h(cw, RESIDENT, SHARED)
        th = self._t_of_rows(hrow, t_row)
        self.glast[hfg] = th
        self.hlast[hfg] = th
        wfv, wfg = _pick(hw, hfv, hfg)
        self.vdirty[wfv] = True
        self.vcontent[wfv] = CONTENT_UNIQUE
        self.gcontent[wfg] = CONTENT_UNIQUE
        self.gchanged[wfg] = True

    def _placement(self, refs: _TickRefs, t_row: np.ndarray) -> None:
        """SEMANTICS.md §4: place the faulting pages, in ascending virtual-page order, on
        the free list and then on the GPPs freed for them."""
        N = self.N
        flt = ~refs.hit
        ffv, fw, frow = _pick(flt, refs.ufv, refs.uw, refs.urow)  # ascending (row, vpage)
        need = np.bincount(frow, minlength=N)
        slots = self._placement_slots(need)
        slot_row = self._rows_of(slots)
        n_slots = np.bincount(slot_row, minlength=N)
        slot_start = np.cumsum(n_slots) - n_slots
        frank = _group_rank(frow)
        placed = frank < n_slots[frow]
        every = bool(placed.all())  # the common case: no overflow
        pfv, prow, pk, pw = (ffv, frow, frank, fw) if every else _pick(placed, ffv, frow, frank, fw)
        pfg = slots[slot_start[prow] + pk]
        self._place(pfv, prow, pfg, pw, t_row)
        self._log_append(np.concatenate([refs.hfg, pfg]))
        if not every:
            self._overflow_faults(ffv[~placed], refs.fv_all)

    def _placement_slots(self, need: np.ndarray) -> np.ndarray:
        """Make room for ``need[r]`` faulting pages in each row: the GPPs they land on, in
        placement order (free list ascending, then the evicted GPPs in eviction order),
        grouped by row. A row short of evictable pages gets fewer (overflow)."""
        nfree = self.gcount[:, FREE].copy()
        lists = []
        easy = np.nonzero((need > 0) & (need <= nfree))[0]
        short_rows = np.nonzero(need > nfree)[0]
        if short_rows.size:
            e = need[short_rows] - nfree[short_rows]
            win = self._lru_window(short_rows, e)
            ok = win.count >= e
            # Too few evictable pages. If the swap limit does not bind, every candidate
            # is in U's way: overflow (evict them all, place what fits); else guest OOM.
            over = ~ok & ~win.swap_binds
            go = short_rows[ok | over]
            # The free lists before the evictions (which free more GPPs): the easy rows'
            # and the short rows' in one call, each row's ascending.
            rr, k = np.concatenate([easy, go]), np.concatenate([need[easy], nfree[go]])
            order = np.argsort(rr)  # rows ascending (the slots are sorted by row below)
            rr, k = rr[order], k[order]
            lists.append(self._first_k(self.gstate, FREE, rr, k))
            lists.append(self._evict_first(np.where(ok, e, np.where(over, win.count, 0)), win))
            oom = short_rows[~ok & ~over]
            if oom.size:
                lists.extend(self._slots_after_guest_oom(oom, need))
        else:
            lists.append(self._first_k(self.gstate, FREE, easy, need[easy]))
        slots = np.concatenate(lists)
        order = np.argsort(self._rows_of(slots), kind="stable")  # keep each row's list order
        return slots[order]

    # ------------------------------------------------------------ placement
    def _place(self, pfv, prow, pfg, written, t_row) -> None:
        """Place the faulting pages ``pfv`` (of rows ``prow``; ``written`` this tick) on
        the GPPs ``pfg``."""
        P, F, V, N = self.P, self.F, self.num_vms, self.N
        if pfv.size == 0:
            return
        ev = self._ev
        # The per-row counts by host state, then by guest state and file flag, from one
        # bincount each (no compress per state).
        hs = self.hstate[pfg]
        hc = np.bincount(prow * 4 + hs, minlength=4 * N).reshape(N, 4)
        ev[:, VM_INDEX["host_minor_faults"]] += hc[:, UNBACKED]
        if hc[:, SHARED].any():
            ev[:, VM_INDEX["cow_breaks"]] += hc[:, SHARED]
            self._share_delta(pfg[hs == SHARED], -1)
        n_hsw = hc[:, HOST_SWAPPED]
        if n_hsw.any():
            col = "host_minor_faults" if self.params.false_read_preventer else "false_swap_reads"
            ev[:, VM_INDEX[col]] += n_hsw
            self.host_swap_used -= n_hsw.reshape(self.num_envs, V).sum(axis=1)
        n_all = hc.sum(axis=1)
        self.hcount -= hc
        self.hcount[:, RESIDENT] += n_all
        self.hstate[pfg] = RESIDENT
        vs = self.vstate[pfv]
        u = pfv - prow * F
        first = vs == UNALLOCATED
        from_swap = vs == SWAPPED
        # A faulting page is never RESIDENT_V: each enters RESIDENT_V (file ones the cache).
        vc2 = np.bincount(prow * 8 + vs * 2 + self._vfile[pfv], minlength=8 * N).reshape(N, 4, 2)
        vc = vc2.sum(axis=2)
        minor = vc[:, UNALLOCATED]
        ev[:, VM_INDEX["guest_minor_faults"]] += minor
        ev[:, VM_INDEX["guest_major_faults"]] += n_all - minor
        ev[:, VM_INDEX["guest_swapins"]] += vc[:, SWAPPED]
        ev[:, VM_INDEX["guest_file_reads"]] += vc[:, EVICTED]
        self.gswap_used -= vc[:, SWAPPED]
        self.vcount -= vc
        self.vcount[:, RESIDENT_V] += n_all
        self.cache_count += vc2[:, :, 1].sum(axis=1)
        if self._cluster_io:
            srow = prow[from_swap]
            self._io_keys["swapin"].append(self._slot_keys(srow, self.vslot[pfv[from_swap]]))
            ev_ = vs == EVICTED
            self._io_keys["fileread"].append(self._file_keys(prow[ev_], u[ev_]))
        content = self.vcontent[pfv]
        content = np.where(first, self._first_content.ravel()[(prow % V) * F + u], content)
        content = np.where(written, CONTENT_UNIQUE, content).astype(np.int32)
        self.vcontent[pfv] = content
        self.vdirty[pfv] = written | from_swap
        self.vstate[pfv] = RESIDENT_V
        self.vgpp[pfv] = pfg - prow * P
        self._set_g(pfg, USED, FREE, per_row=n_all)  # the free list, and the GPPs evicted
        self.gvpage[pfg] = u.astype(np.int32)
        self.gcontent[pfg] = content
        self.gchanged[pfg] = True
        tp = self._t_of_rows(prow, t_row)
        self.glast[pfg] = tp
        self.hlast[pfg] = tp

    def _overflow_faults(self, unplaced: np.ndarray, fv_all: np.ndarray) -> None:
        """Unplaced pages: one major fault per reference instead of one per page."""
        mark = self._umark  # all False between uses
        mark[unplaced] = True
        hits = fv_all[mark[fv_all]]
        mark[unplaced] = False
        self._add_rows("guest_major_faults", hits // self.F)

    def _slots_after_guest_oom(self, rows: np.ndarray, need: np.ndarray) -> list[np.ndarray]:
        """Rows in a guest OOM situation (SEMANTICS.md §4 step 3): deflate the balloon
        (``deflate_on_oom``) or OOM-kill, then evict, until the faults fit or overflow.

        Rare, so handled row by row (each row's work is still vectorized). Returns, per
        row, its free list (ascending) and then its evicted GPPs in eviction order.
        """
        _P, V = self.P, self.num_vms
        out = []
        for r in rows:
            r = int(r)
            rr = np.array([r])
            while True:
                nfree = int(self.gcount[r, FREE])
                e = int(need[r]) - nfree
                if e <= 0:
                    out.append(self._first_k(self.gstate, FREE, rr, need[rr]))
                    break
                win = self._lru_window(rr, np.array([e]), whole=True)
                n_e = int(win.count[0])
                if n_e >= e:
                    out.append(self._first_k(self.gstate, FREE, rr, np.array([nfree])))
                    out.append(self._evict_first(np.array([e]), win))
                    break
                if win.swap_binds[0]:  # the swap limit binds: guest OOM
                    if self.params.deflate_on_oom and self.balloon[r] > 0:
                        d = min(
                            int(self.balloon[r]),
                            OOM_DEFLATE_PAGES * math.ceil((e - n_e) / OOM_DEFLATE_PAGES),
                        )
                        self._deflate(rr, np.array([d]), "balloon_deflated")
                        continue
                    self._ev[r, VM_INDEX["guest_oom_kills"]] += 1
                    F = self.F
                    sl = slice(r * F, (r + 1) * F)
                    vs = self.vstate[sl]
                    anon = ~self._is_file[r % V]
                    in_u = np.zeros(F, dtype=bool)
                    in_u[self._ufv[self._ufv // F == r] % F] = True
                    kill = anon & ((vs == RESIDENT_V) | (vs == SWAPPED)) & ~in_u
                    self._free_vpages(r * F + np.nonzero(kill)[0])
                    continue
                out.append(self._first_k(self.gstate, FREE, rr, np.array([nfree])))
                out.append(self._evict_first(np.array([n_e]), win))  # overflow
                break
        return out

    # ------------------------------------------------------------------ layout
    @property
    def is_file(self) -> np.ndarray:
        """(V, F) bool: virtual page ``j`` of VM ``v`` is file-backed (read-only view)."""
        view = self._is_file.view()
        view.flags.writeable = False
        return view

    def privileged_view(self) -> PrivilegedView:
        """The read-only view of this simulator's state and future references that
        hindsight policies read (``envs.sim.view``). **Privileged, not deployable**: a
        real host sees neither. Cheap (views of the state, no copy of it)."""
        B, V, F = self.num_envs, self.num_vms, self.F
        vms = self.params.vms
        nsh = self.n_shared.reshape(B, self.C).sum(axis=1)
        saved = nsh - self.shared_frames
        saved.flags.writeable = False

        def per_vm(name: str) -> np.ndarray:
            out = np.array([getattr(v, name) for v in vms], dtype=np.int64)
            out.flags.writeable = False
            return out

        return PrivilegedView(
            tick=read_only(self.tick),
            episode_key=self.workload.episode_keys,
            guest_pages=per_vm("guest_pages"),
            kernel_pages=per_vm("kernel_reserved_pages"),
            max_balloon_pages=per_vm("max_balloon_pages"),
            guest_swap_pages=per_vm("guest_swap_pages"),
            host_frames=int(self.params.host_frames),
            host_min_free=int(self.params.host_min_free),
            footprint_pages=F,
            is_file=self.is_file,
            vstate=read_only(self.vstate.reshape(B, V, F)),
            balloon_pages=read_only(self.balloon.reshape(B, V)),
            guest_used_pages=read_only(self.gcount[:, USED].reshape(B, V)),
            guest_cache_pages=read_only(self.cache_count.reshape(B, V)),
            guest_swap_used=read_only(self.gswap_used.reshape(B, V)),
            sharing_saved_frames=saved,
            _workload=self.workload,
        )

    # --------------------------------------------------------------- host side
    def _free_frames(self) -> np.ndarray:
        res = self.hcount[:, RESIDENT].reshape(self.num_envs, self.num_vms).sum(axis=1)
        return self.params.host_frames - res - self.shared_frames

    def _host_reclaim(self) -> None:
        prm = self.params
        B, V, P = self.num_envs, self.num_vms, self.P
        VP = V * P
        deficit = prm.host_min_free - self._free_frames()
        room = prm.host_swap_pages - self.host_swap_used
        want = np.minimum(deficit, room)
        envs = np.nonzero(want > 0)[0]
        if envs.size == 0:
            return
        chosen = []
        hst = self.hstate.reshape(B, VP)
        # Touched this tick == hlast is this tick (every touch sets hlast). "random" is
        # blind: touched pages (the kernel's included) are eligible too.
        blind = prm.host_policy == "random"
        tch = self.hlast.reshape(B, VP) == self.tick[:, None]
        if prm.host_policy == "lru":
            for b in envs:
                elig = np.nonzero((hst[b] == RESIDENT) & ~tch[b])[0]
                k = min(int(want[b]), elig.size)
                if k == 0:
                    continue
                hl = self.hlast[b * VP + elig].astype(np.int64)
                order = np.lexsort((elig, hl))[:k]
                chosen.append(b * VP + elig[order])
        else:
            for b in envs:
                a, stride = hashing.walk_params(int(self.host_seed[b]), int(self.tick[b]), VP)
                k = int(want[b])
                got = np.zeros(0, dtype=np.int64)
                pos = 0
                chunk = max(2 * k + 64, 256)
                while got.size < k and pos < VP:
                    j = np.arange(pos, min(pos + chunk, VP), dtype=np.int64)
                    p = (a + j * stride) % VP
                    ok = hst[b, p] == RESIDENT
                    if not blind:
                        ok &= ~tch[b, p]
                    got = np.concatenate([got, p[ok][: k - got.size]])
                    pos += j.size
                    chunk *= 2
                if got.size:
                    chosen.append(b * VP + got)
        if not chosen:
            return
        fg = np.concatenate(chosen)
        rows = self._rows_of(fg)
        self._add_rows("host_swapouts", rows)
        self._add_rows("silent_swap_writes", rows[self.gstate[fg] == FREE])
        self._set_h(fg, HOST_SWAPPED, RESIDENT, rows)
        np.add.at(self.host_swap_used, fg // VP, 1)

    def _ksm(self) -> None:
        """Visit the next ``ksm_pages_per_tick`` host-RESIDENT GPPs of every env from its
        cursor, in flat order, wrapping once (SEMANTICS.md §6)."""
        prm = self.params
        B, V, P = self.num_envs, self.num_vms, self.P
        VP = V * P
        k = prm.ksm_pages_per_tick
        w = min(VP, max(4 * k, 256))
        base = (np.arange(B, dtype=np.int64) * VP)[:, None]
        # One window of w positions from each cursor: enough for most envs. The envs it
        # leaves short (resident pages are clustered: a window may hold none) are
        # served by one scan of their whole host instead of repeated doublings.
        j = np.arange(w, dtype=np.int64)
        pos = self.ksm_cursor[:, None] + j  # (B, w); cursor < VP and w <= VP:
        pos = np.where(pos >= VP, pos - VP, pos)  # one wrap at most
        res = self.hstate[base + pos] == RESIDENT
        rank = np.cumsum(res, axis=1, dtype=np.int32)
        ok = rank[:, -1] >= k
        if w >= VP:
            ok[:] = True
        visit = res & (rank <= k)
        okb = np.flatnonzero(ok)
        parts = [(base + pos)[okb][visit[okb]]]
        last = w - 1 - np.argmax(visit[okb, ::-1], axis=1)
        moved = rank[okb, -1] > 0
        self.ksm_cursor[okb[moved]] = (pos[okb[moved], last[moved]] + 1) % VP
        short = np.flatnonzero(~ok)
        if short.size:
            parts.append(self._ksm_scan(short, k))
        fg = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if fg.size == 0:
            return
        ch = self.gchanged[fg]
        self.gchanged[fg[ch]] = False
        m = fg[~ch]
        m = m[self.gcontent[m] >= 0]
        if m.size:
            self._set_h(m, SHARED, RESIDENT)
            self._share_delta(m, +1)

    def _ksm_scan(self, envs: np.ndarray, k: int) -> np.ndarray:
        """KSM's visit of ``envs`` by a scan of their whole hosts: the first ``k``
        RESIDENT GPPs at or after the cursor, then from the host's start (the wrap), in
        that order; moves the cursors past the last one visited."""
        VP = self.num_vms * self.P
        S = envs.size
        res = self.hstate.reshape(self.num_envs, VP)[envs] == RESIDENT  # (S, VP)
        idx = np.flatnonzero(res)  # s * VP + pos, ascending
        seg = np.arange(S + 1, dtype=np.int64) * VP
        bstart = np.searchsorted(idx, seg[:-1])
        bend = np.searchsorted(idx, seg[1:])
        cstart = np.searchsorted(idx, seg[:-1] + self.ksm_cursor[envs])
        n_after = np.minimum(bend - cstart, k)
        n_wrap = np.minimum(cstart - bstart, k - n_after)
        # Per env: its pages after the cursor, then its wrapped ones (flat order kept).
        starts = np.stack([cstart, bstart], axis=1).ravel()
        lens = np.stack([n_after, n_wrap], axis=1).ravel()
        sel = idx[_ranges(starts, starts + lens)]
        moved = n_after + n_wrap > 0
        last = np.where(n_wrap > 0, bstart + n_wrap - 1, cstart + n_after - 1)
        lpos = idx[last[moved]] - seg[:-1][moved]
        self.ksm_cursor[envs[moved]] = (lpos + 1) % VP
        s_of = sel // VP
        return envs[s_of] * VP + (sel - s_of * VP)

    def _report_free(self, t_row: np.ndarray) -> None:
        """Release GPPs free for ``report_delay_ticks``. Every env advances one tick per
        step, so the GPPs that became FREE ``d`` steps ago are exactly the ones due now;
        each is checked again (it may have been used, or released, since)."""
        prm = self.params
        P = self.P
        self._free_queue.append(
            np.concatenate(self._became_free) if self._became_free else np.zeros(0, np.int64)
        )
        self._became_free = []
        if len(self._free_queue) <= prm.report_delay_ticks:
            return
        fg = self._free_queue.pop(0)
        if prm.report_block_pages > 1:
            self._report_blocks(fg, t_row)
            return
        due = (
            (self.gstate[fg] == FREE)
            & (self.hstate[fg] != UNBACKED)
            & (self.gfree_since[fg] <= t_row[fg // P] - prm.report_delay_ticks)
        )
        if due.any():
            self._release(np.unique(fg[due]))

    def _report_blocks(self, fg: np.ndarray, t_row: np.ndarray) -> None:
        """Release the aligned blocks of ``report_block_pages`` GPPs that are entirely FREE
        for the delay (SEMANTICS.md §7). A block is due when its last page to become FREE
        has been free for the delay; that page is among ``fg`` (FREE ``d`` steps ago), so
        checking the blocks of ``fg`` finds every block due now. A FREE GPP never regains
        host backing, so a released block stays released while it stays free."""
        P, V = self.P, self.num_vms
        n, d = self.params.report_block_pages, self.params.report_delay_ticks
        trig = fg[(self.gstate[fg] == FREE) & (self.gfree_since[fg] <= t_row[fg // P] - d)]
        if trig.size == 0:
            return
        rows = trig // P
        start = np.unique(rows * P + (trig - rows * P) // n * n)  # first GPP of each block
        rows = start // P
        whole = start - rows * P + n <= self._M[rows % V]  # a partial last block never reports
        start, rows = start[whole], rows[whole]
        gpp = start[:, None] + np.arange(n, dtype=np.int64)[None, :]  # (blocks, n)
        free = (self.gstate[gpp] == FREE) & (self.gfree_since[gpp] <= (t_row[rows] - d)[:, None])
        blk = gpp[free.all(axis=1)].ravel()
        blk = blk[self.hstate[blk] != UNBACKED]
        if blk.size:
            self._release(blk)

    # -------------------------------------------------------------- accounting
    def _gauges(self) -> StepResult:
        B, V, N = self.num_envs, self.num_vms, self.N
        ev = self._ev
        ev[:, VM_INDEX["balloon_pages"]] = self.balloon
        ev[:, VM_INDEX["balloon_target"]] = self.btarget
        ev[:, VM_INDEX["guest_free_pages"]] = self.gcount[:, FREE]
        ev[:, VM_INDEX["guest_used_pages"]] = self.gcount[:, USED]
        ev[:, VM_INDEX["guest_cache_pages"]] = self.cache_count
        ev[:, VM_INDEX["guest_committed_pages"]] = (
            self.vcount[:, RESIDENT_V] + self.vcount[:, SWAPPED]
        )
        ev[:, VM_INDEX["guest_swap_used"]] = self.gswap_used
        ev[:, VM_INDEX["host_resident_pages"]] = self.hcount[:, RESIDENT]
        ev[:, VM_INDEX["host_swapped_pages"]] = self.hcount[:, HOST_SWAPPED]
        ev[:, VM_INDEX["host_shared_pages"]] = self.hcount[:, SHARED]
        ns = self.params.ws_sample_pages
        if ns:
            # ESX: a fixed random sample per period; touched since the period began.
            per = self.params.ws_sample_period_ticks
            start = (self.tick - 1) // per * per + 1  # (B,)
            salts = hashing.tick_salts(self.host_seed, start)  # (B,)
            keys = hashing.page_keys(salts[:, None, None], self._ws_index[None])  # (B,V,ns)
            g = (keys % self._M.astype(np.uint64)[None, :, None]).astype(np.int64)
            fg = (np.arange(N).reshape(B, V)[..., None]) * self.P + g
            touched = self.hlast[fg] >= start[:, None, None]
            ev[:, VM_INDEX["ws_sample_touched"]] = touched.sum(axis=2).reshape(N)
        host = np.zeros((B, len(HOST_FIELDS)), dtype=np.int64)
        free = self._free_frames()
        nsh = self.n_shared.reshape(B, self.C).sum(axis=1)
        host[:, HOST_INDEX["host_free_frames"]] = free
        host[:, HOST_INDEX["host_swap_used"]] = self.host_swap_used
        host[:, HOST_INDEX["shared_frames"]] = self.shared_frames
        host[:, HOST_INDEX["sharing_saved_frames"]] = nsh - self.shared_frames
        host[:, HOST_INDEX["host_oom"]] = self._host_oom
        return StepResult(vm=ev.reshape(B, V, -1).copy(), host=host)

    # ---------------------------------------------------------------- snapshot
    def snapshot(self, env: int) -> dict[str, np.ndarray]:
        """One env's state in the canonical, masked form of SEMANTICS.md."""
        V, P, F = self.num_vms, self.P, self.F
        rows = slice(env * V * F, (env + 1) * V * F)
        grows = slice(env * V * P, (env + 1) * V * P)
        vstate = self.vstate[rows].reshape(V, F).copy()
        alloc = vstate != UNALLOCATED
        gstate = self.gstate[grows].reshape(V, P).copy()
        hstate = self.hstate[grows].reshape(V, P).copy()
        return {
            "vstate": vstate,
            "vgpp": self.vgpp[rows].reshape(V, F).copy(),
            "vdirty": self.vdirty[rows].reshape(V, F) & alloc,
            "vcontent": np.where(alloc, self.vcontent[rows].reshape(V, F), 0),
            "gstate": gstate,
            "hstate": hstate,
            "gcontent": np.where(hstate != UNBACKED, self.gcontent[grows].reshape(V, P), 0),
            "glast": np.where(gstate == USED, self.glast[grows].reshape(V, P), -1),
            "hlast": np.where(gstate != NONE, self.hlast[grows].reshape(V, P), 0),
            "gchanged": self.gchanged[grows].reshape(V, P) & (gstate != NONE),
            "gfree_since": np.where(gstate == FREE, self.gfree_since[grows].reshape(V, P), -1),
            "balloon": self.balloon[env * V : (env + 1) * V].copy(),
            "guest_swap_used": self.gswap_used[env * V : (env + 1) * V].copy(),
            "vslot": np.where(vstate == SWAPPED, self.vslot[rows].reshape(V, F), -1),
            "guest_slot_next": self.gslot_next[env * V : (env + 1) * V].copy(),
            "tick": np.array(self.tick[env]),
            "host_swap_used": np.array(self.host_swap_used[env]),
            "ksm_cursor": np.array(self.ksm_cursor[env]),
            "n_shared": self.n_shared.reshape(self.num_envs, self.C)[env].copy(),
            **(
                {
                    "loop_credit": self.loop_credit[env * V : (env + 1) * V].copy(),
                    "loop_cursor": self.workload.vm_ticks[env].copy(),
                }
                if self.params.closed_loop
                else {}
            ),
        }
