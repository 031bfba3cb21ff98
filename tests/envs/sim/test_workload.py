"""Tests of the synthetic workload streams (envs/sim/workload.py)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.data import load_workload_data
from envs.sim.hashing import splitmix64_int
from envs.sim.params import HostParams, Phase, VmParams, WorkloadParams, standard_params
from envs.sim.workload import Demand, Workload, page_layout, zipf_tables
from tests.envs.sim.differential import run_differential
from tests.envs.sim.strategies import host_params

MASK32 = (1 << 32) - 1


def host(*wls: WorkloadParams) -> HostParams:
    vms = tuple(VmParams(guest_pages=256, kernel_pages=4, workload=w) for w in wls)
    return HostParams(vms=vms, host_frames=1024, host_min_free=0)


def seqs(seeds) -> list[np.random.SeedSequence]:
    return [np.random.SeedSequence(s) for s in seeds]


def run(params: HostParams, seeds, ticks: int) -> list[Demand]:
    wl = Workload(params, len(seeds), load_workload_data(params))
    wl.reset(np.arange(len(seeds)), seqs(seeds))
    return [wl.draw().copy() for _ in range(ticks)]


def steady(**kw) -> WorkloadParams:
    phase = {k: kw.pop(k) for k in list(kw) if k in Phase.__dataclass_fields__}
    if "footprint_pages" in kw:  # the default working set, capped at the footprint
        phase.setdefault("ws_pages", min(Phase().ws_pages, kw["footprint_pages"]))
    return WorkloadParams(phases=(Phase(**phase),), **kw)


def fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


def slot_uniforms(seed_seq: np.random.SeedSequence, t: int, v: int, n: int) -> list[int]:
    """The documented per-slot 32-bit uniforms, in plain Python."""
    key = int(seed_seq.generate_state(1, np.uint64)[0])
    base = splitmix64_int(key ^ splitmix64_int(t))
    salt = splitmix64_int((base + 4 * v) & ((1 << 64) - 1)) & MASK32
    return [fmix32(salt ^ ((j * 0x9E3779B9) & MASK32)) for j in range(n)]


def zipf_ranks(seed_seq: np.random.SeedSequence, t: int, v: int, n: int, icdf, w: int):
    """The documented Zipf ranks of the first ``n`` slots over a working set of ``w``:
    ``searchsorted(icdf, (x * icdf[w - 1]) >> 32, "right")``."""
    x = np.array(slot_uniforms(seed_seq, t, v, n), dtype=np.uint64)
    needle = (x * np.uint64(icdf[w - 1])) >> np.uint64(32)
    return np.searchsorted(icdf, needle.astype(np.int64), side="right")


def one_env(*wls: WorkloadParams, seed: int) -> tuple[Workload, np.random.SeedSequence]:
    """A one-env Workload of ``wls`` reset from ``SeedSequence(seed)``, and that sequence."""
    ss = np.random.SeedSequence(seed)
    wl = Workload(host(*wls), 1)
    wl.reset(np.array([0]), [ss])
    return wl, ss


small_wl = st.builds(
    lambda fp, ws, refs, alpha, cold, wr, shape, grow, restart: WorkloadParams(
        footprint_pages=fp,
        initial_live_pages=fp // 2 if grow else None,
        growth_pages_per_tick=grow,
        restart_period_ticks=restart,
        phases=(
            Phase(
                duration_ticks=3,
                ws_pages=min(ws, fp),  # a working set cannot exceed the footprint
                refs_per_tick=refs,
                shape=shape,
                ws_min_pages=min(ws, fp) // 3,
                period_ticks=4,
                burst_prob=0.3,
                burst_ticks=2,
            ),
            Phase(
                duration_ticks=2,
                ws_pages=max(1, min(ws, fp) // 2),
                refs_per_tick=refs // 2 + 1,
                ws_offset_pages=fp // 3,
            ),
        ),
        zipf_alpha=alpha,
        cold_fraction=cold,
        write_fraction=wr,
    ),
    fp=st.integers(1, 200),
    ws=st.integers(1, 150),
    refs=st.integers(0, 40),
    alpha=st.sampled_from([0.0, 0.5, 1.0, 1.7]),
    cold=st.sampled_from([0.0, 0.1, 1.0]),
    wr=st.sampled_from([0.0, 0.3, 1.0]),
    shape=st.sampled_from(["steady", "periodic", "bursts", "growth", "idle"]),
    grow=st.integers(0, 7),
    restart=st.sampled_from([0, 5]),
)


# --- basic contract ---------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(wls=st.lists(small_wl, min_size=1, max_size=3), seed=st.integers(0, 2**32))
def test_refs_in_range_and_counts(wls, seed):
    params = host(*wls)
    wl = Workload(params, 2)
    wl.reset(np.arange(2), seqs([seed, seed + 1]))
    R = max(w.max_refs_per_tick for w in wls)
    for _ in range(12):
        d = wl.draw()
        assert d.refs.shape == d.writes.shape == (2, len(wls), R)
        assert d.refs.dtype == np.int32 and d.writes.dtype == bool and d.live.dtype == np.int32
        for b in range(2):
            for v, w in enumerate(wls):
                live = int(d.live[b, v])
                assert 0 <= live <= w.footprint_pages
                valid = d.refs[b, v] >= 0
                n = int(valid.sum())
                phase = w.phases[int(wl.phase[b, v])]
                assert n == (phase.refs_per_tick if live > 0 else 0)
                assert valid[:n].all()  # padding is a suffix
                assert (d.refs[b, v, valid] < live).all()
                assert (d.refs[b, v, ~valid] == -1).all()
                assert not d.writes[b, v, ~valid].any()
                assert 1 <= wl.ws_pages[b, v] <= max(live, 1)


def test_draw_before_reset_raises():
    wl = Workload(host(steady()), 2)
    wl.reset(np.array([0]), seqs([1]))
    with pytest.raises(RuntimeError, match="reset"):
        wl.draw()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: Workload(host(steady()), 0), "num_envs"),
        (lambda: Workload(host(steady()), 1.5), "num_envs"),
        (lambda: Workload("x", 1), "params"),
        (lambda: Workload(host(steady()), 2).reset(np.array([0, 1]), seqs([1])), "seed_seqs"),
        (lambda: Workload(host(steady()), 2).reset(np.array([2]), seqs([1])), "env_ids"),
        (lambda: Workload(host(steady()), 2).reset(np.array([0, 0]), seqs([1, 2])), "env_ids"),
        (lambda: Workload(host(steady()), 2).reset(np.array([0]), [3]), "SeedSequence"),
        (lambda: page_layout("x"), "WorkloadParams"),
    ],
)
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- determinism and batch independence ---------------------------------------------
def assert_same(a: Demand, b: Demand) -> None:
    np.testing.assert_array_equal(a.live, b.live)
    np.testing.assert_array_equal(a.refs, b.refs)
    np.testing.assert_array_equal(a.writes, b.writes)


@settings(max_examples=15, deadline=None)
@given(wls=st.lists(small_wl, min_size=1, max_size=3), seed=st.integers(0, 2**32))
def test_same_seed_same_stream(wls, seed):
    params = host(*wls)
    for a, b in zip(run(params, [seed], 15), run(params, [seed], 15), strict=True):
        assert_same(a, b)


@settings(max_examples=15, deadline=None)
@given(wls=st.lists(small_wl, min_size=1, max_size=3), seed=st.integers(0, 2**30))
def test_batch_independence_with_partial_resets(wls, seed):
    params = host(*wls)
    B = 5
    seeds = [seed + i for i in range(B)]
    batch = Workload(params, B)
    batch.reset(np.arange(B), seqs(seeds))
    alone = [Workload(params, 1) for _ in range(B)]
    for i, a in enumerate(alone):
        a.reset(np.array([0]), seqs([seeds[i]]))
    for t in range(14):
        if t in (4, 9):  # reset envs 1 and 3 mid-stream with new seeds
            for i in (1, 3):
                seeds[i] += 1000
                alone[i].reset(np.array([0]), seqs([seeds[i]]))
            batch.reset(np.array([3, 1]), seqs([seeds[3], seeds[1]]))
        d = batch.draw()
        for i, a in enumerate(alone):
            e = a.draw()
            np.testing.assert_array_equal(d.live[i], e.live[0])
            np.testing.assert_array_equal(d.refs[i], e.refs[0])
            np.testing.assert_array_equal(d.writes[i], e.writes[0])


def test_different_seeds_differ():
    a, b = run(host(steady(), steady()), [1, 2], 1)[0].refs
    assert not np.array_equal(a, b)


def test_reset_restarts_the_stream():
    params = host(steady(zipf_alpha=0.5, cold_fraction=0.2))
    wl = Workload(params, 1)
    wl.reset(np.array([0]), seqs([7]))
    first = [wl.draw().copy() for _ in range(3)]
    wl.reset(np.array([0]), seqs([7]))
    for d in first:
        assert_same(d, wl.draw())


# --- the documented sampling rule, recomputed in plain Python -----------------------
@pytest.mark.parametrize("alpha", [0.0, 0.9, 1.6, 3.0])
@pytest.mark.parametrize("ws", [1, 7, 300, 5000])
def test_zipf_ranks_match_documented_rule(alpha, ws):
    """Guide-table ranks equal an exact searchsorted of the integer inverse CDF."""
    fp = 6000
    wp = steady(
        footprint_pages=fp,
        ws_pages=ws,
        refs_per_tick=3000,
        zipf_alpha=alpha,
        cold_fraction=0.0,
        ws_offset_pages=17,
    )
    wl, ss = one_env(wp, seed=99)
    icdf = zipf_tables(alpha, min(ws, fp))[0]
    for t in range(2):
        d = wl.draw()
        ranks = zipf_ranks(ss, t, 0, 3000, icdf, ws)
        np.testing.assert_array_equal(d.refs[0, 0], (17 + ranks) % fp)


def test_periodic_w_changes_keep_ranks_exact():
    wp = steady(
        footprint_pages=4096,
        ws_pages=4096,
        ws_min_pages=10,
        shape="periodic",
        period_ticks=7,
        refs_per_tick=2000,
        zipf_alpha=1.1,
        cold_fraction=0.0,
    )
    wl, ss = one_env(wp, seed=5)
    icdf = zipf_tables(1.1, 4096)[0]
    for t in range(7):
        d = wl.draw()
        w = int(wl.ws_pages[0, 0])
        np.testing.assert_array_equal(d.refs[0, 0], zipf_ranks(ss, t, 0, 2000, icdf, w))


def test_cold_pages_match_documented_rule():
    wp = steady(footprint_pages=777, refs_per_tick=500, cold_fraction=1.0, write_fraction=0.4)
    wl, ss = one_env(wp, seed=3)
    d = wl.draw()
    x = slot_uniforms(ss, 0, 0, 500)
    assert d.refs[0, 0].tolist() == [(xi * 777) >> 32 for xi in x]
    thr = round(0.4 * 2**32)
    assert d.writes[0, 0].tolist() == [((xi * 0x9E3779B9) & MASK32) < thr for xi in x]


# --- statistics ---------------------------------------------------------------------
def test_zipf_skew():
    wp = steady(
        footprint_pages=2000,
        ws_pages=1000,
        refs_per_tick=4000,
        zipf_alpha=1.0,
        cold_fraction=0.0,
        ws_offset_pages=100,
    )
    d = run(host(wp), [11], 5)
    refs = np.concatenate([x.refs[0, 0] for x in d])
    counts = np.bincount(refs, minlength=2000)
    assert counts.argmax() == 100  # rank 0 sits at the offset
    assert counts[100] > counts[101] > counts[110] > counts[1000]
    assert counts[:100].sum() == 0 and counts[1100:].sum() == 0
    h = sum(1 / k for k in range(1, 1001))
    assert counts[100] / refs.size == pytest.approx(1 / h, rel=0.05)


def test_write_and_cold_fractions():
    wp = steady(
        footprint_pages=10_000,
        ws_pages=100,
        refs_per_tick=2000,
        zipf_alpha=0.8,
        cold_fraction=0.25,
        write_fraction=0.3,
    )
    d = run(host(wp, wp), [5, 6, 7], 10)
    refs = np.stack([x.refs for x in d])
    writes = np.stack([x.writes for x in d])
    n = refs.size
    assert writes.mean() == pytest.approx(0.3, abs=4 * math.sqrt(0.21 / n))
    # Zipf refs fall in [0, 100); cold ones are uniform over [0, 10000).
    outside = (refs >= 100).mean()
    assert outside == pytest.approx(0.25 * 0.99, abs=4 * math.sqrt(0.19 / n))
    # writes independent of cold-ness
    assert writes[refs >= 100].mean() == pytest.approx(0.3, abs=0.02)


def test_zero_refs_and_full_fractions():
    d = run(host(steady(refs_per_tick=0), steady(refs_per_tick=5, write_fraction=1.0)), [1], 3)
    for x in d:
        assert (x.refs[0, 0] == -1).all()
        assert x.writes[0, 1].all()


# --- W(t) shapes ---------------------------------------------------------------------
def ws_series(wp: WorkloadParams, ticks: int, seed: int = 0) -> list[int]:
    wl = Workload(host(wp), 1, load_workload_data(host(wp)))
    wl.reset(np.array([0]), seqs([seed]))
    out = []
    for _ in range(ticks):
        wl.draw()
        out.append(int(wl.ws_pages[0, 0]))
    return out


def test_periodic_shape():
    wp = steady(
        footprint_pages=1000, ws_pages=500, ws_min_pages=100, shape="periodic", period_ticks=20
    )
    w = ws_series(wp, 40)
    expect = [
        math.floor(100 + 400 * (1 + math.sin(2 * math.pi * t / 20)) / 2 + 0.5) for t in range(40)
    ]
    assert w == expect
    assert max(w) == 500 and min(w) == 100


def test_growth_shape():
    wp = steady(
        footprint_pages=1000, ws_pages=300, ws_min_pages=100, shape="growth", period_ticks=10
    )
    assert ws_series(wp, 14) == [100 + 20 * t for t in range(10)] + [300] * 4


def test_bursts_shape():
    wp = steady(
        footprint_pages=1000,
        ws_pages=300,
        ws_min_pages=20,
        shape="bursts",
        burst_prob=0.1,
        burst_ticks=4,
    )
    w = np.array(ws_series(wp, 2000, seed=4))
    assert set(w.tolist()) == {20, 300}
    hi = w == 300
    starts = np.flatnonzero(hi & ~np.r_[False, hi[:-1]])
    assert 0.1 / (1 + 0.1 * 4) * 0.7 < starts.size / 2000 < 0.1 / (1 + 0.1 * 4) * 1.3
    runs = np.diff(np.r_[starts, 2000])
    for s in starts[:-1]:  # each burst lasts burst_ticks (back-to-back bursts merge)
        assert hi[s : s + 4].all()
    assert (runs >= 4).all()


def test_idle_and_phase_cycle():
    wp = WorkloadParams(
        footprint_pages=1000,
        phases=(
            Phase(duration_ticks=2, ws_pages=50, refs_per_tick=10),
            Phase(duration_ticks=3, ws_pages=60, ws_min_pages=0, shape="idle", refs_per_tick=2),
        ),
    )
    assert ws_series(wp, 10) == [50, 50, 1, 1, 1] * 2
    d = run(host(wp), [0], 5)
    assert [int((x.refs[0, 0] >= 0).sum()) for x in d] == [10, 10, 2, 2, 2]


def test_ws_capped_by_live():
    wp = steady(footprint_pages=1000, initial_live_pages=10, growth_pages_per_tick=10, ws_pages=35)
    assert ws_series(wp, 5) == [10, 20, 30, 35, 35]


# --- live footprint --------------------------------------------------------------------
def test_live_growth_and_restart():
    wp = steady(
        footprint_pages=50, initial_live_pages=5, growth_pages_per_tick=10, restart_period_ticks=8
    )
    live = [int(x.live[0, 0]) for x in run(host(wp), [0], 17)]
    assert live == [5, 15, 25, 35, 45, 50, 50, 50] * 2 + [5]


def test_live_zero_means_no_refs():
    wp = steady(footprint_pages=50, initial_live_pages=0, growth_pages_per_tick=1)
    d = run(host(wp), [0], 3)
    assert (d[0].refs == -1).all() and not d[0].writes.any()
    assert (d[1].refs[0, 0] == 0).all()


# --- page layout -------------------------------------------------------------------------
@given(
    fp=st.integers(1, 5000),
    f=st.floats(0.0, 1.0),
    s=st.floats(0.0, 1.0),
)
@settings(max_examples=60, deadline=None)
def test_page_layout_fractions(fp, f, s):
    wp = steady(footprint_pages=fp, file_fraction=f, shareable_fraction=s)
    is_file, is_share = page_layout(wp)
    assert is_file.shape == is_share.shape == (fp,)
    assert is_file.dtype == bool
    assert abs(int(is_file.sum()) - fp * f) <= 1
    assert abs(int(is_share.sum()) - fp * s) <= 1
    again = page_layout(steady(footprint_pages=fp, file_fraction=f, shareable_fraction=s))
    np.testing.assert_array_equal(is_file, again[0])
    np.testing.assert_array_equal(is_share, again[1])


def test_page_layout_spread_and_distinct():
    wp = steady(footprint_pages=1000, file_fraction=0.5, shareable_fraction=0.5)
    is_file, is_share = page_layout(wp)
    assert not np.array_equal(is_file, is_share)
    assert np.diff(np.flatnonzero(is_file)).max() == 2  # evenly spread


def test_standard_params_draw_shape():
    p = standard_params(guest_pages=512, refs_per_tick=64)
    wl = Workload(p, 3)
    wl.reset(np.arange(3), seqs([0, 1, 2]))
    d = wl.draw()
    assert d.refs.shape == (3, 4, 64)
    assert (d.refs >= 0).all()


def test_mixed_vm_tables_match_documented_rule():
    """VMs with different Zipf tables (guide offsets, bucket widths, multi buckets)."""
    kw = dict(cold_fraction=0.0)
    wps = [
        steady(footprint_pages=300, ws_pages=200, refs_per_tick=900, zipf_alpha=0.3, **kw),
        steady(footprint_pages=9000, ws_pages=8000, refs_per_tick=1000, zipf_alpha=2.5, **kw),
        steady(footprint_pages=50, ws_pages=50, refs_per_tick=10, zipf_alpha=1.0, **kw),
    ]
    assert zipf_tables(2.5, 8000)[3]  # the slow path is exercised
    wl, ss = one_env(*wps, seed=21)
    for t in range(2):
        d = wl.draw()
        for v, w in enumerate(wps):
            n, ws = w.phases[0].refs_per_tick, w.phases[0].ws_pages
            icdf = zipf_tables(w.zipf_alpha, ws)[0]
            np.testing.assert_array_equal(d.refs[0, v, :n], zipf_ranks(ss, t, v, n, icdf, ws))


# --- trace replay and demand-driven W(t) -------------------------------------------------
from envs.data import resolve_demand, resolve_trace  # noqa: E402
from envs.sim.params import DemandSpec, TraceSpec  # noqa: E402
from envs.sim.workload import ResolvedTrace, WorkloadData  # noqa: E402

LIRS_TEXT = "50\n70\n50\n90\n*\n70\n30\n50\n90\n90\n10\n"  # compact: 0 1 0 2 1 3 0 2 2 4
LIRS_COMPACT = [0, 1, 0, 2, 1, 3, 0, 2, 2, 4]
SPEC_TEXT = "l 0x1000 3\ns 0x1008 1\nl 0x5000 2\ns 0x2000 9\nl 0x1fff 1\n"  # pages 1 1 5 2 1


@pytest.fixture
def trace_files(tmp_path, monkeypatch):
    """Two tiny traces in the published formats (no shared data needed)."""
    monkeypatch.setenv("RECLAIM_CACHE_DIR", str(tmp_path / "cache"))
    lirs = tmp_path / "tiny.trace"
    lirs.write_text(LIRS_TEXT)
    spec = tmp_path / "tiny_spec.trace"
    spec.write_text(SPEC_TEXT)
    return TraceSpec("lirs", str(lirs)), TraceSpec("spec2000", str(spec))


def trace_wl(specs, refs=3, fp=None, phases=None, **kw) -> WorkloadParams:
    n = sum(resolve_trace(s).n_distinct for s in specs)
    return WorkloadParams(
        footprint_pages=fp or n,
        phases=phases or (Phase(ws_pages=1, refs_per_tick=refs),),
        traces=tuple(specs),
        **kw,
    )


def flat_refs(demands, v=0, b=0):
    r = np.concatenate([d.refs[b, v] for d in demands])
    w = np.concatenate([d.writes[b, v] for d in demands])
    return r[r >= 0], w[r >= 0]


def test_trace_replay_is_exact_and_loops(trace_files):
    lirs, _ = trace_files
    refs, _ = flat_refs(run(host(trace_wl([lirs], refs=3)), [1], 7))
    assert refs.tolist() == (LIRS_COMPACT * 3)[:21]


def test_trace_offset_and_phase_refs(trace_files):
    lirs, _ = trace_files
    phases = (
        Phase(duration_ticks=2, ws_pages=1, refs_per_tick=3),
        Phase(duration_ticks=1, ws_pages=1, refs_per_tick=1),
    )
    wl = trace_wl([lirs], phases=phases, trace_offset_refs=4)
    d = run(host(wl), [1], 6)
    assert [int((x.refs[0, 0] >= 0).sum()) for x in d] == [3, 3, 1, 3, 3, 1]
    refs, _ = flat_refs(d)
    assert refs.tolist() == [LIRS_COMPACT[(4 + i) % 10] for i in range(14)]


def test_trace_writes_from_trace_or_fraction(trace_files):
    lirs, spec = trace_files
    refs, writes = flat_refs(run(host(trace_wl([spec], refs=5)), [3], 2))
    assert refs.tolist() == [0, 0, 1, 2, 0] * 2  # pages 1 1 5 2 1 compacted
    assert writes.tolist() == [False, True, False, True, False] * 2
    _, w0 = flat_refs(run(host(trace_wl([lirs], refs=10, write_fraction=0.0)), [3], 3))
    _, w1 = flat_refs(run(host(trace_wl([lirs], refs=10, write_fraction=1.0)), [3], 3))
    assert not w0.any() and w1.all()


def test_trace_interleave_and_maps(trace_files):
    lirs, spec = trace_files  # 5 and 3 distinct pages: combined ids 0..4 and 5..7
    wl = trace_wl([lirs, spec], refs=4, trace_quantum_refs=2, write_fraction=0.0)
    refs, writes = flat_refs(run(host(wl), [0], 3))
    assert refs.tolist() == [0, 1, 5, 5, 0, 2, 6, 7, 1, 3, 5, 5]
    assert writes.tolist() == [False, False, False, True] * 2 + [False] * 4
    fold = trace_wl([lirs], refs=10, fp=3)  # modulo: c mod 3
    assert flat_refs(run(host(fold), [0], 1))[0].tolist() == [c % 3 for c in LIRS_COMPACT]
    stretch = trace_wl([lirs], refs=10, fp=20, trace_map="scale")  # (c * 20) // 5
    assert flat_refs(run(host(stretch), [0], 1))[0].tolist() == [4 * c for c in LIRS_COMPACT]


def test_trace_random_start_is_seeded_and_batch_independent(trace_files):
    lirs, spec = trace_files
    wl = trace_wl([lirs], refs=4, trace_random_start=True, trace_offset_refs=3)
    wl2 = trace_wl([lirs, spec], refs=3, trace_random_start=True)
    params = host(wl, wl, wl2)
    a, b = run(params, [5], 6), run(params, [5], 6)
    for x, y in zip(a, b, strict=True):
        assert_same(x, y)
    # Each VM starts somewhere in the loop, at its own position.
    starts = {tuple(flat_refs(run(params, [s], 1), v=0)[0].tolist()) for s in range(12)}
    assert len(starts) > 1
    seeds = [5, 6, 7, 8]
    batch = run(params, seeds, 6)
    for i, s in enumerate(seeds):
        alone = run(params, [s], 6)
        for x, y in zip(batch, alone, strict=True):
            np.testing.assert_array_equal(x.refs[i], y.refs[0])
            np.testing.assert_array_equal(x.writes[i], y.writes[0])


def test_trace_vm_leaves_synthetic_vm_stream_unchanged(trace_files):
    lirs, _ = trace_files
    syn = steady(footprint_pages=300, ws_pages=200, refs_per_tick=40, cold_fraction=0.1)
    alone = run(host(syn, syn), [9], 5)
    mixed = run(host(syn, trace_wl([lirs], refs=7)), [9], 5)
    for x, y in zip(alone, mixed, strict=True):
        np.testing.assert_array_equal(x.refs[:, 0], y.refs[:, 0])
        np.testing.assert_array_equal(x.writes[:, 0], y.writes[:, 0])


def _bitbrains_csv(path, usage_kb, capacity_kb=1000.0, gap_after=None):
    header = "Timestamp [ms];\tCPU cores;\tMemory capacity provisioned [KB];\tMemory usage [KB]"
    lines, t = [header], 1_000_000
    for i, u in enumerate(usage_kb):
        lines.append(f"{t};\t2;\t{capacity_kb};\t{u}")
        t += 300 if i != gap_after else 900  # a monitoring gap of two samples
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_demand_series_sets_ws_by_documented_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("RECLAIM_CACHE_DIR", str(tmp_path / "cache"))
    name = _bitbrains_csv(tmp_path / "vm.csv", [100, 500, 1000, 0], gap_after=1)
    f = resolve_demand(name)
    assert f.tolist() == [0.1, 0.5, 0.5, 0.5, 1.0, 0.0]  # sample-and-hold over the gap
    assert resolve_demand(name, "peak").tolist() == [0.1, 0.5, 0.5, 0.5, 1.0, 0.0]
    spec = DemandSpec(names=(name,), ticks_per_sample=4, random_start=False, start_sample=1)
    wp = WorkloadParams(
        footprint_pages=500,
        phases=(Phase(ws_pages=410, ws_min_pages=10, refs_per_tick=20),),
        demand=spec,
    )
    got = ws_series(wp, 30)
    expect = []
    for t in range(30):
        i = (1 + t // 4) % 6
        r = (t % 4) / 4
        ft = f[i] * (1 - r) + f[(i + 1) % 6] * r
        expect.append(max(1, 10 + math.floor(400 * ft + 0.5)))
    assert got == expect


def test_demand_pool_choice_is_seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("RECLAIM_CACHE_DIR", str(tmp_path / "cache"))
    a = _bitbrains_csv(tmp_path / "a.csv", [0] * 8)
    b = _bitbrains_csv(tmp_path / "b.csv", [1000] * 8)
    wp = WorkloadParams(
        footprint_pages=100,
        phases=(Phase(ws_pages=100, ws_min_pages=1, refs_per_tick=5),),
        demand=DemandSpec(names=(a, b)),
    )
    firsts = {ws_series(wp, 1, seed=s)[0] for s in range(16)}
    assert firsts == {1, 100}  # both series get picked
    assert ws_series(wp, 9, seed=3) == ws_series(wp, 9, seed=3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: TraceSpec("nope", "x"), "kind"),
        (lambda: TraceSpec("lirs", ""), "name"),
        (lambda: TraceSpec("arc", "x", blocks_per_page=0), "blocks_per_page"),
        (lambda: DemandSpec(names=()), "names"),
        (lambda: DemandSpec(names=("a",), normalize="x"), "normalize"),
        (lambda: WorkloadParams(trace_map="x"), "trace_map"),
        (lambda: WorkloadParams(traces=("lirs/cs",)), "TraceSpec"),
        (
            lambda: WorkloadParams(
                traces=(TraceSpec("lirs", "x"),), demand=DemandSpec(names=("a",))
            ),
            "exclusive",
        ),
    ],
)
def test_trace_param_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_missing_trace_file_names_it(tmp_path):
    wl = WorkloadParams(traces=(TraceSpec("lirs", str(tmp_path / "absent")),))
    with pytest.raises(FileNotFoundError, match="absent"):
        load_workload_data(host(wl))


def test_trace_params_without_data_are_refused():
    spec = TraceSpec("lirs", "lirs/cs")
    params = host(WorkloadParams(traces=(spec,)))
    with pytest.raises(ValueError, match="data is None.*load_workload_data"):
        Workload(params, 1)
    with pytest.raises(ValueError, match="no trace for"):
        Workload(params, 1, WorkloadData())
    dem = host(WorkloadParams(demand=DemandSpec(names=("x/1",))))
    with pytest.raises(ValueError, match="no demand series 'x/1'"):
        Workload(dem, 1, WorkloadData(traces={spec: None}))


def test_workload_replays_arrays_handed_over():
    """The core needs no files: a WorkloadData built from arrays replays as given."""
    spec = TraceSpec("lirs", "not/a/file")
    pages = np.array([0, 1, 0, 2, 1, 3, 0, 2, 2, 4], np.int32)
    data = WorkloadData(traces={spec: ResolvedTrace(pages, None, 5, "memory")})
    wl = WorkloadParams(footprint_pages=5, phases=(Phase(ws_pages=1, refs_per_tick=3),))
    params = host(dataclasses.replace(wl, traces=(spec,)))
    w = Workload(params, 1, data)
    w.reset(np.arange(1), seqs([1]))
    refs, _ = flat_refs([w.draw().copy() for _ in range(7)])
    assert refs.tolist() == (pages.tolist() * 3)[:21]


def test_trace_workload_core_equals_reference(trace_files):
    lirs, spec = trace_files
    vms = (
        VmParams(
            guest_pages=8,
            kernel_pages=2,
            guest_reserve_pages=1,
            guest_swap_pages=8,
            workload=trace_wl([lirs]),
        ),
        VmParams(
            guest_pages=6,
            kernel_pages=1,
            guest_reserve_pages=0,
            guest_swap_pages=2,
            workload=trace_wl([lirs, spec], refs=5, trace_random_start=True, file_fraction=0.5),
        ),
    )
    params = HostParams(vms=vms, host_frames=9, host_swap_pages=6, host_min_free=1)
    run_differential(params, [3, 4], action_seed=1, ticks=40)


@pytest.mark.data
def test_shared_trace_and_bitbrains_streams_are_deterministic(shared_data):
    from envs.sim.params import bitbrains_names

    wl_t = WorkloadParams(
        footprint_pages=1000,
        phases=(Phase(ws_pages=1000, refs_per_tick=64),),
        traces=(TraceSpec("lirs", "lirs/cs"), TraceSpec("spec2000", "spec2000/gcc")),
        trace_map="scale",
        trace_random_start=True,
    )
    wl_d = WorkloadParams(
        footprint_pages=1000,
        phases=(Phase(ws_pages=1000, ws_min_pages=8, refs_per_tick=64),),
        demand=DemandSpec(names=bitbrains_names(1, 5)),
    )
    params = host(wl_t, wl_d)
    seeds = [11, 12, 13]
    batch = run(params, seeds, 8)
    for i, s in enumerate(seeds):
        for x, y in zip(batch, run(params, [s], 8), strict=True):
            np.testing.assert_array_equal(x.refs[i], y.refs[0])
            np.testing.assert_array_equal(x.writes[i], y.writes[0])
    for x, y in zip(batch, run(params, seeds, 8), strict=True):
        assert_same(x, y)


@settings(max_examples=30, deadline=None)
@given(params=host_params(), seed=st.integers(0, 2**32), mask_seed=st.integers(0, 2**16))
def test_advancing_some_vms_draws_each_vms_open_loop_batches_in_order(params, seed, mask_seed):
    """``draw(advance)`` (the closed loop, SEMANTICS.md §10): whatever the VMs that
    advance, each VM's k-th advancing draw is its open-loop draw of tick k (phases,
    bursts, cold references, streams), and a VM that waits issues nothing and keeps its
    last batch's live footprint."""
    check_advance(params, seed, mask_seed)


