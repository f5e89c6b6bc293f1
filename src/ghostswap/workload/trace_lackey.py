"""Traces from ``valgrind --tool=lackey --trace-mem=yes``.

Lackey prints one line per memory access of the program::

    I  04000b50,3        instruction fetch of 3 bytes
     L 1ffefffd38,8      load
     S 1ffefffd30,8      store
     M 0421c5c8,4        modify (load and store)

with hexadecimal addresses and decimal sizes, mixed with valgrind's own
``==PID==`` (and ``--PID--``, ``**PID**``) lines, which are skipped. An
access becomes an event on the pages it covers (one spanning a page
boundary covers both): a load a read, a store a write, a modify a read
followed by a write. Instruction fetches are dropped unless
``include_instructions`` (they touch code, which is file-backed, not
anonymous memory); then they are reads. Every event belongs to one pid
(``options.pid``, default 1): lackey does not say which process made an
access.

Coalescing (on by default): a run of consecutive accesses to the same
pages is one event, or a read and a write if the run starts with a read
and writes later. Nothing can happen to those pages between the accesses
of a run, so the VM sees the same faults and contents; only the event
count shrinks (typically several times over).

Parsing is vectorised over blocks of lines; a block that does not parse
cleanly is re-read line by line to name the bad line as ``FILE:LINE``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from ghostswap.errors import TraceError
from ghostswap.workload.events import OP_READ, OP_WRITE, make_events
from ghostswap.workload.textparse import DEC_DIGITS, HEX_DIGITS, numbers_at
from ghostswap.workload.trace_common import (
    ByteStream,
    TextBlock,
    TraceFormat,
    TraceOptions,
    TraceWorkload,
    line_blocks,
)

__all__ = ["FORMAT", "LackeyTrace", "parse_lackey"]

PAGE_SHIFT = 12
_ADDR_END = 1 << 64  # an access's bytes end at or below this (no wrap-around)
_CHATTER = re.compile(rb"^(?:==|--|\*\*)[^\n]*\n", re.M)
_CHATTER_STARTS = (b"==", b"--", b"**")
_CHATTER_MARKS = tuple(b"\n" + start for start in _CHATTER_STARTS)
_LINE = re.compile(r"^(?:(I) |\s([LSM]))\s([0-9a-fA-F]+),(\d+)\s*$")
_SIZE_DIGITS = 9  # an access size is below 10^9 bytes (lackey's are a few bytes)
_KIND_I, _KIND_L, _KIND_S, _KIND_M = (ord(c) for c in "ILSM")
_SPACE, _COMMA, _NEWLINE = ord(" "), ord(","), ord("\n")


_LINE_CHARS = (HEX_DIGITS != 255) | np.isin(np.arange(256), list(b"ILSM ,\n"))


class LackeyTrace(TraceWorkload):
    FORMAT = "lackey"

    def _describe_options(self) -> dict[str, Any]:
        return {
            "include_instructions": self.options.include_instructions,
            "coalesce": self.options.coalesce,
            "pid": self.options.pid,
        }

    def _read(self, stream: IO[bytes]) -> Iterator[np.ndarray]:
        return parse_lackey(stream, self.path, self.options)


def parse_lackey(
    stream: ByteStream,
    label: str,
    options: TraceOptions | None = None,
    chatter: deque[str] | None = None,
) -> Iterator[np.ndarray]:
    """The events of the lackey output in `stream`.

    Valgrind's own lines are appended to `chatter` if given (a bounded
    deque keeps the last ones, for error messages).
    """
    options = options or TraceOptions()
    coalescer = _Coalescer() if options.coalesce else None
    for block in line_blocks(stream, label):
        kind, addr, size = _parse_block(block, label, options.include_instructions, chatter)
        events = _accesses_to_events(kind, addr, size, options)
        if coalescer is not None:
            events = coalescer.feed(events)
        if len(events):
            yield events
    if coalescer is not None:
        tail = coalescer.flush()
        if len(tail):
            yield tail


Accesses = tuple[np.ndarray, np.ndarray, np.ndarray]


def _parse_block(
    block: TextBlock, label: str, instructions: bool, chatter: deque[str] | None
) -> Accesses:
    """(kind, address, size) of the access lines of `block` (instruction
    fetches only if `instructions`)."""
    data = block.data
    if not (data.startswith(_CHATTER_STARTS) or any(m in data for m in _CHATTER_MARKS)):
        return _parse_segment(data, block.first_line, label, instructions)
    parts: list[Accesses] = []
    pos = 0
    line = block.first_line
    for match in _CHATTER.finditer(data):
        segment = data[pos : match.start()]
        parts.append(_parse_segment(segment, line, label, instructions))
        line += segment.count(b"\n") + 1
        if chatter is not None:
            chatter.append(match.group().decode("utf-8", errors="replace").rstrip("\n"))
        pos = match.end()
    parts.append(_parse_segment(data[pos:], line, label, instructions))
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]


def _parse_segment(data: bytes, first_line: int, label: str, instructions: bool) -> Accesses:
    parsed = _parse_clean(data, instructions)
    if parsed is None:
        parsed = _parse_lines(data, first_line, label, instructions)
    return parsed


def _empty() -> Accesses:
    return np.empty(0, np.uint8), np.empty(0, np.uint64), np.empty(0, np.uint64)


def _parse_clean(data: bytes, instructions: bool) -> Accesses | None:
    """Vectorised parse of lines that are all well-formed access lines, or None.

    Dropped instruction lines are checked for shape and characters only;
    their numbers are not converted (they are most of a lackey trace).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == _NEWLINE)
    n = len(ends)
    if n == 0:
        return _empty()
    commas = np.flatnonzero(buf == _COMMA)
    if len(commas) != n:
        return None
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    hex_len = commas - starts - 3
    dec_len = ends - commas - 1
    # Lengths >= 1 put the k-th comma inside the k-th line: one comma a line.
    if hex_len.min() < 1 or hex_len.max() > 16 or dec_len.min() < 1 or dec_len.max() > _SIZE_DIGITS:
        return None
    c0, c1, c2 = buf[starts], buf[starts + 1], buf[starts + 2]
    instr = (c0 == _KIND_I) & (c1 == _SPACE)
    data_access = (c0 == _SPACE) & ((c1 == _KIND_L) | (c1 == _KIND_S) | (c1 == _KIND_M))
    if not ((instr | data_access) & (c2 == _SPACE)).all():
        return None
    if not instructions:
        if not _LINE_CHARS[buf].all():
            return None
        starts, commas, ends = starts[data_access], commas[data_access], ends[data_access]
        hex_len, dec_len, c1 = hex_len[data_access], dec_len[data_access], c1[data_access]
        instr = instr[data_access]
        if not len(starts):
            return _empty()
    addr = numbers_at(buf, starts + 3, hex_len, HEX_DIGITS, 16)
    size = numbers_at(buf, commas + 1, dec_len, DEC_DIGITS, 10)
    if addr is None or size is None:
        return None
    if (addr > np.uint64(_ADDR_END - 1) - (np.maximum(size, np.uint64(1)) - np.uint64(1))).any():
        return None  # an access wraps around 2^64: the line parser names the line
    return np.where(instr, _KIND_I, c1).astype(np.uint8), addr, size


