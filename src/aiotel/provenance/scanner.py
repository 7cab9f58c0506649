"""Source bytes to provenance records, with libcst (``ast`` drops comments).

Pure: no file system, no OpenTelemetry. ``scan_source`` never raises; a file it
cannot read comes back with ``skipped`` saying why.
"""

from __future__ import annotations

import os
import dataclasses
import unicodedata
from typing import Dict, List, Optional, Sequence, Set, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from . import grammar
from .decode import MAX_SOURCE_BYTES, Unreadable, decode_source
from .grammar import DEFAULT_MARKERS, MarkerConfig
from .pairs import find_pairs
from .syntax import parse_quietly
from .prefilter import Prefilter
from .records import (
    SOURCE_CLASS,
    SOURCE_COMMENT,
    SOURCE_DECORATOR,
    SOURCE_MODULE,
    UNKNOWN_TOOL,
    Marker,
    Notice,
    Provenance,
    ScanResult,
    sorted_fields,
)

_DECORATOR_NAME = "ai_generated"


def scan_source(
    data: bytes,
    path: str,
    module: str,
    config: MarkerConfig = DEFAULT_MARKERS,
    prefilter: Optional[Prefilter] = None,
    max_bytes: int = MAX_SOURCE_BYTES,
) -> ScanResult:
    """Every marked function in ``data`` (the bytes of the file at ``path``, imported as ``module``)."""
    if not (prefilter or Prefilter(config)).may_have_markers(data):
        return ScanResult(path=path, module=module)
    return scan_candidate(data, path, module, config, max_bytes)


def scan_candidate(
    data: bytes, path: str, module: str, config: MarkerConfig = DEFAULT_MARKERS, max_bytes: int = MAX_SOURCE_BYTES
) -> ScanResult:
    """``scan_source`` for bytes that already passed the pre-filter."""
    try:
        text = decode_source(data, max_bytes)
        if isinstance(text, Unreadable):
            return ScanResult(path=path, module=module, skipped=str(text))
        return _scan_text(text, path, module, config)
    except RecursionError:
        return ScanResult(path=path, module=module, skipped="source is nested too deeply to scan")
    except MemoryError:
        return ScanResult(path=path, module=module, skipped="out of memory while scanning")
    except Exception as exc:  # the scanner must never take the user's program down
        return ScanResult(path=path, module=module, skipped=f"internal scanner error: {type(exc).__name__}: {exc}")


def _scan_text(text: str, path: str, module: str, config: MarkerConfig) -> ScanResult:
    # The interpreter's own parser goes first: its verdict is the one that matters, its
    # messages are the ones users know, and it bounds nesting before libcst recurses.
    try:
        syntax = parse_quietly(text, path)
    except SyntaxError as exc:
        return ScanResult(path=path, module=module, skipped=f"syntax error at line {exc.lineno}: {exc.msg}")
    except ValueError as exc:
        return ScanResult(path=path, module=module, skipped=f"not valid source: {exc}")
    try:
        tree = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        return ScanResult(
            path=path, module=module, skipped=f"libcst cannot parse this file (line {exc.raw_line}): {exc.message}"
        )
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    walker = _Walker(module, config, tree)
    wrapper.visit(walker)
    functions, refused = find_pairs(syntax, module, walker.functions, os.path.basename(path) == "__init__.py")
    return ScanResult(
        path=path,
        module=module,
        functions=tuple(functions),
        notices=tuple(sorted(walker.finish() + refused, key=lambda n: n.line)),
    )


@dataclasses.dataclass
class _Scope:
    kind: str  # "module", "class", "function", "lambda"
    name: str
    marker: Optional[Tuple[str, Marker]]  # (source, marker) this scope hands down to what it contains
    ignored: bool
    has_yield: bool = False


@dataclasses.dataclass
class _Found:
    """What the comments and decorators right above one def or class say."""

    marker: Optional[Marker] = None
    marker_line: int = 0
    decorator_marker: Optional[Marker] = None
    ignored: bool = False


def _leading_block_split(lines: Sequence[cst.EmptyLine]) -> Tuple[List[cst.Comment], List[cst.Comment]]:
    """(comments before the last blank line, the comments directly above what follows)."""
    last_blank = -1
    for index, line in enumerate(lines):
        if line.comment is None:
            last_blank = index
    head = [line.comment for line in lines[: last_blank + 1] if line.comment is not None]
    tail = [line.comment for line in lines[last_blank + 1 :] if line.comment is not None]
    return head, tail


def _trailing_block(lines: Sequence[cst.EmptyLine]) -> List[cst.Comment]:
    """The comments directly above what follows: a blank line breaks the link."""
    return _leading_block_split(lines)[1]


