"""The tiny runtime that rewritten code calls, and nothing else does.

Contract with ``aiotel.rewrite``: ``function(...)`` once per marked function when its
module runs, then per call ``enter`` → (``suspend``/``resume`` around each yield) →
``fail`` when an exception leaves the body (it finishes the call and returns None) or
``leave`` when it returns. None of them raises: a probe that fails leaves the call
uninstrumented, and the user's code runs exactly as written.

Two costs decide the design (measured on CPython 3.11): the SDK's ``Histogram.record``
costs 8-18 µs and a span about 24 µs, against 32 ns for a trivial call. So:

- every call is counted here, in plain lists per function and outcome (count, sum and
  bucket counts of ``aiotel.function.duration``); ``aiotel.metrics`` hands them to the
  SDK's readers at collection time;
- a span is built only for a call that the per-function rate cap lets through
  (``AIOTEL_SPAN_RATE_LIMIT``), and then only if the SDK sampler agrees. The cap is
  decided first, with one comparison, before any span object exists.

An unsampled call costs two clock reads and a bucket increment. Under the GIL the
increments are not interleaved between threads on CPython 3.10+ (no eval-breaker check
inside ``x[i] += 1``); on 3.9 a rare lost increment is possible.

``enter`` and ``leave`` have a C twin, ``aiotel._speedups`` (built at install when a
compiler is there; Linux only): used when it imports, unless ``AIOTEL_ACCELERATOR=false``.
It does the unsampled path itself and calls ``_begin_span``/``_leave_sampled`` otherwise.
"""

from __future__ import annotations

import sys
import time
import traceback
from bisect import bisect_left
from types import BuiltinFunctionType, MethodDescriptorType, WrapperDescriptorType
from typing import Any, Callable, Dict, List, Optional, Tuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

_now = time.perf_counter_ns
_attach = otel_context.attach
_detach = otel_context.detach
_in_context = trace.set_span_in_context
_INTERNAL = SpanKind.INTERNAL

# Bucket upper bounds of aiotel.function.duration, in ns (exported in seconds). AI-written
# helpers run from a microsecond to seconds, so the buckets span 1 µs to 10 s in 1-2.5-5
# steps; OTel's default bounds (0..10000, meant for milliseconds) would put every call
# of a seconds-unit histogram into the first two buckets.
BOUNDS_NS: Tuple[int, ...] = tuple(
    int(m * 10**e) for e in range(3, 10) for m in (1, 2.5, 5)
) + (10_000_000_000,)
BOUNDS_SECONDS: Tuple[float, ...] = tuple(b / 1e9 for b in BOUNDS_NS)


def _bucket_tables() -> Tuple[List[int], List[int]]:
    """Bucket index by bit length: ``LOW[n] + (v > SPLIT[n])`` equals ``bisect_left(BOUNDS_NS, v)``.

    Consecutive bounds differ by a factor of 2 or more, so the values of one bit length
    (``[2**(n-1), 2**n)``) straddle at most one bound. One ``int.bit_length()`` and two list
    lookups cost half of ``bisect_left`` on the hot path.
    """
    low, split = [], []
    for n in range(65):
        first, last = (1 << (n - 1), (1 << n) - 1) if n else (0, 0)
        index = bisect_left(BOUNDS_NS, first)
        low.append(index)
        inside = index < len(BOUNDS_NS) and BOUNDS_NS[index] < last
        split.append(BOUNDS_NS[index] if inside else 1 << 70)
    return low, split


_LOW, _SPLIT = _bucket_tables()

_NEVER = 1 << 62  # a gate time no monotonic clock reaches: spans off


class _ProbeSettings:
    """What the probes need to know; set by ``configure`` before modules are rewritten."""

    __slots__ = ("tracer", "error_tracer", "span_interval_ns", "span_burst", "prompt_max_length", "capture_prompt",
                 "starter", "redact")

    def __init__(self) -> None:
        self.starter: Any = None  # builds the SDK pipeline on the first call, then is cleared
        self.tracer: Any = None  # None: no spans, metrics only
        self.error_tracer: Any = None  # always samples: spans for failed calls the sampler dropped
        self.span_interval_ns = 100_000_000
        self.span_burst = 10
        self.prompt_max_length = 256
        self.capture_prompt = True
        self.redact: Callable[[str], str] = _no_redaction  # aiotel.redact.Redactor once configured


