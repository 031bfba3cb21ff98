"""Named, versioned scenarios: a frozen host configuration, an episode length and a split.

A scenario id looks like an env id (``steady-v0``); bump the version whenever a
scenario's parameters change, so that published numbers keep their meaning.

Scale. Every scenario is small enough to train on two CPU cores: 2-6 VMs of 512-4096
guest pages (a simulated page stands for a 4 KiB page of a scaled-down VM, so 1024
pages is a "4 MiB" VM) and at most 1024 references per VM per tick. At that size one
core steps about 1,000-2,000 env-ticks per second (measured 0.5-1 ms per env-tick with
two envs per batch), so an episode of 256-512 ticks costs well under a second. Working
sets are set as fractions of guest memory, so the pressure (and what the scenario
stresses) does not depend on the absolute size.

Split. ``train`` scenarios are for fitting policies; ``test`` scenarios hold out whole
families that no training scenario contains (bursty working sets, overcommit 2.0
thrashing, boot storms, heterogeneous VM sizes, SPEC and OLTP traces) and the Bitbrains
VMs 36-50 (training sees VMs 1-35 only), so a test score measures generalization.

Trace scenarios name their data (``TraceSpec`` / ``DemandSpec``) and load it when a
simulator is built: they register without the data, and building them without it raises
``FileNotFoundError`` naming the file (see ``docs/scenarios.md`` for the sources).
"""

from __future__ import annotations

from dataclasses import dataclass

from envs.sim.params import (
    DemandSpec,
    HostParams,
    Phase,
    TraceSpec,
    VmParams,
    WorkloadParams,
    bitbrains_names,
)

SPLITS = ("train", "test")


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    params: HostParams
    description: str  # what it stresses, one sentence
    split: str = "train"
    max_episode_steps: int = 256

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")

    @property
    def num_vms(self) -> int:
        return self.params.num_vms

    @property
    def overcommit_ratio(self) -> float:
        return self.params.overcommit_ratio

    @property
    def uses_data(self) -> bool:
        """True when the workload reads traces or demand series from ``../shared/data``."""
        return any(
            vm.workload.demand is not None or any(t.kind != "recording" for t in vm.workload.traces)
            for vm in self.params.vms
        )

    @property
    def bitbrains_vms(self) -> frozenset[str]:
        """The Bitbrains demand series any VM of this scenario may replay."""
        return frozenset(
            n for vm in self.params.vms if vm.workload.demand for n in vm.workload.demand.names
        )


_REGISTRY: dict[str, Scenario] = {}
DEFAULT_SCENARIO = "default-v0"


def register(scenario: Scenario) -> Scenario:
    if scenario.id in _REGISTRY:
        raise ValueError(f"scenario {scenario.id!r} is already registered")
    _REGISTRY[scenario.id] = scenario
    return scenario


def get_scenario(scenario_id: str) -> Scenario:
    """The scenario with this id; a clear error lists the valid ids."""
    try:
        return _REGISTRY[scenario_id]
    except KeyError:
        raise ValueError(
            f"unknown scenario {scenario_id!r}; valid ids: {', '.join(sorted(_REGISTRY))}"
        ) from None


VERSIONS = ("v0", "v1")
LATEST_VERSION = "v1"


def scenario_ids(split: str | None = None, version: str | None = None) -> list[str]:
    """The registered ids, of one split and one physics version (``-v0``/``-v1``) if given."""
    if version is not None and version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    return sorted(
        k
        for k, s in _REGISTRY.items()
        if (split is None or s.split == split) and (version is None or k.endswith("-" + version))
    )


def split_ids(spec: str) -> list[str]:
    """The ids a ``split:NAME`` spec names: the split's scenarios of the latest physics
    (``split:train`` is the v1 training split), or of another with ``split:NAME@v0``; a
    split never mixes two physics versions."""
    body = spec[len("split:") :] if spec.startswith("split:") else spec
    name, _, version = body.partition("@")
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r} in {spec!r}; splits: {', '.join(SPLITS)}")
    return scenario_ids(name, version or LATEST_VERSION)


