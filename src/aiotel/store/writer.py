"""The embedded local store: telemetry as OTLP/JSON lines when no collector is configured.

The format is the one the OpenTelemetry Collector's file exporter writes and its
``otlpjsonfile`` receiver reads: one ``ExportTraceServiceRequest`` or
``ExportMetricsServiceRequest`` per line, in the OTLP/JSON encoding (lowerCamelCase
field names, enums as integers, trace and span ids as hex). So a store can be replayed
into any backend later.

One file per process and signal (``traces-<start>-<pid>.jsonl``), created 0600 in a
0700 directory. When a file passes ``max_bytes`` it is renamed to ``.1`` (replacing the
previous one) and a new one starts: a process never holds more than twice the cap.
Writes happen in the SDK's exporter threads (batch span processor, periodic metric
reader), never in the application's.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any, Dict, Optional, Sequence

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _hex_ids(value: Any) -> Any:
    """OTLP/JSON writes ids as hex where protobuf's JSON mapping writes base64."""
    if isinstance(value, dict):
        return {k: (base64.b64decode(v).hex() if k in _ID_FIELDS and isinstance(v, str) else _hex_ids(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def _load_encoding() -> None:
    """Import protobuf's C extension and the OTLP encoders now, when an exporter is built,
    never in an exit handler: importing upb there resets CPython's "unhandled
    KeyboardInterrupt" flag, and the program would exit 1 instead of by SIGINT."""
    from google.protobuf import json_format  # noqa: F401
    from opentelemetry.exporter.otlp.proto.common import metrics_encoder, trace_encoder  # noqa: F401


def otlp_json(message: Any) -> str:
    """One protobuf export request as one OTLP/JSON line (no newline)."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(message, use_integers_for_enums=True, preserving_proto_field_name=False)
    return json.dumps(_hex_ids(data), separators=(",", ":"))


class JsonLinesFile:
    """An append-only, size-capped, 0600 file of lines; thread-safe."""

    def __init__(self, directory: str, name: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = os.path.join(directory, name)
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: Optional[int] = None
        self._size = 0

    def _open(self) -> int:
        if self._fd is None:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def write_line(self, line: str) -> None:
        data = line.encode("utf-8") + b"\n"
        with self._lock:
            fd = self._open()
            if self._size and self._size + len(data) > self.max_bytes:
                os.close(fd)
                self._fd = None
                os.replace(self.path, self.path + ".1")
                fd = self._open()
            os.write(fd, data)
            self._size += len(data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _file_name(signal: str) -> str:
    # start time first: a directory listing is in time order; pid: one file per process
    return f"{signal}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"


class StoreSpanExporter(SpanExporter):
    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        _load_encoding()
        self.directory = directory
        self.max_bytes = max_bytes
        self._file: Optional[JsonLinesFile] = None
        self._pid = -1

    def _target(self) -> JsonLinesFile:
        if self._file is None or self._pid != os.getpid():  # a forked child writes its own file
            self._file = JsonLinesFile(self.directory, _file_name("traces"), self.max_bytes)
            self._pid = os.getpid()
        return self._file

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        try:
            self._target().write_line(otlp_json(encode_spans(spans)))
            return SpanExportResult.SUCCESS
        except Exception:
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        if self._file is not None:
            self._file.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class StoreMetricExporter(MetricExporter):
    """Cumulative points (``aiotel report`` takes the last point of each series per file)."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(preferred_temporality=_all_cumulative())
        _load_encoding()
        self.directory = directory
        self.max_bytes = max_bytes
        self._file: Optional[JsonLinesFile] = None
        self._pid = -1

    def _target(self) -> JsonLinesFile:
        if self._file is None or self._pid != os.getpid():
            self._file = JsonLinesFile(self.directory, _file_name("metrics"), self.max_bytes)
            self._pid = os.getpid()
        return self._file

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        try:
            self._target().write_line(otlp_json(encode_metrics(metrics_data)))
            return MetricExportResult.SUCCESS
        except Exception:
            return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if self._file is not None:
            self._file.close()


def _all_cumulative() -> Dict[type, AggregationTemporality]:
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )

    kinds = (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge)
    return {kind: AggregationTemporality.CUMULATIVE for kind in kinds}
