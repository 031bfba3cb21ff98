"""The v2 mechanisms so far (docs/model.md §13): struct-page metadata sized by the
configured memory, the "image" content model, within-VM copies of shareable content, and
the ``with_v2_physics`` preset. Each default is v0/v1's behaviour; the differential test
(``test_differential.py``) compares the core with the reference twin with them on.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from envs.physics import (
    P3700_QD1_READ_IOPS,
    STRUCT_PAGE_BYTES,
    V1_PAGE_KIB,
    with_v1_physics,
    with_v2_physics,
)
from envs.sim.core import KERNEL, RESIDENT, SHARED, Simulator
from envs.sim.invariants import check_invariants
from envs.sim.params import (
    CONTENT_UNIQUE,
    CONTENT_ZERO,
    HostParams,
    Phase,
    VmParams,
    WorkloadParams,
    standard_params,
)
from envs.sim.workload import page_layout


def _run(params: HostParams, targets, ticks: int, seed: int = 0) -> Simulator:
    sim = Simulator(params, 1)
    sim.reset([seed])
    tg = np.asarray(targets, dtype=np.int64).reshape(1, -1)
    for _ in range(ticks):
        res = sim.step(tg)
        check_invariants(params, sim.snapshot(0), res.vm[0], res.host[0])
    return sim


# ------------------------------------------------------------ defaults are v0 / v1
def test_defaults_are_the_v0_model():
    vm, host, wl = VmParams(), HostParams(), WorkloadParams()
    assert (vm.page_metadata_bytes, vm.metadata_pages) == (0, 0)
    assert vm.kernel_reserved_pages == vm.kernel_pages
    assert (host.content_model, wl.shareable_copies) == ("vpage", 1)
    assert host.content_space == 1 + host.max_kernel_pages + host.max_footprint_pages
    assert host.pool_content(5, image=3) == host.pool_content(5)  # one pool for all images


def test_v1_preset_is_unchanged_and_v2_adds_only_its_fields():
    base = standard_params(num_vms=2, guest_pages=2048)
    v1, v2 = with_v1_physics(base), with_v2_physics(base)
    assert v1.content_model == "vpage" and v1.costs.dev_read_lat_us == 20.0
    assert all(vm.page_metadata_bytes == 0 for vm in v1.vms)
    assert v2.content_model == "image"
    assert v2.costs.dev_read_lat_us == pytest.approx(1e6 / P3700_QD1_READ_IOPS)
    assert v2.costs.dev_write_lat_us == v1.costs.dev_write_lat_us  # the datasheet's (gap)
    assert all(vm.page_metadata_bytes == STRUCT_PAGE_BYTES for vm in v2.vms)
    assert v2.closed_loop and not v1.closed_loop  # docs/model.md §13.5
    # Everything else is v1's.
    back = dataclasses.replace(
        v2,
        content_model="vpage",
        closed_loop=False,
        costs=v1.costs,
        vms=tuple(dataclasses.replace(vm, page_metadata_bytes=0) for vm in v2.vms),
    )
    assert back == v1 and v2.page_kib == V1_PAGE_KIB


# ------------------------------------------------------------ struct-page metadata
def test_metadata_pages_are_64_bytes_per_4k_of_configured_memory():
    vm = VmParams(guest_pages=1024, kernel_pages=32, guest_reserve_pages=16,
                  page_metadata_bytes=64)  # fmt: skip
    assert vm.metadata_pages == 16  # 1024 · 64 / 4096: 1.5625 % of the configured guest
    assert vm.kernel_reserved_pages == 48 and vm.max_balloon_pages == 1024 - 48 - 16
    odd = VmParams(guest_pages=1000, kernel_pages=0, guest_reserve_pages=0,
                   page_metadata_bytes=64)  # fmt: skip
    assert odd.metadata_pages == 16  # ceil(15.625)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(page_metadata_bytes=4096), "page_metadata_bytes"),
        (dict(page_metadata_bytes=-1), "page_metadata_bytes"),
        (dict(guest_pages=8, kernel_pages=6, page_metadata_bytes=2048), "metadata_pages"),
        (dict(guest_pages=64, kernel_pages=8, guest_reserve_pages=56, page_metadata_bytes=64),
         "guest_reserve_pages"),
    ],
)  # fmt: skip
def test_bad_metadata_names_the_field(kw, match):
    with pytest.raises(ValueError, match=match):
        VmParams(**kw)


def test_host_must_hold_the_kernels_with_their_metadata():
    vm = VmParams(guest_pages=1024, kernel_pages=32, guest_reserve_pages=16,
                  page_metadata_bytes=64)  # fmt: skip
    HostParams(vms=(vm,), host_frames=48, host_min_free=0)
    with pytest.raises(ValueError, match="metadata_pages"):
        HostParams(vms=(vm,), host_frames=47, host_min_free=0)


def test_metadata_gpps_are_kernel_resident_and_unique():
    wl = WorkloadParams(footprint_pages=64, phases=(Phase(ws_pages=64, refs_per_tick=16),))
    vm = VmParams(guest_pages=256, kernel_pages=8, guest_reserve_pages=4, kernel_image=0,
                  page_metadata_bytes=64, workload=wl)  # fmt: skip
    params = HostParams(vms=(vm, vm), host_frames=512, host_min_free=0, ksm_pages_per_tick=64)
    sim = _run(params, [0, 0], 5)
    snap = sim.snapshot(0)
    k, m = vm.kernel_pages, vm.metadata_pages
    assert m == 4
    for v in range(2):
        assert (snap["gstate"][v, : k + m] == KERNEL).all()
        assert (snap["gstate"][v, k + m :] != KERNEL).all()
        assert (snap["gcontent"][v, k : k + m] == CONTENT_UNIQUE).all()
        assert (snap["hstate"][v, k : k + m] == RESIDENT).all()  # never merged
    # The two identical kernels' image pages merge; their metadata does not.
    assert (snap["hstate"][:, :k] == SHARED).all()
    assert sim.privileged_view().kernel_pages.tolist() == [k + m, k + m]


def test_ballooned_guest_has_less_usable_memory_than_a_smaller_one():
    """A guest booted with M and ballooned by b keeps M's metadata: it can use
    (M − M') · 64 / 4096 fewer pages than a guest booted with M' = M − b."""
    M, b = 1024, 256
    big = VmParams(guest_pages=M, kernel_pages=32, guest_reserve_pages=16,
                   page_metadata_bytes=64)  # fmt: skip
    small = dataclasses.replace(big, guest_pages=M - b)
    usable_big = M - b - big.kernel_reserved_pages
    usable_small = M - b - small.kernel_reserved_pages
    assert usable_small - usable_big == b * 64 // 4096 == 4
    no_meta = dataclasses.replace(big, page_metadata_bytes=0)
    assert M - b - no_meta.kernel_reserved_pages == (M - b) - dataclasses.replace(
        small, page_metadata_bytes=0).kernel_reserved_pages  # v0: the same  # fmt: skip


# ------------------------------------------------------------ content model
def _content_host(model: str, images: tuple[int, ...], copies: int = 1) -> HostParams:
    wl = WorkloadParams(footprint_pages=200, phases=(Phase(ws_pages=200, refs_per_tick=400),),
                        cold_fraction=1.0, write_fraction=0.0, file_fraction=0.3,
                        shareable_fraction=0.2, shareable_copies=copies)  # fmt: skip
    vms = tuple(VmParams(guest_pages=256, kernel_pages=8, guest_reserve_pages=4,
                         kernel_image=i, workload=wl) for i in images)  # fmt: skip
    return HostParams(vms=vms, host_frames=256 * len(vms), host_min_free=0,
                      ksm_pages_per_tick=256, content_model=model)  # fmt: skip


def _first_contents(params: HostParams, v: int) -> np.ndarray:
    sim = _run(params, [0] * params.num_vms, 20)
    snap = sim.snapshot(0)
    return snap["vcontent"][v, : params.vms[v].workload.footprint_pages]


def test_vpage_model_is_v0s_formula():
    params = _content_host("vpage", (0, 1))
    is_file, sh = page_layout(params.vms[0].workload)
    c = _first_contents(params, 1)
    j = np.arange(c.size)
    assert (c[sh] == params.pool_content(0) + j[sh]).all()  # one pool, id = vpage
    assert (c[~sh] == CONTENT_ZERO).all()  # read-only, never written: zero, file or not


def test_image_model_gives_each_image_its_pool_and_files_their_data():
    params = _content_host("image", (0, 1))
    assert params.content_space == 1 + 2 * 8 + 2 * 200
    is_file, sh = page_layout(params.vms[0].workload)
    c0, c1 = _first_contents(params, 0), _first_contents(params, 1)
    j = np.arange(c0.size)
    assert (c1[sh] == params.pool_content(0, 1) + j[sh]).all()
    assert set(c0[sh]).isdisjoint(c1[sh])  # different images: no common pool content
    files = is_file & ~sh
    assert (c0[files] == params.pool_content(0, 0) + j[files]).all()  # file data, not zero
    assert (c0[~files & ~sh] == CONTENT_ZERO).all()  # read-first anonymous pages
    # Diverse VMs merge only zero pages across VMs.
    sim = _run(params, [0, 0], 30)
    snap = sim.snapshot(0)
    shared = snap["hstate"] == SHARED
    nonzero = [set(snap["gcontent"][v][shared[v]]) - {CONTENT_ZERO} for v in range(2)]
    assert nonzero[0].isdisjoint(nonzero[1])


def test_same_image_vms_share_their_pool_and_files():
    params = _content_host("image", (0, 0))
    c0, c1 = _first_contents(params, 0), _first_contents(params, 1)
    assert (c0 == c1).all() and (c0 > 0).any()


@pytest.mark.parametrize("model", ["vpage", "image"])
def test_shareable_copies_repeat_content_within_a_vm(model):
    """With c copies the shareable pages come in runs of c holding the run's first page's
    content, so one VM alone merges non-zero pages with itself."""
    params = _content_host(model, (0,), copies=3)
    _, sh = page_layout(params.vms[0].workload)
    c = _first_contents(params, 0)
    pages = np.flatnonzero(sh)
    first = pages[(np.arange(pages.size) // 3) * 3]
    assert (c[pages] == params.pool_content(0, 0) + first).all()
    sim = _run(params, [0], 30)
    snap = sim.snapshot(0)
    hst, gc = snap["hstate"][0], snap["gcontent"][0]
    ids, counts = np.unique(gc[(hst == SHARED) & (gc > 0)], return_counts=True)
    assert (counts > 1).any()  # a VM shares non-zero content with itself
    one = _content_host(model, (0,), copies=1)
    snap1 = _run(one, [0], 30).snapshot(0)
    pool_lo = one.pool_content(0)
    hst1, gc1 = snap1["hstate"][0], snap1["gcontent"][0]
    _, c1 = np.unique(gc1[(hst1 == SHARED) & (gc1 >= pool_lo)], return_counts=True)
    assert (c1 == 1).all()  # v0: no pool content twice in one VM


def test_bad_content_params_name_the_field():
    with pytest.raises(ValueError, match="content_model"):
        HostParams(content_model="hash")
    with pytest.raises(ValueError, match="shareable_copies"):
        WorkloadParams(shareable_copies=0)


def test_v2_preset_runs_with_its_invariants():
    params = with_v2_physics(standard_params(num_vms=2, guest_pages=512, refs_per_tick=128))
    sim = _run(params, [64, 0], 20)
    k = [vm.kernel_reserved_pages for vm in params.vms]
    assert k[0] > params.vms[0].kernel_pages  # the metadata is among the kernel GPPs
    assert (sim.snapshot(0)["gstate"][0, : k[0]] == KERNEL).all()
