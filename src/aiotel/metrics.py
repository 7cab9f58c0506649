"""Hands the probes' call statistics to the SDK's metric readers as ``aiotel.function.duration``.

The probes count calls in plain lists because the SDK's ``Histogram.record`` costs
micro-seconds per call. The Python SDK has no MetricProducer hook, so each reader's
collect callback (set by the MeterProvider) is wrapped: whatever the SDK collected,
plus one ``aiotel`` scope holding the histogram built from the probes. This works for
every reader kind (periodic OTLP/console, Prometheus pull, in-memory) and honours each
reader's preferred temporality. ``MetricReader._collect`` is private SDK API, pinned by
the dependency range and covered by the wire tests.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

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

from . import probes
from ._version import __version__

DURATION = "aiotel.function.duration"
DURATION_DESCRIPTION = "Duration of calls of AI-generated functions; count = calls, error.type = failed calls"
FALLBACKS = "aiotel.function.fallbacks"
FALLBACKS_DESCRIPTION = "Times an except handler inside an AI-generated function caught something"

# (probe identity, error.type or None) -> (bucket counts, sum in ns)
_Series = Dict[Tuple[int, Optional[str]], Tuple[List[int], int]]


def _read_series() -> List[Tuple[probes.FunctionProbe, Optional[str], List[int], int]]:
    """A copy of every non-empty series; counting goes on while this runs."""
    series = []
    for probe in probes.all_probes():
        buckets = list(probe.ok_buckets)
        if any(buckets):
            series.append((probe, None, buckets, probe.ok_sum_ns))
        for kind, counts in list(probe.errors.items()):
            copy = list(counts)
            series.append((probe, kind, copy[:-1], copy[-1]))
    return series


class DurationSource:
    """The histogram for one reader: cumulative, or the change since its last collection."""

    def __init__(self, delta: bool, fallbacks_delta: bool = False) -> None:
        self.delta = delta
        self.fallbacks_delta = fallbacks_delta
        self.previous_fallbacks: Dict[Tuple[int, int, str], int] = {}
        self.started = time.time_ns()
        self.last_collection = self.started
        self.previous: _Series = {}
        self.lock = threading.Lock()

    def metrics(self) -> List[Metric]:
        """The duration histogram and the fallback counter, whichever have points."""
        with self.lock:
            found = []
            fallbacks = self._fallbacks()
            duration = self._duration()
            if duration is not None:
                found.append(duration)
            if fallbacks is not None:
                found.append(fallbacks)
            return found

    def _fallbacks(self) -> Optional[Metric]:
        now = time.time_ns()
        points = []
        for probe in probes.all_probes():
            for (line, kind), total in list(probe.fallbacks.items()):
                value = total
                if self.fallbacks_delta:
                    key = (id(probe), line, kind)
                    value = total - self.previous_fallbacks.get(key, 0)
                    self.previous_fallbacks[key] = total
                    if value == 0:
                        continue
                attributes = dict(probe.metric_attributes)
                attributes["code.line.number"] = line
                attributes["exception.type"] = kind
                points.append(
                    NumberDataPoint(
                        attributes=attributes,
                        start_time_unix_nano=self.last_collection if self.fallbacks_delta else self.started,
                        time_unix_nano=now,
                        value=value,
                    )
                )
        if not points:
            return None
        temporality = AggregationTemporality.DELTA if self.fallbacks_delta else AggregationTemporality.CUMULATIVE
        return Metric(
            name=FALLBACKS,
            description=FALLBACKS_DESCRIPTION,
            unit="{fallback}",
            data=Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=True),
        )

    def _duration(self) -> Optional[Metric]:
        now = time.time_ns()
        points = []
        for probe, kind, buckets, total_ns in _read_series():
            if self.delta:
                key = (id(probe), kind)
                before = self.previous.get(key)
                self.previous[key] = (buckets, total_ns)
                if before is not None:
                    buckets = [a - b for a, b in zip(buckets, before[0])]
                    total_ns -= before[1]
            count = sum(buckets)
            if count == 0:
                continue
            attributes = dict(probe.metric_attributes)
            if kind is not None:
                attributes["error.type"] = kind
            points.append(
                HistogramDataPoint(
                    attributes=attributes,
                    start_time_unix_nano=self.last_collection if self.delta else self.started,
                    time_unix_nano=now,
                    count=count,
                    sum=total_ns / 1e9,
                    bucket_counts=buckets,
                    explicit_bounds=probes.BOUNDS_SECONDS,
                    # not tracked: two more comparisons on every call for fields
                    # neither Prometheus nor the report uses; OTLP leaves them unset
                    min=None,  # type: ignore[arg-type]
                    max=None,  # type: ignore[arg-type]
                )
            )
        self.last_collection = now
        if not points:
            return None
        temporality = AggregationTemporality.DELTA if self.delta else AggregationTemporality.CUMULATIVE
        return Metric(
            name=DURATION,
            description=DURATION_DESCRIPTION,
            unit="s",
            data=Histogram(data_points=points, aggregation_temporality=temporality),
        )


_sources: List[DurationSource] = []


def reset_after_fork() -> None:
    """A forked child's series start now, from zero (``probes.reset_counts``)."""
    now = time.time_ns()
    for source in _sources:
        source.lock = threading.Lock()  # a lock held by another thread at fork stays held
        source.started = source.last_collection = now
        source.previous = {}
        source.previous_fallbacks = {}


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


def attach(reader: MetricReader, resource: Callable[[], Resource]) -> None:
    """Make ``reader`` (already registered with a MeterProvider) collect the probes' histogram too.

    ``resource`` is asked at each collection: a forked child reports under its own
    ``service.instance.id``."""
    collect = reader._collect  # set by MeterProvider.__init__
    delta = reader._instrument_class_temporality.get(_Histogram) is AggregationTemporality.DELTA
    counter_delta = reader._instrument_class_temporality.get(_Counter) is AggregationTemporality.DELTA
    source = DurationSource(delta, counter_delta)
    _sources.append(source)

    def collect_with_probes(reader_: Any, timeout_millis: float = 10_000) -> Optional[MetricsData]:
        data = collect(reader_, timeout_millis=timeout_millis) if collect is not None else None
        metric = source.metrics()
        if not metric:
            # nothing at all to report: no export request (a collector-less run stays quiet)
            return data if data is not None and any(rm.scope_metrics for rm in data.resource_metrics) else None
        return _with_metric(data, metric, resource())

    reader._collect = collect_with_probes
