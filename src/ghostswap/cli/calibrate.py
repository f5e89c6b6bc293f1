"""``ghostswap calibrate``: the model against this host's real kernel.

Runs a workload on the host (a swap file or zram device, a memory cgroup
with the RAM limit, the chosen mTHP sizes and zswap) and on the model with
the identical configuration and event sequence, then prints both counter
sets side by side with the model's error against the kernel. Needs root;
everything it changes on the host is restored, also on Ctrl-C.
"""

from __future__ import annotations

import argparse

from ghostswap.calibrate.session import Calibration, run_calibration
from ghostswap.cli.fmt import console, make_table, write_json
from ghostswap.errors import ConfigError
from ghostswap.mm.zswap import COMPRESSORS
from ghostswap.units import parse_fraction, parse_size

NAME = "calibrate"
HELP = "run a workload on this host's kernel and on the model, and compare"


def set_argparser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workload", required=True, metavar="SPEC", help="a generator, e.g. zipf:768MiB:2M"
    )
    parser.add_argument("--ram", default="256MiB", help="memory cgroup limit (default 256MiB)")
    parser.add_argument(
        "--swap",
        default="file:1GiB",
        metavar="KIND:SIZE",
        help="file:SIZE (a swap file in --swap-dir) or zram:SIZE (default file:1GiB)",
    )
    parser.add_argument(
        "--zram-algorithm", default="lz4", help="zram compressor for zram swap (default lz4)"
    )
    parser.add_argument(
        "--zswap",
        action="store_true",
        help="enable zswap for the run (on this kernel, enabling zswap once disables "
        "large-folio swap-in until the next boot)",
    )
    parser.add_argument(
        "--zswap-compressor",
        choices=tuple(COMPRESSORS),
        default="deflate",
        help="zswap's compressor on both sides; the host kernel must have it in its "
        "crypto API (default deflate, which most kernels have)",
    )
    parser.add_argument(
        "--zswap-max-pool-percent",
        type=int,
        metavar="N",
        help="zswap's max_pool_percent for the run, a share of the host's whole RAM "
        "(default: the host's setting)",
    )
    parser.add_argument(
        "--mthp",
        action="append",
        default=[],
        metavar="SIZE[:MODE]",
        help="an anonymous mTHP size and its mode, e.g. 64kB:always; MODE defaults to "
        "always (repeatable)",
    )
    parser.add_argument(
        "--madv-hugepage",
        action="store_true",
        help="MADV_HUGEPAGE every mapping of the workload (thp-frag does it itself)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-ratio", default="0.3", help="share of accesses that write")
    parser.add_argument("--fill", default="text", choices=("zero", "random", "half", "text"))
    parser.add_argument(
        "--swap-dir", default="/var/tmp", help="directory of the swap file (not on tmpfs)"
    )
    parser.add_argument(
        "--model-only",
        action="store_true",
        help="run only the model side (no root needed): what calibrate would compare against",
    )
    parser.add_argument("--json", metavar="OUT", help="write both counter sets as JSON")
    parser.add_argument("--quiet", action="store_true", help="no tables")


def _parse(args: argparse.Namespace) -> Calibration:
    kind, _, size = args.swap.partition(":")
    if kind not in ("file", "zram") or not size:
        raise ConfigError(f"--swap {args.swap!r}: calibrate takes file:SIZE or zram:SIZE")
    pool = args.zswap_max_pool_percent
    if pool is not None and not args.zswap:
        raise ConfigError("--zswap-max-pool-percent needs --zswap")
    if pool is not None and not 1 <= pool <= 100:
        raise ConfigError(f"--zswap-max-pool-percent {pool}: must be in 1..100")
    mthp = {}
    for spec in args.mthp:
        size_name, _, mode = spec.partition(":")
        mthp[size_name] = mode or "always"
    return Calibration(
        workload=args.workload,
        ram_bytes=parse_size(args.ram, "--ram"),
        swap_kind=kind,
        swap_bytes=parse_size(size, "--swap"),
        seed=args.seed,
        write_ratio=parse_fraction(args.write_ratio, "--write-ratio"),
        fill=args.fill,
        mthp=mthp,
        zswap=args.zswap_compressor if args.zswap else None,
        zswap_max_pool_percent=args.zswap_max_pool_percent,
        zram_algorithm=args.zram_algorithm,
        swap_dir=args.swap_dir,
        madv_hugepage=args.madv_hugepage,
    )


def main(args: argparse.Namespace) -> int:
    cal = _parse(args)
    result = run_calibration(cal, host=not args.model_only, quiet=args.quiet or args.json == "-")
    if args.json:
        write_json(args.json, result.as_json())
    if args.quiet or args.json == "-":
        return 0
    config = result.config
    console.print(
        f"workload {config['workload']} (seed {config['seed']}), RAM {args.ram}, "
        f"swap {config['swap']}"
        + (f", mTHP {args.mthp}" if args.mthp else "")
        + (f", zswap {args.zswap_compressor}" if args.zswap else "")
    )
    if result.host is None:
        model_rows = [(row.name, _fmt(row.model, row.percent)) for row in result.rows]
        console.print(make_table("model only", ("counter", "model"), model_rows))
    else:
        rows = [
            (
                row.name,
                _fmt(row.host, row.percent),
                _fmt(row.model, row.percent),
                row.describe_error(),
            )
            for row in result.rows
        ]
        console.print(
            make_table("host kernel vs model", ("counter", "host", "model", "error"), rows)
        )
    for note in result.notes:
        console.print(f"note: {note}")
    return 0


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return "n/a" if value != value else f"{value:.2f}%"
    return f"{value:,.0f}"
