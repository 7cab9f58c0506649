"""What the pipeline lost and must say so, as plain counters.

- spans that never reached their destination, by reason: the export queue was full
  (``queue_full``), the exporter failed (``export_failed``: collector down, store
  unwritable), the store rotated out the file that held them (``store_rotated``), or
  the process exited before they were exported and no spill took them (``exit_deadline``:
  counted before the last metric export, so it carries them);
- metric exports that failed (cumulative points: the next export that succeeds carries
  the totals, so this counts attempts, not lost calls).

The metrics bridge reads them as ``aiotel.spans.dropped`` and ``aiotel.metrics.exports_failed``;
the store keeps them, and ``aiotel report`` and ``aiotel doctor`` show them."""

from __future__ import annotations

import threading
from typing import Dict

QUEUE_FULL = "queue_full"
EXPORT_FAILED = "export_failed"
STORE_ROTATED = "store_rotated"
EXIT_DEADLINE = "exit_deadline"

_spans: Dict[str, int] = {}
_metric_exports_failed = [0]
_lock = threading.Lock()  # exporter threads and the application's count at once


def span_dropped() -> None:
    """One finished span had no room in the export queue (called under the queue's lock)."""
    spans_lost(QUEUE_FULL, 1)


def spans_lost(reason: str, count: int) -> None:
    with _lock:
        _spans[reason] = _spans.get(reason, 0) + count


def metric_export_failed() -> None:
    with _lock:
        _metric_exports_failed[0] += 1


def spans_dropped() -> Dict[str, int]:
    """Spans lost so far, by reason."""
    with _lock:
        return dict(_spans)


def metric_exports_failed() -> int:
    return _metric_exports_failed[0]


def reset() -> None:
    """A forked child counts its own."""
    global _lock
    _lock = threading.Lock()  # one held by another thread at fork stays held
    _spans.clear()
    _metric_exports_failed[0] = 0
