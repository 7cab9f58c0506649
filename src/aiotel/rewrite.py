"""The AST transform: probe calls inside each marked function's own frame.

For a marked function the body becomes::

    def f(a, b):
        \"\"\"docstring stays first\"\"\"
        __aiotel_call__ = __aiotel_probes__.enter(__aiotel_f0__)
        try:
            <original body, unchanged>
        except BaseException as __aiotel_exc__:
            if __aiotel_call__ is not None:
                __aiotel_call__ = __aiotel_probes__.fail(__aiotel_f0__, __aiotel_call__, __aiotel_exc__)
            raise
        finally:
            if __aiotel_call__ is not None:
                __aiotel_probes__.leave(__aiotel_f0__, __aiotel_call__)

No wrapper function exists, so decorators, closures, ``inspect``, pickling and the
recursion depth all see the original function object. Every new node carries the
``def`` line, and the original nodes keep theirs, so tracebacks and coverage are
unchanged. The probe calls after the body are guarded by ``is not None``: at the edge
of the recursion limit ``enter`` gives up (returns None) and no further Python call
may be made, or the function would fail one frame earlier than without aiotel.
Names are dunders on both ends so that class-private name mangling leaves
them alone. In generators each ``yield`` is bracketed by ``suspend``/``resume`` so the
function's span is current only while its frame runs.

Pure: an ``ast.Module`` and provenance records in, the same module (changed) out.
"""

from __future__ import annotations

import ast
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .provenance import Provenance

PROBES = "__aiotel_probes__"
CALL = "__aiotel_call__"
EXC = "__aiotel_exc__"
PROBES_MODULE = "aiotel.probes"

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]


def handle_name(index: int) -> str:
    return f"__aiotel_f{index}__"


class _Located:
    """Builds nodes that all carry one source line."""

    def __init__(self, line: int, col: int = 0) -> None:
        self.loc = {"lineno": line, "col_offset": col, "end_lineno": line, "end_col_offset": col}

    def name(self, id: str, ctx: Optional[ast.expr_context] = None) -> ast.Name:
        return ast.Name(id=id, ctx=ctx or ast.Load(), **self.loc)

    def const(self, value: object) -> ast.Constant:
        return ast.Constant(value=value, **self.loc)

    def probe_call(self, method: str, *args: ast.expr) -> ast.Call:
        func = ast.Attribute(value=self.name(PROBES), attr=method, ctx=ast.Load(), **self.loc)
        return ast.Call(func=func, args=list(args), keywords=[], **self.loc)

    def expr(self, value: ast.expr) -> ast.Expr:
        return ast.Expr(value=value, **self.loc)

    def if_call_made(self, stmt: ast.stmt) -> ast.If:
        """``if __aiotel_call__ is not None: <stmt>``"""
        test = ast.Compare(left=self.name(CALL), ops=[ast.IsNot()], comparators=[self.const(None)], **self.loc)
        return ast.If(test=test, body=[stmt], orelse=[], **self.loc)

    def assign(self, target: str, value: ast.expr) -> ast.Assign:
        return ast.Assign(targets=[self.name(target, ast.Store())], value=value, **self.loc)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


class _YieldBracketer(ast.NodeTransformer):
    """Wraps each ``yield`` of one function (not of nested scopes) in suspend/resume."""

    def __init__(self, at: _Located) -> None:
        self.at = at

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node  # a nested scope: its yields are its own

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]
    visit_Lambda = visit_FunctionDef  # type: ignore[assignment]
    visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Yield(self, node: ast.Yield) -> ast.AST:
        self.generic_visit(node)
        value = node.value if node.value is not None else self.at.const(None)
        node.value = self.at.probe_call("suspend", self.at.name(CALL), value)
        return ast.copy_location(self.at.probe_call("resume", self.at.name(CALL), node), node)

    def visit_YieldFrom(self, node: ast.YieldFrom) -> ast.AST:
        # During delegation the sub-iterator runs in its caller's context: the span is
        # suspended for the whole `yield from` and current again when it returns.
        self.generic_visit(node)
        node.value = self.at.probe_call("suspend", self.at.name(CALL), node.value)
        return ast.copy_location(self.at.probe_call("resume", self.at.name(CALL), node), node)


class _FallbackCounter(ast.NodeVisitor):
    """Makes each ``except`` handler of one function (not of nested scopes) report that it
    caught something: a silent fallback path. The report is the handler's first statement,
    on the ``except`` line, guarded so that at the recursion limit it is skipped, never raised::

        except ValueError as exc:
            try:
                __aiotel_probes__.fallback(__aiotel_f0__, <line>)
            except RecursionError:
                pass
            <the handler's body>
    """

    def __init__(self, handle: str) -> None:
        self.handle = handle

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        pass  # a nested scope: its handlers are its own

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]
    visit_Lambda = visit_FunctionDef  # type: ignore[assignment]
    visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.generic_visit(node)
        at = _Located(node.lineno, node.col_offset)
        report = ast.Try(
            body=[at.expr(at.probe_call("fallback", at.name(self.handle), at.const(node.lineno)))],
            handlers=[ast.ExceptHandler(type=at.name("RecursionError"), name=None, body=[ast.Pass(**at.loc)], **at.loc)],
            orelse=[],
            finalbody=[],
            **at.loc,
        )
        node.body.insert(0, report)


