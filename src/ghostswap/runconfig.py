"""What ``ghostswap run`` runs: the machine and the workload, from an
embedded default, a TOML file and command-line options (in that order).

The TOML file::

    [machine]
    ram = "256MiB"            # the memory cgroup limit (and RAM)
    swappiness = 60
    page_cluster = 3
    vma_readahead = true
    cpus = 2
    store = "memory"          # where device pages go: memory | file
    store_dir = "/var/tmp"    # for the file store
    thp = "madvise"           # the top-level THP knob "inherit" sizes follow
    mthp = ["64kB:always"]    # as hugepages-<size>kB/enabled
    memcg_charge_batch = 64   # MEMCG_CHARGE_BATCH; 0 charges exactly (no per-CPU stock)

    [[swap]]                  # repeatable; or (not both): swap = [...] in [machine]
    kind = "ghost"            # ghost | file | partition | zram
    size = "8x"               # a size, or N x RAM for ghost
    prio = 10
    options = ["large"]

    [zswap]
    enabled = true
    compressor = "zstd"       # zstd | lz4 | deflate
    max_pool_percent = 50
    accept_threshold_percent = 90
    shrinker = true           # registers the pressure shrinker: not modelled, no effect
    shrink_walk = 32          # entries the full-pool worker walks per try (v6.18: 1)

    [workload]
    spec = "zipf:512MiB:400k"
    seed = 1
    write_ratio = 0.3
    fill = "text"             # zero | random | half | text

A field that does not parse ends in one error naming the file and line.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostswap.config import SwapSpec, parse_swap_spec
from ghostswap.errors import ConfigError
from ghostswap.mm.content import FILL_KINDS
from ghostswap.mm.machine import MAX_CPUS, MachineConfig, check_ram_pages, parse_mthp
from ghostswap.mm.zswap import COMPRESSORS
from ghostswap.units import PAGE_SIZE, parse_fraction, parse_size_pages
from ghostswap.workload.registry import DEFAULT_FILL, DEFAULT_SEED, DEFAULT_WRITE_RATIO

__all__ = ["DEFAULT", "RunConfig", "load_run_config"]

DEFAULT_TOML = f"""
[machine]
ram = "128MiB"
store = "memory"

[[swap]]
kind = "ghost"
size = "8x"

[zswap]
enabled = true
compressor = "zstd"
max_pool_percent = 60

