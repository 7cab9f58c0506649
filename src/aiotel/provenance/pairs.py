"""Experiment pairs: a marker's ``replaces: <name>`` names the function an AI rewrite
replaces. Resolved here, statically, from syntax trees: nothing named in a marker is
ever imported or evaluated.

The name is a function of the same module (``legacy_total``, ``Cart.total``) or, relative
as in a ``from . import``, of another module of the same package: ``.legacy.total``,
``..billing.legacy.total``, and ``.legacy:Cart.total`` for a method (the module, then
the function's name in it, as entry points write it).

A pair is shadowable only when both functions are plain ``def`` functions (module level,
or methods of a class, not nested in a function), neither a generator nor ``async``,
not static/class methods or properties, with the same signature. Anything else is
refused, with a notice that says why; the candidate is then instrumented alone, as any
marked function. Pure: trees and records in, records out. A cross-module pair is half
checked here (the candidate's side); ``check_control`` checks the other half once the
other module's tree is read (see ``cross_pairs``).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from typing import Dict, List, Optional, Sequence, Tuple

from .records import (CANDIDATE, CONTROL, EXPERIMENT_REFUSED, SOURCE_CONTROL, UNKNOWN_TOOL, Marker, Notice,  # noqa: F401
                      Provenance)
from .syntax import has_own_yield

REPLACES_FIELD = "replaces"
COMPARE_FIELD = "compare"
REPLACED_BY_FIELD = "replaced_by"
DEFAULT_COMPARATOR = "eq"
COMPARATORS = ("eq", "repr", "type", "approx:<tolerance>")

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_NAME_RE = re.compile(rf"{_DOTTED}$")
_RELATIVE_RE = re.compile(rf"(\.+)({_DOTTED})(?::({_DOTTED}))?$")
# a method that is not called as a plain function with the instance first
_REFUSED_DECORATORS = {"staticmethod", "classmethod", "property", "cached_property", "setter", "getter", "deleter",
                       "overload", "abstractmethod"}

_AnyDef = (ast.FunctionDef, ast.AsyncFunctionDef)


def parse_comparator(text: str) -> Optional[str]:
    """The comparator's canonical spelling, or None when it is not a built-in one."""
    value = text.strip().lower()
    if value in ("eq", "repr", "type"):
        return value
    if value.startswith("approx:"):
        try:
            tolerance = float(value[len("approx:"):])
        except ValueError:
            return None
        if tolerance >= 0 and tolerance == tolerance and tolerance != float("inf"):
            return f"approx:{tolerance!r}"
    return None


def _defs(tree: ast.Module) -> Dict[str, ast.AST]:
    """Local qualname -> def node, for defs at module level and in class bodies."""
    found: Dict[str, ast.AST] = {}

    def walk(body: Sequence[ast.stmt], prefix: str) -> None:
        for stmt in body:
            if isinstance(stmt, _AnyDef):
                found.setdefault(prefix + stmt.name, stmt)  # a redefinition: the first def is the one a marker sits on
            elif isinstance(stmt, ast.ClassDef):
                walk(stmt.body, prefix + stmt.name + ".")
            elif isinstance(stmt, (ast.If, ast.Try)):  # `if TYPE_CHECKING:` / `try: ... except ImportError:` blocks
                for block in (getattr(stmt, "body", []), getattr(stmt, "orelse", []), getattr(stmt, "finalbody", [])):
                    walk(block, prefix)

    walk(tree.body, "")
    return found


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def _signature(node: ast.AST) -> str:
    """The call signature, as written (names, kinds, which have defaults), without annotations."""
    args = node.args  # type: ignore[attr-defined]
    positional = list(args.posonlyargs) + list(args.args)
    first_default = len(positional) - len(args.defaults)
    parts = []
    for index, arg in enumerate(positional):
        parts.append(arg.arg + ("=..." if index >= first_default else ""))
        if args.posonlyargs and index == len(args.posonlyargs) - 1:
            parts.append("/")
    if args.vararg is not None:
        parts.append("*" + args.vararg.arg)
    elif args.kwonlyargs:
        parts.append("*")
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        parts.append(arg.arg + ("=..." if default is not None else ""))
    if args.kwarg is not None:
        parts.append("**" + args.kwarg.arg)
    return "(" + ", ".join(parts) + ")"


