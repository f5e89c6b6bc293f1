"""A progress bar for long runs (replay, populate, trace conversion).

On stderr and only on a terminal, so piped and ``--json -`` output stays
clean; the front ends and :func:`ghostswap.measure.run.run` share it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(description: str, total: int | None, quiet: bool = False) -> Iterator[Any]:
    """A progress bar on stderr (only on a terminal); yields update(done).
    With `total` None the bar only counts (a stream of unknown length)."""
    enabled = not quiet and sys.stderr.isatty()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )
    with progress:
        task = progress.add_task(description, total=None if total is None else max(total, 1))
        yield lambda done: progress.update(task, completed=done)
