"""``ghostswap trace``: record, convert and inspect workload traces.

``record`` runs a program under valgrind's lackey and writes its memory
accesses as a binary trace; ``convert`` rewrites a trace (or a generated
workload) in another format; ``info`` summarises one. Wherever a trace is
read, a generator spec (``zipf:64MiB:1M``) works too.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Iterator

import numpy as np

from ghostswap.cli.fmt import bytes_cell, console, make_table, progress_bar, write_json
from ghostswap.errors import ConfigError
from ghostswap.units import parse_fraction
from ghostswap.workload.events import Workload
from ghostswap.workload.record import record_lackey
from ghostswap.workload.registry import (
    DEFAULT_FILL,
    DEFAULT_SEED,
    DEFAULT_WRITE_RATIO,
    FILLS,
    TRACE_FORMATS,
    TRACE_PREFIX,
    describe_specs,
    format_by_extension,
    make_workload,
    open_trace,
    trace_format_for_output,
)
from ghostswap.workload.summary import WorkloadSummary, summarize
from ghostswap.workload.trace_common import TraceOptions

NAME = "trace"
HELP = "record, convert and inspect workload traces"


def set_argparser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = describe_specs()
    sub = parser.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", required=True)

    record = sub.add_parser(
        "record",
        help="run a program under valgrind lackey and write its accesses as a binary trace",
        description="Run CMD under valgrind --tool=lackey --trace-mem=yes and write its "
        "memory accesses to FILE in ghostswap's binary format.",
    )
    record.add_argument("--out", required=True, metavar="FILE", help="the trace to write (.gst)")
    _add_lackey_options(record)
    record.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the program")
    record.set_defaults(_trace_main=_record)

    convert = sub.add_parser(
        "convert",
        help="rewrite a trace or generated workload in another format",
        description="Read IN (a trace file or a generator spec) and write it to OUT; the "
        "format of OUT comes from its extension (.csv, .gst) or --to.",
        epilog=describe_specs(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("input", metavar="IN", help="trace file or generator spec")
    convert.add_argument("output", metavar="OUT", help="trace file to write")
    convert.add_argument(
        "--to", choices=[n for n, f in TRACE_FORMATS.items() if f.write], help="output format"
    )
    _add_source_options(convert)
    convert.add_argument("--quiet", action="store_true", help="no progress bar, no summary line")
    convert.set_defaults(_trace_main=_convert)

    info = sub.add_parser(
        "info",
        help="summarise a trace or generated workload",
        description="Events, per-op counts, pids, page range, footprint and read/write "
        "share of FILE (a trace file or a generator spec).",
        epilog=describe_specs(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("input", metavar="FILE", help="trace file or generator spec")
    _add_source_options(info)
    info.add_argument("--json", metavar="OUT", help="write the summary as JSON (- for stdout)")
    info.set_defaults(_trace_main=_info)


def _add_lackey_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include-instructions",
        action="store_true",
        help="lackey: count instruction fetches as reads (default: dropped)",
    )
    parser.add_argument(
        "--no-coalesce",
        action="store_true",
        help="lackey: one event per access, not per run of accesses to the same pages",
    )
    parser.add_argument("--pid", type=int, default=1, help="lackey: pid of the events (default 1)")


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=list(TRACE_FORMATS), help="input trace format (default: detected)"
    )
    _add_lackey_options(parser)
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--write-ratio",
        default=str(DEFAULT_WRITE_RATIO),
        help=f"generator: share of accesses that write (default {DEFAULT_WRITE_RATIO})",
    )
    parser.add_argument(
        "--fill",
        choices=FILLS,
        help=f"page contents (default {DEFAULT_FILL} for generators, the trace's own for traces)",
    )


def _trace_options(args: argparse.Namespace) -> TraceOptions:
    if not 0 <= args.pid < 1 << 32:
        raise ConfigError(f"--pid {args.pid} is not a 32-bit pid")
    return TraceOptions(
        include_instructions=args.include_instructions,
        coalesce=not args.no_coalesce,
        pid=args.pid,
    )


def _source(args: argparse.Namespace) -> Workload:
    """The trace file or generated workload named by ``args.input``."""
    text: str = args.input
    options = _trace_options(args)
    if text.startswith(TRACE_PREFIX) or os.path.exists(text) or args.format:
        path = text.removeprefix(TRACE_PREFIX)
        return open_trace(path, fmt=args.format, fill=args.fill, options=options)
    write_ratio = parse_fraction(args.write_ratio, "--write-ratio")
    fill = args.fill or DEFAULT_FILL
    return make_workload(text, seed=args.seed, write_ratio=write_ratio, fill=fill)


def main(args: argparse.Namespace) -> int:
    return int(args._trace_main(args))


def _record(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigError("nothing to record: give the program after --, e.g. -- ls -l")
    named = format_by_extension(args.out)
    if named is not None and named.name != "binary":
        raise ConfigError(
            f"--out {args.out}: record writes the binary format (.gst); "
            "convert it to other formats afterwards"
        )
    options = _trace_options(args)
    result = record_lackey(command, args.out, options)
    print(
        f"recorded {result.events:,} events of {shlex.join(command)} to {args.out}"
        + (f" (the program exited with status {result.exit_status})" if result.exit_status else ""),
        file=sys.stderr,
    )
    return 0


def _convert(args: argparse.Namespace) -> int:
    source = _source(args)
    fmt = trace_format_for_output(args.output, args.to)
    assert fmt.write is not None
    with progress_bar("converting", source.total_events() or 0, args.quiet) as update:
        count = fmt.write(_with_progress(source, update), args.output, source.describe())
    if not args.quiet:
        print(f"wrote {count:,} events to {args.output} ({fmt.name})", file=sys.stderr)
    return 0


def _with_progress(source: Workload, update: Callable[[int], object]) -> Iterator[np.ndarray]:
    done = 0
    for events in source.chunks():
        yield events
        done += len(events)
        update(done)


def _info(args: argparse.Namespace) -> int:
    source = _source(args)
    with progress_bar("reading", source.total_events() or 0, args.json == "-") as update:
        summary = summarize(source, update)
    if args.json:
        write_json(args.json, {"workload": source.describe(), **summary.as_dict()})
    if args.json != "-":
        _print_summary(source, summary)
    return 0


def _flatten(items: dict[str, object], prefix: str = "") -> list[str]:
    out = []
    for key, value in items.items():
        if key == "path":
            continue
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            out.append(f"{prefix}{key}={shlex.join(map(str, value))!r}")
        else:
            out.append(f"{prefix}{key}={value}")
    return out


def _print_summary(source: Workload, summary: WorkloadSummary) -> None:
    console.print(f"{source.name}: " + " ".join(_flatten(source.describe())), markup=False)
    rows: list[tuple[str, str]] = [("events", f"{summary.events:,}")]
    rows += [(f"  {op}", f"{n:,}") for op, n in summary.ops.items() if n]
    pids = sorted(summary.pids)
    shown = ", ".join(map(str, pids[:8])) + (f", ... ({len(pids)} in all)" if len(pids) > 8 else "")
    rows.append(("pids", shown or "-"))
    if summary.page_min is not None:
        rows.append(("page range", f"{summary.page_min:#x} .. {summary.page_max:#x}"))
    rows.append(("pages read", f"{summary.read_pages:,}"))
    rows.append(("pages written", f"{summary.write_pages:,}"))
    share = summary.write_share
    rows.append(("write share", f"{share:.1%}" if share is not None else "-"))
    rows.append(("distinct pages", f"{summary.distinct_pages:,}"))
    rows.append(("footprint", bytes_cell(summary.footprint_bytes)))
    console.print(make_table("", ("", "value"), rows))