def _no_redaction(text: str) -> str:
    return text


# A secret is never longer than this: redaction looks this far past the prompt's cut, so
# a secret that the cut splits is still found, and a 1 MB prompt is not scanned whole.
_REDACTION_LOOKAHEAD = 4096

_settings = _ProbeSettings()
_probes: List["FunctionProbe"] = []


class FunctionProbe:
    """One marked function: its span name and attributes (built once), its call statistics."""

    __slots__ = (
        "name", "attributes", "metric_attributes",
        "ok_buckets", "ok_sum_ns", "errors", "fallbacks", "empties", "parameters", "inputs",
        "gate", "tat", "__weakref__",
    )

    def __init__(
        self, name: str, attributes: Dict[str, Any], metric_attributes: Dict[str, Any], parameters: Tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.attributes = attributes
        self.metric_attributes = metric_attributes
        self.ok_buckets = [0] * (len(BOUNDS_NS) + 1)
        self.ok_sum_ns = 0
        # error.type -> [bucket counts..., sum_ns]: a new type is rare, a dict lookup is fine
        self.errors: Dict[str, List[int]] = {}
        # (handler line, exception.type) -> times that except handler caught something
        self.fallbacks: Dict[Tuple[int, str], int] = {}
        # return line -> times the function returned None there (it returns values elsewhere)
        self.empties: Dict[int, int] = {}
        # with AIOTEL_CAPTURE_ARGS=shape: per parameter, type name -> counts (INPUT_*)
        self.parameters = parameters
        self.inputs: List[Dict[str, List[int]]] = [{} for _ in parameters]
        self.gate = _NEVER  # monotonic ns before which no span may start (rate cap)
        self.tat = 0  # GCRA "theoretical arrival time" of the next span
        _open_gate(self)


def _open_gate(probe: FunctionProbe) -> None:
    if _settings.starter is not None:
        probe.gate = -1  # the first call takes the slow path and starts the pipeline
    elif _settings.tracer is None or _settings.span_interval_ns <= 0:
        probe.gate = _NEVER
    else:
        probe.gate = probe.tat - _settings.span_interval_ns * (_settings.span_burst - 1)


def _take_span_slot(probe: FunctionProbe, now: int) -> bool:
    """Generic cell rate algorithm: ``span_burst`` spans at once, then one per interval."""
    if now < probe.gate:
        return False
    probe.tat = max(probe.tat, now) + _settings.span_interval_ns
    _open_gate(probe)
    return True


def configure(
    tracer: Any = None,
    error_tracer: Any = None,
    span_rate_limit: float = 10.0,
    prompt_max_length: int = 256,
    capture_prompt: bool = True,
    starter: Any = None,
    redact: Optional[Callable[[str], str]] = None,
    accelerator: bool = True,
) -> None:
    """Set the tracers and limits; probes created earlier follow the new rate cap.

    ``starter``: called once, on the first call of any marked function, to build the SDK
    pipeline (which calls ``configure`` again with the tracers). ``accelerator``: use the
    C ``enter``/``leave`` when they are installed."""
    use_accelerator(accelerator)
    _settings.starter = starter
    _settings.tracer = tracer
    _settings.error_tracer = error_tracer if error_tracer is not None else tracer
    if span_rate_limit > 0:
        _settings.span_interval_ns = max(1, int(1e9 / span_rate_limit))
        _settings.span_burst = max(1, int(span_rate_limit))
    else:
        _settings.span_interval_ns = 0
    _settings.prompt_max_length = prompt_max_length
    _settings.capture_prompt = capture_prompt
    _settings.redact = redact if redact is not None else _no_redaction
    _redactions.clear()
    for probe in _probes:
        probe.tat = 0
        _open_gate(probe)


def replace_tracers(tracer: Any, error_tracer: Any) -> None:
    """New tracers, same limits (a forked child with its own resource)."""
    if _settings.tracer is not None:
        _settings.tracer = tracer
    if _settings.error_tracer is not None:
        _settings.error_tracer = error_tracer


def reset_counts() -> None:
    """Zero every count: a forked child reports its own calls, not its parent's."""
    for probe in _probes:
        probe.ok_buckets = [0] * (len(BOUNDS_NS) + 1)
        probe.ok_sum_ns = 0
        probe.errors = {}
        probe.fallbacks = {}
        probe.empties = {}
        probe.inputs = [{} for _ in probe.parameters]


def all_probes() -> List[FunctionProbe]:
    return list(_probes)


# (file path, def line) -> span attributes learnt after the module ran (commit attribution)
_later_attributes: Dict[Tuple[str, int], Dict[str, Any]] = {}


def add_attributes(path: str, line: int, attributes: Dict[str, Any]) -> None:
    """More span attributes for the function defined at ``path:line``, now and when its
    module runs again. The dict is replaced, never changed, for spans starting meanwhile."""
    key = (path, line)
    _later_attributes[key] = dict(_later_attributes.get(key, {}), **attributes)
    for probe in list(_probes):
        if (probe.attributes.get("code.file.path"), probe.attributes.get("code.line.number")) == key:
            probe.attributes = dict(probe.attributes, **attributes)


_redactions: Dict[str, str] = {}


def _redacted(text: str) -> str:
    """Redacted marker text, remembered: a module or class marker gives many functions the
    same prompt."""
    found = _redactions.get(text)
    if found is None:
        found = _settings.redact(text)
        if len(_redactions) < 1024:
            _redactions[text] = found
    return found


def function(
    qualname: str,
    path: str,
    line: int,
    source: str,
    tool: str,
    date: Optional[str],
    prompt: Optional[str],
    fields: Tuple[Tuple[str, str], ...],
    parameters: Tuple[str, ...] = (),
) -> FunctionProbe:
    """Called once per marked function when its module runs."""
    attributes: Dict[str, Any] = {
        "code.function.name": qualname,
        "code.file.path": path,
        "code.line.number": line,
        "aiotel.provenance.tool": tool,
        "aiotel.provenance.source": source,
    }
    if date:
        attributes["aiotel.provenance.date"] = date
    if prompt and _settings.capture_prompt and _settings.prompt_max_length > 0:
        cut = _settings.prompt_max_length
        attributes["aiotel.provenance.prompt"] = _redacted(prompt[: cut + _REDACTION_LOOKAHEAD])[:cut]
    for key, value in fields:
        attributes.setdefault(f"aiotel.provenance.{key}", _redacted(value[:_REDACTION_LOOKAHEAD]))
    attributes.update(_later_attributes.get((path, line), ()))
    metric_attributes = {
        "code.function.name": qualname,
        "aiotel.provenance.tool": tool,
        "code.file.path": path,
    }
    probe = FunctionProbe(qualname, attributes, metric_attributes, parameters)
    _probes.append(probe)
    return probe


class Call:
    """A sampled call in flight. Unsampled calls are just their start time (an int)."""

    __slots__ = ("start", "span", "token")

    def __init__(self, start: int, span: Any, token: Any) -> None:
        self.start = start
        self.span = span
        self.token = token


# No default-argument tricks to make globals local: on 3.13 a call that fills in
# defaults is not inlined until specialized, and the first deep recursion then stops
# one frame earlier than the plain function (found by the fidelity matrix).
def enter(probe: FunctionProbe) -> Any:
    start = _now()
    if start < probe.gate:
        return start
    return _begin_span(probe, start)


def _start_pipeline() -> None:
    starter, _settings.starter = _settings.starter, None
    try:
        starter()
    except Exception as exc:
        from . import log

        log.warn(f"could not start telemetry ({type(exc).__name__}: {exc}); calls are counted but not exported")
        for probe in _probes:
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


# Recursion: ``leave`` and ``fail`` run at the depth where ``enter`` succeeded, and call
# nothing deeper than ``enter`` did outside a ``try``: a RecursionError in a probe is
# swallowed there and never replaces the user's return value or exception.


def leave(probe: FunctionProbe, call: Any) -> None:
    end = _now()
    if call.__class__ is int:
        elapsed = end - call
        try:
            bits = elapsed.bit_length()
            probe.ok_buckets[_LOW[bits] + (elapsed > _SPLIT[bits])] += 1
        except RecursionError:
            # bit_length() runs one C level deeper than anything enter() did (counted on
            # 3.9-3.11): at the very edge of the limit, compare in this frame instead
            index = 0
            for bound in BOUNDS_NS:
                if elapsed <= bound:
                    break
                index += 1
            probe.ok_buckets[index] += 1
        probe.ok_sum_ns += elapsed
        return
    try:
        _end_span(probe, call, end)
    except Exception:
        pass


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


def fail(probe: FunctionProbe, call: Any, exc: BaseException) -> None:
    """An exception leaves the body: record it and finish the call. Always returns None."""
    end = _now()
    try:
        if isinstance(exc, GeneratorExit):  # close() of a generator: a normal end of its life
            leave(probe, call)
            return None
        # semantic-conventions error.type: the class name, qualified unless builtin
        # (inline: a helper would be one frame deeper at the recursion limit)
        cls = exc.__class__
        module = cls.__module__
        kind = cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
        start = call if call.__class__ is int else call.start
        elapsed = end - start
        counts = probe.errors.get(kind)
        if counts is None:
            counts = probe.errors.setdefault(kind, [0] * (len(BOUNDS_NS) + 2))
        counts[bisect_left(BOUNDS_NS, elapsed)] += 1
        counts[-1] += elapsed
        if call.__class__ is int:
            _late_error_span(probe, exc, kind, elapsed, end)
        else:
            if call.token is not None:
                _detach(call.token)
                call.token = None
            _mark_failed(call.span, exc, kind)
            call.span.end()
    except Exception:
        pass
    return None


def _mark_failed(span: Any, exc: BaseException, kind: str) -> None:
    span.set_attribute("error.type", kind)
    redact = _settings.redact
    message = redact(str(exc))
    # the SDK's own exception event, with the message and stack trace redacted
    stacktrace = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    span.record_exception(exc, attributes={"exception.message": message, "exception.stacktrace": stacktrace})
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


def _type_name(cls: type) -> str:
    # semantic-conventions error.type style: the class name, qualified unless builtin
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def fallback(probe: FunctionProbe, call: Any, line: int) -> None:
    """An ``except`` handler of the function (on ``line``) caught something: count it, and
    note it on the call's span when the call is sampled."""
    try:
        kind = _type_name(sys.exc_info()[1].__class__)
        key = (line, kind)
        probe.fallbacks[key] = probe.fallbacks.get(key, 0) + 1
        if call.__class__ is Call:
            call.span.add_event("aiotel.fallback", {"code.line.number": line, "exception.type": kind})
    except Exception:
        pass


def empty(probe: FunctionProbe, call: Any, line: int) -> None:
    """The function, which returns values elsewhere, returns None at ``line``."""
    try:
        probe.empties[line] = probe.empties.get(line, 0) + 1
        if call.__class__ is Call:
            call.span.add_event("aiotel.empty_result", {"code.line.number": line})
    except Exception:
        pass


# Input shapes (AIOTEL_CAPTURE_ARGS=shape). Sizes are bucketed like durations: exact
# counts in plain lists, handed to the readers as aiotel.function.input.size.
SIZE_BOUNDS: Tuple[int, ...] = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000,
                                100_000, 1_000_000, 10_000_000)
