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
  ``static inline``: a helper whose fast-mode body (after the steps above)
  is one ``return EXPR`` (``xa_load``, ``__swap_table_get``,
  ``swp_tb_is_folio``; ``if TEST: return A`` then ``return B`` counts as
  ``return A if TEST else B``), or one assignment when the call is a statement
  (``__swap_table_set``), is replaced by that expression with the call's
  arguments put in for its parameters. Only what cannot change meaning is
  inlined: the body may name only its parameters, constants of its module
  (upper-case names such as ``SWP_TB_NULL`` or ``PG_locked``, folded to
  their values), functions the caller sees under the same name and a few
  builtins; an argument other than a plain name or constant must hold no
  call and be evaluated by the body exactly once on every path through it,
  in the order of the arguments and before the body calls anything, so
  every argument is still evaluated exactly once and in its turn. A
  temporary (``pool = si.cluster_info_pool``) is put in its one use under
  the same rule.

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
import copy
from collections.abc import Iterator
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
                and target not in _bodies
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
            new = _inline(value, self.namespace, self.local, statement=True)
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
        new = _inline(node, self.namespace, self.local, statement=False)
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


# -- inlining ----------------------------------------------------------------------
# Builtins an inlined body may call (if the calling module does not shadow them).
_INLINE_BUILTINS = frozenset({"bool", "int", "len", "abs"})
# Fast-mode bodies of the functions compile_lean has seen (after stripping),
# and the sources of primitives' modules, parsed once.
_bodies: dict[FunctionType, ast.FunctionDef] = {}
_parsed: dict[str, ast.Module] = {}
# function -> (parameter names, the single statement, the functions it
# names) or None: not inlinable.
_Inlinable = tuple[list[str], ast.stmt, dict[str, FunctionType]]
_inline_cache: dict[FunctionType, _Inlinable | None] = {}


def _fast_def(fn: FunctionType) -> ast.FunctionDef | None:
    """The definition of `fn`'s fast-mode body: its stripped definition if
    compile_lean saw it, the source of a primitive (``checked_twin``) else."""
    node = _bodies.get(fn)
    if node is not None:
        return node
    code = _rt.fast_code_of(fn)
    if code is None:
        return None
    tree = _parsed.get(code.co_filename)
    if tree is None:
        try:
            with open(code.co_filename, encoding="utf-8") as f:
                tree = ast.parse(f.read(), code.co_filename)
        except OSError:
            return None
        _parsed[code.co_filename] = tree
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.FunctionDef)
            and stmt.name == code.co_name
            and stmt.lineno == code.co_firstlineno
            and not stmt.decorator_list
        ):
            return stmt
    return None


def _short(body: list[ast.stmt]) -> bool:
    """Could `body` make one statement (a cheap test before copying it)?"""
    return len(body) <= 6 and all(
        isinstance(stmt, (ast.Return, ast.Assign, ast.AugAssign))
        or (isinstance(stmt, ast.If) and not stmt.orelse and _short(stmt.body))
        for stmt in body
    )


def _single_statement(node: ast.FunctionDef) -> ast.stmt | None:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not _short(body):
        return None
    body = copy.deepcopy(body)  # the definition may still be compiled
    if len(body) == 1:
        stmt = body[0]
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            if isinstance(stmt.targets[0], (ast.Attribute, ast.Subscript)):
                return stmt
            return None
        if isinstance(stmt, ast.AugAssign):
            if isinstance(stmt.target, (ast.Attribute, ast.Subscript)):
                return stmt
            return None
    return _as_return(body)


def _as_return(body: list[ast.stmt]) -> ast.Return | None:
    """`body` as one ``return EXPR``: ``if TEST: return A`` then ``return B``
    is ``return A if TEST else B``; ``x = EXPR`` followed by a return that
    evaluates the temporary once, before anything else that could observe
    the difference, puts EXPR in its place."""
    if not body:
        return None
    first = body[0]
    if len(body) == 1:
        if isinstance(first, ast.Return) and first.value is not None:
            return first
        return None
    rest = _as_return(body[1:])
    if rest is None or rest.value is None:
        return None
    if isinstance(first, ast.If) and not first.orelse:
        taken = _as_return(first.body)
        if taken is None or taken.value is None:
            return None
        return ast.Return(ast.IfExp(first.test, taken.value, rest.value))
    if isinstance(first, ast.Assign) and len(first.targets) == 1:
        target = first.targets[0]
        if not isinstance(target, ast.Name):
            return None
        name = target.id
        # A value that calls out must come before everything else, too.
        if not _evaluated_once_first(rest, [name], at_once=not _movable(first.value)):
            return None
        return ast.Return(_Substitute({name: first.value}).visit(rest.value))
    return None


