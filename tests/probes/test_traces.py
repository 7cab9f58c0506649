"""One decision per trace, in process and for both probe implementations: calls inside a
recorded trace get spans up to the budget, calls under an unrecorded trace get none,
foreign spans name the innermost marked function (on the stack, or after an ``await``
from the context), and slow calls get late spans within their cap.

The wire tests (tests/e2e/test_complete_traces.py) run the same through ``aiotel-run``."""

from __future__ import annotations

import ast
import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from aiotel import probes
from aiotel.pipeline.foreign_spans import ForeignSpanProcessor
from aiotel.probes import frames, state, traces
from aiotel.provenance import scan_source
from aiotel.rewriting.rewrite import rewrite_module

pytestmark = pytest.mark.instrumentation

SOURCE = '''
import asyncio
import time

from opentelemetry import trace

library = trace.get_tracer_provider().get_tracer("library")


def library_call():
    with library.start_as_current_span("library.call"):
        return 1


# AI-generated: Claude, 2026-11-01
def leaf(n):
    return n


# AI-generated: Claude, 2026-11-01
def caller(n):
    return library_call() + sum(leaf(i) for i in range(n))


# AI-generated: GPT-4o, 2026-11-02
def through_library(n):
    with library.start_as_current_span("library.wrapper"):
        return sum(leaf(i) for i in range(n))


# AI-generated: Cursor, 2026-11-03
def sleeper(seconds):
    time.sleep(seconds)


async def later():
    await asyncio.sleep(0)
    return library_call()


# AI-generated: Claude, 2026-11-05
def enriching(order_id):
    span = trace.get_current_span()
    span.set_attribute("shop.order.id", order_id)
    span.add_event("priced", {"items": 3})
    return span


# AI-generated: Copilot, 2026-11-04
async def spawner():
    task = asyncio.ensure_future(later())
    await asyncio.sleep(0)
    return await task
'''