class _Walker(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, module: str, config: MarkerConfig, tree: cst.Module) -> None:
        super().__init__()
        self._module = module
        self._config = config
        self._tree = tree
        self.functions: List[Provenance] = []
        self._notices: List[Notice] = []
        self._all_comments: List[Tuple[cst.Comment, int]] = []
        self._trailing_comments: Set[int] = set()
        self._consumed: Set[int] = set()
        self._first_statement_block: List[cst.Comment] = []
        # Generator flags are only known when a def is left: its record waits here.
        self._pending: Dict[int, tuple] = {}
        self._scopes: List[_Scope] = []

    # -- positions and notices -------------------------------------------------

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _notice(self, line: int, message: str) -> None:
        self._notices.append(Notice(line, message))

    def finish(self) -> List[Notice]:
        # Called after the visit, when positions are no longer available: lines were kept.
        for comment, line in self._all_comments:
            if id(comment) in self._consumed:
                continue
            is_marker = grammar.marker_text(comment.value, self._config) is not None
            if not (is_marker or grammar.is_ignore_comment(comment.value)):
                continue
            what = "marker" if is_marker else "`aiotel: ignore`"
            if id(comment) in self._trailing_comments:
                self._notice(line, f"{what} after code on the same line does not count; ignored")
            else:
                self._notice(
                    line,
                    f"{what} is not directly above a def or class (a blank line breaks the link); ignored",
                )
        return self._notices

    def visit_Module(self, node: cst.Module) -> None:
        # Positions are only available once the wrapper visits, hence not in __init__.
        module_marker, module_ignored = self._module_header(node)
        self._scopes.append(_Scope("module", self._module, module_marker, module_ignored))

    def visit_Comment(self, node: cst.Comment) -> None:
        self._all_comments.append((node, self._line(node)))

    def visit_TrailingWhitespace(self, node: cst.TrailingWhitespace) -> None:
        if node.comment is not None:
            self._trailing_comments.add(id(node.comment))

    # -- markers in comments -----------------------------------------------------

    def _markers_in(self, block: Sequence[cst.Comment], found: _Found) -> None:
        """Read the markers and opt-outs of one comment block into ``found``; the lowest wins."""
        index = 0
        while index < len(block):
            comment = block[index]
            if grammar.is_ignore_comment(comment.value):
                self._consumed.add(id(comment))
                found.ignored = True
                index += 1
                continue
            started = grammar.marker_text(comment.value, self._config)
            if started is None:
                index += 1
                continue
            spelling, text = started
            lines = [comment.value]
            self._consumed.add(id(comment))
            index += 1
            while index < len(block) and grammar.continues_marker(text, block[index].value):
                text = f"{text} {grammar.continuation_text(block[index].value)}"
                lines.append(block[index].value)
                self._consumed.add(id(block[index]))
                index += 1
            line = self._line(comment)
            marker, problems = grammar.parse_marker(lines, spelling, text, self._config)
            for problem in problems:
                self._notice(line, f"marker: {problem}")
            if found.marker is not None:
                self._notice(found.marker_line, f"marker superseded by the one at line {line}")
            found.marker, found.marker_line = marker, line

    def _module_header(self, tree: cst.Module) -> Tuple[Optional[Tuple[str, Marker]], bool]:
        header_lines: List[cst.EmptyLine] = list(tree.header)
        first = tree.body[0] if tree.body else None
        if isinstance(first, (cst.FunctionDef, cst.ClassDef)):
            # libcst files the comments right above a first def under the module
            # header; directly above the def they are the def's, as anywhere else.
            if first.leading_lines:
                region = [line.comment for line in header_lines if line.comment is not None]
            else:
                region, self._first_statement_block = _leading_block_split(header_lines)
        else:
            if first is not None:
                header_lines += list(first.leading_lines)
            region = [line.comment for line in header_lines if line.comment is not None]
        found = _Found()
        self._markers_in(region, found)
        return ((SOURCE_MODULE, found.marker) if found.marker else None), found.ignored

    # -- decorator markers ------------------------------------------------------------

    def _decorator_marker(self, decorators: Sequence[cst.Decorator]) -> Optional[Marker]:
        for decorator in decorators:
            expr = decorator.decorator
            call = expr if isinstance(expr, cst.Call) else None
            target = call.func if call is not None else expr
            name = target.attr.value if isinstance(target, cst.Attribute) else getattr(target, "value", None)
            if name != _DECORATOR_NAME:
                continue
            line = self._line(decorator)
            values: Dict[str, str] = {}
            for position, arg in enumerate(call.args if call is not None else ()):
                key = arg.keyword.value if arg.keyword is not None else ("tool" if position == 0 else None)
                value = _literal_string(arg.value)
                if key is None or value is None:
                    self._notice(line, f"@{_DECORATOR_NAME} argument {position + 1} is not a string literal; ignored")
                    continue
                values[key] = value
            tool = values.pop("tool", None) or UNKNOWN_TOOL
            date = values.pop("date", None)
            prompt = values.pop("prompt", None)
            raw = "@" + self._tree.code_for_node(expr)
            return Marker(tool=tool, date=date, prompt=prompt, fields=sorted_fields(list(values.items())), raw=raw)
        return None

    def _found_for(
        self,
        node: cst.CSTNode,
        leading: Sequence[cst.EmptyLine],
        decorators: Sequence[cst.Decorator],
        after: Sequence[cst.EmptyLine],
    ) -> _Found:
        found = _Found()
        blocks = [_trailing_block(leading)]
        if self._first_statement_block and node is self._tree.body[0]:
            blocks.insert(0, self._first_statement_block)
        blocks += [_trailing_block(d.leading_lines) for d in decorators]
        blocks.append(_trailing_block(after))
        for block in blocks:
            self._markers_in(block, found)
        found.decorator_marker = self._decorator_marker(decorators)
        return found

    # -- scopes -------------------------------------------------------------------------

    def _enclosing_marker(self) -> Optional[Tuple[str, Marker]]:
        for scope in reversed(self._scopes):
            if scope.kind in ("class", "module") and scope.marker is not None:
                return scope.marker
        return None

    def _qualname(self, name: str) -> str:
        parts = []
        for scope in self._scopes[1:]:
            parts.append(f"{scope.name}.<locals>" if scope.kind == "function" else scope.name)
        parts.append(name)
        local = ".".join(parts)
        return f"{self._module}.{local}" if self._module else local

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        found = self._found_for(node, node.leading_lines, node.decorators, node.lines_after_decorators)
        own = found.decorator_marker or found.marker
        marker = (SOURCE_CLASS, own) if own is not None else None
        ignored = found.ignored or self._scopes[-1].ignored
        self._scopes.append(_Scope("class", _identifier(node.name), marker, ignored))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._scopes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        found = self._found_for(node, node.leading_lines, node.decorators, node.lines_after_decorators)
        ignored = found.ignored or self._scopes[-1].ignored
        chosen: Optional[Tuple[str, Marker]] = None
        if found.decorator_marker is not None:
            chosen = (SOURCE_DECORATOR, found.decorator_marker)
        elif found.marker is not None:
            chosen = (SOURCE_COMMENT, found.marker)
        else:
            chosen = self._enclosing_marker()
        name = _identifier(node.name)
        qualname = self._qualname(name)
        scope = _Scope("function", name, None, ignored)
        scope_index = len(self.functions)
        self._scopes.append(scope)
        if chosen is not None and not ignored:
            position = self.get_metadata(PositionProvider, node)
            first_line = self._line(node.decorators[0]) if node.decorators else position.start.line
            last_line = self._last_line(node)
            is_async = node.asynchronous is not None
            self._pending[id(scope)] = (scope_index, qualname, position.start.line, first_line, last_line, chosen, is_async)
            self.functions.append(None)  # type: ignore[arg-type]  # keeps records in source order

    def _last_line(self, node: cst.FunctionDef) -> int:
        body = node.body
        if isinstance(body, cst.IndentedBlock) and body.body:
            return self.get_metadata(PositionProvider, body.body[-1]).end.line
        return self.get_metadata(PositionProvider, node).end.line

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        scope = self._scopes.pop()
        pending = self._pending.pop(id(scope), None)
        if pending is None:
            return
        index, qualname, def_line, first_line, last_line, (source, marker), is_async = pending
        self.functions[index] = Provenance(
            qualname=qualname,
            module=self._module,
            def_line=def_line,
            first_line=first_line,
            last_line=last_line,
            is_async=is_async,
            is_generator=scope.has_yield and not is_async,
            is_async_generator=scope.has_yield and is_async,
            source=source,
            marker=marker,
        )

    def visit_Lambda(self, node: cst.Lambda) -> None:
        # Lambdas are not instrumented (no def, no name, no place for a marker), but a
        # `yield` inside one makes the lambda a generator, not the enclosing def.
        self._scopes.append(_Scope("lambda", "<lambda>", None, True))

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._scopes.pop()

    def visit_Yield(self, node: cst.Yield) -> None:
        for scope in reversed(self._scopes):
            if scope.kind in ("function", "lambda"):
                scope.has_yield = True
                return


def _identifier(name: cst.Name) -> str:
    """The name as the interpreter stores it: identifiers are NFKC-normalized (PEP 3131)."""
    value = name.value
    return value if value.isascii() else unicodedata.normalize("NFKC", value)


def _literal_string(node: cst.BaseExpression) -> Optional[str]:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None