# Distinct type names kept per parameter; later ones are counted as OTHER_TYPE.
MAX_TYPES_PER_PARAMETER = 10
OTHER_TYPE = "_OTHER"
_MAX_TYPE_NAME = 128
# Per parameter and type: [calls, sized calls, size sum, bucket counts...]
INPUT_CALLS, INPUT_SIZED, INPUT_SIZE_SUM, INPUT_BUCKETS = 0, 1, 2, 3
_C_CALLABLES = (WrapperDescriptorType, MethodDescriptorType, BuiltinFunctionType)
_type_cache: Dict[type, Tuple[str, bool]] = {}
_TYPE_CACHE_MAX = 4096


def _describe(cls: type) -> Tuple[str, bool]:
    """(type name, whether ``len()`` is safe): only a ``__len__`` written in C is called.
    A Python ``__len__`` may run a query or have side effects (an ORM's lazy result set)."""
    sized = False
    for klass in cls.__mro__:
        if "__len__" in klass.__dict__:
            sized = isinstance(klass.__dict__["__len__"], _C_CALLABLES)
            break
    described = (_type_name(cls)[:_MAX_TYPE_NAME], sized)
    if len(_type_cache) < _TYPE_CACHE_MAX:
        _type_cache[cls] = described
    return described


def shapes(probe: FunctionProbe, call: Any, values: Tuple[Any, ...]) -> None:
    """At the start of a call: the type and, for sized values, the length of each argument.
    Never a value."""
    try:
        span = call.span if call.__class__ is Call else None
        index = 0
        for value, per_type in zip(values, probe.inputs):
            cls = type(value)  # not value.__class__, which a proxy may fake
            name, sized = _type_cache.get(cls) or _describe(cls)
            counts = per_type.get(name)
            if counts is None:
                if len(per_type) >= MAX_TYPES_PER_PARAMETER:
                    name = OTHER_TYPE
                    sized = False  # the OTHER series mixes types: no sizes
                counts = per_type.setdefault(name, [0] * (INPUT_BUCKETS + len(SIZE_BOUNDS) + 1))
            counts[INPUT_CALLS] += 1
            size = -1
            if sized:
                try:
                    size = len(value)
                except Exception:  # OverflowError of a huge range, a released memoryview
                    pass
                if size >= 0:
                    counts[INPUT_SIZED] += 1
                    counts[INPUT_SIZE_SUM] += size
                    counts[INPUT_BUCKETS + bisect_left(SIZE_BOUNDS, size)] += 1
            if span is not None:
                parameter = probe.parameters[index]
                span.set_attribute(f"aiotel.input.{parameter}.type", name)
                if size >= 0:
                    span.set_attribute(f"aiotel.input.{parameter}.length", size)
            index += 1
    except Exception:
        pass


