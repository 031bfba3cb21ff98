"""``experiments.fidelity``: the simulator's guest LRU against libCacheSim's exact LRU."""

from __future__ import annotations

import json

import pytest

from envs.sim.params import Phase, TraceSpec, WorkloadParams
from experiments.fidelity import fidelity_table, trace_rows

pytest.importorskip("libcachesim", reason="the exact-LRU peer is a dev dependency")

from tests.processes import run_cli  # noqa: E402

FIELDS = {"trace", "guest_pages", "sim_major_faults", "lru_misses", "rel_error"}
FIELDS |= {"tick_distinct_frac"}


def test_one_ref_per_tick_is_exact_lru():
    """With one reference per tick, tick-batched LRU is exact LRU: zero error."""
    wl = WorkloadParams(
        footprint_pages=80,
        phases=(Phase(ws_pages=60, refs_per_tick=1),),
        zipf_alpha=0.7,
        cold_fraction=0.1,
    )
    rows = fidelity_table(wl, [5, 20, 70], ticks=800, seed=3, name="zipf")
    assert [r.cache_pages for r in rows] == [5, 20, 70]
    for r in rows:
        assert r.refs == 800 and r.sim_misses == r.lru_misses > 0
        assert r.sim_misses == r.sim_major_faults + r.sim_minor_faults
    assert rows[0].lru_misses > rows[1].lru_misses > rows[2].lru_misses


def test_small_ticks_track_exact_lru_on_a_recording():
    """A shipped recording, a few refs per tick: within 2 % where ticks touch < 10 %."""
    rows = trace_rows(TraceSpec("recording", "gzip"), refs_per_tick=8, max_refs=12_000)
    assert len(rows) == 5
    for r in rows:
        assert r.refs == 12_000 and r.trace == "recording/gzip"
        if r.tick_distinct_frac < 0.1:
            assert abs(r.rel_error) <= 0.02, r


def test_rejects_a_changing_footprint():
    wl = WorkloadParams(
        footprint_pages=50,
        initial_live_pages=10,
        growth_pages_per_tick=1,
        phases=(Phase(ws_pages=50),),
    )
    with pytest.raises(ValueError, match="static"):
        fidelity_table(wl, [10], ticks=5)


def test_cli_fidelity_json():
    out = run_cli(["fidelity", "--json", "--traces", "recording:sqlite3", "--max-refs", "1500",
                   "--refs-per-tick", "3"])  # fmt: skip
    rows = json.loads(out.stdout)
    assert len(rows) == 5
    for r in rows:
        assert FIELDS <= r.keys()
        assert r["trace"] == "recording/sqlite3" and r["refs"] == 1500
