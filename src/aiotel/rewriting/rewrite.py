"""The AST transform: probe calls inside each marked function's own frame.

For a marked function the body becomes::

    def f(a, b):
        \"\"\"docstring stays first\"\"\"
        __aiotel_call__ = __aiotel_enter__(__aiotel_f0__)
        try:
            <original body, unchanged>
        except BaseException as __aiotel_exc__:
            if __aiotel_call__ is not None:
                __aiotel_call__ = __aiotel_probes__.fail(__aiotel_f0__, __aiotel_call__, __aiotel_exc__)
            raise
        finally:
            if __aiotel_call__ is not None:
                __aiotel_leave__(__aiotel_f0__, __aiotel_call__)

``__aiotel_enter__``/``__aiotel_leave__`` are the module's own names for the probes'
``enter``/``leave`` (one global read, not a global and an attribute, on the hottest
path; ``probes.use_accelerator`` rebinds them in every rewritten module).

No wrapper function exists, so decorators, closures, ``inspect``, pickling and the
recursion depth all see the original function object. Every new node carries the
``def`` line, and the original nodes keep theirs, so tracebacks and coverage are
unchanged. The probe calls after the body are guarded by ``is not None``: at the edge
of the recursion limit ``enter`` gives up (returns None) and no further Python call
may be made, or the function would fail one frame earlier than without aiotel.
Names are dunders on both ends so that class-private name mangling leaves
them alone. In generators each ``yield`` is bracketed by ``suspend``/``resume`` so the
function's span is current only while its frame runs.

Besides the call probes (see ``RewriteOptions``): each ``except`` handler reports a
fallback as its first statement; in a function that returns values, each ``return``
reports a None result; with shapes on, the arguments go to ``shapes`` before the body.

Pure: an ``ast.Module`` and provenance records in, the same module (changed) out.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..provenance import Provenance
from ..provenance.records import CANDIDATE
from .contract import (CALL, ENTER, EXC, LEAVE, MAX_SHAPE_PARAMETERS, PROBES, PROBES_MODULE, RESULT, TRIAL,
                       RewriteOptions)

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


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

    def is_none(self, name: str) -> ast.Compare:
        return ast.Compare(left=self.name(name), ops=[ast.Is()], comparators=[self.const(None)], **self.loc)

    def guarded(self, call: ast.expr) -> ast.Try:
        """``try: <call> except RecursionError: pass``: at the recursion limit a report is
        skipped, never raised into the user's code."""
        return ast.Try(
            body=[self.expr(call)],
            handlers=[ast.ExceptHandler(type=self.name("RecursionError"), name=None, body=[ast.Pass(**self.loc)], **self.loc)],
            orelse=[],
            finalbody=[],
            **self.loc,
        )


def _own_nodes(node: FunctionNode) -> Iterator[ast.AST]:
    """Every node of the function's own scope (not of nested functions, lambdas or classes)."""
    stack: List[ast.AST] = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        yield child
        if not isinstance(child, _SCOPES):
            stack.extend(ast.iter_child_nodes(child))


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


class _OwnScope(ast.NodeTransformer):
    """Visits one function's own scope: nested functions, lambdas and classes are left as
    they are (their yields, handlers and returns are their own)."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]
    visit_Lambda = visit_FunctionDef  # type: ignore[assignment]
    visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]


class _YieldBracketer(_OwnScope):
    """Wraps each ``yield`` of one function in suspend/resume."""

    def __init__(self, at: _Located) -> None:
        self.at = at

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


class _FallbackCounter(_OwnScope):
    """Makes each ``except`` handler of one function report that it
    caught something: a silent fallback path. The report is the handler's first statement,
    on the ``except`` line, guarded so that at the recursion limit it is skipped, never raised::

        except ValueError as exc:
            try:
                __aiotel_probes__.fallback(__aiotel_f0__, __aiotel_call__, <line>)
            except RecursionError:
                pass
            <the handler's body>
    """

    def __init__(self, handle: str) -> None:
        self.handle = handle

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        self.generic_visit(node)
        at = _Located(node.lineno, node.col_offset)
        node.body.insert(0, at.guarded(at.probe_call("fallback", at.name(self.handle), at.name(CALL), at.const(node.lineno))))
        return node


def _is_none(value: Optional[ast.expr]) -> bool:
    return value is None or (isinstance(value, ast.Constant) and value.value is None)


def returns_values(node: FunctionNode) -> bool:
    """Whether some ``return`` of the function's own gives a value other than a literal None."""
    return any(isinstance(n, ast.Return) and not _is_none(n.value) for n in _own_nodes(node))


