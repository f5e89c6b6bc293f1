"""The in-memory store: one token per slot, in per-cluster numpy arrays.

Cheap enough for tens of millions of slots (8 bytes each, allocated only
for clusters that hold a page); it checks slot bookkeeping (a read of the
wrong slot returns the wrong token) but not byte handling.
"""

from __future__ import annotations

import numpy as np

from ghostswap.storage.base import register_store
from ghostswap.storage.content import BAD_TOKEN

__all__ = ["MemoryStore"]

_CHUNK_SHIFT = 9
_CHUNK = 1 << _CHUNK_SHIFT
_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)


class MemoryStore:
    kind = "memory"

    def __init__(self, name: str = "", size_pages: int = 0, directory: str | None = None) -> None:
        self.name = name
        self._chunks: dict[int, np.ndarray] = {}
        self._used: dict[int, int] = {}

    def write_page(self, offset: int, token: int) -> None:
        index = offset >> _CHUNK_SHIFT
        chunk = self._chunks.get(index)
        if chunk is None:
            chunk = self._chunks[index] = np.full(_CHUNK, _EMPTY, dtype=np.uint64)
            self._used[index] = 0
        i = offset & (_CHUNK - 1)
        if chunk[i] == _EMPTY:
            self._used[index] += 1
        chunk[i] = token

    def read_page(self, offset: int) -> int:
        chunk = self._chunks.get(offset >> _CHUNK_SHIFT)
        if chunk is None:
            return BAD_TOKEN
        value = chunk[offset & (_CHUNK - 1)]
        return BAD_TOKEN if value == _EMPTY else int(value)

    def discard(self, offset: int, nr: int) -> None:
        end = offset + nr
        while offset < end:
            index = offset >> _CHUNK_SHIFT
            stop = min(end, (index + 1) << _CHUNK_SHIFT)
            chunk = self._chunks.get(index)
            if chunk is not None:
                part = chunk[offset & (_CHUNK - 1) : ((stop - 1) & (_CHUNK - 1)) + 1]
                held = int(np.count_nonzero(part != _EMPTY))
                if held:
                    part[:] = _EMPTY
                    self._used[index] -= held
                    if not self._used[index]:
                        del self._chunks[index], self._used[index]
            offset = stop

    def stored_pages(self) -> int:
        return sum(self._used.values())

    def close(self) -> None:
        self._chunks.clear()
        self._used.clear()


register_store("memory", lambda name, size, directory: MemoryStore(name, size, directory))
