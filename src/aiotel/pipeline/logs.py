"""Log records: the GenAI events that LLM instrumentations emit (their message content only
under the content opt-in) and, only when ``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED``
is true, the program's own ``logging`` records (otherwise all of an application's logs would
leave the process).

When the logs API is first imported (an instrumentation that emits events imports it), a
``PendingLoggerProvider`` becomes the global one: the API alone, no SDK, no thread, and
nothing done inside an import another thread may be waiting for. A record emitted there
waits (bounded, with its context) while the SDK's provider is built off the program's
threads, then goes to it, as does every later one; at exit, what still waits is handed
over in place. Each exporter (``OTEL_LOGS_EXPORTER``: the store, OTLP once an endpoint is
set, the console) and its batch processor are built at its first record, as the span
exporters are (``exporters.LazyBatchProcessor``). The SDK provider's first processor
scrubs: a record can still be changed when it is emitted, so content is dropped there
(``scrubbing``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from opentelemetry._logs import Logger as APILogger
from opentelemetry._logs import LoggerProvider as APILoggerProvider

from . import background
from .. import log
from ..config import Settings
from .scrubbing import ContentPolicy, scrub_log_record

# records that arrive before their exporter is built wait, up to this many
_PENDING_MAX = 2048


class PendingLoggerProvider(APILoggerProvider):
    """The global logger provider until, and after, the SDK's is built (see above)."""

    def __init__(self, build: Callable[[], None]) -> None:
        self._build = build
        self.real: Any = None
        self._waiting: List[Tuple["PendingLogger", tuple, Dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._asked = False
        self._overflowed = False

    def get_logger(self, name: str, version: Optional[str] = None, schema_url: Optional[str] = None,
                   attributes: Any = None) -> "PendingLogger":
        return PendingLogger(self, name, version, schema_url, attributes)

    @property
    def waiting(self) -> bool:
        return bool(self._waiting)

    def take(self, logger: "PendingLogger", args: tuple, kwargs: Dict[str, Any]) -> None:
        real = self.real
        if real is None:
            _keep_context(args, kwargs)  # replayed later, in another thread
            with self._lock:
                real = self.real
                if real is None:
                    if len(self._waiting) < _PENDING_MAX:
                        self._waiting.append((logger, args, kwargs))
                    elif not self._overflowed:
                        self._overflowed = True
                        log.warn(f"logs not set up yet: log records past {_PENDING_MAX} dropped")
                    ask, self._asked = not self._asked, True
            if real is None:
                if ask:
                    background.run(self._build)
                return
        logger.real_logger(real).emit(*args, **kwargs)

    def attach(self, real: Any) -> None:
        """From now on records go to ``real`` (the SDK's provider); those waiting first."""
        with self._lock:
            self.real = real
            waiting, self._waiting = self._waiting, []
        for logger, args, kwargs in waiting:
            try:
                logger.real_logger(real).emit(*args, **kwargs)
            except Exception:
                pass

    def forked(self) -> None:
        self._lock = threading.Lock()  # one held by another thread at fork stays held
        self._asked = False


class PendingLogger(APILogger):
    def __init__(self, provider: PendingLoggerProvider, name: str, version: Optional[str] = None,
                 schema_url: Optional[str] = None, attributes: Any = None) -> None:
        self._provider = provider
        self._key = (name, version, schema_url, attributes)
        self._real: Any = None

    def real_logger(self, provider: Any) -> Any:
        if self._real is None:
            name, version, schema_url, attributes = self._key
            try:
                self._real = provider.get_logger(name, version, schema_url, attributes)
            except TypeError:  # an SDK whose get_logger takes no attributes
                self._real = provider.get_logger(name, version, schema_url)
        return self._real

    def emit(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._provider.take(self, args, kwargs)

    def enabled(self, *args: Any, **kwargs: Any) -> bool:
        real = self._provider.real
        if real is None:
            return True
        check = getattr(self.real_logger(real), "enabled", None)
        return bool(check(*args, **kwargs)) if check is not None else True


def _keep_context(args: tuple, kwargs: Dict[str, Any]) -> None:
    """A waiting record keeps the context it was emitted in (its trace and span)."""
    from opentelemetry.context import get_current

    if args:
        if getattr(args[0], "context", False) is None:
            args[0].context = get_current()
    elif "context" not in kwargs:
        kwargs["context"] = get_current()


class _Processor:
    """A log record processor for SDKs old (``emit(log_data)``) and new (``on_emit(record)``)."""

    def on_emit(self, record: Any) -> None:
        self.take(record)

    def emit(self, record: Any) -> None:
        self.take(record)

    def take(self, record: Any) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class ScrubbingLogProcessor(_Processor):
    def __init__(self, policy: ContentPolicy) -> None:
        self.policy = policy

    def take(self, record: Any) -> None:
        try:
            scrub_log_record(record.log_record, self.policy)
        except Exception:
            try:
                record.log_record.body = None  # never content let through for want of scrubbing
            except Exception:
                pass


class LazyLogProcessor(_Processor):
    """One exporter's batch processor, built off the program's threads at the first record."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self._settings = settings
        self._processor: Any = None
        self._failed = False
        self._asked = False
        self._pending: List[Any] = []
        self._overflowed = False
        self._lock = threading.Lock()

    def take(self, record: Any) -> None:
        processor = self._processor
        if processor is None:
            if self._failed:
                return
            with self._lock:
                processor = self._processor
                if processor is None:
                    if len(self._pending) < _PENDING_MAX:
                        self._pending.append(record)
                    elif not self._overflowed:
                        self._overflowed = True
                        log.warn(f"logs exporter {self.name!r} not set up yet: log records past {_PENDING_MAX} dropped")
                    ask, self._asked = not self._asked, True
            if processor is None:
                if ask:
                    background.run(self.build)
                return
        _forward(processor, record)

    def build(self) -> None:
        with self._lock:
            if self._processor is not None or self._failed:
                return
            try:
                from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor

                exporter = _exporter(self.name, self._settings)
                try:
                    processor = BatchLogRecordProcessor(exporter)
                except RuntimeError:  # no new threads (a first record at interpreter shutdown): in place
                    processor = SimpleLogRecordProcessor(exporter)
            except Exception as exc:
                self._failed = True
                self._pending = []
                log.warn(f"logs exporter {self.name!r} unavailable ({type(exc).__name__}: {exc}); "
                         "log records are not exported there")
                return
            waiting, self._pending = self._pending, []
            for record in waiting:
                _forward(processor, record)
            self._processor = processor

    def flush(self, timeout_s: float) -> bool:
        """Export what is queued and stop, within ``timeout_s``; True when done in time."""
        if self._pending and not self._failed:
            self.build()  # records that arrived where no thread could build it
        inner = getattr(self._processor, "_batch_processor", None)
        if inner is not None and hasattr(inner, "shutdown"):
            inner.shutdown(timeout_millis=max(timeout_s, 0.01) * 1000)
            thread = getattr(inner, "_worker_thread", None)
            return thread is None or not thread.is_alive()
        if self._processor is not None:
            return bool(self._processor.force_flush(int(max(timeout_s, 0.01) * 1000)))
        return True


def _forward(processor: Any, record: Any) -> None:
    handle = getattr(processor, "on_emit", None) or processor.emit
    handle(record)


def _exporter(name: str, settings: Settings) -> Any:
    if name == "console":
        try:
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter as Console
        except ImportError:  # SDKs before 1.39
            from opentelemetry.sdk._logs.export import ConsoleLogExporter as Console  # type: ignore[no-redef]
        return Console()
    if name == "store":
        from ..store.writer import StoreLogExporter

        return StoreLogExporter(settings.store_dir, settings.store_max_bytes, settings.private_store_dir)
    from .exporters import otlp_exporter

    return otlp_exporter("LOGS", settings)


def logger_provider(settings: Settings, resource: Any, policy: ContentPolicy) -> Any:
    """The SDK's logger provider with the scrubber first, then one lazy processor per exporter."""
    from opentelemetry.sdk._logs import LoggerProvider

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(ScrubbingLogProcessor(policy))
    for name in settings.logs_exporters:
        provider.add_log_record_processor(LazyLogProcessor(name, settings))
    return provider


def lazy_processors(provider: Any) -> List[LazyLogProcessor]:
    multi = getattr(provider, "_multi_log_record_processor", None)
    return [p for p in getattr(multi, "_log_record_processors", ()) if isinstance(p, LazyLogProcessor)]


class _NotOurOwn(logging.Filter):
    """The handler leaves out aiotel's and the SDK's own records (an export failure logged,
    then exported, would feed itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(("opentelemetry", "aiotel"))


def attach_logging_handler(provider: Any) -> Optional[logging.Handler]:
    """The program's logging records as OTel log records (opted in).

    Not added to the root logger's handlers, where the program would see it: a
    ``logging.basicConfig()`` finding a handler there configures nothing, and the
    program's own log output would be gone. Every record a logger hands to its handlers
    is given to this one first, the program's handlers (and ``lastResort``) as before."""
    from opentelemetry.sdk._logs import LoggingHandler

    handler = LoggingHandler(level=logging.NOTSET, logger_provider=provider)
    handler.addFilter(_NotOurOwn())
    call_handlers = logging.Logger.callHandlers

    def exported_then_handled(logger: logging.Logger, record: logging.LogRecord) -> None:
        try:
            handler.handle(record)
        except Exception:
            pass
        call_handlers(logger, record)

    logging.Logger.callHandlers = exported_then_handled  # type: ignore[method-assign]
    return handler
