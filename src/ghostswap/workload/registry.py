"""Every workload by name: the generators and the trace formats.

Adding a generator is one module (a :class:`~ghostswap.workload.generator.
Generator` subclass) plus one line in :data:`GENERATORS`; adding a trace
format is one module exposing a :class:`~ghostswap.workload.trace_common.
TraceFormat` plus one line in :data:`TRACE_FORMATS`.

:func:`make_workload` turns a spec into a workload: ``NAME:ARGS`` for a
generator, ``trace:PATH`` or the path of an existing file for a trace.
:func:`open_trace` opens a trace file, telling its format from its first
bytes and, failing that, its extension.
"""

from __future__ import annotations

import os
import textwrap

from ghostswap.errors import ConfigError, TraceError
from ghostswap.workload import (
    gen_churn,
    gen_fork,
    gen_rand,
    gen_seq,
    gen_thp_frag,
    gen_zipf,
    trace_binary,
    trace_csv,
    trace_lackey,
)
from ghostswap.workload.events import Workload
from ghostswap.workload.generator import Generator
from ghostswap.workload.spec import FILLS, split_spec
from ghostswap.workload.trace_common import TraceFormat, TraceOptions, read_head

__all__ = [
    "DEFAULT_FILL",
    "DEFAULT_SEED",
    "DEFAULT_WRITE_RATIO",
    "FILLS",
    "GENERATORS",
    "TRACE_FORMATS",
    "TRACE_PREFIX",
    "describe_specs",
    "detect_format",
    "format_by_extension",
    "make_workload",
    "open_trace",
    "trace_format_for_output",
    "trace_path",
]

GENERATORS: dict[str, type[Generator]] = {
    gen.NAME: gen
    for gen in (
        gen_seq.SeqWorkload,
        gen_rand.RandWorkload,
        gen_zipf.ZipfWorkload,
        gen_churn.ChurnWorkload,
        gen_thp_frag.ThpFragWorkload,
        gen_fork.ForkWorkload,
    )
}

TRACE_FORMATS: dict[str, TraceFormat] = {
    fmt.name: fmt
    for fmt in (
        trace_binary.FORMAT,
        trace_csv.FORMAT,
        trace_lackey.FORMAT,
    )
}

# A generator's defaults, the same for ``run`` and ``trace``, so a trace
# converted from a spec replays exactly what ``run --workload`` of it does.
DEFAULT_SEED = 1
DEFAULT_WRITE_RATIO = 0.3
DEFAULT_FILL = "text"
TRACE_PREFIX = "trace:"


def _check_common(seed: int, write_ratio: float, fill: str) -> None:
    if fill not in FILLS:
        raise ConfigError(f"fill {fill!r} is not one of {', '.join(FILLS)}")
    if not 0.0 <= write_ratio <= 1.0:
        raise ConfigError(f"write ratio {write_ratio} is outside 0..1")
    if seed < 0:
        raise ConfigError(f"seed {seed} is negative")


def trace_path(spec: str) -> str | None:
    """The trace file a workload spec names (``trace:PATH``, or the path of
    an existing file that is not a generator spec), or None."""
    if spec.startswith(TRACE_PREFIX) and not os.path.exists(spec):
        return spec[len(TRACE_PREFIX) :]
    if split_spec(spec)[0] not in GENERATORS and os.path.exists(spec):
        return spec
    return None


def make_workload(spec: str, *, seed: int, write_ratio: float, fill: str) -> Workload:
    """The workload `spec` names: a generator ``NAME:ARGS`` or a trace file.

    A trace is ``trace:PATH`` or the path of an existing file; its events
    are the file's, and `fill` sets its page contents (seed and write
    ratio do not apply).
    """
    _check_common(seed, write_ratio, fill)
    path = trace_path(spec)
    if path is not None:
        return open_trace(path, fill=fill)
    name, args = split_spec(spec)
    gen = GENERATORS.get(name)
    if gen is not None:
        return gen.from_spec(spec, args, seed=seed, write_ratio=write_ratio, fill=fill)
    raise ConfigError(
        f"unknown workload {spec!r}: not a generator ({', '.join(GENERATORS)}) "
        "and not an existing trace file"
    )


def format_by_extension(path: str) -> TraceFormat | None:
    """The format whose extension `path` has, if any."""
    lower = path.lower()
    for fmt in TRACE_FORMATS.values():
        if lower.endswith(fmt.extensions):
            return fmt
    return None


def detect_format(path: str) -> TraceFormat:
    """The format of the trace at `path`: by content, then by extension."""
    head = read_head(path)
    for fmt in TRACE_FORMATS.values():
        if fmt.sniff(head):
            return fmt
    by_name = format_by_extension(path)
    if by_name is not None:
        return by_name
    raise TraceError(
        f"{path}: not a trace format ghostswap knows ({', '.join(TRACE_FORMATS)}); "
        "see ghostswap trace --help"
    )


def open_trace(
    path: str,
    *,
    fmt: str | None = None,
    fill: str | None = None,
    options: TraceOptions | None = None,
) -> Workload:
    """The trace at `path` as a workload; `fmt` forces a format by name."""
    if os.path.isdir(path):
        raise TraceError(f"{path}: is a directory, not a trace")
    if os.path.exists(path) and not os.path.isfile(path):
        # A pipe or a device: the format is sniffed from the head and the
        # trace may be read more than once (a count pass, the replay).
        raise TraceError(
            f"{path}: not a regular file (a pipe or a device); "
            "ghostswap reads a trace more than once, so save it to a file first"
        )
    if fmt is None:
        trace_format = detect_format(path)
    elif fmt in TRACE_FORMATS:
        trace_format = TRACE_FORMATS[fmt]
    else:
        raise ConfigError(f"unknown trace format {fmt!r} (one of {', '.join(TRACE_FORMATS)})")
    if fill is not None and fill not in FILLS:
        raise ConfigError(f"fill {fill!r} is not one of {', '.join(FILLS)}")
    return trace_format.open(path, fill, options or TraceOptions())


def trace_format_for_output(path: str, fmt: str | None = None) -> TraceFormat:
    """The writable format for an output file: `fmt` or the extension of `path`."""
    chosen = TRACE_FORMATS.get(fmt) if fmt else format_by_extension(path)
    if fmt and chosen is None:
        raise ConfigError(f"unknown trace format {fmt!r} (one of {', '.join(TRACE_FORMATS)})")
    if chosen is None:
        raise ConfigError(
            f"{path}: cannot tell the output format from the extension; "
            f"use .csv or {trace_binary.EXTENSION}, or --to"
        )
    if chosen.write is None:
        writable = [f.name for f in TRACE_FORMATS.values() if f.write]
        raise ConfigError(
            f"ghostswap cannot write {chosen.name} traces (only {', '.join(writable)})"
        )
    return chosen


def describe_specs(width: int = 79) -> str:
    """The workload specs and trace formats, for ``--help`` listings."""
    lines = ["generators (sizes like 256MiB, counts like 10k or 1e6):"]
    for gen in GENERATORS.values():
        lines.append(f"  {gen.USAGE}")
        lines.extend(
            textwrap.wrap(gen.SUMMARY, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
        )
    lines.append("traces (trace:PATH or an existing file; .gz read transparently):")
    for fmt in TRACE_FORMATS.values():
        lines.append(f"  {fmt.name} ({', '.join(fmt.extensions)})")
        lines.extend(
            textwrap.wrap(fmt.summary, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
        )
    return "\n".join(lines)