class _EmptyResultCounter(_OwnScope):
    """Makes each ``return`` of a function that returns values report when it returns None
    (a silent fallback that callers rarely check). ``return`` and ``return None`` report
    directly; ``return <expr>`` becomes::

        __aiotel_result__ = <expr>
        if __aiotel_result__ is None:
            <guarded report of this line>
        return __aiotel_result__

    The expression keeps its own position, so an exception it raises points where it did.
    """

    def __init__(self, handle: str) -> None:
        self.handle = handle

    def report(self, at: _Located, line: int) -> ast.Try:
        return at.guarded(at.probe_call("empty", at.name(self.handle), at.name(CALL), at.const(line)))

    def visit_Return(self, node: ast.Return) -> List[ast.stmt]:
        at = _Located(node.lineno, node.col_offset)
        if _is_none(node.value):
            return [self.report(at, node.lineno), node]
        assign = ast.copy_location(ast.Assign(targets=[at.name(RESULT, ast.Store())], value=node.value), node)
        check = ast.If(test=at.is_none(RESULT), body=[self.report(at, node.lineno)], orelse=[], **at.loc)
        return [assign, check, ast.copy_location(ast.Return(value=at.name(RESULT)), node)]


class _ResultKeeper(_OwnScope):
    """In an arm of an experiment, each ``return`` leaves its value where the ``finally``
    clause reads it: ``return <expr>`` becomes ``__aiotel_result__ = <expr>`` then
    ``return __aiotel_result__`` (the expression keeps its own position)."""

    def visit_Return(self, node: ast.Return) -> List[ast.stmt]:
        at = _Located(node.lineno, node.col_offset)
        if isinstance(node.value, ast.Name) and node.value.id == RESULT:  # already kept (empty-result counting)
            return [node]
        value = node.value if node.value is not None else at.const(None)
        assign = ast.copy_location(ast.Assign(targets=[at.name(RESULT, ast.Store())], value=value), node)
        return [assign, ast.copy_location(ast.Return(value=at.name(RESULT)), node)]


