"""What the trace formats share: the reader frame, streams, checks.

A trace format is one module exposing a :class:`TraceFormat` (its name,
file extensions, a content sniffer, an opener and optionally a writer);
:mod:`ghostswap.workload.registry` lists them. Readers stream: text
formats are read in blocks of whole lines (:func:`line_blocks`), never
whole, and gzip-compressed files are read transparently.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, ClassVar, Protocol

import numpy as np

from ghostswap.errors import TraceError
from ghostswap.workload.events import (
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
)

__all__ = [
    "DEFAULT_TRACE_FILL",
    "RANGE_OPS",
    "TextBlock",
    "TraceFormat",
    "TraceOptions",
    "TraceWorkload",
    "first_invalid_event",
    "line_blocks",
    "move_into_place",
    "open_binary",
    "read_head",
]

#: Page contents of a trace, which records addresses only: half random,
#: half zero, roughly what real anonymous memory compresses to.
DEFAULT_TRACE_FILL = "half"
BLOCK_BYTES = 1 << 20
MAX_LINE_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
RANGE_OPS = (OP_READ, OP_WRITE, OP_FREE, OP_MAP, OP_UNMAP, OP_PAGEOUT, OP_HUGEPAGE, OP_NOHUGEPAGE)
_MAX_OP = max(OP_NAMES)
_U64 = (1 << 64) - 1


@dataclass(frozen=True)
class TraceOptions:
    """Reader options; each format uses those that apply to it."""

    include_instructions: bool = False
    coalesce: bool = True
    pid: int = 1


@dataclass(frozen=True)
class TraceFormat:
    """One trace format: how to recognise, read and (maybe) write it."""

    name: str
    extensions: tuple[str, ...]
    summary: str
    sniff: Callable[[bytes], bool]
    open: Callable[..., TraceWorkload]
    write: Callable[..., int] | None = None


class ByteStream(Protocol):
    """What the trace parsers read from: a file, or valgrind's FIFO."""

    def read(self, size: int = -1, /) -> bytes: ...


def open_binary(path: str) -> IO[bytes]:
    """`path` for reading bytes, gunzipped if it is gzip; errors name the file."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - handed to the caller
    except OSError as err:
        raise TraceError(f"{path}: {err.strerror or err}") from None
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def move_into_place(tmp: str, path: str) -> None:
    """Rename the finished temporary file `tmp` to `path`, gzipping it on
    the way if `path` ends in ``.gz`` (the readers take either)."""
    if not path.endswith(".gz"):
        os.replace(tmp, path)
        return
    packed = f"{tmp}.gz"
    try:
        with open(tmp, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(packed, path)
    finally:
        os.unlink(tmp)
        if os.path.exists(packed):
            os.unlink(packed)


def read_head(path: str, size: int = 4096) -> bytes:
    """The first `size` bytes of `path` (decompressed)."""
    with open_binary(path) as stream:
        try:
            return stream.read(size)
        except (OSError, EOFError) as err:
            raise TraceError(f"{path}: cannot read: {err}") from None


@dataclass(frozen=True)
class TextBlock:
    """Whole lines of a text trace: `data` ends with a newline."""

    first_line: int
    data: bytes

    @property
    def nlines(self) -> int:
        return self.data.count(b"\n")


def line_blocks(
    stream: ByteStream, label: str, block_bytes: int | None = None
) -> Iterator[TextBlock]:
    """`stream` in blocks of whole lines (the last one gets a newline added).

    Blocks are about `block_bytes` (default :data:`BLOCK_BYTES`) long, or
    one line if a line is longer; a line over :data:`MAX_LINE_BYTES` is an
    error (a binary file read as text would otherwise be held whole).
    """
    block_bytes = block_bytes or BLOCK_BYTES
    line = 1
    rest = b""
    while True:
        try:
            data = stream.read(block_bytes)
        except (OSError, EOFError) as err:
            raise TraceError(f"{label}: cannot read: {err}") from None
        if not data:
            break
        data = rest + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) > MAX_LINE_BYTES:
                raise TraceError(
                    f"{label}:{line}: a line longer than {MAX_LINE_BYTES} bytes: not a text trace"
                )
            rest = data
            continue
        block = TextBlock(line, data[:cut])
        line += block.nlines
        rest = data[cut:]
        yield block
    if rest:
        yield TextBlock(line, rest + b"\n")


def first_invalid_event(events: np.ndarray) -> tuple[int, str] | None:
    """The index of the first event no reader may produce, and why."""
    ops = events["op"]
    bad_op = ops > _MAX_OP
    ranged = np.isin(ops, RANGE_OPS)
    npages = events["npages"].astype(np.uint64)
    bad_range = ranged & (npages == 0)
    past_end = ranged & ~bad_range & (events["page"] > np.uint64(_U64) - npages + np.uint64(1))
    bad_fork = (ops == OP_FORK) & ((events["page"] == 0) | (events["page"] >= 1 << 32))
    bad = bad_op | bad_range | past_end | bad_fork
    if not bad.any():
        return None
    index = int(np.argmax(bad))
    op = int(ops[index])
    if bad_op[index]:
        return index, f"unknown op {op}"
    if bad_range[index]:
        return index, f"{OP_NAMES[op]} of 0 pages"
    if past_end[index]:
        return index, f"{OP_NAMES[op]} range runs past the last page"
    return index, f"fork to child pid {int(events['page'][index])}"


class TraceWorkload:
    """A trace file as a :class:`~ghostswap.workload.events.Workload`.

    Every call of :meth:`chunks` reads the file again from the start.
    `fill` is the page contents the VM gives written pages (traces carry
    addresses only); the VM may reassign it.
    """

    FORMAT: ClassVar[str]

    def __init__(
        self, path: str, *, fill: str | None = None, options: TraceOptions | None = None
    ) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.fill = fill or DEFAULT_TRACE_FILL
        self.options = options or TraceOptions()

    def describe(self) -> dict[str, object]:
        return {
            "workload": "trace",
            "format": self.FORMAT,
            "path": os.path.abspath(self.path),
            "fill": self.fill,
            **self._describe_options(),
        }

    def _describe_options(self) -> dict[str, Any]:
        return {}

    def total_events(self) -> int | None:
        return None

    def locate(self, index: int) -> str:
        """The event's number, counted from 0: a binary trace's record
        number; in a lackey trace, after coalescing (which merges lines)."""
        return f"{self.path}: event {index}"

    def chunks(self) -> Iterator[np.ndarray]:
        with open_binary(self.path) as stream:
            yield from self._read(stream)

    def _read(self, stream: IO[bytes]) -> Iterator[np.ndarray]:
        raise NotImplementedError
