"""The probes' in-process counts reach any SDK metric reader, in its preferred temporality."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from aiotel import probes
from aiotel.pipeline import metrics

pytestmark = pytest.mark.instrumentation


def make_probe(name):
    record = probes.Provenance(qualname=name, module="", def_line=3, first_line=3, last_line=4, is_async=False,
                               is_generator=False, is_async_generator=False, source="comment",
                               marker=probes.Marker(tool="Claude"))
    return probes.function(record, f"/src/{name}.py")


def call(probe, fail=None):
    token = probes.enter(probe)
    if fail is None:
        probes.leave(probe, token)
    else:
        probes.fail(probe, token, fail)


def points(reader, name):
    data = reader.get_metrics_data()
    found = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "aiotel.function.duration":
                    assert sm.scope.name == "aiotel" and metric.unit == "s"
                    for point in metric.data.data_points:
                        if point.attributes["code.function.name"] == name:
                            found[point.attributes.get("error.type")] = (point, metric.data.aggregation_temporality)
    return found


def test_cumulative_reader_sees_totals_with_error_type_series():
    reader = InMemoryMetricReader()
    MeterProvider(metric_readers=[reader], resource=Resource.create({}))
    metrics.attach(reader, lambda: Resource.create({}))
    probe = make_probe("bridge_cumulative")
    for _ in range(3):
        call(probe)
    call(probe, KeyError("k"))
    first = points(reader, "bridge_cumulative")
    ok, temporality = first[None]
    assert (ok.count, sum(ok.bucket_counts), temporality) == (3, 3, AggregationTemporality.CUMULATIVE)
    assert first["KeyError"][0].count == 1
    assert list(ok.explicit_bounds) == list(probes.BOUNDS_SECONDS) and 0 < ok.sum < 1
    call(probe)
    assert points(reader, "bridge_cumulative")[None][0].count == 4


def test_delta_reader_sees_changes_since_its_last_collection():
    reader = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    MeterProvider(metric_readers=[reader], resource=Resource.create({}))
    metrics.attach(reader, lambda: Resource.create({}))
    probe = make_probe("bridge_delta")
    call(probe)
    call(probe)
    ok, temporality = points(reader, "bridge_delta")[None]
    assert (ok.count, temporality) == (2, AggregationTemporality.DELTA)
    call(probe)
    assert points(reader, "bridge_delta")[None][0].count == 1
    assert points(reader, "bridge_delta") == {}  # nothing new: no point


def test_bucket_lookup_matches_bisect_on_every_boundary():
    from bisect import bisect_left

    values = list(range(0, 3000)) + [b + d for b in probes.BOUNDS_NS for d in (-1, 0, 1)] + [2**62]
    for value in values:
        bits = value.bit_length()
        assert probes._LOW[bits] + (value > probes._SPLIT[bits]) == bisect_left(probes.BOUNDS_NS, value)
