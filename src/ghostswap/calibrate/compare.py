"""Host and model counters side by side, with the relative error of each."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["COMPARED_MTHP", "COMPARED_VMSTAT", "Row", "compare", "fallback_percent"]

# The /proc/vmstat events both sides count the same way.
COMPARED_VMSTAT = (
    "pswpout",
    "pswpin",
    "pgmajfault",
    "swap_ra",
    "swap_ra_hit",
    "swpout_zero",
    "swpin_zero",
    "zswpout",
    "zswpin",
    "zswpwb",
    "thp_swpout",
    "thp_swpout_fallback",
    "pgsteal_anon",
    "workingset_refault_anon",
)
COMPARED_MTHP = (
    "swpout",
    "swpout_fallback",
    "swpin",
    "swpin_fallback",
    "anon_fault_alloc",
    "anon_fault_fallback",
    "zswpout",
)


@dataclass(frozen=True)
class Row:
    """One compared figure. A count is judged by its relative error, a
    percentage by its difference in points."""

    name: str
    host: float
    model: float
    percent: bool = False

    @property
    def error(self) -> float | None:
        """(model - host) / host for a count (None when the host counted
        nothing but the model did); model - host for a percentage."""
        if self.percent:
            if math.isnan(self.host) or math.isnan(self.model):
                return None
            return self.model - self.host
        if self.host == 0:
            return 0.0 if self.model == 0 else None
        return (self.model - self.host) / self.host

    def describe_error(self) -> str:
        error = self.error
        if error is None:
            return "n/a"
        return f"{error:+.1f} pts" if self.percent else f"{100 * error:+.1f}%"

    def as_dict(self) -> dict[str, object]:
        key = "error_points" if self.percent else "rel_error"
        return {"host": self.host, "model": self.model, key: self.error}


def fallback_percent(stats: dict[str, int]) -> float:
    """The selftest's ``swpout_fallback / (swpout_fallback + swpout)``, in %."""
    total = stats.get("swpout", 0) + stats.get("swpout_fallback", 0)
    return math.nan if total == 0 else 100.0 * stats.get("swpout_fallback", 0) / total


def compare(
    host_vmstat: dict[str, int],
    model_vmstat: dict[str, int],
    host_mthp: dict[str, dict[str, int]],
    model_mthp: dict[str, dict[str, int]],
    host_peak_pages: int,
    model_peak_pages: int,
) -> list[Row]:
    """Rows for every compared counter either side saw move."""
    rows = [
        Row(name, host_vmstat.get(name, 0), model_vmstat.get(name, 0))
        for name in COMPARED_VMSTAT
        if host_vmstat.get(name, 0) or model_vmstat.get(name, 0)
    ]
    rows.append(Row("peak swap pages", host_peak_pages, model_peak_pages))
    for size in sorted(set(host_mthp) | set(model_mthp), key=lambda s: int(s[:-2])):
        host = host_mthp.get(size, {})
        model = model_mthp.get(size, {})
        for name in COMPARED_MTHP:
            if host.get(name, 0) or model.get(name, 0):
                rows.append(Row(f"{size} {name}", host.get(name, 0), model.get(name, 0)))
        if host.get("swpout", 0) + host.get("swpout_fallback", 0) or model.get("swpout", 0):
            rows.append(
                Row(
                    f"{size} swpout_fallback %",
                    fallback_percent(host),
                    fallback_percent(model),
                    percent=True,
                )
            )
    return rows