def _unshadowable(node: ast.AST, qualname: str, yields: bool) -> Optional[str]:
    """Why this function cannot be an arm of a pair, or None."""
    if "<locals>" in qualname:
        return f"{qualname} is nested in a function"
    if isinstance(node, ast.AsyncFunctionDef):
        return f"{qualname} is async (not shadowed: both arms would have to be awaited by the caller)"
    if yields:
        return f"{qualname} is a generator (not shadowed: its results arrive one by one)"
    for decorator in node.decorator_list:  # type: ignore[attr-defined]
        name = _decorator_name(decorator)
        if name in _REFUSED_DECORATORS:
            return f"{qualname} is decorated with @{name}"
    return None


@dataclasses.dataclass
class _Resolution:
    control: Optional[str] = None  # local qualname
    node: Optional[ast.AST] = None
    problem: Optional[str] = None


def relative_target(name: str, module: str, is_package: bool) -> Tuple[str, str]:
    """``(module, function's local qualname)`` that a relative name means in ``module``,
    as ``from <dots><module> import`` would; ValueError says why it means none."""
    match = _RELATIVE_RE.match(name)
    if match is None:
        raise ValueError(f"replaces: {name!r} is not a function name")
    dots, dotted, local = match.groups()
    if local is None:
        dotted, _, local = dotted.rpartition(".")
        if not dotted:
            raise ValueError(f"replaces: {name!r} names no module (write {dots}module.function)")
    package = module.split(".") if is_package else module.split(".")[:-1]
    if not package:
        raise ValueError(f"replaces: {name!r} is relative, and {module or 'this script'} is not in a package")
    if len(dots) > len(package):
        raise ValueError(f"replaces: {name!r} reaches above the top-level package of {module or 'this script'}")
    base = package[:len(package) - len(dots) + 1]
    return ".".join(base + [dotted]), local


def _resolve(name: str, candidate: str, defs: Dict[str, ast.AST]) -> _Resolution:
    if not _NAME_RE.match(name):
        return _Resolution(problem=f"replaces: {name!r} is not a function name")
    scope = candidate.rpartition(".")[0]
    tried = ([f"{scope}.{name}"] if scope else []) + [name]
    for qualname in tried:
        node = defs.get(qualname)
        if node is not None:
            return _Resolution(control=qualname, node=node)
    return _Resolution(problem=f"replaces: no function {name!r} is defined in this module"
                               + (f" or in {scope}" if scope else ""))