def suspend(call: Any, value: Any) -> Any:
    """Before a yield: the caller gets its own context back."""
    if call.__class__ is Call and call.token is not None:
        try:
            _detach(call.token)
        except Exception:
            pass
        call.token = None
    return value


def resume(call: Any, sent: Any) -> Any:
    """After a yield: the function's span is current again."""
    if call.__class__ is Call and call.token is None:
        try:
            call.token = _attach(_in_context(call.span))
        except Exception:
            pass
    return sent


# The pure-Python pair, kept under these names when the accelerator replaces them.
python_enter, python_leave = enter, leave


def _load_accelerator() -> Any:
    try:
        from . import _speedups  # type: ignore[attr-defined]

        _speedups.bind(FunctionProbe, BOUNDS_NS, _begin_span, _leave_sampled)
        # start times cross between the C and Python functions: one clock
        if abs(_speedups.now() - _now()) > 50_000_000:
            return None
        return _speedups
    except Exception:  # not built (no compiler, not Linux), or built for another Python
        return None


_accelerator = _load_accelerator()


def accelerator_available() -> bool:
    """Whether the C ``enter``/``leave`` were built and load here."""
    return _accelerator is not None


def accelerated() -> bool:
    """Whether the C ``enter``/``leave`` are the ones rewritten code calls now."""
    return _accelerator is not None and enter is _accelerator.enter


def use_accelerator(wanted: bool) -> None:
    """Rewritten code looks ``enter``/``leave`` up on this module at each call, so this
    takes effect at once; a call in flight may start in one and end in the other."""
    global enter, leave
    if wanted and _accelerator is not None:
        enter, leave = _accelerator.enter, _accelerator.leave
    else:
        enter, leave = python_enter, python_leave


use_accelerator(True)
