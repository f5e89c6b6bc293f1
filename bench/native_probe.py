"""How much faster the model runs compiled: a probe for issue #3's swap target.

The swap-heavy target (100,000 swap-outs plus swap-ins per second) is out
of reach of the model in CPython: about 100 calls and no single waste per
operation. This probe measures the obvious way out before anyone builds
it: it copies the model's modules (``mm/``, the kernel primitives, the
in-memory store, the replay loop) to a temporary directory, compiles the
copy with mypyc, and runs the same swap-heavy and hit-dominated benchmarks
as ``bench/replay.py`` on the pure and the compiled copy, each in its own
process, alternating. It prints, one per line::

    swap ops/s (pure): N
    swap ops/s (mypyc): N
    swap ops ratio mypyc/pure: X.XX
    events/s (pure): N
    events/s (mypyc): N
    events ratio mypyc/pure: X.XX
    counters identical: yes|no   every vmstat counter of both swap runs

The compiled copy runs the fast mode only. Three edits make the copy
compile, all mechanical and done here, never to the tree:

* ``@checked_twin(...)`` decorators and ``compile_lean(globals())`` calls go:
  a compiled function has no code object to swap, so the checked mode and
  the lean twins cannot exist there (asserts and no-op lock calls stay);
* module constants named like ``SWP_TB_NULL`` become ``Final``, which lets
  mypyc fold them instead of looking them up in the module dict;
* the ``array`` subclasses of ``swap_table`` become non-native classes.

Nothing of this is a build of ghostswap: the product has one
implementation, and this only measures what compiling it would give.
Needs gcc and Python's headers; the build takes about two minutes.
Run: ``python bench/native_probe.py [--swap-events N] [--events N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
COMPILED = [
    *(f"ghostswap/mm/{p.name}" for p in sorted((SRC / "ghostswap/mm").glob("*.py"))),
    *(
        f"ghostswap/kernel/{p.name}"
        for p in sorted((SRC / "ghostswap/kernel").glob("*.py"))
        if p.stem not in {"__init__", "runtime", "lean", "lean_inline"}
    ),
    "ghostswap/storage/memory.py",
    "ghostswap/measure/replay.py",
]
COMPILED = [m for m in COMPILED if not m.endswith("/__init__.py")]
CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")
MYPY_CONFIG = """\
[mypy]
python_version = 3.11
[mypy-greenlet,lz4,lz4.*]
ignore_missing_imports = True
"""
CHILD = """\
import json, sys, time
sys.path.insert(0, {bench!r})
import replay as b
from ghostswap.mm import vmscan
native = vmscan.__file__.endswith(".so")
swap_events, events = {swap_events}, {events}
ram = 1 << 13
chunks = b.swap_heavy_trace(4 * ram, swap_events, seed=2)
with b.machine(ram, "ghost", fill="text", page_cluster=0, ghost_store=True) as vm:
    b.replay_chunk(vm, chunks[0])
    ev = vm.events
    keys = ("pswpout", "pswpin", "zswpout", "zswpin")
    before = sum(ev[k] for k in keys)
    seconds = b.run_chunks(vm, chunks[1:])
    ops = sum(ev[k] for k in keys) - before
    assert vm.mismatches == 0
    counters = {{k: int(v) for k, v in vm.events.items()}}
rate = b.bench_hits(events)[0]
print(json.dumps({{"native": native, "swap": ops / seconds, "events": rate,
                  "counters": counters}}))
"""


def _edit_module(path: Path) -> None:
    """The three mechanical edits the module docstring lists."""
    source = path.read_text()
    tree = ast.parse(source)
    rebound = {n for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names}
    lines = source.split("\n")
    finals = 0
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant | ast.BinOp | ast.UnaryOp | ast.Name)
        ):
            continue
        name = node.targets[0].id
        line = lines[node.lineno - 1]
        if CONSTANT.fullmatch(name) and name not in rebound and line.startswith(f"{name} ="):
            lines[node.lineno - 1] = f"{name}: Final" + line[len(name) :]
            finals += 1
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("@checked_twin(") or stripped == "compile_lean(globals())":
            out.append(line[: len(line) - len(line.lstrip())] + "pass")
            continue
        if re.match(r"class \w+\(array\):", line):
            out.append("@mypyc_attr(native_class=False)")
        out.append(line)
    text = "\n".join(out)
    head = "from __future__ import annotations\n"
    extra = ""
    if finals:
        extra += "from typing import Final\n"
    if "@mypyc_attr" in text:
        extra += "from mypy_extensions import mypyc_attr\n"
    if extra:
        text = text.replace(head, head + extra, 1)
    path.write_text(text)


def build(workdir: Path) -> Path:
    """Copy the package to `workdir`, edit the compiled modules, mypyc them."""
    tree = workdir / "src"
    shutil.copytree(SRC / "ghostswap", tree / "ghostswap", ignore=shutil.ignore_patterns("*.so"))
    for module in COMPILED:
        _edit_module(tree / module)
    (tree / "mypy.ini").write_text(MYPY_CONFIG)
    print(f"compiling {len(COMPILED)} modules with mypyc ...", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "mypyc", "--config-file", "mypy.ini", *COMPILED],
        cwd=tree, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        sys.exit(f"native_probe: mypyc failed:\n{tail}")
    return tree


def measure(pythonpath: Path, swap_events: int, events: int) -> dict[str, object]:
    code = CHILD.format(bench=str(ROOT / "bench"), swap_events=swap_events, events=events)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(pythonpath)},
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swap-events", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    args = parser.parse_args()
    if shutil.which("gcc") is None:
        sys.exit("native_probe: needs gcc to compile the mypyc copy")
    with tempfile.TemporaryDirectory(prefix="ghostswap-native-") as tmp:
        tree = build(Path(tmp))
        runs: dict[str, list[dict[str, object]]] = {"pure": [], "mypyc": []}
        for _ in range(args.rounds):
            for name, path in (("pure", SRC), ("mypyc", tree)):
                result = measure(path, args.swap_events, args.events)
                if result["native"] != (name == "mypyc"):
                    sys.exit(f"native_probe: the {name} run imported the wrong copy")
                runs[name].append(result)
    best = {name: {k: max(float(r[k]) for r in rs) for k in ("swap", "events")}  # type: ignore[arg-type]
            for name, rs in runs.items()}  # fmt: skip
    print(f"swap ops/s (pure): {best['pure']['swap']:,.0f}")
    print(f"swap ops/s (mypyc): {best['mypyc']['swap']:,.0f}")
    print(f"swap ops ratio mypyc/pure: {best['mypyc']['swap'] / best['pure']['swap']:.2f}")
    print(f"events/s (pure): {best['pure']['events']:,.0f}")
    print(f"events/s (mypyc): {best['mypyc']['events']:,.0f}")
    print(f"events ratio mypyc/pure: {best['mypyc']['events'] / best['pure']['events']:.2f}")
    counters = [r["counters"] for rs in runs.values() for r in rs]
    print(f"counters identical: {'yes' if all(c == counters[0] for c in counters) else 'no'}")


if __name__ == "__main__":
    main()
