"""``aiotel push``: replay a spill or a store to an OTLP endpoint, once.

Each line of the store's files is one export request; it is sent as it is, over
OTLP/HTTP (protobuf) or gRPC, and the push records in a sidecar how far each file got
for that endpoint (see ``aiotel.store.replay``). A second push sends only what came
since; a push that failed halfway resumes where the endpoint stopped acknowledging.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote, urlsplit

from .. import config
from ..store import replay, rollup

_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "push",
        help="send a spill or a store to an OTLP endpoint, resuming where the last push stopped",
        description=(
            "Replay what aiotel kept on disk (by default the spill, where OTLP exports that could "
            "not be sent went; or a store with --store) to an OTLP endpoint. Each file's progress "
            "per endpoint is recorded beside it, so pushing again sends nothing twice. Exit 1 when "
            "the endpoint refused or did not answer: the same command resumes."
        ),
    )
    parser.add_argument("--store", metavar="DIR", help="what to push (default: the spill, $AIOTEL_SPILL)")
    parser.add_argument("--endpoint", metavar="URL",
                        help="OTLP endpoint (default: $OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318, grpc :4317)")
    parser.add_argument("--protocol", choices=("http/protobuf", "grpc"),
                        help="default: $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per request (default 10)")
    parser.set_defaults(run=run, subparser=parser)


def _headers(environ: Mapping[str, str]) -> Dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS: key=value pairs, comma-separated, URL-encoded."""
    found = {}
    for item in environ.get("OTEL_EXPORTER_OTLP_HEADERS", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            found[unquote(key.strip()).lower()] = unquote(value.strip())
    return found


def targets(args: argparse.Namespace, environ: Mapping[str, str]) -> Tuple[str, Dict[str, str]]:
    """The protocol, and the URL (http) or address (grpc) per signal, as the exporters resolve them."""
    protocol = args.protocol or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip().lower() or "http/protobuf"
    base = args.endpoint or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    default = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
    found = {}
    for signal, path in _PATHS.items():
        specific = "" if args.endpoint else environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
        if protocol == "grpc":
            found[signal] = specific or base or default
        else:
            found[signal] = specific or (base or default).rstrip("/") + path
    return protocol, found


def _send_http(url: str, body: bytes, headers: Dict[str, str], timeout: float) -> Optional[str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
        return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"


class _Grpc:
    def __init__(self, address: str, headers: Dict[str, str], timeout: float) -> None:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        parts = urlsplit(address if "://" in address else f"http://{address}")
        target = parts.netloc or parts.path
        self.channel = (grpc.secure_channel(target, grpc.ssl_channel_credentials()) if parts.scheme == "https"
                        else grpc.insecure_channel(target))
        self.stubs = {"traces": trace_service_pb2_grpc.TraceServiceStub(self.channel),
                      "metrics": metrics_service_pb2_grpc.MetricsServiceStub(self.channel),
                      "logs": logs_service_pb2_grpc.LogsServiceStub(self.channel)}
        self.metadata = list(headers.items())
        self.timeout = timeout
        self.error = grpc.RpcError

    def send(self, signal: str, request: Any) -> Optional[str]:
        try:
            self.stubs[signal].Export(request, timeout=self.timeout, metadata=self.metadata)
            return None
        except self.error as exc:
            code = getattr(exc, "code", lambda: None)()
            return f"gRPC {getattr(code, 'name', code)}: {getattr(exc, 'details', lambda: '')()}"


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    environ = os.environ
    settings = config.load_settings(environ)
    store = args.store or settings.spill_dir
    if not store:
        parser.error("no spill configured (AIOTEL_SPILL=off): name what to push with --store")
    if not os.path.isdir(store):
        print(f"aiotel push: nothing to push: {store} does not exist", file=sys.stderr)
        return 0
    protocol, urls = targets(args, environ)
    headers = _headers(environ)
    grpc_client = _Grpc(urls["traces"], headers, args.timeout) if protocol == "grpc" else None
    progress = replay.Progress(store)
    sent = already = 0
    skipped: List[str] = []
    for signal in ("metrics", "traces", "logs"):
        endpoint = urls[signal]
        for path in rollup.store_files(store, signal):
            start = progress.offset(path, endpoint)
            if start and start >= os.path.getsize(path):
                already += 1
                continue
            for offset, line in replay.whole_lines(path, start):
                try:
                    request = replay.request_of(line, signal)
                except ValueError as exc:
                    skipped.append(f"{path} at byte {offset - len(line) - 1}: {exc}")
                    progress.advance(path, endpoint, offset)
                    continue
                problem = (grpc_client.send(signal, request) if grpc_client is not None
                           else _send_http(endpoint, request.SerializeToString(), headers, args.timeout))
                if problem:
                    print(f"aiotel push: {endpoint} did not take {path} ({problem}); {sent} requests sent before. "
                          "Run the same command again to resume", file=sys.stderr)
                    return 1
                failed = progress.advance(path, endpoint, offset)
                if failed:  # sent, but the record of it could not be kept: stop before sending more twice
                    print(f"aiotel push: cannot record progress in {progress.directory} ({failed}); stopping",
                          file=sys.stderr)
                    return 1
                sent += 1
    for line in skipped:
        print(f"aiotel push: skipped a line that is not an export request: {line}", file=sys.stderr)
    print(f"pushed {sent} export requests from {store} to {urls['traces'] if protocol == 'grpc' else os.path.dirname(urls['traces'])}"
          + (f"; {already} files were pushed there already" if already else ""))
    return 0
