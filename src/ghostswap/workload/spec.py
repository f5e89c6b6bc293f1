"""Workload specs as users write them: ``NAME:ARG:ARG[:key=value...]``.

A generator declares its arguments as :class:`Param` entries; positional
arguments fill them in order and ``key=value`` arguments name them, so
``zipf:1GiB:10M:0.9`` and ``zipf:1GiB:10M:theta=0.9`` are the same
workload. Sizes take the units of :mod:`ghostswap.units` (``256MiB``);
counts take plain integers, ``1e6``, ``1_000_000`` or decimal suffixes
(``10k``, ``5M``, ``1G``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ghostswap.errors import ConfigError
from ghostswap.units import parse_size_pages

__all__ = [
    "FILLS",
    "REQUIRED",
    "Param",
    "parse_bool",
    "parse_count",
    "parse_pages",
    "parse_spec_args",
    "parse_theta",
    "split_spec",
]

#: Page-content kinds the storage layer can realise (``--fill``).
FILLS = ("zero", "random", "half", "text")

REQUIRED: Any = object()
MAX_EVENT_PAGES = (1 << 32) - 1  # EVENT_DTYPE's npages is a u32

_COUNT = re.compile(r"^\s*(\d[\d_]*(?:\.\d+)?(?:[eE]\d+)?)\s*([kKmMgG]?)\s*$")
_COUNT_FACTOR = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


# A trillion: days of replay at a million events a second, and far below
# what the event arrays' 64-bit counters hold.
MAX_COUNT = 10**12


def parse_count(text: str, what: str = "count") -> int:
    """A non-negative whole number: ``1000``, ``1_000``, ``1e6``, ``10k``, ``5M``."""
    match = _COUNT.match(text)
    if not match:
        raise ConfigError(f"{what}: {text!r} is not a count (try 1000, 10k, 1e6)")
    number, suffix = match.groups()
    value = float(number.replace("_", "")) * _COUNT_FACTOR[suffix.lower()]
    if value != int(value):
        raise ConfigError(f"{what}: {text!r} is not a whole number")
    if value > MAX_COUNT:
        raise ConfigError(f"{what}: {text!r} is more than {MAX_COUNT:.0e}")
    return int(value)


def parse_pages(text: str, what: str = "size") -> int:
    """A size in whole 4 KiB pages, at least one page and at most what one
    event's ``npages`` (u32) covers: 16 TiB less a page."""
    pages = parse_size_pages(text, what)
    if pages < 1:
        raise ConfigError(f"{what}: {text!r} is less than one page")
    if pages > MAX_EVENT_PAGES:
        raise ConfigError(f"{what}: {text!r} is more than one event covers (16 TiB less a page)")
    return pages


def parse_theta(text: str, what: str = "theta") -> float:
    """A Zipfian constant: YCSB's formula needs 0 < theta < 1."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{what}: {text!r} must lie strictly between 0 and 1")
    return value


def parse_bool(text: str, what: str = "option") -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "y", "true", "on"):
        return True
    if value in ("0", "no", "n", "false", "off"):
        return False
    raise ConfigError(f"{what}: {text!r} is not yes or no")


@dataclass(frozen=True)
class Param:
    """One argument of a generator: its name, parser and default."""

    name: str
    parse: Callable[[str, str], Any]
    default: Any = REQUIRED
    unit: str = ""

    @property
    def key(self) -> str:
        """The name in ``describe()`` output, with its unit (``size_pages``)."""
        return f"{self.name}_{self.unit}" if self.unit else self.name

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def split_spec(spec: str) -> tuple[str, list[str]]:
    """``"zipf:1GiB:10M"`` -> ``("zipf", ["1GiB", "10M"])``."""
    name, *args = spec.strip().split(":")
    return name.strip().lower(), [a.strip() for a in args]


def parse_spec_args(
    spec: str, usage: str, params: Sequence[Param], args: Sequence[str]
) -> dict[str, Any]:
    """Bind positional and ``key=value`` arguments of `spec` to `params`.

    Positional arguments come first; every error names the spec and shows
    `usage`, so a user sees what was expected in one line.
    """
    by_name = {p.name: p for p in params}
    raw: dict[str, str] = {}
    positional_done = False
    for index, arg in enumerate(args):
        if "=" in arg:
            positional_done = True
            key, value = (s.strip() for s in arg.split("=", 1))
            key = key.lower().replace("-", "_")
            if key not in by_name:
                known = ", ".join(by_name)
                raise ConfigError(f"workload {spec!r}: unknown option {key!r} (known: {known})")
            if key in raw:
                raise ConfigError(f"workload {spec!r}: {key} given twice (usage: {usage})")
            raw[key] = value
            continue
        if positional_done:
            raise ConfigError(
                f"workload {spec!r}: positional {arg!r} after key=value (usage: {usage})"
            )
        if index >= len(params):
            raise ConfigError(f"workload {spec!r}: too many arguments (usage: {usage})")
        if arg == "":
            raise ConfigError(f"workload {spec!r}: empty argument (usage: {usage})")
        raw[params[index].name] = arg
    values: dict[str, Any] = {}
    for param in params:
        if param.name in raw:
            values[param.name] = param.parse(raw[param.name], f"workload {spec!r}: {param.name}")
        elif param.required:
            raise ConfigError(f"workload {spec!r}: missing {param.name.upper()} (usage: {usage})")
        else:
            values[param.name] = param.default
    return values
