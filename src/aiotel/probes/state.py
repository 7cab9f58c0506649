"""Per-function call state: the duration buckets, each marked function's counts, the
settings and rate caps that decide whether a call may start a span, and the slow-call
threshold."""

from __future__ import annotations

import struct
from bisect import bisect_left
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import semconv

# Bucket upper bounds of aiotel.function.duration, in ns (exported in seconds). AI-written
# helpers run from a microsecond to seconds, so the buckets span 1 µs to 10 s in 1-2.5-5
# steps; OTel's default bounds (0..10000, meant for milliseconds) would put every call
# of a seconds-unit histogram into the first two buckets.
BOUNDS_NS: Tuple[int, ...] = tuple(
    int(m * 10**e) for e in range(3, 10) for m in (1, 2.5, 5)
) + (10_000_000_000,)
BOUNDS_SECONDS: Tuple[float, ...] = tuple(b / 1e9 for b in BOUNDS_NS)
# FunctionProbe.fast_counts, as the accelerator writes it: a C long long per bucket, then the sum
_FAST_COUNTS = struct.Struct(f"={len(BOUNDS_NS) + 2}q")


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

    __slots__ = ("tracer", "error_tracer", "span_maker", "span_interval_ns", "span_burst", "prompt_max_length",
                 "capture_prompt", "starter", "redact", "trace_span_budget", "slow_floor_ns", "slow_p99_multiple",
                 "late_interval_ns", "late_burst")

    def __init__(self) -> None:
        self.starter: Any = None  # builds the SDK pipeline on the first call, then is cleared
        self.tracer: Any = None  # None: no spans, metrics only
        self.span_maker: Any = None  # starts spans on ``tracer`` for less (span_maker.SpanMaker), when it can
        self.error_tracer: Any = None  # always samples: late spans (failed or slow calls the sampler dropped)
        self.span_interval_ns = 100_000_000  # the per-function cap on new traces: one per interval...
        self.span_burst = 100  # ...after a burst of this many
        self.trace_span_budget = 1000  # spans of one function in one trace
        self.slow_floor_ns: Optional[int] = 100_000_000  # None: slow calls get no span
        self.slow_p99_multiple = 4.0  # 0: the floor alone
        self.late_interval_ns = 1_000_000_000  # late spans per function: one per interval...
        self.late_burst = 10  # ...after a burst of this many
        self.prompt_max_length = 256
        self.capture_prompt = True
        self.redact: Callable[[str], str] = _no_redaction  # aiotel.probes.redact.Redactor once configured


def _no_redaction(text: str) -> str:
    return text


_settings = _ProbeSettings()
_probes: List["FunctionProbe"] = []


# Reasons a span was recorded (aiotel.span.reason)
ROOT, IN_TRACE, ERROR, SLOW = "root", "in_trace", "error", "slow"
REASONS = (ROOT, IN_TRACE, ERROR, SLOW)


