"""The embedded local store: telemetry as OTLP/JSON lines when no collector is configured.

The format is the one the OpenTelemetry Collector's file exporter writes and its
``otlpjsonfile`` receiver reads: one ``ExportTraceServiceRequest`` or
``ExportMetricsServiceRequest`` per line, in the OTLP/JSON encoding (lowerCamelCase
field names, enums as integers, trace and span ids as hex). So a store can be replayed
into any backend later.

One file per process and signal (see ``file_name``), created 0600 in a 0700 directory.
When a file passes ``max_bytes`` it is rotated (``.1`` to ``.4``; what falls off the end
is counted): a process never holds more than five times the cap per signal. Writes happen in the SDK's exporter threads (batch span processor, periodic metric
reader), never in the application's.
"""

from __future__ import annotations

import base64
import collections
import errno
import json
import os
import re
import socket
import stat
import threading
import time
from typing import Any, Callable, Deque, Dict, Optional, Sequence, Tuple

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import log
from .span_json import Unusual, spans_line

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
ROTATED_FILES = 4  # per process and signal, besides the current file
LAYOUT = 2  # in file names (see file_name); 1: <signal>-<start>-<pid>.jsonl
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
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


def spans_json(spans: Sequence[ReadableSpan]) -> str:
    """Spans as one OTLP/JSON line: written directly (``span_json``), or, for a batch
    holding a value that module does not spell exactly as protobuf does, through protobuf."""
    try:
        return spans_line(spans)
    except Unusual:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        return otlp_json(encode_spans(spans))


