"""Scripts run by ``runpy.run_path``: spawn and forkserver children's ``__mp_main__``.

A multiprocessing child started by spawn or forkserver runs the parent's main script
again, as ``__mp_main__``, through ``runpy.run_path``: it never passes through the import
hook, and without this its marked functions would run uninstrumented there (and in any
program that runs a script with ``run_path``). ``install`` wraps runpy's helper that
compiles the script, so the code it returns has the script's marked functions
instrumented exactly as the main script's are (same names, so a child's counts join its
parent's series). A pyc given to ``run_path``, a script out of scope, or any failure:
the code runpy compiled, untouched.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

_WRAPPED = "__aiotel_wrapped__"


def install() -> None:
    """Wrap ``runpy._get_code_from_file`` (private, stable from 3.9 to 3.13: it takes
    ``(run_name, fname)`` and returns ``(code, fname)`` up to 3.11, then ``fname`` and
    returns ``code``). A runpy without it is left alone."""
    runpy = sys.modules.get("runpy")
    original = getattr(runpy, "_get_code_from_file", None)
    if original is None or getattr(original, _WRAPPED, False):
        return

    def get_code_from_file(*args: Any) -> Any:
        result = original(*args)
        try:
            code = result[0] if isinstance(result, tuple) else result
            instrumented = _instrumented(code, args[-1])
        except Exception:
            return result
        if instrumented is code:
            return result
        return (instrumented,) + tuple(result[1:]) if isinstance(result, tuple) else instrumented

    setattr(get_code_from_file, _WRAPPED, True)
    runpy._get_code_from_file = get_code_from_file  # type: ignore[union-attr]


def _instrumented(code: Any, fname: Any) -> Any:
    path = os.path.abspath(os.fsdecode(fname))
    if not path.endswith(".py") or code.co_filename != fname:
        return code  # a pyc, or compiled under another name: not ours to redo
    with io.open_code(path) as fh:
        source = fh.read()
    import ast

    from .mainscript import instrument_main

    tree = compile(source, fname, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    instrumented = instrument_main(tree, source, path)
    if instrumented is tree:
        return code
    return compile(instrumented, fname, "exec", dont_inherit=True)
