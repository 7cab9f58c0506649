"""Builds the OpenTelemetry SDK pipeline the probes report to, and tears it down at exit.

Exporters: OTLP over gRPC or HTTP/protobuf (``OTEL_EXPORTER_OTLP_PROTOCOL`` and its
per-signal forms, default http/protobuf as the spec recommends, which also keeps gRPC
out of start-up), ``console``, ``store`` (the embedded local store, the default when no
exporter and no endpoint is configured) and ``none``. The exporters read their endpoint, headers,
compression and timeout from the ``OTEL_EXPORTER_OTLP_*`` variables themselves.
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence

if TYPE_CHECKING:  # the metrics SDK loads with the first marked call, not at start-up
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader

from opentelemetry import trace as trace_api
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from . import background, lifecycle, losses
from .delivery import METRICS, SPANS, Delivery
from .. import log, probes, semconv
from .._version import __version__
from ..config import Settings
from ..probes.redact import Redactor
from .foreign_spans import ForeignSpanProcessor, redacting
from .ids import PrivateIdGenerator, isolate_loaded_modules
from .resource import detected_attributes
from .sampling import default_sampler


class _LazyBatchProcessor(SpanProcessor):
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
                exporter = _span_exporter(self.name, self._settings, self._delivery)
                try:
                    processor = _batch_processor(exporter, self._settings)
                    _count_drops(processor, self._delivery)
                except RuntimeError:  # no new threads (a set-up that ends at interpreter shutdown)
                    processor = _ExportAtFlush(exporter, self._settings, self._delivery)
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


class _ExportAtFlush(SpanProcessor):
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


class _CountingQueue(collections.deque):
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


def _count_drops(processor: BatchSpanProcessor, delivery: Delivery) -> None:
    """Put a counting queue in the BatchSpanProcessor (private SDK state, pinned by the
    dependency range); an SDK that keeps its queue elsewhere is left as it is."""
    inner = getattr(processor, "_batch_processor", None)
    queue = getattr(inner, "_queue", None)
    if isinstance(queue, collections.deque) and queue.__class__ is collections.deque and queue.maxlen:
        inner._queue = _CountingQueue(queue, queue.maxlen, delivery.overflowed)


# seconds a recycled pool process gives to its flush when its collector is not there:
# enough to spill what is left, not to wait for an export
HURRIED_FLUSH = 0.2


class Pipeline:
    """The SDK providers aiotel reports to.

    No thread at start-up: the first call of a marked function (or the first span that
    ends) starts the rest, the meter provider (whose periodic reader runs a thread) and
    the exporters, in a thread of its own (``begin``, see ``background``), so that call
    returns without waiting for it. A program that forks while threads run gets a
    DeprecationWarning from Python 3.12 on (and real deadlock risks); one that forks its
    workers before any of that (pre-fork servers, pools created early) so stays
    single-threaded, as without aiotel. The tracer provider itself is global from the
    start, so request spans of instrumented libraries are parents of the first marked
    call. ``shutdown`` flushes within a time bound.
    """

    def __init__(self, settings: Settings, main_script: Optional[str] = None,
                 extra_readers: Optional[List[MetricReader]] = None) -> None:
        self.settings = settings
        self.extra_readers = list(extra_readers or [])
        self.timeout = settings.shutdown_timeout
        self.meter_provider: Optional[MeterProvider] = None
        self._lock = threading.Lock()
        self._done = False
        self.abandoned = 0  # finished spans the exit deadline left unexported, with no spill to keep them
        self._exit_waiters: List[Callable[[float], Any]] = []
        self._worker: Optional[threading.Thread] = None
        self._on_start: List[Callable[[], None]] = []
        self._begun_ns: Optional[int] = None  # when the first marked call asked for the rest
        self._readers: List[MetricReader] = []
        # spans the queue had no room for wait here for the spill: as many again, at least 2048
        self.delivery = Delivery(_spill_factory(settings), overflow_size=max(settings.bsp_max_queue_size, 2048))
        resource = self.resource = build_resource(settings.resource_environ, main_script)
        # The sampler the user set (OTEL_TRACES_SAMPLER(_ARG), as the SDK reads it), else
        # aiotel's: parent-based, new traces rate-limited per process.
        sampler = None if settings.traces_sampler_set else default_sampler(settings.trace_rate_limit)
        options: Dict[str, Any] = {"sampler": sampler} if sampler is not None else {}
        self.tracer_provider = _tracer_provider(resource=resource, shutdown_on_exit=False,
                                                id_generator=PrivateIdGenerator(), **options)
        if settings.traces_exporters:
            self.tracer_provider.add_span_processor(ForeignSpanProcessor())
        for name in local_first(settings.traces_exporters):
            self.tracer_provider.add_span_processor(_LazyBatchProcessor(name, settings, self.delivery))
        # Same processors, but samples everything: late spans for failed or slow calls
        # that had none (bounded by the late-span cap).
        self.error_provider = _tracer_provider(
            sampler=ALWAYS_ON,
            resource=resource,
            shutdown_on_exit=False,
            id_generator=PrivateIdGenerator(),
            active_span_processor=self.tracer_provider._active_span_processor,
        )
        trace_api.set_tracer_provider(self.tracer_provider)

    @property
    def started(self) -> bool:
        return self.meter_provider is not None

    def configure_probes(self, starter: Any = None) -> None:
        settings = self.settings
        spans = bool(settings.traces_exporters)
        probes.configure(
            tracer=self.tracer_provider.get_tracer("aiotel", __version__) if spans else None,
            error_tracer=self.error_provider.get_tracer("aiotel", __version__) if spans else None,
            span_rate_limit=settings.span_rate_limit,
            span_burst=settings.span_burst,
            trace_span_budget=settings.trace_span_budget,
            slow_threshold=settings.slow_threshold,
            late_span_rate=settings.late_span_rate,
            prompt_max_length=settings.prompt_max_length,
            capture_prompt=settings.capture_prompt,
            accelerator=settings.accelerator,
            redact=Redactor(settings.redact),
            starter=starter,
        )
        probes.experiments.configure(settings.shadow[0], dict(settings.shadow[1]))

    def begin(self) -> None:
        """The first marked call: build the meter provider and the exporters off its thread."""
        self._begun_ns = time.time_ns()
        background.EXIT_WAIT[0] = self.timeout / 2
        lazies = self._lazy_processors()
        for lazy in lazies:
            lazy._asked = True  # built by the thread below, not by a thread of their own

        def build_all() -> None:
            # an exit flush that began meanwhile waits for this (it flushes what this builds)
            if "otlp" in self.settings.traces_exporters + self.settings.metrics_exporters:
                _load_log_sdk()
            self._build_meter_provider()
            for lazy in lazies:
                lazy.build()

        background.run(build_all)  # at exit, lifecycle waits for it while threads may still work

    def _build_meter_provider(self) -> None:
        """Once. Also when the exit flush has begun meanwhile: it waits for this."""
        with self._lock:
            if self.started:
                return
            from opentelemetry import metrics as metrics_api
            from opentelemetry.sdk.metrics import MeterProvider

            from . import metrics

            readers = _metric_readers(self.settings, self.delivery) + self.extra_readers
            self._readers = readers
            meter_provider = MeterProvider(resource=self.resource, metric_readers=readers, shutdown_on_exit=False)
            isolate_loaded_modules()  # the exemplar reservoir is loaded now
            for reader in readers:
                metrics.attach(reader, self.current_resource, since=self._begun_ns)
            metrics_api.set_meter_provider(meter_provider)
            self.meter_provider = meter_provider
            callbacks = list(self._on_start)
        for callback in callbacks:
            try:
                callback()
            except Exception as exc:
                log.warn(f"{getattr(callback, '__qualname__', callback)} failed ({type(exc).__name__}: {exc})")

    def wait_at_exit(self, waiter: Callable[[float], Any]) -> None:
        """Call ``waiter(seconds)`` at exit, after the telemetry's flush, with what is left of
        the exit's time (work of aiotel's own threads that is worth finishing: the blame cache)."""
        self._exit_waiters.append(waiter)

    def when_started(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the pipeline runs (threads are allowed from then on)."""
        with self._lock:
            if not self.started:
                self._on_start.append(callback)
                return
        callback()

    def current_resource(self) -> Resource:
        return self.resource

    def forked(self) -> None:
        """In a forked child: its own service.instance.id (the SDK's new one when it renews
        it) and process.pid, on metrics and spans alike."""
        self._done, self._worker = False, None
        self._lock = threading.Lock()
        if background.forked_while_running():
            self._done = True
            log.warn(f"this process was forked while aiotel was still setting up (for over {background.SET_UP_WAIT:g} s); "
                     "it exports no telemetry")
        self.delivery.forked()
        old = self.resource.attributes.get(semconv.SERVICE_INSTANCE_ID)
        renewed = self.tracer_provider.resource.attributes.get(semconv.SERVICE_INSTANCE_ID)
        instance = renewed if renewed not in (None, old) else str(uuid.uuid4())
        own: Dict[str, Any] = {semconv.SERVICE_INSTANCE_ID: instance}
        if semconv.PROCESS_PID in self.resource.attributes:
            own[semconv.PROCESS_PID] = os.getpid()
        self.resource = self.resource.merge(Resource(own))
        for provider in (self.tracer_provider, self.error_provider):
            if provider is not None and hasattr(provider, "_resource"):
                provider._resource = self.resource
        tracers = []
        for provider in (self.tracer_provider, self.error_provider):
            tracer = provider.get_tracer("aiotel", __version__) if provider is not None else None
            if tracer is not None and hasattr(tracer, "resource"):
                tracer.resource = self.resource  # get_tracer may hand back its cached tracer
            tracers.append(tracer)
        probes.replace_tracers(*tracers)

    def shutdown(self, hurry: bool = False) -> None:
        """Flush and stop, giving up after ``timeout`` seconds: exit never hangs on a collector.

        A second call (SIGTERM arriving while the exit flush runs, as when a
        multiprocessing pool terminates its workers) waits for the first one to finish.
        ``hurry``: a pool process that is recycled; a collector that does not take a
        connection is not waited for: what it would get goes to the spill at once.
        """
        if self._done:
            if self._worker is not None and self._worker is not threading.current_thread():
                self._worker.join(self.timeout)
            return
        self._done = True
        if not (self.started or background.running() or any(p._processor or p.waiting for p in self._lazy_processors())):
            return  # nothing was recorded: nothing to flush, no thread to start

        began = time.monotonic()
        spilling = self.delivery.spilling
        budget = self.timeout * 0.8 if spilling else self.timeout  # the rest: writing the spill
        absent = hurry and spilling and not self.delivery.hurry()
        if absent:
            budget = min(budget, HURRIED_FLUSH)
        done: List[bool] = []  # what _flush said: True when something was still being sent
        worker = threading.Thread(target=lambda: done.append(self._flush(budget)), name="aiotel-shutdown", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # no new threads at exit (Python 3.12): in place, bounded all the same
            done.append(self._flush(budget))
        else:
            self._worker = worker
            worker.join(budget)
        late = not done or done[0]
        if late and spilling:
            self.delivery.rescue(self._queued_spans())
        said = self.delivery.said()
        if late and absent:
            log.warn("the collector took no connection; " + (said or "nothing was left to keep"))
        elif late:
            without = (f"exiting without {self.abandoned} finished spans (counted in aiotel.spans.dropped) and any "
                       "being written" if self.abandoned else "exiting without it")
            log.warn(f"telemetry not flushed within {self.timeout:g} s (AIOTEL_SHUTDOWN_TIMEOUT); "
                     + (said or ("nothing was left to keep" if spilling else without)))
        elif said:
            log.warn(said)
        if not hurry:
            for waiter in self._exit_waiters:
                left = self.timeout - (time.monotonic() - began)
                if left <= 0:
                    break
                try:
                    waiter(left)
                except Exception:
                    pass

    def _flush(self, budget: float) -> bool:
        """Flush and stop within ``budget`` seconds, in the SDK's own exporter threads, each
        joined for its share (the SDK's shutdown would wait 30 s for a collector that does
        not answer, and its force_flush exports in the caller's thread whatever its
        timeout says). Spans first, within half: what their export lost is counted, and
        the metrics' last export carries that count. True when something was still being
        sent at the end. A set-up still running (see ``begin``) is waited for first, within
        half."""
        deadline = time.monotonic() + budget
        late = not background.settle(budget / 2)
        spans_deadline = time.monotonic() + (deadline - time.monotonic()) / 2
        try:
            for lazy in self._lazy_processors():
                if lazy.waiting and not late:
                    lazy.build()  # spans ended where no thread could build it (at exit)
                if isinstance(lazy._processor, _ExportAtFlush):
                    lazy._processor.force_flush()
                    continue
                inner = getattr(lazy._processor, "_batch_processor", None)
                thread = getattr(inner, "_worker_thread", None)
                if inner is None or thread is None:
                    if late and not self.delivery.spilling:
                        self._abandon(lazy.take_waiting())  # no exporter was built for them
                    continue  # an SDK laid out otherwise: its own shutdown, below
                inner.shutdown(timeout_millis=max(spans_deadline - time.monotonic(), 0.0) * 1000)
                # Past its timeout the SDK's worker stops after the batch in hand, and may
                # be gone before is_alive() is asked: what is still queued is never exported
                # (kept for the spill by shutdown's rescue, else counted here).
                left = bool(lazy.waiting or getattr(inner, "_queue", None))
                late = late or thread.is_alive() or left
                if left and not self.delivery.spilling:
                    self._abandon(_left_in(lazy))
            for reader in self._readers:
                if getattr(reader, "_daemon_thread", False) is None:  # read by nobody else: now
                    reader.collect(timeout_millis=max(deadline - time.monotonic(), 0.01) * 1000)
            if self.meter_provider is not None:
                self.meter_provider.shutdown(timeout_millis=max(deadline - time.monotonic(), 0.01) * 1000)
            self.tracer_provider.shutdown()  # the processors stopped above return at once
        except Exception as exc:
            log.warn(f"could not flush telemetry at exit ({type(exc).__name__}: {exc})")
        return late or time.monotonic() > deadline

    def _queued_spans(self) -> List[Any]:
        """At the exit deadline: the spans still queued, and those still waiting for an
        exporter that the set-up has not built yet."""
        found: List[Any] = []
        for lazy in self._lazy_processors():
            found += _left_in(lazy)
        return found

    def _abandon(self, spans: List[Any]) -> None:
        """Spans no exporter will take now, with no spill to keep them: counted before
        the last metric export, which carries the count."""
        if spans:
            self.abandoned += len(spans)
            losses.spans_lost(losses.EXIT_DEADLINE, len(spans))


    def _lazy_processors(self) -> List[_LazyBatchProcessor]:
        multi = self.tracer_provider._active_span_processor
        return [p for p in getattr(multi, "_span_processors", ()) if isinstance(p, _LazyBatchProcessor)]


def _left_in(lazy: _LazyBatchProcessor) -> List[Any]:
    """Take the spans still waiting for ``lazy``'s exporter to be built or in its queue."""
    found = lazy.take_waiting()
    queue = getattr(getattr(lazy._processor, "_batch_processor", None), "_queue", None)
    if isinstance(queue, _CountingQueue):
        found += queue.take_all()
    return found


def _silence_what_requests_silences(settings: Settings) -> None:
    """The OTLP/HTTP exporters import requests in the set-up thread, while the program
    runs. requests silences urllib3's "SOCKS support requires PySocks" warning as it is
    imported, with a filter that a ``catch_warnings`` block the program leaves meanwhile
    drops again (pytest's, per test: the filters are one global list before 3.14), so the
    warning reached the program. The same filter, set here before the program runs, is in
    every list such a block copies."""
    uses_http = [settings.otlp_traces_protocol if "otlp" in settings.traces_exporters else "",
                 settings.otlp_metrics_protocol if "otlp" in settings.metrics_exporters else ""]
    if "http/protobuf" in uses_http:
        import warnings

        warnings.filterwarnings("ignore", message="SOCKS support in urllib3 requires", module="urllib3")


def _load_log_sdk() -> None:
    """First of the set-up: the OTLP exporters import the SDK's logs module, whose import
    detects a resource in a thread pool. Done first, it is done before most programs can
    end: once Python exits it starts no thread (3.12) and its pools take no work (3.13)."""
    try:
        import opentelemetry.sdk._logs  # noqa: F401
    except Exception:
        pass


def _otlp_options(protocol: str, compression: str, timeout: float) -> Dict[str, Any]:
    """Compression and timeout as validated by ``config`` (the exporters would fail on a
    bad value); endpoint, headers and certificates the exporters read themselves."""
    if protocol == "grpc":
        from grpc import Compression as GrpcCompression

        kind = GrpcCompression.Gzip if compression == "gzip" else GrpcCompression.NoCompression
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

        kind = HttpCompression.Gzip if compression == "gzip" else HttpCompression.NoCompression
    return {"compression": kind, "timeout": timeout}


def _otlp_span_exporter(settings: Settings) -> Any:
    protocol = settings.otlp_traces_protocol
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    isolate_loaded_modules()
    return OTLPSpanExporter(**_otlp_options(protocol, settings.otlp_compression["TRACES"], settings.otlp_timeout_s["TRACES"]))


def _otlp_metric_exporter(settings: Settings) -> Any:
    protocol = settings.otlp_metrics_protocol
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
    isolate_loaded_modules()
    return OTLPMetricExporter(**_otlp_options(protocol, settings.otlp_compression["METRICS"], settings.otlp_timeout_s["METRICS"]))


def _spill_factory(settings: Settings) -> Optional[Callable[[], Any]]:
    """The spill, for OTLP exporters: built when first needed (None: AIOTEL_SPILL=off, or
    nothing exported over OTLP)."""
    if settings.spill_dir is None or "otlp" not in settings.traces_exporters + settings.metrics_exporters:
        return None
    directory, cap, private = settings.spill_dir, settings.spill_max_bytes, settings.private_spill_dir

    def make() -> Any:
        from ..store.spill import Spill

        return Spill(directory, cap, private)

    return make


def _span_exporter(name: str, settings: Settings, delivery: Delivery) -> Any:
    exporter = redacting(_bare_span_exporter(name, settings), Redactor(settings.redact))
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
    return _otlp_span_exporter(settings)


def _bare_metric_exporter(name: str, settings: Settings) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if name == "store":
        from ..store.writer import StoreMetricExporter

        return StoreMetricExporter(settings.store_dir, settings.store_max_bytes, settings.private_store_dir)
    return _otlp_metric_exporter(settings)


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


def _metric_readers(settings: Settings, delivery: Delivery) -> List[MetricReader]:
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


def _tracer_provider(**options: Any) -> TracerProvider:
    # SDK 1.3x-1.41 record their own otel.sdk.span.* metrics on every span start, through
    # the global meter provider (ours): a cost per span and series nobody asked aiotel for.
    try:
        return TracerProvider(meter_provider=NoOpMeterProvider(), **options)
    except TypeError:  # an SDK without that parameter has no such metrics
        return TracerProvider(**options)


def _batch_processor(exporter: Any, settings: Settings) -> BatchSpanProcessor:
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


def build_resource(environ: Mapping[str, str], main_script: Optional[str] = None) -> Resource:
    """The SDK's resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, plus what
    aiotel detects for the keys they leave out (see ``aiotel.pipeline.resource``)."""
    configured = Resource.create({})
    try:
        detected = detected_attributes(environ, configured.attributes, main_script)
    except Exception as exc:
        log.warn(f"resource detection failed ({type(exc).__name__}: {exc}); using the configured attributes only")
        detected = {semconv.TELEMETRY_DISTRO_NAME: "aiotel", semconv.TELEMETRY_DISTRO_VERSION: __version__}
    return configured.merge(Resource(detected))


def start(
    settings: Settings, extra_readers: Optional[List[MetricReader]] = None, main_script: Optional[str] = None
) -> Optional[Pipeline]:
    """The pipeline, its tracer provider global, its meter provider built on the first
    marked call; None when OTEL_SDK_DISABLED."""
    if settings.sdk_disabled:
        return None
    pipeline = Pipeline(settings, main_script, extra_readers)
    _silence_what_requests_silences(settings)
    pipeline.configure_probes(starter=pipeline.begin)
    lifecycle.install(pipeline)
    return pipeline
