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
  ``and`` that starts with one of them);
* module constants (named like ``SWP_TB_NULL`` or ``PG_locked``, of a
  plain immutable type, never rebound with ``global``) are folded to their
  values, so constant expressions fold too, as C's ``#define`` and enum
  constants do;
* calls of small helpers are inlined, as the C compiler inlines a
  ``static inline`` (``xa_load``, ``__swap_table_get``,
  ``swp_tb_is_folio``, ``__swap_table_set``): only where that cannot
  change meaning; :mod:`ghostswap.kernel.lean_inline` has the rules.

Nothing else changes: the twin is compiled from the same source with the
same line numbers (an inlined body takes the line of its call), so
tracebacks point at the real lines. The runtime runs
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
from ghostswap.kernel.lean_inline import (
    CONSTANT_TYPES,
    constant_name,
    has_body,
    inline_call,
    record_body,
)

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
    def __init__(
        self,
        namespace: dict[str, Any],
        constants: frozenset[str] = frozenset(),
        local: frozenset[str] = frozenset(),
    ) -> None:
        self.namespace = namespace
        self.constants = constants
        self.local = local  # names the function binds: they hide the module's
        # Calls a helper of this module that is not compiled yet: worth a
        # second pass.
        self.retry = False
        self.changed = False

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.constants:
            self.changed = True
            return ast.copy_location(ast.Constant(self.namespace[node.id]), node)
        return node

    def _note_later_helper(self, call: ast.Call) -> None:
        func = call.func
        if isinstance(func, ast.Name) and func.id not in self.local:
            target = self.namespace.get(func.id)
            if (
                isinstance(target, FunctionType)
                and target.__globals__ is self.namespace
                and not has_body(target)
            ):
                self.retry = True

    def _kind(self, func: ast.expr) -> str | None:
        if not isinstance(func, ast.Name):
            return None
        if func.id in self.local:
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
        self.generic_visit(node)
        value = node.value
        if isinstance(value, ast.Call):
            self._note_later_helper(value)
            new = inline_call(value, self.namespace, self.local, statement=True)
            if isinstance(new, ast.stmt):
                self.changed = True
                return new
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if self._kind(node.func) == "identity" and node.args and not node.keywords:
            self.changed = True
            return self.visit(node.args[0])
        self.generic_visit(node)
        self._note_later_helper(node)
        new = inline_call(node, self.namespace, self.local, statement=False)
        if isinstance(new, ast.expr):
            self.changed = True
            return new
        return node

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


def _bound_names(code: CodeType) -> frozenset[str]:
    """Every name the function (or anything nested in it) binds locally,
    from its compiled code: parameters, locals, cells, nested scopes'."""
    names = set(code.co_varnames) | set(code.co_cellvars) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _bound_names(const)
    return frozenset(names)


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
            source = f.read()
    except OSError:
        return 0
    tree = ast.parse(source, filename)
    module = namespace["__name__"]
    # Module constants, folded to their values (C's #define and enum): named
    # like constants, of a plain immutable type and never rebound by a
    # ``global`` statement.
    rebound = (
        {name for n in ast.walk(tree) if isinstance(n, ast.Global) for name in n.names}
        if "global " in source
        else set()
    )
    constants = frozenset(
        name
        for name, value in namespace.items()
        if constant_name(name) and type(value) in CONSTANT_TYPES and name not in rebound
    )
    defs = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        fn = namespace.get(node.name)
        # A primitive (checked_twin) swaps its code by mode itself.
        if (
            isinstance(fn, FunctionType)
            and fn.__module__ == module
            and _rt.fast_code_of(fn) is None
        ):
            defs.append((fn, node, _bound_names(fn.__code__)))
    lean_defs = []
    # A second pass inlines the module's helpers that are defined after
    # their callers.
    for _ in range(2):
        again = []
        for fn, node, local in defs:
            strip = _Strip(namespace, constants - local, local)
            strip.visit(node)
            record_body(fn, node)  # what a later caller may inline
            if strip.changed and fn not in lean_defs:
                lean_defs.append(fn)
            if strip.retry:
                again.append((fn, node, local))
        defs = again
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