[workload]
spec = "zipf:192MiB:200k"
seed = {DEFAULT_SEED}
write_ratio = {DEFAULT_WRITE_RATIO}
fill = "{DEFAULT_FILL}"
"""


DEFAULT_NAME = "<default>"


@dataclass
class RunConfig:
    """A machine plus the workload to run on it."""

    machine: MachineConfig = field(default_factory=MachineConfig)
    workload: str = ""
    trace: str | None = None
    seed: int = DEFAULT_SEED
    write_ratio: float = DEFAULT_WRITE_RATIO
    # False once the workload is known to ignore write_ratio (thp-frag).
    write_ratio_applies: bool = True
    swap_texts: list[str] = field(default_factory=list)
    # Where the user set each [workload] field (spec, trace, seed,
    # write_ratio, fill): ``FILE:LINE`` in a config file or the option that
    # set it. Fields only the embedded default sets are absent.
    origins: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        m = self.machine
        return {
            "ram_bytes": m.ram_pages * PAGE_SIZE,
            "swap": list(self.swap_texts),
            "mthp": {f"{4 << order}kB": mode for order, mode in sorted(m.mthp.items())},
            "thp": m.thp_enabled,
            "zswap": {
                "enabled": m.zswap,
                "compressor": m.zswap_compressor,
                "max_pool_percent": m.zswap_max_pool_percent,
                "accept_threshold_percent": m.zswap_accept_threshold_percent,
                "shrinker": m.zswap_shrinker,
                "shrink_walk": m.zswap_shrink_walk,
            },
            "store": m.store,
            "swappiness": m.swappiness,
            "page_cluster": m.page_cluster,
            "vma_readahead": m.vma_ra_enabled,
            "cpus": m.nr_cpus,
            "memcg": "v1" if m.memcg_v1 else "v2",
            "memcg_charge_batch": m.memcg_charge_batch,
            "workload": self.workload or None,
            "trace": self.trace,
            # A trace's events are fixed: no seed or write ratio applies.
            "seed": None if self.trace else self.seed,
            "write_ratio": None if self.trace or not self.write_ratio_applies else self.write_ratio,
            "fill": m.fill,
        }


class _Source:
    """Where values come from, so errors can name the file and line."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines = text.splitlines()

    def where(self, table: str, key: str, nth: int = 0) -> str:
        """``file:line`` of `key` in `[table]`, or in the `nth` ``[[table]]``
        (best effort: the first match); with `table` empty, a top-level key
        or the `nth` table named `key`."""
        in_table = table == ""
        seen = -1
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for number, line in enumerate(self.lines, 1):
            header = _HEADER.match(line)
            if header:
                name = header.group(2)
                if not table and name == key:
                    seen += 1
                    if seen == nth:
                        return f"{self.name}:{number}"
                if table and name == f"{table}.{key}":
                    return f"{self.name}:{number}"
                if header.group(1) == "[[" and name == table:
                    seen += 1
                    in_table = seen == nth
                else:
                    in_table = name == table
                continue
            if in_table and pattern.match(line):
                return f"{self.name}:{number}"
        # Not in a [table] section: a dotted key (machine.ram = ...) or an
        # inline table (machine = {ram = ...}); its own table's line first.
        key_re = rf"\"?{re.escape(key)}\"?\s*="
        inline = re.compile(rf"[{{,]\s*{key_re}")
        if table:
            table_re = rf"^\s*\"?{re.escape(table)}\"?\s*"
            dotted = re.compile(rf"{table_re}\.\s*{key_re}")
            owner = re.compile(rf"{table_re}=\s*{{")
            for number, line in enumerate(self.lines, 1):
                if dotted.match(line) or (owner.match(line) and inline.search(line)):
                    return f"{self.name}:{number}"
        for number, line in enumerate(self.lines, 1):
            if pattern.match(line):
                return f"{self.name}:{number}"
        for number, line in enumerate(self.lines, 1):
            if not line.lstrip().startswith("#") and inline.search(line):
                return f"{self.name}:{number}"
        return self.name

    def error(self, table: str, key: str, message: str, nth: int = 0) -> ConfigError:
        return ConfigError(
            f"{self.where(table, key, nth)}: {table + '.' if table else ''}{key}: {message}"
        )


_HEADER = re.compile(r"^\s*(\[\[?)\s*\"?([^\]\"]*?)\"?\s*\]")


def _get(src: _Source, data: dict[str, Any], table: str, key: str, kind: type | tuple) -> Any:
    value = data[key]
    if isinstance(value, bool) and kind in (int, float):
        raise src.error(table, key, f"expected a number, not {value!r}")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise src.error(table, key, f"expected {names}, not {value!r}")
    return value


