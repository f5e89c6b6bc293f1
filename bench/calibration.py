"""Run the calibration matrix on this host (root) and print docs/calibration.md's table.

Each case runs `ghostswap calibrate` once and prints one Markdown row per
compared counter: host, model and the model's error. The zswap case runs
last: after it, this kernel swaps in no large folios until the next boot. Run:
``sudo .venv/bin/python bench/calibration.py > /tmp/table.md``.
"""

from __future__ import annotations

import sys

from ghostswap.calibrate.session import Calibration, run_calibration

MiB = 1 << 20

CASES: list[tuple[str, Calibration]] = (
    [
        (f"{w} on a swap file", Calibration(w, 128 * MiB, "file", 1024 * MiB))
        for w in ("seq:384MiB:2", "rand:384MiB:200k", "zipf:384MiB:200k")
    ]
    + [
        (f"{w} on zram (lz4)", Calibration(w, 128 * MiB, "zram", 1024 * MiB))
        for w in ("seq:384MiB:2", "rand:384MiB:200k", "zipf:384MiB:200k")
    ]
    + [
        (
            "seq:384MiB:2 on zram, 64 KiB mTHP",
            Calibration("seq:384MiB:2", 128 * MiB, "zram", 1024 * MiB, mthp={"64kB": "always"}),
        ),
        (
            "seq:384MiB:2 on zram, 64 KiB mTHP, MADV_HUGEPAGE",
            Calibration(
                "seq:384MiB:2",
                128 * MiB,
                "zram",
                1024 * MiB,
                mthp={"64kB": "always"},
                madv_hugepage=True,
            ),
        ),
        (
            "thp-frag (thp_swap_allocator_test) on 64 MiB zram (lzo), 64 KiB mTHP",
            Calibration(
                "thp-frag",
                512 * MiB,
                "zram",
                64 * MiB,
                mthp={"64kB": "always"},
                zram_algorithm="lzo",
            ),
        ),
        # Last: enabling zswap stops this kernel's large-folio swap-in until reboot.
        (
            "seq:1GiB:2 on a swap file, zswap (deflate), pool limit 1% of the host's RAM",
            Calibration(
                "seq:1GiB:2",
                128 * MiB,
                "file",
                3072 * MiB,
                zswap="deflate",
                zswap_max_pool_percent=1,
            ),
        ),
    ]
)


def main() -> None:
    print("| case | counter | host | model | error |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, cal in CASES:
        result = run_calibration(cal)
        for row in result.rows:
            host = f"{row.host:.2f}%" if row.percent else f"{row.host:,.0f}"
            model = f"{row.model:.2f}%" if row.percent else f"{row.model:,.0f}"
            print(f"| {name} | {row.name} | {host} | {model} | {row.describe_error()} |")
            name = ""
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
