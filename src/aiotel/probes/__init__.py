"""The tiny runtime that rewritten code calls, and nothing else does: this module is its face.

Rewritten code imports ``aiotel.probes`` by name and looks ``enter``/``leave`` up here at
each call, so the calls it makes live in this module (and the accelerator can replace
``enter``/``leave`` at once); the rest is in one module a job: ``state`` (each function's
counts, the rate cap), ``attributes`` (span attributes from the provenance record),
``spans``, ``signals`` (fallbacks, None returns) and ``shapes``. ``Provenance`` and
``Marker`` are handed on for the rewritten module to rebuild the scanner's record.

Contract with ``aiotel.rewriting.rewrite``: ``function(...)`` once per marked function when its
module runs, then per call ``enter`` → (``suspend``/``resume`` around each yield) →
``fail`` when an exception leaves the body (it finishes the call and returns None) or
``leave`` when it returns. None of them raises: a probe that fails leaves the call
uninstrumented, and the user's code runs exactly as written.

Two costs decide the design (measured on CPython 3.11): the SDK's ``Histogram.record``
costs 8-18 µs and a span about 24 µs, against 32 ns for a trivial call. So:

- every call is counted here, in plain lists per function and outcome (count, sum and
  bucket counts of ``aiotel.function.duration``); ``aiotel.pipeline.metrics`` hands them to the
  SDK's readers at collection time;
- spans are decided once per trace (see docs/sampling.md): ``enter`` reads the OTel
  context once. Inside a recorded trace a call always gets its span (up to the trace's
  budget, ``traces``); under a trace decided not recorded, never (the last such span is
  remembered, so that check is one identity comparison); outside any trace the
  per-function cap (``AIOTEL_SPAN_RATE_LIMIT`` after ``AIOTEL_SPAN_BURST``) is decided
  first, with one comparison, before any span object exists, then the sampler.

An unsampled call costs two clock reads, the context read and a bucket increment; one
that was slow or failed goes on to ``spans`` for a late span. Under the GIL the
increments are not interleaved between threads on CPython 3.10+ (no eval-breaker check
inside ``x[i] += 1``); on 3.9 a rare lost increment is possible.

``enter`` and ``leave`` have a C twin, ``aiotel._speedups`` (built at install when a
compiler is there; Linux only): used when it imports, unless ``AIOTEL_ACCELERATOR=false``.
It does the unsampled path itself and calls ``_begin_span``/``_begin_in_trace``/``_leave_sampled``
otherwise.
"""

from __future__ import annotations

import contextvars
import sys
import time
from types import ModuleType
from bisect import bisect_left
from typing import Any, Callable, Optional, Tuple

from opentelemetry import context as otel_context
from opentelemetry import trace

from ..provenance.records import Marker, Provenance
from .attributes import _later_attributes, _redactions, add_attributes, function
from .shapes import (INPUT_BUCKETS, INPUT_CALLS, INPUT_SIZE_SUM, INPUT_SIZED, MAX_TYPES_PER_PARAMETER, OTHER_TYPE,
                     SIZE_BOUNDS, count_failed_inputs, failed_shape, shapes)
from .signals import empty, fallback
from . import traces
from .experiments import ShadowCall, arm_ends, pair, pair_half, trial_begins, trial_drawn, trial_raised, trial_returned
from .spans import (RECORDED_PARENT, UNSAMPLED, _begin_in_trace, _begin_span, _end_span, _failed_call, _last_trace,
                    _leave_sampled, _mark_failed, _slow_call)
from .state import (BOUNDS_NS, BOUNDS_SECONDS, Call, FunctionProbe, _LOW, _NEVER, _SPLIT, _no_redaction, _open_gate,
                    _probes, _settings, all_probes, refresh_slow, replace_tracers, set_tracer)
from .state import reset_counts as _reset_probe_counts
from . import experiments

__all__ = [
    "BOUNDS_NS", "BOUNDS_SECONDS", "Call", "FunctionProbe", "INPUT_BUCKETS", "INPUT_CALLS", "INPUT_SIZED",
    "INPUT_SIZE_SUM", "MAX_TYPES_PER_PARAMETER", "Marker", "OTHER_TYPE", "Provenance", "SIZE_BOUNDS", "accelerated",
    "accelerator_available", "add_attributes", "all_probes", "configure", "empty", "enter", "fail", "fallback",
    "function", "leave", "pair", "pair_half", "python_enter", "python_leave", "refresh_slow", "replace_tracers", "reset_counts",
    "experiments", "resume", "shapes", "suspend", "traces", "trial_begins", "trial_drawn", "trial_raised", "trial_returned",
    "use_accelerator",
]

