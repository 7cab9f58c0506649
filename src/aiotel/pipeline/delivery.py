"""What the exporters could not deliver: kept in the spill, or counted as lost.

Every exporter's ``export`` is guarded here. A batch that fails (a result other than
success, or an exception, which still reaches the SDK) goes to the spill when the
exporter is an OTLP one and a spill is configured; otherwise, or when the spill refuses
it, spans and metric exports are counted (``losses``); log records are not (the
exporter's failure is said once, as for every signal). Spans the export queue had no
room for wait in a bounded overflow for the next export to spill them, so the
application's thread only appends.
At the exit deadline, ``rescue`` spills what is still in flight or queued: a collector
that does not answer costs at most ``AIOTEL_SHUTDOWN_TIMEOUT`` and loses nothing that
fits in the spill. A batch being sent at that moment may arrive and be spilled too
(at least once, never lost).

A pool process that is recycled must not wait for a collector that is down (``hurry``):
before its last exports, each OTLP endpoint gets one TCP connect (``PROBE_TIMEOUT``);
one that refuses or does not connect has that process's batches spilled at once.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple

from . import losses

SPANS = "spans"
METRICS = "metrics"
LOGS = "logs"
PROBE_TIMEOUT = 0.1  # seconds: a collector on the network connects far sooner


class Delivery:
    """``spill``: builds the spill on first need (its modules load the metrics SDK, which
    start-up does not pay for); None: no spill."""

    def __init__(self, spill: Optional[Callable[[], Any]] = None, overflow_size: int = 2048) -> None:
        self._make_spill = spill
        self._spill: Optional[Any] = None
        self._in_flight: Dict[int, Tuple[str, bool, Any]] = {}
        self._lock = threading.Lock()
        self._overflow: Deque[Any] = collections.deque()
        self._overflow_size = overflow_size
        self._hurry = False
        self._reachable: Dict[str, bool] = {}  # by endpoint, once hurried
        self._endpoints: List[str] = []  # of the exporters whose batches can be spilled

    def guard(self, exporter: Any, signal: str, spillable: bool) -> Any:
        """``exporter``, its ``export`` guarded (the instance is kept: the SDK reads its
        preferences from it)."""
        successes, failure = _results(signal)
        export = exporter.export
        spill = spillable and self.spilling

        def guarded(batch: Any, *args: Any, **kwargs: Any) -> Any:
            if spill and self._overflow:
                self._spill_overflow()  # in the exporter's thread, never the application's
            token = id(batch)
            with self._lock:
                self._in_flight[token] = (signal, spill, batch)
            if spill and self._hurry and not self._answers(getattr(exporter, "_endpoint", None)):
                self._failed(token)  # spilled now: the collector is not there to wait for
                return failure
            try:
                result = export(batch, *args, **kwargs)
            except Exception:
                self._failed(token)
                raise
            if result not in successes:
                self._failed(token)
            else:
                with self._lock:
                    self._in_flight.pop(token, None)
            return result

        endpoint = getattr(exporter, "_endpoint", None)
        if spill and isinstance(endpoint, str):
            self._endpoints.append(endpoint)
        exporter.export = guarded
        return exporter

    def hurry(self) -> bool:
        """The last exports of a process that must not wait (see the module's text);
        False when a collector does not take a connection (its batches go to the spill)."""
        self._hurry = True
        return all([self._answers(endpoint) for endpoint in self._endpoints])

    def _answers(self, endpoint: Any) -> bool:
        """Whether the collector at ``endpoint`` (a URL, or gRPC's host:port) takes a TCP
        connection; True when it cannot be told."""
        if not isinstance(endpoint, str):
            return True
        known = self._reachable.get(endpoint)
        if known is not None:
            return known
        import socket  # at exit, when the collector is in doubt: not at start-up
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(endpoint if "//" in endpoint else "//" + endpoint)
            port = parts.port or (443 if parts.scheme == "https" else 80 if parts.scheme == "http" else 4317)
            host = parts.hostname or "localhost"
        except ValueError:
            return True
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
            answers = True
        except OSError:
            answers = False
        self._reachable[endpoint] = answers
        return answers

    @property
    def spilling(self) -> bool:
        return self._make_spill is not None

    @property
    def spill(self) -> Any:
        if self._spill is None and self._make_spill is not None:
            self._spill = self._make_spill()
        return self._spill

    def said(self) -> Optional[str]:
        """What this process kept in the spill, as one sentence, or None."""
        return self._spill.said() if self._spill is not None else None

    def _failed(self, token: int) -> None:
        with self._lock:
            entry = self._in_flight.pop(token, None)
        if entry is not None:  # not taken by rescue() meanwhile
            self._undelivered(*entry)

    def _undelivered(self, signal: str, spill: bool, batch: Any) -> None:
        if signal == METRICS:
            losses.metric_export_failed()  # an attempt: the next success carries the totals
            if spill:
                self.spill.keep_metrics(batch)
            return
        if signal == LOGS:
            if spill:
                self.spill.keep_log_records(batch)
            return
        if not (spill and self.spill.keep_spans(batch)):
            losses.spans_lost(losses.EXPORT_FAILED, len(batch))

    def overflowed(self, span: Any) -> None:
        """A finished span the export queue had no room for (called under the queue's lock,
        in the application's thread): kept for the spill when one is configured."""
        if not self.spilling:
            losses.span_dropped()
            return
        if len(self._overflow) >= self._overflow_size:
            losses.span_dropped()
            return
        self._overflow.append(span)

    def _spill_overflow(self) -> None:
        batch: List[Any] = []
        while self._overflow:
            try:
                batch.append(self._overflow.popleft())
            except IndexError:
                break
        if batch and not self.spill.keep_spans(batch):
            for _ in batch:
                losses.span_dropped()

    def rescue(self, queued: Iterable[Any] = (), queued_log_records: Iterable[Any] = ()) -> None:
        """At the exit deadline: spill what is in flight, overflowed or still queued."""
        with self._lock:
            entries = list(self._in_flight.values())
            self._in_flight.clear()
        for entry in entries:
            self._undelivered(*entry)
        if not self.spilling:
            return
        self._spill_overflow()
        spans = list(queued)
        if spans and not self.spill.keep_spans(spans):
            losses.spans_lost(losses.EXPORT_FAILED, len(spans))
        records = list(queued_log_records)
        if records:
            self.spill.keep_log_records(records)

    def forked(self) -> None:
        """A forked child: the parent's batches in flight are the parent's."""
        self._lock = threading.Lock()
        self._in_flight.clear()
        self._overflow.clear()
        self._hurry = False
        self._reachable.clear()


def _results(signal: str) -> Tuple[Tuple[Any, ...], Any]:
    """(what counts as success, the failure to return) for ``signal``'s exporters; each
    SDK module is imported only by the signal that already uses it. Log exporters return
    one of two enums: ``LogRecordExportResult`` (SDK 1.39 on: the OTLP exporters) or
    ``LogExportResult`` (before, and exporters written against it), equal in name only."""
    if signal == SPANS:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return (SpanExportResult.SUCCESS,), SpanExportResult.FAILURE
    if signal == METRICS:
        from opentelemetry.sdk.metrics.export import MetricExportResult

        return (MetricExportResult.SUCCESS,), MetricExportResult.FAILURE
    from opentelemetry.sdk._logs import export as logs_export

    enums = [getattr(logs_export, name) for name in ("LogRecordExportResult", "LogExportResult")
             if hasattr(logs_export, name)]
    return tuple(enum.SUCCESS for enum in enums), enums[0].FAILURE
