"""Frozen parameter dataclasses of the host/guest memory model (docs/model.md §3, §6, §9, §10).

Parameters are validated on construction: a bad value raises ``ValueError`` naming the
field, its value and the allowed range. Derived quantities are properties, never fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from envs.sim.checks import check_int, check_number

# Content ids (docs/model.md §4.6): equal ids mean equal page content.
CONTENT_UNIQUE = -1  # written since allocation: equal to no other page
CONTENT_ZERO = 0  # zero-filled page
# Kernel page k of image i has id 1 + i * max_kernel_pages + k; a shareable virtual page j
# has id 1 + num_kernel_images * max_kernel_pages + j (see HostParams.content_space); under
# content_model "image" the pool of image i starts i * max_footprint_pages further
# (HostParams.pool_content).

# Content models (HostParams.content_model; docs/model.md §13.3). "vpage" (v0, v1): one
# pool of shareable content common to every VM, read-first pages zero. "image" (v2):
# each kernel_image (the guest's OS and software image) has its own pool, so VMs of
# different images share only zero pages ("even small differences between machines
# significantly reduce what little inter-machine sharing might otherwise be possible",
# Barker et al., USENIX ATC 2012, abstract), and a file-backed page first read from disk
# holds its file's data, not zeros: the entry of its virtual page in its image's pool
# (VMs of one image read the same files; v0 gave it content 0, as a never-written page).
CONTENT_MODELS = ("vpage", "image")
# Bytes of kernel metadata per real 4 KiB page of configured memory: x86-64 Linux's
# struct page is 64 bytes (include/linux/mm_types.h; docs/model.md §13.2).
REAL_PAGE_BYTES = 4096

# Host victim selection (SEMANTICS.md §5). "random": uniform over every host-resident GPP,
# used or not (ESX: Waldspurger OSDI 2002 §3.3, "A randomized page replacement policy";
# VMware: "ESX randomly selects virtual machine pages for swapping, whether those pages are
# in use by the application or not"). "random-unaccessed": random among the resident GPPs
# not touched this tick (kernel pages are touched every tick), an accessed-bit
# approximation of a Linux/KVM host's reclaim, which skips referenced pages; it is v0's
# "random", kept bit-identical. "lru": oldest host-observed touch first.
HOST_POLICIES = ("random", "random-unaccessed", "lru")
WS_SHAPES = ("steady", "periodic", "bursts", "growth", "idle")
MAX_REFS_PER_TICK = 1 << 20  # refs are stored in int32 arrays of this bound
TRACE_KINDS = ("lirs", "spec2000", "arc", "recording")
TRACE_MAPS = ("modulo", "scale")
DEMAND_KINDS = ("bitbrains",)
DEMAND_NORMS = ("capacity", "peak")


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase of a synthetic workload (docs/model.md §9).

    The working set is ``ws_pages`` virtual pages starting at ``ws_offset_pages``
    (wrapping modulo the live footprint), referenced with Zipf(``zipf_alpha``) popularity.
    """

    duration_ticks: int = 1_000_000
    ws_pages: int = 1024
    refs_per_tick: int = 256
    ws_offset_pages: int = 0
    shape: str = "steady"  # one of WS_SHAPES
    ws_min_pages: int = 0  # low level for periodic / bursts / growth
    period_ticks: int = 100  # periodic: sine period; growth: ramp length
    burst_prob: float = 0.0  # bursts: probability a burst starts in a tick
    burst_ticks: int = 10  # bursts: length of one burst

    def __post_init__(self) -> None:
        check_int("duration_ticks", self.duration_ticks, 1)
        check_int("ws_pages", self.ws_pages, 1)
        check_int("refs_per_tick", self.refs_per_tick, 0, MAX_REFS_PER_TICK)
        check_int("ws_offset_pages", self.ws_offset_pages, 0)
        if self.shape not in WS_SHAPES:
            raise ValueError(f"shape must be one of {WS_SHAPES}, got {self.shape!r}")
        check_int("ws_min_pages", self.ws_min_pages, 0, self.ws_pages)
        check_int("period_ticks", self.period_ticks, 1)
        check_number("burst_prob", self.burst_prob, 0, 1)
        check_int("burst_ticks", self.burst_ticks, 1)


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """A page reference string replayed by a VM, named here and loaded outside the core.

    Params stay small, hashable and cheap to compare: the arrays are never stored in
    them. ``envs.data.resolve_trace`` turns a spec into arrays through the cached loaders
    of ``envs.traces``; the simulator receives them in a ``workload.WorkloadData``.

    ``name`` is either an absolute path or, for the published traces, a path relative to
    ``<data dir>/traces`` without its suffix (``"lirs/cs"``, ``"spec2000/gcc"``,
    ``"arc/OLTP"``), and for ``recording`` a name in ``experiments/traces/data``
    (``"gzip"``). The data dir is ``$RECLAIM_DATA_DIR``, else ``<repo>/../shared/data``.
    """

    kind: str  # one of TRACE_KINDS
    name: str
    blocks_per_page: int = 1  # lirs / arc: consecutive blocks that form one page
    max_refs: int = 0  # > 0: replay only the first max_refs references of the file

    def __post_init__(self) -> None:
        if self.kind not in TRACE_KINDS:
            raise ValueError(f"kind must be one of {TRACE_KINDS}, got {self.kind!r}")
        _check_name("name", self.name)
        check_int("blocks_per_page", self.blocks_per_page, 1)
        check_int("max_refs", self.max_refs, 0)


