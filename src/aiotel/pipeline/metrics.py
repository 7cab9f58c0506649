"""Hands the probes' counts to the SDK's metric readers: ``aiotel.function.duration``,
``.fallbacks``, ``.empty_results`` and, with shapes captured, ``.input.types`` and ``.input.size``.

The probes count calls in plain lists because the SDK's ``Histogram.record`` costs
micro-seconds per call. The Python SDK has no MetricProducer hook, so each reader's
collect callback (set by the MeterProvider) is wrapped: whatever the SDK collected,
plus one ``aiotel`` scope holding the metrics built from the probes. This works for
every reader kind (periodic OTLP/console, Prometheus pull, in-memory) and honours each
reader's preferred temporality. ``MetricReader._collect`` is private SDK API, pinned by
the dependency range and covered by the wire tests.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from opentelemetry.sdk.metrics._internal.instrument import _Counter, _Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from . import llm_calls, losses
from .. import probes, semconv
from ..probes import memory
from .._version import __version__

DURATION = semconv.FUNCTION_DURATION
FALLBACKS = semconv.FUNCTION_FALLBACKS
EMPTY_RESULTS = semconv.FUNCTION_EMPTY_RESULTS
INPUT_TYPES = semconv.FUNCTION_INPUT_TYPES
INPUT_SIZE = semconv.FUNCTION_INPUT_SIZE

# A series: (key, attributes, values). Values are the running totals: one number for a
# counter; bucket counts then the sum for a histogram.
_Series = Tuple[Tuple[Any, ...], Dict[str, Any], List[int]]


def _duration_series() -> Iterator[_Series]:
    for probe in probes.all_probes():
        counts = probe.ok_counts()
        if any(counts[:-1]):
            yield (id(probe), None), probe.metric_attributes, counts
        for kind, counts in list(probe.errors.items()):
            yield (id(probe), kind), dict(probe.metric_attributes, **{semconv.ERROR_TYPE: kind}), list(counts)


def _over_budget_series() -> Iterator[_Series]:
    for probe in probes.all_probes():
        if probe.over_budget:
            yield (id(probe),), probe.metric_attributes, [probe.over_budget]


def _memory_series() -> Iterator[_Series]:
    for probe in probes.all_probes():
        if probe.memory is not None:
            yield (id(probe),), probe.metric_attributes, list(probe.memory)


def _dropped_series() -> Iterator[_Series]:
    for reason, dropped in sorted(losses.spans_dropped().items()):
        yield (reason,), {semconv.SPANS_DROPPED_REASON: reason}, [dropped]


def _failed_metric_exports_series() -> Iterator[_Series]:
    failed = losses.metric_exports_failed()
    if failed:
        yield (), {}, [failed]


def _duration_series_refreshing() -> Iterator[_Series]:
    """The duration series; each function's slow-call threshold follows its p99 here, at
    every collection, never per call."""
    for probe in probes.all_probes():
        probes.refresh_slow(probe)
    return _duration_series()


def _fallback_series() -> Iterator[_Series]:
    for probe in probes.all_probes():
        for (line, kind), total in list(probe.fallbacks.items()):
            attributes = dict(probe.metric_attributes, **{semconv.CODE_LINE_NUMBER: line, semconv.EXCEPTION_TYPE: kind})
            yield (id(probe), line, kind), attributes, [total]


def _empty_result_series() -> Iterator[_Series]:
    for probe in probes.all_probes():
        for line, total in list(probe.empties.items()):
            yield (id(probe), line), dict(probe.metric_attributes, **{semconv.CODE_LINE_NUMBER: line}), [total]


def _input_series(sizes: bool) -> Iterator[_Series]:
    for probe in probes.all_probes():
        for parameter, per_type in zip(probe.parameters, list(probe.inputs)):
            for kind, counts in list(per_type.items()):
                attributes = dict(probe.metric_attributes, **{semconv.INPUT_PARAMETER: parameter, semconv.INPUT_TYPE: kind})
                copy = list(counts)
                if not sizes:
                    yield (id(probe), parameter, kind), attributes, [copy[probes.INPUT_CALLS]]
                elif copy[probes.INPUT_SIZED]:
                    yield (id(probe), parameter, kind), attributes, copy[probes.INPUT_BUCKETS:] + [copy[probes.INPUT_SIZE_SUM]]


def _failed_input_series() -> Iterator[_Series]:
    for probe in probes.all_probes():
        for (kind, parameter, name, length), total in list(probe.failed_inputs.items()):
            attributes = dict(probe.metric_attributes, **{semconv.ERROR_TYPE: kind, semconv.INPUT_PARAMETER: parameter,
                                                          semconv.INPUT_TYPE: name, semconv.INPUT_LENGTH: length})
            yield (id(probe), kind, parameter, name, length), attributes, [total]


def _experiment_series(what: str) -> Iterator[_Series]:
    """An experiment's counts: compared calls and mismatches by the arm the program called,
    each arm's time by role, the shadow arm's errors."""
    experiments = probes.experiments
    for experiment in experiments.all_experiments():
        base = experiment.attributes
        if what == "calls":
            for live, total in list(experiment.calls.items()):
                yield (id(experiment), live), dict(base, **{semconv.EXPERIMENT_LIVE: live}), [total]
        elif what == "mismatches":
            for (live, kind), total in list(experiment.mismatches.items()):
                yield ((id(experiment), live, kind),
                       dict(base, **{semconv.EXPERIMENT_LIVE: live, semconv.MISMATCH_KIND: kind}), [total])
        elif what == "durations":
            for (arm, role), counts in list(experiment.durations.items()):
                yield ((id(experiment), arm, role),
                       dict(base, **{semconv.EXPERIMENT_ARM: arm, semconv.EXPERIMENT_ROLE: role}), list(counts))
        else:
            for (arm, kind), total in list(experiment.shadow_errors.items()):
                yield ((id(experiment), arm, kind),
                       dict(base, **{semconv.EXPERIMENT_ARM: arm, semconv.ERROR_TYPE: kind}), [total])


@dataclasses.dataclass(frozen=True)
class _Instrument:
    name: str
    description: str
    unit: str
    series: Callable[[], Iterable[_Series]]
    bounds: Optional[Sequence[float]] = None  # a histogram's bucket bounds; None: a counter
    sum_scale: float = 1.0  # a histogram's sum in exported units per counted unit


INSTRUMENTS = (
    _Instrument(DURATION, "Duration of calls of AI-generated functions; count = calls, error.type = failed calls",
                "s", _duration_series_refreshing, probes.BOUNDS_SECONDS, 1e-9),
    _Instrument(FALLBACKS, "Times an except handler inside an AI-generated function caught something",
                "{fallback}", _fallback_series),
    _Instrument(EMPTY_RESULTS, "Times an AI-generated function that returns values elsewhere returned None",
                "{call}", _empty_result_series),
    _Instrument(semconv.FUNCTION_SPANS_OVER_BUDGET,
                "Calls of AI-generated functions left without a span: their trace had AIOTEL_TRACE_SPAN_BUDGET spans of them",
                "{call}", _over_budget_series),
    _Instrument(semconv.FUNCTION_MEMORY_RSS_DELTA,
                "Change of the process's resident memory across recorded calls of AI-generated functions (process-wide: "
                "other threads' allocations included)", "By", _memory_series, memory.BOUNDS_BYTES),
    _Instrument(semconv.FUNCTION_GEN_AI_OPERATION_DURATION, "Duration of LLM calls made inside AI-generated functions, "
                "by model and provider; count = calls, error.type = failed calls", "s",
                lambda: llm_calls.TALLY.duration_series(), llm_calls.DURATION_BOUNDS, 1e-9),
    _Instrument(semconv.FUNCTION_GEN_AI_TOKEN_USAGE, "Tokens per LLM call made inside AI-generated functions, by model, "
                "provider and gen_ai.token.type; sum = tokens", "{token}",
                lambda: llm_calls.TALLY.token_series(), llm_calls.TOKEN_BOUNDS),
    _Instrument(semconv.SPANS_DROPPED, "Finished spans that never reached their destination: export queue full "
                "(OTEL_BSP_MAX_QUEUE_SIZE), export failed, or rotated out of the store", "{span}", _dropped_series),
    _Instrument(semconv.METRIC_EXPORTS_FAILED, "Metric exports that failed; the next one that succeeds carries the totals",
                "{export}", _failed_metric_exports_series),
    _Instrument(INPUT_TYPES, "Calls of AI-generated functions by parameter and argument type (AIOTEL_CAPTURE_ARGS=shape)",
                "{call}", lambda: _input_series(sizes=False)),
    _Instrument(INPUT_SIZE, "Length of sized arguments of AI-generated functions (AIOTEL_CAPTURE_ARGS=shape)",
                "{item}", lambda: _input_series(sizes=True), probes.SIZE_BOUNDS),
    _Instrument(semconv.FUNCTION_INPUT_ERRORS, "Failed calls of AI-generated functions by exception type and each "
                "argument's type and length bucket (AIOTEL_CAPTURE_ARGS=shape)", "{call}", _failed_input_series),
    _Instrument(semconv.EXPERIMENT_CALLS, "Calls of an experiment's pair that ran both arms and were compared (AIOTEL_SHADOW)",
                "{call}", lambda: _experiment_series("calls")),
    _Instrument(semconv.EXPERIMENT_MISMATCHES, "Compared calls whose candidate and control disagreed, by kind",
                "{call}", lambda: _experiment_series("mismatches")),
    _Instrument(semconv.EXPERIMENT_ARM_DURATION, "Each arm's own time in a compared call, by arm and role (live or shadow)",
                "s", lambda: _experiment_series("durations"), probes.BOUNDS_SECONDS, 1e-9),
    _Instrument(semconv.EXPERIMENT_SHADOW_ERRORS, "Exceptions the shadow arm raised: caught and counted, never re-raised",
                "{call}", lambda: _experiment_series("errors")),
)


class ProbeMetrics:
    """The probes' counts as metrics for one reader: cumulative, or the change since its
    last collection, per instrument kind as the reader prefers."""

    def __init__(self, histogram_delta: bool, counter_delta: bool) -> None:
        self.histogram_delta = histogram_delta
        self.counter_delta = counter_delta
        self.lock = threading.Lock()
        self.restart()

    def restart(self) -> None:
        """Series start now, from zero (a forked child)."""
        self.started = self.last_collection = time.time_ns()
        self.previous: Dict[Tuple[str, Tuple[Any, ...]], List[int]] = {}

    def metrics(self) -> List[Metric]:
        """Every instrument that has points."""
        with self.lock:
            now = time.time_ns()
            found = [m for m in (self._metric(i, now) for i in INSTRUMENTS) if m is not None]
            self.last_collection = now
            return found

    def _metric(self, instrument: _Instrument, now: int) -> Optional[Metric]:
        histogram = instrument.bounds is not None
        delta = self.histogram_delta if histogram else self.counter_delta
        start = self.last_collection if delta else self.started
        points: List[Any] = []
        for key, attributes, values in instrument.series():
            if delta:
                before = self.previous.get((instrument.name, key))
                self.previous[(instrument.name, key)] = values
                if before is not None:
                    values = [a - b for a, b in zip(values, before)]
            if histogram:
                buckets = values[:-1]
                count = sum(buckets)
                if count:
                    points.append(HistogramDataPoint(
                        attributes=dict(attributes), start_time_unix_nano=start, time_unix_nano=now, count=count,
                        sum=values[-1] * instrument.sum_scale, bucket_counts=buckets,
                        explicit_bounds=tuple(instrument.bounds or ()),
                        # not tracked: two more comparisons on every call for fields
                        # neither Prometheus nor the report uses; OTLP leaves them unset
                        min=None, max=None,  # type: ignore[arg-type]
                    ))
            elif values[0] or not delta:
                points.append(NumberDataPoint(
                    attributes=dict(attributes), start_time_unix_nano=start, time_unix_nano=now, value=values[0]))
        if not points:
            return None
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        data: Any = (Histogram(data_points=points, aggregation_temporality=temporality) if histogram
                     else Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=True))
        return Metric(name=instrument.name, description=instrument.description, unit=instrument.unit, data=data)


_sources: List[ProbeMetrics] = []


def reset_after_fork() -> None:
    """A forked child's series start now, from zero (``probes.reset_counts``)."""
    for source in _sources:
        source.lock = threading.Lock()  # a lock held by another thread at fork stays held
        source.restart()
    llm_calls.reset_after_fork()


