"""Instruments the main script of ``aiotel-run python app.py``.

The mechanics (a pyc that Python runs as ``__main__`` in place of the script) live in
the bootstrap directory's ``_aiotel_main``, which must work without aiotel; this is the
part that needs aiotel: scan the script and rewrite its marked functions.
"""

from __future__ import annotations

import ast
import copy
import os

from .. import log


def instrument_main(tree: ast.Module, source: bytes, path: str) -> ast.Module:
    """``tree`` with the script's marked functions instrumented; ``tree`` itself if anything
    fails. Called (through ``aiotel.start``) only once aiotel has started."""
    try:
        from . import importhook
        from .rewrite import rewrite_module
        from .selection import select

        hook = importhook.active_hook()
        module_name = os.path.splitext(os.path.basename(path))[0]
        if hook is None or hook.scope.why_not(module_name, path) is not None:
            return tree  # out of scope: not even scanned
        selection = select(hook.scope, module_name, path, hook.scan(source, path, module_name, os.stat(path)))
        if selection.functions:
            candidate = copy.deepcopy(tree)  # a failure half-way must not leave a broken tree
            rewrite_module(candidate, selection.functions, path, hook.options, source)
            return candidate
    except Exception as exc:
        log.warn(f"could not instrument {path} ({type(exc).__name__}: {exc}); it runs uninstrumented")
    return tree
