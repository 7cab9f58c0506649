"""The span maker starts aiotel's spans for less than ``Tracer.start_span`` and gives what
it gives: the SDK's own span objects, decided by the same sampler, seen by every
processor at start and end, within the same limits, open to what the program's own code
does with the current span."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from aiotel.probes import span_maker
from aiotel.probes.span_maker import SpanMaker

ATTRIBUTES = {"code.function.name": "shop.total", "aiotel.provenance.prompt": "x" * 40, "aiotel.span.reason": "root"}


class Seen(SpanProcessor):
    def __init__(self):
        self.started, self.ended = [], []

    def on_start(self, span, parent_context=None):
        self.started.append(span.name)

    def on_end(self, span):
        self.ended.append(span.name)


def provider_with(sampler=None, limits=None):
    exporter, seen = InMemorySpanExporter(), Seen()
    provider = TracerProvider(sampler=sampler, span_limits=limits) if sampler else TracerProvider(span_limits=limits)
    provider.add_span_processor(seen)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter, seen


def exported(span):
    """What an exporter reads of a span, ids aside."""
    return (span.name, span.kind, dict(span.attributes), span.dropped_attributes,
            [(e.name, dict(e.attributes)) for e in span.events], span.dropped_events, span.status.status_code,
            span.status.description, span.resource, span.instrumentation_scope, span.context.trace_flags,
            span.context.trace_state, type(span).__name__)


def use(span):
    """What the probes and a program do with a call's span."""
    span.set_attribute("error.type", "ValueError")
    span.set_attributes({"user.attr": [1, 2], "user.long": "y" * 50})
    span.add_event("exception", {"exception.type": "ValueError", "exception.message": "m" * 50})
    span.add_event("second")
    span.add_event("third, over the limit")
    span.set_status(Status(StatusCode.ERROR, "ValueError: bad"))
    span.set_status(StatusCode.UNSET)  # ignored, as the SDK ignores it
    span.end()
    span.end()  # a second end: ignored with the SDK's warning, not exported twice


def test_a_made_span_is_exported_as_the_tracers_own_would_be():
    limits = SpanLimits(max_span_attributes=5, max_events=2, max_span_attribute_length=20, max_attribute_length=20)
    provider, exporter, seen = provider_with(limits=limits)
    tracer = provider.get_tracer("aiotel", "1.0")
    maker = SpanMaker(tracer)
    assert maker.usable
    attributes = dict(ATTRIBUTES)
    for _ in range(2):  # the second comes from the template the first made
        use(maker.start("shop.total", attributes, None))
    use(tracer.start_span("shop.total", kind=SpanKind.INTERNAL, attributes=attributes))
    made, again, sdk = exporter.get_finished_spans()
    assert exported(made) == exported(again) == exported(sdk)
    assert made.attributes["aiotel.provenance.prompt"] == "x" * 20 and made.dropped_attributes == 1
    assert made.context.span_id != again.context.span_id and made.parent is None
    assert seen.started == seen.ended == ["shop.total"] * 3  # every processor sees its start and its end
    assert attributes == ATTRIBUTES  # the function's own attributes are never changed by a call


def test_a_child_takes_its_parents_trace_flags_and_the_samplers_trace_state():
    class Stating(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                          trace_state=None):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, TraceState([("aiotel", "s")]))

        def get_description(self):
            return "stating"

    provider, exporter, _ = provider_with(sampler=Stating())
    maker = SpanMaker(provider.get_tracer("aiotel"))
    parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0x01))
    with trace.use_span(NonRecordingSpan(parent)):
        maker.start("shop.total", ATTRIBUTES, parent).end()
    [child] = exporter.get_finished_spans()
    assert child.context.trace_id == 0xABC and child.parent == parent
    assert child.context.trace_state == TraceState([("aiotel", "s")]) and child.context.trace_flags.sampled
    random_flag = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
    if random_flag:  # the parent's random flag is the child's, as the SDK sets it (1.42 on)
        assert not child.context.trace_flags & random_flag
        root = maker.start("shop.total", ATTRIBUTES, None)
        assert root.get_span_context().trace_flags & random_flag
        root.end()


def test_the_samplers_no_is_a_non_recording_span_and_its_changed_attributes_are_kept():
    provider, exporter, seen = provider_with(sampler=ParentBased(ALWAYS_OFF))
    span = SpanMaker(provider.get_tracer("aiotel")).start("shop.total", ATTRIBUTES, None)
    assert isinstance(span, NonRecordingSpan) and span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled and seen.started == []

    class Adding(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                          trace_state=None):
            return SamplingResult(Decision.RECORD_ONLY, {**attributes, "sampler.says": "kept"})

        def get_description(self):
            return "adding"

    provider, exporter, seen = provider_with(sampler=Adding())
    span = SpanMaker(provider.get_tracer("aiotel")).start("shop.total", ATTRIBUTES, None)
    assert span.is_recording() and not span.get_span_context().trace_flags.sampled
    assert span.attributes["sampler.says"] == "kept" and seen.started == ["shop.total"]
    span.end()
    assert exporter.get_finished_spans() == ()  # recorded, not sampled: never exported


def test_a_span_class_laid_out_otherwise_gets_the_tracers_own_spans(monkeypatch):
    provider, _, _ = provider_with()
    monkeypatch.setattr(span_maker, "_SHARED", span_maker._SHARED - {"_limits"})
    assert not SpanMaker(provider.get_tracer("aiotel")).usable
    assert not SpanMaker(trace.NoOpTracer()).usable
