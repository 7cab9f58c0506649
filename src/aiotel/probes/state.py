"""Per-function call state: the duration buckets, each marked function's counts, and the
settings and rate cap that decide whether a call may start a span."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Callable, Dict, List, Tuple

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
        self.redact: Callable[[str], str] = _no_redaction  # aiotel.probes.redact.Redactor once configured


def _no_redaction(text: str) -> str:
    return text


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


class Call:
    """A sampled call in flight. Unsampled calls are just their start time (an int)."""

    __slots__ = ("start", "span", "token")

    def __init__(self, start: int, span: Any, token: Any) -> None:
        self.start = start
        self.span = span
        self.token = token
