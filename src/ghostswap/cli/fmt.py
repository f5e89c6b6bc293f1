"""Output formatting shared by the subcommands: tables, sizes, progress
(the bar itself lives in :mod:`ghostswap.measure.progress`).

Human output goes through rich (tables on stdout, progress on stderr only
when it is a terminal); ``--json`` output is plain ``json.dumps`` with
sorted keys, so it diffs cleanly.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ghostswap.errors import ConfigError
from ghostswap.measure.progress import progress_bar
from ghostswap.units import format_bytes

__all__ = [
    "check_output_dir",
    "check_output_file",
    "console",
    "err_console",
    "make_table",
    "progress_bar",
    "write_json",
]

console = Console(highlight=False)
# Warnings: on stderr, one unwrapped line each, so pipes and --json - keep them.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def make_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A table whose first column is left-aligned and the rest right-aligned."""
    table = Table(title=title or None, title_justify="left", show_edge=False, pad_edge=False)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


def bytes_cell(n: float) -> str:
    return f"{int(n):,} ({format_bytes(n)})" if n >= 1024 else f"{int(n)}"


def write_json(path: str, data: Any) -> None:
    """Write `data` as JSON to `path` (``-``: stdout)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text)
    except OSError as err:
        raise ConfigError(f"cannot write {path}: {err.strerror}") from None


def check_output_file(path: str, what: str) -> None:
    """Refuse, before any work, an output file that cannot be written
    (``-`` is stdout)."""
    if path == "-":
        return
    if os.path.isdir(path):
        raise ConfigError(f"{what} {path}: is a directory")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{what} {path}: permission denied")
        return
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise ConfigError(f"{what} {path}: no directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: cannot create files in {parent}")


def check_output_dir(path: str, what: str) -> None:
    """Refuse, before any work, an output directory that cannot be made or
    written: it exists as a directory we can write, or its nearest existing
    ancestor is one."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"{what} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: cannot write in {existing}")
