"""The lean build (kernel/lean.py): what compiles away, and when."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ghostswap.kernel import runtime
from ghostswap.kernel.bug import LockMisuse
from ghostswap.kernel.runtime import CheckedRuntime, RunToCompletion
from ghostswap.mm import swap, swapfile

SOURCE = """
from __future__ import annotations

from ghostswap.kernel.lean import compile_lean
from ghostswap.kernel.rcu import rcu_dereference, rcu_read_lock, rcu_read_unlock
from ghostswap.kernel.spinlock import lockdep_assert_held, spin_lock, spin_unlock

_debug_vm = False
warnings = []


def locked_add(lock, box: list[int]) -> int:
    spin_lock(lock)
    lockdep_assert_held(lock)
    assert box, "never empty"
    if _debug_vm and box[0] < 0:
        warnings.append("negative")
    box[0] += 1
    spin_unlock(lock)
    return box[0]


def read(box: list[int]) -> int:
    rcu_read_lock()
    try:
        return rcu_dereference(box, "box")[0]
    finally:
        rcu_read_unlock()


def only_checks(lock) -> None:
    lockdep_assert_held(lock)


def plain(x: int) -> int:
    return x + 1


compile_lean(globals())
"""


def _load(tmp_path: Path, name: str, source: str) -> Iterator[ModuleType]:
    """Import `source` as module `name` with the lean build on; forget its
    twins afterwards."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    runtime.set_debug_build(False)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]
        runtime._lean[:] = [e for e in runtime._lean if e[0].__module__ != name]


@pytest.fixture
def leanmod(tmp_path: Path) -> Iterator[ModuleType]:
    yield from _load(tmp_path, "leanmod", SOURCE)


def test_lean_twins_drop_lock_no_ops_asserts_and_debug_checks(leanmod: ModuleType) -> None:
    twins = {
        fn.__name__: (full, lean) for fn, full, lean in runtime._lean if fn.__module__ == "leanmod"
    }
    assert set(twins) == {"locked_add", "read", "only_checks"}  # plain has nothing to drop
    full, lean = twins["locked_add"]
    assert {"spin_lock", "spin_unlock", "lockdep_assert_held", "_debug_vm"} <= set(full.co_names)
    assert not {"spin_lock", "spin_unlock", "lockdep_assert_held", "_debug_vm"} & set(lean.co_names)
    assert "AssertionError" not in lean.co_names
    full, lean = twins["read"]
    assert not {"rcu_read_lock", "rcu_read_unlock", "rcu_dereference"} & set(lean.co_names)
    # Same lines: a traceback from the lean code points at the source.
    assert lean.co_firstlineno == full.co_firstlineno


def test_lean_code_runs_in_fast_mode_and_keeps_behaviour(leanmod: ModuleType) -> None:
    lock = object()
    box = [-5]
    leanmod._debug_vm = True  # a VM_WARN check: compiled away in the lean build
    assert leanmod.locked_add(lock, box) == -4
    assert leanmod.read(box) == -4
    assert leanmod.warnings == []
    with pytest.raises(IndexError):
        leanmod.locked_add(lock, [])  # the assert is gone; the list access fails
    leanmod.only_checks(lock)


def test_debug_build_restores_the_full_functions(leanmod: ModuleType) -> None:
    lock = object()
    runtime.set_debug_build(True)
    leanmod._debug_vm = True
    assert leanmod.locked_add(lock, [-5]) == -4
    assert leanmod.warnings == ["negative"]
    with pytest.raises(AssertionError, match="never empty"):
        leanmod.locked_add(lock, [])


def test_checked_mode_runs_the_full_functions(leanmod: ModuleType) -> None:
    from ghostswap.kernel.spinlock import spinlock_t

    rt = CheckedRuntime(RunToCompletion())
    runtime.install(rt)
    try:
        # lockdep_assert_held() without the lock: only the full code notices.
        with pytest.raises(LockMisuse):
            rt.run([lambda: leanmod.only_checks(spinlock_t("l"))])
    finally:
        runtime.install(None)
    assert leanmod.only_checks.__code__ is runtime.lean_code_of(leanmod.only_checks)


def test_the_swap_model_is_lean_outside_tests_and_full_inside() -> None:
    entries = {fn: (full, lean) for fn, full, lean in runtime._lean}
    full, lean = entries[swapfile.alloc_swap_scan_cluster]
    assert "lockdep_assert_held" not in lean.co_names
    # conftest selects the debug build: every function runs in full.
    assert swapfile.alloc_swap_scan_cluster.__code__ is full
    assert swap.__swap_cluster_lock.__code__ is entries[swap.__swap_cluster_lock][0]
    swapfile.set_debug_vm(False)
    assert swapfile.alloc_swap_scan_cluster.__code__ is lean
    swapfile.set_debug_vm(True)
    assert swapfile.alloc_swap_scan_cluster.__code__ is full


