"""The exporters and span processors the pipeline builds when the program first needs
them (see ``providers.Pipeline``): none of this, nor the SDK parts it imports, loads in a
process that never records anything.

``LazyBatchProcessor`` stands in for the SDK's ``BatchSpanProcessor`` until the set-up
thread has built it; ``CountingQueue`` hands what the batch queue drops to the spill or
the loss count; the factories build each named exporter (``otlp`` over gRPC or
HTTP/protobuf, ``console``, ``store``) behind ``Delivery``'s guard.
"""

from __future__ import annotations

import collections
import math
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence

if TYPE_CHECKING:  # the metrics SDK loads with the first marked call
    from opentelemetry.sdk.metrics.export import MetricReader

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.metrics import NoOpMeterProvider

from . import background, losses
from .delivery import METRICS, SPANS, Delivery
from .. import log
from ..config import Settings
from .scrubbing import content_policy, scrubbing
from .ids import isolate_loaded_modules


class LazyBatchProcessor(SpanProcessor):
    """A BatchSpanProcessor, and its exporter, built off the program's threads (see
    ``background``) when the first span ends or the first marked call starts the
    pipeline: the exporter's imports (requests, gRPC: tens of milliseconds) are paid
    neither at start-up nor by the call. Spans that end meanwhile wait here, up to the
    queue's size; past it, a span's end waits for the build (as it did when the build was
    done there), and only a build that takes longer than ``background.SET_UP_WAIT`` makes
    it overflow (to the spill, or counted). An exporter that cannot be built is said once,
    and that exporter's spans are dropped."""

    def __init__(self, name: str, settings: Settings, delivery: Delivery) -> None:
        self.name = name
        self._settings = settings
        self._delivery = delivery
        self._processor: Optional[BatchSpanProcessor] = None
        self._failed = False
        self._asked = False
        self._pending: List[Any] = []
        self._lock = threading.Lock()  # the build
        self._pending_lock = threading.Lock()

    def build(self) -> None:
        """Build the exporter and its batch processor (once), then hand it what waited."""
        with self._lock:
            if self._processor is not None or self._failed:
                return
            try:
                exporter = span_exporter(self.name, self._settings, self._delivery)
                try:
                    processor = batch_processor(exporter, self._settings)
                    count_drops(processor, self._delivery)
                except RuntimeError:  # no new threads (a set-up that ends at interpreter shutdown)
                    processor = ExportAtFlush(exporter, self._settings, self._delivery)
            except Exception as exc:
                self._failed = True
                with self._pending_lock:
                    lost, self._pending = len(self._pending), []
                if isinstance(exc, RuntimeError) and "shutdown" in str(exc):
                    log.warn(f"traces exporter {self.name!r} could not be set up: the program ended before aiotel "
                             f"finished setting up ({exc}); {lost} span(s) not exported there")
                else:
                    log.warn(f"traces exporter {self.name!r} unavailable ({type(exc).__name__}: {exc}); "
                             "spans are not exported there")
                return
            # What waited is handed over no faster than the queue takes it (exported here
            # when it is full), and before new spans go to the queue themselves.
            queue = getattr(getattr(processor, "_batch_processor", None), "_queue", None)
            room = getattr(queue, "maxlen", None)
            while True:
                with self._pending_lock:
                    waiting, self._pending = self._pending, []
                    if not waiting:
                        self._processor = processor
                        break
                for span in waiting:
                    if room is not None and len(queue) >= room:
                        processor.force_flush()
                    processor.on_end(span)
            if room is not None and len(queue) > room // 2:
                processor.force_flush()  # room for what comes next

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def take_waiting(self) -> List[Any]:
        with self._pending_lock:
            waiting, self._pending = self._pending, []
        return waiting

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass  # the batch processor does nothing on start

    def on_end(self, span: Any) -> None:
        if not span.context.trace_flags.sampled:
            return  # recorded only (an LLM call tallied in a dropped trace): never exported
        processor = self._processor
        if processor is None:
            if self._failed:
                return
            with self._pending_lock:
                processor = self._processor
                if processor is None:
                    kept = len(self._pending) < self._settings.bsp_max_queue_size
                    if kept:
                        self._pending.append(span)
                    ask, self._asked = not self._asked, True
            if processor is None:
                if ask:
                    background.run(self.build)
                if kept:
                    return
                background.settle(background.SET_UP_WAIT)  # a burst: this thread waits for the build
                processor = self._processor
                if processor is None:
                    self._delivery.overflowed(span)
                    return
        processor.on_end(span)

    def shutdown(self) -> None:
        if self._processor is not None:
            self._processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._processor.force_flush(timeout_millis) if self._processor is not None else True


