"""aiotel's own voice on standard error: one line per distinct problem, never a traceback.

The user's program owns its output; aiotel speaks only to say what it could not do,
and says each thing once. The OpenTelemetry SDK's own loggers (exporters that cannot
reach a collector log on every batch) are routed through the same once-only filter,
once the SDK is loaded (``setup``). ``logging`` itself is imported only then, or when
aiotel first has something to say: a process where aiotel stays silent and records
nothing never pays for it (about 4 ms at start-up).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Optional, Set

if TYPE_CHECKING:
    import logging

# logging's level numbers (fixed by that module, which is imported only when needed)
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
# OTEL_LOG_LEVEL values (the spec's names) to logging levels
LEVELS = {"debug": DEBUG, "info": INFO, "warn": WARNING, "warning": WARNING, "error": ERROR}

_said: Set[str] = set()
_threshold = [WARNING]  # the level OTEL_LOG_LEVEL gave (set_level, setup)
_lock = threading.Lock()
_handler: Optional[logging.Handler] = None
_otel_hooked = False


def first_time(key: str) -> bool:
    with _lock:
        if key in _said:
            return False
        _said.add(key)
        return True


def set_level(level: int) -> None:
    """The level (from ``OTEL_LOG_LEVEL``) for aiotel's and the SDK's records, without
    loading ``logging`` yet."""
    _threshold[0] = level
    if _handler is not None:
        setup(otel_loggers=_otel_hooked, level=level)


def setup(otel_loggers: bool = True, level: Optional[int] = None) -> None:
    """Route aiotel's and (optionally) the OTel SDK's records to stderr, once each.

    ``level`` (default: the one ``set_level`` gave) applies to both; aiotel says nothing
    below warnings unless asked, since the program owns its output."""
    global _handler, _otel_hooked
    import logging

    if level is not None:
        _threshold[0] = level
    logger = logging.getLogger("aiotel")
    with _lock:
        if _handler is None:
            handler = _stderr_handler()
            logger.addHandler(handler)
            logger.propagate = False
            _handler = handler
    logger.setLevel(_threshold[0])
    if otel_loggers:
        otel = logging.getLogger("opentelemetry")
        with _lock:
            if not _otel_hooked:
                otel.addHandler(_handler)
                otel.propagate = False
                _otel_hooked = True
        otel.setLevel(_threshold[0])


def warn(message: str) -> None:
    """One line on stderr, once per distinct message."""
    if _handler is None:
        setup(otel_loggers=False)
    import logging

    logging.getLogger("aiotel").warning(message)


def _stderr_handler() -> logging.Handler:
    """A handler writing one line per record, each distinct one once, to ``sys.stderr``
    as it is at that moment (the program may replace it)."""
    import logging

    class Once(logging.Filter):
        """Passes the first record of each (logger, message template)."""

        def filter(self, record: logging.LogRecord) -> bool:
            text = str(record.msg).lower()
            exporting = (record.name.startswith("opentelemetry.exporter") or "failed to export" in text
                         or "exporting" in text)
            if record.name.startswith("opentelemetry") and exporting and "invalid" not in text:
                # exporters log every retry of every batch: one line says it all, a warning
                # whatever level the SDK gave it (a collector that is down is not aiotel's error)
                if _threshold[0] > WARNING or not first_time("opentelemetry export"):
                    return False
                record.msg = f"could not export telemetry: {record.getMessage()} (further export errors are not shown)"
                record.args = ()
                return True
            return first_time(f"{record.name}:{record.msg}")

    class OneLine(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message = f"{message} ({type(exc).__name__}: {exc})"
            return "aiotel: " + " ".join(message.split("\n"))

    class Stderr(logging.StreamHandler):  # type: ignore[type-arg]
        """Looks sys.stderr up on every record: the program may replace it."""

        @property  # type: ignore[override]
        def stream(self) -> Any:
            return sys.stderr

        @stream.setter
        def stream(self, value: Any) -> None:
            pass

    handler = Stderr()
    handler.setFormatter(OneLine())
    handler.addFilter(Once())
    return handler
