"""The one-way dependencies of DESIGN.md, checked on the imports themselves:
a module may import only from the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "ghostswap"

# What each package may import from ghostswap (besides itself). `_build`
# (pure or native, ghostswap/native.py) is a leaf like `errors`.
ALLOWED = {
    "kernel": {"_build", "errors", "units"},
    "mm": {"kernel", "_build", "errors", "units"},
    "storage": {"mm.content", "_build", "errors", "units"},
    "workload": {"_build", "errors", "units"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.removeprefix("ghostswap.") for n in names if n.startswith("ghostswap.")}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_layer_imports_only_from_below(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    bad = {
        f"{path.relative_to(SRC)}: {name}"
        for path in sorted((SRC / package).glob("*.py"))
        for name in _imports(path)
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    }
    assert not bad, sorted(bad)


def test_the_run_front_end_and_calibrate_share_measure_run() -> None:
    from ghostswap.cli import run as cli_run
    from ghostswap.measure import run as measure_run

    assert cli_run.run is measure_run.run
    assert "ghostswap.cli" not in (SRC / "calibrate" / "session.py").read_text()
