"""Workloads by spec string.

PLACEHOLDER until the workload generators and trace readers land: it knows
one minimal generator, ``zipf:SIZE:ACCESSES[:THETA]``, enough for
``ghostswap run`` and its tests. The full registry replaces this file.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ghostswap.errors import ConfigError
from ghostswap.units import parse_size_pages
from ghostswap.workload.events import OP_READ, OP_WRITE, Workload, make_events

__all__ = ["make_workload", "open_trace"]

CHUNK = 1 << 16


def _count(text: str, what: str) -> int:
    text = text.strip().lower()
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    try:
        value = float(number) * scale
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a count (try 2M or 500000)") from None
    if value < 0 or value != int(value):
        raise ConfigError(f"{what}: {text!r} is not a whole count")
    return int(value)


class ZipfWorkload:
    """Write every page of a SIZE mapping once, then ACCESSES Zipfian
    accesses (YCSB's generator, ranks scattered over the pages)."""

    def __init__(self, pages: int, accesses: int, theta: float, seed: int,
                 write_ratio: float, fill: str) -> None:  # fmt: skip
        self.name = "zipf"
        self.pages = pages
        self.accesses = accesses
        self.theta = theta
        self.seed = seed
        self.write_ratio = write_ratio
        self.fill = fill

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "pages": self.pages,
            "accesses": self.accesses,
            "theta": self.theta,
            "seed": self.seed,
            "write_ratio": self.write_ratio,
            "fill": self.fill,
        }

    def total_events(self) -> int:
        return self.pages + self.accesses

    def chunks(self) -> Iterator[np.ndarray]:
        n = self.pages
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            ev = make_events(hi - lo)
            ev["pid"] = 1
            ev["op"] = OP_WRITE
            ev["npages"] = 1
            ev["page"] = np.arange(lo, hi, dtype=np.uint64)
            yield ev
        rng = np.random.default_rng(self.seed)
        theta = self.theta
        zetan = float(np.sum(1.0 / np.arange(1, n + 1, dtype=np.float64) ** theta))
        zeta2 = 1.0 + 0.5**theta
        alpha = 1.0 / (1.0 - theta)
        eta = (1 - (2.0 / n) ** (1 - theta)) / (1 - zeta2 / zetan)
        stride = _coprime_stride(n)
        left = self.accesses
        while left > 0:
            size = min(CHUNK, left)
            u = rng.random(size)
            uz = u * zetan
            rank = (n * (eta * u - eta + 1.0) ** alpha).astype(np.int64)
            rank = np.where(uz < 1.0, 0, np.where(uz < zeta2, 1, rank))
            np.clip(rank, 0, n - 1, out=rank)
            ev = make_events(size)
            ev["pid"] = 1
            ev["op"] = np.where(rng.random(size) < self.write_ratio, OP_WRITE, OP_READ)
            ev["npages"] = 1
            ev["page"] = (rank * stride % n).astype(np.uint64)
            yield ev
            left -= size


def _coprime_stride(n: int) -> int:
    from math import gcd

    stride = 2654435761 % n or 1
    while gcd(stride, n) != 1:
        stride += 1
    return stride


def make_workload(spec: str, *, seed: int, write_ratio: float, fill: str) -> Workload:
    """The workload `spec` names (only ``zipf:SIZE:ACCESSES[:THETA]`` here)."""
    parts = [p.strip() for p in str(spec).split(":")]
    if parts[0] != "zipf" or len(parts) not in (3, 4):
        raise ConfigError(f"workload {spec!r}: this build knows only zipf:SIZE:ACCESSES[:THETA]")
    pages = parse_size_pages(parts[1], f"workload {spec!r}")
    if pages < 2:
        raise ConfigError(f"workload {spec!r}: SIZE must be at least two pages")
    accesses = _count(parts[2], f"workload {spec!r}")
    theta = 0.99
    if len(parts) == 4:
        try:
            theta = float(parts[3])
        except ValueError:
            raise ConfigError(f"workload {spec!r}: THETA {parts[3]!r} is not a number") from None
        if not 0.0 < theta < 1.0:
            raise ConfigError(f"workload {spec!r}: THETA must be in (0, 1)")
    return ZipfWorkload(pages, accesses, theta, seed, write_ratio, fill)


def open_trace(path: str) -> Workload:
    raise ConfigError(f"--trace {path}: trace formats are not available in this build")
