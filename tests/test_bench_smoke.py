"""The benchmarks run and print their documented lines (no timing asserts)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_alloc_bench_prints_the_documented_lines() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "alloc.py"), "--rounds", "2", "--batch", "512"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for order in (0, 4):
        assert re.search(rf"^order {order} static pairs/s: [\d,]+$", out, re.M)
        assert re.search(rf"^order {order} ghost pairs/s: [\d,]+$", out, re.M)
        assert re.search(rf"^order {order} ghost/static ratio: \d+\.\d\d$", out, re.M)
