"""Small helpers for the VM tests: machines and hand-made event chunks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ghostswap.config import parse_swap_spec
from ghostswap.kernel import quiescent
from ghostswap.measure.replay import replay_chunk
from ghostswap.mm.machine import Machine, MachineConfig, parse_mthp
from ghostswap.mm.vm_invariants import check_machine
from ghostswap.storage.base import store_factory
from ghostswap.workload.events import OP_NAMES, make_events

OPS = {name: op for op, name in OP_NAMES.items()}


def make_vm(ram_pages: int = 256, swap: Sequence[str] = ("partition:8MiB",),
            mthp: Sequence[str] = (), **kw: object) -> Machine:  # fmt: skip
    cfg = MachineConfig(
        ram_pages=ram_pages,
        swap=[parse_swap_spec(s) for s in swap],
        mthp=parse_mthp(list(mthp)),
        **kw,  # type: ignore[arg-type]
    )
    return Machine(cfg, store_factory(cfg.store, cfg.store_dir))


def events(rows: Sequence[tuple[int, str, int, int]]) -> np.ndarray:
    """A chunk from (pid, op name, page, npages) rows."""
    ev = make_events(len(rows))
    for i, (pid, op, page, npages) in enumerate(rows):
        ev[i] = (pid, OPS[op], npages, page)
    return ev


def writes(pages: Sequence[int] | range, pid: int = 1) -> np.ndarray:
    return events([(pid, "w", p, 1) for p in pages])


def reads(pages: Sequence[int] | range, pid: int = 1) -> np.ndarray:
    return events([(pid, "r", p, 1) for p in pages])


def run(vm: Machine, *chunks: np.ndarray, check: bool = True) -> None:
    for chunk in chunks:
        replay_chunk(vm, chunk)
        quiescent()
    if check:
        check_machine(vm)


class ChunkWorkload:
    """A Workload over ready-made chunks."""

    def __init__(self, chunks: list[np.ndarray], name: str = "test") -> None:
        self.name = name
        self._chunks = chunks

    def describe(self) -> dict[str, object]:
        return {"name": self.name}

    def total_events(self) -> int:
        return sum(len(c) for c in self._chunks)

    def chunks(self) -> Iterator[np.ndarray]:
        yield from self._chunks

    def locate(self, index: int) -> str:
        return f"{self.name}: event {index}"