def check_advance(params, seed: int, mask_seed: int, data=None) -> None:
    """The closed-loop draw against the open loop's (the test above)."""
    ticks, B = 24, 2
    ref = Workload(params, B, data)
    ref.reset(np.arange(B), seqs([seed, seed + 1]))
    batches = [ref.draw().copy() for _ in range(ticks)]
    wl = Workload(params, B, data)
    wl.reset(np.arange(B), seqs([seed, seed + 1]))
    rng = np.random.default_rng(mask_seed)
    n = np.zeros((B, params.num_vms), np.int64)
    for t in range(ticks):
        adv = rng.random((B, params.num_vms)) < 0.6
        if t == 0:
            adv[:] = True
        d = wl.draw(adv)
        for b in range(B):
            for v in range(params.num_vms):
                k = n[b, v] if adv[b, v] else n[b, v] - 1
                assert d.live[b, v] == batches[k].live[b, v]
                if adv[b, v]:
                    np.testing.assert_array_equal(d.refs[b, v], batches[k].refs[b, v])
                    np.testing.assert_array_equal(d.writes[b, v], batches[k].writes[b, v])
                else:
                    assert (d.refs[b, v] == -1).all() and not d.writes[b, v].any()
        n += adv
        np.testing.assert_array_equal(wl.vm_ticks, n)
    assert wl.ticks.tolist() == [ticks] * B


def test_advance_must_have_one_flag_per_env_and_vm():
    wl = Workload(host(steady()), 2)
    wl.reset(np.arange(2), seqs([1, 2]))
    with pytest.raises(ValueError, match="advance must have shape"):
        wl.draw(np.ones((2, 3), bool))


def test_advancing_trace_and_demand_vms_replays_their_streams_by_progress(
    trace_files, tmp_path, monkeypatch
):
    """Traces (two interleaved, random start) and a demand-driven W(t) on a closed loop:
    a VM's stream positions and demand samples follow its own nominal tick."""
    lirs, spec = trace_files
    name = _bitbrains_csv(tmp_path / "vm.csv", [100, 500, 1000, 0], gap_after=1)
    tr = trace_wl([lirs, spec], refs=3, trace_quantum_refs=2, trace_random_start=True)
    dm = WorkloadParams(
        footprint_pages=500,
        phases=(Phase(ws_pages=410, ws_min_pages=10, refs_per_tick=20),),
        demand=DemandSpec(names=(name,), ticks_per_sample=4),
    )
    params = host(tr, dm, steady())
    for mask_seed in range(4):
        check_advance(params, 9, mask_seed, load_workload_data(params))