def _default_params() -> HostParams:
    """The default scenario: real pressure where the reclamation policy matters.

    Four 2048-page VMs at overcommit 1.5. Each workload's footprint is 1.1x its guest's
    memory, so guests page on their own and host swapping alone double-pages; working
    sets (40 % of the guest, Zipf 0.9) shift and breathe so that a fixed split is not
    optimal; half of the references write, so KSM finds few zero pages; KSM scans the
    host's pages once per ~10 minutes (1/600 per tick), about Linux's default rate for a
    host of this memory at 100 pages / 20 ms scaled down.
    """
    g = 2048
    ws = int(0.4 * g)
    phases = (
        Phase(duration_ticks=128, ws_pages=ws, refs_per_tick=512),
        Phase(
            duration_ticks=128,
            ws_pages=ws,
            refs_per_tick=512,
            ws_offset_pages=g // 3,
            shape="periodic",
            ws_min_pages=ws // 3,
            period_ticks=40,
        ),
    )
    wl = WorkloadParams(
        footprint_pages=int(1.1 * g),
        phases=phases,
        zipf_alpha=0.9,
        cold_fraction=0.05,
        write_fraction=0.5,
        file_fraction=0.3,
        shareable_fraction=0.1,
    )
    vm = VmParams(
        guest_pages=g,
        kernel_pages=g // 32,
        guest_reserve_pages=g // 64,
        guest_swap_pages=g,
        workload=wl,
    )
    total = 4 * g
    return HostParams(
        vms=(vm,) * 4,
        host_frames=int(total / 1.5),
        host_swap_pages=total,
        host_min_free=total // 128,
        host_policy="random-unaccessed",
        balloon_rate_pages=g // 8,
        deflate_on_oom=True,
        ksm_pages_per_tick=total // 600,
        free_page_reporting=True,
    )


register(
    Scenario(
        id=DEFAULT_SCENARIO,
        params=_default_params(),
        description="Four VMs at overcommit 1.5 whose footprints exceed guest memory, with "
        "shifting, breathing working sets: host swapping alone double-pages.",
        split="train",
        max_episode_steps=256,
    )
)


