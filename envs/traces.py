"""Loaders for published memory/storage reference traces and VM memory-demand series.

Formats (see ``docs/scenarios.md``, "Datasets and citations", for where each is published):

* **LIRS** block traces (Jiang & Zhang, SIGMETRICS 2002): one block number per line; a
  line ``*`` is a checkpoint marker of the original simulator and is skipped.
* **SPEC CPU2000** data-address traces: ``l|s 0xADDR n`` per line (load or store, byte
  address in hex, instructions since the previous access). ``page = addr >> page_shift``.
* **ARC** ``.lis`` block traces (Megiddo & Modha, FAST 2003): ``start n ignore request``;
  a request touches blocks ``start .. start+n-1``.
* **Bitbrains GWA-T-12** VM monitoring CSVs (Shen et al., CCGrid 2015): ``;\\t``
  separated, with a header; see :func:`load_bitbrains` for how samples are cleaned.
* Our own valgrind-lackey **recordings** (``experiments/traces/lackey.py``).

Every text loader accepts plain or gzip files (detected by magic bytes, not by name),
streams the file in large chunks and parses each chunk with whole-array numpy operations
on its bytes (no per-line Python). A malformed line raises ``ValueError`` naming the file,
the 1-based line number and the line's content; so does a truncated or damaged gzip file
(naming the file and the damage).

Parsed arrays are cached as ``.npz`` files in ``$RECLAIM_CACHE_DIR`` (default
``~/.cache/reclaim-gym/traces``), keyed by the file's absolute path, mtime, size and the
parse parameters, so a second load of the same trace is a plain array read. Cache files
are written atomically (temporary file + ``os.replace``), so concurrent loaders are safe;
an unreadable cache file (e.g. truncated) is re-parsed, with a warning, and rewritten.

This module depends on numpy and the standard library only.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import os
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.files import atomic_save
from envs.sim.checks import check_int

__all__ = [
    "PageTrace",
    "DemandSeries",
    "compact",
    "default_cache_dir",
    "load_lirs",
    "load_spec2000",
    "load_arc",
    "load_bitbrains",
    "load_recording",
]

# Bump whenever parsing or cleaning semantics change: it is part of every cache key.
_CACHE_VERSION = 1
_CHUNK_BYTES = 16 << 20  # text parsed per numpy pass; bounds peak memory (~20x this)
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_CONTENT_CHARS = 200  # of a malformed line quoted in an error


@dataclass(frozen=True)
class PageTrace:
    """A page reference string.

    Attributes:
        pages: (N,) int64 page (or block-group) ids in reference order, as in the source
            (not compacted; see :func:`compact`).
        writes: (N,) bool, True for stores, or None when the format has no access type.
        name: short name, e.g. ``"spec2000/gcc"``.
        source: absolute path of the file it was read from.
    """

    pages: np.ndarray
    writes: np.ndarray | None
    name: str
    source: str

    def __len__(self) -> int:
        return int(self.pages.size)

    @property
    def n_distinct_pages(self) -> int:
        return int(np.unique(self.pages).size)


@dataclass(frozen=True)
class DemandSeries:
    """Memory demand of one VM over time, cleaned (see :func:`load_bitbrains`).

    Attributes:
        times_s: (T,) float64 sample times, seconds since the Unix epoch, strictly
            increasing but not evenly spaced (monitoring gaps are kept as gaps).
        capacity_kb: (T,) float64 memory provisioned to the VM, KiB, > 0.
        usage_kb: (T,) float64 actively used memory, KiB, in [0, capacity_kb].
        name: short name, e.g. ``"bitbrains-rnd/7"``.
        source: absolute path of the file it was read from.
        n_filled: samples whose values were missing and forward-filled.
        n_clipped: samples whose usage exceeded capacity and was clipped to it.
        n_duplicates_dropped: rows dropped because their timestamp repeated.
    """

    times_s: np.ndarray
    capacity_kb: np.ndarray
    usage_kb: np.ndarray
    name: str
    source: str = ""
    n_filled: int = 0
    n_clipped: int = 0
    n_duplicates_dropped: int = 0

    def __len__(self) -> int:
        return int(self.times_s.size)


def compact(pages: np.ndarray) -> np.ndarray:
    """Renumber page ids to ``0 .. n_distinct-1`` in order of first touch.

    Returns a new (N,) int64 array; ``compact(p)[i] == compact(p)[j]`` iff ``p[i] == p[j]``
    and the first page referenced becomes 0, the next new one 1, and so on.
    """
    pages = np.asarray(pages)
    if pages.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(pages, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size, dtype=np.int64)
    return rank[inverse.reshape(-1)]


# --------------------------------------------------------------------------- files


def default_cache_dir() -> Path:
    """``$RECLAIM_CACHE_DIR`` if set, else ``~/.cache/reclaim-gym/traces``."""
    env = os.environ.get("RECLAIM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "reclaim-gym" / "traces"


def _open_binary(path: Path):
    """Open ``path`` for reading bytes, transparently gunzipping by magic bytes."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read(f, path: Path, n: int = -1) -> bytes:
    """``f.read(n)``, with a damaged gzip stream turned into a ``ValueError`` naming the
    file (gzip's own errors name no file: ``EOFError``, ``BadGzipFile``, ``zlib.error``)."""
    try:
        return f.read(n)
    except EOFError as e:
        raise ValueError(f"{path}: truncated gzip file ({e})") from e
    except (gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(f"{path}: damaged gzip file ({e})") from e


def _iter_chunks(path: Path, chunk_bytes: int = _CHUNK_BYTES) -> Iterator[bytes]:
    """Yield the decompressed file in pieces that end at a newline (the last may not)."""
    with _open_binary(path) as f:
        rest = b""
        while True:
            block = _read(f, path, chunk_bytes)
            if not block:
                if rest:
                    yield rest
                return
            data = rest + block if rest else block
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            yield data[: cut + 1]
            rest = data[cut + 1 :]


def _cache_path(path: Path, kind: str, params: dict, cache_dir: Path | None) -> Path:
    st = path.stat()
    key = json.dumps(
        {
            "v": _CACHE_VERSION,
            "kind": kind,
            "path": str(path),
            "mtime_ns": st.st_mtime_ns,
            "size": st.st_size,
            "params": params,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    stem = path.name.split(".")[0] or "trace"
    return (cache_dir or default_cache_dir()) / f"{kind}-{stem}-{digest}.npz"


_DAMAGED_CACHE_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def _cached(
    path: str | os.PathLike[str],
    kind: str,
    params: dict,
    parse: Callable[[Path], dict[str, np.ndarray]],
    use_cache: bool,
    cache_dir: str | os.PathLike[str] | None,
) -> tuple[Path, dict[str, np.ndarray]]:
    """Parse ``path`` with ``parse`` or read the arrays from the cache."""
    src = Path(path).expanduser().resolve()
    if not src.is_file():
        raise FileNotFoundError(f"trace file not found: {src}")
    if not use_cache:
        return src, parse(src)
    cpath = _cache_path(src, kind, params, Path(cache_dir) if cache_dir is not None else None)
    if cpath.is_file():
        try:
            with np.load(cpath, allow_pickle=False) as z:
                return src, {k: z[k] for k in z.files}
        # A damaged cache file (truncated by a crash or a full disk: a bad zip, a short
        # member) is re-parsed and rewritten, not fatal.
        except _DAMAGED_CACHE_ERRORS as e:
            warnings.warn(
                f"re-parsing {src}: unreadable trace cache {cpath} ({type(e).__name__}: {e})",
                stacklevel=3,
            )
    arrays = parse(src)
    try:
        atomic_save(cpath, lambda tmp: _savez(tmp, arrays))
    except OSError as e:  # read-only home etc.: loading still works, just uncached
        warnings.warn(f"could not write trace cache {cpath}: {e}", stacklevel=3)
    return src, arrays


# ------------------------------------------------------------------ byte parsing

_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True  # \t \n \v \f \r space (so CRLF files work)

_DEC = np.full(256, 255, dtype=np.uint8)
_DEC[48:58] = np.arange(10)
_HEX = _DEC.copy()
_HEX[ord("a") : ord("f") + 1] = np.arange(10, 16)
_HEX[ord("A") : ord("F") + 1] = np.arange(10, 16)
_MAX_DEC_DIGITS = 18  # < 2**63
_MAX_HEX_DIGITS = 16  # 64-bit addresses, parsed in uint64


class _Chunk:
    """One newline-terminated piece of a text trace, tokenized on whitespace."""

    def __init__(self, data: bytes, path: Path, first_line: int) -> None:
        self.data = data
        self.path = path
        self.first_line = first_line  # 1-based line number of the chunk's first line
        self.buf = buf = np.frombuffer(data, dtype=np.uint8)
        ws = _WHITESPACE[buf]
        inside = ~ws
        n = buf.size
        # Indices fit int32: chunks are far below 2 GiB.
        starts = np.flatnonzero(inside[1:] & ws[:-1]).astype(np.int32) + 1
        ends = np.flatnonzero(inside[:-1] & ws[1:]).astype(np.int32) + 1
        if n and inside[0]:
            starts = np.concatenate([np.zeros(1, np.int32), starts])
        if n and inside[-1]:
            ends = np.concatenate([ends, np.full(1, n, np.int32)])
        self.starts = starts  # (K,) first byte of each token
        self.ends = ends  # (K,) one past its last byte
        self.n_newlines = data.count(b"\n")
        self.tok_line = self._token_lines()  # (K,) chunk-local 0-based line of each token

    def _token_lines(self) -> np.ndarray:
        starts, ends, buf = self.starts, self.ends, self.buf
        if starts.size == 0:
            return np.zeros(0, np.int32)
        # Fast path, touching tokens only: when every gap between tokens is one byte
        # (the usual `a b c\n` layout), a token opens a line iff a newline precedes it.
        if np.all(starts[1:] - ends[:-1] == 1):
            opens = np.empty(starts.size, dtype=bool)
            opens[0] = False
            opens[1:] = buf[starts[1:] - 1] == 10
            lead = self.data.count(b"\n", 0, int(starts[0]))
            return np.cumsum(opens, dtype=np.int32) + np.int32(lead)
        return np.searchsorted(self.newlines, starts).astype(np.int32)

    @functools.cached_property
    def newlines(self) -> np.ndarray:
        return np.flatnonzero(self.buf == 10)

    def fail(self, local_line: int, why: str) -> None:
        nl = self.newlines
        lo = int(nl[local_line - 1]) + 1 if local_line > 0 else 0
        hi = int(nl[local_line]) if local_line < nl.size else len(self.data)
        text = self.data[lo:hi].decode("utf-8", errors="replace").rstrip("\r")
        if len(text) > _MAX_CONTENT_CHARS:
            text = text[:_MAX_CONTENT_CHARS] + "..."
        raise ValueError(f"{self.path}:{self.first_line + local_line}: {why}: {text!r}")

    def columns(self, ncols: int, skip_token: bytes | None = None) -> tuple[np.ndarray, ...]:
        """Check every non-blank line has ``ncols`` tokens; return per-column indices.

        Lines consisting of the single token ``skip_token`` are dropped first.

        Returns:
            (row_line, tok_0, ..., tok_{ncols-1}): (R,) chunk-local line of each row and,
            per column, (R,) token indices into ``starts``/``ends``.
        """
        keep = np.ones(self.starts.size, dtype=bool)
        if skip_token is not None:
            n = len(skip_token)
            cand = np.flatnonzero(self.ends - self.starts == n)
            if cand.size:
                hit = np.ones(cand.size, dtype=bool)
                for j, byte in enumerate(skip_token):
                    hit &= self.buf[self.starts[cand] + j] == byte
                keep[cand[hit]] = False
                # A skip token only counts when it is alone on its line.
                counts = np.bincount(self.tok_line, minlength=self.n_newlines + 1)
                keep[cand[hit & (counts[self.tok_line[cand]] != 1)]] = True
        tok = np.flatnonzero(keep)
        line = self.tok_line[tok]
        counts = np.bincount(line, minlength=self.n_newlines + 1)
        wrong = np.flatnonzero((counts != 0) & (counts != ncols))
        if wrong.size:
            bad = int(wrong[0])
            self.fail(bad, f"expected {ncols} fields, found {int(counts[bad])}")
        rows = tok.reshape(-1, ncols)
        return (line[::ncols], *(rows[:, c] for c in range(ncols)))

    def parse_uint(self, tok: np.ndarray, hex_: bool = False) -> np.ndarray:
        """Parse tokens ``tok`` as unsigned decimal (int64) or hex (uint64) integers.

        Hex tokens may carry a ``0x``/``0X`` prefix. Tokens are right-aligned into a
        (R, max_len) digit matrix so that the whole column is one weighted sum.
        """
        starts = self.starts[tok]
        ends = self.ends[tok]
        if tok.size == 0:
            return np.zeros(0, dtype=np.uint64 if hex_ else np.int64)
        if hex_:
            pref = (ends - starts >= 2) & (self.buf[starts] == 48)
            pref &= (self.buf[np.minimum(starts + 1, self.buf.size - 1)] | 0x20) == ord("x")
            starts = starts + 2 * pref
        lens = ends - starts
        max_digits = _MAX_HEX_DIGITS if hex_ else _MAX_DEC_DIGITS
        width = int(lens.max())
        if width > max_digits or lens.min() == 0:
            bad = int(np.flatnonzero((lens > max_digits) | (lens == 0))[0])
            self.fail(int(self.tok_line[tok[bad]]), "number empty or too long")
        # (width, R): row k holds the k-th digit (right-aligned) of every token, so the
        # value is a Horner sum over `width` contiguous rows.
        idx = np.arange(-width, 0, dtype=np.int32)[:, None] + ends[None, :]
        pad = idx < starts[None, :]
        if int(ends[0]) < width:  # only the first token can reach before byte 0
            np.maximum(idx, 0, out=idx)
        digits = (_HEX if hex_ else _DEC)[self.buf[idx]]
        digits[pad] = 0
        bad_cols = np.flatnonzero((digits == 255).any(axis=0))
        if bad_cols.size:
            what = "hexadecimal" if hex_ else "a non-negative decimal integer"
            self.fail(int(self.tok_line[tok[bad_cols[0]]]), f"expected {what}")
        dtype = np.uint64 if hex_ else np.int64
        base = dtype(16 if hex_ else 10)
        value = digits[0].astype(dtype)
        for k in range(1, width):
            value *= base
            value += digits[k]
        return value


def _chunks(path: Path) -> Iterator[_Chunk]:
    line = 1
    for data in _iter_chunks(path):
        yield _Chunk(data, path, line)
        line += data.count(b"\n")


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # an open file: numpy adds no ``.npz`` to the name
        np.savez(f, **arrays)


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _short_name(path: str | os.PathLike[str], family: str) -> str:
    return f"{family}/{Path(path).name.split('.')[0]}"


# --------------------------------------------------------------------- loaders


def load_lirs(
    path: str | os.PathLike[str],
    blocks_per_page: int = 1,
    *,
    use_cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> PageTrace:
    """Load a LIRS block trace (one block number per line; ``*`` lines skipped).

    Args:
        path: plain or gzip text file.
        blocks_per_page: consecutive blocks mapped to one page (``page = block // bpp``);
            each line stays one reference.
        use_cache: read/write the parsed arrays from/to the ``.npz`` cache.
        cache_dir: cache directory; default :func:`default_cache_dir`.
    """
    bpp = check_int("blocks_per_page", blocks_per_page, 1)

    def parse(src: Path) -> dict[str, np.ndarray]:
        parts = []
        for ch in _chunks(src):
            _, tok = ch.columns(1, skip_token=b"*")
            parts.append(ch.parse_uint(tok) // bpp)
        return {"pages": _concat(parts, np.int64)}

    src, a = _cached(path, "lirs", {"bpp": bpp}, parse, use_cache, cache_dir)
    return PageTrace(a["pages"], None, _short_name(src, "lirs"), str(src))


def load_spec2000(
    path: str | os.PathLike[str],
    page_bytes: int = 4096,
    *,
    use_cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> PageTrace:
    """Load a SPEC CPU2000 address trace (``l|s 0xADDR n`` per line).

    Args:
        path: plain or gzip text file.
        page_bytes: page size in bytes, a power of two; ``page = addr >> log2(page_bytes)``.
        use_cache: read/write the parsed arrays from/to the ``.npz`` cache.
        cache_dir: cache directory; default :func:`default_cache_dir`.

    Returns:
        A PageTrace with ``writes`` True for ``s`` (store) lines. The instruction-gap
        column is validated but not kept.
    """
    page_bytes = check_int("page_bytes", page_bytes, 1)
    if page_bytes & (page_bytes - 1):
        raise ValueError(f"page_bytes must be a power of two, got {page_bytes}")
    shift = int(math.log2(page_bytes))

    def parse(src: Path) -> dict[str, np.ndarray]:
        pages, writes = [], []
        for ch in _chunks(src):
            line, op, addr, gap = ch.columns(3)
            op_len = ch.ends[op] - ch.starts[op]
            op_byte = ch.buf[ch.starts[op]] | 0x20  # lower-case
            bad = np.flatnonzero((op_len != 1) | ((op_byte != ord("l")) & (op_byte != ord("s"))))
            if bad.size:
                ch.fail(int(line[bad[0]]), "access type must be 'l' or 's'")
            ch.parse_uint(gap)  # validated: a malformed gap is a malformed line
            pages.append((ch.parse_uint(addr, hex_=True) >> np.uint64(shift)).astype(np.int64))
            writes.append(op_byte == ord("s"))
        return {"pages": _concat(pages, np.int64), "writes": _concat(writes, bool)}

    src, a = _cached(path, "spec2000", {"page_bytes": page_bytes}, parse, use_cache, cache_dir)
    return PageTrace(a["pages"], a["writes"], _short_name(src, "spec2000"), str(src))


def load_arc(
    path: str | os.PathLike[str],
    blocks_per_page: int = 1,
    *,
    use_cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> PageTrace:
    """Load an ARC ``.lis`` trace (``start_block n_blocks ignore request_no`` per line).

    A request references the pages ``start // bpp .. (start + n - 1) // bpp`` in
    ascending order, each once: several blocks of one page in one request are one page
    reference. With ``blocks_per_page=1`` (the default) that is every block. The blocks
    are 512 bytes, so ``blocks_per_page=8`` gives 4 KiB pages.

    Args:
        path: plain or gzip text file.
        blocks_per_page: consecutive 512-byte blocks per page.
        use_cache: read/write the parsed arrays from/to the ``.npz`` cache.
        cache_dir: cache directory; default :func:`default_cache_dir`.
    """
    bpp = check_int("blocks_per_page", blocks_per_page, 1)

    def parse(src: Path) -> dict[str, np.ndarray]:
        parts = []
        for ch in _chunks(src):
            line, start_t, n_t, ign_t, req_t = ch.columns(4)
            start = ch.parse_uint(start_t)
            n = ch.parse_uint(n_t)
            ch.parse_uint(ign_t)
            ch.parse_uint(req_t)
            if n.size and n.min() < 1:
                ch.fail(int(line[np.flatnonzero(n < 1)[0]]), "n_blocks must be >= 1")
            first = start // bpp
            n_pages = (start + n - 1) // bpp - first + 1  # (R,) >= 1
            total = int(n_pages.sum())
            offsets = np.cumsum(n_pages) - n_pages
            within = np.arange(total, dtype=np.int64) - np.repeat(offsets, n_pages)
            parts.append(np.repeat(first, n_pages) + within)
        return {"pages": _concat(parts, np.int64)}

    src, a = _cached(path, "arc", {"bpp": bpp}, parse, use_cache, cache_dir)
    return PageTrace(a["pages"], None, _short_name(src, "arc"), str(src))


_BB_TIME = "Timestamp [ms]"  # named [ms] in the dataset but holds seconds since the epoch
_BB_CAPACITY = "Memory capacity provisioned [KB]"
_BB_USAGE = "Memory usage [KB]"


def load_bitbrains(
    path: str | os.PathLike[str],
    *,
    use_cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> DemandSeries:
    """Load one VM of the Bitbrains GWA-T-12 dataset and clean it.

    The file is ``;``-separated (fields padded with a tab) with a header line; columns
    are found by name. Only the timestamp, provisioned memory and memory usage are kept.

    Cleaning, in this order:

    1. A field that is empty or parses to NaN/inf is *missing*. A field that is not a
       number at all, or a row with the wrong field count, is a malformed line
       (``ValueError``).
    2. Rows are stably sorted by time and rows repeating an earlier timestamp are dropped
       (``n_duplicates_dropped``; one of the 50 Rnd VMs logs many duplicates).
    3. A sample is missing if its capacity or usage is missing, its capacity is <= 0 (the
       monitor logs 0/0 while it has no data for the VM) or its usage is negative. Both
       values of a missing sample are forward-filled from the last valid sample; missing
       samples before the first valid one take its values (``n_filled``). A file with no
       valid sample raises ``ValueError``.
    4. Usage above capacity is clipped to capacity (``n_clipped``).

    Timestamp gaps (e.g. a day without samples) are kept; resample if you need a grid.
    Files are small (~8 k rows), so the rows are split in Python after one decode.
    """

    def parse(src: Path) -> dict[str, np.ndarray]:
        return _parse_bitbrains(src)

    src, a = _cached(path, "bitbrains", {}, parse, use_cache, cache_dir)
    n_filled, n_clipped, n_dup = (int(x) for x in a["counts"])
    return DemandSeries(
        times_s=a["times_s"],
        capacity_kb=a["capacity_kb"],
        usage_kb=a["usage_kb"],
        name=_short_name(src, "bitbrains"),
        source=str(src),
        n_filled=n_filled,
        n_clipped=n_clipped,
        n_duplicates_dropped=n_dup,
    )


def _parse_bitbrains(src: Path) -> dict[str, np.ndarray]:
    with _open_binary(src) as f:
        text = _read(f, src).decode("utf-8", errors="replace")
    lines = text.splitlines()
    if not lines:
        raise ValueError(f"{src}:1: empty file, expected a header: ''")
    header = [h.strip() for h in lines[0].split(";")]
    try:
        cols = [header.index(c) for c in (_BB_TIME, _BB_CAPACITY, _BB_USAGE)]
    except ValueError:
        wanted = (_BB_TIME, _BB_CAPACITY, _BB_USAGE)
        for sep, what in ((",", "comma"), ("\t", "tab"), ("|", "'|'")):
            if all(c in [h.strip() for h in lines[0].split(sep)] for c in wanted):
                raise ValueError(
                    f"{src}:1: expected ';'-separated columns (the Bitbrains layout), but "
                    f"the header is {what}-separated: {lines[0][:_MAX_CONTENT_CHARS]!r}"
                ) from None
        raise ValueError(
            f"{src}:1: header lacks one of {_BB_TIME!r}, {_BB_CAPACITY!r}, {_BB_USAGE!r}: "
            f"{lines[0][:_MAX_CONTENT_CHARS]!r}"
        ) from None
    nfields = len(header)
    values = np.full((len(lines) - 1, 3), np.nan)
    keep = np.zeros(len(lines) - 1, dtype=bool)
    for i, line in enumerate(lines[1:]):
        if not line.strip():
            continue
        fields = line.split(";")
        if len(fields) != nfields:
            raise ValueError(
                f"{src}:{i + 2}: expected {nfields} fields, found {len(fields)}: "
                f"{line[:_MAX_CONTENT_CHARS]!r}"
            )
        for j, c in enumerate(cols):
            s = fields[c].strip()
            if not s:
                continue
            try:
                values[i, j] = float(s)
            except ValueError:
                raise ValueError(
                    f"{src}:{i + 2}: field {header[c]!r} is not a number: "
                    f"{line[:_MAX_CONTENT_CHARS]!r}"
                ) from None
        keep[i] = True
    values = values[keep]
    values[~np.isfinite(values)] = np.nan
    if np.isnan(values[:, 0]).any():
        raise ValueError(f"{src}: a row has no timestamp")
    order = np.argsort(values[:, 0], kind="stable")
    values = values[order]
    fresh = np.ones(len(values), dtype=bool)
    fresh[1:] = np.diff(values[:, 0]) > 0
    n_dup = int((~fresh).sum())
    t, cap, use = values[fresh].T
    valid = np.isfinite(cap) & np.isfinite(use) & (cap > 0) & (use >= 0)
    if not valid.any():
        raise ValueError(f"{src}: no valid memory sample (all missing or zero capacity)")
    # Forward fill: each sample takes the last valid index at or before it; leading
    # invalid samples take the first valid one.
    last_valid = np.maximum.accumulate(np.where(valid, np.arange(valid.size), -1))
    last_valid[last_valid < 0] = int(np.flatnonzero(valid)[0])
    cap = cap[last_valid]
    use = use[last_valid]
    over = use > cap
    use = np.where(over, cap, use)
    counts = np.array([int((~valid).sum()), int(over.sum()), n_dup], dtype=np.int64)
    return {"times_s": t.copy(), "capacity_kb": cap, "usage_kb": use, "counts": counts}


def load_recording(path: str | os.PathLike[str]) -> PageTrace:
    """Load a page trace recorded by ``experiments/traces/lackey.py``.

    The ``.npz`` holds ``pages`` (uint32, compacted), ``is_write`` (bool) and ``meta`` (a
    JSON string with the command, valgrind version, date and filter settings). It is
    already compact binary, so it is not cached.
    """
    src = Path(path).expanduser().resolve()
    try:
        with np.load(src, allow_pickle=False) as z:
            missing = {"pages", "is_write", "meta"} - set(z.files)
            if missing:
                raise ValueError(f"{src}: not a recording, missing arrays {sorted(missing)}")
            pages = z["pages"].astype(np.int64)
            writes = z["is_write"].astype(bool)
            meta = json.loads(str(z["meta"]))
    except (EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{src}: damaged recording ({type(e).__name__}: {e})") from e
    if pages.shape != writes.shape:
        raise ValueError(f"{src}: pages {pages.shape} and is_write {writes.shape} differ")
    name = meta.get("name") or src.name.split(".")[0]
    return PageTrace(pages, writes, f"recording/{name}", str(src))


def recording_meta(path: str | os.PathLike[str]) -> dict:
    """The metadata dict stored in a recording ``.npz``."""
    with np.load(Path(path), allow_pickle=False) as z:
        return json.loads(str(z["meta"]))
