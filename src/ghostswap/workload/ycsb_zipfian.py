"""YCSB's Zipfian generators, vectorised with numpy.

Models ``site.ycsb.generator.ZipfianGenerator`` and
``ScrambledZipfianGenerator`` (YCSB core, after Gray et al., "Quickly
Generating Billion-Record Synthetic Databases", SIGMOD 1994):

- ``zeta(n, theta) = sum_{i=1..n} i^-theta``; ``alpha = 1 / (1 - theta)``;
  ``eta = (1 - (2/n)^(1-theta)) / (1 - zeta(2, theta) / zeta(n, theta))``.
- For ``u`` uniform in [0, 1): item 0 if ``u * zetan < 1``, item 1 if
  ``u * zetan < 1 + 0.5^theta``, else ``floor(n * (eta*u - eta + 1)^alpha)``.
  Items 0 and 1 get exactly their Zipf probabilities; the rest follow
  Gray's closed-form approximation of the Zipf CDF.
- The scrambled variant draws from YCSB's fixed item space of 10^16 + 1
  items and maps a rank to ``fnvhash64(rank) % items``, scattering the
  popular items over the key space. This is what YCSB's core workload uses
  for ``requestdistribution=zipfian``. For theta 0.99 YCSB uses its
  precomputed ``ZETAN = 26.46902820178302``, and so do we; that constant
  is zeta(10^10, 0.99) (YCSB's item space was once 10^10), not
  zeta(10^16 + 1, 0.99) = 45.12, so item 0 gets 3.8 % of the draws instead
  of 2.2 %. Other thetas use the true zeta of the 10^16 + 1 items.

Where this differs from YCSB: zeta of more than :data:`EXACT_ZETA_TERMS`
items is the exact sum of that many terms plus an Euler-Maclaurin tail
(relative error below 1e-12) instead of YCSB's term-by-term loop, which
for the scrambled space and theta != 0.99 would take centuries; the
result of YCSB's ``Math.abs(Long.MIN_VALUE) % n``, a negative key with
probability 2^-64, is folded back into range. The random numbers are
numpy's, not java.util.Random's, so streams match YCSB in distribution,
not value by value.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "EXACT_ZETA_TERMS",
    "SCRAMBLED_ITEM_COUNT",
    "SCRAMBLED_ZETAN_099",
    "YCSB_THETA",
    "ScrambledZipfian",
    "Zipfian",
    "fnvhash64",
    "zeta",
]

EXACT_ZETA_TERMS = 1 << 22
SCRAMBLED_ITEM_COUNT = 10_000_000_000_000_000
SCRAMBLED_ZETAN_099 = 26.46902820178302
YCSB_THETA = 0.99

_FNV_OFFSET_BASIS_64 = np.uint64(0xCBF29CE484222325)
_FNV_PRIME_64 = np.uint64(1099511628211)
_ZETA_BLOCK = 1 << 20


def libm_pow(base: np.ndarray, exponent: float) -> np.ndarray:
    """``base ** exponent`` element by element with the C library's pow(),
    as YCSB's ``Math.pow``. numpy's own power differs from it in the last
    bits on CPUs with AVX-512 (it uses SIMD code there), and ``items *
    pow(...)`` with YCSB's 10^16 scrambled items turns a last bit into
    another item: the same seed gave other pages on another CPU."""
    pow_ = math.pow
    return np.fromiter((pow_(x, exponent) for x in base.tolist()), np.float64, len(base))


def _zeta_exact(n: int, theta: float) -> float:
    parts = []
    for first in range(1, n + 1, _ZETA_BLOCK):
        i = np.arange(first, min(first + _ZETA_BLOCK, n + 1), dtype=np.float64)
        parts.append(math.fsum(libm_pow(i, -theta).tolist()))
    return math.fsum(parts)


def zeta(n: int, theta: float) -> float:
    """``sum_{i=1..n} i^-theta`` (YCSB ``ZipfianGenerator.zetastatic``)."""
    if n <= EXACT_ZETA_TERMS:
        return _zeta_exact(n, theta)
    m = EXACT_ZETA_TERMS
    head = _zeta_exact(m - 1, theta)
    # Euler-Maclaurin from m to n: integral, endpoint average, and the
    # B2 and B4 derivative terms of f(x) = x^-theta.
    integral = (n ** (1 - theta) - m ** (1 - theta)) / (1 - theta)
    ends = (m**-theta + n**-theta) / 2
    d1 = -theta * (n ** (-theta - 1) - m ** (-theta - 1))
    d3 = -theta * (theta + 1) * (theta + 2) * (n ** (-theta - 3) - m ** (-theta - 3))
    return head + integral + ends + d1 / 12 - d3 / 720


class Zipfian:
    """``ZipfianGenerator(items, theta)``: item 0 is the most popular."""

    def __init__(self, items: int, theta: float = YCSB_THETA, zetan: float | None = None) -> None:
        if items < 1:
            raise ValueError("a Zipfian distribution needs at least one item")
        if not 0.0 < theta < 1.0:
            raise ValueError("YCSB's Zipfian needs 0 < theta < 1")
        self.items = items
        self.theta = theta
        self.zeta2theta = zeta(2, theta)
        self.alpha = 1.0 / (1.0 - theta)
        self.zetan = zeta(items, theta) if zetan is None else zetan
        self.eta = (1 - math.pow(2.0 / items, 1 - theta)) / (1 - self.zeta2theta / self.zetan)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` items in ``[0, items)`` as int64 (``nextLong(items)``)."""
        u = rng.random(size)
        return self.items_for(u)

    def items_for(self, u: np.ndarray) -> np.ndarray:
        """The item YCSB returns for each uniform draw `u`."""
        eta = self.eta
        ret = (self.items * libm_pow(eta * u - eta + 1, self.alpha)).astype(np.int64)
        uz = u * self.zetan
        ret[uz < 1.0 + math.pow(0.5, self.theta)] = 1
        ret[uz < 1.0] = 0
        # Rounding can put u -> 1 on `items` itself; YCSB would return it.
        np.minimum(ret, self.items - 1, out=ret)
        return ret

    def cdf(self, k: np.ndarray) -> np.ndarray:
        """P(item < k) for this generator's own mapping of u to items.

        Not the true Zipf law (Gray's formula approximates it); tests compare
        samples against this exact CDF and the true law separately.
        """
        k = np.asarray(k, dtype=np.float64)
        p0 = 1.0 / self.zetan
        p01 = (1.0 + math.pow(0.5, self.theta)) / self.zetan
        head = np.where(k >= 2, p01, np.where(k >= 1, p0, 0.0))
        # Past the head, item < k iff n * (eta*u - eta + 1)^alpha < k.
        frac = np.clip(k, 0, self.items) / self.items
        tail_end = 1.0 - (1.0 - np.power(frac, 1.0 / self.alpha)) / self.eta
        out = head + np.clip(tail_end - p01, 0.0, None)
        out = np.where(k >= self.items, 1.0, np.where(k <= 0, 0.0, out))
        return np.clip(out, 0.0, 1.0)


