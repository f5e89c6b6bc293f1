"""One schedule as one short printable string.

A schedule is the program seed (the scenario's own randomness, kept apart
from the scheduler's) and the CPU chosen at every scheduling point where
more than one CPU could run. Consecutive identical choices are run-length
encoded, the numbers written as LEB128 varints and the bytes in URL-safe
base64, behind a version digit::

    1<base64 of: seed, number of decisions, (cpu, run length)...>

Replaying feeds the decisions back in order and stops at the first one that
is not possible (:class:`ReplayDivergence`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from ghostswap.errors import ConfigError

__all__ = ["ReplayDivergence", "Schedule"]

_VERSION = "1"


class ReplayDivergence(Exception):
    """The program did not offer the recorded choice: it is not deterministic,
    or the string belongs to another scenario or set of switches."""


def _put_varint(out: bytearray, n: int) -> None:
    if n < 0:
        raise ValueError("varints are unsigned")
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _get_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated")
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, pos


@dataclass(frozen=True)
class Schedule:
    """The program seed and the CPU chosen at each real decision."""

    seed: int
    decisions: tuple[int, ...]

    def encode(self) -> str:
        out = bytearray()
        _put_varint(out, self.seed)
        _put_varint(out, len(self.decisions))
        i = 0
        decisions = self.decisions
        while i < len(decisions):
            cpu = decisions[i]
            run = 1
            while i + run < len(decisions) and decisions[i + run] == cpu:
                run += 1
            _put_varint(out, cpu)
            _put_varint(out, run)
            i += run
        return _VERSION + base64.urlsafe_b64encode(bytes(out)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Schedule:
        text = text.strip()
        if not text.startswith(_VERSION):
            raise ConfigError(f"--replay {text!r}: not a schedule of this version")
        body = text[len(_VERSION) :]
        try:
            data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            seed, pos = _get_varint(data, 0)
            total, pos = _get_varint(data, pos)
            decisions: list[int] = []
            while len(decisions) < total:
                cpu, pos = _get_varint(data, pos)
                run, pos = _get_varint(data, pos)
                if run == 0 or len(decisions) + run > total:
                    raise ValueError("bad run")
                decisions.extend([cpu] * run)
            if pos != len(data):
                raise ValueError("trailing bytes")
        except (ValueError, binascii.Error):
            raise ConfigError(f"--replay {text!r}: not a valid schedule string") from None
        return cls(seed, tuple(decisions))
