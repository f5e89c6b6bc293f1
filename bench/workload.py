"""Throughput of the workload generators and the trace readers and writers.

Prints events (or lines) per second for each generator and format, and
ratios measured in the same run:

- vectorised / line-by-line parsing, for lackey and CSV (the line-by-line
  parser is the one that reports errors; the fast path must beat it);
- lackey reader / valgrind: how fast the reader consumes lackey output
  compared with how fast ``valgrind --tool=lackey`` produces it for
  ``ls /`` (above 1 means ``trace record`` is bound by valgrind).

Targets (CPython 3.11, this 2-core VM): generators >= 2M events/s (zipf
included), lackey >= 1M lines/s and >= 5x line-by-line, CSV read >= 1M
events/s and >= 5x line-by-line, binary read >= 20M events/s. The write
figures include generating the zipf workload they write. Run:
``python bench/workload.py [--scale N]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ghostswap.workload import trace_csv, trace_lackey
from ghostswap.workload.registry import make_workload, open_trace
from ghostswap.workload.trace_binary import write_binary
from ghostswap.workload.trace_common import TraceOptions, line_blocks
from ghostswap.workload.trace_csv import write_csv

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "touch_pages.lackey"
GENERATORS = [
    "seq:1GiB:2",
    "rand:1GiB:4M",
    "zipf:1GiB:4M",
    "zipf:1GiB:4M:scramble=no",
    "churn:1GiB:4",
    "thp-frag:60MiB:100",
    "fork:1GiB:8",
]


def timed(run: Callable[[], int]) -> tuple[int, float]:
    """(count, seconds) of the best of two runs."""
    best = None
    count = 0
    for _ in range(2):
        start = time.perf_counter()
        count = run()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    assert best is not None
    return count, best


def drain(chunks: Iterator[np.ndarray]) -> int:
    return sum(len(c) for c in chunks)


def bench_generators(scale: float) -> None:
    for spec in GENERATORS:
        w = make_workload(spec, seed=1, write_ratio=0.3, fill="half")
        count, secs = timed(lambda w=w: drain(w.chunks()))
        print(f"generator {spec} events/s: {count / secs:,.0f} ({count:,} events)")


def lackey_file(tmp: Path, copies: int) -> tuple[Path, int]:
    text = SAMPLE.read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("==")]
    path = tmp / "big.lackey"
    path.write_text(("\n".join(lines) + "\n") * copies)
    return path, len(lines) * copies


def line_by_line_lackey(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(
            len(trace_lackey._parse_lines(b.data, b.first_line, str(path), False)[0])
            for b in line_blocks(stream, str(path))
        )


def bench_lackey(tmp: Path, scale: float) -> float:
    path, lines = lackey_file(tmp, max(1, int(400 * scale)))
    for options in (TraceOptions(), TraceOptions(coalesce=False, include_instructions=True)):
        trace = open_trace(str(path), options=options)
        events, secs = timed(lambda trace=trace: drain(trace.chunks()))
        label = "default" if options.coalesce else "raw+instructions"
        print(f"lackey {label} lines/s: {lines / secs:,.0f} ({events:,} events from {lines:,})")
    fast = lines / timed(lambda: drain(open_trace(str(path)).chunks()))[1]
    slow = lines / timed(lambda: line_by_line_lackey(path))[1]
    print(f"lackey line-by-line lines/s: {slow:,.0f}")
    print(f"lackey vectorised/line-by-line ratio: {fast / slow:.1f}")
    return fast


def bench_valgrind(reader_lines_per_s: float) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind: not installed, skipped")
        return
    start = time.perf_counter()
    proc = subprocess.run(
        [valgrind, "--tool=lackey", "--trace-mem=yes", "--log-fd=1", "ls", "/"],
        capture_output=True,
        check=True,
    )
    secs = time.perf_counter() - start
    produced = proc.stdout.count(b"\n") / secs
    print(f"valgrind lackey (ls /) lines/s: {produced:,.0f}")
    print(f"lackey reader/valgrind ratio: {reader_lines_per_s / produced:.1f}")


def bench_csv_binary(tmp: Path, scale: float) -> None:
    w = make_workload(f"zipf:1GiB:{int(2_000_000 * scale)}", seed=1, write_ratio=0.3, fill="half")
    csv, gst = tmp / "z.csv", tmp / "z.gst"
    count, secs = timed(lambda: write_csv(w.chunks(), str(csv)))
    print(f"csv write events/s: {count / secs:,.0f}")
    count, secs = timed(lambda: drain(open_trace(str(csv)).chunks()))
    print(f"csv read events/s: {count / secs:,.0f}")

    def line_by_line() -> int:
        with csv.open("rb") as stream:
            blocks = line_blocks(stream, str(csv))
            first = next(blocks)
            text = first.data.decode().split("\n", 1)[1]
            n = len(trace_csv._parse_lines(text, 2, str(csv)))
            return n + sum(
                len(trace_csv._parse_lines(b.data.decode(), b.first_line, str(csv))) for b in blocks
            )

    slow_count, slow_secs = timed(line_by_line)
    assert slow_count == count
    print(f"csv vectorised/line-by-line ratio: {slow_secs / secs:.1f}")
    count, secs = timed(lambda: write_binary(w.chunks(), str(gst)))
    print(f"binary write events/s: {count / secs:,.0f}")
    count, secs = timed(lambda: drain(open_trace(str(gst)).chunks()))
    print(f"binary read events/s: {count / secs:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="input size factor")
    args = parser.parse_args()
    bench_generators(args.scale)
    with tempfile.TemporaryDirectory(prefix="ghostswap-bench-") as tmp:
        fast = bench_lackey(Path(tmp), args.scale)
        bench_valgrind(fast)
        bench_csv_binary(Path(tmp), args.scale)


if __name__ == "__main__":
    main()
