"""The in-memory store: one token per slot, in per-cluster arrays.

Cheap enough for tens of millions of slots (8 bytes each, allocated only
for the 512-slot chunks that hold a page); it checks slot bookkeeping (a
read of the wrong slot returns the wrong token) but not byte handling.
"""

from __future__ import annotations

from array import array

from ghostswap.mm.content import BAD_TOKEN
from ghostswap.storage.base import register_store

__all__ = ["MemoryStore"]

_CHUNK_SHIFT = 9
_CHUNK = 1 << _CHUNK_SHIFT
_MASK = _CHUNK - 1
_EMPTY = -1
_EMPTY_CHUNK = array("q", [_EMPTY]) * _CHUNK


class MemoryStore:
    kind = "memory"

    def __init__(self, name: str = "", size_pages: int = 0, directory: str | None = None) -> None:
        self.name = name
        self._chunks: dict[int, array] = {}
        self._used: dict[int, int] = {}

    def write_page(self, offset: int, token: int) -> None:
        index = offset >> _CHUNK_SHIFT
        chunk = self._chunks.get(index)
        if chunk is None:
            chunk = self._chunks[index] = array("q", _EMPTY_CHUNK)
            self._used[index] = 0
        i = offset & _MASK
        if chunk[i] == _EMPTY:
            self._used[index] += 1
        chunk[i] = token

    def read_page(self, offset: int) -> int:
        chunk = self._chunks.get(offset >> _CHUNK_SHIFT)
        if chunk is None:
            return BAD_TOKEN
        value = chunk[offset & _MASK]
        return BAD_TOKEN if value == _EMPTY else value

    def discard(self, offset: int, nr: int) -> None:
        chunks = self._chunks
        for off in range(offset, offset + nr):
            index = off >> _CHUNK_SHIFT
            chunk = chunks.get(index)
            if chunk is None or chunk[off & _MASK] == _EMPTY:
                continue
            chunk[off & _MASK] = _EMPTY
            left = self._used[index] - 1
            if left:
                self._used[index] = left
            else:
                del chunks[index], self._used[index]

    def stored_pages(self) -> int:
        return sum(self._used.values())

    def close(self) -> None:
        self._chunks.clear()
        self._used.clear()


register_store("memory", lambda name, size, directory: MemoryStore(name, size, directory))
