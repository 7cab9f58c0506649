"""Runs the main script of ``aiotel-run python app.py`` exactly where Python runs it.

A main script never passes through an import hook, so aiotel must compile it. Rather
than running it from a runner (whose frames would sit under the script and cost it
recursion depth, and whose exception handling would have to imitate the interpreter's),
the launcher turns ``python [opts] app.py args`` into ``python [opts] <tmp>/app.pyc args``.
Python itself then runs that pyc as ``__main__``: same frame depth, same excepthook,
exit status, KeyboardInterrupt handling and atexit order as ``python app.py``.

This module writes that pyc, in the target interpreter, from sitecustomize, before Python
opens it: the script compiled with its own absolute path as the file name (aiotel
instruments it when it can), plus one first statement, ``fix(globals())``, that makes
the run indistinguishable from ``python app.py``: ``sys.argv[0]``, ``sys.path[0]``,
``__file__`` and ``__loader__`` back to the script's, and the temporary pyc removed.

Standard library only: it must work in an interpreter aiotel is not installed in.
"""

import ast
import importlib.machinery
import importlib.util
import json
import marshal
import os
import sys

_main = {}


def _insert_position(tree):
    """After the module docstring and ``from __future__`` imports, which must come first."""
    position = 0
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        if isinstance(body[0].value.value, str):
            position = 1
    while position < len(body) and isinstance(body[position], ast.ImportFrom) and body[position].module == "__future__":
        position += 1
    return position


def _fix_statement():
    # __import__('_aiotel_main').fix(globals()): binds no name in the script's namespace
    statement = ast.parse("__import__('_aiotel_main').fix(globals())").body[0]
    for node in ast.walk(statement):
        node.lineno = node.end_lineno = 1
        node.col_offset = node.end_col_offset = 0
    return statement


def _script_code(source, path):
    tree = compile(source, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    tree.body.insert(_insert_position(tree), _fix_statement())
    try:
        from aiotel.start import instrument_main
    except Exception as exc:
        sys.stderr.write(f"aiotel: not instrumenting {path}: cannot import aiotel ({type(exc).__name__}: {exc})\n")
    else:
        tree = instrument_main(tree, source, path)
    _end_with(tree, "__import__('_aiotel_main').ended()")
    return compile(tree, path, "exec", dont_inherit=True)


def _end_with(tree, text):
    """The script's statements (after its docstring and ``from __future__`` imports) in a
    ``try``, with ``text`` as its ``finally``: it runs when the script ends, however it
    ends, while the interpreter still works (Python 3.12 starts no thread, and 3.13's
    thread pools take no work, once it exits). Same frame, same lines."""
    position = _insert_position(tree)
    body = tree.body[position:]
    if not body:
        return
    final = ast.parse(text).body[0]
    wrapper = ast.Try(body=body, handlers=[], orelse=[], finalbody=[final])
    for node in ast.walk(final):
        node.lineno = node.end_lineno = 1
        node.col_offset = node.end_col_offset = 0
    wrapper.lineno, wrapper.col_offset = body[0].lineno, body[0].col_offset
    wrapper.end_lineno, wrapper.end_col_offset = body[-1].end_lineno, body[-1].end_col_offset
    tree.body[position:] = [wrapper]


def _failure_code(exc, status):
    _main["failure"] = (exc.with_traceback(None), status)  # Python shows no traceback for these
    return compile("__import__('_aiotel_main').fail()", "<aiotel>", "exec", dont_inherit=True)


def script_of(raw):
    """The script path in the launcher's AIOTEL_MAIN value, or None."""
    try:
        return json.loads(raw)["path"]
    except (ValueError, KeyError, TypeError):
        return None


def prepare(raw):
    """Write the pyc named in ``raw`` (the launcher's AIOTEL_MAIN value). Never raises."""
    try:
        info = json.loads(raw)
        _main.update(info)
    except ValueError:
        return
    path = info["path"]
    try:
        with open(path, "rb") as fh:
            source = fh.read()
    except OSError as exc:
        code = _failure_code(exc, 2)
    else:
        try:
            code = _script_code(source, path)
        except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes in the source
            code = _failure_code(exc, 1)
    data = importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code)
    try:
        with open(info["pyc"], "wb") as fh:
            fh.write(data)
    except OSError as exc:
        sys.stderr.write(f"aiotel: cannot write {info['pyc']} ({exc.strerror or exc})\n")


def fix(scope):
    """First statement of the script: undo every trace of the pyc detour."""
    try:
        script, path, pyc = _main["script"], _main["path"], _main["pyc"]
        if sys.argv:
            sys.argv[0] = script
        workdir = os.path.dirname(pyc)
        if sys.path and sys.path[0] in (workdir, os.path.realpath(workdir)):
            # what Python puts there for a script: its directory, symlinks resolved
            sys.path[0] = os.path.dirname(os.path.realpath(script))
        scope["__file__"] = path
        scope["__loader__"] = importlib.machinery.SourceFileLoader("__main__", path)
        os.unlink(pyc)
        os.rmdir(workdir)
    except Exception:
        pass


def ended():
    """The script's last statement (its ``finally``): aiotel's set-up, if still running in
    the background, is waited for (bounded) while new threads may still start."""
    try:
        background = sys.modules.get("aiotel.pipeline.background")
        if background is not None:
            background.settle_at_exit()
    except Exception:
        pass


def fail():
    """The script could not be read or compiled: say it as Python would, same exit status."""
    exc, status = _main["failure"]
    fix({})
    if isinstance(exc, OSError):
        sys.stderr.write(f"{sys.executable}: can't open file {_main['path']!r}: [Errno {exc.errno}] {exc.strerror}\n")
    else:
        sys.excepthook(type(exc), exc, None)  # a syntax error is shown without a traceback
    raise SystemExit(status)
