"""CSV and binary traces: round trips, detection, every error with its place."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from ghostswap.errors import ConfigError, TraceError
from ghostswap.workload import trace_common
from ghostswap.workload.events import (
    EVENT_DTYPE,
    OP_EXIT,
    OP_FORK,
    OP_FREE,
    OP_MAP,
    OP_PAGEOUT,
    OP_READ,
    OP_UNMAP,
    OP_WRITE,
    make_events,
)
from ghostswap.workload.registry import make_workload, open_trace, trace_format_for_output
from ghostswap.workload.summary import IntervalSet, WorkloadSummary, summarize
from ghostswap.workload.trace_binary import MAGIC, BinaryWriter, write_binary
from ghostswap.workload.trace_csv import write_csv


def events_from(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Events from (pid, op, page, npages) rows, the CSV's column order."""
    ev = make_events(len(rows))
    for i, (pid, op, page, npages) in enumerate(rows):
        ev[i] = (pid, op, npages, page)
    return ev


def read_all(path: Path | str, **kwargs: object) -> np.ndarray:
    w = open_trace(str(path), **kwargs)  # type: ignore[arg-type]
    chunks = list(w.chunks())
    return np.concatenate(chunks) if chunks else make_events(0)


MIXED = [
    (1, OP_MAP, 0x40000, 512),
    (1, OP_WRITE, 0x40000, 16),
    (1, OP_READ, 0x40010, 1),
    (1, OP_FORK, 7, 0),
    (7, OP_WRITE, 0x40001, 2),
    (7, OP_FREE, 0x40000, 4),
    (1, OP_PAGEOUT, 0x40000, 512),
    (7, OP_EXIT, 0, 0),
    (1, OP_UNMAP, 0x40000, 512),
    (4294967295, OP_READ, (1 << 64) - 2, 2),
]


def test_csv_round_trip(tmp_path: Path) -> None:
    ev = events_from(MIXED)
    path = tmp_path / "t.csv"
    assert write_csv([ev[:4], ev[4:]], str(path)) == len(ev)
    assert path.read_text().splitlines()[0] == "pid,op,page,npages"
    assert read_all(path).tobytes() == ev.tobytes()


