"""A call's span: started inside a recorded trace (within the trace's budget), or as a
new trace when the rate cap and the sampler let it; ended with the call; and a late span
for a failed or slow call that had none."""

from __future__ import annotations

import time
import traceback
from bisect import bisect_left
from typing import Any, List

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from .. import semconv
from . import memory, traces
from .experiments import ShadowCall, ShadowParent, arm_begins, arm_ends
from .shapes import input_attributes
from .state import (BOUNDS_NS, ERROR, IN_TRACE, ROOT, SLOW, Call, FunctionProbe, _open_gate, _probes, _settings,
                    _take_late_slot, _take_span_slot, late_spans_on, refresh_slow)

# The last span seen whose trace was decided not recorded (a one-entry cache, read by
# ``enter`` in Python and in C): calls under it are decided by one identity check.
UNSAMPLED: List[Any] = [None]
# The last recorded parent seen, with its trace's state and span id: siblings in a loop
# skip reading the parent's span context again
RECORDED_PARENT: List[Any] = [None]

# Frames of a failed call's stack trace on its span, nearest the raise: an exception that
# leaves a deep recursion of marked calls is formatted at every level, and all of a
# 1 000-frame trace at each of 1 000 levels would cost seconds
STACK_FRAMES = 64

_now = time.perf_counter_ns  # the clock of enter and leave, in Python and in C
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
        refresh_slow(probe)


def _begin_span(probe: FunctionProbe, start: int) -> Any:
    """Outside any trace, the rate cap's gate open: the call may start a trace, if the cap
    and then the sampler agree."""
    token = None
    try:
        if _settings.starter is not None:
            _start_pipeline()
            start = _now()  # aiotel's own set-up is not the function's time
            if start < probe.gate:
                return start
        if not _take_span_slot(probe, start):
            return start
        span = _start(probe, ROOT, None)
        token = _attach(_in_context(span))
        if not span.is_recording():
            # the sampler said no: the span stays current, so that the calls and the other
            # instrumentations below it follow that decision instead of starting traces
            UNSAMPLED[0] = span
            return Call(_now(), span, token)
        return _recorded(probe, span, token)
    except Exception:  # RecursionError too: at the very edge of the limit the call runs bare
        _undo(token)
        return start


def _begin_in_trace(probe: FunctionProbe, start: int, parent: Any) -> Any:
    """A span is current: inside a recorded trace the call always gets its span (up to
    the trace's budget); inside one decided not recorded, never."""
    token = None
    try:
        if parent.__class__ is ShadowParent:  # an experiment's shadow arm, or a call below it
            return arm_begins(probe, start, parent)
        if _settings.starter is not None:
            _start_pipeline()
            start = _now()
        if _settings.tracer is None or _settings.span_interval_ns <= 0:
            return start  # metrics only
        last = RECORDED_PARENT[0]
        if last is not None and last[0] is parent:  # a sibling of the last call: known recorded
            state, context = last[1], last[2]
        else:
            context = parent.get_span_context()
            if not context.is_valid:
                return start if start < probe.gate else _begin_span(probe, start)
            if not context.trace_flags.sampled:
                UNSAMPLED[0] = parent  # the next call under it is decided without coming here
                return start
            state = traces.state_of(context.trace_id)
            RECORDED_PARENT[0] = (parent, state, context)
        if state.spans.get(probe, 0) >= _settings.trace_span_budget:
            probe.over_budget += 1
            state.credit_unrecorded(context.span_id, probe.name)
            return start
        span = _start(probe, IN_TRACE, context)
        token = _attach(_in_context(span))
        if not span.is_recording():  # a sampler the user set said no to a child: obeyed
            return Call(_now(), span, token)
        return _recorded(probe, span, token, state)
    except Exception:
        _undo(token)
        return start


def _start(probe: FunctionProbe, reason: str, parent: Any) -> Any:
    """The call's span, under ``parent`` (a recorded trace's span context; None: a new
    trace): made by the span maker where it can, else by the tracer."""
    maker = _settings.span_maker
    if maker is not None:
        span = maker.start(probe.name, probe.by_reason[reason], parent)
        if span is not None:
            return span
    return _settings.tracer.start_span(probe.name, kind=_INTERNAL, attributes=probe.by_reason[reason])


def _undo(token: Any) -> None:
    """A span made current, then something failed: the caller's context comes back, or
    every later call on this thread would run under a span that never ends."""
    if token is not None:
        try:
            _detach(token)
        except Exception:
            pass


def _recorded(probe: FunctionProbe, span: Any, token: Any, state: Any = None) -> Call:
    context = span.get_span_context()
    if state is None:
        state = traces.state_of(context.trace_id)
    state.spans[probe] = state.spans.get(probe, 0) + 1
    state.open[context.span_id] = probe
    rss = memory.rss()
    # the call's clock starts now: starting its span (and reading the memory) is aiotel's
    # time, not the function's
    return Call(_now(), span, token, state, context.span_id, rss)


def _leave_sampled(probe: FunctionProbe, call: Any, end: int) -> None:
    """``leave`` for what the accelerator hands back: calls with a span, and calls without
    one that were slow (or should a probe's slots hold something it does not expect)."""
    try:
        if call.__class__ is int:
            _count(probe, end - call, end)
        else:
            _end_span(probe, call, end)
    except Exception:
        pass


def _count(probe: FunctionProbe, elapsed: int, end: int) -> None:
    """A call that ended without a recording span: counted, and a late span if it was slow."""
    probe.ok_buckets[bisect_left(BOUNDS_NS, elapsed)] += 1
    probe.ok_sum_ns += elapsed
    if elapsed > probe.slow:
        _slow_call(probe, elapsed, end)


