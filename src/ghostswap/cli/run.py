"""``ghostswap run``: replay a workload on a configured machine.

With no arguments it runs the embedded default (a Zipfian workload of 1.5x
RAM on a ghost device with zswap; see :mod:`ghostswap.runconfig`). Prints
a progress bar on a terminal, then kernel-named counters, per-size mTHP
stats, /proc/swaps-style usage, allocator internals, kernel-equivalent
metadata overhead (current and peak) and the integrity check. ``--json``
writes the result, ``--report`` plots and an HTML page.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

from ghostswap.cli.fmt import (
    bytes_cell,
    check_output_dir,
    check_output_file,
    console,
    err_console,
    make_table,
    write_json,
)
from ghostswap.config import parse_swap_spec
from ghostswap.errors import ConfigError, GhostswapError
from ghostswap.measure.result import oom_warning
from ghostswap.measure.run import run
from ghostswap.mm.content import FILL_KINDS
from ghostswap.mm.machine import MAX_CPUS, check_ram_pages, parse_mthp
from ghostswap.mm.swap import SWAPFILE_CLUSTER
from ghostswap.mm.swapon import ghost_usable_pages
from ghostswap.mm.zswap import COMPRESSORS
from ghostswap.runconfig import RunConfig, load_run_config
from ghostswap.units import PAGE_SIZE, format_bytes, parse_fraction, parse_size_pages
from ghostswap.workload.events import Workload
from ghostswap.workload.gen_thp_frag import fallback_percentage
from ghostswap.workload.transform import MadviseMapped

NAME = "run"
HELP = "replay a workload on a machine with swap; print kernel counters and overhead"

__all__ = ["HELP", "NAME", "main", "resolve_workload", "run", "set_argparser"]


def set_argparser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE.toml", help="machine and workload description")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--workload", metavar="SPEC", help="a generator, e.g. zipf:512MiB:400k")
    source.add_argument("--trace", metavar="FILE", help="replay a trace file")
    parser.add_argument("--ram", help="the memory cgroup limit, e.g. 256MiB")
    parser.add_argument(
        "--swap",
        action="append",
        metavar="KIND[:SIZE][:OPT]",
        help="a swap device, repeatable: ghost[:8x|:SIZE], file:SIZE, partition:SIZE, "
        "zram:SIZE; options prio=N, rotational, discard, large, nolarge",
    )
    parser.add_argument(
        "--mthp",
        action="append",
        metavar="SIZE[:MODE]",
        help="e.g. 64kB:always; MODE defaults to always (repeatable)",
    )
    parser.add_argument(
        "--zswap", action=argparse.BooleanOptionalAction, default=None, help="zswap on or off"
    )
    parser.add_argument(
        "--zswap-compressor", choices=tuple(COMPRESSORS), help="zswap's compressor (default zstd)"
    )
    parser.add_argument(
        "--madv-hugepage",
        action="store_true",
        help="MADV_HUGEPAGE every mapping of the workload (as calibrate --madv-hugepage)",
    )
    parser.add_argument("--store", choices=("memory", "file"), help="where device pages go")
    parser.add_argument("--cpus", type=int, help="CPUs of the machine (default 2)")
    parser.add_argument("--seed", type=int, help="workload seed")
    parser.add_argument("--write-ratio", help="share of accesses that write (0.3 or 30%%)")
    parser.add_argument("--fill", choices=tuple(FILL_KINDS), help="page contents written")
    parser.add_argument("--json", metavar="OUT", help="write the result as JSON (- for stdout)")
    parser.add_argument("--report", metavar="DIR", help="write plots and report.html into DIR")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar, tables or warnings (errors still)"
    )


def _overlay(cfg: RunConfig, args: argparse.Namespace) -> None:
    m = cfg.machine
    if args.ram is not None:
        m.ram_pages = parse_size_pages(args.ram, "--ram")
        try:
            check_ram_pages(m.ram_pages)
        except ConfigError as err:
            raise ConfigError(f"--ram {args.ram}: {err}") from None
    if args.swap:
        m.swap = [parse_swap_spec(s) for s in args.swap]
        cfg.swap_texts = list(args.swap)
    if args.mthp:
        m.mthp = parse_mthp(args.mthp)
    if args.zswap is not None:
        m.zswap = args.zswap
    if args.zswap_compressor is not None:
        m.zswap_compressor = args.zswap_compressor
    if args.store is not None:
        m.store = args.store
    if args.cpus is not None:
        if not 1 <= args.cpus <= MAX_CPUS:
            raise ConfigError(f"--cpus {args.cpus}: must be in 1..{MAX_CPUS}")
        m.nr_cpus = args.cpus
    if args.seed is not None:
        cfg.seed = args.seed
        cfg.origins["seed"] = "--seed"
    if args.write_ratio is not None:
        cfg.write_ratio = parse_fraction(args.write_ratio, "--write-ratio")
        cfg.origins["write_ratio"] = "--write-ratio"
    if args.fill is not None:
        m.fill = args.fill
        cfg.origins["fill"] = "--fill"
    if args.workload is not None:
        cfg.workload, cfg.trace = args.workload, None
        cfg.origins["spec"] = "--workload"
        cfg.origins.pop("trace", None)
    if args.trace is not None:
        cfg.trace, cfg.workload = args.trace, ""
        cfg.origins["trace"] = "--trace"
        cfg.origins.pop("spec", None)


def resolve_workload(cfg: RunConfig) -> Workload:
    """The workload the configuration names, from the workload registry.

    A trace keeps its own page contents (its header's fill, or ``half``)
    unless the user chose a fill; the machine then writes those. An error
    in a workload a config file names is prefixed with its ``FILE:LINE``.
    """
    from ghostswap.workload import registry

    key = "trace" if cfg.trace else "spec"
    try:
        if cfg.trace is None and cfg.workload:
            # A spec that names a trace file runs as --trace would.
            cfg.trace = registry.trace_path(cfg.workload)
            if cfg.trace is not None:
                cfg.workload = ""
        if cfg.trace:
            cfg.trace = registry.trace_path(cfg.trace) or cfg.trace  # trace:PATH
            fill = cfg.machine.fill if "fill" in cfg.origins else None
            workload = registry.open_trace(cfg.trace, fill=fill)
            cfg.machine.fill = workload.fill  # type: ignore[attr-defined]
            return workload
        if not cfg.workload:
            raise ConfigError("no workload: give --workload SPEC or --trace FILE")
        generator = registry.make_workload(
            cfg.workload, seed=cfg.seed, write_ratio=cfg.write_ratio, fill=cfg.machine.fill
        )
        cfg.write_ratio_applies = getattr(generator, "USES_WRITE_RATIO", True)
        return generator
    except GhostswapError as err:
        origin = cfg.origins.get(key, "")
        if origin and not origin.startswith("--"):
            raise ConfigError(f"{origin}: workload.{key}: {err}") from None
        raise


def main(args: argparse.Namespace) -> int:
    if args.json:
        check_output_file(args.json, "--json")
    if args.report:
        check_output_dir(args.report, "--report")
    cfg = load_run_config(args.config)
    _overlay(cfg, args)
    workload = resolve_workload(cfg)
    _refuse_to_overwrite_inputs(args, [args.config, getattr(workload, "path", None)])
    _warn_about_setup(args, cfg)
    if args.madv_hugepage:
        workload = MadviseMapped(workload)
    result, samples = run(cfg, workload, quiet=args.quiet or args.json == "-")
    if args.json:
        write_json(args.json, result)
    if args.report:
        from ghostswap.measure.report import write_report

        page = write_report(args.report, result, samples)
        if not args.quiet and args.json != "-":
            console.print(f"report: {page}")
    if not args.quiet and args.json != "-":
        _print(result)
    warning = oom_warning(result)
    if warning and not args.quiet:
        err_console.print(f"[bold yellow]warning: {warning}[/]")
    if result["integrity"]["mismatches"]:
        # On stderr: with --json - stdout holds nothing but the JSON.
        err_console.print(
            f"[bold red]integrity: {result['integrity']['mismatches']} pages came back "
            "different from what was written[/]"
        )
        return 1
    return 0


def _refuse_to_overwrite_inputs(args: argparse.Namespace, inputs: list[str | None]) -> None:
    """Refuse, before any work, a --json or --report file that is one of
    the run's own inputs (the config file or the trace), or a --json file
    the report would overwrite."""
    given = {os.path.realpath(p) for p in inputs if p}
    json_path = os.path.realpath(args.json) if args.json and args.json != "-" else None
    if json_path in given:
        raise ConfigError(f"--json {args.json}: that is an input of this run")
    if args.report:
        from ghostswap.measure.report import REPORT_FILES

        for name in REPORT_FILES:
            target = os.path.join(args.report, name)
            if os.path.realpath(target) in given:
                raise ConfigError(f"--report {args.report}: would overwrite the input {target}")
            if os.path.realpath(target) == json_path:
                raise ConfigError(f"--json {args.json}: --report {args.report} writes that file")


def _warn_about_setup(args: argparse.Namespace, cfg: RunConfig) -> None:
    """Warn of a ghost device nothing can store to, and name the workload
    options the user set (on the command line or in the config file) the
    workload ignores: a trace has its own accesses (only the fill applies),
    and thp-frag always writes, as the selftest does."""
    ignored = {"seed": bool(cfg.trace), "write_ratio": bool(cfg.trace)}
    ignored["write_ratio"] |= not cfg.write_ratio_applies
    unused = []
    for key, origin in cfg.origins.items():
        if ignored.get(key):
            unused.append(origin if origin.startswith("--") else f"workload.{key} ({origin})")
    if args.quiet:
        return
    m = cfg.machine
    if any(s.kind == "ghost" for s in m.swap) and not (m.zswap or m.ghost_store):
        # The seed's ghost device has no backing store: only zswap can hold
        # what is swapped to it.
        err_console.print(
            "[yellow]warning: a ghost device without zswap stores nothing; every "
            "swap-out to it fails (ghost_write_fail)[/]"
        )
    for spec in m.swap:
        if spec.kind == "ghost" and not ghost_usable_pages(spec, m.totalram_pages or m.ram_pages):
            err_console.print(
                f"[yellow]warning: swap device {spec.describe()!r} is one cluster "
                f"({SWAPFILE_CLUSTER} pages), and the seed never allocates from a ghost "
                "device's first cluster (it holds the header): it can store nothing[/]"
            )
    if unused:
        what = "a trace" if cfg.trace else cfg.workload.split(":")[0]
        err_console.print(
            f"[yellow]warning: {' and '.join(unused)} "
            f"{'do' if len(unused) > 1 else 'does'} not apply to {what}[/]"
        )


def _print(result: dict[str, Any]) -> None:
    out = console.print
    vmstat = [(k, f"{v:,}") for k, v in result["vmstat"].items()]
    out(make_table("/proc/vmstat", ("counter", "value"), vmstat))
    if result["mthp"]:
        keys = ("swpout", "swpout_fallback", "swpin", "swpin_fallback", "zswpout",
                "anon_fault_alloc", "anon_fault_fallback", "split")  # fmt: skip
        sizes = list(result["mthp"])
        rows = [(k, *(f"{result['mthp'][s][k]:,}" for s in sizes)) for k in keys]
        # thp_swap_allocator_test's figure, over the whole run.
        none = {"swpout": 0, "swpout_fallback": 0}
        pcts = [fallback_percentage(none, result["mthp"][s]) for s in sizes]
        rows.append(("swpout fallback %", *("-" if math.isnan(p) else f"{p:.1f}%" for p in pcts)))
        out(make_table("mTHP stats", ("stat", *sizes), rows))
    rows = [
        (
            d["name"],
            d["kind"],
            format_bytes(d["size_pages"] * PAGE_SIZE),
            format_bytes(d["used_pages"] * PAGE_SIZE),
            format_bytes(d["peak_used_pages"] * PAGE_SIZE),
            d["priority"],
            d["store"] or "-",
        )
        for d in result["swaps"]
    ]
    out(
        make_table(
            "/proc/swaps", ("Filename", "Type", "Size", "Used", "Peak", "Priority", "store"), rows
        )
    )
    alloc = result["allocator"]
    wanted = (
        "ghost_clusters_allocated", "ghost_clusters_freed", "ghost_pool_peak", "list_scans",
        "frag_scans", "reclaim_full_passes", "fast_hits", "slow_calls", "alloc_fail",
    )  # fmt: skip
    rows = [(k, f"{alloc[k]:,}") for k in wanted]
    rows.append(("reclaim passes (vmscan)", f"{result['vm']['reclaim_passes']:,}"))
    out(make_table("allocator internals", ("item", "value"), rows))
    memcg = result["memcg"]
    rows = [
        ("limit", format_bytes(memcg["limit_pages"] * PAGE_SIZE)),
        ("peak", format_bytes(memcg["peak_pages"] * PAGE_SIZE)),
        ("pagetables", format_bytes(memcg["pagetables_pages"] * PAGE_SIZE)),
        *((f"events {k}", f"{v:,}") for k, v in memcg["events"].items()),
        *((f"stat {k}", f"{v:,}") for k, v in memcg["stat"].items()),
    ]
    if result["zswap"]:
        z = result["zswap"]
        rows += [
            ("zswap stored_pages", f"{z['stored_pages']:,}"),
            ("zswap pool_total_size", format_bytes(z["pool_total_size"])),
            ("zswap pool_limit_hit", f"{z['pool_limit_hit']:,}"),
            ("zswap written_back_pages", f"{z['written_back_pages']:,}"),
        ]
    if result["vm"]["ghost_write_fail"]:
        rows.append(("ghost write failures (pages)", f"{result['vm']['ghost_write_fail']:,}"))
    out(make_table("memory cgroup and zswap", ("item", "value"), rows))
    cur = result["overhead_bytes"]["current"]
    peak = result["overhead_bytes"]["peak"]
    names = sorted(set(cur["components"]) | set(peak["components"]))
    rows = [
        (n, bytes_cell(cur["components"].get(n, 0)), bytes_cell(peak["components"].get(n, 0)))
        for n in names
    ]
    rows.append(("total", bytes_cell(cur["total"]), bytes_cell(peak["total"])))
    out(make_table("kernel-equivalent metadata", ("component", "current", "peak"), rows))
    integ = result["integrity"]
    timing = result["timing"]
    out(
        f"integrity: {integ['verified_pages']:,} pages verified, {integ['mismatches']} mismatches; "
        f"{timing['events']:,} events in {timing['seconds']:.1f} s"
        + (" (native build)" if timing.get("build") == "native" else "")
    )
