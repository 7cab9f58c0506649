"""Builds the OpenTelemetry SDK pipeline the probes report to, and tears it down at exit.

Exporters: OTLP over gRPC or HTTP/protobuf (``OTEL_EXPORTER_OTLP_PROTOCOL`` and its
per-signal forms, default http/protobuf as the spec recommends, which also keeps gRPC
out of start-up), ``console``, ``store`` (the embedded local store, the default when no
exporter and no endpoint is configured) and ``none``. The exporters read their endpoint, headers,
compression and timeout from the ``OTEL_EXPORTER_OTLP_*`` variables themselves.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any, List, Optional

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from . import log, metrics, probes
from ._version import __version__
from .config import Settings
from .resource import detected_attributes


class Pipeline:
    """The providers aiotel built; ``shutdown`` flushes them within a time bound."""

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider, timeout: float) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.timeout = timeout
        self._done = False

    def flush(self) -> None:
        self.tracer_provider.force_flush(int(self.timeout * 1000))
        self.meter_provider.force_flush(int(self.timeout * 1000))

    def shutdown(self) -> None:
        """Flush and stop, giving up after ``timeout`` seconds: exit never hangs on a collector."""
        if self._done:
            return
        self._done = True

        def stop() -> None:
            try:
                self.meter_provider.shutdown(timeout_millis=self.timeout * 1000)
                self.tracer_provider.shutdown()
            except Exception as exc:
                log.warn(f"could not flush telemetry at exit ({type(exc).__name__}: {exc})")

        worker = threading.Thread(target=stop, name="aiotel-shutdown", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # no new threads this late in finalization: flush in place
            stop()
            return
        worker.join(self.timeout)
        if worker.is_alive():
            log.warn(f"telemetry not flushed within {self.timeout:g} s (AIOTEL_SHUTDOWN_TIMEOUT); exiting without it")


def _otlp_span_exporter(protocol: str) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    return OTLPSpanExporter()


def _otlp_metric_exporter(protocol: str) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
    return OTLPMetricExporter()


def _span_exporter(name: str, settings: Settings) -> Any:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "store":
        from .store import StoreSpanExporter

        return StoreSpanExporter(settings.store_dir, settings.store_max_bytes)
    return _otlp_span_exporter(settings.otlp_traces_protocol)


def _metric_exporter(name: str, settings: Settings) -> Any:
    if name == "console":
        return ConsoleMetricExporter()
    if name == "store":
        from .store import StoreMetricExporter

        return StoreMetricExporter(settings.store_dir, settings.store_max_bytes)
    return _otlp_metric_exporter(settings.otlp_metrics_protocol)


def _span_exporters(settings: Settings) -> List[Any]:
    exporters = []
    for name in settings.traces_exporters:
        try:
            exporters.append(_span_exporter(name, settings))
        except Exception as exc:
            log.warn(f"traces exporter {name!r} unavailable ({type(exc).__name__}: {exc}); spans are not exported there")
    return exporters


def _metric_readers(settings: Settings) -> List[MetricReader]:
    readers: List[MetricReader] = []
    for name in settings.metrics_exporters:
        try:
            readers.append(PeriodicExportingMetricReader(_metric_exporter(name, settings)))
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


def _batch_processor(exporter: Any) -> BatchSpanProcessor:
    try:
        return BatchSpanProcessor(exporter, meter_provider=NoOpMeterProvider())  # same reason
    except TypeError:
        return BatchSpanProcessor(exporter)


def build_resource(main_script: Optional[str] = None) -> Resource:
    """The SDK's resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, plus what
    aiotel detects for the keys they leave out (see ``aiotel.resource``)."""
    configured = Resource.create({})
    try:
        detected = detected_attributes(os.environ, configured.attributes, main_script)
    except Exception as exc:
        log.warn(f"resource detection failed ({type(exc).__name__}: {exc}); using the configured attributes only")
        detected = {"telemetry.distro.name": "aiotel", "telemetry.distro.version": __version__}
    return configured.merge(Resource(detected))


def start(
    settings: Settings, extra_readers: Optional[List[MetricReader]] = None, main_script: Optional[str] = None
) -> Optional[Pipeline]:
    """Build the providers, make them global, point the probes at them; None when disabled."""
    if settings.sdk_disabled:
        return None
    log.setup()
    resource = build_resource(main_script)
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG), as the SDK reads it.
    tracer_provider = _tracer_provider(resource=resource, shutdown_on_exit=False)
    for exporter in _span_exporters(settings):
        tracer_provider.add_span_processor(_batch_processor(exporter))
    # Same processors, but samples everything: spans for failed calls the sampler dropped.
    error_provider = _tracer_provider(
        sampler=ALWAYS_ON,
        resource=resource,
        shutdown_on_exit=False,
        active_span_processor=tracer_provider._active_span_processor,
    )
    readers = _metric_readers(settings) + list(extra_readers or [])
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    for reader in readers:
        metrics.attach(reader, resource)
    trace_api.set_tracer_provider(tracer_provider)
    metrics_api.set_meter_provider(meter_provider)
    probes.configure(
        tracer=tracer_provider.get_tracer("aiotel", __version__) if settings.traces_exporters else None,
        error_tracer=error_provider.get_tracer("aiotel", __version__) if settings.traces_exporters else None,
        span_rate_limit=settings.span_rate_limit,
        prompt_max_length=settings.prompt_max_length,
        capture_prompt=settings.capture_prompt,
    )
    pipeline = Pipeline(tracer_provider, meter_provider, settings.shutdown_timeout)
    # Registered early, so it runs after the program's own atexit handlers (LIFO),
    # which may still call marked functions.
    atexit.register(pipeline.shutdown)
    return pipeline
