"""Facts about a function read from its syntax tree (``ast``), shared by the scanners."""

from __future__ import annotations

import ast
import threading
import warnings
from typing import Union

# catch_warnings swaps the process-wide filters: two imports parsing in two threads must
# not interleave, or one would restore the other's "ignore"
_WARNINGS_LOCK = threading.Lock()


def parse_quietly(source: Union[str, bytes], path: str) -> ast.Module:
    """The interpreter's own parse of ``source``, without the warnings (invalid escapes...)
    that the import compiling it will give, once, as it would without aiotel.
    SyntaxError/ValueError as ``compile`` raises them."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(source, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)


def has_own_yield(node: ast.AST) -> bool:
    """Whether the function itself yields (a ``yield`` in a nested def, lambda or class does not count)."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(child))
    return False
