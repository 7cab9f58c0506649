"""Telemetry survives the ways processes end and multiply.

- Normal exit: ``setup`` registers a bounded flush with ``atexit``.
- SIGTERM with the default action (which ends the process without running ``atexit``):
  a handler flushes within ``AIOTEL_SHUTDOWN_TIMEOUT``, then restores the default action
  and re-sends the signal, so the exit status is the one the program has without aiotel
  (killed by SIGTERM). A handler the program installs replaces ours, as it replaces the
  default; ``SIG_IGN`` is left alone. SIGINT needs nothing: Python's default handler
  raises ``KeyboardInterrupt``, the program unwinds and ``atexit`` flushes. Python then
  ends by SIGINT only if no code run from an exit handler went through ``PyRun_*`` (an
  import of protobuf's C extension does): exporters load their encoders when built.
- Exporter threads start with the first call of a marked function (see
  ``setup.Pipeline``), so a program that forks before that stays single-threaded.
- ``os.fork``: the child starts its counts from zero (the parent reports its own), and the
  SDK restarts its exporter threads and renews ``service.instance.id``. ``multiprocessing``
  children (fork, forkserver) end with ``os._exit``, which skips ``atexit``: they flush
  through a ``multiprocessing`` finalizer instead. Spawned children are fresh interpreters
  that start aiotel from ``PYTHONPATH`` and exit normally; the main script they run again
  as ``__mp_main__`` is instrumented by ``rewriting.runpath``.
- ``os._exit`` anywhere else skips every exit handler: what was not exported yet is lost.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Optional

from . import losses
from .. import probes

_pipeline: Optional[Any] = None


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
        probes.reset_counts()
        losses.reset()
        probes.traces.forget_all()
        metrics = sys.modules.get("aiotel.pipeline.metrics")  # loaded with the first marked call
        if metrics is not None:
            metrics.reset_after_fork()
        if _pipeline is not None:
            _pipeline.forked()
        _flush_at_multiprocessing_exit()
    except Exception:
        pass


def install(pipeline: Any) -> None:
    """Hook ``pipeline`` into SIGTERM and fork; call once, from the main thread."""
    global _pipeline
    first = _pipeline is None
    _pipeline = pipeline
    if not first:
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_terminate)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM here
        pass
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