class _TrialSteps:
    """The statements that make a call of an experiment's arm a trial, when drawn::

        __aiotel_result__ = None
        __aiotel_trial__ = None                      # before the try
        try:
            if __aiotel_f0__.shadow_rate and __aiotel_call__ is not None and __aiotel_probes__.trial_drawn(__aiotel_f0__):
                __aiotel_trial__ = __aiotel_probes__.trial_begins(__aiotel_f0__, __aiotel_call__, (a, *args), {'k': k, **kw})
            <body, each return keeping its value>
        except BaseException as __aiotel_exc__:
            if __aiotel_trial__ is not None:
                __aiotel_trial__ = __aiotel_probes__.trial_raised(__aiotel_trial__, __aiotel_exc__)
            ...
        finally:
            if __aiotel_trial__ is not None:
                __aiotel_trial__ = __aiotel_probes__.trial_returned(__aiotel_trial__, __aiotel_result__)
            ...

    Off (``shadow_rate`` 0, the default), a call pays one attribute read. The arguments
    are gathered only for a drawn call, before the body can rebind the parameters.
    """

    def __init__(self, at: _Located, handle: str) -> None:
        self.at = at
        self.handle = handle

    def initial(self) -> List[ast.stmt]:
        return [self.at.assign(RESULT, self.at.const(None)), self.at.assign(TRIAL, self.at.const(None))]

    def _guarded_assign(self, target: str, call: ast.expr) -> ast.Try:
        at = self.at
        return ast.Try(body=[at.assign(target, call)],
                       handlers=[ast.ExceptHandler(type=at.name("RecursionError"), name=None,
                                                   body=[ast.Pass(**at.loc)], **at.loc)],
                       orelse=[], finalbody=[], **at.loc)

    def begin(self, node: FunctionNode) -> ast.stmt:
        at = self.at
        args = node.args
        positional: List[ast.expr] = [at.name(a.arg) for a in list(args.posonlyargs) + list(args.args)]
        if args.vararg is not None:
            positional.append(ast.Starred(value=at.name(args.vararg.arg), ctx=ast.Load(), **at.loc))
        keys: List[Optional[ast.expr]] = [at.const(a.arg) for a in args.kwonlyargs]
        values: List[ast.expr] = [at.name(a.arg) for a in args.kwonlyargs]
        if args.kwarg is not None:
            keys.append(None)
            values.append(at.name(args.kwarg.arg))
        call = at.probe_call("trial_begins", at.name(self.handle), at.name(CALL),
                             ast.Tuple(elts=positional, ctx=ast.Load(), **at.loc),
                             ast.Dict(keys=keys, values=values, **at.loc))
        rate = ast.Attribute(value=at.name(self.handle), attr="shadow_rate", ctx=ast.Load(), **at.loc)
        made = ast.Compare(left=at.name(CALL), ops=[ast.IsNot()], comparators=[at.const(None)], **at.loc)
        test = ast.BoolOp(op=ast.And(), values=[rate, made, at.probe_call("trial_drawn", at.name(self.handle))],
                          **at.loc)
        return ast.If(test=test, body=[self._guarded_assign(TRIAL, call)], orelse=[], **at.loc)

    def _finish(self, method: str, outcome: str) -> ast.stmt:
        at = self.at
        test = ast.Compare(left=at.name(TRIAL), ops=[ast.IsNot()], comparators=[at.const(None)], **at.loc)
        step = self._guarded_assign(TRIAL, at.probe_call(method, at.name(TRIAL), at.name(outcome)))
        return ast.If(test=test, body=[step], orelse=[], **at.loc)

    def raised(self) -> ast.stmt:
        return self._finish("trial_raised", EXC)

    def returned(self) -> ast.stmt:
        return self._finish("trial_returned", RESULT)


def _parameter_names(node: FunctionNode, is_method: bool) -> List[str]:
    """The parameters whose shapes are recorded, in signature order; a method's ``self``
    or ``cls`` is left out (its type is the class, every time)."""
    args = node.args
    names = [a.arg for a in list(args.posonlyargs) + list(args.args)]
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if is_method and not static and names:
        names = names[1:]
    if args.vararg is not None:
        names.append(args.vararg.arg)
    names.extend(a.arg for a in args.kwonlyargs)
    if args.kwarg is not None:
        names.append(args.kwarg.arg)
    return names[:MAX_SHAPE_PARAMETERS]


