"""aiotel's own voice on standard error: one line per distinct problem, never a traceback.

The user's program owns its output; aiotel speaks only to say what it could not do,
and says each thing once. The OpenTelemetry SDK's own loggers (exporters that cannot
reach a collector log on every batch) are routed through the same once-only filter.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Optional, Set

logger = logging.getLogger("aiotel")

_said: Set[str] = set()
_threshold = [logging.WARNING]  # the level setup() was given (OTEL_LOG_LEVEL)
_lock = threading.Lock()


class _Once(logging.Filter):
    """Passes the first record of each (logger, message template)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg).lower()
        exporting = record.name.startswith("opentelemetry.exporter") or "failed to export" in text or "exporting" in text
        if record.name.startswith("opentelemetry") and exporting and "invalid" not in text:
            # exporters log every retry of every batch: one line says it all, a warning
            # whatever level the SDK gave it (a collector that is down is not aiotel's error)
            if _threshold[0] > logging.WARNING or not first_time("opentelemetry export"):
                return False
            record.msg = f"could not export telemetry: {record.getMessage()} (further export errors are not shown)"
            record.args = ()
            return True
        return first_time(f"{record.name}:{record.msg}")


def first_time(key: str) -> bool:
    with _lock:
        if key in _said:
            return False
        _said.add(key)
        return True


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message = f"{message} ({type(exc).__name__}: {exc})"
        return "aiotel: " + " ".join(message.split("\n"))


class _Stderr(logging.StreamHandler):
    """Looks sys.stderr up on every record: the program may replace it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_OneLine())

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


_handler: "Optional[_Stderr]" = None
_otel_hooked = False

# OTEL_LOG_LEVEL values (the spec's names) to logging levels
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
          "error": logging.ERROR}


def setup(otel_loggers: bool = True, level: int = logging.WARNING) -> None:
    """Route aiotel's and (optionally) the OTel SDK's records to stderr, once each.

    ``level`` (from ``OTEL_LOG_LEVEL``) applies to both; aiotel says nothing below warnings
    unless asked, since the program owns its output."""
    global _handler, _otel_hooked
    _threshold[0] = level
    if _handler is None:
        _handler = _Stderr()
        _handler.addFilter(_Once())
        logger.addHandler(_handler)
        logger.propagate = False
    logger.setLevel(level)
    if otel_loggers:
        otel = logging.getLogger("opentelemetry")
        if not _otel_hooked:
            otel.addHandler(_handler)
            otel.propagate = False
            _otel_hooked = True
        otel.setLevel(level)


def warn(message: str) -> None:
    """One line on stderr, once per distinct message."""
    if _handler is None:
        setup(otel_loggers=False)
    logger.warning(message)
