"""``--report DIR``: PNG plots of the run's timeline and one self-contained
HTML page (plots embedded) with the result tables."""

from __future__ import annotations

import base64
import html
import json
from itertools import pairwise
from pathlib import Path
from typing import Any

from ghostswap.errors import ConfigError
from ghostswap.measure.result import oom_warning

__all__ = ["PLOTS", "REPORT_FILES", "write_report"]

PLOTS = ("swap_used.png", "ghost_overhead.png", "fault_rate.png", "mthp_fallback.png")
REPORT_FILES = (*PLOTS, "report.html")


def _plots(samples: list[dict[str, float]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["events"] for s in samples]
    paths = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        path = out / name
        try:
            fig.savefig(path, dpi=90)
        except OSError as err:
            raise ConfigError(f"--report: cannot write {path}: {err.strerror or err}") from None
        finally:
            plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(x, [s["swap_used_pages"] * 4096 / 2**20 for s in samples], label="swap used")
    ax.plot(x, [s["memcg_pages"] * 4096 / 2**20 for s in samples], label="memcg current")
    ax.plot(x, [s["zswap_pool_bytes"] / 2**20 for s in samples], label="zswap pool")
    ax.set_xlabel("events")
    ax.set_ylabel("MiB")
    ax.set_title("Swap used, memory and zswap pool")
    ax.legend()
    save(fig, PLOTS[0])

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(x, [s["ghost_clusters"] for s in samples], color="tab:purple")
    ax.set_xlabel("events")
    ax.set_ylabel("ghost clusters", color="tab:purple")
    ax2 = ax.twinx()
    ax2.plot(x, [s["overhead_bytes"] / 1024 for s in samples], color="tab:red")
    ax2.set_ylabel("overhead KiB", color="tab:red")
    ax.set_title("Ghost clusters and kernel-equivalent metadata")
    save(fig, PLOTS[1])

    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs, minor, major = [], [], []
    for a, b in pairwise(samples):
        span = max(b["events"] - a["events"], 1)
        xs.append(b["events"])
        major.append((b["pgmajfault"] - a["pgmajfault"]) / span * 1000)
        minor.append(
            ((b["pgfault"] - a["pgfault"]) - (b["pgmajfault"] - a["pgmajfault"])) / span * 1000
        )
    ax.plot(xs, major, label="major")
    ax.plot(xs, minor, label="minor")
    ax.set_xlabel("events")
    ax.set_ylabel("faults per 1000 events")
    ax.set_title("Fault rate")
    ax.legend()
    save(fig, PLOTS[2])

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(x, [s["mthp_swpout"] for s in samples], label="mTHP swpout")
    ax.plot(x, [s["mthp_swpout_fallback"] for s in samples], label="mTHP swpout_fallback")
    ax.set_xlabel("events")
    ax.set_ylabel("folios (cumulative)")
    ax.set_title("mTHP swap-out and fallback")
    ax.legend()
    save(fig, PLOTS[3])
    return paths


def _table(title: str, rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def write_report(directory: str, result: dict[str, Any], samples: list[dict[str, float]]) -> Path:
    """Write the plots and ``report.html`` into `directory`; returns the page."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--report {directory}: {err.strerror}") from None
    paths = _plots(samples, out)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ghostswap run</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        "<h1>ghostswap run</h1>",
        f"<pre>{html.escape(json.dumps(result['config'], sort_keys=True))}</pre>",
        f"<pre>{html.escape(json.dumps(result['workload'], sort_keys=True))}</pre>",
    ]
    warning = oom_warning(result)
    if warning:
        parts.append(f"<p style='color:#a60'><b>warning:</b> {html.escape(warning)}</p>")
    for path in paths:
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<img alt='{path.stem}' src='data:image/png;base64,{data}'>")
    parts.append(_table("/proc/vmstat", list(result["vmstat"].items()), ("counter", "value")))
    if result["mthp"]:
        keys = list(next(iter(result["mthp"].values())))
        rows = [(size, *stats.values()) for size, stats in result["mthp"].items()]
        parts.append(_table("mTHP stats", rows, ("size", *keys)))
    rows = [
        (
            d["name"],
            d["kind"],
            d["size_pages"],
            d["used_pages"],
            d["peak_used_pages"],
            d["priority"],
            d["store"] or "-",
        )
        for d in result["swaps"]
    ]
    header = ("name", "kind", "size", "used", "peak", "prio", "store")
    parts.append(_table("swaps (pages)", rows, header))
    memcg = result["memcg"]
    rows = [(k, v) for k, v in memcg.items() if k not in ("events", "stat", "oom_victims")]
    rows += [(f"events {k}", v) for k, v in memcg["events"].items()]
    rows += [(f"stat {k}", v) for k, v in memcg["stat"].items()]
    rows.append(("oom_victims", ", ".join(map(str, memcg["oom_victims"])) or "-"))
    parts.append(_table("memory cgroup", rows, ("item", "value")))
    parts.append(_table("vm", list(result["vm"].items()), ("item", "value")))
    parts.append(_table("allocator", list(result["allocator"].items()), ("item", "value")))
    cur = result["overhead_bytes"]["current"]
    peak = result["overhead_bytes"]["peak"]
    names = sorted(set(cur["components"]) | set(peak["components"]))
    rows = [(n, cur["components"].get(n, 0), peak["components"].get(n, 0)) for n in names]
    rows.append(("total", cur["total"], peak["total"]))
    parts.append(
        _table("kernel-equivalent metadata (bytes)", rows, ("component", "current", "peak"))
    )
    if result.get("zswap"):
        parts.append(_table("zswap", list(result["zswap"].items()), ("stat", "value")))
    parts.append(_table("integrity", list(result["integrity"].items()), ("item", "value")))
    parts.append(_table("timing", list(result["timing"].items()), ("item", "value")))
    parts.append("</body></html>")
    page = out / REPORT_FILES[-1]
    try:
        page.write_text("\n".join(parts))
    except OSError as err:
        raise ConfigError(f"--report: cannot write {page}: {err.strerror or err}") from None
    return page