def find_pairs(tree: ast.Module, module: str, functions: Sequence[Provenance],
               is_package: bool = False) -> Tuple[List[Provenance], List[Notice]]:
    """The records with each valid pair filled in (``Provenance.shadow`` on both arms, a
    ``control`` record for a replaced function of this module that carries no marker of
    its own), and a notice for each refused pair. ``is_package``: the tree is a package's
    ``__init__``, where a relative name starts from the package itself."""
    wanted = [f for f in functions if REPLACES_FIELD in f.marker.field_dict()]
    if not wanted:
        return list(functions), []
    defs = _defs(tree)
    records = list(functions)
    notices: List[Notice] = []
    taken: Dict[str, str] = {}  # local qualname -> the pair it is already in
    for candidate in wanted:
        fields = candidate.marker.field_dict()
        name = candidate.local_qualname
        replaces = fields[REPLACES_FIELD].strip()
        elsewhere: Optional[Tuple[str, str]] = None  # (module, local qualname) of a control in another module
        if replaces.startswith("."):
            try:
                elsewhere = relative_target(replaces, module, is_package)
            except ValueError as exc:
                resolved = _Resolution(problem=str(exc))
            else:
                if elsewhere[0] == module:  # `.this_module.f` from inside it: a same-module pair
                    resolved, elsewhere = _resolve(elsewhere[1], "", defs), None
                else:
                    resolved = _Resolution(control=f"{elsewhere[0]}.{elsewhere[1]}")
        else:
            resolved = _resolve(replaces, name, defs)
        problem = resolved.problem
        comparator = parse_comparator(fields.get(COMPARE_FIELD, DEFAULT_COMPARATOR))
        if problem is None and comparator is None:
            problem = (f"compare: {fields[COMPARE_FIELD]!r} is not a built-in comparator "
                       f"({', '.join(COMPARATORS)})")
        candidate_node = defs.get(name)
        if problem is None and (candidate_node is None or getattr(candidate_node, "lineno", 0) != candidate.def_line):
            problem = f"{name} is not defined directly in the module or a class body"
        control = resolved.control
        if problem is None and control == name:
            problem = f"{name} names itself"
        if problem is None:
            problem = _unshadowable(candidate_node, name, has_own_yield(candidate_node))
        if problem is None and elsewhere is None:
            problem = (_unshadowable(resolved.node, control, has_own_yield(resolved.node))
                       or _signatures_differ(candidate_node, name, resolved.node, control))
        if problem is None:
            for member in (name, control):
                if member in taken:
                    problem = f"{member} is already in the pair {taken[member]}"
                    break
        if problem is not None:
            notices.append(Notice(candidate.def_line, EXPERIMENT_REFUSED + problem))
            continue
        taken[name] = taken[control] = f"{name} replaces {control}"
        index = records.index(candidate)
        if elsewhere is not None:  # the other half is checked when that module's file is read
            records[index] = dataclasses.replace(candidate, shadow=(CANDIDATE, elsewhere[0], elsewhere[1], comparator))
            continue
        records[index] = dataclasses.replace(candidate, shadow=(CANDIDATE, module, control, comparator))
        marked = next((i for i, r in enumerate(records) if r.local_qualname == control), None)
        if marked is not None:
            records[marked] = dataclasses.replace(records[marked], shadow=(CONTROL, module, name, comparator))
        else:
            records.append(_control_record(resolved.node, control, module, candidate, comparator))
    records.sort(key=lambda r: r.def_line)
    return records, notices


def _signatures_differ(candidate: ast.AST, name: str, control: ast.AST, control_name: str) -> Optional[str]:
    if _signature(candidate) == _signature(control):
        return None
    return f"signatures differ: {name}{_signature(candidate)} and {control_name}{_signature(control)}"


def check_control(candidate_tree: ast.Module, candidate: Provenance, control_tree: ast.Module) -> Tuple[Optional[Provenance], Optional[str]]:
    """The other half of a cross-module pair (``candidate.shadow`` names a function of
    another module, whose syntax tree is ``control_tree``): the control's record, or why
    the pair is refused."""
    assert candidate.shadow is not None
    _, module, control, comparator = candidate.shadow
    node = _defs(control_tree).get(control)
    if node is None:
        return None, f"replaces: no function {control!r} is defined in {module}"
    qualified = f"{module}.{control}"
    problem = (_unshadowable(node, qualified, has_own_yield(node))
               or _signatures_differ(_defs(candidate_tree)[candidate.local_qualname], candidate.qualname, node, qualified))
    if problem is not None:
        return None, problem
    return _control_record(node, control, module, candidate, comparator), None


def _control_record(node: ast.AST, local_qualname: str, module: str, candidate: Provenance, comparator: str) -> Provenance:
    """The replaced function, which carries no marker: instrumented as the pair's control."""
    decorators = node.decorator_list  # type: ignore[attr-defined]
    return Provenance(
        qualname=f"{module}.{local_qualname}" if module else local_qualname,
        module=module,
        def_line=node.lineno,  # type: ignore[attr-defined]
        first_line=decorators[0].lineno if decorators else node.lineno,  # type: ignore[attr-defined]
        last_line=node.end_lineno or node.lineno,  # type: ignore[attr-defined]
        is_async=False,
        is_generator=False,
        is_async_generator=False,
        source=SOURCE_CONTROL,
        marker=Marker(tool=UNKNOWN_TOOL, fields=((REPLACED_BY_FIELD, candidate.qualname),)),
        shadow=(CONTROL, candidate.module, candidate.local_qualname, comparator),
    )
