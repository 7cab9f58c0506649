"""A test OTLP receiver: real protobuf (opentelemetry-proto) over HTTP and gRPC.

It decodes what an exporter sends into plain records, so tests assert on the wire
format a collector would see, not on SDK objects. Bound to 127.0.0.1 on an ephemeral
port; every wait has a timeout.
"""

from __future__ import annotations

import dataclasses
import gzip
import threading
import time
import zlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2


def any_value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def attributes(kvs: Any) -> Dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


@dataclasses.dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start: int
    end: int
    attributes: Dict[str, Any]
    status_code: int
    status_message: str
    events: List[Dict[str, Any]]
    links: List[Dict[str, Any]]
    scope: str
    resource: Dict[str, Any]


@dataclasses.dataclass
class Point:
    metric: str
    unit: str
    kind: str
    temporality: int
    attributes: Dict[str, Any]
    count: int
    sum: float
    bucket_counts: List[int]
    explicit_bounds: List[float]
    scope: str
    resource: Dict[str, Any]
    start: int = 0  # start_time_unix_nano: where a cumulative series begins
    time: int = 0


@dataclasses.dataclass
class LogRecord:
    event_name: str
    body: Any
    attributes: Dict[str, Any]
    trace_id: str
    span_id: str
    scope: str
    resource: Dict[str, Any]


class Received:
    """Everything decoded so far; ``wait`` polls until a condition holds or times out."""

    def __init__(self) -> None:
        self.spans: List[Span] = []
        self.points: List[Point] = []
        self.logs: List[LogRecord] = []
        self.requests: List[str] = []  # "http /v1/traces", "grpc metrics", ...
        self._lock = threading.RLock()  # a wait() condition may call latest_points()

    def add_traces(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        spans = []
        for rs in request.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(
                        Span(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            kind=s.kind,
                            start=s.start_time_unix_nano,
                            end=s.end_time_unix_nano,
                            attributes=attributes(s.attributes),
                            status_code=s.status.code,
                            status_message=s.status.message,
                            events=[{"name": e.name, **attributes(e.attributes)} for e in s.events],
                            links=[{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()} for link in s.links],
                            scope=ss.scope.name,
                            resource=resource,
                        )
                    )
        with self._lock:
            self.spans.extend(spans)

    def add_logs(self, request: logs_service_pb2.ExportLogsServiceRequest) -> None:
        records = []
        for rl in request.resource_logs:
            resource = attributes(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    records.append(LogRecord(
                        event_name=r.event_name, body=any_value(r.body) if r.HasField("body") else None,
                        attributes=attributes(r.attributes), trace_id=r.trace_id.hex(), span_id=r.span_id.hex(),
                        scope=sl.scope.name, resource=resource))
        with self._lock:
            self.logs.extend(records)

    def add_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        points = []
        for rm in request.resource_metrics:
            resource = attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    for p in data.data_points:
                        is_histogram = kind == "histogram"
                        number = getattr(p, p.WhichOneof("value")) if kind in ("sum", "gauge") and p.WhichOneof("value") else None
                        points.append(
                            Point(
                                metric=m.name,
                                unit=m.unit,
                                kind=kind,
                                temporality=getattr(data, "aggregation_temporality", 0),
                                attributes=attributes(p.attributes),
                                count=p.count if is_histogram else 0,
                                sum=p.sum if is_histogram else (number or 0.0),
                                bucket_counts=list(p.bucket_counts) if is_histogram else [],
                                explicit_bounds=list(p.explicit_bounds) if is_histogram else [],
                                scope=sm.scope.name,
                                resource=resource,
                                start=p.start_time_unix_nano,
                                time=p.time_unix_nano,
                            )
                        )
        with self._lock:
            self.points.extend(points)

    def wait(self, condition: Callable[["Received"], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if condition(self):
                    return True
            time.sleep(0.05)
        with self._lock:
            return condition(self)

    def span_names(self) -> List[str]:
        with self._lock:
            return sorted({s.name for s in self.spans})

    def latest_points(self, metric: str) -> Dict[tuple, Point]:
        """The last point per attribute set (cumulative: the total)."""
        latest: Dict[tuple, Point] = {}
        with self._lock:
            for p in self.points:
                if p.metric == metric:
                    latest[tuple(sorted(p.attributes.items()))] = p
        return latest


def _decompress(body: bytes, encoding: Optional[str]) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class HttpReceiver:
    """OTLP/HTTP with binary protobuf on /v1/traces, /v1/metrics and /v1/logs."""

    def __init__(self) -> None:
        self.received = Received()
        self.accept_only: Optional[int] = None  # set: later requests get 503, as from an overloaded collector
        received = self.received
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = _decompress(self.rfile.read(length), self.headers.get("Content-Encoding"))
                if receiver.accept_only is not None and len(received.requests) >= receiver.accept_only:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path == "/v1/traces":
                    request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                    received.add_traces(request)
                    reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/logs":
                    request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
                    received.add_logs(request)
                    reply = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
                    received.add_metrics(request)
                    reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                received.requests.append(f"http {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def env(self) -> Dict[str, str]:
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GrpcReceiver:
    """OTLP/gRPC: the collector's TraceService, MetricsService and LogsService."""

    def __init__(self) -> None:
        import grpc

        self.received = Received()
        received = self.received

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802
                received.add_traces(request)
                received.requests.append("grpc traces")
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request, context):  # noqa: N802
                received.add_metrics(request)
                received.requests.append("grpc metrics")
                return metrics_service_pb2.ExportMetricsServiceResponse()

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request, context):  # noqa: N802
                received.add_logs(request)
                received.requests.append("grpc logs")
                return logs_service_pb2.ExportLogsServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), self.server)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server.start()

    def env(self) -> Dict[str, str]:
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }

    def stop(self) -> None:
        self.server.stop(grace=1).wait(5)
