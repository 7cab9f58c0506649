"""The spill: export requests that could not be sent, kept on disk for ``aiotel push``.

The anchor is the OpenTelemetry Collector's persistent queue. What an OTLP exporter could
not deliver (the collector did not answer, the export queue overflowed, the exit
deadline came first) is written here as store lines: the same file names and OTLP/JSON
lines as the embedded store, so ``aiotel report --store`` reads a spill and ``aiotel
push`` replays it. The directory is private (``$XDG_STATE_HOME/aiotel/spill``, never the
program's working directory) and capped: a batch that does not fit is refused, and the
caller counts it as lost.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, Optional

from .. import log
from .writer import JsonLinesFile, file_name, otlp_json, spans_json, usable_directory


class Spill:
    def __init__(self, directory: str, max_bytes: int, private_directory: Optional[str] = None) -> None:
        self.directory = directory
        self.private_directory = private_directory or directory
        self.max_bytes = max_bytes
        self.kept = {"span": 0, "metrics export": 0, "log record": 0}
        self._files: Dict[str, JsonLinesFile] = {}
        self._pid = -1
        self._used: Optional[int] = None  # bytes in the directory, measured on first use
        self._lock = threading.Lock()

    def _file(self, signal: str) -> JsonLinesFile:
        if self._pid != os.getpid():  # a forked child keeps its own files and counts
            self._files, self._pid, self._used = {}, os.getpid(), None
            self.kept = {key: 0 for key in self.kept}
        found = self._files.get(signal)
        if found is None:
            directory = usable_directory(self.directory, self.private_directory)
            self.directory = directory
            # one file per process and signal, never rotated: the cap bounds the directory
            found = self._files[signal] = JsonLinesFile(directory, file_name(signal), self.max_bytes + 1)
        return found

    def _measure(self) -> int:
        total = 0
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            pass
        return total

    def keep_spans(self, spans: Any) -> bool:
        """Write ``spans`` (finished SDK spans); False when they did not fit or could not be written."""
        if not self._write("traces", lambda: spans_json(spans), len(spans)):
            return False
        self.kept["span"] += len(spans)
        return True

    def keep_metrics(self, metrics_data: Any) -> bool:
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        if not self._write("metrics", lambda: otlp_json(encode_metrics(metrics_data)), 1):
            return False
        self.kept["metrics export"] += 1
        return True

    def keep_log_records(self, records: Any) -> bool:
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        if not self._write("logs", lambda: otlp_json(encode_logs(records)), len(records)):
            return False
        self.kept["log record"] += len(records)
        return True

    def _write(self, signal: str, line: Any, items: int) -> bool:
        try:
            with self._lock:
                target = self._file(signal)
                if self._used is None:
                    self._used = self._measure()
                text = line()
                size = len(text.encode("utf-8")) + 1
                if self._used + size > self.max_bytes:
                    log.warn(f"the spill {self.directory} is full (AIOTEL_SPILL_MAX_BYTES={self.max_bytes}); "
                             "telemetry that cannot be sent is now lost, and counted")
                    return False
                target.write_line(text, items)
                self._used += size
                return True
        except Exception:
            return False  # said by JsonLinesFile when it is the disk; counted by the caller

    def said(self) -> Optional[str]:
        """One sentence on what this process kept here, or None."""
        kept = [f"{count} {what}{'s' if count > 1 else ''}" for what, count in self.kept.items() if count]
        if not kept:
            return None
        listed = f"{', '.join(kept[:-1])} and {kept[-1]}" if len(kept) > 1 else kept[0]
        return (f"{listed} could not be sent: kept in {self.directory}; "
                f"send them later with: aiotel push --store {self.directory}")