def _end_span(probe: FunctionProbe, call: Call, end: int) -> None:
    if call.__class__ is ShadowCall:  # a shadow arm: its time is the experiment's, not a call's
        arm_ends(call, end, None, _mark_failed)  # type: ignore[arg-type]
        return
    if call.token is not None:
        token, call.token = call.token, None
        _detach(token)
    elapsed = end - call.start
    if call.trace is None:  # no recording span: the call counts as unsampled
        _count(probe, elapsed, end)
        return
    probe.ok_buckets[bisect_left(BOUNDS_NS, elapsed)] += 1
    probe.ok_sum_ns += elapsed
    _close(call, probe)
    call.span.end()


def _close(call: Call, probe: FunctionProbe) -> None:
    """The call's span ends: its change of resident memory, and what the budget left
    unrecorded below it, go on it first."""
    if call.rss >= 0:
        try:  # whatever happens here, the span still ends
            now = memory.rss()
            if now >= 0:
                delta = now - call.rss
                call.span.set_attribute(semconv.MEMORY_RSS_DELTA, delta)
                counts = probe.memory
                if counts is None:
                    counts = probe.memory = [0] * (len(memory.BOUNDS_BYTES) + 2)
                counts[bisect_left(memory.BOUNDS_BYTES, delta)] += 1
                counts[-1] += delta
        except Exception:
            pass
    state = call.trace
    state.open.pop(call.span_id, None)
    counts = state.unrecorded.pop(call.span_id, None)
    if counts:
        call.span.set_attributes({semconv.UNRECORDED_FUNCTIONS: tuple(counts),
                                  semconv.UNRECORDED_CALLS: tuple(counts.values())})


# The last stack trace formatted, by the identity of what it was formatted from: an
# exception leaving nested marked calls gives each level's span the same innermost
# frames, formatted once (no reference is kept: the frames' locals are not held alive)
_last_trace: List[Any] = [None]


def _stack_trace(exc: BaseException) -> str:
    """The traceback as Python prints it, cut to the STACK_FRAMES frames nearest the raise,
    redacted."""
    tb = exc.__traceback__
    frames, walk = 0, tb
    while walk is not None:
        frames += 1
        walk = walk.tb_next
    skipped = max(0, frames - STACK_FRAMES)
    for _ in range(skipped):
        tb = tb.tb_next
    key = (id(exc), id(tb), id(tb.tb_frame) if tb is not None else 0, tb.tb_lasti if tb is not None else 0)
    last = _last_trace[0]
    if last is not None and last[0] == key:
        text = last[1]
    else:
        text = _settings.redact("".join(traceback.format_exception(type(exc), exc, tb)))
        _last_trace[0] = (key, text)
    if skipped:
        head, _, rest = text.partition("\n")
        text = f"{head}\n  [{skipped} outer frames not shown]\n{rest}"
    return text


def _mark_failed(span: Any, exc: BaseException, kind: str) -> None:
    span.set_attribute(semconv.ERROR_TYPE, kind)
    redact = _settings.redact
    message = redact(str(exc))
    # the event the SDK's record_exception makes, with the message and stack trace
    # redacted (built here: record_exception would format the whole traceback first)
    span.add_event("exception", attributes={
        semconv.EXCEPTION_TYPE: type(exc).__qualname__,
        semconv.EXCEPTION_MESSAGE: message,
        semconv.EXCEPTION_STACKTRACE: _stack_trace(exc),
        semconv.EXCEPTION_ESCAPED: "False",
    })
    # the description the OTel SDK's own decorator writes
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}"))


def _failed_call(probe: FunctionProbe, call: Any, exc: BaseException, kind: str, elapsed: int, end: int,
                 shape: Any = None) -> None:
    if call.__class__ is not int and call.__class__ is not float:  # not an unsampled call's start or token
        if call.token is not None:
            _detach(call.token)
            call.token = None
        if call.trace is not None:
            _close(call, probe)
            _mark_failed(call.span, exc, kind)
            call.span.end()
            return
    _late_span(probe, ERROR, elapsed, end, exc, kind, shape)


def _slow_call(probe: FunctionProbe, elapsed: int, end: int) -> None:
    """An unsampled call crossed the slow threshold: a late span if it still does once the
    threshold has caught up with the function's latest p99."""
    refresh_slow(probe)
    if elapsed > probe.slow:
        _late_span(probe, SLOW, elapsed, end)


def _late_span(probe: FunctionProbe, reason: str, elapsed: int, end: int, exc: Any = None, kind: str = "",
               shape: Any = None) -> None:
    """A span made at the end of a call that had none, with its true start, if the
    late-span cap allows: a child where the caller's trace is recorded, else a root
    that links to the caller. ``shape``: the call's input shapes, as a span started
    with the call would carry them."""
    if not late_spans_on() or not _take_late_slot(probe, end):
        return
    now_wall = time.time_ns()
    parent = trace.get_current_span().get_span_context()
    attributes = probe.by_reason[reason]
    if shape:
        attributes = dict(attributes, **input_attributes(probe, shape))
    if parent.is_valid and parent.trace_flags.sampled:
        span = _settings.error_tracer.start_span(probe.name, kind=_INTERNAL, attributes=attributes,
                                                 start_time=now_wall - elapsed)
    else:
        # the caller's trace was not recorded: a child would point at a span no backend
        # has, so the late span starts its own trace and links to the caller
        links = [Link(parent)] if parent.is_valid else None
        span = _settings.error_tracer.start_span(probe.name, context=otel_context.Context(), kind=_INTERNAL,
                                                 attributes=attributes, links=links, start_time=now_wall - elapsed)
    if exc is not None:
        _mark_failed(span, exc, kind)
    span.end(end_time=now_wall)