_now = time.perf_counter_ns
_attach = otel_context.attach
_detach = otel_context.detach
_in_context = trace.set_span_in_context
_INVALID_SPAN = trace.INVALID_SPAN


def _context_reader() -> Tuple[Any, Any]:
    """The context variable that holds the OTel context, and the key of its current span:
    one read tells whether a call runs inside a trace. Another runtime context
    (OTEL_PYTHON_CONTEXT) is read through the API instead."""
    from opentelemetry.context import _RUNTIME_CONTEXT
    from opentelemetry.trace.propagation import _SPAN_KEY

    variable = getattr(_RUNTIME_CONTEXT, "_current_context", None)
    if variable.__class__ is not contextvars.ContextVar:
        return None, _SPAN_KEY
    return variable, _SPAN_KEY


_CONTEXT_VARIABLE, _SPAN_KEY = _context_reader()
if _CONTEXT_VARIABLE is not None:
    _current_context = _CONTEXT_VARIABLE.get
    try:  # what the variable holds wherever nothing was attached: no span, nothing to look up
        _EMPTY_CONTEXT: Any = contextvars.Context().run(_CONTEXT_VARIABLE.get)
    except LookupError:
        _EMPTY_CONTEXT = None
else:
    _current_context = otel_context.get_current
    _EMPTY_CONTEXT = None


def configure(
    tracer: Any = None,
    error_tracer: Any = None,
    span_rate_limit: float = 10.0,
    prompt_max_length: int = 256,
    capture_prompt: bool = True,
    starter: Any = None,
    redact: Optional[Callable[[str], str]] = None,
    accelerator: bool = True,
    span_burst: int = 100,
    trace_span_budget: int = 1000,
    slow_threshold: Optional[Tuple[int, float]] = (100_000_000, 4.0),
    late_span_rate: float = 1.0,
) -> None:
    """Set the tracers and limits; probes created earlier follow the new ones.

    ``starter``: called once, on the first call of any marked function, to build the rest
    of the SDK pipeline (the meter provider and its readers). ``accelerator``: use the
    C ``enter``/``leave`` when they are installed. ``slow_threshold``: (floor in ns,
    multiple of the function's p99; 0 = the floor alone), or None: slow calls get no span."""
    use_accelerator(accelerator)
    _settings.starter = starter
    set_tracer(tracer)
    _settings.error_tracer = error_tracer if error_tracer is not None else tracer
    if span_rate_limit > 0:
        _settings.span_interval_ns = max(1, int(1e9 / span_rate_limit))
    else:
        _settings.span_interval_ns = 0
    _settings.span_burst = max(1, int(span_burst))
    _settings.trace_span_budget = max(0, int(trace_span_budget))
    _settings.slow_floor_ns, _settings.slow_p99_multiple = (
        (None, 0.0) if slow_threshold is None else (int(slow_threshold[0]), float(slow_threshold[1])))
    _settings.late_interval_ns = max(1, int(1e9 / late_span_rate)) if late_span_rate > 0 else 0
    _settings.prompt_max_length = prompt_max_length
    _settings.capture_prompt = capture_prompt
    _settings.redact = redact if redact is not None else _no_redaction
    _redactions.clear()
    UNSAMPLED[0] = RECORDED_PARENT[0] = None
    _last_trace[0] = None  # formatted with the old redaction
    traces.forget_all()
    for probe in _probes:
        probe.tat = probe.late_tat = 0
        _open_gate(probe)
        refresh_slow(probe)


def reset_counts() -> None:
    """Zero every count, the experiments' too: a forked child reports its own calls."""
    _reset_probe_counts()
    experiments.reset_counts()


