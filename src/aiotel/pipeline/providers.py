"""The OpenTelemetry SDK pipeline the probes report to: built in steps, as the program
first needs each, and torn down at exit.

Exporters: OTLP over gRPC or HTTP/protobuf (``OTEL_EXPORTER_OTLP_PROTOCOL`` and its
per-signal forms, default http/protobuf as the spec recommends, which also keeps gRPC
out of start-up), ``console``, ``store`` (the embedded local store, the default when no
exporter and no endpoint is configured) and ``none``, built by ``exporters``. The
exporters read their endpoint, headers, compression and timeout from the
``OTEL_EXPORTER_OTLP_*`` variables themselves.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional

if TYPE_CHECKING:  # the SDK loads when the program first needs it, not at start-up
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from .exporters import LazyBatchProcessor

from . import background, lifecycle, losses
from .delivery import Delivery
from .. import log, semconv
from .._version import __version__
from ..config import Settings

# What makes the tracer provider needed: the first of these modules to be imported (see
# ``Pipeline.build_tracing``). Rewritten code imports the probes; the program's own use of
# the OpenTelemetry API, and every instrumentation, imports the trace API.
TRACE_API = "opentelemetry.trace"
PROBES = "aiotel.probes"
# What makes the logger provider needed: an instrumentation that emits events imports the logs API
LOGS_API = "opentelemetry._logs"

# seconds a recycled pool process gives to its flush when its collector is not there:
# enough to spill what is left, not to wait for an export
HURRIED_FLUSH = 0.2


class Pipeline:
    """The SDK providers aiotel reports to, each built when first needed.

    At start-up only the settings, the exit and fork hooks and the resource's inputs
    (``sys.argv`` as it was then): a program that never imports a marked module nor the
    OpenTelemetry API loads none of the SDK. The tracer provider is built, and made
    global, when the first of ``TRACE_API`` and ``PROBES`` is imported (``build_tracing``):
    before any marked code runs, and before the program or an instrumentation asks the
    API for a tracer, so request spans of instrumented libraries are parents of marked
    calls as before. The probes are configured once their module has run.

    No thread at start-up: the first call of a marked function (or the first span that
    ends) starts the rest, the meter provider (whose periodic reader runs a thread) and
    the exporters, in a thread of its own (``begin``, see ``background``), so that call
    returns without waiting for it. A program that forks while threads run gets a
    DeprecationWarning from Python 3.12 on (and real deadlock risks); one that forks its
    workers before any of that (pre-fork servers, pools created early) so stays
    single-threaded, as without aiotel. ``shutdown`` flushes within a time bound.
    """

    def __init__(self, settings: Settings, main_script: Optional[str] = None,
                 extra_readers: Optional[List[MetricReader]] = None) -> None:
        self.settings = settings
        self.extra_readers = list(extra_readers or [])
        self.timeout = settings.shutdown_timeout
        self.meter_provider: Optional[MeterProvider] = None
        self.tracer_provider: Optional[TracerProvider] = None
        self.error_provider: Optional[TracerProvider] = None
        self.pending_logs: Any = None  # the global logger provider, from the logs API's first import
        self.logger_provider: Any = None  # the SDK's, behind it, from the first record
        self._log_exporters: Dict[str, Any] = {}  # its batch processors, by exporter name
        self._logs_failed = False
        self.resource: Optional[Resource] = None
        self._main_script = main_script
        # what the resource is detected from, as it is now: the program may change both before the build
        self._argv, self._cwd = list(getattr(sys, "argv", None) or []), _cwd()
        self._lock = threading.Lock()
        self._tracing_lock = threading.Lock()
        self._logs_lock = threading.Lock()
        self._building = threading.local()
        self._probes_waiting = False
        self._tracing_failed = False  # said once; the probes then count calls without spans
        self._done = False
        self.abandoned = 0  # finished spans the exit deadline left unexported, with no spill to keep them
        self._exit_waiters: List[Callable[[float], Any]] = []
        self._worker: Optional[threading.Thread] = None
        self._on_start: List[Callable[[], None]] = []
        self._begun_ns: Optional[int] = None  # when the first marked call asked for the rest
        self._readers: List[MetricReader] = []
        # spans the queue had no room for wait here for the spill: as many again, at least 2048
        self.delivery = Delivery(_spill_factory(settings), overflow_size=max(settings.bsp_max_queue_size, 2048))

    @property
    def started(self) -> bool:
        return self.meter_provider is not None

    def build_tracing(self) -> None:
        """Build the tracer providers and make ours global; once. Called from the import of
        ``TRACE_API`` or ``PROBES``, which may happen in any thread: another thread's build
        is waited for, a build this thread is already inside (the SDK imports the API)
        returns at once."""
        if self.tracer_provider is not None or self._tracing_failed or getattr(self._building, "now", False):
            return
        self._building.now = True
        try:
            with self._tracing_lock:
                if self.tracer_provider is None and not self._tracing_failed:
                    self._build_tracing()
        except Exception as exc:  # never into the import that asked for it
            self._tracing_failed = True
            log.warn(f"could not set up tracing ({type(exc).__name__}: {exc}); no spans are recorded in this process, "
                     "marked functions still count their calls")
        finally:
            self._building.now = False
        if self._probes_waiting:
            self._probes_waiting = False
            self.configure_probes()

    def _build_tracing(self) -> None:
        from opentelemetry import trace as trace_api
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        from .exporters import LazyBatchProcessor, local_first
        from .foreign_spans import ForeignSpanProcessor, openinference_installed
        from .ids import PrivateIdGenerator
        from .llm_calls import LLMCallProcessor, RecordLLMCalls
        from .sampling import default_sampler

        settings = self.settings
        log.setup()  # the SDK's own loggers, through the once-only filter, from now on
        resource = self.resource = build_resource(settings.resource_environ, self._main_script, self._argv, self._cwd)
        # The sampler the user set (OTEL_TRACES_SAMPLER(_ARG), as the SDK reads it), else
        # aiotel's: parent-based, new traces rate-limited per process.
        sampler = None if settings.traces_sampler_set else default_sampler(settings.trace_rate_limit)
        options: Dict[str, Any] = {"sampler": sampler} if sampler is not None else {}
        provider = _tracer_provider(resource=resource, shutdown_on_exit=False, id_generator=PrivateIdGenerator(),
                                    **options)
        if settings.traces_exporters or settings.metrics_exporters:
            # names the function (the rollup reads it); CHAIN kinds for Phoenix when OpenInference is there
            provider.add_span_processor(ForeignSpanProcessor(bool(settings.traces_exporters) and openinference_installed()))
        if settings.metrics_exporters:
            # every LLM call inside a marked function is tallied, also in traces the sampler drops
            provider.sampler = RecordLLMCalls(provider.sampler)
            provider.add_span_processor(LLMCallProcessor())
        for name in local_first(settings.traces_exporters):
            provider.add_span_processor(LazyBatchProcessor(name, settings, self.delivery))
        # Same processors, but samples everything: late spans for failed or slow calls
        # that had none (bounded by the late-span cap).
        self.error_provider = _tracer_provider(
            sampler=ALWAYS_ON,
            resource=resource,
            shutdown_on_exit=False,
            id_generator=PrivateIdGenerator(),
            active_span_processor=provider._active_span_processor,
        )
        self.tracer_provider = provider
        lifecycle.wait_for_set_up_at_main_end()
        trace_api.set_tracer_provider(provider)
        if trace_api.get_tracer_provider() is not provider:
            log.warn("the program set its own tracer provider before aiotel could: spans of instrumented libraries "
                     "and of the program's own tracers go there, not to aiotel's exporters")

    def install_logs(self) -> None:
        """Make a ``logs.PendingLoggerProvider`` the global logger provider; once. Called
        from the import of ``LOGS_API``, in whatever thread imports it: the API only, no
        SDK and no lock another import could be waiting on (see ``logs``)."""
        if self.pending_logs is not None or self._logs_failed:
            return
        try:
            from opentelemetry._logs import get_logger_provider, set_logger_provider

            if self.pending_logs is not None:
                return  # that import was the first one: its hook did it (called from export_program_logs)
            from .logs import PendingLoggerProvider

            pending = self.pending_logs = PendingLoggerProvider(self.build_logs)
            set_logger_provider(pending)
            if get_logger_provider() is not pending:
                log.warn("the program set its own logger provider before aiotel could: GenAI events go there")
        except Exception as exc:  # never into the import that asked for it
            self._logs_failed = True
            log.warn(f"could not set up logs ({type(exc).__name__}: {exc}); no log records are exported")

    def build_logs(self) -> None:
        """Build the SDK's logger provider, and hand it what waited; once. Off the program's
        threads at the first record (or at exit, in place)."""
        if self.pending_logs is None or self.pending_logs.real is not None or self._logs_failed:
            return
        try:
            with self._logs_lock:
                if self.pending_logs.real is None:
                    from .logs import logger_provider
                    from .scrubbing import content_policy

                    provider, self._log_exporters = logger_provider(self.settings, self.current_resource(),
                                                                    content_policy(self.settings), self.delivery)
                    self.logger_provider = provider
                    self.pending_logs.attach(provider)
        except Exception as exc:
            self._logs_failed = True
            log.warn(f"could not set up logs ({type(exc).__name__}: {exc}); no log records are exported")

    def export_program_logs(self) -> None:
        """OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED: the program's records from its
        first one (they wait in the pending provider like any other)."""
        self.install_logs()
        if self.pending_logs is not None:
            try:
                from .logs import attach_logging_handler

                attach_logging_handler(self.pending_logs)
            except Exception as exc:
                log.warn(f"could not export the program's logging ({type(exc).__name__}: {exc})")

    def configure_probes(self) -> None:
        """Once the probes' module has run: their tracers, limits and the first call's starter."""
        try:
            self._configure_probes()
        except Exception as exc:  # never into the import of a marked module
            log.warn(f"could not configure the probes ({type(exc).__name__}: {exc}); marked functions run, "
                     "and nothing they do is exported")

    def _configure_probes(self) -> None:
        from .. import probes
        from ..probes.redact import Redactor

        self.build_tracing()
        if not self._tracing_failed and (self.tracer_provider is None or self.error_provider is None):
            # the build itself imported the probes (its processors use parts of them):
            # configured when it is done, before the import that asked for it returns
            self._probes_waiting = True
            return
        settings = self.settings
        spans = bool(settings.traces_exporters) and self.tracer_provider is not None and self.error_provider is not None
        probes.configure(
            tracer=_own_tracer(self.tracer_provider) if spans else None,
            error_tracer=_own_tracer(self.error_provider) if spans else None,
            span_rate_limit=settings.span_rate_limit,
            span_burst=settings.span_burst,
            trace_span_budget=settings.trace_span_budget,
            slow_threshold=settings.slow_threshold,
            late_span_rate=settings.late_span_rate,
            prompt_max_length=settings.prompt_max_length,
            capture_prompt=settings.capture_prompt,
            accelerator=settings.accelerator,
            redact=Redactor(settings.redact),
            starter=self.begin,
        )
        probes.experiments.configure(settings.shadow[0], dict(settings.shadow[1]))

    def begin(self) -> None:
        """The first marked call: build the meter provider and the exporters off its thread."""
        self._begun_ns = time.time_ns()
        background.EXIT_WAIT[0] = self.timeout / 2
        lifecycle.wait_for_set_up_at_main_end()  # done by the tracing build, unless it could not be built
        from . import exporters

        lazies = self._lazy_processors()
        for lazy in lazies:
            lazy._asked = True  # built by the thread below, not by a thread of their own

        def build_all() -> None:
            # an exit flush that began meanwhile waits for this (it flushes what this builds)
            if "otlp" in self.settings.traces_exporters + self.settings.metrics_exporters:
                exporters.load_log_sdk()
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
            from .exporters import metric_readers
            from .ids import isolate_loaded_modules

            readers = metric_readers(self.settings, self.delivery) + self.extra_readers
            self._readers = readers
            meter_provider = MeterProvider(resource=self.current_resource(), metric_readers=readers, shutdown_on_exit=False)
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
        if self.resource is None:  # tracing could not be set up: the metrics still name their process
            self.resource = build_resource(self.settings.resource_environ, self._main_script, self._argv, self._cwd)
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
        self._tracing_lock = threading.Lock()  # one held by another thread at fork stays held
        self._logs_lock = threading.Lock()
        if self.pending_logs is not None:
            self.pending_logs.forked()
        if self.tracer_provider is None or self.resource is None:
            return  # built later, in this process, with its own ids
        from opentelemetry.sdk.resources import Resource

        old = self.resource.attributes.get(semconv.SERVICE_INSTANCE_ID)
        renewed = self.tracer_provider.resource.attributes.get(semconv.SERVICE_INSTANCE_ID)
        instance = renewed if renewed not in (None, old) else _new_instance_id()
        own: Dict[str, Any] = {semconv.SERVICE_INSTANCE_ID: instance}
        if semconv.PROCESS_PID in self.resource.attributes:
            own[semconv.PROCESS_PID] = os.getpid()
        self.resource = self.resource.merge(Resource(own))
        for provider in (self.tracer_provider, self.error_provider, self.logger_provider):
            if provider is not None and hasattr(provider, "_resource"):
                provider._resource = self.resource
        tracers = []
        for provider in (self.tracer_provider, self.error_provider):
            tracer = _own_tracer(provider) if provider is not None else None
            if tracer is not None and hasattr(tracer, "resource"):
                tracer.resource = self.resource  # get_tracer may hand back its cached tracer
            tracers.append(tracer)
        probes = sys.modules.get(PROBES)
        if probes is not None:
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
        libraries = sys.modules.get(f"{__package__}.libraries")  # loaded at start; nothing is imported at exit
        if libraries is not None:
            libraries.stop_activating()
        if not (self.started or background.running() or any(p._processor or p.waiting for p in self._lazy_processors())
                or self._log_processors()):
            return  # nothing was recorded: nothing to flush, no thread to start

        began = time.monotonic()
        spilling = self.delivery.spilling
        budget = self.timeout * 0.8 if spilling else self.timeout  # the rest: writing the spill
        absent = hurry and spilling and not self.delivery.hurry()
        if absent:
            budget = min(budget, HURRIED_FLUSH)
        done: List[bool] = []  # what _flush said: True when something was still being sent
        worker = threading.Thread(target=lambda: done.append(self._flush(budget)), name="aiotel-shutdown", daemon=True)
        # A full collection of a large heap (60 to 200 ms with tens of thousands of queued
        # spans) in the middle of the flush holds every thread, and spent the metrics' share
        # of the budget, so their last export, which carries what was lost, never ran. The
        # process is ending: nothing is gained by collecting now.
        collecting = gc.isenabled()
        gc.disable()
        try:
            try:
                worker.start()
            except RuntimeError:  # no new threads at exit (Python 3.12): in place, bounded all the same
                done.append(self._flush(budget))
            else:
                self._worker = worker
                worker.join(budget)
        finally:
            if collecting:
                gc.enable()
        late = not done or done[0]
        if late and spilling:
            self.delivery.rescue(self._queued_spans(), self._queued_log_records())
        said = self.delivery.said()
        if late and absent:
            log.warn("the collector took no connection; " + (said or "nothing was left to keep"))
        elif late:  # what the spill kept, and what nothing kept (a store's spans, or no spill)
            parts = [said] if said else []
            if self.abandoned:
                parts.append(f"exiting without {self.abandoned} finished spans (counted in aiotel.spans.dropped) "
                             "and any being written")
            log.warn(f"telemetry not flushed within {self.timeout:g} s (AIOTEL_SHUTDOWN_TIMEOUT); "
                     + ("; ".join(parts) or ("nothing was left to keep" if spilling else "exiting without it")))
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
        from . import exporters

        deadline = time.monotonic() + budget
        late = not background.settle(budget / 2)
        spans_deadline = time.monotonic() + (deadline - time.monotonic()) / 2
        try:
            for lazy in self._lazy_processors():
                if lazy.waiting and not late:
                    lazy.build()  # spans ended where no thread could build it (at exit)
                if isinstance(lazy._processor, exporters.ExportAtFlush):
                    lazy._processor.force_flush()
                    continue
                inner = getattr(lazy._processor, "_batch_processor", None)
                thread = getattr(inner, "_worker_thread", None)
                spilled = self.delivery.spilling and lazy.name == "otlp"  # else nothing keeps what is left
                if inner is None or thread is None:
                    if late and not spilled:
                        self._abandon(lazy.take_waiting())  # no exporter was built for them
                    continue  # an SDK laid out otherwise: its own shutdown, below
                inner.shutdown(timeout_millis=max(spans_deadline - time.monotonic(), 0.0) * 1000)
                # Past its timeout the SDK's worker stops after the batch in hand, and may
                # be gone before is_alive() is asked: what is still queued is never exported
                # (kept for the spill by shutdown's rescue, else counted here).
                left = bool(lazy.waiting or getattr(inner, "_queue", None))
                late = late or thread.is_alive() or left
                if left and not spilled:
                    self._abandon(exporters.left_in(lazy))
            # log records: half of what the spans left, the rest for the metrics' last export
            logs_deadline = time.monotonic() + max(deadline - time.monotonic(), 0.0) / 2
            for processor in self._log_processors():  # built: its module is loaded (never the logs API here)
                from .logs import flush as flush_logs

                late = not flush_logs(processor, max(logs_deadline - time.monotonic(), 0.0)) or late
            for reader in self._readers:
                if getattr(reader, "_daemon_thread", False) is None:  # read by nobody else: now
                    reader.collect(timeout_millis=max(deadline - time.monotonic(), 0.01) * 1000)
            if self.meter_provider is not None:
                self.meter_provider.shutdown(timeout_millis=max(deadline - time.monotonic(), 0.01) * 1000)
            if self.tracer_provider is not None:
                self.tracer_provider.shutdown()  # the processors stopped above return at once
        except Exception as exc:
            log.warn(f"could not flush telemetry at exit ({type(exc).__name__}: {exc})")
        return late or time.monotonic() > deadline

    def _queued_spans(self) -> List[Any]:
        """At the exit deadline: the spans still queued, and those still waiting for an
        exporter that the set-up has not built yet."""
        from . import exporters

        found: List[Any] = []
        for lazy in self._lazy_processors():
            if lazy.name == "otlp":  # the spill is OTLP's: a store's or console's spans are counted by _flush
                found += exporters.left_in(lazy)
        return found

    def _abandon(self, spans: List[Any]) -> None:
        """Spans no exporter will take now, with no spill to keep them: counted before
        the last metric export, which carries the count."""
        if spans:
            self.abandoned += len(spans)
            losses.spans_lost(losses.EXIT_DEADLINE, len(spans))

    def _queued_log_records(self) -> List[Any]:
        """At the exit deadline: the log records still queued for OTLP (none when logs were not built)."""
        if "otlp" not in self._log_exporters:
            return []
        from .logs import queued

        return queued(self._log_exporters["otlp"])

    def _log_processors(self) -> List[Any]:
        """The logs exporters' batch processors (records still waiting for the SDK's
        provider get it now, in place)."""
        if self.pending_logs is not None and self.pending_logs.waiting and self.logger_provider is None:
            self.build_logs()
        return list(self._log_exporters.values())

    def _lazy_processors(self) -> List[LazyBatchProcessor]:
        if self.tracer_provider is None:
            return []  # never built: nothing was recorded
        from .exporters import LazyBatchProcessor

        multi = self.tracer_provider._active_span_processor
        return [p for p in getattr(multi, "_span_processors", ()) if isinstance(p, LazyBatchProcessor)]


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


def _new_instance_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _cwd() -> Optional[str]:
    try:
        return os.getcwd()
    except OSError:  # removed under the program
        return None


def _own_tracer(provider: Any) -> Any:
    """aiotel's tracer. Its spans are never LLM calls: it decides with the sampler that
    ``llm_calls.RecordLLMCalls`` wraps, and a marked call's decision pays no extra call."""
    tracer = provider.get_tracer("aiotel", __version__)
    llm_calls = sys.modules.get(__package__ + ".llm_calls")  # loaded when the sampler was wrapped
    sampler = getattr(tracer, "sampler", None)
    if llm_calls is not None and isinstance(sampler, llm_calls.RecordLLMCalls):
        tracer.sampler = sampler.inner
    return tracer


