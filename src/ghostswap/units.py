"""Sizes and fractions as users write them: ``4GiB``, ``64kB``, ``25%``.

Binary (KiB, MiB, ...) and decimal (kB, MB, ...) units are both accepted;
``k``/``K``/``KB`` alone mean KiB, as the kernel's own size strings do
(``hugepages-64kB`` is 64 KiB). A bare number is bytes.
"""

from __future__ import annotations

import re

from ghostswap.errors import ConfigError

__all__ = ["PAGE_SIZE", "format_bytes", "parse_fraction", "parse_size", "parse_size_pages"]

PAGE_SIZE = 4096

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 1 << 30,
    "gib": 1 << 30,
    "t": 1 << 40,
    "tb": 1 << 40,
    "tib": 1 << 40,
    "p": 1 << 50,
    "pb": 1 << 50,
    "pib": 1 << 50,
    "e": 1 << 60,
    "eb": 1 << 60,
    "eib": 1 << 60,
    "page": PAGE_SIZE,
    "pages": PAGE_SIZE,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str, what: str = "size") -> int:
    """Bytes in `text` (``"4GiB"``, ``"64kB"``, ``"1.5G"``, ``"100pages"``)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ConfigError(f"{what}: {text!r} is not a size (try 4GiB, 64kB, 100pages)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ConfigError(f"{what}: unknown unit {unit!r} in {text!r}")
    value = float(number) * factor
    if value != int(value):
        raise ConfigError(f"{what}: {text!r} is not a whole number of bytes")
    return int(value)


def parse_size_pages(text: str, what: str = "size") -> int:
    """Whole pages in `text`; refuses sizes that are not page multiples."""
    size = parse_size(text, what)
    if size % PAGE_SIZE:
        raise ConfigError(f"{what}: {text!r} is not a multiple of the 4 KiB page size")
    return size // PAGE_SIZE


def parse_fraction(text: str, what: str = "fraction") -> float:
    """``"25%"`` or ``"0.25"`` as 0.25; must lie in [0, 1]."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a fraction (try 25% or 0.25)") from None
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{what}: {text!r} is outside 0..100%")
    return value


def format_bytes(n: float, precision: int = 1) -> str:
    """``1536`` -> ``1.5 KiB``; exact bytes below 1 KiB."""
    if abs(n) < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        n /= 1024
        if abs(n) < 1024 or unit == "EiB":
            return f"{n:.{precision}f} {unit}"
    raise AssertionError("unreachable")
