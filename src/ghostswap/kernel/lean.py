"""The lean build: what the C compiler drops from a production kernel.

A kernel built without CONFIG_LOCKDEP, CONFIG_PROVE_RCU and CONFIG_DEBUG_VM
carries no code for ``lockdep_assert_held()``, ``rcu_read_lock()`` on a
non-preemptible kernel, ``VM_WARN_ON()`` or ``VM_BUG_ON()``. The model's
fast mode already makes the primitives no-ops, but each call still costs a
Python call. :func:`compile_lean` gives every function of a module a lean
twin in which

* calls, as statements, of primitives whose fast-mode body is empty
  (``spin_lock``, ``lockdep_assert_held``, ``rcu_read_lock``,
  ``sched_point``, ...) are removed;
* calls of primitives whose fast-mode body returns their first argument
  (``rcu_dereference(p, ...)``) become that argument;
* ``assert`` statements are removed (VM_BUG_ON);
* ``if _debug_vm ...:`` statements without an ``else`` are removed
  (VM_WARN_ON: the test is ``_debug_vm``, or ``x._debug_vm``, or an
  ``and`` that starts with one of them).

Nothing else changes: the twin is compiled from the same source with the
same line numbers, so tracebacks point at the real lines. The runtime runs
the lean twins in fast mode unless the debug build is selected
(:func:`ghostswap.kernel.runtime.set_debug_build`, which the tests turn
on); checked mode always runs the full functions.
"""

from __future__ import annotations
import __future__

import ast
from types import CodeType, FunctionType
from typing import Any

from ghostswap.kernel import runtime as _rt

__all__ = ["compile_lean"]

DEBUG_FLAG = "_debug_vm"


def _noop(*args: object) -> None:
    pass


def _identity(value: object, *args: object) -> object:
    return value


def _fast_body(fn: FunctionType) -> str | None:
    """Is `fn` "noop" or "identity" in fast mode? A primitive's fast twin,
    or a lean twin that compiled down to nothing (``swap_cluster_unlock``)."""
    code = _rt.fast_code_of(fn)
    if code is None:
        code = _rt.lean_code_of(fn)
    if code is None:
        return None
    if code.co_code == _noop.__code__.co_code and code.co_consts[-1:] == (None,):
        return "noop"
    if code.co_code == _identity.__code__.co_code:
        return "identity"
    return None


def _is_debug_flag(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == DEBUG_FLAG
    return isinstance(node, ast.Attribute) and node.attr == DEBUG_FLAG


class _Strip(ast.NodeTransformer):
    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.changed = False

    def _kind(self, func: ast.expr) -> str | None:
        if not isinstance(func, ast.Name):
            return None
        target = self.namespace.get(func.id)
        return _fast_body(target) if isinstance(target, FunctionType) else None

    def visit_Assert(self, node: ast.Assert) -> None:
        self.changed = True
        return None

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        value = node.value
        if isinstance(value, ast.Call) and self._kind(value.func) == "noop":
            self.changed = True
            return None
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if self._kind(node.func) == "identity" and node.args and not node.keywords:
            self.changed = True
            return self.visit(node.args[0])
        return self.generic_visit(node)

    def visit_If(self, node: ast.If) -> ast.AST | None:
        test = node.test
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
            test = test.values[0]
        if not node.orelse and _is_debug_flag(test):
            self.changed = True
            return None
        return self.generic_visit(node)

    def visit_Try(self, node: ast.Try) -> ast.AST | list[ast.stmt]:
        self.generic_visit(node)
        if not node.handlers and not node.finalbody and not node.orelse:
            return node.body  # try: ... finally: rcu_read_unlock()
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(body, list) and not body:
            body.append(ast.copy_location(ast.Pass(), node))
        return node


def _lean_code(module_code: CodeType, name: str, firstlineno: int) -> CodeType | None:
    for const in module_code.co_consts:
        if (
            isinstance(const, CodeType)
            and const.co_name == name
            and const.co_firstlineno == firstlineno
        ):
            return const
    return None


def compile_lean(namespace: dict[str, Any]) -> int:
    """Give the module-level functions of the module whose globals are
    `namespace` lean twins; call it at the end of the module. Returns how
    many functions got one (0 when the source cannot be read)."""
    filename = namespace.get("__file__")
    if not filename:
        return 0
    try:
        with open(filename, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename)
    except OSError:
        return 0
    module = namespace["__name__"]
    lean_defs = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        fn = namespace.get(node.name)
        if not isinstance(fn, FunctionType) or fn.__module__ != module:
            continue
        strip = _Strip(namespace)
        strip.visit(node)
        if strip.changed:
            lean_defs.append(fn)
    if not lean_defs:
        return 0
    flags = 0
    if namespace.get("annotations") is __future__.annotations:
        flags = __future__.annotations.compiler_flag
    module_code = compile(ast.fix_missing_locations(tree), filename, "exec", flags, True)
    count = 0
    for fn in lean_defs:
        full = fn.__code__
        # A decorated def's code starts at its first decorator line, as the
        # function's own code does.
        lean = _lean_code(module_code, full.co_name, full.co_firstlineno)
        if lean is None or lean.co_freevars or full.co_freevars:
            continue
        if (lean.co_argcount, lean.co_kwonlyargcount, lean.co_posonlyargcount) != (
            full.co_argcount,
            full.co_kwonlyargcount,
            full.co_posonlyargcount,
        ):
            continue
        _rt.register_lean(fn, lean)
        count += 1
    return count
