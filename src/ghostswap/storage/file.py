"""The file store: real bytes in a real (sparse) file, one page per slot.

Each write expands the token to its 4096 bytes and ``os.pwrite``s them at
``offset * 4096``; each read ``os.pread``s them back and recovers the token
from the bytes, checking all of them. The file lives in a private temporary
directory (under `directory` if given) and is removed by :meth:`close`.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ghostswap.errors import ConfigError
from ghostswap.mm.content import BAD_TOKEN, PAGE_SIZE, expand, token_of
from ghostswap.storage.base import register_store

__all__ = ["FileStore"]


class FileStore:
    kind = "file"

    def __init__(self, name: str = "", size_pages: int = 0, directory: str | None = None) -> None:
        self.name = name
        try:
            self._dir = tempfile.mkdtemp(prefix="ghostswap-store-", dir=directory)
        except OSError as err:
            where = directory or "the temp dir"
            raise ConfigError(f"cannot create a store in {where}: {err.strerror}") from None
        safe = "".join(c if c.isalnum() else "_" for c in name) or "swap"
        self.path = os.path.join(self._dir, f"{safe}.img")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        if size_pages:
            os.ftruncate(self._fd, size_pages * PAGE_SIZE)
        self._written: set[int] = set()
        self.bytes_written = 0
        self.bytes_read = 0

    def write_page(self, offset: int, token: int) -> None:
        os.pwrite(self._fd, expand(token), offset * PAGE_SIZE)
        self._written.add(offset)
        self.bytes_written += PAGE_SIZE

    def read_page(self, offset: int) -> int:
        if offset not in self._written:
            return BAD_TOKEN
        data = os.pread(self._fd, PAGE_SIZE, offset * PAGE_SIZE)
        self.bytes_read += len(data)
        return token_of(data)

    def discard(self, offset: int, nr: int) -> None:
        written = self._written
        for off in range(offset, offset + nr):
            written.discard(off)

    def stored_pages(self) -> int:
        return len(self._written)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        shutil.rmtree(self._dir, ignore_errors=True)


register_store("file", lambda name, size, directory: FileStore(name, size, directory))
