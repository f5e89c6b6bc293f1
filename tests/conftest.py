"""Shared fixtures: every test starts in fast mode with strict warnings,
CONFIG_DEBUG_VM-style checks on, and no leftover deferred work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import Phase, settings

from ghostswap.kernel import bug, gfp, runtime, workqueue
from ghostswap.mm import swapfile


@pytest.fixture(autouse=True)
def _fresh_kernel_state() -> Iterator[None]:
    runtime.install(None)
    gfp.set_injection(None)
    bug.strict_warnings = True
    swapfile.set_debug_vm(True)
    runtime.set_fast_cpu(0)
    yield
    runtime.install(None)
    gfp.set_injection(None)
    workqueue.cancel_all()
    runtime.rcu_barrier_fast()
    swapfile.set_debug_vm(False)


# `pytest --hypothesis-profile=noshrink` reports the first failing example as
# found, without the (sometimes very long) shrinking phase.
settings.register_profile("noshrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])
