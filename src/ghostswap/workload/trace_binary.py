"""The compact binary trace format (``.gst``): a header, then raw events.

Layout (little-endian; docs/trace-format.md is the reference)::

    offset size  field
         0    8  magic         b"GSTRACE\\0"
         8    2  version       1
        10    2  flags         bit 0: event_count is exact
        12    2  record_size   17 (bytes per event)
        14    2  reserved      0
        16    8  event_count   number of records
        24    4  meta_size     bytes of JSON metadata after the header
        28    4  reserved      0
        32    .  metadata      UTF-8 JSON object (the source's describe())
         .    .  records       event_count x 17 bytes

Each record is one :data:`~ghostswap.workload.events.EVENT_DTYPE` event,
packed: ``pid`` u32, ``op`` u8, ``npages`` u32, ``page`` u64. A writer that
cannot seek back may leave flag 0 clear and ``event_count`` 0; the reader
then takes every whole record up to the end of the file.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import IO, Any

import numpy as np

from ghostswap.errors import TraceError
from ghostswap.workload.events import EVENT_DTYPE
from ghostswap.workload.generator import CHUNK_EVENTS
from ghostswap.workload.spec import FILLS
from ghostswap.workload.trace_common import (
    TraceFormat,
    TraceOptions,
    TraceWorkload,
    first_invalid_event,
    move_into_place,
    open_binary,
)

__all__ = [
    "EXTENSION",
    "FORMAT",
    "MAGIC",
    "BinaryHeader",
    "BinaryTrace",
    "BinaryWriter",
    "read_header",
    "write_binary",
]

MAGIC = b"GSTRACE\0"
VERSION = 1
FLAG_COUNT_EXACT = 1
EXTENSION = ".gst"
_HEADER = struct.Struct("<8sHHHHQII")
RECORD_SIZE = EVENT_DTYPE.itemsize


class BinaryHeader:
    """The parsed header of a binary trace."""

    def __init__(self, flags: int, event_count: int, meta: dict[str, Any], data_offset: int):
        self.flags = flags
        self.event_count = event_count
        self.meta = meta
        self.data_offset = data_offset


def read_header(stream: IO[bytes], label: str) -> BinaryHeader:
    raw = stream.read(_HEADER.size)
    if len(raw) < _HEADER.size or raw[:8] != MAGIC:
        if raw[:8] == MAGIC:
            raise TraceError(f"{label}: truncated: the header is {len(raw)} of 32 bytes")
        raise TraceError(f"{label}: not a ghostswap binary trace (bad magic)")
    _, version, flags, record_size, reserved1, count, meta_size, reserved2 = _HEADER.unpack(raw)
    if version != VERSION:
        raise TraceError(f"{label}: binary trace version {version}; this ghostswap reads {VERSION}")
    if flags & ~FLAG_COUNT_EXACT:
        # A later writer's flag could change what the records mean.
        raise TraceError(f"{label}: unknown header flags {flags & ~FLAG_COUNT_EXACT:#x}")
    if reserved1 or reserved2:
        raise TraceError(f"{label}: reserved header fields are not 0")
    if record_size != RECORD_SIZE:
        raise TraceError(f"{label}: record size {record_size}; version 1 has {RECORD_SIZE}")
    meta_raw = stream.read(meta_size)
    if len(meta_raw) != meta_size:
        raise TraceError(
            f"{label}: truncated in the metadata ({len(meta_raw)} of {meta_size} bytes)"
        )
    try:
        meta = json.loads(meta_raw) if meta_size else {}
    except ValueError as err:
        raise TraceError(f"{label}: metadata is not JSON: {err}") from None
    if not isinstance(meta, dict):
        raise TraceError(f"{label}: metadata is not a JSON object")
    return BinaryHeader(flags, count, meta, _HEADER.size + meta_size)


class BinaryTrace(TraceWorkload):
    FORMAT = "binary"

    def __init__(
        self, path: str, *, fill: str | None = None, options: TraceOptions | None = None
    ) -> None:
        self.header = _read_checked_header(path)
        source_fill = self.header.meta.get("fill")
        if source_fill is not None and source_fill not in FILLS:
            raise TraceError(
                f"{path}: metadata fill {source_fill!r} is not one of {', '.join(FILLS)}"
            )
        if fill is None:
            fill = source_fill
        super().__init__(path, fill=fill, options=options)

    def _describe_options(self) -> dict[str, Any]:
        return {"source": self.header.meta}

    def total_events(self) -> int:
        return self.header.event_count

    def _read(self, stream: IO[bytes]) -> Iterator[np.ndarray]:
        stream.seek(self.header.data_offset)
        index = 0
        left = self.header.event_count
        while left:
            want = min(left, CHUNK_EVENTS)
            buf = bytearray(want * RECORD_SIZE)
            got = stream.readinto(buf)  # type: ignore[attr-defined]
            if got != len(buf):
                raise TraceError(f"{self.path}: truncated at event {index + got // RECORD_SIZE}")
            events = np.frombuffer(buf, dtype=EVENT_DTYPE)
            bad = first_invalid_event(events)
            if bad is not None:
                raise TraceError(f"{self.path}: event {index + bad[0]}: {bad[1]}")
            yield events
            index += want
            left -= want


def _read_checked_header(path: str) -> BinaryHeader:
    """The header, checked against the file's size (truncation, trailing bytes)."""
    with open_binary(path) as stream:
        header = read_header(stream, path)
        size = _stream_size(stream, path)
    body = size - header.data_offset
    if not header.flags & FLAG_COUNT_EXACT:
        if body % RECORD_SIZE:
            raise TraceError(f"{path}: truncated: {body % RECORD_SIZE} bytes of a partial event")
        header.event_count = body // RECORD_SIZE
        return header
    expected = header.event_count * RECORD_SIZE
    if body < expected:
        raise TraceError(
            f"{path}: truncated: the header promises {header.event_count} events, "
            f"the file holds {body // RECORD_SIZE}"
            + (f" and {body % RECORD_SIZE} bytes of another" if body % RECORD_SIZE else "")
        )
    if body > expected:
        raise TraceError(f"{path}: {body - expected} bytes after the last of the promised events")
    return header