def _apply(cfg: RunConfig, src: _Source, doc: dict[str, Any]) -> None:
    known = {"machine", "swap", "zswap", "workload"}
    for table in doc:
        if table not in known:
            raise ConfigError(f"{src.where('', table)}: unknown table or key {table!r}")
    m = cfg.machine
    machine = _table(src, doc, "machine")
    setters = {
        "ram": lambda v: setattr(m, "ram_pages", _ram_pages(v)),
        "swappiness": lambda v: setattr(m, "swappiness", v),
        "page_cluster": lambda v: setattr(m, "page_cluster", v),
        "vma_readahead": lambda v: setattr(m, "vma_ra_enabled", v),
        "cpus": lambda v: setattr(m, "nr_cpus", v),
        "store": lambda v: setattr(m, "store", v),
        "store_dir": lambda v: setattr(m, "store_dir", _writable_dir(v)),
        "thp": lambda v: setattr(m, "thp_enabled", v),
        "mthp": lambda v: setattr(m, "mthp", parse_mthp(v)),
        "swap": lambda v: _set_swaps(cfg, [parse_swap_spec(s) for s in v], list(v)),
        "percpu_policy": lambda v: setattr(m, "percpu_policy", v),
        "ghost_store": lambda v: setattr(m, "ghost_store", v),
        "memcg_charge_batch": lambda v: setattr(m, "memcg_charge_batch", v),
    }
    types: dict[str, type | tuple] = {
        "ram": str, "swappiness": int, "page_cluster": int, "vma_readahead": bool,
        "cpus": int, "store": str, "store_dir": str, "thp": str, "mthp": list,
        "swap": list, "percpu_policy": str, "ghost_store": bool, "memcg_charge_batch": int,
    }  # fmt: skip
    for key in machine:
        if key not in setters:
            raise src.error("machine", key, f"unknown field (one of {', '.join(setters)})")
        value = _get(src, machine, "machine", key, types[key])
        try:
            setters[key](value)
        except ConfigError as err:
            raise src.error("machine", key, str(err)) from None
    if m.store not in ("memory", "file"):
        raise src.error("machine", "store", f"{m.store!r} is not memory or file")
    if not 1 <= m.nr_cpus <= MAX_CPUS:
        raise src.error("machine", "cpus", f"{m.nr_cpus} is not a number of CPUs (1..{MAX_CPUS})")
    if not 0 <= m.memcg_charge_batch <= 1024:
        raise src.error(
            "machine", "memcg_charge_batch", f"{m.memcg_charge_batch} is outside 0..1024"
        )
    if not 0 <= m.swappiness <= 200:
        raise src.error("machine", "swappiness", f"{m.swappiness} is outside 0..200")
    if not 0 <= m.page_cluster <= 31:
        raise src.error("machine", "page_cluster", f"{m.page_cluster} is outside 0..31")
    if m.percpu_policy not in ("global", "per-device"):
        raise src.error(
            "machine", "percpu_policy", f"{m.percpu_policy!r} is not global or per-device"
        )
    if m.thp_enabled not in ("always", "madvise", "never"):
        raise src.error("machine", "thp", f"{m.thp_enabled!r} is not always, madvise or never")

    swaps = doc.get("swap")
    if swaps is not None and "swap" in machine:
        raise ConfigError(
            f"{src.where('', 'swap')}: [[swap]] tables and machine.swap "
            f"({src.where('machine', 'swap')}) both set the swap devices; give one"
        )
    if swaps is not None:
        if not isinstance(swaps, list):
            raise ConfigError(f"{src.where('', 'swap')}: swap must be an array of tables [[swap]]")
        specs, texts = [], []
        for nth, item in enumerate(swaps):
            text = _swap_table_text(src, item, nth)
            try:
                specs.append(parse_swap_spec(text))
            except ConfigError as err:
                raise src.error("swap", _swap_culprit(item), str(err), nth) from None
            texts.append(text)
        _set_swaps(cfg, specs, texts)

    zswap = _table(src, doc, "zswap")
    zsetters = {
        "enabled": ("zswap", bool),
        "compressor": ("zswap_compressor", str),
        "max_pool_percent": ("zswap_max_pool_percent", int),
        "accept_threshold_percent": ("zswap_accept_threshold_percent", int),
        "shrinker": ("zswap_shrinker", bool),
        "shrink_walk": ("zswap_shrink_walk", int),
    }
    for key in zswap:
        if key not in zsetters:
            raise src.error("zswap", key, f"unknown field (one of {', '.join(zsetters)})")
        attr, kind = zsetters[key]
        setattr(m, attr, _get(src, zswap, "zswap", key, kind))
    if not 1 <= m.zswap_max_pool_percent <= 100:
        raise src.error("zswap", "max_pool_percent", "must be in 1..100")
    if not 1 <= m.zswap_accept_threshold_percent <= 100:
        raise src.error("zswap", "accept_threshold_percent", "must be in 1..100")
    if m.zswap_shrink_walk < 1:
        raise src.error("zswap", "shrink_walk", "must be at least 1")
    if m.zswap_compressor not in COMPRESSORS:
        raise src.error(
            "zswap", "compressor", f"{m.zswap_compressor!r} is not one of {', '.join(COMPRESSORS)}"
        )

    workload = _table(src, doc, "workload")
    if "spec" in workload and "trace" in workload:
        raise src.error("workload", "trace", "give spec or trace, not both")
    for key in workload:
        if key == "spec":
            cfg.workload = _get(src, workload, "workload", key, str)
            cfg.trace = None
            cfg.origins.pop("trace", None)
        elif key == "trace":
            cfg.trace = _get(src, workload, "workload", key, str)
            cfg.workload = ""
            cfg.origins.pop("spec", None)
        elif key == "seed":
            cfg.seed = _get(src, workload, "workload", key, int)
            if cfg.seed < 0:
                raise src.error("workload", key, f"{cfg.seed} is negative")
        elif key == "write_ratio":
            value = workload[key]
            try:
                cfg.write_ratio = parse_fraction(str(value), "write_ratio")
            except ConfigError as err:
                raise src.error("workload", key, str(err)) from None
        elif key == "fill":
            m.fill = _get(src, workload, "workload", key, str)
            if m.fill not in FILL_KINDS:
                raise src.error(
                    "workload", key, f"{m.fill!r} is not one of {', '.join(FILL_KINDS)}"
                )
        else:
            raise src.error("workload", key, "unknown field (spec, trace, seed, write_ratio, fill)")
        if src.name != DEFAULT_NAME:
            cfg.origins[key] = src.where("workload", key)


