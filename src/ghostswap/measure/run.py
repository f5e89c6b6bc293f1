"""One run: a workload replayed on a machine built from a run
configuration, measured into the result ``ghostswap run`` prints and
writes (``--json``); ``ghostswap calibrate`` runs its model side with it.
"""

from __future__ import annotations

from typing import Any

from ghostswap.measure.progress import progress_bar
from ghostswap.measure.replay import replay
from ghostswap.measure.result import OverheadTracker, build_result, sample
from ghostswap.mm.machine import Machine
from ghostswap.runconfig import RunConfig
from ghostswap.storage.base import store_factory
from ghostswap.workload.events import Workload

__all__ = ["run"]


def run(cfg: RunConfig, workload: Workload, quiet: bool = True) -> tuple[dict[str, Any], list]:
    """Run `workload` on a machine built from `cfg`; (result, timeline).
    A progress bar shows on a terminal unless `quiet`."""
    total = workload.total_events() or 0
    sample_every = max(total // 200, 4096) if total else 1 << 16
    tracker = OverheadTracker()
    stores = store_factory(cfg.machine.store, cfg.machine.store_dir)
    with Machine(cfg.machine, stores) as vm, progress_bar("replaying", total, quiet) as update:
        outcome = replay(
            vm,
            workload,
            progress=update,
            sampler=lambda m, n: sample(m, n, tracker),
            sample_every=sample_every,
        )
        vm.verify_resident()
        result = build_result(
            vm, cfg.describe(), workload.describe(), outcome.events, outcome.seconds, tracker
        )
    return result, outcome.samples
