"""Inlining for the lean build: what :func:`ghostswap.kernel.lean.compile_lean`
does to calls of small helpers, as C inlines a ``static inline``.

A helper inlines when its fast-mode body (after the lean build's stripping)
is one ``return EXPR``, or reduces to one (``if TEST: return A`` then
``return B``; a temporary used once), or is one assignment and the call is
a statement. The body may name only its parameters, constants of its
module (folded to their values), functions the caller sees under the same
name, and a few builtins; an argument other than a plain name or constant
must hold no call and be evaluated by the body exactly once on every path
through it, in the order of the arguments and before the body calls
anything. Anything else is left as a call.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from types import FunctionType
from typing import Any

from ghostswap.kernel import runtime as _rt

__all__ = ["CONSTANT_TYPES", "constant_name", "has_body", "inline_call", "record_body"]

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


CONSTANT_TYPES = (int, bool, str, float, type(None))


def constant_name(name: str) -> bool:
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
        elif constant_name(node.id) and type(self.namespace.get(node.id)) in CONSTANT_TYPES:
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


def inline_call(
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


def record_body(fn: FunctionType, node: ast.FunctionDef) -> None:
    """`fn`'s stripped definition, which later callers may inline."""
    _bodies[fn] = node
    _inline_cache.pop(fn, None)


def has_body(fn: FunctionType) -> bool:
    """Has :func:`record_body` seen `fn` (is it compiled yet)?"""
    return fn in _bodies