def _table(src: _Source, doc: dict[str, Any], name: str) -> dict[str, Any]:
    """`doc[name]` if it is one table (``[name]``); empty if absent."""
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{src.where('', name)}: {name} must be one table [{name}]")
    return value


def _writable_dir(path: str) -> str:
    if not os.path.isdir(path):
        raise ConfigError(f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{path} is not writable")
    return path


def _ram_pages(text: str) -> int:
    pages = parse_size_pages(text, "ram")
    check_ram_pages(pages)
    return pages


def _swap_table_text(src: _Source, item: Any, nth: int) -> str:
    if isinstance(item, str):
        return item
    if not isinstance(item, dict) or "kind" not in item:
        raise ConfigError(f"{src.where('', 'swap', nth)}: each [[swap]] needs a kind")
    for key in item:
        if key not in ("kind", "size", "prio", "options"):
            raise src.error("swap", key, "unknown field (kind, size, prio, options)", nth)
    parts = [str(item["kind"])]
    if "size" in item:
        parts.append(str(item["size"]))
    if "prio" in item:
        if not isinstance(item["prio"], int) or isinstance(item["prio"], bool):
            raise src.error("swap", "prio", f"expected int, not {item['prio']!r}", nth)
        parts.append(f"prio={item['prio']}")
    options = item.get("options", [])
    if not isinstance(options, list):
        raise src.error("swap", "options", "expected a list of strings", nth)
    parts.extend(str(o) for o in options)
    return ":".join(parts)


def _swap_culprit(item: Any) -> str:
    """The field of a ``[[swap]]`` table whose value the device spec refused:
    its kind, else its size, else its prio, else its options."""
    if not isinstance(item, dict):
        return "kind"
    kind = str(item["kind"])
    steps = [("kind", kind)]
    if "size" in item:
        steps.append(("size", f"{kind}:{item['size']}"))
    if "prio" in item:
        steps.append(("prio", f"{steps[-1][1]}:prio={item['prio']}"))
    for key, text in steps:
        try:
            parse_swap_spec(text)
        except ConfigError as err:
            # A kind that needs a size is not wrong for lacking one here.
            if key != "kind" or "needs a size" not in str(err):
                return key
    return "options"


def _set_swaps(cfg: RunConfig, specs: list[SwapSpec], texts: list[str]) -> None:
    cfg.machine.swap = specs
    cfg.swap_texts = texts


def _parse(cfg: RunConfig, name: str, text: str) -> None:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        match = re.search(r"line (\d+)", str(err))
        where = f"{name}:{match.group(1)}" if match else name
        raise ConfigError(f"{where}: {err}") from None
    _apply(cfg, _Source(name, text), doc)


def load_run_config(path: str | None) -> RunConfig:
    """The embedded default, overlaid with the TOML file at `path` if given."""
    cfg = RunConfig()
    _parse(cfg, DEFAULT_NAME, DEFAULT_TOML)
    if path is not None:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise ConfigError(f"cannot read {path}: {err.strerror}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise ConfigError(f"{path}:{line}: not UTF-8 text, as TOML must be") from None
        _parse(cfg, path, text)
    return cfg


DEFAULT = DEFAULT_TOML