def _stream_size(stream: IO[bytes], label: str) -> int:
    """Bytes in `stream`; a gzip stream cannot seek to its end, so is read through."""
    try:
        try:
            return stream.seek(0, os.SEEK_END)
        except (ValueError, io.UnsupportedOperation):
            pass
        size = stream.tell()
        while block := stream.read(1 << 20):
            size += len(block)
        return size
    except (OSError, EOFError) as err:
        raise TraceError(f"{label}: cannot read: {err}") from None


class BinaryWriter:
    """Writes a binary trace to a temporary file, renamed into place on close.

    Use as a context manager; if the block raises, nothing is left behind.
    """

    def __init__(self, path: str, meta: dict[str, Any] | None = None) -> None:
        self.path = path
        self.count = 0
        self._meta = json.dumps(meta or {}, sort_keys=True).encode()
        self._tmp = f"{path}.tmp{os.getpid()}"
        try:
            self._out: IO[bytes] = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
        except OSError as err:
            raise TraceError(f"{path}: cannot write: {err.strerror or err}") from None
        self._write_header(0, exact=False)

    def _write_header(self, count: int, exact: bool) -> None:
        flags = FLAG_COUNT_EXACT if exact else 0
        header = _HEADER.pack(MAGIC, VERSION, flags, RECORD_SIZE, 0, count, len(self._meta), 0)
        self._out.write(header + self._meta)

    def write(self, events: np.ndarray) -> None:
        if events.dtype != EVENT_DTYPE:
            events = events.astype(EVENT_DTYPE)
        self._out.write(np.ascontiguousarray(events).tobytes())
        self.count += len(events)

    def close(self) -> None:
        self._out.seek(0)
        self._write_header(self.count, exact=True)
        self._out.close()
        move_into_place(self._tmp, self.path)

    def abort(self) -> None:
        self._out.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def __enter__(self) -> BinaryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.close()
            except OSError as err:
                self.abort()
                raise TraceError(f"{self.path}: cannot write: {err.strerror or err}") from None
        else:
            self.abort()


def write_binary(
    chunks: Iterable[np.ndarray], path: str, meta: dict[str, Any] | None = None
) -> int:
    """Write `chunks` as a binary trace at `path`; returns the event count."""
    with BinaryWriter(path, meta) as writer:
        for events in chunks:
            writer.write(events)
    return writer.count


def _sniff(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _open(path: str, fill: str | None, options: TraceOptions) -> BinaryTrace:
    return BinaryTrace(path, fill=fill, options=options)


FORMAT = TraceFormat(
    name="binary",
    extensions=(EXTENSION, EXTENSION + ".gz"),
    summary="ghostswap's binary format: a 32-byte header, JSON metadata, 17-byte events",
    sniff=_sniff,
    open=_open,
    write=write_binary,
)