@dataclass(frozen=True, slots=True)
class DemandSpec:
    """Memory-demand series of real VMs that drive a VM's working-set size W(t).

    ``names`` is a pool of series (paths relative to ``<data dir>/demand`` without the
    suffix, e.g. ``"bitbrains-rnd-2013-7/7"``, or absolute paths). Each episode, each
    simulated VM with this spec replays one series of its pool, chosen from the seed; a
    pool of one pins the series. See ``envs.sim.workload`` ("Demand-driven W(t)").
    """

    names: tuple[str, ...]
    kind: str = "bitbrains"  # one of DEMAND_KINDS
    ticks_per_sample: int = 4  # time compression: ticks per 5-minute sample
    normalize: str = "capacity"  # usage / capacity, or usage / the series' peak usage
    random_start: bool = True  # start at a seed-chosen sample (else at start_sample)
    start_sample: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.names, tuple) or not self.names:
            raise ValueError(f"names must be a non-empty tuple of str, got {self.names!r}")
        for n in self.names:
            _check_name("names entries", n)
        if self.kind not in DEMAND_KINDS:
            raise ValueError(f"kind must be one of {DEMAND_KINDS}, got {self.kind!r}")
        check_int("ticks_per_sample", self.ticks_per_sample, 1)
        if self.normalize not in DEMAND_NORMS:
            raise ValueError(f"normalize must be one of {DEMAND_NORMS}, got {self.normalize!r}")
        if not isinstance(self.random_start, bool):
            raise ValueError(f"random_start must be a bool, got {self.random_start!r}")
        check_int("start_sample", self.start_sample, 0)


def bitbrains_names(first: int, last: int) -> tuple[str, ...]:
    """Demand-series names of the Bitbrains Rnd VMs ``first .. last`` (inclusive, 1-based)."""
    check_int("first", first, 1, 50)
    check_int("last", last, first, 50)
    return tuple(f"bitbrains-rnd-2013-7/{i}" for i in range(first, last + 1))