def _inlinable(fn: FunctionType) -> _Inlinable | None:
    if fn in _inline_cache:
        return _inline_cache[fn]
    _inline_cache[fn] = None
    node = _fast_def(fn)
    if node is None:
        return None
    a = node.args
    if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults:
        return None
    params = [arg.arg for arg in a.args]
    stmt = _single_statement(node)
    if stmt is None:
        return None
    namespace = fn.__globals__
    folded = _Fold(params, namespace)
    stmt = folded.visit(stmt)
    if not folded.ok:
        return None
    found = (params, stmt, folded.needs)
    _inline_cache[fn] = found
    return found


_CONSTANT_TYPES = (int, bool, str, float, type(None))


def _constant_name(name: str) -> bool:
    """Named like a constant: ``SWP_TB_NULL``, ``_COUNT_SHIFT``, ``PG_locked``."""
    return name.isupper() or name.split("_", 1)[0].isupper()


class _Fold(ast.NodeTransformer):
    """Check an inlining candidate's names; fold its module's constants."""

    def __init__(self, params: list[str], namespace: dict[str, Any]) -> None:
        self.params = params
        self.namespace = namespace
        self.needs: dict[str, FunctionType] = {}
        self.ok = True

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if not isinstance(node.ctx, ast.Load):
            self.ok = False
        elif node.id in self.params:
            pass
        elif node.id in _INLINE_BUILTINS and node.id not in self.namespace:
            pass  # the builtin, unless the helper's module has its own
        elif _constant_name(node.id) and type(self.namespace.get(node.id)) in _CONSTANT_TYPES:
            return ast.copy_location(ast.Constant(self.namespace[node.id]), node)
        elif isinstance(self.namespace.get(node.id), FunctionType):
            # Another function: the caller must see the same one by that name.
            self.needs[node.id] = self.namespace[node.id]
        else:
            self.ok = False
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, (ast.Lambda, ast.NamedExpr, ast.comprehension, ast.Await)):
            self.ok = False
        return super().generic_visit(node)


def _evaluated_once_first(stmt: ast.stmt, names: list[str], at_once: bool = False) -> bool:
    """On every path through `stmt` (each branch of a conditional, each
    stopping point of an ``and``/``or``), is each of `names` evaluated
    exactly once, in the order given, and all of them before any call
    (`at_once`: the first of them before anything at all)?"""
    branches = [n for n in ast.walk(stmt) if isinstance(n, (ast.IfExp, ast.BoolOp))]
    if len(branches) > 4:
        return False
    ways = [2 if isinstance(n, ast.IfExp) else len(n.values) for n in branches]
    total = 1
    for w in ways:
        total *= w
    for path in range(total):
        choose: dict[int, int] = {}
        for node, w in zip(branches, ways, strict=True):
            choose[id(node)] = path % w
            path //= w
        order = list(_eval_order(stmt, choose))
        if at_once and not (order and isinstance(order[0], ast.Name) and order[0].id == names[0]):
            return False
        seen = [
            n.id if isinstance(n, ast.Name) else None
            for n in order
            if isinstance(n, ast.Call) or (isinstance(n, ast.Name) and n.id in names)
        ]
        if seen[: len(names)] != names or sum(1 for x in seen if x is not None) != len(names):
            return False
    return True


