"""Facts about a function read from its syntax tree (``ast``), shared by the scanners."""

from __future__ import annotations

import ast


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