@dataclass(frozen=True, slots=True)
class WorkloadParams:
    """Synthetic workload of one VM (docs/model.md §9)."""

    footprint_pages: int = 6144  # F: virtual pages the workload may allocate
    initial_live_pages: int | None = None  # live footprint at reset (None: footprint)
    growth_pages_per_tick: int = 0  # leak: live footprint grows by this per tick
    restart_period_ticks: int = 0  # > 0: every period the live footprint resets (frees)
    phases: tuple[Phase, ...] = (Phase(),)  # cycled in order
    zipf_alpha: float = 0.9
    cold_fraction: float = 0.02  # share of refs uniform over the whole live footprint
    write_fraction: float = 0.2
    file_fraction: float = 0.3  # share of the non-stream virtual pages that are file-backed
    shareable_fraction: float = 0.1  # share of the non-stream pages with pool content
    # Copies of each shareable content inside the VM (v0, v1: 1, every shareable page
    # has its own content). With c > 1 the VM's shareable pages, in virtual-page order,
    # come in runs of c that hold the content of the run's first page, so a VM shares
    # non-zero content with itself (Barker et al., USENIX ATC 2012: sharing within a
    # machine is nearly all, > 90 %, of a set's sharing potential). No published
    # per-guest figure was found: a workload property, 1 unless a scenario sets it.
    shareable_copies: int = 1
    # Streaming file reads (v0: 0, off): each tick the guest reads stream_pages_per_tick
    # new pages of a file region, the top stream_file_pages virtual pages of the footprint,
    # cycling over it (logs, backups, scans: data read once). They fill free guest memory
    # with clean page cache, as Linux guests do (DAMON_RECLAIM doc: guests "could report
    # only small amount of memory as free to host"; VSwapper's "false page anonymity").
    # See envs.sim.workload "Streaming file reads".
    stream_pages_per_tick: int = 0
    stream_file_pages: int = 0
    # Trace replay (empty: synthetic Zipf references). The phases then only set
    # refs_per_tick (and durations); see envs.sim.workload "Trace replay".
    traces: tuple[TraceSpec, ...] = ()  # interleaved in one guest, disjoint page ranges
    trace_map: str = "modulo"  # compact trace page -> virtual page: "modulo" or "scale"
    trace_quantum_refs: int = 64  # interleaving: refs of one trace before the next
    trace_offset_refs: int = 0  # start position in the (interleaved) stream
    trace_random_start: bool = False  # add a seed-chosen start position per episode
    # Demand-driven W(t) (None: W(t) from the phase shapes).
    demand: DemandSpec | None = None

    def __post_init__(self) -> None:
        check_int("footprint_pages", self.footprint_pages, 1)
        if self.initial_live_pages is not None:
            check_int("initial_live_pages", self.initial_live_pages, 0, self.footprint_pages)
        check_int("growth_pages_per_tick", self.growth_pages_per_tick, 0)
        check_int("restart_period_ticks", self.restart_period_ticks, 0)
        if not isinstance(self.phases, tuple) or not self.phases:
            raise ValueError(f"phases must be a non-empty tuple of Phase, got {self.phases!r}")
        for i, p in enumerate(self.phases):
            if not isinstance(p, Phase):
                raise ValueError(f"phases must contain Phase objects, got {p!r}")
            if p.ws_pages > self.footprint_pages:
                raise ValueError(
                    f"phases[{i}].ws_pages must be <= footprint_pages ({self.footprint_pages}): "
                    f"a working set cannot exceed the footprint, got {p.ws_pages}"
                )
        check_number("zipf_alpha", self.zipf_alpha, 0)
        for name in ("cold_fraction", "write_fraction", "file_fraction", "shareable_fraction"):
            check_number(name, getattr(self, name), 0, 1)
        check_int("shareable_copies", self.shareable_copies, 1, 1 << 20)
        check_int("stream_file_pages", self.stream_file_pages, 0, self.footprint_pages)
        check_int("stream_pages_per_tick", self.stream_pages_per_tick, 0, MAX_REFS_PER_TICK)
        if self.stream_pages_per_tick > self.stream_file_pages:
            raise ValueError(
                f"stream_pages_per_tick must be <= stream_file_pages ({self.stream_file_pages}):"
                f" a tick reads that many distinct pages of the stream region, got "
                f"{self.stream_pages_per_tick}"
            )
        if self.stream_file_pages and not self.stream_pages_per_tick:
            raise ValueError(
                "stream_pages_per_tick must be >= 1 when stream_file_pages > 0 (a stream "
                "region that is never read), got 0"
            )
        if self.stream_file_pages == self.footprint_pages and self.stream_file_pages:
            busy = [i for i, p in enumerate(self.phases) if p.refs_per_tick > 0]
            if busy:
                raise ValueError(
                    f"stream_file_pages must be < footprint_pages ({self.footprint_pages}) "
                    f"when phases issue references (phases{busy}): the stream region would "
                    "leave them no page"
                )
        if not isinstance(self.traces, tuple):
            raise ValueError(f"traces must be a tuple of TraceSpec, got {self.traces!r}")
        for tr in self.traces:
            if not isinstance(tr, TraceSpec):
                raise ValueError(f"traces must contain TraceSpec objects, got {tr!r}")
        if self.trace_map not in TRACE_MAPS:
            raise ValueError(f"trace_map must be one of {TRACE_MAPS}, got {self.trace_map!r}")
        check_int("trace_quantum_refs", self.trace_quantum_refs, 1)
        check_int("trace_offset_refs", self.trace_offset_refs, 0)
        if not isinstance(self.trace_random_start, bool):
            raise ValueError(f"trace_random_start must be a bool, got {self.trace_random_start!r}")
        if self.demand is not None and not isinstance(self.demand, DemandSpec):
            raise ValueError(f"demand must be a DemandSpec or None, got {self.demand!r}")
        if self.demand is not None and self.traces:
            raise ValueError("traces and demand are exclusive: a replayed trace has no W(t)")

    @property
    def start_live_pages(self) -> int:
        return self.footprint_pages if self.initial_live_pages is None else self.initial_live_pages

    @property
    def max_refs_per_tick(self) -> int:
        """The most references of one tick: the busiest phase's plus the stream's."""
        return max(p.refs_per_tick for p in self.phases) + self.stream_pages_per_tick

    @property
    def stream_first_page(self) -> int:
        """First virtual page of the stream region ``[footprint - stream_file_pages,
        footprint)``; the phases' references use the pages below it."""
        return self.footprint_pages - self.stream_file_pages