INLINE_SOURCE = """
from __future__ import annotations

from ghostswap.kernel.lean import compile_lean

SHIFT = 4
_flag = False
calls = []


def get(box: list[int], i: int) -> int:
    return box[i] << SHIFT


def put(box: list[int], i: int, value: int) -> None:
    box[i] = value


def flagged(x: int) -> bool:
    return _flag and x > 0


def twice(x: int) -> int:
    return x + x


def effect(x: int) -> int:
    calls.append(x)
    return x


def use(box: list[int]) -> int:
    put(box, 0, get(box, 1) + 1)
    return get(box, 0)


def not_inlined(box: list[int]) -> int:
    return flagged(box[0]) + twice(box[0]) + twice(effect(2)) + get(box, effect(1))


def pick(box: list[int], i: int) -> int:
    return late(box, i) + 1


def late(box: list[int], i: int) -> int:
    if i < 0:
        return 0
    return box[i]


def via_temp(box: list[int], i: int) -> int:
    if i < 0:
        first = box[0]
        return first + 100
    item = box[i]
    return item


def use_temp(box: list[int], i: int) -> int:
    return via_temp(box, i) * 2


def packed(a: int, b: bool) -> int:
    v = a << 2
    v = v | int(b)
    return v << 1 | 1


def use_packed(a: int) -> int:
    return packed(a + 1, a > 0)


def late_effect(box: list[int]) -> int:
    x = effect(3)
    return box[0] + x


def use_late_effect(box: list[int]) -> int:
    return late_effect(box)


def local_get(pair: list[int]) -> int:
    get = max  # hides the module's get()
    a, b = pair
    return get(a, b)


LIMIT = 3
COUNTER = 0


def limit_plus(x: int) -> int:
    return x + (LIMIT << SHIFT)


def shadowed(LIMIT: int) -> int:  # noqa: N803
    return LIMIT * 2


def bump() -> int:
    global COUNTER
    COUNTER += 1
    return COUNTER


compile_lean(globals())
"""


@pytest.fixture
def inlinemod(tmp_path: Path) -> Iterator[ModuleType]:
    yield from _load(tmp_path, "inlinemod", INLINE_SOURCE)


def test_small_helpers_are_inlined_in_the_lean_twin(inlinemod: ModuleType) -> None:
    twins = {
        fn.__name__: (full, lean)
        for fn, full, lean in runtime._lean
        if fn.__module__ == "inlinemod"
    }
    full, lean = twins["use"]
    assert {"get", "put"} <= set(full.co_names)
    assert not {"get", "put", "SHIFT"} & set(lean.co_names)  # the constant is folded
    box = [0, 3]
    assert inlinemod.use(box) == (3 << 4) + 1 << 4
    assert box == [(3 << 4) + 1, 3]
    runtime.set_debug_build(True)
    assert inlinemod.use([0, 3]) == (3 << 4) + 1 << 4


def test_inlining_keeps_every_argument_evaluated_once(inlinemod: ModuleType) -> None:
    # A mutable global, an expression used twice, a call in an argument: kept.
    assert "not_inlined" not in {fn.__name__ for fn, _, _ in runtime._lean}
    assert inlinemod.not_inlined([5, 6]) == 0 + 10 + 4 + (6 << 4)
    assert inlinemod.calls == [2, 1]


def test_the_swap_model_inlines_its_accessors() -> None:
    entries = {fn: (full, lean) for fn, full, lean in runtime._lean}
    full, lean = entries[swap.__swap_cluster_lock]
    assert "xa_load" in full.co_names and "xa_load" not in lean.co_names
    full, lean = entries[swapfile.__swap_cluster_dup_entry]
    inlined = {"__swap_table_get", "__swap_table_set", "__swp_tb_mk_count", "swp_tb_is_bad"}
    assert inlined <= set(full.co_names)
    assert not inlined & set(lean.co_names)


def test_module_constants_are_folded_unless_rebound(inlinemod: ModuleType) -> None:
    twins = {fn.__name__: lean for fn, _, lean in runtime._lean if fn.__module__ == "inlinemod"}
    assert "LIMIT" not in twins["limit_plus"].co_names
    assert 3 << 4 in twins["limit_plus"].co_consts  # the constant expression folds too
    assert inlinemod.limit_plus(1) == 49
    assert "shadowed" not in twins  # a parameter of that name is no constant
    assert inlinemod.shadowed(5) == 10
    assert "bump" not in twins  # rebound with global
    assert (inlinemod.bump(), inlinemod.bump()) == (1, 2)


def test_an_early_return_inlines_as_a_conditional(inlinemod: ModuleType) -> None:
    # late() is defined after its caller and returns early: still inlined.
    twins = {fn.__name__: lean for fn, _, lean in runtime._lean if fn.__module__ == "inlinemod"}
    assert "late" not in twins["pick"].co_names
    assert inlinemod.pick([4, 5], 1) == 6
    assert inlinemod.pick([4, 5], -1) == 1


def test_a_temporary_is_put_in_its_one_use(inlinemod: ModuleType) -> None:
    twins = {fn.__name__: lean for fn, _, lean in runtime._lean if fn.__module__ == "inlinemod"}
    assert "via_temp" not in twins["use_temp"].co_names
    assert inlinemod.use_temp([4, 5], 1) == 10
    assert inlinemod.use_temp([4, 5], -1) == 208


def test_chained_temporaries_inline_but_a_call_keeps_its_place(
    inlinemod: ModuleType,
) -> None:
    twins = {fn.__name__: lean for fn, _, lean in runtime._lean if fn.__module__ == "inlinemod"}
    assert "packed" not in twins["use_packed"].co_names
    assert (inlinemod.use_packed(2), inlinemod.use_packed(-5)) == (27, -31)
    # effect(3) runs before box[0] is read: moving it after would change that.
    assert "use_late_effect" not in twins
    assert inlinemod.use_late_effect([1]) == 4


def test_a_local_name_hides_the_helper(inlinemod: ModuleType) -> None:
    assert inlinemod.local_get([3, 1]) == 3


def test_a_primitive_in_a_lean_module_keeps_its_checked_code() -> None:
    from ghostswap.mm import swap_table

    lean_fns = {fn for fn, _, _ in runtime._lean}
    primitive = swap_table.__swap_table_get
    assert primitive not in lean_fns
    fast = runtime.fast_code_of(primitive)
    runtime.install(CheckedRuntime(RunToCompletion()))
    try:
        assert primitive.__code__ is not fast
    finally:
        runtime.install(None)
    assert primitive.__code__ is fast