# No default-argument tricks to make globals local: on 3.13 a call that fills in
# defaults is not inlined until specialized, and the first deep recursion then stops
# one frame earlier than the plain function (found by the fidelity matrix).
def enter(probe: FunctionProbe) -> Any:
    start = _now()
    context = _current_context()
    # the variable's default holds nothing: no dict lookup outside any trace
    span = None if context is _EMPTY_CONTEXT else context.get(_SPAN_KEY)
    if span is None or span is _INVALID_SPAN:  # outside any trace: the rate cap decides
        if start < probe.gate:
            return start
        return _begin_span(probe, start)
    if span is UNSAMPLED[0]:  # inside a trace decided not recorded
        return start
    return _begin_in_trace(probe, start, span)


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
        if elapsed > probe.slow:
            try:
                _slow_call(probe, elapsed, end)
            except Exception:
                pass
        return
    try:
        if call.__class__ is float:  # the accelerator's token (it was switched off during the call)
            leave(probe, _token_base + int(call))
            return
        _end_span(probe, call, end)
    except Exception:
        pass


def fail(probe: FunctionProbe, call: Any, exc: BaseException) -> None:
    """An exception leaves the body: record it and finish the call. Always returns None."""
    end = _now()
    try:
        if call.__class__ is ShadowCall:  # a shadow arm: caught by the experiment, never a failed call
            arm_ends(call, end, exc, _mark_failed)
            return None
        if isinstance(exc, GeneratorExit):  # close() of a generator: a normal end of its life
            leave(probe, call)
            return None
        # semantic-conventions error.type: the class name, qualified unless builtin
        # (inline: a helper would be one frame deeper at the recursion limit)
        cls = exc.__class__
        module = cls.__module__
        kind = cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
        start = call if call.__class__ is int else (_token_base + int(call) if call.__class__ is float else call.start)
        elapsed = end - start
        counts = probe.errors.get(kind)
        if counts is None:
            counts = probe.errors.setdefault(kind, [0] * (len(BOUNDS_NS) + 2))
        counts[bisect_left(BOUNDS_NS, elapsed)] += 1
        counts[-1] += elapsed
        shape = None
        if probe.parameters:  # shapes on: the shapes the call started with, for its late span
            try:
                shape = failed_shape(probe, call)
            except Exception:  # (at the recursion limit, say) the span still ends, without them
                pass
        _failed_call(probe, call, exc, kind, elapsed, end, shape)
        if probe.parameters:  # and the failure counted by them, once its span is taken care of
            count_failed_inputs(probe, kind, shape)
    except Exception:
        pass
    return None


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
_token_base = 0  # what the accelerator's unsampled-call tokens (floats) count from: see _speedups.c


def _load_accelerator() -> Any:
    try:
        if _CONTEXT_VARIABLE is None:  # another runtime context: only the Python probes read it
            return None
        import aiotel._speedups as _speedups  # the C module (a relative import reads as the package)

        if not hasattr(_speedups, "set_shadowing"):  # built from an older source: it would miss shadow arms
            return None

        global _token_base
        _token_base = _speedups.bind(FunctionProbe, BOUNDS_NS, _begin_span, _leave_sampled, _begin_in_trace,
                                     _CONTEXT_VARIABLE, _SPAN_KEY, _INVALID_SPAN, UNSAMPLED, _NEVER, _EMPTY_CONTEXT)
        # start times cross between the C and Python functions: one clock
        if abs(_speedups.now() - _now()) > 50_000_000:
            return None
        return _speedups
    except Exception:  # not built (no compiler, not Linux), or built for another Python
        return None


_accelerator = _load_accelerator()
experiments.shadowing_changed = _accelerator.set_shadowing if _accelerator is not None else None


def accelerator_available() -> bool:
    """Whether the C ``enter``/``leave`` were built and load here."""
    return _accelerator is not None


def accelerated() -> bool:
    """Whether the C ``enter``/``leave`` are the ones rewritten code calls now."""
    return _accelerator is not None and enter is _accelerator.enter


def use_accelerator(wanted: bool) -> None:
    """Takes effect at once: rewritten modules bind ``enter``/``leave`` as their own globals
    (``__aiotel_enter__``/``__aiotel_leave__``), rebound here. A call in flight may start
    in one and end in the other: each takes the other's call."""
    global enter, leave
    if wanted and _accelerator is not None:
        enter, leave = _accelerator.enter, _accelerator.leave
    else:
        enter, leave = python_enter, python_leave
    for module in list(sys.modules.values()):
        if issubclass(type(module), ModuleType):  # no code of the object's own runs to ask
            namespace = module.__dict__
            if "__aiotel_enter__" in namespace:
                namespace["__aiotel_enter__"], namespace["__aiotel_leave__"] = enter, leave


use_accelerator(True)