@dataclass(frozen=True, slots=True)
class VmParams:
    """One virtual machine (docs/model.md §3)."""

    guest_pages: int = 8192  # M_i
    kernel_pages: int = 256  # K_i: kernel image GPPs; with metadata, GPPs [0, K_i + m_i)
    guest_reserve_pages: int = 128  # the balloon never takes these
    guest_swap_pages: int = 8192
    kernel_image: int = 0  # VMs with equal image have identical kernel pages
    workload: WorkloadParams = field(default_factory=WorkloadParams)
    # vCPU blocking (docs/design/physics-v1.md §1; costs only, never dynamics). The
    # defaults give v0: one vCPU, one runnable thread, so nothing overlaps a fault.
    vcpus: int = 1  # Natapov's async-PF benchmark uses 4 (KVM async PF cover letter, 2010)
    runnable_threads: int = 1  # > 1: other guest work can run while one thread waits
    # Share of host swap-ins taken in guest user mode, where KVM can inject an async PF
    # (commit "KVM: Inject asynchronous page fault into a PV guest if page is swapped
    # out": user mode only). No published figure: 1.0, the benchmark's array walk.
    user_fault_fraction: float = 1.0
    # Kernel metadata per real 4 KiB page of CONFIGURED memory (bytes; docs/model.md
    # §13.2). The guest kernel allocates one struct page per page frame it was booted
    # with, ballooned or not: 64 bytes on x86-64 Linux (include/linux/mm_types.h), so
    # a ballooned guest keeps the metadata of its full size. It adds
    # metadata_pages = ceil(guest_pages * page_metadata_bytes / 4096) GPPs to the kernel,
    # after its kernel_pages, with unique content (they describe this guest's pages).
    # v0, v1: 0.
    page_metadata_bytes: int = 0

    def __post_init__(self) -> None:
        check_int("guest_pages", self.guest_pages, 1)
        check_int("kernel_pages", self.kernel_pages, 0, self.guest_pages - 1)
        check_int("page_metadata_bytes", self.page_metadata_bytes, 0, REAL_PAGE_BYTES - 1)
        if self.kernel_reserved_pages > self.guest_pages - 1:
            raise ValueError(
                f"kernel_pages + metadata_pages must be <= guest_pages - 1 "
                f"({self.guest_pages - 1}), got {self.kernel_pages} + {self.metadata_pages}"
            )
        check_int(
            "guest_reserve_pages", self.guest_reserve_pages, 0,
            self.guest_pages - self.kernel_reserved_pages,
        )  # fmt: skip
        check_int("guest_swap_pages", self.guest_swap_pages, 0)
        check_int("kernel_image", self.kernel_image, 0, 1023)
        if not isinstance(self.workload, WorkloadParams):
            raise ValueError(f"workload must be a WorkloadParams, got {self.workload!r}")
        check_int("vcpus", self.vcpus, 1, 1024)
        check_int("runnable_threads", self.runnable_threads, 1, 1 << 20)
        check_number("user_fault_fraction", self.user_fault_fraction, 0, 1)

    @property
    def overlap_frac(self) -> float:
        """Share of a blocked thread's wait that other runnable work of the VM fills:
        ``o = min(1, (runnable_threads − 1) / vcpus)`` (physics-v1.md §1)."""
        return min(1.0, (self.runnable_threads - 1) / self.vcpus)

    @property
    def metadata_pages(self) -> int:
        """GPPs of per-page kernel metadata sized by the configured memory:
        ``ceil(guest_pages · page_metadata_bytes / 4096)`` (the ratio is the same at
        every ``page_kib``: each simulated page has ``r`` real pages and ``r`` structs)."""
        return -(-self.guest_pages * self.page_metadata_bytes // REAL_PAGE_BYTES)

    @property
    def kernel_reserved_pages(self) -> int:
        """GPPs the kernel holds, ``[0, kernel_pages + metadata_pages)``: what the
        simulators treat as kernel (KERNEL state, touched every tick, never ballooned)."""
        return self.kernel_pages + self.metadata_pages

    @property
    def max_balloon_pages(self) -> int:
        return self.guest_pages - self.kernel_reserved_pages - self.guest_reserve_pages


@dataclass(frozen=True, slots=True)
class CostParams:
    """Latencies (µs) of the events that stall a VM, and reward weights (docs/model.md §6).

    The v1 cost model (``envs.sim.costs``; docs/design/physics-v1.md §1, §2, §7, §8) adds
    a storage device with a queue (``dev_*``, off by default), synchronous host reclaim,
    the cost of balloon moves and of zeroing a refaulted host page. Every default is v0:
    with them the stall is exactly v0's.
    """

    guest_major_us: float = 100.0  # read from guest swap or guest disk (SSD)
    guest_minor_us: float = 0.5  # zero fill
    host_swapin_us: float = 100.0  # read from host swap
    exit_us: float = 1.0  # VM exit added to every hypervisor fault
    guest_write_us: float = 100.0  # the guest write of a double-paged page
    false_read_us: float = 100.0
    cow_us: float = 2.0
    host_minor_us: float = 1.0
    w_guest_oom: float = 10.0  # reward penalty per guest OOM kill
    w_host_oom: float = 1000.0  # reward penalty when the host runs out of memory
    # Guest CPU (µs) per 4 KiB page inflated or deflated. v1: 2.25, derived from Wang &
    # Li, "[PATCH v12 5/8] virtio-balloon: VIRTIO_BALLOON_F_SG" (LKML 2017): 7 GiB of an
    # idle 8 GiB guest in 4126 ms on the legacy (mainline) path. Deflation is charged
    # the same (an assumption: the source measures inflation only).
    balloon_us_per_page: float = 0.0
    # Host CPU (µs) to zero a 4 KiB frame on the first touch of an unbacked GPP (every
    # host minor fault). v1: 0.30, derived from "x86/clear_page: introduce clear_pages()"
    # (Arora, 2025): 13.7 GB/s at 4 KiB chunks on AMD Milan.
    host_zero_us_per_page: float = 0.0
    # The storage device of the host (physics-v1.md §2). Off (v0): every I/O costs the
    # fixed latencies above. On: they are replaced by the device's queue-dependent
    # latency. Figures: Intel SSD DC P3700 Product Specification (330566-005US).
    dev_enabled: bool = False
    dev_read_iops: float = 460_000.0  # "Rnd 4KB R/W: Up to 460/175K"
    dev_write_iops: float = 175_000.0
    dev_read_mbps: float = 2800.0  # "Seq R/W: Up to 2800/2000MB/s"
    dev_write_mbps: float = 2000.0
    dev_read_lat_us: float = 20.0  # "Seq Latency (typ) R/W: 20/20µs"
    dev_write_lat_us: float = 20.0
    dev_cs2: float = 1.0  # squared CV of service time: 1 = M/M/1 (GC makes NAND vary)
    dev_rho_max: float = 0.95  # cap of the utilization in the queue factor (<= 20x S)
    # Synchronous (direct) host reclaim (physics-v1.md §2; Linux mm/vmscan.c
    # throttle_direct_reclaim, ESX hard/low states): the host's swap-out writes of a
    # tick stall the VMs whose faults needed the frames. Needs the device (its write
    # latency). v0: False (host swap-outs are free).
    sync_reclaim: bool = False
    # Cap each VM's stall at its vCPUs' time in the tick (a VM cannot lose more than all
    # of it; the sum-of-latencies formula is right only while requests wait less than a
    # tick, physics-v1.md §1 (c)). v0: False (uncapped, as v0 computed it).
    stall_cap: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in ("dev_enabled", "sync_reclaim", "stall_cap"):
                if not isinstance(getattr(self, f.name), bool):
                    raise ValueError(f"{f.name} must be a bool, got {getattr(self, f.name)!r}")
            elif f.name == "dev_rho_max":
                check_number(f.name, self.dev_rho_max, 0, 1)
                if not 0.0 < self.dev_rho_max < 1.0:
                    raise ValueError(f"dev_rho_max must be in (0, 1), got {self.dev_rho_max}")
            else:
                check_number(f.name, getattr(self, f.name), 0)
        for name in ("dev_read_iops", "dev_write_iops", "dev_read_mbps", "dev_write_mbps"):
            if float(getattr(self, name)) <= 0.0:
                raise ValueError(
                    f"{name} must be > 0 (a device that serves no I/O), got {getattr(self, name)}"
                )
        if self.sync_reclaim and not self.dev_enabled:
            raise ValueError(
                "sync_reclaim=True needs dev_enabled=True: a synchronous swap-out waits for "
                "the device's write latency"
            )


@dataclass(frozen=True, slots=True)
class HostParams:
    """A host and its VMs (docs/model.md §3, §4, §10).

    ``host_frames`` may exceed the VMs' total ``guest_pages`` (``overcommit_ratio < 1``):
    an undercommitted host is a legitimate config (it can back every guest page, so only
    ``host_min_free`` can make it reclaim) and is accepted. It must hold every VM's kernel.
    """

    vms: tuple[VmParams, ...] = (VmParams(), VmParams(), VmParams(), VmParams())
    host_frames: int = 21_845  # H (default: overcommit 1.5 for 4 × 8192 pages)
    host_swap_pages: int = 65_536
    host_min_free: int = 256
    host_policy: str = "random-unaccessed"  # one of HOST_POLICIES (v0: "random-unaccessed")
    balloon_rate_pages: int = 1024  # per tick
    deflate_on_oom: bool = False
    false_read_preventer: bool = False
    # 0 turns deduplication off. Linux scans 100 pages / 20 ms (5000 pages/s, docs/model.md
    # §10), which takes about an hour per pass over a 64 GiB host; simulated hosts are
    # scaled down, so scenarios scale the rate to their memory (default-v0: one pass per
    # ~600 ticks). 512 suits the 4 x 8192-page standard host.
    ksm_pages_per_tick: int = 512
    ksm_max_sharing: int = 256  # Linux default
    free_page_reporting: bool = False
    report_delay_ticks: int = 2  # 2 s at 1 s ticks (mm/page_reporting.c)
    # Free page reporting releases only aligned blocks of this many GPPs (block k of a VM
    # = GPPs [k*n, (k+1)*n)) that are entirely guest-free: Linux reports free buddy blocks
    # of order >= pageblock_order (page_reporting_notify_free() in mm/page_reporting.h),
    # 9 on x86-64, i.e. 2 MiB. v0: 1 (any free page); v1: 2048 // page_kib.
    report_block_pages: int = 1
    ws_sample_pages: int = 100  # ESX working-set sample per VM and period
    ws_sample_period_ticks: int = 30  # ESX samples per 30 s period (30 ticks of 1 s)
    tick_ms: int = 1000
    page_kib: int = 4
    costs: CostParams = field(default_factory=CostParams)
    # Readahead and clustering (docs/design/physics-v1.md §3). Guest swap slots are
    # numbered in swap-out order per VM; the swap-ins (and swap-outs) of a tick cost one
    # I/O per distinct aligned cluster of 2**guest_page_cluster slots. v0: 0 (one I/O per
    # page); v1: 3, Linux mm/swap.c swap_setup() (vm.page-cluster, 8 pages).
    guest_page_cluster: int = 0
    # File faults (and writebacks) of a tick cost one I/O per distinct aligned window of
    # this many virtual pages. v0: 1; v1: 32 real pages, include/linux/pagemap.h
    # VM_READAHEAD_PAGES (128 KiB).
    file_readahead_pages: int = 1
    # KVM asynchronous page faults (paravirtual guests; Natapov 2010): a host swap-in
    # taken in guest user mode lets the guest schedule another thread. v0: False.
    async_pf: bool = False
    # Where shareable content comes from (CONTENT_MODELS above; docs/model.md §13.3).
    # v0, v1: "vpage" (one pool for all VMs, content id = virtual page number).
    content_model: str = "vpage"
    # Closed-loop workloads (docs/model.md §13.5; issue #24): a VM consumes its
    # exogenous reference stream one nominal tick's batch at a time, at a pace set by
    # the stall of its past ticks (SEMANTICS.md "Closed loop"). v0, v1: False (open loop,
    # a batch every tick whatever the stall).
    closed_loop: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.vms, tuple) or not self.vms:
            raise ValueError(f"vms must be a non-empty tuple of VmParams, got {self.vms!r}")
        for v in self.vms:
            if not isinstance(v, VmParams):
                raise ValueError(f"vms must contain VmParams objects, got {v!r}")
        check_int("host_frames", self.host_frames, 1)
        kernels = sum(v.kernel_reserved_pages for v in self.vms)
        if self.host_frames < kernels:
            raise ValueError(
                f"host_frames must be >= the sum of kernel_pages (+ metadata_pages) "
                f"({kernels}) so the host can "
                f"hold every VM's kernel, got {self.host_frames}"
            )
        check_int("host_swap_pages", self.host_swap_pages, 0)
        check_int("host_min_free", self.host_min_free, 0, self.host_frames)
        if self.host_policy not in HOST_POLICIES:
            raise ValueError(
                f"host_policy must be one of {HOST_POLICIES}, got {self.host_policy!r}"
            )
        check_int("balloon_rate_pages", self.balloon_rate_pages, 0)
        for name in ("deflate_on_oom", "false_read_preventer", "free_page_reporting"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        check_int("ksm_pages_per_tick", self.ksm_pages_per_tick, 0)
        check_int("ksm_max_sharing", self.ksm_max_sharing, 2)
        check_int("report_delay_ticks", self.report_delay_ticks, 0)
        check_int("report_block_pages", self.report_block_pages, 1)
        if self.free_page_reporting:
            # Whole blocks inside a VM's guest pages and above its kernel (never free).
            def reportable(n: int) -> bool:
                return any(
                    v.guest_pages // n - -(-v.kernel_reserved_pages // n) >= 1 for v in self.vms
                )

            n = self.report_block_pages
            if not reportable(n):
                best = next(m for m in range(n - 1, 0, -1) if reportable(m))
                raise ValueError(
                    f"report_block_pages must be <= {best} here, got {n}: no VM has an "
                    "aligned block of that many guest pages free of kernel pages, so free "
                    "page reporting could never report (or turn free_page_reporting off)"
                )
        # Sample indices are 20-bit per VM (hashing.ws_sample_index); ESX samples 100.
        check_int("ws_sample_pages", self.ws_sample_pages, 0, 1 << 20)
        check_int("ws_sample_period_ticks", self.ws_sample_period_ticks, 1)
        check_int("tick_ms", self.tick_ms, 1)
        check_int("page_kib", self.page_kib, 1)
        if not isinstance(self.costs, CostParams):
            raise ValueError(f"costs must be a CostParams, got {self.costs!r}")
        check_int("guest_page_cluster", self.guest_page_cluster, 0, 16)
        check_int("file_readahead_pages", self.file_readahead_pages, 1, 1 << 20)
        if not isinstance(self.async_pf, bool):
            raise ValueError(f"async_pf must be a bool, got {self.async_pf!r}")
        if not isinstance(self.closed_loop, bool):
            raise ValueError(f"closed_loop must be a bool, got {self.closed_loop!r}")
        if self.async_pf and self.host_swap_pages == 0:
            raise ValueError(
                "async_pf=True needs host_swap_pages > 0: a host without swap never takes "
                "the host swap-in faults that async page faults overlap"
            )
        if self.content_model not in CONTENT_MODELS:
            raise ValueError(
                f"content_model must be one of {CONTENT_MODELS}, got {self.content_model!r}"
            )
        total_refs = sum(v.workload.max_refs_per_tick for v in self.vms)
        if total_refs > MAX_REFS_PER_TICK:
            raise ValueError(
                f"refs_per_tick summed over VMs must be <= {MAX_REFS_PER_TICK}, got {total_refs}"
            )

    # Derived quantities -------------------------------------------------------------
    @property
    def num_vms(self) -> int:
        return len(self.vms)

    @property
    def max_guest_pages(self) -> int:  # P
        return max(v.guest_pages for v in self.vms)

    @property
    def max_footprint_pages(self) -> int:  # F
        return max(v.workload.footprint_pages for v in self.vms)

    @property
    def max_kernel_pages(self) -> int:
        return max(v.kernel_pages for v in self.vms)

    @property
    def num_kernel_images(self) -> int:
        return 1 + max(v.kernel_image for v in self.vms)

    @property
    def content_space(self) -> int:
        """Number of mergeable content ids (ids 0 .. content_space - 1)."""
        pools = self.num_kernel_images if self.content_model == "image" else 1
        return 1 + self.num_kernel_images * self.max_kernel_pages + pools * self.max_footprint_pages

    @property
    def overcommit_ratio(self) -> float:
        return sum(v.guest_pages for v in self.vms) / self.host_frames

    @property
    def tick_us(self) -> float:
        return 1000.0 * self.tick_ms

    @property
    def real_pages_per_page(self) -> float:
        """``r = page_kib / 4``: real 4 KiB pages one simulated page stands for
        (physics-v1.md §8; every per-page event is charged as ``r`` real ones)."""
        return self.page_kib / 4.0

    def kernel_content(self, vm: int, k: int) -> int:
        return 1 + self.vms[vm].kernel_image * self.max_kernel_pages + k

    def pool_content(self, vpage: int, image: int = 0) -> int:
        """Content id of pool entry ``vpage`` (a virtual page number) of ``image``'s pool:
        under ``content_model="vpage"`` one pool for every image (``image`` ignored)."""
        base = 1 + self.num_kernel_images * self.max_kernel_pages + vpage
        return base + (image * self.max_footprint_pages if self.content_model == "image" else 0)


def standard_params(
    num_vms: int = 4,
    guest_pages: int = 8192,
    overcommit: float = 1.5,
    refs_per_tick: int = 2048,
    **host_overrides: object,
) -> HostParams:
    """The benchmark's standard configuration: every feature on (issue #2 §6)."""
    kernel = max(1, guest_pages // 32)
    wl = WorkloadParams(
        footprint_pages=(guest_pages * 7) // 8,
        phases=(
            Phase(duration_ticks=200, ws_pages=guest_pages // 2, refs_per_tick=refs_per_tick),
            Phase(
                duration_ticks=200,
                ws_pages=guest_pages // 2,
                refs_per_tick=refs_per_tick,
                ws_offset_pages=guest_pages // 4,
                shape="periodic",
                ws_min_pages=guest_pages // 8,
                period_ticks=50,
            ),
        ),
    )
    vm = VmParams(
        guest_pages=guest_pages,
        kernel_pages=kernel,
        guest_reserve_pages=max(1, guest_pages // 64),
        guest_swap_pages=guest_pages,
        workload=wl,
    )
    defaults: dict[str, object] = dict(
        vms=(vm,) * num_vms,
        host_frames=int(num_vms * guest_pages / overcommit),
        host_swap_pages=num_vms * guest_pages,
        host_min_free=max(1, guest_pages // 32),
        balloon_rate_pages=max(1, guest_pages // 8),
        deflate_on_oom=True,
        false_read_preventer=False,
        ksm_pages_per_tick=max(1, guest_pages // 16),
        free_page_reporting=True,
    )
    defaults.update(host_overrides)
    return HostParams(**defaults)  # type: ignore[arg-type]


OOM_DEFLATE_PAGES = 256  # virtio_balloon.c: 1 MiB per OOM-notifier call (docs/model.md §10)


# Fields added after the v1 release whose defaults keep the v0/v1 physics: a digest of
# the parameters (episode records' params_digest, the committed headroom rows) leaves
# them out while they are at their defaults, so a host that did not change keeps its
# digest. A field added later with a default that keeps the old meaning goes here.
_DIGEST_OMITTED_AT_DEFAULT = frozenset(
    {"page_metadata_bytes", "shareable_copies", "content_model", "closed_loop"}
)


def params_repr(obj: object) -> str:
    """``repr(obj)`` of a parameters dataclass (or a tuple of them) as digests read it:
    the dataclass repr, recursively, without the later fields still at their defaults
    (:data:`_DIGEST_OMITTED_AT_DEFAULT`)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        parts = []
        for f in dataclasses.fields(obj):
            if not f.repr:
                continue
            value = getattr(obj, f.name)
            if f.name in _DIGEST_OMITTED_AT_DEFAULT and value == f.default:
                continue
            parts.append(f"{f.name}={params_repr(value)}")
        return f"{type(obj).__qualname__}({', '.join(parts)})"
    if isinstance(obj, tuple):
        inner = ", ".join(params_repr(x) for x in obj)
        return f"({inner},)" if len(obj) == 1 else f"({inner})"
    return repr(obj)