class FunctionProbe:
    """One marked function: its span name and attributes (built once), its call statistics."""

    __slots__ = (
        "name", "attributes", "metric_attributes", "by_reason", "caller_attributes",
        "ok_buckets", "ok_sum_ns", "fast_counts", "errors", "fallbacks", "empties", "parameters", "inputs",
        "gate", "tat", "slow", "late_tat", "over_budget", "shadow_rate", "experiment", "memory", "call_shapes",
        "failed_inputs", "__weakref__",
    )

    def __init__(
        self, name: str, attributes: Dict[str, Any], metric_attributes: Dict[str, Any], parameters: Tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.set_attributes(attributes)
        self.metric_attributes = metric_attributes
        self.ok_buckets = [0] * (len(BOUNDS_NS) + 1)
        self.ok_sum_ns = 0
        # the same counts, kept by the C accelerator: bucket counts then the sum, as C long longs
        self.fast_counts = bytearray(_FAST_COUNTS.size)
        # error.type -> [bucket counts..., sum_ns]: a new type is rare, a dict lookup is fine
        self.errors: Dict[str, List[int]] = {}
        # (handler line, exception.type) -> times that except handler caught something
        self.fallbacks: Dict[Tuple[int, str], int] = {}
        # return line -> times the function returned None there (it returns values elsewhere)
        self.empties: Dict[int, int] = {}
        # with AIOTEL_CAPTURE_ARGS=shape: per parameter, type name -> counts (INPUT_*)
        self.parameters = parameters
        self.inputs: List[Dict[str, List[int]]] = [{} for _ in parameters]
        # the shape of each thread's latest call without a span: thread id -> (call, shape)
        self.call_shapes: Dict[int, Tuple[Any, Tuple[Tuple[str, int], ...]]] = {}
        # failed calls by (error.type, parameter, type name, length bucket) (shapes.failed_inputs)
        self.failed_inputs: Dict[Tuple[str, str, str, str], int] = {}
        self.gate = _NEVER  # monotonic ns before which no call may start a trace (rate cap)
        self.tat = 0  # GCRA "theoretical arrival time" of the next span
        self.late_tat = 0  # the same for late spans (failed and slow calls without one)
        self.over_budget = 0  # calls left without a span: their trace had the budget's worth
        self.slow = _NEVER  # an unsampled call longer than this (ns) gets a late span
        self.shadow_rate = 0.0  # an experiment's arm: the fraction of calls that run both arms
        self.experiment: Any = None  # its experiments.Experiment
        # recorded calls' change of resident memory: bucket counts (memory.BOUNDS_BYTES) then the sum
        self.memory: Optional[List[int]] = None
        _open_gate(self)
        refresh_slow(self)

    def ok_counts(self) -> List[int]:
        """Bucket counts then the sum (ns) of the calls that raised nothing: the Python
        probes' and the accelerator's together (a copy, read at collection, never per call)."""
        counts = self.ok_buckets + [self.ok_sum_ns]
        fast = self.fast_counts
        if fast.count(0) != len(fast):
            for index, value in enumerate(_FAST_COUNTS.unpack(fast)):
                counts[index] += value
        return counts

    def set_attributes(self, attributes: Dict[str, Any]) -> None:
        """The span attributes, and what a span of each reason and a foreign span started
        inside a call carry: built here, once, never per call."""
        self.attributes = attributes
        self.by_reason = {reason: dict(attributes, **{semconv.SPAN_REASON: reason}) for reason in REASONS}
        self.caller_attributes = caller_identity(attributes, self.name)


def caller_identity(attributes: Any, name: str = "") -> Dict[str, Any]:
    """What another instrumentation's span started inside a marked call carries, from the
    function's own span attributes."""
    return {
        semconv.FUNCTION_NAME: attributes.get(semconv.CODE_FUNCTION_NAME, name),
        semconv.FUNCTION_FILE: attributes.get(semconv.CODE_FILE_PATH, ""),
        semconv.FUNCTION_LINE: attributes.get(semconv.CODE_LINE_NUMBER, 0),
        semconv.FUNCTION_TOOL: attributes.get(semconv.PROVENANCE_TOOL, "unknown"),
    }


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


def late_spans_on() -> bool:
    """Late spans need spans: none with AIOTEL_SPAN_RATE_LIMIT=0 (metrics only) or no exporter."""
    return _settings.error_tracer is not None and _settings.span_interval_ns > 0


def _take_late_slot(probe: FunctionProbe, now: int) -> bool:
    """The late-span cap, the same algorithm: a threshold never bypasses the sampler without bound."""
    interval = _settings.late_interval_ns
    if interval <= 0 or now < probe.late_tat - interval * (_settings.late_burst - 1):
        return False
    probe.late_tat = max(probe.late_tat, now) + interval
    return True


# A percentile of a few calls says little: until then the floor alone decides
MIN_CALLS_FOR_P99 = 50


def p99_ns(buckets: List[int]) -> Optional[float]:
    """The 99th percentile of a duration histogram, interpolated inside its bucket."""
    total = sum(buckets)
    if total < MIN_CALLS_FOR_P99:
        return None
    rank = 0.99 * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            low = BOUNDS_NS[index - 1] if index > 0 else 0
            high = BOUNDS_NS[index] if index < len(BOUNDS_NS) else BOUNDS_NS[-1]
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(BOUNDS_NS[-1])


def refresh_slow(probe: FunctionProbe) -> None:
    """The slow-call threshold from the floor and the function's own p99 (recomputed when
    a call crosses it and at each metric collection, never per call)."""
    floor = _settings.slow_floor_ns
    if floor is None or not late_spans_on():
        probe.slow = _NEVER
        return
    threshold = floor
    if _settings.slow_p99_multiple > 0:
        p99 = p99_ns(probe.ok_counts()[:-1])
        if p99 is not None:
            threshold = max(threshold, int(p99 * _settings.slow_p99_multiple))
    probe.slow = threshold


def set_tracer(tracer: Any) -> None:
    """The tracer of the calls' spans, and what starts them on it."""
    from .span_maker import SpanMaker

    _settings.tracer = tracer
    maker = SpanMaker(tracer) if tracer is not None else None
    _settings.span_maker = maker if maker is not None and maker.usable else None


def replace_tracers(tracer: Any, error_tracer: Any) -> None:
    """New tracers, same limits (a forked child with its own resource)."""
    if _settings.tracer is not None:
        set_tracer(tracer)
    if _settings.error_tracer is not None:
        _settings.error_tracer = error_tracer


def reset_counts() -> None:
    """Zero every count: a forked child reports its own calls, not its parent's."""
    for probe in _probes:
        probe.ok_buckets = [0] * (len(BOUNDS_NS) + 1)
        probe.ok_sum_ns = 0
        probe.fast_counts = bytearray(_FAST_COUNTS.size)
        probe.errors = {}
        probe.fallbacks = {}
        probe.empties = {}
        probe.inputs = [{} for _ in probe.parameters]
        probe.failed_inputs = {}
        probe.over_budget = 0
        probe.memory = None


def all_probes() -> List[FunctionProbe]:
    return list(_probes)


class Call:
    """A call with a span in flight (recording, or carrying a trace's "not recorded"
    decision). Calls without a span are just their start time (an int)."""

    __slots__ = ("start", "span", "token", "trace", "span_id", "rss", "shape")

    def __init__(self, start: int, span: Any, token: Any, trace: Any = None, span_id: int = 0, rss: int = -1) -> None:
        self.start = start
        self.span = span
        self.token = token
        self.trace = trace  # its trace's aiotel.probes.traces.TraceState when recording
        self.span_id = span_id
        self.rss = rss  # resident bytes when a recorded call began (-1: not read)
        self.shape: Any = None  # with shapes on: (type name, length or -1) per parameter
