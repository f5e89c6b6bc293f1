"""The native build (ghostswap/native.py): what it edits, when it refuses
to load, and (slow: it compiles for a minute) that it counts exactly as
the pure source does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ghostswap import native
from ghostswap.errors import GhostswapError
from ghostswap.kernel import runtime

SAMPLE = """\
from __future__ import annotations

from array import array

SWP_TB_NULL = 0
_SHIFT = SWP_TB_NULL + 3
PG_locked = 1 << 0
lower = 5
REBOUND = 1


def bump() -> None:
    global REBOUND
    REBOUND += 1


class Table(array):
    pass


@checked_twin(bump)
def _bump_checked() -> None:
    pass


compile_lean(globals())
"""


def test_the_build_edits_only_what_mypyc_needs(tmp_path: Path) -> None:
    path = tmp_path / "sample.py"
    path.write_text(SAMPLE)
    native._edit_module(path)
    text = path.read_text()
    lines = text.splitlines()
    assert lines[1:3] == ["from typing import Final", "from mypy_extensions import mypyc_attr"]
    assert "SWP_TB_NULL: Final = 0" in lines
    assert "_SHIFT: Final = SWP_TB_NULL + 3" in lines
    assert "PG_locked: Final = 1 << 0" in lines  # the lean twins' constant_name()
    assert "lower = 5" in lines and "REBOUND = 1" in lines  # not constants: untouched
    assert lines[lines.index("class Table(array):") - 1] == "@mypyc_attr(native_class=False)"
    assert "@checked_twin" not in text and "compile_lean(" not in text
    compile(text, "sample.py", "exec")  # still a module


def test_the_compiled_modules_leave_the_mode_switching_primitives_in_python() -> None:
    modules = native.compiled_modules()
    assert "ghostswap/mm/vmscan.py" in modules and "ghostswap/mm/swapfile.py" in modules
    assert "ghostswap/measure/replay.py" in modules
    for kept in ("runtime", "lean", "lean_inline", "__init__"):
        assert f"ghostswap/kernel/{kept}.py" not in modules
    assert all((native.PACKAGE.parent / m).is_file() for m in modules)


def test_the_source_digest_follows_every_file(tmp_path: Path) -> None:
    pkg = tmp_path / "ghostswap"
    shutil.copytree(native.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    before = native.source_digest(pkg)
    assert before == native.source_digest(native.PACKAGE)
    (pkg / native.STAMP).write_text("{}")  # the stamp itself does not count
    assert native.source_digest(pkg) == before
    with (pkg / "mm" / "vmscan.py").open("a") as f:
        f.write("\n")
    assert native.source_digest(pkg) != before


def _import_with(value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghostswap", "run", "--help"],
        env={**os.environ, "GHOSTSWAP_NATIVE": value},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_missing_build_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _import_with(str(tmp_path / "none"))
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.count("\n") == 1
    assert "no native build at" in done.stderr and "make native" in done.stderr


def test_a_build_of_other_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ghostswap").mkdir()
    (tmp_path / "ghostswap" / native.STAMP).write_text(json.dumps({"digest": "0" * 64}))
    done = _import_with(str(tmp_path))
    assert done.returncode == 2
    assert "is from other source; run `make native` again" in done.stderr
    assert done.stderr.count("\n") == 1


def test_the_native_build_refuses_checked_mode_and_the_debug_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "NATIVE", True)
    with pytest.raises(GhostswapError, match="checked mode runs the pure source"):
        runtime.install(runtime.CheckedRuntime())
    with pytest.raises(GhostswapError, match="the debug build runs the pure source"):
        runtime.set_debug_build(True)
    runtime.install(None)  # fast mode stays available
    runtime.set_debug_build(False)


@pytest.fixture(scope="module")
def native_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("the native build needs gcc")
    return native.build(tmp_path_factory.mktemp("native") / "build", quiet=True)


def _run(args: list[str], build: Path | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "GHOSTSWAP_NATIVE"}
    if build is not None:
        env["GHOSTSWAP_NATIVE"] = str(build)
    done = subprocess.run(
        [sys.executable, "-m", "ghostswap", "run", "--quiet", "--json", "-", *args],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        "--workload zipf:16MiB:60k --ram 12MiB --swap ghost",
        "--workload thp-frag:16MiB --ram 8MiB --mthp 64kB:always --no-zswap --swap file:64MiB",
        "--workload fork:12MiB:3 --ram 6MiB --swap file:64MiB",
        "--workload seq:12MiB:2 --ram 6MiB --zswap",
    ],
    ids=["zipf-ghost-zswap", "thp-frag-mthp-file", "fork-file", "seq-zswap"],
)
def test_the_native_build_counts_as_the_pure_source(native_build: Path, args: str) -> None:
    pure = _run(args.split(), None)
    compiled = _run(args.split(), native_build)
    assert pure["timing"]["build"] == "pure"  # type: ignore[index]
    assert compiled["timing"]["build"] == "native"  # type: ignore[index]
    for key in pure.keys() - {"timing"}:
        assert compiled[key] == pure[key], key
    vmstat: dict[str, int] = pure["vmstat"]  # type: ignore[assignment]
    assert vmstat["pswpout"] + vmstat["zswpout"] > 0 and not vmstat.get("oom_kill")


@pytest.mark.slow
def test_the_native_build_refuses_the_checker_in_one_line(native_build: Path) -> None:
    env = {**os.environ, "GHOSTSWAP_NATIVE": str(native_build)}
    done = subprocess.run(
        [sys.executable, "-m", "ghostswap", "check", "--all", "--iterations", "1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "ghostswap check: error: checked mode runs the pure source: unset GHOSTSWAP_NATIVE"
    )


@pytest.mark.slow
def test_the_replay_bench_runs_the_swap_trace_on_the_native_build(
    native_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(Path(__file__).resolve().parent.parent / "bench")
    import replay  # type: ignore[import-not-found]

    monkeypatch.setenv("GHOSTSWAP_NATIVE", str(native_build))
    compiled = replay.bench_native(3000)
    assert not isinstance(compiled, str), compiled
    rate, counters = replay.bench_swap(3000, "ghost", ghost_store=True)
    assert compiled[1] == counters and counters["pswpout"] > 0 and rate > 0
