"""The interleaved trace of a replayed execution, short enough to read.

Consecutive scheduling points of one CPU in one function fold into one line
(the first label and how many more), a loop's repeated lines into one note;
operation markers of the scenario
(``swap_out A``, ``zap B``) stand out; a long trace keeps its head and the
lines before the failure.
"""

from __future__ import annotations

from collections.abc import Sequence

from ghostswap.kernel.runtime import TraceStep

__all__ = ["format_trace"]


def _fold(trace: Sequence[TraceStep]) -> list[str]:
    lines: list[str] = []
    i = 0
    while i < len(trace):
        step = trace[i]
        j = i + 1
        if step.kind not in ("op", "set-up"):
            while (
                j < len(trace)
                and trace[j].cpu == step.cpu
                and trace[j].func == step.func
                and trace[j].kind not in ("op", "set-up")
            ):
                j += 1
        if step.kind == "set-up":
            lines.append(f"setup  == {step.label}")
        elif step.kind == "op":
            lines.append(f"cpu{step.cpu}   == {step.label}")
        else:
            label = f"{step.kind} {step.label}".rstrip()
            more = f"  (+{j - i - 1} more)" if j - i > 1 else ""
            lines.append(f"cpu{step.cpu}   {step.func:<30} {label}{more}")
        i = j
    return lines


def _key(line: str) -> str:
    return line.split("  (+")[0]


def _collapse_loops(lines: list[str]) -> list[str]:
    """Fold a block of 1-4 lines repeated back to back (a loop over slots)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        best_period, best_reps = 0, 1
        for period in range(1, 5):
            block = [_key(x) for x in lines[i : i + period]]
            reps = 1
            while [_key(x) for x in lines[i + reps * period : i + (reps + 1) * period]] == block:
                reps += 1
            if reps >= 3 and reps * period > best_reps * max(best_period, 1):
                best_period, best_reps = period, reps
        if best_period:
            out.extend(lines[i : i + best_period])
            out.append(
                f"       ... the {best_period} line(s) above repeat {best_reps - 1} more times"
            )
            i += best_period * best_reps
        else:
            out.append(lines[i])
            i += 1
    return out


def format_trace(trace: Sequence[TraceStep], limit: int = 80) -> list[str]:
    """Readable lines for `trace`, at most about `limit` of them."""
    lines = _collapse_loops(_fold(trace))
    if len(lines) <= limit:
        return lines
    head = min(12, limit // 3)
    tail = max(limit - head, 1)
    skipped = len(lines) - head - tail
    return [*lines[:head], f"       ... {skipped} lines ...", *lines[-tail:]]
