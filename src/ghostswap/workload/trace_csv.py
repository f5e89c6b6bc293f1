"""CSV traces: a header line ``pid,op,page,npages``, then one event a line.

``op`` is one of

- ``r`` / ``w``: read / write ``npages`` pages from ``page``;
- ``f``: free ``npages`` pages from ``page`` (``MADV_DONTNEED``);
- ``fork``: the process forks; ``page`` is the child's pid (``npages``
  ignored, may be empty);
- ``exit``: the process exits (``page`` and ``npages`` ignored, may be
  empty);

and, as an extension, ``map`` / ``unmap`` (``mmap`` / ``munmap`` the
range), ``pageout`` (``MADV_PAGEOUT`` the range) and ``huge`` /
``nohuge`` (``MADV_HUGEPAGE`` / ``MADV_NOHUGEPAGE``). Numbers are decimal
(``page`` may be ``0x`` hex); ``page`` is a virtual page number (address
>> 12). Blank lines and lines starting with ``#`` are skipped; fields may
carry spaces around them; a UTF-8 byte order mark at the start of the file
is skipped; the file may be gzip-compressed.

Reading is vectorised: a block of lines that are all plain
``DIGITS,op,DIGITS,DIGITS`` is converted by numpy in one go; any other
block is parsed line by line, which is where every error gets its
``FILE:LINE``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

import numpy as np

from ghostswap.errors import TraceError
from ghostswap.workload.events import (
    OP_EXIT,
    OP_FORK,
    OP_FREE,
    OP_HUGEPAGE,
    OP_MAP,
    OP_NAMES,
    OP_NOHUGEPAGE,
    OP_PAGEOUT,
    OP_READ,
    OP_UNMAP,
    OP_WRITE,
    make_events,
)
from ghostswap.workload.spec import FILLS
from ghostswap.workload.textparse import ANY_BYTE, DEC_DIGITS, numbers_at
from ghostswap.workload.trace_common import (
    RANGE_OPS,
    TraceFormat,
    TraceOptions,
    TraceWorkload,
    line_blocks,
    move_into_place,
    open_binary,
    read_head,
)

__all__ = ["FORMAT", "HEADER", "CsvTrace", "parse_csv", "write_csv"]

HEADER = "pid,op,page,npages"
OPS = {
    "r": OP_READ,
    "w": OP_WRITE,
    "f": OP_FREE,
    "fork": OP_FORK,
    "exit": OP_EXIT,
    "map": OP_MAP,
    "unmap": OP_UNMAP,
    "pageout": OP_PAGEOUT,
    "huge": OP_HUGEPAGE,
    "nohuge": OP_NOHUGEPAGE,
}
#: A UTF-8 byte order mark: skipped at the start of the file, where
#: spreadsheet exports put one; anywhere else it is an error.
UTF8_BOM = b"\xef\xbb\xbf"
_NEWLINE, _COMMA = ord("\n"), ord(",")
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1
#: How the comment line with the source's description starts.
META_PREFIX = "# ghostswap trace of "


class CsvTrace(TraceWorkload):
    FORMAT = "csv"

    def __init__(
        self, path: str, *, fill: str | None = None, options: TraceOptions | None = None
    ) -> None:
        self.meta = source_meta(path)
        source_fill = self.meta.get("fill")
        if fill is None and source_fill in FILLS:
            fill = source_fill
        super().__init__(path, fill=fill, options=options)

    def _describe_options(self) -> dict[str, Any]:
        return {"source": self.meta} if self.meta else {}

    def _read(self, stream: IO[bytes]) -> Iterator[np.ndarray]:
        return parse_csv(stream, self.path)

    def locate(self, index: int) -> str:
        """``FILE:LINE`` of event `index` (one event a line). Only errors the
        machine finds, not the reader, need it, so the file is read again."""
        with open_binary(self.path) as stream:
            line = event_line(stream, self.path, index)
        return super().locate(index) if line is None else f"{self.path}:{line}"


def parse_csv(stream: IO[bytes], label: str) -> Iterator[np.ndarray]:
    """The events of the CSV trace in `stream`; errors say ``label:LINE: ...``."""
    for data, first_line in _event_blocks(stream, label):
        events = _parse_plain(data)
        if events is None:
            events = _parse_lines(data.decode("utf-8", errors="replace"), first_line, label)
        if len(events):
            yield events


def _event_blocks(stream: IO[bytes], label: str) -> Iterator[tuple[bytes, int]]:
    """The blocks of whole lines after the header, with the number of
    each block's first line; the header is checked on the way."""
    header_seen = False
    at_start = True
    for block in line_blocks(stream, label):
        data: bytes | None = block.data
        first_line = block.first_line
        if at_start:
            # Spreadsheets often save CSV as UTF-8 with a byte order mark.
            data = block.data.removeprefix(UTF8_BOM)
            at_start = False
        if not header_seen:
            assert data is not None
            data, first_line = _skip_header(data, first_line, label)
            if data is None:
                continue
            header_seen = True
        assert data is not None
        yield data, first_line
    if not header_seen:
        raise TraceError(f"{label}:1: empty trace: expected the header line {HEADER}")


