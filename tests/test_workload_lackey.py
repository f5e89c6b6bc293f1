"""Lackey traces: parsing real valgrind output, coalescing, recording."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from ghostswap.cli.main import main
from ghostswap.errors import ConfigError, TraceError
from ghostswap.workload import record, trace_common
from ghostswap.workload.events import OP_READ, OP_WRITE, make_events
from ghostswap.workload.record import record_lackey
from ghostswap.workload.registry import open_trace
from ghostswap.workload.trace_common import TraceOptions
from ghostswap.workload.trace_lackey import parse_lackey

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "touch_pages.lackey"
Row = tuple[int, int, int, int]  # pid, op, page, npages


def naive_lackey(text: str, instructions: bool = False, pid: int = 1) -> list[Row]:
    """A line-at-a-time reading of lackey output, as the docs describe it."""
    rows: list[Row] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(("==", "--", "**")):
            continue
        kind = line[0] if line[0] == "I" else line[1]
        addr_text, size_text = line[3:].split(",")
        addr, size = int(addr_text, 16), int(size_text)
        if kind == "I" and not instructions:
            continue
        first, last = addr >> 12, (addr + max(size, 1) - 1) >> 12
        ops = {"L": [OP_READ], "S": [OP_WRITE], "M": [OP_READ, OP_WRITE], "I": [OP_READ]}[kind]
        rows.extend((pid, op, first, last - first + 1) for op in ops)
    return rows


def naive_coalesce(rows: list[Row]) -> list[Row]:
    out: list[Row] = []
    run: list[Row] = []

    def flush() -> None:
        if run:
            out.append(run[0])
            if run[0][1] == OP_READ and any(r[1] == OP_WRITE for r in run[1:]):
                out.append((run[0][0], OP_WRITE, run[0][2], run[0][3]))

    for row in rows:
        if run and (row[0], row[2], row[3]) == (run[0][0], run[0][2], run[0][3]):
            run.append(row)
            continue
        flush()
        run = [row]
    flush()
    return out


def rows_of(events: np.ndarray) -> list[Row]:
    return [(int(e["pid"]), int(e["op"]), int(e["page"]), int(e["npages"])) for e in events]


def read_rows(path: Path, **options: object) -> list[Row]:
    w = open_trace(str(path), options=TraceOptions(**options))  # type: ignore[arg-type]
    return rows_of(np.concatenate(list(w.chunks()) or [make_events(0)]))


@pytest.mark.parametrize("instructions", [False, True])
@pytest.mark.parametrize("coalesce", [False, True])
def test_sample_matches_a_line_by_line_reading(instructions: bool, coalesce: bool) -> None:
    want = naive_lackey(SAMPLE.read_text(), instructions)
    if coalesce:
        want = naive_coalesce(want)
    got = read_rows(SAMPLE, include_instructions=instructions, coalesce=coalesce)
    assert got == want
    assert len(got) > 100


@pytest.mark.parametrize("block", [97, 1000, 4096])
def test_block_borders_change_nothing(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    whole = read_rows(SAMPLE)
    whole_raw = read_rows(SAMPLE, coalesce=False, include_instructions=True)
    monkeypatch.setattr(trace_common, "BLOCK_BYTES", block)
    assert read_rows(SAMPLE) == whole
    assert read_rows(SAMPLE, coalesce=False, include_instructions=True) == whole_raw


def test_coalescing_shrinks_the_sample() -> None:
    raw = read_rows(SAMPLE, coalesce=False)
    merged = read_rows(SAMPLE)
    assert len(merged) < len(raw) / 2
    # The same pages are touched, and written, either way.
    assert {(r[2], r[3]) for r in merged} == {(r[2], r[3]) for r in raw}
    writes = {(r[2], r[3]) for r in raw if r[1] == OP_WRITE}
    assert {(r[2], r[3]) for r in merged if r[1] == OP_WRITE} == writes


def test_access_kinds_and_page_spans(tmp_path: Path) -> None:
    path = tmp_path / "t.lackey"
    path.write_text(
        "==7== Lackey, an example Valgrind tool\n"
        " L 00001000,8\n"  # page 1
        " S 00001ffc,8\n"  # spans pages 1 and 2
        " M 00005000,4\n"  # read then write of page 5
        "--7-- a verbose valgrind line\n"
        "I  00401000,0\n"  # instruction fetch, size 0: still its page
        "**7** an internal message\n"
        " L fffffffffffff000,4\n"
        "==7== \n"
    )
    assert read_rows(path, coalesce=False) == [
        (1, OP_READ, 1, 1),
        (1, OP_WRITE, 1, 2),
        (1, OP_READ, 5, 1),
        (1, OP_WRITE, 5, 1),
        (1, OP_READ, (1 << 52) - 1, 1),
    ]
    rows = read_rows(path, coalesce=False, include_instructions=True, pid=42)
    assert (42, OP_READ, 0x401, 1) in rows and all(r[0] == 42 for r in rows)


def test_runs_collapse_to_a_read_and_a_write(tmp_path: Path) -> None:
    path = tmp_path / "t.lackey"
    path.write_text(
        " L 1000,8\n L 1008,8\n S 1010,8\n L 1018,8\n S 1020,8\n"  # R R W R W on page 1
        " S 2000,8\n L 2008,8\n"  # W R on page 2
        " L 3000,8\n L 3ff8,8\n"  # R R on page 3
        " L 3ffc,8\n"  # spans 3..4: another run
        " L 3000,8\n"  # back on page 3: a new run
    )
    assert read_rows(path) == [
        (1, OP_READ, 1, 1),
        (1, OP_WRITE, 1, 1),
        (1, OP_WRITE, 2, 1),
        (1, OP_READ, 3, 1),
        (1, OP_READ, 3, 2),
        (1, OP_READ, 3, 1),
    ]


def test_a_long_run_is_held_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.lackey"
    path.write_text(" L 1000,8\n S 1008,8\n" * 4000 + " L 9000,8\n")
    monkeypatch.setattr(trace_common, "BLOCK_BYTES", 256)
    assert read_rows(path) == [(1, OP_READ, 1, 1), (1, OP_WRITE, 1, 1), (1, OP_READ, 9, 1)]


def test_chatter_is_collected_and_skipped() -> None:
    chatter: deque[str] = deque(maxlen=100)
    with SAMPLE.open("rb") as stream:
        events = np.concatenate(list(parse_lackey(stream, str(SAMPLE), None, chatter)))
    assert len(events) == len(read_rows(SAMPLE))
    assert chatter[0].endswith("Lackey, an example Valgrind tool")
    assert any("Exit code" in line for line in chatter)


def test_crlf_blank_lines_and_uppercase_hex_take_the_slow_path(tmp_path: Path) -> None:
    plain = SAMPLE.read_text()
    odd = tmp_path / "odd.lackey"
    odd.write_text(plain.replace("\n", "\r\n") + "\r\n \r\n")
    assert read_rows(odd) == read_rows(SAMPLE)
    upper = tmp_path / "upper.lackey"
    upper.write_text(plain.upper().replace("==4242== LACKEY", "==4242== Lackey"))
    assert read_rows(upper) == read_rows(SAMPLE)


def test_malformed_line_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = SAMPLE.read_text().splitlines()
    for bad in ["hello from the program", " X 1000,8", " L 10g0,8", " L 1000", "I  1000,8,9"]:
        broken = [*lines[:1999], bad, *lines[1999:]]
        path = tmp_path / "broken.lackey"
        path.write_text("\n".join(broken) + "\n")
        monkeypatch.setattr(trace_common, "BLOCK_BYTES", 3000)
        with pytest.raises(TraceError) as info:
            read_rows(path)
        message = str(info.value)
        assert message.startswith(f"{path}:2000: not a lackey access line")
        assert "\n" not in message


def test_detected_by_content(tmp_path: Path) -> None:
    copy = tmp_path / "valgrind.out"
    shutil.copy(SAMPLE, copy)
    assert open_trace(str(copy)).describe()["format"] == "lackey"
    bare = tmp_path / "bare.txt"
    bare.write_text("I  04000b50,3\n S 1ffefffd38,8\n")
    assert open_trace(str(bare)).describe()["format"] == "lackey"
    assert read_rows(bare) == [(1, OP_WRITE, 0x1FFEFFF, 1)]


def test_record_refuses_without_valgrind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(record.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="valgrind is not installed"):
        record_lackey(["true"], str(tmp_path / "t.gst"))
    assert list(tmp_path.iterdir()) == []


def test_record_refuses_unknown_commands(tmp_path: Path) -> None:
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    with pytest.raises(ConfigError, match="no-such-program-here: command not found"):
        record_lackey(["no-such-program-here"], str(tmp_path / "t.gst"))
    with pytest.raises(ConfigError, match="nothing to record"):
        record_lackey([], str(tmp_path / "t.gst"))


needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")


@pytest.fixture(scope="module")
def touch_program(tmp_path_factory: pytest.TempPathFactory) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("needs a C compiler")
    exe = tmp_path_factory.mktemp("prog") / "touch_pages"
    subprocess.run([cc, "-O1", "-o", str(exe), str(DATA / "touch_pages.c")], check=True)
    return str(exe)


@pytest.mark.slow
@needs_valgrind
def test_record_sees_every_page_the_program_writes(touch_program: str, tmp_path: Path) -> None:
    out = tmp_path / "touch.gst"
    size = 64 * 4096
    result = record_lackey([touch_program, str(size)], str(out))
    assert result.exit_status == 0 and result.events > 100
    assert any("Lackey" in m for m in result.valgrind_messages)
    events = np.concatenate(list(open_trace(str(out)).chunks()))
    assert len(events) == result.events
    # Valgrind runs the program the same way every time; under valgrind the
    # buffer address differs from a native run, so find the memset's pages:
    # a run of `size` written pages, each also read back.
    writes = events[events["op"] == OP_WRITE]
    written = np.unique(writes["page"])
    runs = np.split(written, np.flatnonzero(np.diff(written) != 1) + 1)
    buffer = max(runs, key=len)
    assert len(buffer) >= size // 4096
    reads = set(events[events["op"] == OP_READ]["page"].tolist())
    assert sum(p in reads for p in buffer.tolist()) >= size // 4096
    assert tuple(tmp_path.iterdir()) == (out,)


@pytest.mark.slow
@needs_valgrind
def test_record_through_the_cli(touch_program: str, tmp_path: Path) -> None:
    out = tmp_path / "t.gst"
    assert main(["trace", "record", "--out", str(out), "--", touch_program, "8192"]) == 0
    assert open_trace(str(out)).total_events() > 100


@pytest.mark.slow
@needs_valgrind
def test_record_fails_cleanly_when_valgrind_cannot_start(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="valgrind exited with status 127 before writing"):
        record_lackey(["/no/such/program"], str(tmp_path / "t.gst"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@needs_valgrind
def test_interrupted_record_stops_valgrind_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(proc)
        return proc

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(record.subprocess, "Popen", popen)
    out = tmp_path / "t.gst"
    with pytest.raises(KeyboardInterrupt):
        record_lackey(["sh", "-c", "while :; do :; done"], str(out), progress=interrupt)
    assert len(started) == 1 and started[0].poll() is not None
    assert list(tmp.iterdir()) == []
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["tmp"]
    assert os.path.isdir(tmp)


SIZE_ABOVE = "has an access size above 999999999 bytes"
WIDE = "has an address wider than 64 bits"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (" S 1000,1234567890", SIZE_ABOVE),
        (" L 1000,99999999999999999999", SIZE_ABOVE),
        ("I  1000,4" + "0" * 9, SIZE_ABOVE),
        (" S 10000000000000000,8", WIDE),
        ("I  123456789abcdef012,4", WIDE),
    ],
)
def test_an_absurd_size_or_address_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str, why: str
) -> None:
    # A lackey line all the same, not "not a lackey access line".
    lines = SAMPLE.read_text().splitlines()
    path = tmp_path / "huge.lackey"
    path.write_text("\n".join([*lines[:1999], bad, *lines[1999:]]) + "\n")
    monkeypatch.setattr(trace_common, "BLOCK_BYTES", 3000)
    with pytest.raises(TraceError) as info:
        read_rows(path)
    assert str(info.value) == f"{path}:2000: {bad.strip()!r} {why}"


def test_a_size_with_leading_zeros_is_its_value(tmp_path: Path) -> None:
    path = tmp_path / "zeros.lackey"
    path.write_text(" L 1ff8,0000000000016\n")
    assert read_rows(path) == [(1, OP_READ, 1, 2)]
    # ... and so is an address.
    path.write_text(" L 000000000000001ff8,16\n")
    assert read_rows(path) == [(1, OP_READ, 1, 2)]


@pytest.mark.parametrize("bad", [" L ffffffffffffffff,8", " M fffffffffffffffc,1000"])
def test_an_access_past_2_64_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    # Such an access wrapped around to page 0 and became a garbage event.
    lines = SAMPLE.read_text().splitlines()
    path = tmp_path / "far.lackey"
    path.write_text("\n".join([*lines[:1999], bad, *lines[1999:]]) + "\n")
    monkeypatch.setattr(trace_common, "BLOCK_BYTES", 3000)
    with pytest.raises(TraceError, match=rf"^{path}:2000: .* runs past the end of the 64-bit"):
        read_rows(path)
