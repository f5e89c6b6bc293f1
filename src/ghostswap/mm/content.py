"""Page contents the VM writes: content tokens, and the store interface.

A leaf module the VM, zswap and the storage layer all build on. A token is
an 8-byte name for 4 KiB of real bytes; :func:`expand` turns it into the
same 4096 bytes every time, and :func:`token_of` recovers the token from
those bytes (or :data:`BAD_TOKEN` when they are not what any token expands
to), so a store that keeps real bytes can be checked on every read.

``ZERO_TOKEN`` (0) is the zero-filled page. Other tokens carry a fill kind
in bits 60-62 and a serial number below; the bytes are a window of a fixed
pool (random bytes or text-like words, chosen by a hash of the serial) with
the token stamped in the first 8 bytes, so every page is distinct:

``random``  incompressible
``half``    2 KiB random, 2 KiB zeros (compresses about 2:1)
``text``    words and punctuation (compresses about 3:1 with zstd)

:class:`SwapStore` is what the VM needs from the backing store of one swap
device (the storage layer implements it); the front end hands the machine
a :data:`StoreFactory`, so the VM never imports a store.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Protocol

__all__ = [
    "BAD_TOKEN",
    "FILL_KINDS",
    "PAGE_SIZE",
    "ZERO_TOKEN",
    "StoreFactory",
    "SwapStore",
    "expand",
    "fill_kind",
    "make_token",
    "text_pool",
    "token_kind",
    "token_of",
]

PAGE_SIZE = 4096
ZERO_TOKEN = 0
BAD_TOKEN = -1
KIND_SHIFT = 60
SERIAL_MASK = (1 << KIND_SHIFT) - 1

FILL_KINDS = {"zero": 0, "random": 1, "half": 2, "text": 3}
_KIND_NAMES = {v: k for k, v in FILL_KINDS.items()}

_POOL_BYTES = 1 << 18
_ZERO_PAGE = bytes(PAGE_SIZE)
_HASH_MUL = 0x9E3779B97F4A7C15


def _make_random_pool() -> bytes:
    return _random.Random(0x6768).randbytes(_POOL_BYTES + PAGE_SIZE)


def _make_text_pool() -> bytes:
    rng = _random.Random(0x7478)
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4,
               2.4, 2.0, 2.0, 1.9, 1.0, 1.5, 2.0, 0.8, 0.2, 0.1, 0.2, 0.1]  # fmt: skip
    vocabulary = ["".join(rng.choices(letters, weights, k=rng.randint(2, 9))) for _ in range(400)]
    # Zipf-like word frequencies, as in natural text.
    word_weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(vocabulary))]
    out: list[str] = []
    size = 0
    while size < _POOL_BYTES + PAGE_SIZE:
        words = rng.choices(vocabulary, word_weights, k=rng.randint(4, 16))
        sentence = " ".join(words).capitalize() + rng.choice((". ", ", ", ".\n", "; "))
        out.append(sentence)
        size += len(sentence)
    return "".join(out).encode()[: _POOL_BYTES + PAGE_SIZE]


_RANDOM_POOL = _make_random_pool()
_TEXT_POOL = _make_text_pool()


def text_pool() -> bytes:
    """The words ``text`` pages are windows of (the calibration replayer
    fills its pages from the same pool, so both compress alike)."""
    return _TEXT_POOL


def fill_kind(name: str) -> int:
    """The kind number of a fill name (``zero``, ``random``, ``half``, ``text``)."""
    return FILL_KINDS[name]


def make_token(kind: int, serial: int) -> int:
    """The token of fill `kind` and serial number `serial` (ZERO for kind 0)."""
    if not kind:
        return ZERO_TOKEN
    return (kind << KIND_SHIFT) | (serial & SERIAL_MASK) | (1 if not serial & SERIAL_MASK else 0)


def token_kind(token: int) -> str:
    return _KIND_NAMES.get(token >> KIND_SHIFT, "?")


def _window(token: int) -> int:
    h = ((token & SERIAL_MASK) * _HASH_MUL) & 0xFFFFFFFFFFFFFFFF
    return (h >> 20) % _POOL_BYTES & ~7


def expand(token: int) -> bytes:
    """The 4096 bytes `token` names."""
    if token == ZERO_TOKEN:
        return _ZERO_PAGE
    kind = token >> KIND_SHIFT
    off = _window(token)
    stamp = token.to_bytes(8, "little")
    if kind == 1:
        return stamp + _RANDOM_POOL[off + 8 : off + PAGE_SIZE]
    if kind == 2:
        return stamp + _RANDOM_POOL[off + 8 : off + PAGE_SIZE // 2] + _ZERO_PAGE[: PAGE_SIZE // 2]
    if kind == 3:
        return stamp + _TEXT_POOL[off + 8 : off + PAGE_SIZE]
    raise ValueError(f"not a content token: {token:#x}")


def token_of(data: bytes) -> int:
    """The token whose expansion is `data`, or BAD_TOKEN."""
    if len(data) != PAGE_SIZE:
        return BAD_TOKEN
    token = int.from_bytes(data[:8], "little")
    if token == ZERO_TOKEN:
        return ZERO_TOKEN if data == _ZERO_PAGE else BAD_TOKEN
    if token >> KIND_SHIFT not in (1, 2, 3):
        return BAD_TOKEN
    return token if expand(token) == data else BAD_TOKEN


class SwapStore(Protocol):
    """The backing store of one swap device: one page (a token) per slot."""

    kind: str

    def write_page(self, offset: int, token: int) -> None:
        """Store the page `token` names at slot `offset`."""

    def read_page(self, offset: int) -> int:
        """The token of the page at `offset` (BAD_TOKEN if the bytes are
        wrong or the slot was never written)."""

    def discard(self, offset: int, nr: int) -> None:
        """Forget slots (they were freed)."""

    def stored_pages(self) -> int:
        """Slots holding a page now."""

    def close(self) -> None:
        """Release files and memory; the store is unusable afterwards."""


# The store of one device, from its name and its number of slots.
StoreFactory = Callable[[str, int], SwapStore]