def event_line(stream: IO[bytes], label: str, index: int) -> int | None:
    """The line number of event `index` of the CSV trace in `stream`, or
    None if it has fewer events."""
    seen = 0
    for data, first_line in _event_blocks(stream, label):
        # Decoded and stripped exactly as _parse_lines does, so the same
        # lines count as events.
        for i, line in enumerate(data.decode("utf-8", errors="replace").split("\n")[:-1]):
            if _not_an_event(line.strip()):
                continue
            if seen == index:
                return first_line + i
            seen += 1
    return None


def source_meta(path: str) -> dict[str, Any]:
    """The description :func:`write_csv` put in a comment line before the
    header, or empty (a hand-written trace; other comments are free text)."""
    head = read_head(path, 1 << 16).removeprefix(UTF8_BOM)
    for line in head.decode("utf-8", errors="replace").split("\n"):
        text = line.strip()
        if text.startswith(META_PREFIX):
            break
        if not _not_an_event(text):
            return {}  # the header: no description before it
    else:
        return {}
    try:
        meta = json.loads(text.removeprefix(META_PREFIX))
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _skip_header(data: bytes, first_line: int, label: str) -> tuple[bytes | None, int]:
    """The block after the header line (None: only blank or comment lines)."""
    lines = data.split(b"\n")
    for i, raw in enumerate(lines[:-1]):
        stripped = raw.decode("utf-8", errors="replace").strip()
        if not stripped or stripped.startswith("#"):
            continue
        if [f.strip().lower() for f in stripped.split(",")] != HEADER.split(","):
            raise TraceError(
                f"{label}:{first_line + i}: expected the header line {HEADER}, "
                f"got {stripped[:60]!r}"
            )
        return b"\n".join(lines[i + 1 :]), first_line + i + 1
    return None, first_line


def _op_key(name: bytes) -> int:
    """An op name as the big-endian integer :func:`numbers_at` makes of it."""
    return int.from_bytes(name, "big")


_OP_KEYS = np.array(sorted(_op_key(name.encode()) for name in OPS), dtype=np.uint64)
_OP_BY_KEY = np.array(
    [OPS[key.to_bytes(8, "big").lstrip(b"\0").decode()] for key in _OP_KEYS.tolist()],
    dtype=np.uint8,
)


