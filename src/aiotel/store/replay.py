"""Store lines back into OTLP export requests, and how far a push got, for ``aiotel push``.

A push records, per file and endpoint, the byte offset up to which every line was
acknowledged, in a sidecar under ``<store>/.push/`` (never in the lines, which stay plain
OTLP/JSON). The sidecar is keyed by the file's inode, so a rotation (a rename) keeps the
progress, and it holds a digest of the file's first line, so a new file that reuses an
inode starts from zero. Only whole lines are sent: a file still being written is pushed
up to its last newline and resumed from there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any, Dict, Iterator, Optional, Tuple

from ..cachedir import write_atomically

PROGRESS_DIR = ".push"
_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _base64_ids(value: Any) -> Any:
    """OTLP/JSON's hex ids as protobuf's JSON mapping wants them (base64)."""
    if isinstance(value, dict):
        return {k: (base64.b64encode(bytes.fromhex(v)).decode() if k in _ID_FIELDS and isinstance(v, str) else _base64_ids(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_base64_ids(v) for v in value]
    return value


def request_of(line: bytes, signal: str) -> Any:
    """The export request one store line holds; ValueError when it holds none."""
    from google.protobuf.json_format import ParseDict, ParseError

    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest as Request
    elif signal == "logs":
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # type: ignore[assignment]
            ExportLogsServiceRequest as Request,
        )
    else:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # type: ignore[assignment]
            ExportMetricsServiceRequest as Request,
        )
    try:
        data = json.loads(line.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return ParseDict(_base64_ids(data), Request(), ignore_unknown_fields=True)
    except (ParseError, TypeError, AttributeError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def whole_lines(path: str, offset: int) -> Iterator[Tuple[int, bytes]]:
    """(offset after the line, line) for each complete line of ``path`` from ``offset``."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    position = offset
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            return  # an unfinished last line waits for the next push
        position = offset + end + 1
        line = data[start:end]
        start = end + 1
        if line.strip():
            yield position, line


class Progress:
    def __init__(self, store: str) -> None:
        self.directory = os.path.join(store, PROGRESS_DIR)
        self._sidecars: Dict[str, Tuple[str, str]] = {}

    def _sidecar(self, path: str) -> Tuple[str, str]:
        found = self._sidecars.get(path)
        if found is None:
            st = os.stat(path)
            with open(path, "rb") as fh:
                head = hashlib.sha256(fh.readline()).hexdigest()
            found = self._sidecars[path] = (os.path.join(self.directory, f"{st.st_dev}-{st.st_ino}.json"), head)
        return found

    def _read(self, sidecar: str, head: str) -> Dict[str, int]:
        try:
            with open(sidecar, encoding="utf-8") as fh:
                data = json.load(fh)
            if data.get("head") == head and isinstance(data.get("endpoints"), dict):
                return {str(k): int(v) for k, v in data["endpoints"].items()}
        except (OSError, ValueError, TypeError, AttributeError):
            pass
        return {}

    def offset(self, path: str, endpoint: str) -> int:
        sidecar, head = self._sidecar(path)
        return self._read(sidecar, head).get(endpoint, 0)

    def advance(self, path: str, endpoint: str, offset: int) -> Optional[str]:
        """Record that ``endpoint`` acknowledged ``path`` up to ``offset``; why not, or None."""
        sidecar, head = self._sidecar(path)
        endpoints = self._read(sidecar, head)
        endpoints[endpoint] = offset
        record = {"file": os.path.basename(path), "head": head, "endpoints": endpoints}
        return write_atomically(sidecar, json.dumps(record).encode("utf-8"))