def otlp_json(message: Any) -> str:
    """One protobuf export request as one OTLP/JSON line (no newline)."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(message, use_integers_for_enums=True, preserving_proto_field_name=False)
    return json.dumps(_hex_ids(data), separators=(",", ":"))


class JsonLinesFile:
    """An append-only, size-capped, 0600 file of lines; thread-safe.

    Past ``max_bytes`` the file becomes ``.1``, ``.1`` becomes ``.2`` and so on; the
    oldest beyond ``ROTATED_FILES`` is removed and the items its lines held (spans, for a
    traces file) are passed to ``on_rotated_out``. A file that cannot be created or
    written is said once, naming the path and why; its lines are lost (the caller counts
    them as failed exports)."""

    def __init__(self, directory: str, name: str, max_bytes: int = DEFAULT_MAX_BYTES,
                 on_rotated_out: Optional[Callable[[int], None]] = None) -> None:
        self.path = os.path.join(directory, name)
        self.directory = directory
        self.max_bytes = max_bytes
        self.on_rotated_out = on_rotated_out
        self._lock = threading.Lock()
        self._fd: Optional[int] = None
        self._identity: Optional[Tuple[int, int]] = None  # (device, inode) of the current file, once created
        self._size = 0
        self._items = 0  # in the current file
        self._rotated: Deque[int] = collections.deque()  # items in .1, .2, ...

    def _open(self) -> int:
        if self._fd is None and self._identity is not None:
            # written again after close (an exporter thread still writing when the exit flush
            # closed the file): the same file, never a link or another file put in its place
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | _NOFOLLOW)
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self._identity:
                os.close(fd)
                raise OSError(errno.EEXIST, "another file took its place")
            self._fd = fd
        elif self._fd is None:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            # a new name every time: never appended through a link someone put there
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
            st = os.fstat(self._fd)
            self._identity = (st.st_dev, st.st_ino)
            self._size = 0
        return self._fd

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if len(self._rotated) == ROTATED_FILES:
            lost = self._rotated.pop()
            try:
                os.unlink(f"{self.path}.{ROTATED_FILES}")
            except OSError:
                pass
            if lost and self.on_rotated_out is not None:
                self.on_rotated_out(lost)
        for index in range(len(self._rotated), 0, -1):
            os.replace(f"{self.path}.{index}", f"{self.path}.{index + 1}")
        os.replace(self.path, self.path + ".1")
        self._identity = None  # the next line starts a new file
        self._rotated.appendleft(self._items)
        self._items = 0

    def write_line(self, line: str, items: int = 1) -> None:
        """Append one line holding ``items`` items. Raises OSError when it cannot, after
        saying so (once per path and reason)."""
        data = line.encode("utf-8") + b"\n"
        with self._lock:
            try:
                if self._fd is not None and self._size and self._size + len(data) > self.max_bytes:
                    self._rotate()
                os.write(self._open(), data)
            except OSError as exc:
                log.warn(f"cannot write the store file {self.path}: {exc.strerror or exc}; "
                         "telemetry that does not fit there is lost (AIOTEL_STORE)")
                raise
            self._size += len(data)
            self._items += items

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def file_name(signal: str) -> str:
    """``<signal>-v2-<start>-<pid>-<host>-<random>.jsonl``: the start time first, so a
    listing is in time order; host and a random part, so that processes on other hosts or
    in other pid namespaces (each one's pid 1, started in the same second) never share a
    file. ``v2`` is the layout, read by ``rollup``; the lines themselves stay plain OTLP/JSON."""
    host = re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname())[:32] or "host"
    return f"{signal}-v{LAYOUT}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{host}-{os.urandom(4).hex()}.jsonl"


def usable_directory(path: str, private: str) -> str:
    """``path``, unless it is a symbolic link or a world-writable directory without the
    sticky bit (anyone could swap the files in it): then, after saying so once, the
    private directory ``private`` (``$XDG_STATE_HOME/aiotel/store``, from config). A shared
    volume (other owners, group-writable as with Kubernetes' fsGroup) is fine: files are
    created 0600, under names nobody can guess."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return path  # created 0700 on first write
    if stat.S_ISLNK(st.st_mode):
        why = "it is a symbolic link"
    elif stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
        why = f"anyone can replace its files (mode {stat.S_IMODE(st.st_mode):04o}, no sticky bit)"
    else:
        return path
    log.warn(f"not writing the store to {path}: {why}; writing to {private} instead (AIOTEL_STORE)")
    return private


class _StoreExporter:
    """The file a process writes one signal to: its own, created on first export (a
    forked child gets a new one), in the checked directory."""

    signal = ""

    def __init__(self, directory: str, max_bytes: int, private_directory: Optional[str] = None) -> None:
        _load_encoding()
        self.directory = directory
        self.private_directory = private_directory or directory
        self.max_bytes = max_bytes
        self._file: Optional[JsonLinesFile] = None
        self._pid = -1

    def _target(self) -> JsonLinesFile:
        if self._file is None or self._pid != os.getpid():
            directory = usable_directory(self.directory, self.private_directory)
            self._file = JsonLinesFile(directory, file_name(self.signal), self.max_bytes, self._rotated_out)
            self._pid = os.getpid()
        return self._file

    def _rotated_out(self, items: int) -> None:
        pass

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()


class StoreSpanExporter(_StoreExporter, SpanExporter):
    """Spans; ``on_rotated_out`` hears how many a rotated-out file held."""

    signal = "traces"

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES, private_directory: Optional[str] = None,
                 on_rotated_out: Optional[Callable[[int], None]] = None) -> None:
        super().__init__(directory, max_bytes, private_directory)
        self.on_rotated_out = on_rotated_out

    def _rotated_out(self, items: int) -> None:
        if self.on_rotated_out is not None:
            self.on_rotated_out(items)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._target().write_line(spans_json(spans), len(spans))
            return SpanExportResult.SUCCESS
        except Exception:
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class StoreMetricExporter(_StoreExporter, MetricExporter):
    """Cumulative points (``aiotel report`` takes the last point of each series per
    process): a metrics file rotated out loses only the older points, never a total."""

    signal = "metrics"

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES, private_directory: Optional[str] = None) -> None:
        MetricExporter.__init__(self, preferred_temporality=_all_cumulative())
        _StoreExporter.__init__(self, directory, max_bytes, private_directory)

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
        self._close()


class StoreLogExporter(_StoreExporter):
    """Log records (GenAI events, and the program's logging when opted in)."""

    signal = "logs"

    def export(self, batch: Sequence[Any]) -> Any:
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
        from opentelemetry.sdk._logs.export import LogExportResult

        try:
            self._target().write_line(otlp_json(encode_logs(batch)), len(batch))
            return LogExportResult.SUCCESS
        except Exception:
            return LogExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        self._close()


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