def _eval_order(node: ast.AST, choose: dict[int, int]) -> Iterator[ast.AST]:
    """The nodes of a statement or expression in the order Python evaluates
    them (each after its operands), taking the branches `choose` names by
    node id; a node it does not know counts as a call that comes first."""
    if isinstance(node, ast.Return):
        if node.value is not None:
            yield from _eval_order(node.value, choose)
    elif isinstance(node, ast.Assign):
        yield from _eval_order(node.value, choose)
        for target in node.targets:
            yield from _eval_order_target(target, choose)
    elif isinstance(node, ast.AugAssign):
        yield from _eval_order_target(node.target, choose)
        yield from _eval_order(node.value, choose)
    elif isinstance(node, ast.IfExp):
        yield from _eval_order(node.test, choose)
        yield from _eval_order(node.orelse if choose[id(node)] else node.body, choose)
    elif isinstance(node, ast.BoolOp):
        for value in node.values[: choose[id(node)] + 1]:
            yield from _eval_order(value, choose)
    elif isinstance(node, ast.Call):
        yield from _eval_order(node.func, choose)
        for arg in node.args:
            yield from _eval_order(arg, choose)
        for kw in node.keywords:
            yield from _eval_order(kw.value, choose)
        yield node
    elif isinstance(node, ast.BinOp):
        yield from _eval_order(node.left, choose)
        yield from _eval_order(node.right, choose)
        yield node
    elif isinstance(node, ast.UnaryOp):
        yield from _eval_order(node.operand, choose)
        yield node
    elif isinstance(node, ast.Compare):
        yield from _eval_order(node.left, choose)
        for comparator in node.comparators:
            yield from _eval_order(comparator, choose)
        yield node
    elif isinstance(node, ast.Attribute):
        yield from _eval_order(node.value, choose)
        yield node
    elif isinstance(node, ast.Subscript):
        yield from _eval_order(node.value, choose)
        yield from _eval_order(node.slice, choose)
        yield node
    elif isinstance(node, (ast.Name, ast.Constant)):
        yield node
    else:
        yield _UNKNOWN


# Stands for a node _eval_order does not know: a call, to be safe.
_UNKNOWN = ast.Call(ast.Constant(None), [], [])


def _eval_order_target(node: ast.expr, choose: dict[int, int]) -> Iterator[ast.AST]:
    if isinstance(node, ast.Attribute):
        yield from _eval_order(node.value, choose)
    elif isinstance(node, ast.Subscript):
        yield from _eval_order(node.value, choose)
        yield from _eval_order(node.slice, choose)
    else:
        yield _UNKNOWN


def _pure_simple(node: ast.expr) -> bool:
    return isinstance(node, (ast.Name, ast.Constant))


def _movable(node: ast.expr) -> bool:
    """Can the argument be evaluated later than the call would have (no call,
    no assignment, nothing that runs code of its own)?"""
    return not any(
        isinstance(n, (ast.Call, ast.NamedExpr, ast.Lambda, ast.Await, ast.comprehension))
        for n in ast.walk(node)
    )


class _Substitute(ast.NodeTransformer):
    def __init__(self, args: dict[str, ast.expr]) -> None:
        self.args = args

    def visit_Name(self, node: ast.Name) -> ast.AST:
        arg = self.args.get(node.id)
        if arg is None:
            return node
        return copy.deepcopy(arg)


def _inline(
    call: ast.Call, namespace: dict[str, Any], local: frozenset[str], statement: bool
) -> ast.expr | ast.stmt | None:
    """The body that replaces `call`, or None if it is not inlined. `local`:
    the names the calling function binds, which hide the module's."""
    func = call.func
    if not isinstance(func, ast.Name) or call.keywords:
        return None
    target = namespace.get(func.id)
    if not isinstance(target, FunctionType):
        return None
    found = _inlinable(target)
    if found is None:
        return None
    params, stmt, needs = found
    if not isinstance(stmt, ast.Return) and not statement:
        return None
    if any(namespace.get(name) is not obj for name, obj in needs.items()):
        return None
    if len(call.args) != len(params) or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    if func.id in local or any(name in local for name in needs):
        return None
    for name in _INLINE_BUILTINS:
        if (name in namespace or name in local) and any(
            isinstance(n, ast.Name) and n.id == name for n in ast.walk(stmt)
        ):
            return None
    # An argument other than a name or a constant must still be evaluated
    # once, in its turn, and before the body calls anything.
    complex_params = [p for p, a in zip(params, call.args, strict=True) if not _pure_simple(a)]
    if complex_params:
        if not all(
            _movable(a) for p, a in zip(params, call.args, strict=True) if p in complex_params
        ):
            return None
        if not _evaluated_once_first(stmt, complex_params):
            return None
    new = copy.deepcopy(stmt)
    for n in ast.walk(new):
        if "lineno" in n._attributes:
            ast.copy_location(n, call)
    new = _Substitute(dict(zip(params, call.args, strict=True))).visit(new)
    if isinstance(new, ast.Return):
        return new.value
    return new


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
        if _constant_name(name) and type(value) in _CONSTANT_TYPES and name not in rebound
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
            _bodies[fn] = node  # what a later caller may inline
            _inline_cache.pop(fn, None)
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