class ExportAtFlush(SpanProcessor):
    """Stands for the batch processor where its thread cannot start (Python 3.12 refuses
    new threads once the interpreter shuts down, and the set-up may end then): spans are
    kept, then exported in batches by the exit flush, in its own thread."""

    def __init__(self, exporter: Any, settings: Settings, delivery: Delivery) -> None:
        self._exporter = exporter
        self._batch = max(1, min(settings.bsp_max_export_batch_size, settings.bsp_max_queue_size))
        self._room = settings.bsp_max_queue_size
        self._delivery = delivery
        self._spans: List[Any] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        if len(self._spans) < self._room:
            self._spans.append(span)
        else:
            self._delivery.overflowed(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        while self._spans:
            batch, self._spans = self._spans[:self._batch], self._spans[self._batch:]
            self._exporter.export(batch)
        return True

    def shutdown(self) -> None:
        self.force_flush()
        self._exporter.shutdown()


class CountingQueue(collections.deque):
    """The batch processor's bounded queue, handing what it drops when full (the SDK only
    logs it) to ``on_overflow``: the spill, or the loss count. The check and the push hold
    a lock that the worker's pop also takes, so a concurrent export never makes a drop
    that did not happen."""

    def __init__(self, items: Any, maxlen: int, on_overflow: Callable[[Any], None]) -> None:
        super().__init__(items, maxlen)
        self.on_overflow = on_overflow
        self.lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            reset = weakref.WeakMethod(self._new_lock)
            os.register_at_fork(after_in_child=lambda: (reset() or (lambda: None))())

    def _new_lock(self) -> None:
        self.lock = threading.Lock()  # one held by another thread at fork stays held

    def appendleft(self, item: Any) -> None:
        with self.lock:
            if len(self) == self.maxlen:
                self.on_overflow(self[-1])  # the oldest, which the push below discards
            super().appendleft(item)

    def pop(self) -> Any:
        with self.lock:
            return super().pop()

    def take_all(self) -> List[Any]:
        """Everything still queued, oldest first, leaving the queue empty."""
        with self.lock:
            items = list(self)
            self.clear()
        items.reverse()
        return items


def count_drops(processor: BatchSpanProcessor, delivery: Delivery) -> None:
    """Put a counting queue in the BatchSpanProcessor (private SDK state, pinned by the
    dependency range); an SDK that keeps its queue elsewhere is left as it is."""
    inner = getattr(processor, "_batch_processor", None)
    queue = getattr(inner, "_queue", None)
    if isinstance(queue, collections.deque) and queue.__class__ is collections.deque and queue.maxlen:
        inner._queue = CountingQueue(queue, queue.maxlen, delivery.overflowed)


def left_in(lazy: LazyBatchProcessor) -> List[Any]:
    """Take the spans still waiting for ``lazy``'s exporter to be built or in its queue."""
    found = lazy.take_waiting()
    queue = getattr(getattr(lazy._processor, "_batch_processor", None), "_queue", None)
    if isinstance(queue, CountingQueue):
        found += queue.take_all()
    return found


def load_log_sdk() -> None:
    """First of the set-up: the OTLP exporters import the SDK's logs module, whose import
    detects a resource in a thread pool. Done first, it is done before most programs can
    end: once Python exits it starts no thread (3.12) and its pools take no work (3.13)."""
    try:
        import opentelemetry.sdk._logs  # noqa: F401
    except Exception:
        pass


# The OTLP exporter class of each signal and protocol: (module, class)
_OTLP_CLASSES = {
    ("TRACES", "grpc"): ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
    ("TRACES", "http/protobuf"): ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
    ("METRICS", "grpc"): ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
    ("METRICS", "http/protobuf"): ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
    ("LOGS", "grpc"): ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    ("LOGS", "http/protobuf"): ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
}


def otlp_exporter(signal: str, settings: Settings) -> Any:
    """The OTLP exporter of ``signal`` (TRACES, METRICS or LOGS) over its protocol, with
    compression and timeout as validated by ``config`` (the exporters would fail on a bad
    value); endpoint, headers and certificates the exporters read themselves."""
    import importlib

    protocol = {"TRACES": settings.otlp_traces_protocol, "METRICS": settings.otlp_metrics_protocol,
                "LOGS": settings.otlp_logs_protocol}[signal]
    module, name = _OTLP_CLASSES[(signal, protocol)]
    exporter_class = getattr(importlib.import_module(module), name)
    if protocol == "grpc":
        from grpc import Compression as GrpcCompression

        gzip, none = GrpcCompression.Gzip, GrpcCompression.NoCompression
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

        gzip, none = HttpCompression.Gzip, HttpCompression.NoCompression
    isolate_loaded_modules()
    return exporter_class(compression=gzip if settings.otlp_compression[signal] == "gzip" else none,
                          timeout=settings.otlp_timeout_s[signal])


def span_exporter(name: str, settings: Settings, delivery: Delivery) -> Any:
    exporter = scrubbing(_bare_span_exporter(name, settings), content_policy(settings))
    return delivery.guard(exporter, SPANS, spillable=name == "otlp")


def _metric_exporter(name: str, settings: Settings, delivery: Delivery) -> Any:
    return delivery.guard(_bare_metric_exporter(name, settings), METRICS, spillable=name == "otlp")


def _bare_span_exporter(name: str, settings: Settings) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "store":
        from ..store.writer import StoreSpanExporter

        return StoreSpanExporter(settings.store_dir, settings.store_max_bytes, settings.private_store_dir,
                                 on_rotated_out=lambda spans: losses.spans_lost(losses.STORE_ROTATED, spans))
    return otlp_exporter("TRACES", settings)


def _bare_metric_exporter(name: str, settings: Settings) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if name == "store":
        from ..store.writer import StoreMetricExporter

        return StoreMetricExporter(settings.store_dir, settings.store_max_bytes, settings.private_store_dir)
    return otlp_exporter("METRICS", settings)


def _prometheus_reader(settings: Settings) -> MetricReader:
    """Pull: a /metrics endpoint the Prometheus server scrapes (OTEL_EXPORTER_PROMETHEUS_*)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    reader = PrometheusMetricReader()
    start_http_server(port=settings.prometheus_port, addr=settings.prometheus_host)
    return reader


def local_first(exporters: Sequence[str]) -> List[str]:
    """The exporters in the order the exit flush serves them: those writing on this machine
    (the store, the console) before OTLP, whose collector may take the flush's whole time
    (the processors and readers are shut down in turn, within one deadline)."""
    return sorted(exporters, key=lambda name: name == "otlp")


def metric_readers(settings: Settings, delivery: Delivery) -> List[MetricReader]:
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    readers: List[MetricReader] = []
    for name in local_first(settings.metrics_exporters):
        try:
            if name == "prometheus":
                readers.append(_prometheus_reader(settings))
                continue
            exporter = _metric_exporter(name, settings, delivery)
            try:
                reader = PeriodicExportingMetricReader(exporter, export_interval_millis=settings.metric_export_interval_ms,
                                                       export_timeout_millis=settings.metric_export_timeout_ms)
            except RuntimeError:  # no new threads (interpreter shutdown): the exit flush reads it once
                reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf,
                                                       export_timeout_millis=settings.metric_export_timeout_ms)
            readers.append(reader)
        except Exception as exc:
            log.warn(f"metrics exporter {name!r} unavailable ({type(exc).__name__}: {exc}); metrics are not exported there")
    return readers


def batch_processor(exporter: Any, settings: Settings) -> BatchSpanProcessor:
    options = dict(  # validated by config: the SDK never parses a bad OTEL_BSP_* value itself
        max_queue_size=settings.bsp_max_queue_size,
        schedule_delay_millis=settings.bsp_schedule_delay_ms,
        max_export_batch_size=min(settings.bsp_max_export_batch_size, settings.bsp_max_queue_size),
        export_timeout_millis=settings.bsp_export_timeout_ms,
    )
    try:
        return BatchSpanProcessor(exporter, meter_provider=NoOpMeterProvider(), **options)  # same reason
    except TypeError:
        return BatchSpanProcessor(exporter, **options)