def fnvhash64(values: np.ndarray) -> np.ndarray:
    """YCSB ``Utils.fnvhash64``: FNV-1a over the 8 little-endian bytes, then
    ``Math.abs`` of the signed result (int64; ``Long.MIN_VALUE`` stays negative)."""
    val = np.asarray(values).astype(np.uint64)
    hashval = np.full(val.shape, _FNV_OFFSET_BASIS_64, dtype=np.uint64)
    for _ in range(8):
        hashval ^= val & np.uint64(0xFF)
        hashval *= _FNV_PRIME_64
        val >>= np.uint64(8)
    return np.abs(hashval.view(np.int64))


class ScrambledZipfian:
    """``ScrambledZipfianGenerator(items, theta)``: popular items scattered."""

    def __init__(self, items: int, theta: float = YCSB_THETA) -> None:
        if items < 1:
            raise ValueError("a Zipfian distribution needs at least one item")
        self.items = items
        self.theta = theta
        # YCSB: new ZipfianGenerator(0, ITEM_COUNT, theta[, ZETAN]) has
        # ITEM_COUNT + 1 items.
        zetan = SCRAMBLED_ZETAN_099 if theta == YCSB_THETA else None
        self.base = Zipfian(SCRAMBLED_ITEM_COUNT + 1, theta, zetan)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.items_for(rng.random(size))

    def items_for(self, u: np.ndarray) -> np.ndarray:
        return self.scramble(self.base.items_for(u))

    def scramble(self, ranks: np.ndarray) -> np.ndarray:
        """Where YCSB puts the rank-`ranks` items: ``fnvhash64(rank) % items``."""
        keys = np.fmod(fnvhash64(ranks), self.items)
        keys[keys < 0] += self.items
        return keys
