"""Where swapped-out page contents live: the store registry.

A store belongs to one swap device and holds one page per slot offset. The
VM hands it content tokens (:mod:`ghostswap.mm.content`, which also defines
the :class:`~ghostswap.mm.content.SwapStore` interface the stores
implement); a store that keeps real bytes expands them on write and
recovers (and checks) the token on read. Adding a store is one module and
one line in :data:`STORES`. Front ends give a machine
:func:`store_factory` of the configured kind.
"""

from __future__ import annotations

from collections.abc import Callable

from ghostswap.errors import ConfigError
from ghostswap.mm.content import StoreFactory, SwapStore

__all__ = ["STORES", "SwapStore", "make_store", "register_store", "store_factory"]


# (device name, slots, directory) -> store
StoreMaker = Callable[[str, int, str | None], SwapStore]
STORES: dict[str, StoreMaker] = {}


def register_store(kind: str, maker: StoreMaker) -> None:
    STORES[kind] = maker


def make_store(kind: str, name: str, size_pages: int, directory: str | None = None) -> SwapStore:
    """A store of `kind` for a device `name` of `size_pages` slots."""
    maker = _registered(kind)
    return maker(name, size_pages, directory)


def store_factory(kind: str, directory: str | None = None) -> StoreFactory:
    """The machine's :data:`~ghostswap.mm.content.StoreFactory` for stores
    of `kind` (in `directory`, for the file store); an unknown kind is an
    error now, not at the first swapon."""
    _registered(kind)
    return lambda name, size_pages: make_store(kind, name, size_pages, directory)


def _registered(kind: str) -> StoreMaker:
    from ghostswap.storage import file as _file  # noqa: F401  (registers)
    from ghostswap.storage import memory as _memory  # noqa: F401  (registers)

    maker = STORES.get(kind)
    if maker is None:
        raise ConfigError(f"unknown store {kind!r} (one of {', '.join(sorted(STORES))})")
    return maker