def instrument_function(
    node: FunctionNode,
    handle: str,
    is_generator: bool,
    options: RewriteOptions = RewriteOptions(),
    parameters: Sequence[str] = (),
    paired: bool = False,
) -> None:
    """Put the probe calls inside ``node`` (changed in place). ``parameters``: the names
    whose shapes are recorded at the start of each call (``options.capture_shapes``).
    ``paired``: the function is an arm of an experiment (see ``_TrialSteps``)."""
    at = _Located(node.lineno, node.col_offset)
    body = list(node.body)
    docstring: List[ast.stmt] = []
    if body and _is_docstring(body[0]):
        docstring = [body.pop(0)]
        if not body:
            body = [ast.Pass(**at.loc)]
    if options.count_fallbacks:
        counter = _FallbackCounter(handle)
        body = [counter.visit(stmt) for stmt in body]
    if is_generator:
        bracketer = _YieldBracketer(at)
        body = [bracketer.visit(stmt) for stmt in body]
    elif options.count_empty_results and returns_values(node):
        empties = _EmptyResultCounter(handle)
        body = [new for stmt in body for new in _as_list(empties.visit(stmt))]
        # falling off the end returns None too (reported on the def line, where no return
        # statement can be); after a final return this is dead code
        body.append(empties.report(at, node.lineno))
    trial = _TrialSteps(at, handle) if paired else None
    if trial is not None:
        keeper = _ResultKeeper()
        body = [new for stmt in body for new in _as_list(keeper.visit(stmt))]
        body.insert(0, trial.begin(node))
    if options.capture_shapes and parameters:
        values = ast.Tuple(elts=[at.name(p) for p in parameters], ctx=ast.Load(), **at.loc)
        shapes = at.guarded(at.probe_call("shapes", at.name(handle), at.name(CALL), values))
        body.insert(0, at.if_call_made(shapes))
    # Calling `enter` one frame below the recursion limit raises before enter can catch
    # anything: the call then runs bare, as deep as it would without aiotel.
    enter = ast.Try(
        body=[at.assign(CALL, ast.Call(func=at.name(ENTER), args=[at.name(handle)], keywords=[], **at.loc))],
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
        body=([trial.raised()] if trial is not None else []) + [
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
        finalbody=([trial.returned()] if trial is not None else [])
        + [at.if_call_made(at.expr(ast.Call(func=at.name(LEAVE), args=[at.name(handle), at.name(CALL)], keywords=[],
                                            **at.loc)))],
        **at.loc,
    )
    node.body = docstring + [enter] + (trial.initial() if trial is not None else []) + [wrapped]


def _as_list(result: Union[ast.AST, List[ast.stmt], None]) -> List[ast.stmt]:
    if result is None:
        return []
    return result if isinstance(result, list) else [result]  # type: ignore[list-item]


def _has_own_yield(node: FunctionNode) -> bool:
    return any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(node))


def _is_method(local_qualname: str) -> bool:
    """Defined directly in a class body (``C.m``, ``f.<locals>.C.m``), not in a function."""
    owner, dot, _ = local_qualname.rpartition(".")
    return bool(dot) and not owner.endswith("<locals>")


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


def _constant_tree(at: _Located, value: object) -> ast.expr:
    """An expression that rebuilds ``value`` (constants, tuples, and the scanner's frozen
    records, through the names the probe module hands on) when the module runs."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        keywords = [ast.keyword(arg=f.name, value=_constant_tree(at, getattr(value, f.name)), **at.loc)
                    for f in dataclasses.fields(value)]
        return ast.Call(func=ast.Attribute(value=at.name(PROBES), attr=type(value).__name__, ctx=ast.Load(), **at.loc),
                        args=[], keywords=keywords, **at.loc)
    if isinstance(value, tuple):
        return ast.Tuple(elts=[_constant_tree(at, item) for item in value], ctx=ast.Load(), **at.loc)
    return at.const(value)


def source_digest(lines: Sequence[bytes], record: Provenance) -> str:
    """SHA-256 of the function's source lines, first decorator to last line, as bytes: a
    report that reads the file later can tell whether it still is the code that ran."""
    from ..provenance.digest import sha256_hex

    return sha256_hex(b"".join(lines[record.first_line - 1:record.last_line]))


def _handle_definition(index: int, record: Provenance, path: str, parameters: Sequence[str],
                       digest: str = "") -> ast.stmt:
    """``__aiotel_f<index>__ = probes.function(Provenance(...), path, parameters, digest)``:
    the probes get the scanner's own record of the function, one immutable object."""
    at = _Located(1)
    args = [_constant_tree(at, record), at.const(path), _constant_tree(at, tuple(parameters)), at.const(digest)]
    return at.assign(handle_name(index), at.probe_call("function", *args))


