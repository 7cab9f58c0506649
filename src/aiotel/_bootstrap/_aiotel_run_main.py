"""Glue for ``aiotel-run python app.py``. The launcher runs ``python -c`` with code that
imports this module, calls ``start()``, then ``exec``s the returned code in its own frame
and hands any exception to ``uncaught``. Kept apart from aiotel so that an interpreter
aiotel is not installed in still runs the script, plainly.
"""

import sys


def start():
    """(code, globals) of the script named by ``sys.argv[1]``; ``sys`` set up as for ``python script``."""
    try:
        from aiotel.runner import prepare
    except Exception as exc:
        sys.stderr.write(f"aiotel: not instrumenting {sys.argv[1]}: cannot import aiotel ({type(exc).__name__}: {exc})\n")
        return _plain()
    return prepare(sys.argv[1:])


def _plain():
    import os

    sys.argv[:] = sys.argv[1:]
    if sys.path and sys.path[0] == "":
        sys.path[0] = os.path.dirname(os.path.realpath(sys.argv[0]))
    code = compile("import runpy\nrunpy.run_path(__aiotel_script__, run_name='__main__')\n", "<aiotel>", "exec")
    return code, {"__aiotel_script__": sys.argv[0]}


def uncaught(exc):
    try:
        from aiotel.runner import uncaught as handle
    except Exception:
        raise exc from None
    handle(exc)
