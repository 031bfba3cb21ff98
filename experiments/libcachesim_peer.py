"""libCacheSim as a peer oracle for page reference strings.

The C LRU of `libCacheSim <https://github.com/1a1a11a/libCacheSim>`_ (Python package
``libcachesim``) is an independent, widely used implementation: it gives exact LRU miss
counts to check our own simulators against, and a speed yardstick for them.

The fastest correct path through the package is to write the reference string once as an
*oracleGeneral* binary trace (24-byte packed records, see ``ORACLE_GENERAL_DTYPE``) and let
``cache.process_trace`` replay it entirely in C; calling ``cache.get`` per request from
Python is two orders of magnitude slower. Every page is an object of size 1, so a cache of
``cache_pages`` bytes holds exactly ``cache_pages`` pages.

``libcachesim`` is a dev dependency, imported lazily so this module imports without it.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np

from envs.sim.checks import check_int

# libCacheSim's oracleGeneral record (traceReader/generalReader/oracleGeneralBin.h):
# struct { uint32_t clock_time; uint64_t obj_id; uint32_t obj_size; int64_t next_access_vtime; }
# packed, little-endian, 24 bytes.
ORACLE_GENERAL_DTYPE = np.dtype(
    [("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access_vtime", "<i8")]
)
assert ORACLE_GENERAL_DTYPE.itemsize == 24


def _check_inputs(pages: np.ndarray, cache_pages: int) -> np.ndarray:
    check_int("cache_pages", cache_pages, 1)
    pages = np.asarray(pages)
    if pages.ndim != 1:
        raise ValueError(f"pages must be 1-D, got shape {pages.shape}")
    if pages.size and not np.issubdtype(pages.dtype, np.integer):
        raise ValueError(f"pages must be integers, got dtype {pages.dtype}")
    if pages.size and pages.min() < 0:
        raise ValueError(f"pages must be >= 0, got min {pages.min()}")
    return pages


def write_oracle_general(pages: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write ``pages`` as an oracleGeneral binary trace of unit-size objects.

    Timestamps are the request index (wrapping at 2**32, which LRU never reads) and
    ``next_access_vtime`` is -1 ("unknown"): LRU needs neither.
    """
    pages = np.asarray(pages)
    chunk = 1 << 22  # records per write: the 24-byte records of a long trace stay small
    with open(os.fspath(path), "wb") as f:
        for lo in range(0, max(pages.size, 1), chunk):
            part = pages[lo : lo + chunk]
            rec = np.empty(part.size, dtype=ORACLE_GENERAL_DTYPE)
            rec["clock_time"] = np.arange(lo, lo + part.size, dtype=np.uint64).astype(np.uint32)
            rec["obj_id"] = part.astype(np.uint64, copy=False)
            rec["obj_size"] = 1
            rec["next_access_vtime"] = -1
            rec.tofile(f)


def _run_lru(pages: np.ndarray, cache_pages: int) -> tuple[int, float]:
    """(misses, seconds spent in process_trace) of libCacheSim's LRU on ``pages``."""
    import libcachesim as lcs

    pages = _check_inputs(pages, cache_pages)
    n = int(pages.size)
    if n == 0:
        return 0, 0.0
    fd, path = tempfile.mkstemp(prefix="reclaim-lcs-", suffix=".oracleGeneral.bin")
    os.close(fd)
    try:
        write_oracle_general(pages, path)
        reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
        cache = lcs.LRU(cache_size=int(cache_pages))
        t0 = time.perf_counter()
        obj_miss_ratio, _byte_miss_ratio = cache.process_trace(reader)
        seconds = time.perf_counter() - t0
        n_read = reader.n_read_req
        # No reader.close(): the binding frees the reader again on destruction (double
        # free in libcachesim 0.3.5); dropping the reference releases it once.
        del reader, cache
    finally:
        os.unlink(path)
    if n_read != n:
        raise RuntimeError(f"libcachesim read {n_read} requests, expected {n}")
    # The C side returns n_miss / n_req as a double; n < 2**52 so rounding is exact.
    return int(round(obj_miss_ratio * n)), seconds


def lru_miss_count(pages: np.ndarray, cache_pages: int) -> int:
    """Exact LRU miss count (cold misses included) of a reference string.

    Args:
        pages: 1-D non-negative integer page ids, in reference order.
        cache_pages: cache capacity in pages (>= 1).

    Returns:
        Number of references that miss in an LRU cache of ``cache_pages`` unit-size pages
        that starts empty.
    """
    return _run_lru(pages, cache_pages)[0]


STARTUP_REFS = 100_000
"""References of the prefix whose time :func:`lru_throughput` reports as start-up."""


def lru_throughput(pages: np.ndarray, cache_pages: int, startup: bool = False) -> dict[str, Any]:
    """Speed of libCacheSim's C LRU on ``pages``.

    Only ``process_trace`` is timed: writing the trace file is excluded. The rate grows
    with the trace's length (the first ~10**5 references cost ~10x more each, while
    the cache and its hash table are set up and grown), so a fair comparison feeds
    it a long trace. With ``startup``, the time of the first ``STARTUP_REFS``
    references alone (a separate run) is reported as ``startup_s`` and its share of
    the whole run as ``startup_share``: an upper bound of the start-up's share, as
    that prefix also does its references' work.

    Returns:
        ``{"refs_per_s": float, "misses": int, "seconds": float}`` (and
        ``"startup_s"``, ``"startup_share"`` with ``startup``).
    """
    misses, seconds = _run_lru(pages, cache_pages)
    n = int(np.asarray(pages).size)
    out: dict[str, Any] = {
        "refs_per_s": n / seconds if seconds > 0 else float("inf"),
        "misses": misses,
        "seconds": seconds,
    }
    if startup:
        head = _run_lru(np.asarray(pages)[:STARTUP_REFS], cache_pages)[1]
        out["startup_s"] = head
        out["startup_share"] = head / seconds if seconds > 0 else 1.0
    return out
