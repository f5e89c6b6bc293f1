"""Determinism guard: the same seed gives the same counters.

These are NOT correctness tests. The pinned values in
``tests/data/determinism.json`` were computed by the model itself; they
only catch a change of behaviour slipping in with a change meant to keep
it (a speed-up, a refactoring). A change that alters behaviour on purpose
(a fidelity fix) regenerates them and says so in its commit::

    .venv/bin/python -m tests.test_determinism

Every scenario runs twice: with the CONFIG_DEBUG_VM-style checks on (the
full build every other test uses) and off (the lean build ``ghostswap run``
uses), and both must give the pinned counters.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from ghostswap.cli.main import main
from ghostswap.mm import swapfile

DATA = Path(__file__).parent / "data" / "determinism.json"

SMALL_ZIPF = "--ram 4MiB --workload zipf:8MiB:10k"

SCENARIOS: dict[str, str] = {
    # The default machine (ghost device, zswap with zstd), scaled down.
    # Sequential: a random workload this small OOMs on zswap (unmapped
    # readahead folios are not reclaimable, see vmscan.shrink_folio_list),
    # and so does one in 4 MiB (the zsmalloc pool reaches its limit).
    "ghost_zswap": "run --ram 8MiB --workload seq:12MiB:3",
    "partition": f"run {SMALL_ZIPF} --swap partition:64MiB --no-zswap",
    "zram_mthp": f"run {SMALL_ZIPF} --swap zram:64MiB --mthp 64kB:always",
    # Rotational: the global cluster and cluster readahead.
    "file": f"run {SMALL_ZIPF} --swap file:64MiB --no-zswap",
    # Swap more than half full: scans reclaim cache-only slots.
    "file_churn_full": "run --ram 4MiB --swap file:8MiB --no-zswap --workload churn:10MiB:4",
    "partition_nearly_full_mthp": "run --ram 4MiB --swap partition:6MiB --no-zswap "
    "--mthp 16kB:always --workload rand:9MiB:10k",
    "thp_frag_discard": "run --ram 8MiB --swap partition:64MiB:discard --mthp 64kB:always "
    "--no-zswap --workload thp-frag:6MiB:10",
    "fork_ghost_large": "run --ram 4MiB --swap ghost:8x:large --mthp 32kB:always "
    "--workload fork:6MiB:3",
    "overhead_order0": "overhead --ram 64MiB --swap ghost:8x --swap file:256MiB --used 40% "
    "--free-fraction 0.3",
    "overhead_order4": "overhead --ram 64MiB --swap ghost:8x:large --swap partition:256MiB "
    "--used 30% --order 4 --free-fraction 0.5",
}

# Wall-clock fields and the echo of the configuration are not behaviour.
_NOT_PINNED = ("timing", "config")


def counters(command: str) -> dict[str, Any]:
    """The JSON result of one ghostswap command, minus timing."""
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main([*command.split(), "--quiet", "--json", "-"])
    result = json.loads(out.getvalue())
    result = {k: v for k, v in result.items() if k not in _NOT_PINNED}
    result["exit_code"] = rc
    return result


def _pinned() -> dict[str, Any]:
    return json.loads(DATA.read_text())


@pytest.mark.parametrize("debug_vm", [True, False], ids=["debug", "lean"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_counters_are_unchanged_for_the_same_seed(name: str, debug_vm: bool) -> None:
    swapfile.set_debug_vm(debug_vm)
    assert counters(SCENARIOS[name]) == _pinned()[name]


def regenerate() -> None:
    swapfile.set_debug_vm(True)
    data = {name: counters(command) for name, command in sorted(SCENARIOS.items())}
    DATA.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {DATA}")


if __name__ == "__main__":
    regenerate()
