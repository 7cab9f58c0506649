"""Telemetry survives the ways processes end and multiply.

- Normal exit: a bounded flush runs from ``atexit``. Before it, when the main thread has
  finished (threading's own exit callbacks, before ``concurrent.futures`` stops), the
  set-up that the first marked call started in the background is waited for.
- SIGTERM with the default action (which ends the process without running ``atexit``):
  a handler flushes within ``AIOTEL_SHUTDOWN_TIMEOUT``, then restores the default action
  and re-sends the signal, so the exit status is the one the program has without aiotel
  (killed by SIGTERM). A handler the program installs replaces ours, as it replaces the
  default; ``SIG_IGN`` is left alone. SIGINT needs nothing: Python's default handler
  raises ``KeyboardInterrupt``, the program unwinds and ``atexit`` flushes. Python then
  ends by SIGINT only if no code run after the main module went through ``PyRun_*`` (an
  import of protobuf's C extension does, and the background set-up may import it then):
  when the main module ended by an uncaught ``KeyboardInterrupt`` and modules were
  imported since, the flag is set again the way Python set it (see ``_keep_interrupted_exit``).
- Exporter threads start after the first call of a marked function (see
  ``providers.Pipeline`` and ``background``), so a program that forks before that stays
  single-threaded; a fork while they are being set up waits for the set-up.
- ``os.fork``: the child starts its counts from zero (the parent reports its own), and the
  SDK restarts its exporter threads and renews ``service.instance.id``. ``multiprocessing``
  children (fork, forkserver) end with ``os._exit``, which skips ``atexit``: they flush
  through a ``multiprocessing`` finalizer instead. Spawned children are fresh interpreters
  that start aiotel from ``PYTHONPATH`` and exit normally; the main script they run again
  as ``__mp_main__`` is instrumented by ``rewriting.runpath``.
- Celery's prefork pool processes end with ``os._exit`` too: see ``worker_pools``.
- ``os._exit`` anywhere else skips every exit handler: what was not exported yet is lost.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from typing import Any, List, Optional

from . import background, losses, worker_pools

_pipeline: Optional[Any] = None
# When the main thread finished: whether an uncaught KeyboardInterrupt ended it, and how
# many modules were loaded then
_main_end: List[Any] = [False, 0]
_waits_at_main_end = False


def _on_terminate(signum: int, frame: Any) -> None:
    try:
        if _pipeline is not None:
            _pipeline.shutdown()
    finally:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _flush_at_multiprocessing_exit() -> None:
    """In a multiprocessing child: flush when its bootstrap runs the exit finalizers."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or _pipeline is None:
        return
    # Process._bootstrap clears the finalizers it inherited, then runs the after-fork
    # hooks: registering from one of those survives the clearing.
    util.register_after_fork(_pipeline, lambda pipeline: util.Finalize(None, pipeline.shutdown, exitpriority=-100))


def _after_fork_in_child() -> None:
    try:
        probes = sys.modules.get("aiotel.probes")  # loaded with the first marked module
        if probes is not None:
            probes.reset_counts()
            probes.traces.forget_all()
        losses.reset()
        metrics = sys.modules.get("aiotel.pipeline.metrics")  # loaded with the first marked call
        if metrics is not None:
            metrics.reset_after_fork()
        if _pipeline is not None:
            _pipeline.forked()
        _flush_at_multiprocessing_exit()
    except Exception:
        pass


def _main_ended() -> None:
    """The main thread has finished: the background set-up gets half the exit budget."""
    try:
        ended = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)  # set by PyErr_Print
        interactive = sys.flags.interactive or hasattr(sys, "ps1")
        _main_end[:] = [isinstance(ended, KeyboardInterrupt) and not interactive, len(sys.modules)]
        if _pipeline is not None:
            background.settle(_pipeline.timeout / 2)
    except Exception:
        pass


def _keep_interrupted_exit() -> None:
    """Python ends by SIGINT after an uncaught KeyboardInterrupt if a flag it set is still
    set; every ``PyRun_*`` call clears it, and sets it when the code it runs raises
    KeyboardInterrupt. So, after an import since the main module ended: run such code."""
    if not _main_end[0] or len(sys.modules) == _main_end[1]:
        return
    try:
        import ctypes

        run = ctypes.pythonapi.PyRun_String
        run.restype = ctypes.py_object
        run.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object]
        run(b"raise KeyboardInterrupt", 257, {}, {})  # 257: Py_file_input
    except KeyboardInterrupt:
        pass
    except Exception:
        pass


def _at_exit() -> None:
    if _pipeline is not None:
        _pipeline.shutdown()
    _keep_interrupted_exit()


def wait_for_set_up_at_main_end() -> None:
    """Once the tracer provider is built (nothing is set up in the background before):
    when the main thread finishes, wait for the set-up, before ``concurrent.futures``
    stops its pools (the set-up's imports use one). Registered after that module's own
    hook, so it runs first."""
    global _waits_at_main_end
    if _waits_at_main_end:
        return
    _waits_at_main_end = True
    try:
        import concurrent.futures.thread  # noqa: F401  (registers its exit hook, if not yet)

        threading._register_atexit(_main_ended)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError, ImportError):
        pass


def install(pipeline: Any) -> None:
    """Hook ``pipeline`` into exit, SIGTERM and fork; call once, from the main thread."""
    global _pipeline
    first = _pipeline is None
    _pipeline = pipeline
    if not first:
        return
    # Registered early, so it runs after the program's own atexit handlers (LIFO),
    # which may still call marked functions.
    atexit.register(_at_exit)
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_terminate)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM here
        pass
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
    worker_pools.install(lambda: _pipeline.shutdown(hurry=True) if _pipeline is not None else None)