def instrument_function(node: FunctionNode, handle: str, is_generator: bool) -> None:
    """Put the probe calls inside ``node`` (changed in place)."""
    at = _Located(node.lineno, node.col_offset)
    body = list(node.body)
    docstring: List[ast.stmt] = []
    if body and _is_docstring(body[0]):
        docstring = [body.pop(0)]
        if not body:
            body = [ast.Pass(**at.loc)]
    counter = _FallbackCounter(handle)
    for stmt in body:
        counter.visit(stmt)
    if is_generator:
        bracketer = _YieldBracketer(at)
        body = [bracketer.visit(stmt) for stmt in body]
    # Calling `enter` one frame below the recursion limit raises before enter can catch
    # anything: the call then runs bare, as deep as it would without aiotel.
    enter = ast.Try(
        body=[at.assign(CALL, at.probe_call("enter", at.name(handle)))],
        handlers=[
            ast.ExceptHandler(type=at.name("RecursionError"), name=None, body=[at.assign(CALL, at.const(None))], **at.loc)
        ],
        orelse=[],
        finalbody=[],
        **at.loc,
    )
    handler = ast.ExceptHandler(
        type=at.name("BaseException"),
        name=EXC,
        body=[
            # fail() finishes the call and returns None, so the finally clause skips leave()
            at.if_call_made(at.assign(CALL, at.probe_call("fail", at.name(handle), at.name(CALL), at.name(EXC)))),
            ast.Raise(exc=None, cause=None, **at.loc),
        ],
        **at.loc,
    )
    wrapped = ast.Try(
        body=body,
        handlers=[handler],
        orelse=[],
        finalbody=[at.if_call_made(at.expr(at.probe_call("leave", at.name(handle), at.name(CALL))))],
        **at.loc,
    )
    node.body = docstring + [enter, wrapped]


def _has_own_yield(node: FunctionNode) -> bool:
    stack: List[ast.AST] = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(child))
    return False


def _marked_nodes(tree: ast.Module, wanted: Dict[Tuple[str, int], int]) -> List[Tuple[FunctionNode, int]]:
    """(node, index into records) for each def matching a record by qualname and line."""
    found: List[Tuple[FunctionNode, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = prefix + child.name
                index = wanted.get((qualname, child.lineno))
                if index is not None:
                    found.append((child, index))
                walk(child, qualname + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            elif not isinstance(child, ast.Lambda):
                walk(child, prefix)

    walk(tree, "")
    return found


def _insert_position(tree: ast.Module) -> int:
    """After the module docstring and `from __future__` imports, which must come first."""
    position = 0
    if tree.body and _is_docstring(tree.body[0]):
        position = 1
    while position < len(tree.body):
        stmt = tree.body[position]
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            position += 1
        else:
            break
    return position


def _handle_definition(index: int, record: Provenance, path: str) -> ast.stmt:
    at = _Located(1)
    marker = record.marker
    fields = ast.Tuple(
        elts=[ast.Tuple(elts=[at.const(k), at.const(v)], ctx=ast.Load(), **at.loc) for k, v in marker.fields],
        ctx=ast.Load(),
        **at.loc,
    )
    args = [
        at.const(record.qualname),
        at.const(path),
        at.const(record.def_line),
        at.const(record.source),
        at.const(marker.tool),
        at.const(marker.date),
        at.const(marker.prompt),
        fields,
    ]
    return at.assign(handle_name(index), at.probe_call("function", *args))


def rewrite_module(tree: ast.Module, records: Sequence[Provenance], path: str) -> int:
    """Instrument every function of ``records`` found in ``tree``; returns how many were."""
    wanted = {(r.local_qualname, r.def_line): i for i, r in enumerate(records)}
    matches = _marked_nodes(tree, wanted)
    if not matches:
        return 0
    definitions: List[ast.stmt] = []
    for handle_index, (node, record_index) in enumerate(matches):
        instrument_function(node, handle_name(handle_index), _has_own_yield(node))
        definitions.append(_handle_definition(handle_index, records[record_index], path))
    at = _Located(1)
    # ast.alias has no location before 3.10: fix_missing_locations gives it the import's.
    probes_import = ast.Import(names=[ast.alias(name=PROBES_MODULE, asname=PROBES)], **at.loc)
    position = _insert_position(tree)
    tree.body[position:position] = [probes_import] + definitions
    ast.fix_missing_locations(tree)
    return len(matches)
