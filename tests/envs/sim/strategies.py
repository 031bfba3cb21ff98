"""Hypothesis strategies: small hosts with every feature switched on and off."""

from __future__ import annotations

from hypothesis import strategies as st

from envs.sim.params import WS_SHAPES, CostParams, HostParams, Phase, VmParams, WorkloadParams


@st.composite
def phases(draw, footprint: int) -> Phase:
    ws = draw(st.integers(1, max(1, footprint)))
    return Phase(
        duration_ticks=draw(st.integers(5, 40)),
        ws_pages=ws,
        refs_per_tick=draw(st.integers(0, 64)),
        ws_offset_pages=draw(st.integers(0, footprint)),
        shape=draw(st.sampled_from(WS_SHAPES)),
        ws_min_pages=draw(st.integers(0, ws)),
        period_ticks=draw(st.integers(1, 30)),
        burst_prob=draw(st.sampled_from([0.0, 0.1, 0.5])),
        burst_ticks=draw(st.integers(1, 8)),
    )


@st.composite
def vm_params(draw, v2: bool = False) -> VmParams:
    """A small VM; ``v2`` also draws the v2 content and metadata parameters."""
    guest = draw(st.integers(8, 256))
    kernel = draw(st.integers(0, guest // 4))
    reserve = draw(st.integers(0, (guest - kernel) // 4))
    footprint = draw(st.integers(1, guest + guest // 2))
    start = draw(st.one_of(st.none(), st.integers(0, footprint)))
    # Streaming file reads: a region at the top of the footprint (below it stays >= 1 page
    # for the phases' references), k new pages a tick; off in about half the draws.
    stream = draw(st.sampled_from([0, 0, 1, 4, guest])) if footprint > 1 else 0
    stream = min(stream, footprint - 1)
    per_tick = draw(st.integers(1, min(stream, 16))) if stream else 0
    wl = WorkloadParams(
        footprint_pages=footprint,
        initial_live_pages=start,
        growth_pages_per_tick=draw(st.integers(0, 4)),
        restart_period_ticks=draw(st.sampled_from([0, 0, 13, 29])),
        phases=tuple(draw(st.lists(phases(footprint), min_size=1, max_size=3))),
        zipf_alpha=draw(st.sampled_from([0.0, 0.6, 1.1])),
        cold_fraction=draw(st.sampled_from([0.0, 0.05, 0.5])),
        write_fraction=draw(st.sampled_from([0.0, 0.2, 0.9])),
        file_fraction=draw(st.sampled_from([0.0, 0.3, 1.0])),
        shareable_fraction=draw(st.sampled_from([0.0, 0.2, 0.8])),
        stream_pages_per_tick=per_tick,
        stream_file_pages=stream,
        shareable_copies=draw(st.sampled_from([1, 2, 5])) if v2 else 1,
    )
    vcpus = draw(st.integers(1, 4))
    return VmParams(
        vcpus=vcpus,
        runnable_threads=draw(st.integers(1, 2 * vcpus + 1)),
        user_fault_fraction=draw(st.sampled_from([0.0, 0.5, 1.0])),
        guest_pages=guest,
        kernel_pages=kernel,
        guest_reserve_pages=reserve,
        guest_swap_pages=draw(st.integers(0, guest)),
        kernel_image=draw(st.integers(0, 1)),
        workload=wl,
        page_metadata_bytes=draw(st.sampled_from([0, 64, 1000])) if v2 else 0,
    )


@st.composite
def host_params(
    draw, max_vms: int = 4, v2: bool = False, closed_loop: bool = False
) -> HostParams:
    """A small host; ``v2`` also draws the v2 content model, struct-page metadata and
    within-VM copies (docs/model.md §13); ``closed_loop`` turns the closed loop on, with
    short ticks, large pages and the device on, so that stalls take whole ticks."""
    vms = tuple(draw(st.lists(vm_params(v2), min_size=1, max_size=max_vms)))
    total = sum(v.guest_pages for v in vms)
    kernels = sum(v.kernel_reserved_pages for v in vms)
    frames = max(kernels + 1, int(total / draw(st.sampled_from([0.8, 1.0, 1.5, 2.0]))))
    host_swap = draw(st.integers(0, total))
    fpr = draw(st.booleans())
    block = draw(st.sampled_from([1, 1, 2, 3, 8]))
    if fpr and not any(
        v.guest_pages // block > -(-v.kernel_reserved_pages // block) for v in vms
    ):
        block = 1  # no VM has a whole block free of kernel pages: HostParams refuses it
    return HostParams(
        vms=vms,
        host_frames=frames,
        host_swap_pages=host_swap,
        guest_page_cluster=draw(st.sampled_from([0, 0, 1, 3])),
        file_readahead_pages=draw(st.sampled_from([1, 1, 3, 32])),
        async_pf=host_swap > 0 and draw(st.booleans()),
        host_min_free=draw(st.integers(0, max(0, min(frames, 16)))),
        host_policy=draw(st.sampled_from(["random", "random-unaccessed", "lru"])),
        balloon_rate_pages=draw(st.integers(0, 64)),
        deflate_on_oom=draw(st.booleans()),
        false_read_preventer=draw(st.booleans()),
        ksm_pages_per_tick=draw(st.sampled_from([0, 1, 7, 64])),
        ksm_max_sharing=draw(st.sampled_from([2, 3, 256])),
        free_page_reporting=fpr,
        report_delay_ticks=draw(st.integers(0, 3)),
        report_block_pages=block,
        ws_sample_pages=draw(st.sampled_from([0, 5])),
        ws_sample_period_ticks=draw(st.sampled_from([1, 3, 30])),
        content_model=draw(st.sampled_from(["vpage", "image"])) if v2 else "vpage",
        **(_loop_fields(draw) if closed_loop else {}),
    )


def _loop_fields(draw) -> dict:
    """Closed loop on, with costs under which a tick's stall is from 0 to many ticks."""
    dev = draw(st.booleans())
    return dict(
        closed_loop=True,
        tick_ms=draw(st.sampled_from([1, 5, 1000])),
        page_kib=draw(st.sampled_from([4, 256, 1024])),
        costs=CostParams(
            dev_enabled=dev, stall_cap=draw(st.booleans()), sync_reclaim=dev and draw(st.booleans())
        ),
    )