def _parse_lines(data: bytes, first_line: int, label: str, instructions: bool) -> Accesses:
    """Line-by-line parse; raises on the first line that is not an access."""
    kinds: list[int] = []
    addrs: list[int] = []
    sizes: list[int] = []
    for i, raw in enumerate(data.split(b"\n")[:-1]):
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            continue
        match = _LINE.match(text)
        if not match:
            raise TraceError(
                f"{label}:{first_line + i}: not a lackey access line: {text[:60]!r} "
                "(expected 'I  ADDR,SIZE' or ' L|S|M ADDR,SIZE'; record with "
                "--log-file so the program's own output stays out of the trace)"
            )
        instr, data_kind, addr, size = match.groups()
        if len(size.lstrip("0")) > _SIZE_DIGITS:
            raise TraceError(
                f"{label}:{first_line + i}: {text.strip()[:60]!r} has an access size above "
                f"{10**_SIZE_DIGITS - 1} bytes"
            )
        if len(addr.lstrip("0")) > 16:
            raise TraceError(
                f"{label}:{first_line + i}: {text.strip()[:60]!r} has an address wider than 64 bits"
            )
        if instr and not instructions:
            continue
        if int(addr, 16) + max(int(size), 1) > _ADDR_END:
            raise TraceError(
                f"{label}:{first_line + i}: {text.strip()[:60]!r} runs past the end of "
                "the 64-bit address space"
            )
        kinds.append(ord(instr or data_kind))
        addrs.append(int(addr, 16))
        sizes.append(int(size))
    return (
        np.array(kinds, dtype=np.uint8),
        np.array(addrs, dtype=np.uint64),
        np.array(sizes, dtype=np.uint64),
    )


