"""Trace loaders (envs/traces.py): round trips, malformed input, caching, real data."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs import traces
from envs.traces import (
    compact,
    load_arc,
    load_bitbrains,
    load_lirs,
    load_recording,
    load_spec2000,
)
from tests import REPO  # noqa: E402
from tests.lru import exact_lru_misses

RECORDINGS = REPO / "experiments" / "traces" / "data"


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("RECLAIM_CACHE_DIR", str(cache))
    return cache


def write(path: Path, text: str, gz: bool) -> Path:
    raw = text.encode()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def error_at(path: Path, line: int) -> str:
    return re.escape(f"{path.resolve()}:{line}:")


# ------------------------------------------------------------------------ LIRS


@pytest.mark.parametrize("gz", [False, True])
def test_lirs_round_trip(tmp_path: Path, gz: bool) -> None:
    p = write(tmp_path / "t.trace", "5\n7\n*\n\n5\n123456789012\r\n0", gz)
    t = load_lirs(p)
    assert t.pages.dtype == np.int64
    assert t.pages.tolist() == [5, 7, 5, 123456789012, 0]
    assert t.writes is None
    assert t.name == "lirs/t" and t.source == str(p.resolve())
    assert load_lirs(p, blocks_per_page=4, use_cache=False).pages.tolist() == [
        1,
        1,
        1,
        123456789012 // 4,
        0,
    ]


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    gz_no_suffix = write(tmp_path / "a.trace", "1\n2\n", gz=True)
    plain_gz_suffix = write(tmp_path / "b.trace.gz", "3\n4\n", gz=False)
    assert load_lirs(gz_no_suffix).pages.tolist() == [1, 2]
    assert load_lirs(plain_gz_suffix).pages.tolist() == [3, 4]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("text", "line"),
    [("1\n2\nx3\n4\n", 3), ("1\n-2\n", 2), ("1\n\n2 3\n", 3), ("1\n*x\n", 2), ("9" * 19, 1)],
)
def test_lirs_malformed_names_file_and_line(tmp_path: Path, gz: bool, text: str, line: int) -> None:
    p = write(tmp_path / "bad.trace", text, gz)
    with pytest.raises(ValueError, match=error_at(p, line)):
        load_lirs(p, use_cache=False)


def test_error_quotes_line_content(tmp_path: Path) -> None:
    p = write(tmp_path / "bad.trace", "1\n2\n 3 oops\n", gz=False)
    with pytest.raises(ValueError, match=r"'3 oops'|' 3 oops'"):
        load_lirs(p, use_cache=False)


def test_chunk_boundaries_do_not_change_result_or_line_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 10**12, 5_000)
    p = write(tmp_path / "big.trace", "\n".join(map(str, blocks)) + "\n", gz=True)
    whole = load_lirs(p, use_cache=False).pages
    monkeypatch.setattr(traces, "_CHUNK_BYTES", 997)  # many chunks, cut mid-line
    assert np.array_equal(load_lirs(p, use_cache=False).pages, whole)
    assert np.array_equal(whole, blocks)
    lines = [str(b) for b in blocks]
    lines[4321] = "12z"
    bad = write(tmp_path / "bad.trace", "\n".join(lines) + "\n", gz=False)
    with pytest.raises(ValueError, match=error_at(bad, 4322)):
        load_lirs(bad, use_cache=False)


# -------------------------------------------------------------------- SPEC2000


@pytest.mark.parametrize("gz", [False, True])
def test_spec2000_round_trip(tmp_path: Path, gz: bool) -> None:
    text = "s 0x1fffff50 1\nl 0x1fffff58 1\nL 0X00001000 12\n\nl 0xFFFFFFFFFFFFF000 3\n"
    p = write(tmp_path / "gcc.trace", text, gz)
    t = load_spec2000(p)
    assert t.pages.tolist() == [0x1FFFF, 0x1FFFF, 0x1, 0xFFFFFFFFFFFFF]
    assert t.writes is not None and t.writes.tolist() == [True, False, False, False]
    assert t.name == "spec2000/gcc"
    big = load_spec2000(p, page_bytes=1 << 16)
    assert big.pages.tolist() == [0x1FFF, 0x1FFF, 0, 0xFFFFFFFFFFFF]
    with pytest.raises(ValueError, match="power of two"):
        load_spec2000(p, page_bytes=3000)


def test_spec2000_random_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    n = 3_000
    addr = rng.integers(0, 2**48, n, dtype=np.int64)
    ops = rng.random(n) < 0.3
    gaps = rng.integers(0, 1000, n)
    text = "".join(
        f"{'s' if w else 'l'} {a:#x} {g}\n"
        for w, a, g in zip(ops, addr.tolist(), gaps.tolist(), strict=True)
    )
    p = write(tmp_path / "r.trace", text, gz=True)
    monkeypatch.setattr(traces, "_CHUNK_BYTES", 4096)
    t = load_spec2000(p, use_cache=False)
    assert np.array_equal(t.pages, addr >> 12)
    assert np.array_equal(t.writes, ops)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("l 0x10 1\nx 0x10 1\n", 2),
        ("l 0x10 1\nl 0x1g 1\n", 2),
        ("l 0x10 1\nl 0x10\n", 2),
        ("l 0x10 1\nl 0x10 1 7\n", 2),
        ("l 0x10 1\n\nls 0x10 1\n", 3),
        ("l 0x10 a\n", 1),
        ("l 0x 1\n", 1),
    ],
)
def test_spec2000_malformed(tmp_path: Path, text: str, line: int) -> None:
    p = write(tmp_path / "bad.trace.gz", text, gz=True)
    with pytest.raises(ValueError, match=error_at(p, line)):
        load_spec2000(p, use_cache=False)


# ------------------------------------------------------------------------- ARC


@pytest.mark.parametrize("gz", [False, True])
def test_arc_round_trip(tmp_path: Path, gz: bool) -> None:
    p = write(tmp_path / "OLTP.lis", "10 3 0 0\n2 1 0 1\n6 4 0 2\n", gz)
    assert load_arc(p).pages.tolist() == [10, 11, 12, 2, 6, 7, 8, 9]
    # 4 blocks per page: a request references each page it overlaps once.
    assert load_arc(p, blocks_per_page=4).pages.tolist() == [2, 3, 0, 1, 2]
    assert load_arc(p).name == "arc/OLTP"


@pytest.mark.parametrize(
    ("text", "line"),
    [("1 1 0 0\n1 0 0 1\n", 2), ("1 1 0 0\n1 1 0\n", 2), ("1 1 0 0\n1 1 0 q\n", 2)],
)
def test_arc_malformed(tmp_path: Path, text: str, line: int) -> None:
    p = write(tmp_path / "bad.lis", text, gz=False)
    with pytest.raises(ValueError, match=error_at(p, line)):
        load_arc(p, use_cache=False)


# ------------------------------------------------------------------ Bitbrains

BB_HEADER = (
    "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\t"
    "CPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\t"
    "Disk read throughput [KB/s];\tDisk write throughput [KB/s];\t"
    "Network received throughput [KB/s];\tNetwork transmitted throughput [KB/s]"
)


def bb_row(t: int, cap: str, use: str) -> str:
    return f"{t};\t2;\t5851.9989;\t87.7;\t1.5;\t{cap};\t{use};\t0.0;\t1.0;\t0.2;\t1.4"


@pytest.mark.parametrize("gz", [False, True])
def test_bitbrains_clean(tmp_path: Path, gz: bool) -> None:
    rows = [
        bb_row(1000, "0.0", "0.0"),  # leading missing (0/0): back-filled from first valid
        bb_row(1300, "8000.0", "100.0"),
        bb_row(1600, "8000.0", "NaN"),  # missing: forward-filled
        bb_row(1900, "8000.0", "9000.0"),  # above capacity: clipped
        bb_row(2500, "", "50.5"),  # missing capacity: forward-filled (whole sample)
        bb_row(2200, "4000.0", "200.0"),  # out of order: sorted
        bb_row(2200, "4000.0", "999.0"),  # duplicate timestamp: dropped
    ]
    p = write(tmp_path / "7.csv", BB_HEADER + "\n" + "\n".join(rows) + "\n", gz)
    s = load_bitbrains(p)
    assert s.times_s.tolist() == [1000, 1300, 1600, 1900, 2200, 2500]
    assert s.capacity_kb.tolist() == [8000, 8000, 8000, 8000, 4000, 4000]
    assert s.usage_kb.tolist() == [100, 100, 100, 8000, 200, 200]
    assert (s.n_filled, s.n_clipped, s.n_duplicates_dropped) == (3, 1, 1)
    assert s.name == "bitbrains/7"
    again = load_bitbrains(p)  # from cache, counts included
    assert np.array_equal(again.usage_kb, s.usage_kb) and again.n_filled == 3


@pytest.mark.parametrize(
    ("body", "line", "msg"),
    [
        (bb_row(1, "1.0", "1.0") + "\n" + "1;\t2;\t3\n", 3, "fields"),
        (bb_row(1, "1.0", "1.0") + "\n" + bb_row(2, "1.0", "abc") + "\n", 3, "not a number"),
    ],
)
def test_bitbrains_malformed(tmp_path: Path, body: str, line: int, msg: str) -> None:
    p = write(tmp_path / "x.csv.gz", BB_HEADER + "\n" + body, gz=True)
    with pytest.raises(ValueError, match=error_at(p, line) + f".*{msg}"):
        load_bitbrains(p, use_cache=False)


def test_bitbrains_no_valid_sample(tmp_path: Path) -> None:
    p = write(tmp_path / "x.csv", BB_HEADER + "\n" + bb_row(1, "0.0", "0.0") + "\n", gz=False)
    with pytest.raises(ValueError, match="no valid memory sample"):
        load_bitbrains(p, use_cache=False)


@pytest.mark.parametrize(("sep", "what"), [(",", "comma"), ("\t", "tab")])
def test_bitbrains_wrong_separator_is_named(tmp_path: Path, sep: str, what: str) -> None:
    """A header split by another separator is reported as such, not as missing columns."""
    header = BB_HEADER.replace(";\t", sep)
    row = bb_row(1, "1.0", "1.0").replace(";\t", sep)
    p = write(tmp_path / "comma.csv", header + "\n" + row + "\n", gz=False)
    with pytest.raises(ValueError, match=error_at(p, 1) + f".*expected ';'-separated.*{what}"):
        load_bitbrains(p, use_cache=False)
    p = write(tmp_path / "other.csv", "a;b;c\n1;2;3\n", gz=False)
    with pytest.raises(ValueError, match="header lacks one of"):
        load_bitbrains(p, use_cache=False)


def test_missing_absolute_path_is_named_as_given(tmp_path: Path) -> None:
    """A missing absolute path is reported as given: no doubled suffix, no data-dir hint."""
    from envs.data import demand_path, trace_path
    from envs.sim.params import TraceSpec

    nope = tmp_path / "nope.csv.gz"
    with pytest.raises(FileNotFoundError) as e:
        demand_path(str(nope))
    msg = str(e.value)
    assert f"no file {nope}" in msg and ".csv.gz.csv.gz" not in msg
    assert "RECLAIM_DATA_DIR" not in msg
    bare = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=f"no file {re.escape(str(bare))} \\(nor with "):
        trace_path(TraceSpec(name=str(bare), kind="lirs"))
    (tmp_path / "there.csv").write_text("x")
    assert demand_path(str(tmp_path / "there")) == tmp_path / "there.csv"


def test_missing_relative_name_points_at_the_data_folder(tmp_path, monkeypatch) -> None:
    from envs.data import demand_path

    monkeypatch.setenv("RECLAIM_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="does not exist.*RECLAIM_DATA_DIR"):
        demand_path("bitbrains/1")


# ---------------------------------------------------------------- caching


def test_cache_hit_returns_equal_arrays_without_parsing(
    tmp_path: Path, _cache_in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = write(tmp_path / "c.trace", "s 0x1000 1\nl 0x2000 2\n", gz=True)
    first = load_spec2000(p)
    assert len(list(_cache_in_tmp.glob("*.npz"))) == 1

    def no_parse(*_a, **_k):
        raise AssertionError("parsed again despite a cache hit")

    monkeypatch.setattr(traces, "_chunks", no_parse)
    second = load_spec2000(p)
    assert np.array_equal(first.pages, second.pages)
    assert np.array_equal(first.writes, second.writes)
    assert second.pages.dtype == np.int64 and second.writes.dtype == bool
    # Parse parameters are part of the key: another page size is a miss.
    with pytest.raises(AssertionError, match="parsed again"):
        load_spec2000(p, page_bytes=8192)


def test_cache_invalidated_when_file_changes(tmp_path: Path, _cache_in_tmp: Path) -> None:
    p = write(tmp_path / "c.trace", "1\n2\n", gz=False)
    assert load_lirs(p).pages.tolist() == [1, 2]
    write(p, "3\n4\n5\n", gz=False)
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # coarse-mtime filesystems
    assert load_lirs(p).pages.tolist() == [3, 4, 5]
    assert len(list(_cache_in_tmp.glob("*.npz"))) == 2
    assert not list(_cache_in_tmp.glob("*.tmp"))  # atomic writes leave no temporaries


def test_cache_dir_argument_and_damaged_cache(tmp_path: Path) -> None:
    p = write(tmp_path / "c.trace", "1\n2\n", gz=False)
    d = tmp_path / "elsewhere"
    load_lirs(p, cache_dir=d)
    (cached,) = d.glob("*.npz")
    cached.write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match="unreadable trace cache"):
        assert load_lirs(p, cache_dir=d).pages.tolist() == [1, 2]


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.0])
def test_truncated_cache_is_reparsed_and_rewritten(
    tmp_path: Path, _cache_in_tmp: Path, monkeypatch: pytest.MonkeyPatch, keep: float
) -> None:
    """A cache .npz cut short (a crash, a full disk) is re-parsed, with a warning, and
    replaced atomically by a good one; it does not break the trace for good."""
    p = write(tmp_path / "c.trace", "s 0x1000 1\nl 0x2000 2\ns 0x9000 3\n", gz=True)
    first = load_spec2000(p)
    (cached,) = _cache_in_tmp.glob("*.npz")
    data = cached.read_bytes()
    cached.write_bytes(data[: int(len(data) * keep)])
    parses = []
    real_chunks = traces._chunks
    monkeypatch.setattr(traces, "_chunks", lambda src: parses.append(src) or real_chunks(src))
    with pytest.warns(UserWarning, match=r"re-parsing .*unreadable trace cache"):
        again = load_spec2000(p)
    assert len(parses) == 1  # parsed from the source, not read from the damaged cache
    assert again.pages.tolist() == first.pages.tolist()
    assert again.writes.tolist() == first.writes.tolist()
    assert cached.read_bytes() == data  # rewritten whole
    assert not list(_cache_in_tmp.glob("*.tmp"))
    load_spec2000(p)  # and read back from the cache without parsing
    assert len(parses) == 1


def _gz_truncated(raw: bytes) -> bytes:
    z = gzip.compress(raw)
    return z[: len(z) // 2]


def _gz_bad_crc(raw: bytes) -> bytes:
    z = bytearray(gzip.compress(raw))
    z[-8] ^= 0xFF  # the CRC32 of the trailer
    return bytes(z)


@pytest.mark.parametrize(
    "damage, what", [(_gz_truncated, "truncated gzip"), (_gz_bad_crc, "damaged gzip.*CRC")]
)
@pytest.mark.parametrize("loader", ["lirs", "bitbrains"])
def test_corrupt_gzip_names_the_file(tmp_path: Path, damage, what: str, loader: str) -> None:
    if loader == "lirs":
        raw = "".join(f"{i}\n" for i in range(5000)).encode()
        load = load_lirs
    else:
        header = "Timestamp [ms];\tMemory capacity provisioned [KB];\tMemory usage [KB]\n"
        raw = (header + "".join(f"{300 * i};\t1000;\t{i % 900}\n" for i in range(2000))).encode()
        load = load_bitbrains
    p = tmp_path / f"bad-{loader}.gz"
    p.write_bytes(damage(raw))
    with pytest.raises(ValueError, match=re.escape(str(p.resolve())) + f".*{what}"):
        load(p, use_cache=False)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECLAIM_CACHE_DIR")
    assert traces.default_cache_dir() == Path.home() / ".cache" / "reclaim-gym" / "traces"
    monkeypatch.setenv("RECLAIM_CACHE_DIR", "/x/y")
    assert traces.default_cache_dir() == Path("/x/y")


# ---------------------------------------------------------------- compact


def test_compact_first_touch_order() -> None:
    pages = np.array([50, 7, 50, 9, 7, 1000, 9])
    assert compact(pages).tolist() == [0, 1, 0, 2, 1, 3, 2]
    assert compact(np.array([], dtype=np.int64)).tolist() == []
    rng = np.random.default_rng(0)
    p = rng.integers(0, 10**9, 2000)
    c = compact(p)
    assert c.max() + 1 == np.unique(p).size
    assert np.array_equal(p[:, None] == p[None, :], c[:, None] == c[None, :])
    first = np.unique(c, return_index=True)[1]
    assert np.all(np.diff(first) > 0)  # new ids appear in increasing order


# -------------------------------------------------------------- recordings


def test_load_recording_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "demo.npz"
    meta = {"name": "demo", "command": ["true"], "valgrind_version": "valgrind-3.x"}
    np.savez(
        p,
        pages=np.array([0, 1, 0], np.uint32),
        is_write=np.array([False, True, False]),
        meta=np.array(json.dumps(meta)),
    )
    t = load_recording(p)
    assert t.pages.tolist() == [0, 1, 0] and t.pages.dtype == np.int64
    assert t.writes is not None and t.writes.tolist() == [False, True, False]
    assert t.name == "recording/demo"
    np.savez(tmp_path / "bad.npz", pages=np.zeros(2, np.uint32))
    with pytest.raises(ValueError, match="not a recording"):
        load_recording(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "path", sorted(RECORDINGS.glob("*.npz")), ids=lambda p: p.stem if isinstance(p, Path) else p
)
def test_shipped_recordings_load(path: Path) -> None:
    t = load_recording(path)
    meta = traces.recording_meta(path)
    assert len(t) > 10_000
    assert t.writes is not None and t.writes.shape == t.pages.shape
    assert t.writes.any() and not t.writes.all()
    assert np.array_equal(compact(t.pages), t.pages)  # shipped compacted
    assert meta["command"] and meta["valgrind_version"].startswith("valgrind")
    assert path.stat().st_size <= 1_200_000


def test_recordings_are_shipped() -> None:
    assert len(list(RECORDINGS.glob("*.npz"))) >= 4


# -------------------------------------------------------------- real data


@pytest.mark.data
def test_real_lirs(shared_data: Path) -> None:
    cs = load_lirs(shared_data / "traces/lirs/cs.trace.gz")
    assert len(cs) == 6_781  # 6,783 lines less the two `*` checkpoints
    loop = load_lirs(shared_data / "traces/lirs/loop.trace.gz")  # CRLF line ends
    assert len(loop) == 505_500


@pytest.mark.data
def test_real_spec2000(shared_data: Path) -> None:
    gcc = load_spec2000(shared_data / "traces/spec2000/gcc.trace.gz")
    assert len(gcc) == 515_683
    assert gcc.writes is not None and int(gcc.writes.sum()) == 197_486
    assert gcc.pages[0] == 0x1FFFFF50 >> 12


@pytest.mark.data
def test_real_arc_matches_paper_footprint(shared_data: Path) -> None:
    oltp = load_arc(shared_data / "traces/arc/OLTP.lis.gz")
    # ARC paper, Table III: 914,145 requests over 186,880 unique pages (all 1-block).
    assert len(oltp) == 914_145
    assert oltp.n_distinct_pages == 186_880


@pytest.mark.data
def test_real_bitbrains_invariants(shared_data: Path) -> None:
    files = sorted((shared_data / "demand/bitbrains-rnd-2013-7").glob("*.csv.gz"))
    assert len(files) == 50
    for f in files:
        s = load_bitbrains(f)
        assert len(s) > 400
        assert np.all(np.diff(s.times_s) > 0)
        assert np.all(s.capacity_kb > 0)
        assert np.all((s.usage_kb >= 0) & (s.usage_kb <= s.capacity_kb))


# ------------------------------------------------------- lackey recorder


def test_parse_lackey_keeps_data_refs_only() -> None:
    from experiments.traces.lackey import parse_lackey

    text = (
        b"==123== Lackey, an example Valgrind tool\n"
        b"I  0401ab70,3\n"
        b" S 1fff000768,8\n"
        b" L 0402b2c0,8\n"
        b" M 00001fff,4\n"
        b"I  0401b770,1\n"
        b"==123== \n"
    )
    pages, writes = parse_lackey(text)
    assert pages.tolist() == [0x1FFF000, 0x402B, 0x1, 0x1]
    assert writes.tolist() == [True, False, False, True]  # M = load then store


@pytest.mark.parametrize("window", [1, 2, 8])
def test_lru_filter_chunking_and_writes(window: int) -> None:
    from experiments.traces.lackey import LruFilter

    rng = np.random.default_rng(window)
    pages = (rng.zipf(1.4, 4_000) % 50).astype(np.uint64)
    writes = rng.random(4_000) < 0.2
    whole = LruFilter(window)
    whole.push(pages, writes)
    wp, ww = whole.result()
    chunked = LruFilter(window)
    for part in np.array_split(np.arange(pages.size), 13):
        chunked.push(pages[part], writes[part])
    cp, cw = chunked.result()
    assert np.array_equal(wp, cp) and np.array_equal(ww, cw)
    assert np.all(wp[1:] != wp[:-1])  # immediate repeats merged
    assert set(wp[ww].tolist()) == set(pages[writes].tolist())  # no written page lost
    if window == 1:  # merging repeats preserves LRU misses at every memory size
        for c in (1, 3, 10, 40):
            assert exact_lru_misses(wp, c) == exact_lru_misses(pages, c)
    else:  # a deeper window is lossy: within a few percent for memories >= window
        for c in (window, 2 * window, 40):
            a, b = exact_lru_misses(pages, c), exact_lru_misses(wp, c)
            assert abs(a - b) <= 0.1 * a


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_record_cli_smoke(tmp_path: Path) -> None:
    out = tmp_path / "true.npz"
    cmd = [sys.executable, "-m", "experiments.traces.lackey", "-o", str(out), "--", "/bin/true"]
    subprocess.run(cmd, check=True, cwd=REPO, capture_output=True, timeout=120)
    t = load_recording(out)
    meta = traces.recording_meta(out)
    assert len(t) > 1_000 and meta["command"] == ["/bin/true"] and meta["returncode"] == 0