# ------------------------------------------------------------------------ builders
def _vm(guest_pages: int, wl: WorkloadParams, kernel_image: int = 0) -> VmParams:
    """A VM with the standard proportions: kernel 1/32, reserve 1/64, swap = guest size."""
    return VmParams(
        guest_pages=guest_pages,
        kernel_pages=max(1, guest_pages // 32),
        guest_reserve_pages=max(1, guest_pages // 64),
        guest_swap_pages=guest_pages,
        kernel_image=kernel_image,
        workload=wl,
    )


def _host(vms: tuple[VmParams, ...], overcommit: float, **kw: object) -> HostParams:
    """A host sized for ``overcommit``, with every mechanism on (as ``standard_params``)."""
    total = sum(v.guest_pages for v in vms)
    smallest = min(v.guest_pages for v in vms)
    args: dict[str, object] = dict(
        vms=vms,
        host_frames=int(total / overcommit),
        host_swap_pages=total,
        host_min_free=max(1, total // 128),
        host_policy="random-unaccessed",
        balloon_rate_pages=max(1, smallest // 8),
        deflate_on_oom=True,
        ksm_pages_per_tick=max(1, total // 64),
        free_page_reporting=True,
    )
    args.update(kw)
    return HostParams(**args)  # type: ignore[arg-type]


def _steady(
    guest: int, ws_frac: float, refs: int, foot_frac: float = 0.875, **wl: object
) -> WorkloadParams:
    phase = Phase(ws_pages=max(1, int(guest * ws_frac)), refs_per_tick=refs)
    return WorkloadParams(footprint_pages=int(guest * foot_frac), phases=(phase,), **wl)  # type: ignore[arg-type]


def _trace_wl(
    footprint: int, specs: tuple[TraceSpec, ...], refs: int, **wl: object
) -> WorkloadParams:
    return WorkloadParams(
        footprint_pages=footprint,
        phases=(Phase(ws_pages=footprint, refs_per_tick=refs),),
        traces=specs,
        trace_random_start=True,
        **wl,  # type: ignore[arg-type]
    )


def _add(sid: str, split: str, steps: int, params: HostParams, description: str) -> None:
    register(Scenario(sid, params, description, split, steps))


# --------------------------------------------------------------- synthetic scenarios
G = 1024  # guest pages of the standard scenario VM ("4 MiB")

# steady: hot set 40 % of guest memory, footprint 7/8: the rest of the footprint is
# touched only by the 5 % cold references (all of it within ~150 ticks), so there is
# idle memory to reclaim and the host runs short once it is all touched.
_add(
    "steady-v0",
    "train",
    256,
    _host(tuple(_vm(G, _steady(G, 0.4, 256, cold_fraction=0.05)) for _ in range(4)), 1.5),
    "Four VMs with fixed Zipf working sets at overcommit 1.5: reclaim the cold footprint "
    "without touching the hot set.",
)

# phase-shift: each VM jumps between two disjoint working sets (offset by half the
# guest); periods differ per VM so the shifts are staggered and a static split fails.
_add(
    "phase-shift-v0",
    "train",
    512,
    _host(
        tuple(
            _vm(
                G,
                WorkloadParams(
                    footprint_pages=G - G // 16,
                    phases=(
                        Phase(duration_ticks=d, ws_pages=int(G * 0.45), refs_per_tick=256),
                        Phase(
                            duration_ticks=d,
                            ws_pages=int(G * 0.45),
                            refs_per_tick=256,
                            ws_offset_pages=G // 2,
                        ),
                    ),
                ),
            )
            for d in (60, 90, 120, 150)
        ),
        1.5,
    ),
    "Working sets jump to disjoint pages every 60-150 ticks, staggered per VM: balloon "
    "targets must follow the shifts, and the old set becomes reclaimable.",
)

# bursty (test only): a small base working set with rare bursts to 70 % of the guest.
_add(
    "bursty-v0",
    "test",
    512,
    _host(
        tuple(
            _vm(
                G,
                WorkloadParams(
                    footprint_pages=G - G // 16,
                    phases=(
                        Phase(
                            ws_pages=int(G * 0.7),
                            ws_min_pages=G // 10,
                            refs_per_tick=256,
                            shape="bursts",
                            burst_prob=0.02,
                            burst_ticks=25,
                        ),
                    ),
                ),
            )
            for _ in range(4)
        ),
        1.6,
    ),
    "Small working sets with rare, unannounced bursts to 70 % of the guest: deflate fast "
    "when a burst starts and reclaim when it ends.",
)

# idle-tax: VM 0 touches its whole footprint for 40 ticks, then idles (one page hot)
# for the rest of the episode; three busy VMs need more than a fair share.
_IDLE = WorkloadParams(
    footprint_pages=2 * G - G // 8,
    phases=(
        Phase(duration_ticks=40, ws_pages=2 * G - G // 8, refs_per_tick=512, ws_min_pages=0),
        Phase(duration_ticks=1_000_000, ws_pages=1, refs_per_tick=4, shape="idle"),
    ),
    zipf_alpha=0.0,
    cold_fraction=0.0,
)
_add(
    "idle-tax-v0",
    "train",
    384,
    _host((_vm(2 * G, _IDLE),) + tuple(_vm(G, _steady(G, 0.7, 256)) for _ in range(3)), 1.5),
    "A large VM fills its memory and goes idle beside three busy VMs: take the idle VM's "
    "pages (an idle memory tax) rather than squeezing the busy ones.",
)

# clones: identical VMs (same kernel image, same layout), half the footprint from the
# shared pool and few writes: KSM can merge most of the cold memory.
_add(
    "clones-v0",
    "train",
    384,
    _host(
        tuple(
            _vm(G, _steady(G, 0.35, 256, shareable_fraction=0.6, write_fraction=0.05))
            for _ in range(4)
        ),
        1.8,
    ),
    "Four clones of one image with mostly shareable, rarely written pages at overcommit "
    "1.8: deduplication carries the load; ballooning shared pages frees nothing.",
)

# thrash (test only): overcommit 2.0 and hot sets of 60 %: their sum exceeds host memory.
_add(
    "thrash-v0",
    "test",
    256,
    _host(tuple(_vm(G, _steady(G, 0.6, 256, zipf_alpha=0.6)) for _ in range(4)), 2.0),
    "Overcommit 2.0 with hot sets that together exceed host memory: some VM must page; "
    "choose whom, and avoid double paging.",
)

# leak: VM 0's live footprint grows 6 pages/tick from 25 % and restarts every 300 ticks;
# its cold references keep allocating pages that are then never reused.
_LEAK = WorkloadParams(
    footprint_pages=2 * G - G // 8,
    initial_live_pages=G // 2,
    growth_pages_per_tick=6,
    restart_period_ticks=300,
    phases=(Phase(ws_pages=G // 4, refs_per_tick=256),),
    cold_fraction=0.25,
)
_add(
    "leak-v0",
    "train",
    512,
    _host((_vm(2 * G, _LEAK),) + tuple(_vm(G, _steady(G, 0.5, 256)) for _ in range(3)), 1.5),
    "A leaking VM allocates 6 pages per tick that it never reuses, until it restarts: "
    "balloon away the leak before the host has to swap.",
)

# boot-storm (test only): six small VMs boot together: each zero-fills its memory
# (uniform first touches, rarely written: zero pages) for 30 ticks, then settles.
_BOOT = WorkloadParams(
    footprint_pages=G // 2 - G // 16,
    initial_live_pages=0,
    growth_pages_per_tick=32,
    phases=(
        Phase(duration_ticks=30, ws_pages=G // 2 - G // 16, refs_per_tick=256),
        Phase(duration_ticks=1_000_000, ws_pages=G // 8, refs_per_tick=128),
    ),
    zipf_alpha=0.0,
    cold_fraction=0.05,
    write_fraction=0.05,
    shareable_fraction=0.2,
)
_add(
    "boot-storm-v0",
    "test",
    256,
    _host(tuple(_vm(G // 2, _BOOT) for _ in range(6)), 1.8),
    "Six VMs boot at once and touch all their memory with zero pages: absorb the start-up "
    "spike (dedup, early ballooning) before host swapping sets in.",
)

# file-heavy: 80 % of the footprint is page cache, streamed with many cold reads; clean
# file pages cost the guest nothing to drop.
_add(
    "file-heavy-v0",
    "train",
    256,
    _host(
        tuple(
            _vm(
                G,
                _steady(
                    G,
                    0.3,
                    256,
                    foot_frac=1.5,
                    file_fraction=0.8,
                    cold_fraction=0.25,
                    write_fraction=0.05,
                ),
            )
            for _ in range(4)
        ),
        1.5,
    ),
    "Guests full of clean page cache (footprint 1.5x guest memory, 80 % file-backed): "
    "ballooning costs cheap drops while host swapping writes useless cache.",
)

# mixed (test only): one VM per size 512..4096 and a different workload each.
_MIXED = (
    _vm(4 * G, _steady(4 * G, 0.45, 512, zipf_alpha=1.1)),
    _vm(
        2 * G,
        WorkloadParams(
            footprint_pages=2 * G - G // 8,
            phases=(
                Phase(
                    ws_pages=G,
                    ws_min_pages=G // 8,
                    refs_per_tick=384,
                    shape="periodic",
                    period_ticks=80,
                ),
            ),
        ),
        kernel_image=1,
    ),
    _vm(
        G,
        WorkloadParams(
            footprint_pages=G - G // 16,
            phases=(
                Phase(
                    ws_pages=int(G * 0.7),
                    ws_min_pages=G // 10,
                    refs_per_tick=256,
                    shape="bursts",
                    burst_prob=0.03,
                    burst_ticks=20,
                ),
            ),
        ),
        kernel_image=2,
    ),
    _vm(G // 2, _steady(G // 2, 0.3, 128, foot_frac=1.5, file_fraction=0.8), kernel_image=1),
)
_add(
    "mixed-v0",
    "test",
    384,
    _host(_MIXED, 1.8),
    "Heterogeneous VMs (512-4096 pages: database, periodic, bursty, file server, two "
    "kernel images): a policy must weigh VMs of different sizes and needs.",
)

# ------------------------------------------------------------------ trace scenarios
# LIRS traces (Jiang & Zhang 2002): 1.2-3.1 k distinct blocks; footprint 1792 with the
# modulo map replays cs and cpp exactly and folds ps and gli onto the footprint. Block
# traces have no access type: half the references write (unwritten pages would stay
# zero pages that KSM merges, hiding the pressure).
_add(
    "trace-lirs-v0",
    "train",
    384,
    _host(
        tuple(
            _vm(
                2 * G,
                _trace_wl(
                    2 * G - G // 4, (TraceSpec("lirs", f"lirs/{name}"),), 64, write_fraction=0.5
                ),
            )
            for name in ("cs", "cpp", "ps", "gli")
        ),
        2.0,
    ),
    "Four guests replaying the LIRS block traces (cscope, cpp, postgres, glimpse) with "
    "loops and scans that defeat LRU-like guesses.",
)

# SPEC CPU2000 data-address traces (with loads and stores); gzip's 40 k pages are
# squeezed onto its footprint by the scale map. The programs touch about half their
# guests in an episode, hence overcommit 3.0 of configured memory. Measured: even at
# 5.0 the host swaps only touched-once pages (swap-ins < 0.1 per tick): real programs'
# hot sets are small at this scale, so this is a low-pressure scenario.
_add(
    "trace-spec-v0",
    "test",
    384,
    _host(
        (
            _vm(
                G // 2, _trace_wl(G // 2 - G // 16, (TraceSpec("spec2000", "spec2000/gcc"),), 1024)
            ),
            _vm(2 * G, _trace_wl(2 * G - G // 8, (TraceSpec("spec2000", "spec2000/mcf"),), 1024)),
            _vm(
                2 * G,
                _trace_wl(
                    2 * G - G // 8,
                    (TraceSpec("spec2000", "spec2000/gzip"),),
                    1024,
                    trace_map="scale",
                ),
            ),
        ),
        3.0,
    ),
    "Guests replaying SPEC CPU2000 gcc, mcf and gzip address traces (stores included): "
    "small hot sets beside much touched-once memory that the host can swap out cheaply, "
    "so the risk is over-ballooning.",
)

# ARC OLTP (Megiddo & Modha 2003), 512-byte blocks grouped 8 per 4 KiB page (23 k
# pages), scaled onto the footprint; three replicas start at seed-chosen positions.
_add(
    "trace-oltp-v0",
    "test",
    384,
    _host(
        tuple(
            _vm(
                4 * G,
                _trace_wl(
                    4 * G - G // 4,
                    (TraceSpec("arc", "arc/OLTP", blocks_per_page=8),),
                    1024,
                    trace_map="scale",
                    file_fraction=0.9,
                ),
            )
            for _ in range(3)
        ),
        1.6,
    ),
    "Three database replicas replaying the ARC OLTP storage trace (mostly page cache) at "
    "different positions: large, skewed, cache-friendly working sets.",
)

# Our lackey recordings (experiments/traces/data): sqlite3 (295 pages), CPython (778),
# gzip (136), cc1 (1230), stores included. Guests run one or two programs, interleaved
# in quanta of 64 references; the footprint holds every page (exact replay).
# Guests are sized tightly around their programs; the programs touch under half of it
# in an episode, hence overcommit 3.0 of configured memory (~1.2 of touched memory).
_REC = (
    (512, ("sqlite3", "gzip")),
    (1280, ("python", "sqlite3")),
    (1600, ("cc1", "gzip")),
    (896, ("python",)),
)
_add(
    "trace-recorded-v0",
    "train",
    512,
    _host(
        tuple(
            _vm(g, _trace_wl(g - g // 8, tuple(TraceSpec("recording", n) for n in names), 1024))
            for g, names in _REC
        ),
        3.0,
    ),
    "Guests replaying real programs recorded with valgrind (sqlite3, CPython, gzip, gcc's "
    "cc1; two per guest, interleaved): small hot sets, much memory touched once, so "
    "reclaim it without over-ballooning the hot pages.",
)

# Bitbrains Rnd VMs (Shen et al. 2015): the memory-usage series sets W(t); one 5-minute
# sample per 4 ticks, so a 512-tick episode covers ~10.7 hours of the VM's life. Each
# episode each simulated VM draws one real VM of its pool and a start sample.
BITBRAINS_TRAIN = bitbrains_names(1, 35)
BITBRAINS_TEST = bitbrains_names(36, 50)


def _bitbrains(pool: tuple[str, ...]) -> HostParams:
    wl = WorkloadParams(
        footprint_pages=2 * G - G // 8,
        phases=(Phase(ws_pages=2 * G - G // 8, ws_min_pages=G // 32, refs_per_tick=512),),
        demand=DemandSpec(names=pool, ticks_per_sample=4, normalize="peak"),
    )
    return _host(tuple(_vm(2 * G, wl) for _ in range(4)), 2.0)


_add(
    "bitbrains-v0",
    "train",
    512,
    _bitbrains(BITBRAINS_TRAIN),
    "Working sets follow the memory usage of real business-critical VMs (Bitbrains Rnd "
    "VMs 1-35) at overcommit 2.0: bursty, mostly low demand with rare peaks.",
)
_add(
    "bitbrains-test-v0",
    "test",
    512,
    _bitbrains(BITBRAINS_TEST),
    "As bitbrains-v0 on the held-out Bitbrains VMs 36-50.",
)


# ------------------------------------------------------------------ v1 scenarios
# Every -v0 scenario again as -v1: the same hosts, VMs and workloads under the v1 physics
# (envs.physics: storage device and queue, blind host paging, readahead, balloon and
# page costs, 1 MiB pages; docs/model.md §12). The v0 ids keep the v0 physics, so their
# published numbers keep their meaning.
DEFAULT_SCENARIO_V1 = "default-v1"


def _register_v1() -> None:
    from envs.physics import v1

    for sid in [s for s in _REGISTRY if s.endswith("-v0")]:
        s = _REGISTRY[sid]
        register(
            Scenario(sid[: -len("-v0")] + "-v1", v1(s.params),
                     s.description[:-1] + ", under the v1 physics.", s.split,
                     s.max_episode_steps)
        )  # fmt: skip


_register_v1()
