"""``ghostswap overhead``: what a swap configuration costs in kernel metadata.

Builds the configured devices, swaps out ``--used`` pages through the
allocator in folios of ``--order``, frees a random ``--free-fraction`` of
them, and prints each device's kernel-equivalent metadata by component,
its total, and the bytes per used slot.
"""

from __future__ import annotations

import argparse

from ghostswap.cli.fmt import bytes_cell, console, make_table, progress_bar, write_json
from ghostswap.config import SwapSpec, parse_swap_spec, swapon_spec
from ghostswap.errors import ConfigError
from ghostswap.measure.overhead import DeviceOverhead, clusters_in_use, subsystem_overhead
from ghostswap.measure.populate import populate_swap
from ghostswap.mm.swap import PMD_ORDER, SWP_GHOST, SwapSubsystem
from ghostswap.units import PAGE_SIZE, format_bytes, parse_fraction, parse_size, parse_size_pages

NAME = "overhead"
HELP = "kernel-equivalent metadata memory of a swap configuration"

DEFAULT_RAM = "16GiB"
DEFAULT_SWAP = ("ghost:8x", "file:32GiB")


def set_argparser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ram", default=DEFAULT_RAM, help=f"RAM size (default {DEFAULT_RAM})")
    parser.add_argument(
        "--swap",
        action="append",
        metavar="KIND[:SIZE][:OPT]",
        help="a swap device, repeatable: ghost[:8x|:SIZE], file:SIZE, partition:SIZE, "
        "zram:SIZE; options prio=N, rotational, discard, large, nolarge "
        f"(default: {' '.join(DEFAULT_SWAP)})",
    )
    parser.add_argument(
        "--used",
        default="0",
        help="swapped-out memory to put on the devices: a size (4GiB) or a share of "
        "all swap (25%%); default 0",
    )
    parser.add_argument("--order", type=int, default=0, help="folio order swapped out (0..9)")
    parser.add_argument(
        "--free-fraction",
        default="0",
        help="share of the swapped-out folios freed again at random (default 0)",
    )
    parser.add_argument(
        "--percpu-policy",
        choices=("global", "per-device"),
        default="global",
        help="the per-CPU cluster cache: mainline's global one or the per-device one",
    )
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the machine (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random frees")
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON (- for stdout)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables")


def _used_pages(text: str, total_swap_pages: int) -> int:
    text = text.strip()
    if text.endswith("%"):
        return int(parse_fraction(text, "--used") * total_swap_pages)
    return parse_size(text, "--used") // PAGE_SIZE


def main(args: argparse.Namespace) -> int:
    ram_pages = parse_size_pages(args.ram, "--ram")
    if ram_pages < 1:
        raise ConfigError("--ram must be at least one page")
    if not 0 <= args.order <= PMD_ORDER:
        raise ConfigError(f"--order must be in 0..{PMD_ORDER}")
    if args.cpus < 1:
        raise ConfigError("--cpus must be at least 1")
    free_fraction = parse_fraction(args.free_fraction, "--free-fraction")
    specs: list[SwapSpec] = [parse_swap_spec(s) for s in (args.swap or DEFAULT_SWAP)]

    subsys = SwapSubsystem(ram_pages, nr_cpus=args.cpus, percpu_policy=args.percpu_policy)
    for spec in specs:
        swapon_spec(subsys, spec)
    warnings = _warnings(subsys, specs)
    used = _used_pages(args.used, subsys.total_swap_pages)
    if used > subsys.total_swap_pages:
        configured = format_bytes(subsys.total_swap_pages * PAGE_SIZE)
        raise ConfigError(f"--used {args.used} is more than the {configured} of swap configured")
    with progress_bar("swapping out", used, args.quiet) as update:
        result = populate_swap(subsys, used, args.order, free_fraction, args.seed, update)
    if result.full:
        warnings.append(f"swap filled up after {result.swapped_pages} of {used} pages")
    devices = subsystem_overhead(subsys)
    total = sum(d.total_bytes for d in devices)
    if args.json:
        write_json(args.json, _as_json(args, subsys, devices, total, result, warnings))
    if not args.quiet and args.json != "-":
        _print(subsys, devices, total, result, warnings)
    return 0


def _warnings(subsys: SwapSubsystem, specs: list[SwapSpec]) -> list[str]:
    """Devices the kernel would size differently from what was asked, and why."""
    out = []
    for spec, si in zip(specs, subsys.devices(), strict=True):
        if si.flags & SWP_GHOST:
            if si.max != si.maxpages_requested:
                out.append(
                    f"{si.name}: {si.maxpages_requested:,} pages do not fit the 32-bit si->max; "
                    f"the kernel would keep {si.max:,} (the seed's 8x RAM overflows from "
                    f"2 TiB of RAM)"
                )
        elif spec.size_pages is not None and spec.size_pages > si.max:
            out.append(
                f"{si.name}: a swap header describes at most 2^32 - 1 pages (mkswap "
                f"truncates, read_swap_header clamps si->max to UINT_MAX); the kernel uses "
                f"{si.max:,} of the {spec.size_pages:,} pages"
            )
    return out


def _as_json(
    args: argparse.Namespace,
    subsys: SwapSubsystem,
    devices: list[DeviceOverhead],
    total: int,
    result: object,
    warnings: list[str],
) -> dict[str, object]:
    return {
        "ram_pages": subsys.totalram_pages,
        "order": args.order,
        "free_fraction": parse_fraction(args.free_fraction),
        "swapped_pages": getattr(result, "swapped_pages", 0),
        "freed_pages": getattr(result, "freed_pages", 0),
        "fallback_folios": getattr(result, "fallback_folios", 0),
        "devices": [d.as_dict() for d in devices],
        "total_bytes": total,
        "warnings": warnings,
    }


def _print(
    subsys: SwapSubsystem,
    devices: list[DeviceOverhead],
    total: int,
    result: object,
    warnings: list[str],
) -> None:
    for d, si in zip(devices, subsys.devices(), strict=True):
        rows = [(name, bytes_cell(n)) for name, n in d.components.items()]
        rows.append(("total", bytes_cell(d.total_bytes)))
        per_slot = d.bytes_per_used_slot
        rows.append(("bytes per used slot", f"{per_slot:.2f}" if per_slot is not None else "-"))
        title = (
            f"{d.name} ({d.kind}, {format_bytes(d.size_pages * PAGE_SIZE)}, "
            f"{d.used_pages:,} slots used, {clusters_in_use(si):,} clusters with a table)"
        )
        console.print(title)
        console.print(make_table("", ("component", "bytes"), rows))
        console.print()
    swapped = getattr(result, "swapped_pages", 0)
    freed = getattr(result, "freed_pages", 0)
    fallback = getattr(result, "fallback_folios", 0)
    console.print(
        f"all devices: {bytes_cell(total)} for {swapped - freed:,} swapped-out pages"
        + (f"; {fallback:,} large folios fell back to order 0" if fallback else "")
    )
    for w in warnings:
        console.print(f"warning: {w}")
