"""libCacheSim peer oracle (experiments/libcachesim_peer.py) against a tiny exact LRU."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("libcachesim", reason="libcachesim (dev extra) not installed")

from experiments.libcachesim_peer import (  # noqa: E402
    ORACLE_GENERAL_DTYPE,
    lru_miss_count,
    lru_throughput,
    write_oracle_general,
)
from tests.lru import exact_lru_misses


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("cache_pages", [1, 2, 7, 64, 500])
def test_lru_miss_count_matches_exact_lru(seed: int, cache_pages: int) -> None:
    rng = np.random.default_rng(seed)
    # Zipf popularity over a few hundred pages: a mix of hits and misses at every size.
    pages = (rng.zipf(1.3, 5_000) % 300).astype(np.int64)
    assert lru_miss_count(pages, cache_pages) == exact_lru_misses(pages, cache_pages)


def test_lru_miss_count_small_cases() -> None:
    assert lru_miss_count(np.array([], dtype=np.int64), 4) == 0
    assert lru_miss_count(np.array([0, 0, 0]), 1) == 1  # page id 0 is an ordinary id
    # A loop one page larger than the cache misses every time under LRU.
    loop = np.tile(np.arange(5), 20)
    assert lru_miss_count(loop, 4) == loop.size
    assert lru_miss_count(loop, 5) == 5
    big = np.array([2**40, 3, 2**40])  # ids beyond 32 bits survive the uint64 round trip
    assert lru_miss_count(big, 1) == 3
    assert lru_miss_count(big, 2) == 2


def test_lru_throughput_reports_misses_and_speed() -> None:
    pages = np.random.default_rng(1).integers(0, 1_000, 200_000)
    out = lru_throughput(pages, 100)
    assert out["misses"] == lru_miss_count(pages, 100)
    assert out["seconds"] > 0
    assert out["refs_per_s"] == pytest.approx(pages.size / out["seconds"])


def test_oracle_general_record_layout(tmp_path) -> None:
    path = tmp_path / "t.bin"
    write_oracle_general(np.array([5, 2**33]), path)
    raw = path.read_bytes()
    assert len(raw) == 2 * 24
    rec = np.frombuffer(raw, dtype=ORACLE_GENERAL_DTYPE)
    assert rec["obj_id"].tolist() == [5, 2**33]
    assert rec["obj_size"].tolist() == [1, 1]
    assert rec["next_access_vtime"].tolist() == [-1, -1]
    assert int.from_bytes(raw[4:12], "little") == 5  # obj_id right after the uint32 time


@pytest.mark.parametrize(
    ("pages", "cache_pages"),
    [
        (np.array([1, 2]), 0),
        (np.array([-1, 2]), 4),
        (np.zeros((2, 2), np.int64), 4),
        (np.array([0.5]), 4),
    ],
)
def test_bad_inputs_raise(pages: np.ndarray, cache_pages: int) -> None:
    with pytest.raises(ValueError):
        lru_miss_count(pages, cache_pages)