def _accesses_to_events(
    kind: np.ndarray, addr: np.ndarray, size: np.ndarray, options: TraceOptions
) -> np.ndarray:
    if not options.include_instructions:
        keep = kind != _KIND_I
        kind, addr, size = kind[keep], addr[keep], size[keep]
    first = addr >> np.uint64(PAGE_SHIFT)
    last = (addr + np.maximum(size, np.uint64(1)) - np.uint64(1)) >> np.uint64(PAGE_SHIFT)
    modify = kind == _KIND_M
    copies = 1 + modify.astype(np.int64)
    events = make_events(int(copies.sum()))
    events["pid"] = options.pid
    events["page"] = np.repeat(first, copies)
    events["npages"] = np.repeat(last - first + np.uint64(1), copies)
    events["op"] = np.repeat(np.where(kind == _KIND_S, OP_WRITE, OP_READ), copies)
    # The second event of a modify is its store.
    events["op"][(np.cumsum(copies) - 1)[modify]] = OP_WRITE
    return events


def _collapse(events: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each run (from each of `starts`) as its first access, plus a write if
    it starts with a read and writes later."""
    if not len(events):
        return events
    writes = (events["op"] == OP_WRITE).astype(np.uint8)
    later_write = np.maximum.reduceat(writes, starts).astype(bool)
    extra = (events["op"][starts] == OP_READ) & later_write
    copies = 1 + extra.astype(np.int64)
    out = np.repeat(events[starts], copies)
    out["op"][(np.cumsum(copies) - 1)[extra]] = OP_WRITE
    return out


class _Coalescer:
    """Collapses runs of accesses to the same pages, across chunk borders.

    The last run of each chunk is held back (collapsed, so at most two
    events) until the next chunk shows whether it goes on.
    """

    def __init__(self) -> None:
        self._held = make_events(0)

    def feed(self, events: np.ndarray) -> np.ndarray:
        if len(self._held):
            events = np.concatenate((self._held, events))
        if not len(events):
            return events
        same = (
            (events["page"][1:] == events["page"][:-1])
            & (events["npages"][1:] == events["npages"][:-1])
            & (events["pid"][1:] == events["pid"][:-1])
        )
        starts = np.flatnonzero(np.concatenate(([True], ~same)))
        last = int(starts[-1])
        self._held = _collapse(events[last:], np.zeros(1, dtype=np.int64))
        return _collapse(events[:last], starts[:-1])

    def flush(self) -> np.ndarray:
        held, self._held = self._held, make_events(0)
        return held


def _sniff(head: bytes) -> bool:
    for raw in head.split(b"\n")[:-1] or [head]:
        line = raw.decode("utf-8", errors="replace")
        if not line.strip() or _CHATTER.match(raw + b"\n"):
            continue
        return bool(_LINE.match(line))
    return b"Lackey" in head


def _open(path: str, fill: str | None, options: TraceOptions) -> LackeyTrace:
    return LackeyTrace(path, fill=fill, options=options)


FORMAT = TraceFormat(
    name="lackey",
    extensions=(".lackey", ".lackey.gz"),
    summary="valgrind --tool=lackey --trace-mem=yes output (I/L/S/M lines)",
    sniff=_sniff,
    open=_open,
)