def _tracer_provider(**options: Any) -> TracerProvider:
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    # SDK 1.3x-1.41 record their own otel.sdk.span.* metrics on every span start, through
    # the global meter provider (ours): a cost per span and series nobody asked aiotel for.
    try:
        return TracerProvider(meter_provider=NoOpMeterProvider(), **options)
    except TypeError:  # an SDK without that parameter has no such metrics
        return TracerProvider(**options)


def build_resource(environ: Mapping[str, str], main_script: Optional[str] = None,
                   argv: Optional[List[str]] = None, cwd: Optional[str] = None) -> Resource:
    """The SDK's resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, plus what
    aiotel detects for the keys they leave out (see ``aiotel.pipeline.resource``)."""
    from opentelemetry.sdk.resources import Resource

    from .resource import detected_attributes

    configured = Resource.create({})
    try:
        detected = detected_attributes(environ, configured.attributes, main_script, argv, cwd)
    except Exception as exc:
        log.warn(f"resource detection failed ({type(exc).__name__}: {exc}); using the configured attributes only")
        detected = {semconv.TELEMETRY_DISTRO_NAME: "aiotel", semconv.TELEMETRY_DISTRO_VERSION: __version__}
    return configured.merge(Resource(detected))


def start(
    settings: Settings, extra_readers: Optional[List[MetricReader]] = None, main_script: Optional[str] = None
) -> Optional[Pipeline]:
    """The pipeline, its providers built when first needed (see ``Pipeline``); None when
    OTEL_SDK_DISABLED."""
    if settings.sdk_disabled:
        return None
    from .libraries import when_imported

    pipeline = Pipeline(settings, main_script, extra_readers)
    _silence_what_requests_silences(settings)
    lifecycle.install(pipeline)
    when_imported(TRACE_API, pipeline.build_tracing)
    when_imported(PROBES, pipeline.configure_probes)
    if settings.logs_exporters:
        when_imported(LOGS_API, pipeline.install_logs)
        if settings.logging_handler:  # the program's records are opted in: from its first one
            pipeline.export_program_logs()
    return pipeline
