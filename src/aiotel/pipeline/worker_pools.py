"""Worker pools whose processes end with ``os._exit``, which runs no ``atexit`` handler.

- Celery's prefork pool (billiard): a pool process sends Celery's
  ``worker_process_shutdown`` signal just before its ``os._exit``, on a warm shutdown and
  at each recycling (``--max-tasks-per-child``, ``--max-memory-per-child``): the flush
  runs from a receiver connected once ``celery.signals`` is imported.
- ``multiprocessing`` pools: ``lifecycle`` flushes from the finalizers that a pool
  process runs before its ``os._exit``.
- gunicorn workers leave by ``SystemExit`` (``--max-requests``, a graceful stop), so
  the normal exit flush runs; nothing here.

A cold shutdown (SIGKILL) runs nothing: what was not exported yet is lost.
"""

from __future__ import annotations

from typing import Any, Callable

_flush: Callable[[], None] = lambda: None


def _pool_process_ends(**_: Any) -> None:
    try:
        _flush()
    except Exception:
        pass


def _connect_celery() -> None:
    try:
        from celery import signals

        signals.worker_process_shutdown.connect(_pool_process_ends, weak=False)
    except Exception:  # a Celery laid out otherwise: its pool processes are not flushed
        from .. import log

        log.warn("Celery's worker_process_shutdown signal is unavailable: its pool processes may exit unflushed")


def install(flush: Callable[[], None]) -> None:
    """``flush`` runs where a pool process ends without exit handlers."""
    global _flush
    from .libraries import when_imported

    _flush = flush
    when_imported("celery.signals", _connect_celery)