@pytest.fixture(params=["accelerator", "pure-python"])
def world(request):
    """The sample module rewritten, on a provider with aiotel's processor and an in-memory
    exporter; spans on, a cap that lets one trace per function start."""
    accelerator = request.param == "accelerator"
    if accelerator and not probes.accelerator_available():
        pytest.skip("the C accelerator is not built here")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(ForeignSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = trace.get_tracer_provider
    trace.get_tracer_provider = lambda: provider  # the module's library tracer: this provider
    try:
        tree = ast.parse(SOURCE)
        rewrite_module(tree, scan_source(SOURCE.encode(), "/virtual/sample.py", "sample").functions,
                       "/virtual/sample.py")
        namespace = {"__name__": "sample"}
        exec(compile(tree, "/virtual/sample.py", "exec"), namespace)
    finally:
        trace.get_tracer_provider = original
    probes.configure(tracer=provider.get_tracer("aiotel"), span_rate_limit=0.001, span_burst=1,
                     trace_span_budget=3, accelerator=accelerator)
    yield namespace, exporter, provider
    probes.configure()


def named(exporter, name):
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_a_trace_has_every_call_up_to_the_budget_and_says_what_it_left_out(world):
    namespace, exporter, _ = world
    namespace["caller"](10)
    (caller,) = named(exporter, "sample.caller")
    leaves = named(exporter, "sample.leaf")
    assert len(leaves) == 3 and all(s.parent.span_id == caller.context.span_id for s in leaves)
    assert caller.attributes["aiotel.span.unrecorded.functions"] == ("sample.leaf",)
    assert caller.attributes["aiotel.span.unrecorded.calls"] == (7,)
    leaf_probe = namespace["__aiotel_f0__"]
    assert leaf_probe.over_budget == 7 and sum(leaf_probe.ok_counts()[:-1]) == 10
    assert traces.in_flight() == 0  # the local root ended: its state is gone


def test_the_programs_own_code_enriches_the_span_of_its_call_as_with_the_sdks(world):
    """The current span inside a marked call is an SDK span (made for less, see
    probes/span_maker.py): what the function's code sets on it is exported with it."""
    from opentelemetry.sdk.trace import Span

    namespace, exporter, _ = world
    span = namespace["enriching"]("A-17")
    (exported,) = named(exporter, "sample.enriching")
    assert isinstance(span, Span) and span.get_span_context() == exported.context
    assert exported.attributes["shop.order.id"] == "A-17" and exported.attributes["aiotel.span.reason"] == "root"
    assert [(e.name, dict(e.attributes)) for e in exported.events] == [("priced", {"items": 3})]


def test_calls_left_out_below_a_foreign_span_are_told_on_the_aiotel_span_above_it(world):
    namespace, exporter, _ = world
    namespace["through_library"](5)
    (outer,) = named(exporter, "sample.through_library")
    (wrapper,) = named(exporter, "library.wrapper")
    assert wrapper.parent.span_id == outer.context.span_id
    assert wrapper.attributes["aiotel.function.name"] == "sample.through_library"
    assert len(named(exporter, "sample.leaf")) == 3
    assert outer.attributes["aiotel.span.unrecorded.calls"] == (2,)


def test_under_a_trace_decided_not_recorded_no_call_gets_a_span(world):
    namespace, exporter, _ = world
    dropped = NonRecordingSpan(SpanContext(trace_id=5, span_id=6, is_remote=True, trace_flags=TraceFlags(0)))
    with trace.use_span(dropped):
        for _ in range(3):
            namespace["caller"](4)
    assert exporter.get_finished_spans() == ()
    assert sum(namespace["__aiotel_f0__"].ok_counts()[:-1]) == 12


def test_a_foreign_span_names_the_function_even_when_its_call_had_no_span(world):
    namespace, exporter, _ = world
    namespace["caller"](0)  # takes the cap's one trace
    namespace["caller"](0)  # no span of its own: the library's span is a root that names it
    calls = named(exporter, "library.call")
    assert len(named(exporter, "sample.caller")) == 1 and len(calls) == 2
    assert [c.attributes["aiotel.function.name"] for c in calls] == ["sample.caller"] * 2
    assert [c.attributes["aiotel.function.tool"] for c in calls] == ["Claude"] * 2
    assert calls[0].parent is not None and calls[1].parent is None


def test_after_an_await_the_function_is_found_from_the_context(world):
    namespace, exporter, _ = world
    assert asyncio.run(namespace["spawner"]()) == 1
    (call,) = named(exporter, "library.call")
    (spawner,) = named(exporter, "sample.spawner")
    assert call.parent.span_id == spawner.context.span_id
    assert call.attributes["aiotel.function.name"] == "sample.spawner"
    assert call.attributes["aiotel.function.tool"] == "Copilot"


def test_the_innermost_marked_frame_is_the_one_named(world):
    namespace, _, _ = world
    found = []
    namespace["library_call"] = lambda: found.append(frames.innermost_probe()) or 1
    namespace["caller"](0)
    assert [p.name for p in found] == ["sample.caller"]
    assert frames.innermost_probe() is None  # no marked function runs here


def test_a_slow_call_without_a_span_gets_a_late_one_within_its_cap(world):
    namespace, exporter, _ = world
    probes.configure(tracer=probes._settings.tracer, span_rate_limit=0.001, span_burst=1,
                     slow_threshold=(20_000_000, 4.0), late_span_rate=0.001, accelerator=probes.accelerated())
    sleeper = namespace["sleeper"]
    sleeper(0)  # the cap's one trace
    sleeper(0.001)  # under the floor: nothing
    for _ in range(12):
        sleeper(0.03)  # over it: 10 late spans (the burst), then the cap holds
    spans = named(exporter, "sample.sleeper")
    reasons = [s.attributes["aiotel.span.reason"] for s in spans]
    assert reasons == ["root"] + ["slow"] * 10
    slow = spans[1]
    assert 30_000_000 <= slow.end_time - slow.start_time < 1_000_000_000
    assert sum(namespace["__aiotel_f3__"].ok_counts()[:-1]) == 14


def test_the_slow_threshold_follows_the_function_p99():
    probe = probes.FunctionProbe("m.f", {}, {})
    probes.configure(tracer=TracerProvider().get_tracer("t"), slow_threshold=(1_000_000, 4.0))
    try:
        probes.refresh_slow(probe)
        assert probe.slow == 1_000_000  # no p99 yet: the floor
        index = state.BOUNDS_NS.index(1_000_000)  # calls of at most 1 ms: p99 near 1 ms
        probe.ok_buckets[index] = 1000
        probes.refresh_slow(probe)
        assert 3_000_000 < probe.slow <= 4_000_000
        probes.configure(tracer=TracerProvider().get_tracer("t"), slow_threshold=None)
        probes.refresh_slow(probe)  # (configure refreshes the registered probes; this one is not)
        assert probe.slow >= state._NEVER
    finally:
        probes.configure()


def test_p99_is_interpolated_inside_its_bucket():
    buckets = [0] * (len(state.BOUNDS_NS) + 1)
    buckets[2] = 100  # 2.5 µs < d <= 5 µs
    assert state.p99_ns(buckets) == pytest.approx(2500 + 2500 * 0.99)
    assert state.p99_ns([0] * len(buckets)) is None


def test_an_incoming_sampled_traceparent_makes_every_call_a_child(world):
    namespace, exporter, _ = world
    upstream = NonRecordingSpan(SpanContext(trace_id=77, span_id=88, is_remote=True, trace_flags=TraceFlags(1)))
    with trace.use_span(upstream):
        namespace["caller"](2)
        namespace["caller"](2)  # the cap allows one trace: inside this one it does not matter
    callers = named(exporter, "sample.caller")
    assert len(callers) == 2
    assert all(c.context.trace_id == 77 and c.parent.span_id == 88 and c.parent.is_remote for c in callers)
    assert [c.attributes["aiotel.span.reason"] for c in callers] == ["in_trace", "in_trace"]
    assert traces.in_flight() == 0  # each local root (its parent remote) ended its state


def test_metrics_only_means_no_late_spans_either(world):
    namespace, exporter, provider = world
    probes.configure(tracer=provider.get_tracer("aiotel"), span_rate_limit=0, slow_threshold=(1_000_000, 0.0),
                     accelerator=probes.accelerated())
    namespace["sleeper"](0.005)  # slow
    with pytest.raises(TypeError):
        namespace["sleeper"]("x")  # failed
    assert exporter.get_finished_spans() == ()
    assert sum(namespace["__aiotel_f3__"].ok_counts()[:-1]) == 1 and namespace["__aiotel_f3__"].errors


def test_the_frame_finder_knows_the_names_the_rewrite_gives():
    from aiotel.rewriting import rewrite

    assert frames.CALL == rewrite.CALL
    assert frames._is_handle(rewrite.handle_name(0)) and frames._is_handle(rewrite.handle_name(417))
    assert not frames._is_handle("__aiotel_call__")


class _NoToTheFunction(Sampler):
    """Says no to new traces of declined.caller, yes to every other new trace."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        decision = Decision.DROP if name == "declined.caller" else Decision.RECORD_AND_SAMPLE
        return SamplingResult(decision, attributes if decision.is_sampled() else None, trace_state)

    def get_description(self):
        return "NoToTheFunction"


def test_a_trace_the_sampler_declined_passes_its_decision_below():
    """Without the non-recording span kept current, the library's span would be a root of
    its own, recorded by the same sampler."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(root=_NoToTheFunction()))
    provider.add_span_processor(ForeignSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    library = provider.get_tracer("library")
    source = '''
# AI-generated: Claude, 2026-11-01
def caller(library):
    with library.start_as_current_span("library.call"):
        return 1
'''
    tree = ast.parse(source)
    rewrite_module(tree, scan_source(source.encode(), "/virtual/declined.py", "declined").functions,
                   "/virtual/declined.py")
    namespace = {"__name__": "sample"}
    exec(compile(tree, "/virtual/declined.py", "exec"), namespace)
    probes.configure(tracer=provider.get_tracer("aiotel"), span_burst=10)
    try:
        assert namespace["caller"](library) == 1
        with library.start_as_current_span("library.alone"):  # the sampler does record other traces
            pass
    finally:
        probes.configure()
    assert [s.name for s in exporter.get_finished_spans()] == ["library.alone"]
