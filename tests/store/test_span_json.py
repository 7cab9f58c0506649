"""The store's direct span encoder writes, byte for byte, the line that protobuf's encoder
and ``MessageToDict`` write (the OTLP/JSON the Collector's file exporter writes), for spans
made by the real SDK in every shape it makes them; what it cannot spell exactly goes
the protobuf way."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace import set_span_in_context
from opentelemetry.trace.span import TraceState

from aiotel.store.span_json import Unusual, spans_line
from aiotel.store.writer import otlp_json, spans_json


class Keep(SpanExporter):
    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def tracer_with(resource=None, limits=None):
    kept = Keep()
    provider = TracerProvider(resource=resource or Resource.create({"service.name": "shop"}),
                              span_limits=limits or SpanLimits())
    provider.add_span_processor(SimpleSpanProcessor(kept))
    return provider, kept


def reference(spans):
    return otlp_json(encode_spans(spans))


def test_every_shape_the_sdk_makes_is_written_as_protobuf_writes_it():
    provider, kept = tracer_with(limits=SpanLimits(max_span_attributes=6, max_events=2, max_links=1,
                                                   max_event_attributes=2))
    tracer = provider.get_tracer("aiotel", "0.9", schema_url="https://opentelemetry.io/schemas/1.26.0",
                                 attributes={"scope.attr": "x"})
    other = provider.get_tracer("flask")
    remote = SpanContext(0x5B8EFFF798038103D269B633813FC60C, 0xEEE19B7EC3C1B174, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "a=1"), ("k2", "v")]))
    with tracer.start_as_current_span("shop.cart.total", context=set_span_in_context(NonRecordingSpan(remote)),
                                      kind=SpanKind.SERVER,
                                      attributes={"s": "é ✓ \u2028", "empty": "", "b": False, "i": -(2**63),
                                                  "f": 0.1, "z": -0.0, "big": 1e300}) as outer:
        outer.add_event("exception", {"exception.type": "ValueError", "exception.message": "bad \"amount\""})
        outer.add_event("", {})
        outer.add_event("third, over the limit")
        outer.set_attribute("over", "the attribute limit")
        with other.start_as_current_span("GET /", kind=SpanKind.CLIENT,
                                         links=[Link(remote, {"link.attr": 1}), Link(remote)]) as inner:
            inner.set_attributes({"seq.s": ["a", ""], "seq.i": (1, 2), "seq.f": [1.5], "seq.b": [True], "seq.e": []})
            inner.set_status(Status(StatusCode.ERROR, "no multiples of 17"))
        with tracer.start_as_current_span("", kind=SpanKind.PRODUCER) as unnamed:
            unnamed.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("root", kind=SpanKind.CONSUMER):
        pass
    assert len(kept.spans) == 4
    assert spans_line(kept.spans) == reference(kept.spans)
    for span in kept.spans:  # and each alone
        assert spans_line([span]) == reference([span])
    assert spans_line([]) == reference([])


def test_spans_of_several_resources_and_scopes_are_grouped_as_protobuf_groups_them():
    first, kept_first = tracer_with(Resource.create({"service.name": "a", "n": 1}, schema_url="https://x/1"))
    second, kept_second = tracer_with(Resource({}))
    for i in range(3):
        for provider in (first, second):
            with provider.get_tracer(f"scope{i % 2}", None if i else "1.0").start_as_current_span(f"s{i}"):
                pass
    mixed = [kept_first.spans[0], kept_second.spans[0], kept_first.spans[1], kept_second.spans[2], kept_first.spans[2]]
    assert spans_line(mixed) == reference(mixed)


values = st.recursive(
    st.one_of(st.text(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.lists(inner, max_size=3), max_leaves=6)
scalars = st.one_of(st.text(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False))
attribute_values = st.one_of(scalars, st.lists(st.text(), max_size=3), st.lists(st.integers(-5, 5), max_size=3),
                             st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3),
                             st.lists(st.booleans(), max_size=3))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), attribute_values, max_size=6), st.text(max_size=20))
def test_any_attributes_and_names_the_sdk_accepts_are_written_as_protobuf_writes_them(attributes, name):
    provider, kept = tracer_with()
    try:
        with provider.get_tracer("t").start_as_current_span(name, attributes=attributes) as span:
            span.add_event(name, attributes)
    except UnicodeEncodeError:
        pytest.skip("not a string the SDK takes")
    try:
        line = spans_line(kept.spans)
    except Unusual:  # a lone surrogate: the writer takes the protobuf way
        assert any("\ud800" <= c <= "\udfff" for text in [name, *map(str, attributes.items())] for c in text)
        return
    assert line == reference(kept.spans)


def test_what_it_cannot_spell_exactly_goes_the_protobuf_way():
    provider, kept = tracer_with()
    with provider.get_tracer("t").start_as_current_span("s", attributes={"nan": math.nan, "inf": -math.inf}):
        pass
    with pytest.raises(Unusual):
        spans_line(kept.spans)
    assert spans_json(kept.spans) == reference(kept.spans)
    assert '"doubleValue":"NaN"' in spans_json(kept.spans)