def _pairs(records: Sequence[Provenance], handles: Dict[str, int]) -> List[Tuple[str, str, str]]:
    """(candidate, control, comparator) for each pair whose two functions are both rewritten here
    (a selection may have left one out: then neither is shadowed)."""
    return [(r.local_qualname, r.shadow[2], r.shadow[3]) for r in records
            if r.shadow is not None and r.shadow[0] == CANDIDATE and not r.crosses_modules
            and r.local_qualname in handles and r.shadow[2] in handles]


def _halves(records: Sequence[Provenance], handles: Dict[str, int]) -> List[Tuple[Provenance, str]]:
    """(record, pair key) for each rewritten arm of a pair whose other arm is in another
    module: the two halves meet at run time, under the key, when both modules have run."""
    halves = []
    for record in records:
        if not record.crosses_modules or record.local_qualname not in handles:
            continue
        arm, module, local, _ = record.shadow
        other = f"{module}.{local}"
        halves.append((record, f"{record.qualname} replaces {other}" if arm == CANDIDATE else f"{other} replaces {record.qualname}"))
    return halves


def rewrite_module(
    tree: ast.Module, records: Sequence[Provenance], path: str, options: RewriteOptions = RewriteOptions(),
    source: Optional[bytes] = None,
) -> int:
    """Instrument every function of ``records`` found in ``tree``; returns how many were.
    ``source``: the module's bytes, for each function's source digest (see ``source_digest``)."""
    lines = source.splitlines(keepends=True) if source is not None else None
    wanted = {(r.local_qualname, r.def_line): i for i, r in enumerate(records)}
    matches = _marked_nodes(tree, wanted)
    if not matches:
        return 0
    definitions: List[ast.stmt] = []
    handles = {records[record_index].local_qualname: handle_index for handle_index, (_, record_index) in enumerate(matches)}
    pairs = _pairs(records, handles)
    halves = _halves(records, handles)
    paired = {name for pair in pairs for name in pair[:2]} | {record.local_qualname for record, _ in halves}
    for handle_index, (node, record_index) in enumerate(matches):
        record = records[record_index]
        parameters = _parameter_names(node, _is_method(record.local_qualname)) if options.capture_shapes else []
        instrument_function(node, handle_name(handle_index), _has_own_yield(node), options, parameters,
                            paired=record.local_qualname in paired)
        digest = source_digest(lines, record) if lines is not None else ""
        definitions.append(_handle_definition(handle_index, record, path, parameters, digest))
    at = _Located(1)
    for candidate, control, comparator in pairs:
        definitions.append(at.expr(at.probe_call("pair", at.name(handle_name(handles[candidate])),
                                                 at.name(handle_name(handles[control])), at.const(candidate),
                                                 at.const(control), at.const(comparator))))
    for record, key in halves:
        definitions.append(at.expr(at.probe_call("pair_half", at.name(handle_name(handles[record.local_qualname])),
                                                 at.const(record.shadow[0]), at.const(key),  # type: ignore[index]
                                                 at.const(record.local_qualname), at.const(record.shadow[3]))))  # type: ignore[index]
    # ast.alias has no location before 3.10: fix_missing_locations gives it the import's.
    probes_import = ast.Import(names=[ast.alias(name=PROBES_MODULE, asname=PROBES)], **at.loc)
    position = _insert_position(tree)
    bindings = [at.assign(name, ast.Attribute(value=at.name(PROBES), attr=attr, ctx=ast.Load(), **at.loc))
                for name, attr in ((ENTER, "enter"), (LEAVE, "leave"))]
    tree.body[position:position] = [probes_import] + bindings + definitions
    ast.fix_missing_locations(tree)
    return len(matches)