def _with_metric(data: Optional[MetricsData], metrics: List[Metric], resource: Resource) -> MetricsData:
    scope = ScopeMetrics(scope=InstrumentationScope("aiotel", __version__), metrics=metrics, schema_url="")
    ours = ResourceMetrics(resource=resource, scope_metrics=[scope], schema_url="")
    if data is None or not data.resource_metrics:
        return MetricsData(resource_metrics=[ours])
    merged = []
    for rm in data.resource_metrics:
        if ours is not None and rm.resource == resource:
            rm = ResourceMetrics(resource=rm.resource, scope_metrics=list(rm.scope_metrics) + [scope], schema_url=rm.schema_url)
            ours = None
        merged.append(rm)
    return MetricsData(resource_metrics=merged + ([ours] if ours is not None else []))


def attach(reader: MetricReader, resource: Callable[[], Resource], since: Optional[int] = None) -> None:
    """Make ``reader`` (already registered with a MeterProvider) collect the probes' histogram too.

    ``resource`` is asked at each collection: a forked child reports under its own
    ``service.instance.id``. ``since``: when the series start (the first marked call,
    which came before the reader was built), in ns since the epoch; now by default."""
    collect = reader._collect  # set by MeterProvider.__init__
    delta = reader._instrument_class_temporality.get(_Histogram) is AggregationTemporality.DELTA
    counter_delta = reader._instrument_class_temporality.get(_Counter) is AggregationTemporality.DELTA
    source = ProbeMetrics(delta, counter_delta)
    if since is not None:
        source.started = source.last_collection = since
    _sources.append(source)

    def collect_with_probes(reader_: Any, timeout_millis: float = 10_000) -> Optional[MetricsData]:
        data = collect(reader_, timeout_millis=timeout_millis) if collect is not None else None
        metric = source.metrics()
        if not metric:
            # nothing at all to report: no export request (a collector-less run stays quiet)
            return data if data is not None and any(rm.scope_metrics for rm in data.resource_metrics) else None
        return _with_metric(data, metric, resource())

    reader._collect = collect_with_probes
