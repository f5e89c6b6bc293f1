"""CSV traces: a header line ``pid,op,page,npages``, then one event a line.

``op`` is one of

- ``r`` / ``w``: read / write ``npages`` pages from ``page``;
- ``f``: free ``npages`` pages from ``page`` (``MADV_DONTNEED``);
- ``fork``: the process forks; ``page`` is the child's pid (``npages``
  ignored, may be empty);
- ``exit``: the process exits (``page`` and ``npages`` ignored, may be
  empty);

and, as an extension, ``map`` / ``unmap`` (``mmap`` / ``munmap`` the
range) and ``pageout`` (``MADV_PAGEOUT`` the range). Numbers are decimal
(``page`` may be ``0x`` hex); ``page`` is a virtual page number (address
>> 12). Blank lines and lines starting with ``#`` are skipped; fields may
carry spaces around them; the file may be gzip-compressed.

Reading is vectorised: a block of lines that is plain ``\\d+,op,\\d+,\\d+``
is converted by numpy in one go; any other block is parsed line by line,
which is where every error gets its ``FILE:LINE``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

import numpy as np

from ghostswap.errors import TraceError
from ghostswap.workload.events import (
    OP_EXIT,
    OP_FORK,
    OP_FREE,
    OP_MAP,
    OP_NAMES,
    OP_PAGEOUT,
    OP_READ,
    OP_UNMAP,
    OP_WRITE,
    make_events,
)
from ghostswap.workload.trace_common import (
    RANGE_OPS,
    TraceFormat,
    TraceOptions,
    TraceWorkload,
    line_blocks,
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
}
_PLAIN_BLOCK = re.compile(
    r"(?:\d{1,10},(?:r|w|f|map|unmap|pageout|fork|exit),\d{1,20},\d{1,10}\n)*"
)
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


class CsvTrace(TraceWorkload):
    FORMAT = "csv"

    def _read(self, stream: IO[bytes]) -> Iterator[np.ndarray]:
        return parse_csv(stream, self.path)


def parse_csv(stream: IO[bytes], label: str) -> Iterator[np.ndarray]:
    """The events of the CSV trace in `stream`; errors say ``label:LINE: ...``."""
    header_seen = False
    for block in line_blocks(stream, label):
        text = block.data.decode("utf-8", errors="replace")
        first_line = block.first_line
        if not header_seen:
            text, first_line = _skip_header(text, first_line, label)
            if text is None:
                continue
            header_seen = True
        events = _parse_plain(text)
        if events is None:
            events = _parse_lines(text, first_line, label)
        if len(events):
            yield events
    if not header_seen:
        raise TraceError(f"{label}:1: empty trace: expected the header line {HEADER}")


def _skip_header(text: str, first_line: int, label: str) -> tuple[str | None, int]:
    """The block after the header line (None: only blank or comment lines)."""
    lines = text.split("\n")
    for i, line in enumerate(lines[:-1]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if [f.strip().lower() for f in stripped.split(",")] != HEADER.split(","):
            raise TraceError(
                f"{label}:{first_line + i}: expected the header line {HEADER}, "
                f"got {stripped[:60]!r}"
            )
        return "\n".join(lines[i + 1 :]), first_line + i + 1
    return None, first_line


def _parse_plain(text: str) -> np.ndarray | None:
    """Convert a block of plain, valid lines at numpy speed, or None."""
    if not _PLAIN_BLOCK.fullmatch(text):
        return None
    fields = text.replace("\n", ",").split(",")
    table = np.array(fields[:-1]).reshape(-1, 4)
    try:
        pid = table[:, 0].astype(np.uint32)
        page = table[:, 2].astype(np.uint64)
        npages = table[:, 3].astype(np.uint32)
    except (OverflowError, ValueError):
        return None
    names, index = np.unique(table[:, 1], return_inverse=True)
    op = np.array([OPS[str(name)] for name in names], dtype=np.uint8)[index]
    ranged = np.isin(op, RANGE_OPS)
    if (ranged & (npages == 0)).any():
        return None
    if (ranged & (page > np.uint64(_U64) - npages.astype(np.uint64) + np.uint64(1))).any():
        return None
    fork = op == OP_FORK
    if ((page[fork] == 0) | (page[fork] > _U32)).any():
        return None
    exits = fork | (op == OP_EXIT)
    page[op == OP_EXIT] = 0
    npages[exits] = 0
    events = make_events(len(table))
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


def _parse_lines(text: str, first_line: int, label: str) -> np.ndarray:
    rows: list[tuple[int, int, int, int]] = []
    for i, line in enumerate(text.split("\n")[:-1]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
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
                out.write(f"# ghostswap trace of {json.dumps(meta, sort_keys=True)}\n")
            out.write(HEADER + "\n")
            for events in chunks:
                out.write(_format(events))
                total += len(events)
        os.replace(tmp, path)
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
    names = np.array([OP_NAMES[code] for code in sorted(OP_NAMES)])[op]
    page = events["page"].astype(str)
    npages = events["npages"].astype(str)
    npages[(op == OP_FORK) | (op == OP_EXIT)] = "0"
    page[op == OP_EXIT] = "0"
    columns = (events["pid"].astype(str).tolist(), names.tolist(), page.tolist(), npages.tolist())
    return "\n".join(map(",".join, zip(*columns, strict=True))) + "\n"


def _sniff(head: bytes) -> bool:
    for line in head.decode("utf-8", errors="replace").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.replace(" ", "").lower() == HEADER
    return False


def _open(path: str, fill: str | None, options: TraceOptions) -> CsvTrace:
    return CsvTrace(path, fill=fill, options=options)


FORMAT = TraceFormat(
    name="csv",
    extensions=(".csv", ".csv.gz"),
    summary=f"CSV, header {HEADER}; ops r w f fork exit (+ map unmap pageout)",
    sniff=_sniff,
    open=_open,
    write=write_csv,
)