def _parse_plain(data: bytes) -> np.ndarray | None:
    """Convert a block of plain, valid ``pid,op,page,npages`` lines at numpy
    speed; None if any line is anything else (the caller then goes line by
    line, which finds and reports the culprit)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == _NEWLINE)
    n = len(ends)
    if n == 0:
        return make_events(0)
    commas = np.flatnonzero(buf == _COMMA)
    if len(commas) != 3 * n:
        return None
    comma_at = commas.reshape(n, 3)
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    # Non-empty fields put a line's three commas inside that line.
    lengths = (
        comma_at[:, 0] - starts,
        comma_at[:, 1] - comma_at[:, 0] - 1,
        comma_at[:, 2] - comma_at[:, 1] - 1,
        ends - comma_at[:, 2] - 1,
    )
    for length, most in zip(lengths, (10, 7, 19, 10), strict=True):
        if length.min() < 1 or length.max() > most:
            return None
    pid = numbers_at(buf, starts, lengths[0], DEC_DIGITS, 10)
    key = numbers_at(buf, comma_at[:, 0] + 1, lengths[1], ANY_BYTE, 256)
    page = numbers_at(buf, comma_at[:, 1] + 1, lengths[2], DEC_DIGITS, 10)
    npages = numbers_at(buf, comma_at[:, 2] + 1, lengths[3], DEC_DIGITS, 10)
    if pid is None or key is None or page is None or npages is None:
        return None
    if pid.max() > _U32 or npages.max() > _U32:
        return None
    slot = np.minimum(np.searchsorted(_OP_KEYS, key), len(_OP_KEYS) - 1)
    if (_OP_KEYS[slot] != key).any():
        return None
    op = _OP_BY_KEY[slot]
    ranged = np.isin(op, RANGE_OPS)
    if (ranged & (npages == 0)).any():
        return None
    if (ranged & (page > np.uint64(_U64) - npages + np.uint64(1))).any():
        return None
    fork, exits = op == OP_FORK, op == OP_EXIT
    if ((page[fork] == 0) | (page[fork] > _U32)).any():
        return None
    page[exits] = 0
    npages[fork | exits] = 0
    events = make_events(n)
    events["pid"] = pid
    events["op"] = op
    events["page"] = page
    events["npages"] = npages
    return events


def _number(field: str, limit: int, what: str, where: str, hex_ok: bool = False) -> int:
    try:
        value = int(field, 16) if hex_ok and field.lower().startswith("0x") else int(field, 10)
    except ValueError:
        raise TraceError(f"{where}: {what} {field[:40]!r} is not a number") from None
    if not 0 <= value <= limit:
        raise TraceError(f"{where}: {what} {field[:40]} is out of range 0..{limit}")
    return value


def _not_an_event(stripped: str) -> bool:
    """A blank or comment line (`stripped` of surrounding whitespace)."""
    return not stripped or stripped.startswith("#")


def _parse_lines(text: str, first_line: int, label: str) -> np.ndarray:
    rows: list[tuple[int, int, int, int]] = []
    for i, line in enumerate(text.split("\n")[:-1]):
        stripped = line.strip()
        if _not_an_event(stripped):
            continue
        where = f"{label}:{first_line + i}"
        fields = [f.strip() for f in stripped.split(",")]
        if len(fields) != 4:
            raise TraceError(
                f"{where}: expected 4 fields {HEADER}, got {len(fields)}: {line[:60]!r}"
            )
        pid_text, op_text, page_text, npages_text = fields
        op = OPS.get(op_text.lower())
        if op is None:
            raise TraceError(f"{where}: unknown op {op_text[:40]!r} (one of {', '.join(OPS)})")
        pid = _number(pid_text, _U32, "pid", where)
        if op == OP_EXIT:
            rows.append((pid, op, 0, 0))
            continue
        if op == OP_FORK:
            child = _number(page_text, _U32, "child pid", where)
            if child == 0:
                raise TraceError(f"{where}: fork needs the child's pid in the page field")
            rows.append((pid, op, 0, child))
            continue
        page = _number(page_text, _U64, "page", where, hex_ok=True)
        npages = _number(npages_text, _U32, "npages", where)
        if npages == 0:
            raise TraceError(f"{where}: {op_text} of 0 pages")
        if page + npages - 1 > _U64:
            raise TraceError(f"{where}: range runs past the last page")
        rows.append((pid, op, npages, page))
    events = make_events(len(rows))
    if rows:
        events[:] = rows
    return events


def write_csv(chunks: Iterable[np.ndarray], path: str, meta: dict[str, Any] | None = None) -> int:
    """Write `chunks` as a CSV trace at `path` (atomically); returns the event count.

    `meta` (the source's description) goes into a leading ``#`` comment line.
    """
    total = 0
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="ascii") as out:
            if meta:
                out.write(f"{META_PREFIX}{json.dumps(meta, sort_keys=True)}\n")
            out.write(HEADER + "\n")
            for events in chunks:
                out.write(_format(events))
                total += len(events)
        move_into_place(tmp, path)
    except OSError as err:
        raise TraceError(f"{path}: cannot write: {err.strerror or err}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return total


def _format(events: np.ndarray) -> str:
    if not len(events):
        return ""
    op = events["op"]
    names = _OP_NAME_ARRAY[op].tolist()
    page = events["page"].copy()
    npages = events["npages"].copy()
    npages[(op == OP_FORK) | (op == OP_EXIT)] = 0
    page[op == OP_EXIT] = 0
    columns = (
        map(str, events["pid"].tolist()),
        names,
        map(str, page.tolist()),
        map(str, npages.tolist()),
    )
    return "\n".join(map(",".join, zip(*columns, strict=True))) + "\n"


_OP_NAME_ARRAY = np.array([OP_NAMES[code] for code in sorted(OP_NAMES)], dtype=object)


def _sniff(head: bytes) -> bool:
    for line in head.removeprefix(UTF8_BOM).decode("utf-8", errors="replace").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.replace(" ", "").lower() == HEADER
    return False


def _open(path: str, fill: str | None, options: TraceOptions) -> CsvTrace:
    return CsvTrace(path, fill=fill, options=options)


FORMAT = TraceFormat(
    name="csv",
    extensions=(".csv", ".csv.gz"),
    summary=f"CSV, header {HEADER}; ops r w f fork exit (+ map unmap pageout huge nohuge)",
    sniff=_sniff,
    open=_open,
    write=write_csv,
)
