"""The tiny runtime that rewritten code calls, and nothing else does.

Contract with ``aiotel.rewrite``: ``function(...)`` once per marked function at module
execution, then per call ``enter`` → (``suspend``/``resume`` around each yield) →
``fail`` on an exception → ``leave``. None of them ever raises: a probe that fails
leaves the call uninstrumented, and the user's code runs exactly as written.

This first version goes through the OpenTelemetry API for every call; in-process
metric aggregation and sampling-before-span come with the performance work.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

_tracer = trace.get_tracer("aiotel")


class FunctionProbe:
    """One marked function: its span name and attributes, built once."""

    __slots__ = ("name", "attributes")

    def __init__(self, name: str, attributes: dict) -> None:
        self.name = name
        self.attributes = attributes


class Call:
    """One call in flight: its span, and the context token while the span is current."""

    __slots__ = ("span", "token")

    def __init__(self, span: Any, token: Any) -> None:
        self.span = span
        self.token = token


def function(
    qualname: str,
    path: str,
    line: int,
    source: str,
    tool: str,
    date: Optional[str],
    prompt: Optional[str],
    fields: Tuple[Tuple[str, str], ...],
) -> FunctionProbe:
    attributes = {
        "code.function.name": qualname,
        "code.file.path": path,
        "code.line.number": line,
        "aiotel.provenance.tool": tool,
        "aiotel.provenance.source": source,
    }
    if date:
        attributes["aiotel.provenance.date"] = date
    if prompt:
        attributes["aiotel.provenance.prompt"] = prompt[:256]
    for key, value in fields:
        attributes[f"aiotel.provenance.{key}"] = value
    return FunctionProbe(qualname, attributes)


def enter(probe: FunctionProbe) -> Optional[Call]:
    try:
        span = _tracer.start_span(probe.name, kind=SpanKind.INTERNAL, attributes=probe.attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        return Call(span, token)
    except Exception:  # RecursionError too: a call at the very edge of the limit runs bare
        return None


def error_type(exc: BaseException) -> str:
    """Semantic-conventions ``error.type``: the class name, qualified unless builtin."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def fail(call: Optional[Call], exc: BaseException) -> None:
    if call is None or isinstance(exc, GeneratorExit):
        return
    try:
        span = call.span
        span.set_attribute("error.type", error_type(exc))
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
    except Exception:
        pass


def leave(call: Optional[Call]) -> None:
    if call is None:
        return
    try:
        if call.token is not None:
            otel_context.detach(call.token)
            call.token = None
        call.span.end()
    except Exception:
        pass


def suspend(call: Optional[Call], value: Any) -> Any:
    """Before a yield: the caller gets its own context back."""
    if call is not None and call.token is not None:
        try:
            otel_context.detach(call.token)
        except Exception:
            pass
        call.token = None
    return value


def resume(call: Optional[Call], sent: Any) -> Any:
    """After a yield: the function's span is current again."""
    if call is not None and call.token is None:
        try:
            call.token = otel_context.attach(trace.set_span_in_context(call.span))
        except Exception:
            pass
    return sent