def test_csv_writer_puts_metadata_in_a_comment(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_csv([events_from(MIXED)], str(path), {"workload": "zipf", "seed": 3})
    first = path.read_text().splitlines()[0]
    assert first.startswith("#") and '"seed": 3' in first
    assert read_all(path).tobytes() == events_from(MIXED).tobytes()


def test_binary_round_trip_and_header(tmp_path: Path) -> None:
    ev = events_from(MIXED)
    path = tmp_path / "t.gst"
    assert write_binary([ev[:3], ev[3:]], str(path), {"fill": "text", "workload": "x"}) == len(ev)
    raw = path.read_bytes()
    magic, version, flags, record_size, _, count, meta_size, _ = struct.unpack_from(
        "<8sHHHHQII", raw
    )
    assert (magic, version, flags, record_size, count) == (MAGIC, 1, 1, 17, len(ev))
    assert len(raw) == 32 + meta_size + 17 * len(ev)
    w = open_trace(str(path))
    assert w.total_events() == len(ev)
    assert w.fill == "text"  # from the metadata
    assert np.concatenate(list(w.chunks())).tobytes() == ev.tobytes()
    # Records are the packed EVENT_DTYPE, little-endian.
    first = struct.unpack_from("<IBIQ", raw, 32 + meta_size)
    assert first == (1, OP_MAP, 512, 0x40000)


@pytest.mark.parametrize(
    "spec", ["zipf:1MiB:5000", "fork:256KiB:3", "thp-frag:1MiB:2", "churn:512KiB:2"]
)
def test_generated_events_survive_csv_and_binary(tmp_path: Path, spec: str) -> None:
    w = make_workload(spec, seed=9, write_ratio=0.4, fill="half")
    ev = np.concatenate(list(w.chunks()))
    write_csv(w.chunks(), str(tmp_path / "a.csv"), w.describe())
    from_csv = read_all(tmp_path / "a.csv")
    assert from_csv.tobytes() == ev.tobytes()
    write_binary(open_trace(str(tmp_path / "a.csv")).chunks(), str(tmp_path / "b.gst"))
    assert read_all(tmp_path / "b.gst").tobytes() == ev.tobytes()
    write_csv(open_trace(str(tmp_path / "b.gst")).chunks(), str(tmp_path / "c.csv"))
    body = (tmp_path / "a.csv").read_text().split("\n", 1)[1]  # past the comment
    assert (tmp_path / "c.csv").read_text() == body


def test_csv_leniencies_read_like_plain_lines(tmp_path: Path) -> None:
    lenient = tmp_path / "lenient.csv"
    lenient.write_text(
        "# a comment\n\n PID , Op , Page , NPages \n"
        "1,r,0x10,1\r\n"
        "  1 , W , 17 , 2 \n"
        "\n# another\n"
        "1,fork,2,\n"
        "2,exit,,\n"
        "2,EXIT,0,0\n"
        "1,pageout,16,3"  # no final newline
    )
    plain = tmp_path / "plain.csv"
    plain.write_text(
        "pid,op,page,npages\n1,r,16,1\n1,w,17,2\n1,fork,2,0\n2,exit,0,0\n2,exit,0,0\n"
        "1,pageout,16,3\n"
    )
    want = events_from(
        [(1, OP_READ, 16, 1), (1, OP_WRITE, 17, 2), (1, OP_FORK, 2, 0), (2, OP_EXIT, 0, 0),
         (2, OP_EXIT, 0, 0), (1, OP_PAGEOUT, 16, 3)]
    )  # fmt: skip
    assert read_all(plain).tobytes() == want.tobytes()
    assert read_all(lenient).tobytes() == want.tobytes()


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("name", ["export.csv", "export.txt", "export.csv.gz"])
@pytest.mark.parametrize("comment", [b"", b"# exported\r\n"])
def test_csv_with_a_byte_order_mark_reads_like_one_without(
    tmp_path: Path, name: str, comment: bytes
) -> None:
    """Spreadsheets save CSV as UTF-8 with a BOM before the first line (the
    header, or a comment); it is skipped, and the content still tells the
    format when the extension does not."""
    body = comment + b"pid,op,page,npages\r\n1,w,16,2\r\n1,r,0x10,1\r\n"
    data = BOM + body
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    (tmp_path / "plain.csv").write_bytes(body)
    trace = open_trace(str(tmp_path / name))
    assert trace.describe()["format"] == "csv"
    assert read_all(tmp_path / name).tobytes() == read_all(tmp_path / "plain.csv").tobytes()


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        (
            BOM + b"pid,op,addr,n\n1,r,1,1\n",
            1,
            "header line pid,op,page,npages, got 'pid,op,addr,n'",
        ),
        (BOM + b"pid,op,page,npages\n1,x,1,1\n", 2, "unknown op 'x'"),
        (BOM + BOM + b"pid,op,page,npages\n", 1, "expected the header line"),
        (
            b"pid,op,page,npages\n1,r,1,1\n" + BOM + b"1,r,1,1\n",
            3,
            "pid '\\ufeff1' is not a number",
        ),
        (b"\n" + BOM + b"pid,op,page,npages\n", 2, "expected the header line"),
        (BOM, 1, "empty trace"),
    ],
)
def test_a_byte_order_mark_anywhere_but_the_start_is_an_error(
    tmp_path: Path, body: bytes, line: int, needle: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(body)
    with pytest.raises(TraceError) as info:
        read_all(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and needle in message and "\n" not in message


def test_csv_blocks_and_line_numbers_across_borders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    n = 5000
    rows = [(int(p), int(o), int(g), int(k)) for p, o, g, k in zip(
        rng.integers(1, 5, n), rng.integers(0, 2, n), rng.integers(0, 1 << 40, n),
        rng.integers(1, 64, n), strict=True)]  # fmt: skip
    ev = events_from(rows)
    path = tmp_path / "big.csv"
    write_csv([ev], str(path))
    monkeypatch.setattr(trace_common, "BLOCK_BYTES", 997)
    assert read_all(path).tobytes() == ev.tobytes()
    lines = path.read_text().splitlines()
    lines[4321] = "1,w,12,zero"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError, match=rf"^{path}:4322: npages 'zero' is not a number$"):
        read_all(path)


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("", 1, "empty trace: expected the header line pid,op,page,npages"),
        ("# only a comment\n", 1, "empty trace"),
        ("pid,op,addr,n\n1,r,1,1\n", 1, "expected the header line"),
        ("pid,op,page,npages\n1,r,1,1\n1,x,1,1\n", 3, "unknown op 'x'"),
        ("pid,op,page,npages\n1,r,1\n", 2, "expected 4 fields"),
        ("pid,op,page,npages\n1,r,1,1,5\n", 2, "expected 4 fields"),
        ("pid,op,page,npages\n1,r,1,0\n", 2, "r of 0 pages"),
        ("pid,op,page,npages\n-1,r,1,1\n", 2, "out of range"),
        ("pid,op,page,npages\n4294967296,r,1,1\n", 2, "pid 4294967296 is out of range"),
        ("pid,op,page,npages\n1,r,18446744073709551616,1\n", 2, "page 18446744073709551616"),
        ("pid,op,page,npages\n1,r,18446744073709551615,2\n", 2, "past the last page"),
        ("pid,op,page,npages\n1,w,1,4294967296\n", 2, "npages 4294967296 is out of range"),
        ("pid,op,page,npages\n\n\n1,fork,0,0\n", 4, "fork needs the child's pid"),
        ("pid,op,page,npages\n1,f,zz,1\n", 2, "page 'zz' is not a number"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, body: str, line: int, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(TraceError) as info:
        read_all(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and needle in message and "\n" not in message


def test_csv_error_quotes_only_the_start_of_a_long_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("pid,op,page,npages\n" + "1" * 5000 + "\n")
    with pytest.raises(TraceError) as info:
        read_all(path)
    assert "expected 4 fields" in str(info.value) and len(str(info.value)) < 200


def test_binary_truncated_and_trailing(tmp_path: Path) -> None:
    path = tmp_path / "t.gst"
    write_binary([events_from(MIXED)], str(path))
    raw = path.read_bytes()
    path.write_bytes(raw[:-5])
    with pytest.raises(
        TraceError, match=r"truncated: the header promises 10 events, the file holds 9 and 12 bytes"
    ):
        open_trace(str(path))
    path.write_bytes(raw + b"xx")
    with pytest.raises(TraceError, match="2 bytes after the last"):
        open_trace(str(path))
    path.write_bytes(raw[:20])
    with pytest.raises(TraceError, match="truncated: the header is 20 of 32 bytes"):
        open_trace(str(path), fmt="binary")
    path.write_bytes(raw[:33])
    with pytest.raises(TraceError, match="truncated in the metadata"):
        open_trace(str(path))


def test_binary_bad_header_fields(tmp_path: Path) -> None:
    path = tmp_path / "t.gst"
    write_binary([events_from(MIXED)], str(path))
    raw = bytearray(path.read_bytes())
    for offset, value, needle in [
        (8, 2, "version 2"),
        (12, 24, "record size 24"),
        (10, 0b101, "unknown header flags 0x4"),
        (14, 1, "reserved header fields"),
        (28, 1, "reserved header fields"),
    ]:
        bad = bytearray(raw)
        struct.pack_into("<H", bad, offset, value)
        path.write_bytes(bad)
        with pytest.raises(TraceError, match=needle):
            open_trace(str(path))
    path.write_bytes(b"NOTATRACE" + bytes(40))
    with pytest.raises(TraceError, match="bad magic"):
        open_trace(str(path), fmt="binary")


def test_binary_without_exact_count_reads_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "t.gst"
    ev = events_from(MIXED)
    write_binary([ev], str(path))
    raw = bytearray(path.read_bytes())
    struct.pack_into("<HHHHQ", raw, 8, 1, 0, 17, 0, 0)  # flags 0, count 0
    path.write_bytes(raw)
    assert read_all(path).tobytes() == ev.tobytes()
    path.write_bytes(raw[:-3])
    with pytest.raises(TraceError, match="14 bytes of a partial event"):
        open_trace(str(path))


def test_binary_invalid_record_is_named_by_index(tmp_path: Path) -> None:
    ev = events_from(MIXED)
    ev[6]["op"] = 10
    path = tmp_path / "t.gst"
    write_binary([ev], str(path))
    with pytest.raises(TraceError, match=rf"^{path}: event 6: unknown op 10$"):
        read_all(path)
    ev = events_from(MIXED)
    ev[2]["npages"] = 0
    write_binary([ev], str(path))
    with pytest.raises(TraceError, match="event 2: r of 0 pages"):
        read_all(path)


def test_binary_writer_leaves_nothing_when_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "t.gst"
    with pytest.raises(KeyboardInterrupt), BinaryWriter(str(path)) as writer:
        writer.write(events_from(MIXED))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_gzip_traces_read_transparently(tmp_path: Path) -> None:
    ev = events_from(MIXED)
    write_csv([ev], str(tmp_path / "t.csv"))
    write_binary([ev], str(tmp_path / "t.gst"))
    for name in ("t.csv", "t.gst"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data))
        assert read_all(tmp_path / f"{name}.gz").tobytes() == ev.tobytes()


def test_format_detection(tmp_path: Path) -> None:
    ev = events_from(MIXED)
    write_csv([ev], str(tmp_path / "csv-named.dat"))
    write_binary([ev], str(tmp_path / "bin-named.csv"))
    assert open_trace(str(tmp_path / "csv-named.dat")).describe()["format"] == "csv"
    assert open_trace(str(tmp_path / "bin-named.csv")).describe()["format"] == "binary"
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TraceError, match="empty trace"):
        read_all(tmp_path / "empty.csv")
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01junk")
    with pytest.raises(TraceError, match="not a trace format ghostswap knows"):
        open_trace(str(tmp_path / "junk.bin"))
    with pytest.raises(TraceError, match="No such file"):
        open_trace(str(tmp_path / "missing.csv"))
    with pytest.raises(TraceError, match="is a directory"):
        open_trace(str(tmp_path))
    # A device (or a pipe, which a test cannot open without blocking) would
    # be sniffed, then read again from where the sniffing left it.
    with pytest.raises(TraceError, match="not a regular file"):
        open_trace(os.devnull)
    with pytest.raises(ConfigError, match="unknown trace format 'xml'"):
        open_trace(str(tmp_path / "csv-named.dat"), fmt="xml")


def test_make_workload_opens_trace_files(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_csv([events_from(MIXED)], str(path))
    for spec in (str(path), f"trace:{path}"):
        w = make_workload(spec, seed=0, write_ratio=0.5, fill="zero")
        assert w.describe()["format"] == "csv" and w.fill == "zero"
        assert np.concatenate(list(w.chunks())).tobytes() == events_from(MIXED).tobytes()


def test_output_format_choice(tmp_path: Path) -> None:
    assert trace_format_for_output("x.csv").name == "csv"
    assert trace_format_for_output("x.gst").name == "binary"
    assert trace_format_for_output("x.out", "csv").name == "csv"
    with pytest.raises(ConfigError, match="cannot tell the output format"):
        trace_format_for_output("x.out")
    with pytest.raises(ConfigError, match="cannot write lackey"):
        trace_format_for_output("x.lackey")


def test_text_line_without_end_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace_common, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(trace_common, "BLOCK_BYTES", 100)
    path = tmp_path / "long.csv"
    path.write_text("pid,op,page,npages\n" + "1" * 5000)
    with pytest.raises(TraceError, match=rf"{path}:2: a line longer than 1000 bytes"):
        read_all(path)


def test_interval_set_counts_distinct_pages() -> None:
    rng = np.random.default_rng(4)
    pages = IntervalSet()
    truth: set[int] = set()
    for _ in range(40):
        starts = rng.integers(0, 5000, 3000).astype(np.uint64)
        lengths = rng.integers(1, 20, 3000).astype(np.uint64)
        pages.add(starts, starts + lengths)
        for s, n in zip(starts.tolist(), lengths.tolist(), strict=True):
            truth.update(range(s, s + n))
        assert len(pages) == len(truth)
    assert (pages.starts[1:] > pages.lasts[:-1] + 1).all()  # disjoint, sorted, not touching


def test_interval_set_removes_and_reaches_the_top_page() -> None:
    top = (1 << 64) - 1
    pages = IntervalSet()
    pages.add(np.array([10, top - 3], dtype=np.uint64), np.array([20, 0], dtype=np.uint64))
    assert len(pages) == 10 + 4
    outside = pages.outside(
        np.array([5, top - 5], dtype=np.uint64), np.array([12, 0], dtype=np.uint64)
    )
    assert [s.tolist() for s in outside] == [[5, top - 5], [10, top - 3]]
    pages.remove(np.array([12, top], dtype=np.uint64), np.array([14, 0], dtype=np.uint64))
    assert (pages.starts.tolist(), pages.lasts.tolist()) == ([10, 14, top - 3], [11, 19, top - 1])


def test_summary_of_a_known_trace(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_csv([events_from(MIXED)], str(path))
    s = summarize(open_trace(str(path)))
    assert s.events == 10
    assert s.ops == {"r": 2, "w": 2, "f": 1, "map": 1, "unmap": 1, "fork": 1, "exit": 1,
                     "pageout": 1, "huge": 0, "nohuge": 0}  # fmt: skip
    assert s.pids == {1, 7, 4294967295}
    assert (s.page_min, s.page_max) == (0x40000, (1 << 64) - 1)
    assert (s.read_pages, s.write_pages) == (3, 18)
    # pid 1: 0x40000..0x40010; pid 7: 0x40001..2; the big pid: 2 pages.
    assert s.distinct_pages == 17 + 2 + 2
    assert s.footprint_bytes == 21 * 4096
    assert s.write_share == pytest.approx(18 / 21)


# pid 1 writes 16 pages and forks 2, which forks 3. A child's page counts
# once the child writes it (its COW copy) or touches a page it did not inherit.
FORKED = [
    (1, OP_WRITE, 0x40000, 16),
    (1, OP_FORK, 2, 0),
    (2, OP_READ, 0x40000, 8),  # shared with 1
    (2, OP_WRITE, 0x40004, 2),  # 2 copies
    (2, OP_READ, 0x40004, 4),  # its copies, and pages still shared
    (2, OP_READ, 0x40020, 1),  # not inherited: 1
    (2, OP_FORK, 3, 0),
    (3, OP_WRITE, 0x40000, 1),  # 1 copy
    (3, OP_READ, 0x40020, 2),  # 0x40020 shared with 2, 0x40021 new: 1
    (1, OP_WRITE, 0x40000, 16),  # the parent's own pages again
    (2, OP_EXIT, 0, 0),
    (2, OP_READ, 0x40000, 1),  # pid 2 again, a new process: not inherited
    (3, OP_EXIT, 0, 0),
]


@pytest.mark.parametrize("cuts", [[], [1, 2, 5, 7, 12], list(range(1, len(FORKED)))])
def test_summary_counts_a_forked_childs_pages_once_they_are_its_own(cuts: list[int]) -> None:
    s = WorkloadSummary()
    for part in np.split(events_from(FORKED), cuts):
        s.add(part)
    assert s.as_dict()["distinct_pages_per_pid"] == {"1": 16, "2": 2 + 1 + 1, "3": 1 + 1}
    assert s.distinct_pages == 22


def test_summary_counts_a_pid_used_again_after_its_exit_as_a_new_process() -> None:
    s = WorkloadSummary()
    s.add(events_from([(1, OP_WRITE, 0x40000, 10), (1, OP_EXIT, 0, 0), (1, OP_WRITE, 0x40000, 10)]))
    assert s.distinct_pages == 20
    assert s.as_dict()["distinct_pages_per_pid"] == {"1": 20}


def _footprint_page_by_page(events: np.ndarray) -> dict[int, int]:
    """The footprint rule of summary.py, one page at a time."""
    own: dict[int, set[int]] = {}
    shared: dict[int, set[int]] = {}
    exited: dict[int, int] = {}
    for pid, op, npages, page in events.tolist():
        if op == OP_FORK:
            shared[page] = own.get(pid, set()) | shared.get(pid, set())
        elif op == OP_EXIT:
            shared.pop(pid, None)
            if pid in own:
                exited[pid] = exited.get(pid, 0) + len(own.pop(pid))
        elif op in (OP_READ, OP_WRITE):
            pages = set(range(page, page + npages))
            if op == OP_WRITE:
                shared.get(pid, set()).difference_update(pages)
            own.setdefault(pid, set()).update(pages - shared.get(pid, set()))
    return {pid: exited.get(pid, 0) + len(own.get(pid, ())) for pid in own.keys() | exited.keys()}


def test_summary_footprint_agrees_with_a_page_by_page_count() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = 400
        ev = make_events(n)
        ev["pid"] = rng.integers(1, 6, n)
        ev["op"] = rng.choice([OP_READ, OP_WRITE, OP_FORK, OP_EXIT], n, p=[0.5, 0.4, 0.05, 0.05])
        ev["page"] = rng.integers(0, 300, n)
        ev["npages"] = rng.integers(1, 12, n)
        forks = ev["op"] == OP_FORK
        ev["page"][forks] = rng.integers(1, 6, int(forks.sum()))
        s = WorkloadSummary()
        for part in np.array_split(ev, rng.integers(1, 9)):
            s.add(part)
        per_pid = s.as_dict()["distinct_pages_per_pid"]
        assert {int(p): n for p, n in per_pid.items()} == _footprint_page_by_page(ev)  # type: ignore[union-attr]


def test_event_dtype_is_the_documented_record() -> None:
    assert EVENT_DTYPE.itemsize == 17
    assert [EVENT_DTYPE.fields[n][1] for n in ("pid", "op", "npages", "page")] == [0, 4, 5, 9]


def test_csv_fast_path_agrees_with_the_line_parser() -> None:
    from ghostswap.workload.trace_csv import _format, _parse_lines, _parse_plain

    rng = np.random.default_rng(1)
    n = 3000
    ev = make_events(n)
    ev["pid"] = rng.integers(1, 1 << 32, n)
    ev["op"] = rng.integers(0, 8, n)
    ev["page"] = rng.integers(0, 1 << 62, n, dtype=np.uint64)
    ev["npages"] = rng.integers(1, 1 << 20, n)
    ev["page"][ev["op"] == OP_FORK] = rng.integers(1, 1 << 32, int((ev["op"] == OP_FORK).sum()))
    ev["npages"][np.isin(ev["op"], (OP_FORK, OP_EXIT))] = 0
    ev["page"][ev["op"] == OP_EXIT] = 0
    text = _format(ev)
    fast = _parse_plain(text.encode())
    assert fast is not None
    assert fast.tobytes() == _parse_lines(text, 1, "x").tobytes() == ev.tobytes()
    for odd in ("1, r,5,1\n", "1,r,5,1\r\n", "# c\n", "\n", "1,R,5,1\n", "1,rw,5,1\n",
                "1,r,0x5,1\n", "1,r,5,0\n", "1,fork,0,0\n", "4294967296,r,5,1\n",
                "1,r,10000000000000000000,1\n"):  # fmt: skip
        assert _parse_plain((text + odd).encode()) is None, odd


def test_csv_locate_counts_lines_as_the_reader_does(tmp_path: Path) -> None:
    # Lines of only Unicode whitespace (a no-break space, U+001C) are blank
    # to the reader; CRLF ends and a leading byte order mark change nothing.
    rows = ["pid,op,page,npages", "1,w,0,1", "\u00a0", "\x1c", "\u00a0# note", "1,r,0,1"]
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    trace = open_trace(str(path))
    assert len(np.concatenate(list(trace.chunks()))) == 2
    assert trace.locate(0) == f"{path}:2"
    assert trace.locate(1) == f"{path}:6"
    assert trace.locate(2) == f"{path}: event 2"  # past the end


def test_csv_fill_comes_from_its_description_line_under_other_comments(tmp_path: Path) -> None:
    source = make_workload("seq:64KiB", seed=1, write_ratio=0.3, fill="zero")
    path = tmp_path / "t.csv"
    write_csv(source.chunks(), str(path), source.describe())
    path.write_text("# my own note\n\n" + path.read_text())
    assert open_trace(str(path)).fill == "zero"
    # A comment after the header is free text, not a description.
    hand = tmp_path / "hand.csv"
    hand.write_text('pid,op,page,npages\n# ghostswap trace of {"fill": "zero"}\n1,w,0,1\n')
    assert open_trace(str(hand)).fill == trace_common.DEFAULT_TRACE_FILL


def test_binary_metadata_with_an_unknown_fill_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.gst"
    write_binary([events_from(MIXED)], str(path), {"fill": "bogus"})
    with pytest.raises(TraceError, match=r"metadata fill 'bogus' is not one of"):
        open_trace(str(path))
    write_binary([events_from(MIXED)], str(path), {"fill": "zero"})
    assert open_trace(str(path)).fill == "zero"
