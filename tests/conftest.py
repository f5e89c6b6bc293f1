from __future__ import annotations

from collections.abc import Iterator

import pytest

from ghostswap.kernel import runtime


@pytest.fixture(autouse=True)
def _fast_mode_after_each_test() -> Iterator[None]:
    yield
    runtime.install(None)
