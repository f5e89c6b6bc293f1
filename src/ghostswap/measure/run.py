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

__all__ = ["DEFERRED_WORK_EVERY", "TIMELINE_POINTS", "run"]

#: About how many timeline samples a run takes (the report's plots).
TIMELINE_POINTS = 300
#: Events between two runs of deferred work (RCU callbacks, work items).
DEFERRED_WORK_EVERY = 4096


def run(cfg: RunConfig, workload: Workload, quiet: bool = True) -> tuple[dict[str, Any], list]:
    """Run `workload` on a machine built from `cfg`; (result, timeline).
    A progress bar shows on a terminal unless `quiet`."""
    total = workload.total_events() or 0
    # Deferred work runs every DEFERRED_WORK_EVERY events (the counters
    # depend on where, so not on the run's length or the trace's format);
    # the metadata peak is taken there and at every timeline point.
    step = DEFERRED_WORK_EVERY
    # TIMELINE_POINTS samples over a run of known length; one of unknown
    # length (a text trace) starts at every event and thins out as it goes.
    sample_every = -(-total // TIMELINE_POINTS) if total else 1
    tracker = OverheadTracker()
    stores = store_factory(cfg.machine.store, cfg.machine.store_dir)
    with Machine(cfg.machine, stores) as vm, progress_bar("replaying", total, quiet) as update:
        peak_due = 0

        def sample_peak(events: int) -> None:
            nonlocal peak_due
            if events >= peak_due:
                tracker.update(vm)
                peak_due = events + step

        def sample_before_kill() -> None:
            # An OOM kill frees the victim's memory inside one event, before
            # any part or timeline point could see the high it reached.
            tracker.update(vm)

        vm.before_oom_kill = sample_before_kill

        def sample_point(vm: Machine, events: int) -> dict[str, float]:
            return sample(vm, events, tracker.update(vm)["total"])

        outcome = replay(
            vm,
            workload,
            progress=update,
            sampler=sample_point,
            sample_every=sample_every,
            max_samples=2 * TIMELINE_POINTS,
            step=step,
            before_part=sample_peak,
        )
        vm.verify_resident()
        result = build_result(
            vm, cfg.describe(), workload.describe(), outcome.events, outcome.seconds, tracker
        )
    return result, outcome.samples
