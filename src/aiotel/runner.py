"""Runs the main script of ``aiotel-run python app.py`` as ``python app.py`` would, instrumented.

A main script never passes through an import hook, so, like coverage.py's ``PyRunner``,
aiotel compiles it itself. The launcher turns ``python [opts] app.py args`` into
``python [opts] -c <glue> app.py args``; the glue (``_aiotel_run_main`` in the bootstrap
directory) calls ``prepare`` and then runs the code with ``exec`` in the ``-c`` frame, so
the script's module code runs one frame deeper than under plain Python, no more.

CPython details copied, each checked against the interpreter in the tests:
- ``sys.argv`` is the script as typed plus its arguments;
- ``sys.path[0]`` is the directory of the script with symlinks resolved (``-c`` put ''
  there; with ``-P``/``safe_path`` Python adds nothing and neither do we);
- ``__main__`` has ``__file__`` absolute (3.9+), ``__spec__``/``__package__``/``__cached__``
  None and a ``SourceFileLoader``; code objects carry the absolute path;
- an uncaught exception goes through ``sys.excepthook`` with the runner's frames trimmed,
  ``sys.last_*`` set, exit status 1; ``SystemExit`` passes through unchanged;
- ``KeyboardInterrupt`` ends the process by SIGINT after the exit handlers, as Python 3.8+ does.
"""

from __future__ import annotations

import atexit
import builtins
import importlib.machinery
import os
import signal
import sys
import types
from typing import Any, Dict, List, Tuple

from . import log


def _main_module(path: str) -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    if "__annotations__" in vars(sys.modules["__main__"]):  # present before 3.14
        module.__annotations__ = {}
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    module.__file__ = path
    module.__cached__ = None  # type: ignore[attr-defined]
    return module


def _compile(source: bytes, path: str) -> types.CodeType:
    """The script's code, instrumented when aiotel is active and it has marked functions."""
    from . import bootstrap

    if bootstrap.started():
        try:
            from . import importhook

            hook = next((f for f in sys.meta_path if isinstance(f, importhook.ImportHook)), None)
            module_name = os.path.splitext(os.path.basename(path))[0]
            if hook is not None and hook.scope.wants(module_name, path):
                result = hook.scanner.scan_bytes(source, path, module_name, os.stat(path))
                importhook.report_scan_problems(result)
                if result.functions:
                    code = importhook.instrumented_code(source, path, result.functions)
                    if code is not None:
                        return code
        except SyntaxError:
            pass  # compiled again below, so Python reports it exactly as it would
        except Exception as exc:
            log.warn(f"could not instrument {path} ({type(exc).__name__}: {exc}); it runs uninstrumented")
    return compile(source, path, "exec", dont_inherit=True)


def prepare(argv: List[str]) -> Tuple[Any, Dict[str, Any]]:
    """Set up ``sys`` for ``argv`` = [script, args...]; return (code, globals) for ``exec``.

    A script that cannot be read or compiled ends the process the way Python would.
    """
    script = argv[0]
    path = os.path.abspath(script)
    sys.argv[:] = list(argv)
    if sys.path and sys.path[0] == "":
        sys.path[0] = os.path.dirname(os.path.realpath(script))
    try:
        with open(path, "rb") as fh:
            source = fh.read()
    except OSError as exc:
        # python's own message for a missing script, exit status 2
        sys.stderr.write(f"{sys.executable}: can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}\n")
        raise SystemExit(2)
    module = _main_module(path)
    try:
        code = _compile(source, path)
    except SyntaxError as exc:
        uncaught(exc.with_traceback(None))  # Python shows a script's syntax error without a traceback
    sys.modules["__main__"] = module
    return code, module.__dict__


def _trim(tb: Any) -> Any:
    """Drop the ``-c`` glue frame: the traceback starts at the script, as under plain Python."""
    if tb is not None and tb.tb_frame.f_code.co_filename == "<string>" and tb.tb_next is not None:
        return tb.tb_next
    return tb


def uncaught(exc: BaseException) -> None:
    """What Python does with an exception that leaves the main script. Never returns."""
    if isinstance(exc, SystemExit):
        raise exc
    tb = _trim(exc.__traceback__)
    exc.__traceback__ = tb
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = exc  # type: ignore[attr-defined]
    try:
        sys.excepthook(type(exc), exc, tb)
    except BaseException:
        pass
    if isinstance(exc, KeyboardInterrupt):
        _exit_like_sigint()
    raise SystemExit(1)


def _exit_like_sigint() -> None:
    # Python 3.8+: an unhandled KeyboardInterrupt ends the process with SIGINT (status
    # -2 / 130 in a shell) once the exit handlers ran, so the parent sees an interrupt.
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
