"""Where swapped-out page contents live: the store Protocol and its registry.

A store belongs to one swap device and holds one page per slot offset. The
VM hands it content tokens (:mod:`ghostswap.storage.content`); a store that
keeps real bytes expands them on write and recovers (and checks) the token
on read. Adding a store is one module and one line in :data:`STORES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ghostswap.errors import ConfigError

__all__ = ["STORES", "SwapStore", "make_store", "register_store"]


class SwapStore(Protocol):
    """The backing store of one swap device."""

    kind: str

    def write_page(self, offset: int, token: int) -> None:
        """Store the page `token` names at slot `offset`."""

    def read_page(self, offset: int) -> int:
        """The token of the page at `offset` (BAD_TOKEN if the bytes are wrong,
        None-equivalent BAD_TOKEN for a slot never written)."""

    def discard(self, offset: int, nr: int) -> None:
        """Forget slots (they were freed)."""

    def stored_pages(self) -> int:
        """Slots holding a page now."""

    def close(self) -> None:
        """Release files and memory; the store is unusable afterwards."""


StoreFactory = Callable[[str, int, str | None], SwapStore]
STORES: dict[str, StoreFactory] = {}


def register_store(kind: str, factory: StoreFactory) -> None:
    STORES[kind] = factory


def make_store(kind: str, name: str, size_pages: int, directory: str | None = None) -> SwapStore:
    """A store of `kind` for a device `name` of `size_pages` slots."""
    from ghostswap.storage import file as _file  # noqa: F401  (registers)
    from ghostswap.storage import memory as _memory  # noqa: F401  (registers)

    factory = STORES.get(kind)
    if factory is None:
        raise ConfigError(f"unknown store {kind!r} (one of {', '.join(sorted(STORES))})")
    return factory(name, size_pages, directory)
