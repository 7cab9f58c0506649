"""Instruments the main script of ``aiotel-run python app.py``.

The mechanics (a pyc that Python runs as ``__main__`` in place of the script) live in
the bootstrap directory's ``_aiotel_main``, which must work without aiotel; this is the
part that needs aiotel: scan the script and rewrite its marked functions.
"""

from __future__ import annotations

import ast
import copy
import os

from . import bootstrap, log


def instrument_main(tree: ast.Module, source: bytes, path: str) -> ast.Module:
    """``tree`` with the script's marked functions instrumented; ``tree`` itself if anything fails."""
    if not bootstrap.started():
        return tree
    try:
        from . import importhook
        from .rewrite import rewrite_module

        hook = importhook.active_hook()
        module_name = os.path.splitext(os.path.basename(path))[0]
        if hook is None or not hook.scope.wants(module_name, path):
            return tree
        result = hook.scan(source, path, module_name, os.stat(path))
        if result.functions:
            candidate = copy.deepcopy(tree)  # a failure half-way must not leave a broken tree
            rewrite_module(candidate, result.functions, path, hook.options)
            return candidate
    except Exception as exc:
        log.warn(f"could not instrument {path} ({type(exc).__name__}: {exc}); it runs uninstrumented")
    return tree
