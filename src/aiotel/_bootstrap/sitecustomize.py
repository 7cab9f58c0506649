"""aiotel's start-up hook: Python imports this because aiotel-run put its directory first
on PYTHONPATH. It starts aiotel, then runs the user's own sitecustomize, if any, the way
Python would have. It must never stop the program from starting.
"""


def _start_aiotel(main_script):
    try:
        from aiotel.start import instrument
    except Exception as exc:  # e.g. an interpreter aiotel is not installed in
        import os
        import sys

        if not os.environ.get("AIOTEL_UNREACHABLE"):  # aiotel-run said it already, with the fix
            sys.stderr.write(f"aiotel: not instrumenting this process ({sys.executable}): cannot import aiotel "
                             f"({type(exc).__name__}: {exc}); install aiotel for this interpreter\n")
        return
    instrument(main_script=main_script)


def _leave_sys_path_as_python_set_it():
    # The directory is on sys.path only to get this file imported; the program should see
    # the sys.path it would see without aiotel. PYTHONPATH keeps it for child processes.
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    return here


def _run_user_sitecustomize(here):
    import importlib.machinery
    import importlib.util
    import sys

    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None or spec.origin == __file__:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        # what site.py prints when a sitecustomize fails; start-up continues
        if sys.flags.verbose:
            sys.excepthook(*sys.exc_info())
        else:
            sys.stderr.write(
                "Error in sitecustomize; set PYTHONVERBOSE for traceback:\n" f"{type(exc).__name__}: {exc}\n"
            )


def _main_script():
    # aiotel-run python app.py: the launcher asks for app.py's pyc (see _aiotel_main)
    import os

    raw = os.environ.pop("AIOTEL_MAIN", None)  # popped: child processes are not the main run
    if raw is None:
        return None, None
    import _aiotel_main  # from this directory, while it is still on sys.path

    return (lambda: _aiotel_main.prepare(raw)), _aiotel_main.script_of(raw)


_prepare_main, _script = _main_script()
_here = _leave_sys_path_as_python_set_it()
_start_aiotel(_script)
if _prepare_main is not None:
    _prepare_main()
_run_user_sitecustomize(_here)
