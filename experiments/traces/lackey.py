"""Record the data-page reference string of a real program with valgrind's lackey tool.

Runs ``valgrind --tool=lackey --trace-mem=yes --log-fd=N -- PROGRAM ...`` with ``N`` the
write end of a pipe, and parses lackey's output from the pipe in large chunks with numpy
as it arrives; lackey's text is never written to disk. Lackey prints one line per memory
access::

    I  0401ab70,3        instruction fetch (dropped: we keep data references)
     L 1fff000768,8      load
     S 1fff000760,8      store
     M 0402b2c0,4        modify: a load then a store of the same address

A reference's page is ``address >> page_shift`` (the first byte's page; an access that
straddles a page boundary counts for its first page only). The stream is then filtered:

* consecutive references to the same page are always merged (the LRU stack distance of
  such a repeat is 1, so no page-replacement policy can miss on it);
* ``--filter-window N`` (N > 1) drops every reference to a page that is among the ``N``
  most recently referenced distinct pages (an exact LRU stack of depth N; Smith's "stack
  deletion"). It shrinks a recording a lot but is lossy: LRU miss counts for memories of
  N pages or more change by a few percent (measured in tests), unlike the merging of
  immediate repeats, which preserves them exactly for every memory size.

A dropped store marks the page's last kept reference as a write, so a filtered trace still
dirties every page the program wrote. Page ids are compacted to ``0..n_distinct-1`` in
first-touch order and saved with :func:`save_recording` as ``.npz``: ``pages`` (uint32),
``is_write`` (bool), ``meta`` (JSON: exact command, valgrind version, date, filters).
Load it with :func:`envs.traces.load_recording`.

Example::

    python -m experiments.traces.lackey -o gzip.npz --filter-window 16 -- gzip -c FILE
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from envs.files import atomic_save
from envs.sim.checks import check_int
from envs.traces import compact

_PARSE_BYTES = 8 << 20  # lackey text parsed per numpy pass
_READ_BYTES = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[48:58] = np.arange(10)
_HEX[97:103] = np.arange(10, 16)
_HEX[65:71] = np.arange(10, 16)
_OP = np.zeros(256, dtype=np.uint8)  # 1 load, 2 store, 3 modify
_OP[ord("L")], _OP[ord("S")], _OP[ord("M")] = 1, 2, 3


def parse_lackey(data: bytes, page_shift: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Data references in complete lackey lines ``data`` (ends with a newline).

    Returns:
        (pages, is_write): (R,) uint64 and (R,) bool; a modify yields a load then a store.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    n = buf.size
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    newlines = np.flatnonzero(buf == 10)
    line_starts = np.concatenate([[0], newlines[:-1] + 1])
    line_starts = line_starts[line_starts + 4 < n]
    op = _OP[buf[line_starts + 1]]
    data_line = (buf[line_starts] == 32) & (op > 0) & (buf[line_starts + 2] == 32)
    starts = line_starts[data_line] + 3
    op = op[data_line]
    commas = np.flatnonzero(buf == 44)
    ends = commas[np.minimum(np.searchsorted(commas, starts), commas.size - 1)]
    lens = ends - starts
    line_end = np.append(newlines, n)[np.searchsorted(newlines, starts)]
    bad = (lens < 1) | (lens > 16) | (ends > line_end)
    if starts.size and bad.any():
        i = int(starts[np.flatnonzero(bad)[0]])
        raise ValueError(f"unexpected lackey line: {data[i - 3 : i + 40]!r}")
    width = int(lens.max()) if lens.size else 1
    idx = np.arange(-width, 0)[:, None] + ends[None, :]  # (width, R) right-aligned digits
    digits = _HEX[buf[np.maximum(idx, 0)]]
    digits[idx < starts[None, :]] = 0
    if (digits == 255).any():
        i = int(starts[np.flatnonzero((digits == 255).any(axis=0))[0]])
        raise ValueError(f"unexpected lackey line: {data[i - 3 : i + 40]!r}")
    addr = digits[0].astype(np.uint64)
    for k in range(1, width):
        addr <<= np.uint64(4)
        addr |= digits[k]
    pages = addr >> np.uint64(page_shift)
    reps = np.where(op == 3, 2, 1)
    pages = np.repeat(pages, reps)
    is_write = np.repeat(op == 2, reps)
    is_write[np.cumsum(reps)[op == 3] - 1] = True  # the second half of a modify
    return pages, is_write


class LruFilter:
    """Streaming filter: merges immediate repeats and drops refs within the last N pages.

    Feed chunks with :meth:`push`; state (the LRU stack of the last ``window_pages``
    distinct pages) carries across chunks, so chunking never changes the result. The kept
    references accumulate in the filter; :meth:`result` concatenates them. A dropped
    store marks the page's last kept reference as a write, even in an earlier chunk.
    """

    def __init__(self, window_pages: int = 1) -> None:
        self.window_pages = check_int("window_pages", window_pages, 1)
        self._stack: OrderedDict[int, None] = OrderedDict()  # most recent last
        self._last_page: int | None = None
        self._where: dict[int, tuple[int, int]] = {}  # page -> (part, index) of last kept ref
        self._pages: list[np.ndarray] = []
        self._writes: list[np.ndarray] = []
        self.n_kept = 0

    def push(self, pages: np.ndarray, is_write: np.ndarray) -> None:
        if pages.size == 0:
            return
        run_start = np.ones(pages.size, dtype=bool)
        run_start[1:] = pages[1:] != pages[:-1]
        starts = np.flatnonzero(run_start)
        run_pages = pages[starts]
        run_write = np.logical_or.reduceat(is_write, starts)
        if self._last_page is not None and int(run_pages[0]) == self._last_page:
            if run_write[0]:
                self._mark_write(self._last_page)
            run_pages, run_write = run_pages[1:], run_write[1:]
        self._last_page = int(pages[-1])
        part = len(self._pages)
        if self.window_pages == 1:
            out_pages, out_writes = run_pages, run_write.copy()
            if out_pages.size:
                self._where = {int(out_pages[-1]): (part, out_pages.size - 1)}
        else:
            out_pages, out_writes = self._window_filter(run_pages, run_write, part)
        self._pages.append(out_pages)
        self._writes.append(out_writes)
        self.n_kept += out_pages.size

    def _window_filter(self, run_pages, run_write, part) -> tuple[np.ndarray, np.ndarray]:
        stack, where, window = self._stack, self._where, self.window_pages
        kept: list[int] = []
        kept_w: list[bool] = []
        for p, w in zip(run_pages.tolist(), run_write.tolist(), strict=True):
            if p in stack:
                stack.move_to_end(p)
                if w:
                    at_part, at = where[p]
                    if at_part == part:
                        kept_w[at] = True
                    else:
                        self._writes[at_part][at] = True
            else:
                stack[p] = None
                if len(stack) > window:
                    stack.popitem(last=False)
                where[p] = (part, len(kept))
                kept.append(p)
                kept_w.append(w)
        return np.array(kept, dtype=np.uint64), np.array(kept_w, dtype=bool)

    def _mark_write(self, page: int) -> None:
        at_part, at = self._where[page]
        self._writes[at_part][at] = True

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """All kept references so far: (pages uint64, is_write bool)."""
        if not self._pages:
            return np.zeros(0, np.uint64), np.zeros(0, bool)
        return np.concatenate(self._pages), np.concatenate(self._writes)


def valgrind_version() -> str:
    return subprocess.run(
        ["valgrind", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def record(
    command: list[str],
    *,
    page_shift: int = 12,
    filter_window: int = 1,
    max_refs: int | None = None,
    trace_children: bool = False,
    cwd: str | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run ``command`` under lackey and return (pages uint64, is_write bool, stats)."""
    rfd, wfd = os.pipe()
    try:
        fcntl.fcntl(rfd, _F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass  # a small pipe is only slower
    vg = ["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-fd={wfd}"]
    if trace_children:
        vg.append("--trace-children=yes")
    proc = subprocess.Popen(
        [*vg, *command],
        pass_fds=(wfd,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
    )
    os.close(wfd)
    filt = LruFilter(filter_window)
    n_raw = text_bytes = 0
    truncated = False
    pending = bytearray()
    t0 = time.perf_counter()

    def consume(upto: int) -> None:
        nonlocal n_raw
        pages, writes = parse_lackey(bytes(pending[:upto]), page_shift)
        del pending[:upto]
        n_raw += pages.size
        filt.push(pages, writes)

    with os.fdopen(rfd, "rb", buffering=0) as pipe:
        while True:
            block = pipe.read(_READ_BYTES)
            if not block:
                break
            text_bytes += len(block)
            pending += block
            if len(pending) >= _PARSE_BYTES:
                consume(pending.rfind(b"\n") + 1)
                if max_refs is not None and filt.n_kept >= max_refs:
                    truncated = True
                    proc.kill()
                    break
        if not truncated:
            consume(pending.rfind(b"\n") + 1)  # a cut last line is valgrind's, not data
    rc = proc.wait()
    pages, writes = filt.result()
    if max_refs is not None and pages.size > max_refs:
        pages, writes, truncated = pages[:max_refs], writes[:max_refs], True
    stats = {
        "returncode": None if truncated else rc,
        "truncated_at_max_refs": truncated,
        "data_refs_seen": int(n_raw),
        "lackey_text_bytes": int(text_bytes),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if not truncated and rc != 0:
        raise RuntimeError(f"{shlex.join(command)} exited with {rc} under valgrind")
    return pages, writes, stats


def save_recording(path: str | os.PathLike[str], pages, is_write, meta: dict) -> None:
    """Save compacted uint32 pages, is_write and JSON metadata as a compressed ``.npz``."""
    c = compact(pages)
    if c.size and c.max() >= 2**32:
        raise ValueError("more than 2**32 distinct pages")
    meta = {**meta, "n_refs": int(c.size), "n_distinct_pages": int(c.max() + 1 if c.size else 0)}
    arrays = {
        "pages": c.astype(np.uint32),
        "is_write": np.asarray(is_write, dtype=bool),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
    }
    atomic_save(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.traces.lackey",
        description=(
            "Record the data-page reference string of PROGRAM with valgrind lackey, "
            "streaming lackey's output through a pipe (never to disk), and save it as a "
            "compact .npz (pages uint32 compacted in first-touch order, is_write bool, "
            "metadata JSON). Instruction fetches are dropped; a modify (M) is a load then "
            "a store; consecutive references to one page are always merged."
        ),
        epilog="Example: %(prog)s -o out.npz --filter-window 16 -- gzip -c somefile",
    )
    p.add_argument("-o", "--output", required=True, help="output .npz path")
    p.add_argument("--name", help="short name stored in the metadata (default: output stem)")
    p.add_argument(
        "--page-shift", type=int, default=12, help="log2 of the page size in bytes (default 12)"
    )
    p.add_argument(
        "--filter-window",
        type=int,
        default=1,
        metavar="N",
        help="drop a reference to a page among the N most recently used distinct pages "
        "(exact LRU-stack filter; default 1 = only merge immediate repeats)",
    )
    p.add_argument(
        "--max-refs", type=int, metavar="N", help="stop after N kept references (kills PROGRAM)"
    )
    p.add_argument(
        "--trace-children", action="store_true", help="pass --trace-children=yes to valgrind"
    )
    p.add_argument("--cwd", help="working directory for PROGRAM")
    p.add_argument("--note", default="", help="free text stored in the metadata")
    p.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM [ARGS...]")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not command:
        build_parser().error("no PROGRAM given (put it after --)")
    if args.filter_window < 1:
        build_parser().error("--filter-window must be >= 1")
    pages, writes, stats = record(
        command,
        page_shift=args.page_shift,
        filter_window=args.filter_window,
        max_refs=args.max_refs,
        trace_children=args.trace_children,
        cwd=args.cwd,
    )
    meta = {
        "name": args.name or Path(args.output).name.split(".")[0],
        "command": command,
        "command_line": shlex.join(command),
        "recorder": "experiments/traces/lackey.py " + shlex.join(argv or sys.argv[1:]),
        "valgrind_version": valgrind_version(),
        "lackey_options": ["--tool=lackey", "--trace-mem=yes"]
        + (["--trace-children=yes"] if args.trace_children else []),
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "page_shift": args.page_shift,
        "filter": {"merge_immediate_repeats": True, "window_pages": args.filter_window},
        "max_refs": args.max_refs,
        "note": args.note,
        **stats,
    }
    save_recording(args.output, pages, writes, meta)
    size = Path(args.output).stat().st_size
    print(
        f"{args.output}: {pages.size} refs ({stats['data_refs_seen']} data refs seen), "
        f"{int(np.unique(pages).size)} pages, {size / 1e6:.2f} MB, {stats['seconds']} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
