"""Log records: the GenAI events that LLM instrumentations emit (their message content only
under the content opt-in) and, only when ``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED``
is true, the program's own ``logging`` records (otherwise all of an application's logs would
leave the process).

When the logs API is first imported (an instrumentation that emits events imports it), a
``PendingLoggerProvider`` becomes the global one: the API alone, no SDK, no thread, and
nothing done inside an import another thread may be waiting for. A record emitted there
waits (bounded, with its context) while the SDK's provider and its exporters
(``OTEL_LOGS_EXPORTER``: the store, OTLP once an endpoint is set, the console) are built
off the program's threads, then goes to them, as does every later one; at exit, what
still waits is handed over in place. The SDK provider's first processor scrubs: a record
can still be changed when it is emitted, so content is dropped there (``scrubbing``).
What an OTLP exporter could not send goes to the spill, for ``aiotel push``.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from opentelemetry._logs import Logger as APILogger
from opentelemetry._logs import LoggerProvider as APILoggerProvider

from . import background
from .. import log
from ..config import Settings
from .delivery import LOGS, Delivery
from .scrubbing import ContentPolicy, scrub_log_record

# records that arrive before the SDK's provider is built wait, up to this many
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
        self._loggers: Dict[Tuple[str, Optional[str], Optional[str]], "PendingLogger"] = {}

    def get_logger(self, name: str, version: Optional[str] = None, schema_url: Optional[str] = None,
                   attributes: Any = None) -> "PendingLogger":
        if attributes:
            return PendingLogger(self, name, version, schema_url, attributes)
        # one per name: the logging handler asks for its logger at every record
        key = (name, version, schema_url)
        logger = self._loggers.get(key)
        if logger is None:
            logger = self._loggers[key] = PendingLogger(self, name, version, schema_url)
        return logger

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


class ScrubbingLogProcessor:
    """The first processor: content out of each record as it is emitted (``scrubbing``).
    For SDKs old (``emit(log_data)``) and new (``on_emit(record)``)."""

    def __init__(self, policy: ContentPolicy) -> None:
        self.policy = policy

    def on_emit(self, record: Any) -> None:
        try:
            scrub_log_record(record.log_record, self.policy)
        except Exception:
            try:
                record.log_record.body = None  # never content let through for want of scrubbing
            except Exception:
                pass

    emit = on_emit

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _batch_processor(name: str, settings: Settings, delivery: Delivery) -> Any:
    """One exporter's batch processor; None (said once) when the exporter cannot be built.
    What an OTLP exporter could not send goes to the spill, as spans and metrics do."""
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor

    try:
        exporter = delivery.guard(_exporter(name, settings), LOGS, spillable=name == "otlp")
    except Exception as exc:
        log.warn(f"logs exporter {name!r} unavailable ({type(exc).__name__}: {exc}); log records are not exported there")
        return None
    try:
        return BatchLogRecordProcessor(exporter)
    except RuntimeError:  # no new threads (a first record at interpreter shutdown): in place
        return SimpleLogRecordProcessor(exporter)


def queued(processor: Any) -> List[Any]:
    """Take the records still in a batch processor's queue (at the exit deadline, for the
    spill), oldest first; none from an SDK that keeps its queue otherwise."""
    queue = getattr(getattr(processor, "_batch_processor", None), "_queue", None)
    found: List[Any] = []
    if isinstance(queue, collections.deque):
        while True:
            try:
                found.append(queue.pop())  # the SDK appends on the left
            except IndexError:
                return found
    return found


def flush(processor: Any, timeout_s: float) -> bool:
    """Export what a processor holds and stop it, within ``timeout_s``; True when done in
    time (the SDK's own shutdown of a batch processor would wait 30 s for a collector)."""
    inner = getattr(processor, "_batch_processor", None)
    if inner is not None and hasattr(inner, "shutdown"):
        inner.shutdown(timeout_millis=max(timeout_s, 0.01) * 1000)
        thread = getattr(inner, "_worker_thread", None)
        return thread is None or not thread.is_alive()
    return bool(processor.force_flush(int(max(timeout_s, 0.01) * 1000)))


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


def logger_provider(settings: Settings, resource: Any, policy: ContentPolicy,
                    delivery: Delivery) -> Tuple[Any, Dict[str, Any]]:
    """The SDK's logger provider, the scrubber its first processor, then a batch processor
    per exporter (returned too, by exporter name: the exit flush stops each within its
    budget, and spills what OTLP's still holds)."""
    from opentelemetry.sdk._logs import LoggerProvider

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(ScrubbingLogProcessor(policy))
    processors = {name: _batch_processor(name, settings, delivery) for name in settings.logs_exporters}
    built = {name: processor for name, processor in processors.items() if processor is not None}
    for processor in built.values():
        provider.add_log_record_processor(processor)
    return provider, built


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
