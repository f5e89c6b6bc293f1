"""The native build: the fast mode compiled by mypyc, for long replays.

``python -m ghostswap.native`` (``make native``) copies the package to
``build/native/``, compiles the fast-mode modules there (``mm/``, the
kernel primitives, the in-memory store, the replay loop) with mypyc, and
stamps the copy with a digest of the source it came from. A process that
starts with ``GHOSTSWAP_NATIVE=1`` in its environment (or the path of
another build) imports ghostswap's subpackages from that copy; one that
does not runs the pure source. Counters are the same either way:
``tests/test_native.py`` runs both and compares.

The copy runs the fast mode only. A compiled function has no code object
to swap, so it has no checked twin and no lean twin: the build drops the
``@checked_twin(...)`` decorators and the ``compile_lean(globals())``
calls, and :func:`ghostswap.kernel.runtime.install` refuses checked mode
in it. Two more edits, mechanical too, make the copy compile well: module
constants named like ``SWP_TB_NULL`` or ``PG_locked`` become ``Final``
(mypyc folds them; the lean twins fold the same names), and the ``array``
subclasses of ``swap_table`` become non-native classes. The source tree is never edited.

A build is used only while its digest matches the source; after any edit
a native process stops with one line that says to rebuild.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

__all__ = ["activate", "build", "default_dir", "source_digest"]

ENV = "GHOSTSWAP_NATIVE"
PACKAGE = Path(__file__).resolve().parent
STAMP = "_native.json"
COMPILED_PACKAGES = {
    "mm": None,
    "kernel": {"__init__", "runtime", "lean", "lean_inline"},
}
COMPILED_MODULES = ["storage/memory.py", "measure/replay.py"]
_MYPY_CONFIG = """\
[mypy]
python_version = 3.11
[mypy-greenlet,lz4,lz4.*]
ignore_missing_imports = True
"""


class NativeBuildError(Exception):
    """A native build that cannot be made or used; the message says why."""


def compiled_modules(package: Path = PACKAGE) -> list[str]:
    """The modules the build compiles, as paths relative to the package's
    parent (``ghostswap/mm/vmscan.py``)."""
    out = []
    for sub, skip in COMPILED_PACKAGES.items():
        for path in sorted((package / sub).glob("*.py")):
            if path.stem != "__init__" and path.stem not in (skip or ()):
                out.append(f"{package.name}/{sub}/{path.name}")
    out += [f"{package.name}/{m}" for m in COMPILED_MODULES]
    return out


def source_digest(package: Path = PACKAGE) -> str:
    """SHA-256 over every source file of the package, by path and content,
    and the interpreter's extension suffix (a build loads on one ABI only)."""
    h = hashlib.sha256(str(sysconfig.get_config_var("EXT_SUFFIX")).encode())
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if "__pycache__" in rel.parts or path.suffix in {".so", ".pyc"} or not path.is_file():
            continue
        if rel.as_posix() == STAMP:
            continue
        h.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def default_dir() -> Path:
    """``build/native`` beside ``src/`` in a source checkout."""
    if PACKAGE.parent.name != "src":
        raise NativeBuildError(
            f"{ENV}=1 needs a source checkout; set {ENV} to the directory "
            "`python -m ghostswap.native --out DIR` built"
        )
    return PACKAGE.parent.parent / "build" / "native"


def _resolve(value: str) -> Path:
    return default_dir() if value == "1" else Path(value).resolve()


def activate(value: str) -> list[str]:
    """The ``__path__`` that makes ``ghostswap.*`` import from the native
    build named by `value` (``1`` for :func:`default_dir`); also puts the
    build's shared library on ``sys.path``. Raises NativeBuildError if the
    build is missing or was made from other source."""
    root = _resolve(value)
    stamp = root / PACKAGE.name / STAMP
    try:
        recorded = json.loads(stamp.read_text())["digest"]
    except (OSError, ValueError, KeyError) as err:
        raise NativeBuildError(
            f"no native build at {root} ({err.__class__.__name__}); run `make native`"
        ) from None
    if recorded != source_digest():
        raise NativeBuildError(
            f"the native build at {root} is from other source; run `make native` again"
        )
    sys.path.insert(0, str(root))
    return [str(root / PACKAGE.name)]


def _edit_module(path: Path) -> None:
    """The three mechanical edits the module docstring lists."""
    # Imported here: importing any ghostswap.kernel module before activate()
    # would pin the pure source's kernel package in sys.modules.
    from ghostswap.kernel.lean_inline import constant_name

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
        if constant_name(name) and name not in rebound and line.startswith(f"{name} ="):
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
        if head not in text:
            raise NativeBuildError(f"{path.name}: no `{head.strip()}` line to add imports after")
        text = text.replace(head, head + extra, 1)
    path.write_text(text)


def build(out: Path, *, quiet: bool = False) -> Path:
    """Make a native build in `out`, replacing any there. The build happens
    in a temporary directory beside `out` and is moved into place only when
    complete, so an interrupted or failed build leaves `out` as it was."""
    if shutil.which(os.environ.get("CC", "gcc")) is None:
        raise NativeBuildError("the native build needs a C compiler (gcc, or $CC)")
    try:
        import mypy.version
    except ImportError:
        raise NativeBuildError(
            "the native build needs mypy: pip install 'ghostswap[dev]'"
        ) from None
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        digest = source_digest()
        shutil.copytree(
            PACKAGE,
            work / PACKAGE.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", STAMP),
        )
        modules = compiled_modules(work / PACKAGE.name)
        for module in modules:
            _edit_module(work / module)
        (work / PACKAGE.name / "_build.py").write_text(
            '"""Which build this is (rewritten by ghostswap.native)."""\n\nNATIVE = True\n'
        )
        (work / "mypy.ini").write_text(_MYPY_CONFIG)
        if not quiet:
            print(
                f"compiling {len(modules)} modules with mypyc (about a minute) ...",
                file=sys.stderr,
                flush=True,
            )
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", "--config-file", "mypy.ini", *modules],
            cwd=work, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
            raise NativeBuildError(f"mypyc failed: {tail}")
        shutil.rmtree(work / "build", ignore_errors=True)  # C sources and objects
        stamp = {"digest": digest, "mypy": mypy.version.__version__, "modules": modules}
        (work / PACKAGE.name / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ghostswap.native", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, help="where to build (default: build/native in a checkout)"
    )
    parser.add_argument(
        "--check", action="store_true", help="only say whether the build is current"
    )
    args = parser.parse_args(argv)
    if PACKAGE.parent.name != "src" and (PACKAGE / STAMP).exists():
        print(f"ghostswap.native: run it without {ENV}: this is a native build", file=sys.stderr)
        return 2
    try:
        out = args.out.resolve() if args.out else default_dir()
        if args.check:
            activate(str(out))
            print(f"native build at {out}: current")
            return 0
        build(out)
    except NativeBuildError as err:
        print(f"ghostswap.native: {err}", file=sys.stderr)
        return 2
    print(f"native build at {out}: run with {ENV}={'1' if not args.out else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
