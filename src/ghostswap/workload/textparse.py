"""Vectorised number parsing for the text trace readers.

A block of a text trace is a numpy byte array; a column of numbers in it
is given by where each number starts and how many digits it has, and
:func:`numbers_at` converts the whole column at once (no Python object per
line), returning None if any digit is not one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ANY_BYTE", "DEC_DIGITS", "HEX_DIGITS", "numbers_at"]

_POW10 = 10 ** np.arange(20, dtype=np.uint64)


def _digit_table(digits: str) -> np.ndarray:
    table = np.full(256, 255, dtype=np.uint8)
    for value, char in enumerate(digits):
        table[ord(char)] = value
        table[ord(char.upper())] = value
    return table


DEC_DIGITS = _digit_table("0123456789")
HEX_DIGITS = _digit_table("0123456789abcdef")
#: Every byte as its own value: packs short words into an integer key.
ANY_BYTE = np.arange(256, dtype=np.uint16)


def numbers_at(
    buf: np.ndarray, first: np.ndarray, length: np.ndarray, table: np.ndarray, radix: int
) -> np.ndarray | None:
    """The numbers whose digits are ``buf[first[i] : first[i] + length[i]]``.

    `table` maps a byte to its digit value (255: not a digit); `radix` is
    10, 16 or 256. Every length must be at least 1, and the result must fit
    in 64 bits (at most 19 decimal, 16 hex or 8 byte digits).
    """
    if not len(first):
        return np.empty(0, dtype=np.uint64)
    offsets = np.cumsum(length) - length
    pos = np.arange(int(offsets[-1] + length[-1])) + np.repeat(first - offsets, length)
    digits = table[buf[pos]]
    if (digits == 255).any() and radix != 256:
        return None
    exponent = (np.repeat(first + length - 1, length) - pos).astype(np.uint64)
    if radix == 10:
        terms = digits.astype(np.uint64) * _POW10[exponent]
    else:
        bits = np.uint64(4 if radix == 16 else 8)
        terms = digits.astype(np.uint64) << (exponent * bits)
    return np.add.reduceat(terms, offsets)
