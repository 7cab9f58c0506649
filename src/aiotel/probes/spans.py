"""A call's span: started when the rate cap and the sampler let it, ended with the call,
and a late span for a failed call that had none."""

from __future__ import annotations

import time
import traceback
from bisect import bisect_left
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from .. import semconv
from .state import BOUNDS_NS, Call, FunctionProbe, _open_gate, _probes, _settings, _take_span_slot

_attach = otel_context.attach
_detach = otel_context.detach
_in_context = trace.set_span_in_context
_INTERNAL = SpanKind.INTERNAL


def _start_pipeline() -> None:
    starter, _settings.starter = _settings.starter, None
    try:
        starter()
    except Exception as exc:
        from .. import log

        log.warn(f"could not start telemetry ({type(exc).__name__}: {exc}); calls are counted but not exported")
    for probe in _probes:  # they waited for the start (gate -1): now the rate cap decides
        _open_gate(probe)


def _begin_span(probe: FunctionProbe, start: int) -> Any:
    try:
        if _settings.starter is not None:
            _start_pipeline()
            if start < probe.gate:
                return start
        tat, gate = probe.tat, probe.gate
        if not _take_span_slot(probe, start):
            return start
        span = _settings.tracer.start_span(probe.name, kind=_INTERNAL, attributes=probe.attributes)
        if not span.is_recording():
            probe.tat, probe.gate = tat, gate  # the sampler said no: the slot stays free
            return start
        return Call(start, span, _attach(_in_context(span)))
    except Exception:  # RecursionError too: at the very edge of the limit the call runs bare
        return start


def _leave_sampled(probe: FunctionProbe, call: Any, end: int) -> None:
    """``leave`` for what the accelerator hands back: sampled calls (and unsampled ones,
    should a probe's slots hold something it does not expect)."""
    try:
        if call.__class__ is int:
            elapsed = end - call
            probe.ok_buckets[bisect_left(BOUNDS_NS, elapsed)] += 1
            probe.ok_sum_ns += elapsed
        else:
            _end_span(probe, call, end)
    except Exception:
        pass


def _end_span(probe: FunctionProbe, call: Call, end: int) -> None:
    elapsed = end - call.start
    probe.ok_buckets[bisect_left(BOUNDS_NS, elapsed)] += 1
    probe.ok_sum_ns += elapsed
    if call.token is not None:
        token, call.token = call.token, None
        _detach(token)
    call.span.end()


def _mark_failed(span: Any, exc: BaseException, kind: str) -> None:
    span.set_attribute(semconv.ERROR_TYPE, kind)
    redact = _settings.redact
    message = redact(str(exc))
    # the SDK's own exception event, with the message and stack trace redacted
    stacktrace = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    span.record_exception(exc, attributes={semconv.EXCEPTION_MESSAGE: message, semconv.EXCEPTION_STACKTRACE: stacktrace})
    # the description the OTel SDK's own decorator writes
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))


def _late_error_span(probe: FunctionProbe, exc: BaseException, kind: str, elapsed: int, end: int) -> None:
    """A failed call that had no span gets one now, with its true start, if the cap allows."""
    if _settings.error_tracer is None or not _take_span_slot(probe, end):
        return
    now_wall = time.time_ns()
    parent = trace.get_current_span().get_span_context()
    if parent.is_valid and parent.trace_flags.sampled:
        span = _settings.error_tracer.start_span(
            probe.name, kind=_INTERNAL, attributes=probe.attributes, start_time=now_wall - elapsed
        )
    else:
        # the caller's trace was not sampled: a child would point at a span no backend
        # has, so the error span starts its own trace and links to the caller
        links = [Link(parent)] if parent.is_valid else None
        span = _settings.error_tracer.start_span(
            probe.name,
            context=otel_context.Context(),
            kind=_INTERNAL,
            attributes=probe.attributes,
            links=links,
            start_time=now_wall - elapsed,
        )
    _mark_failed(span, exc, kind)
    span.end(end_time=now_wall)
