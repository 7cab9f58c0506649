"""Per-call overhead of an instrumented function, against a baseline measured in the same run.

    python benchmarks/overhead.py           # full run: medians of 15 repeats
    python benchmarks/overhead.py --quick   # CI: checks that every case runs

Cases (a trivial one-argument function in each; the other agents' rows appear when this
interpreter has them installed: run it with .venv-peers/bin/python, see startup.py):
- bare:             no instrumentation
- hand wrapper:     a hand-written perf_counter_ns timing wrapper
- aiotel spans off: the rewritten function with AIOTEL_SPAN_RATE_LIMIT=0 (metrics only):
                    duration histogram only, nothing else read
- aiotel unsampled: the rewritten function outside any trace when no span is made (the
                    rate cap is spent): the histogram plus one read of the OTel context;
                    with the C accelerator (aiotel._speedups) when built, then with the
                    pure-Python probes
- aiotel unsampled in an unrecorded trace: inside a trace the sampler dropped
- aiotel sampled:   the rewritten function starting a trace on every call
- aiotel in trace:  a recorded child: every call inside one recorded trace
- ... via start_span: the same two, their spans started by the tracer's ``start_span``
                    instead of aiotel's span maker (the path before it, measured in the
                    same run)
- OTel decorator:   the OTel SDK's own ``@tracer.start_as_current_span`` with the same
                    attributes (the baseline the sampled target is set against)
- hud-sdk:          its native ``Monitor`` around the call (what its instrumentation does)
- ddtrace:          ``tracer.wrap()``, a span per call (no agent: spans are dropped)

Then the error path and a ~10 µs function, unsampled, against the same code bare.

Both span cases hand every span to an exporter that drops it, so the cost is the SDK's
and aiotel's, not an exporter's; aiotel's tracer provider also has the span processor
aiotel adds to its pipeline. A second set-up (section "both exporting over OTLP") gives
both providers what a deployment has instead: a ``BatchSpanProcessor`` and the OTLP/HTTP
exporter, sending to a receiver in another process; each round's spans are flushed
after it, untimed, and the queue holds a whole round, so none is dropped; the
exporter's thread encodes and sends while the calls run, taking the interpreter lock
from both sides alike.

Then each optional signal, on against off, unsampled calls of the same function rewritten
with and without it: fallback counting (handler not taken / taken), empty-result counting
(a value returned / None returned), input shapes (``AIOTEL_CAPTURE_ARGS=shape``, a list
argument), commit attribution (two more span attributes, sampled calls; unsampled
calls never read attributes), and the memory signal (two reads of the process's resident
memory per recorded call; unsampled calls read none). Git provenance only decides which functions are
rewritten: it costs nothing per call.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import shutil
import statistics
import sys
import time
import types
from typing import Callable, Dict, List, Tuple

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from aiotel import probes
from aiotel.pipeline.foreign_spans import ForeignSpanProcessor
from aiotel.provenance import scan_source
from aiotel.rewriting.rewrite import RewriteOptions, rewrite_module

SOURCE = '''
# AI-generated: Claude, 2025-01-01, prompt: "identity"
def f(x):
    return x
'''


class DropExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


FEATURES = '''
# AI-generated: Claude
def fallback(x):
    try:
        return int(x)
    except ValueError:
        return 0


# AI-generated: Claude
def lookup(x):
    if x:
        return x
    return None


# AI-generated: Claude
def shapes(items):
    return items
'''

NO_SIGNALS = RewriteOptions(count_fallbacks=False, count_empty_results=False, capture_shapes=False)


def instrumented(
    source: str = SOURCE, name: str = "f", options: RewriteOptions = RewriteOptions(), path: str = "/bench/hot.py"
) -> Callable:
    tree = ast.parse(source)
    rewrite_module(tree, scan_source(source.encode(), path, "hot").functions, path, options)
    # a module in sys.modules, as an imported one is: switching the probes reaches it
    module = types.ModuleType(f"hot{len(_MODULES)}")
    _MODULES.append(module)
    sys.modules[module.__name__] = module
    exec(compile(tree, path, "exec"), module.__dict__)
    return module.__dict__[name]  # type: ignore[return-value]


_MODULES: List[types.ModuleType] = []


def bare(x):
    return x


def hand_wrapper(fn: Callable) -> Callable:
    clock = time.perf_counter_ns
    totals = [0, 0]

    def wrapper(x):
        start = clock()
        try:
            return fn(x)
        finally:
            totals[0] += 1
            totals[1] += clock() - start

    return wrapper


def measure(fn: Callable, calls: int, repeats: int, argument: object = 1) -> float:
    """Median ns per call over ``repeats`` loops of ``calls`` calls (loop cost subtracted)."""
    def loop(target, n=calls):
        for _ in range(n):
            target(argument)

    def empty(n=calls):
        for _ in range(n):
            pass

    results = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        loop(fn)
        elapsed = time.perf_counter_ns() - start
        start = time.perf_counter_ns()
        empty()
        results.append((elapsed - (time.perf_counter_ns() - start)) / calls)
    return statistics.median(results)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few calls per case: checks that it works")
    options = parser.parse_args(argv)
    calls, repeats, span_calls = (2_000, 3, 200) if options.quick else (200_000, 15, 20_000)

    # aiotel's provider has the processor aiotel adds (foreign-span attribution, the end of
    # each trace's state); the decorator's has only what it would have without aiotel
    provider = TracerProvider()
    provider.add_span_processor(ForeignSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(DropExporter()))
    tracer = provider.get_tracer("aiotel")
    plain_provider = TracerProvider()
    plain_provider.add_span_processor(SimpleSpanProcessor(DropExporter()))
    f = instrumented()
    attributes = dict(probes.all_probes()[-1].attributes)

    @plain_provider.get_tracer("bench").start_as_current_span("hot.f", attributes=attributes)
    def otel_decorated(x):
        return x

    rows = []
    rows.append(("bare call", measure(bare, calls, repeats)))
    rows.append(("hand-written timing wrapper", measure(hand_wrapper(bare), calls, repeats)))
    for accelerator, suffix in ((True, ""), (False, ", pure-Python probes")):
        if not accelerator and not probes.accelerator_available():
            break  # the rows above used the pure-Python probes already
        probes.configure(tracer=tracer, span_rate_limit=0, accelerator=accelerator)  # metrics only
        rows.append((f"aiotel spans off{suffix}", measure(f, calls, repeats)))
        spend_the_cap(f, tracer, accelerator)
        rows.append((f"aiotel unsampled call{suffix}", measure(f, calls, repeats)))
        with trace.use_span(NonRecordingSpan(UNRECORDED)):
            rows.append((f"aiotel unsampled, unrecorded trace{suffix}", measure(f, calls, repeats)))
    probes.configure(tracer=tracer, span_rate_limit=0)
    rows += peer_rows(calls, span_calls, repeats)
    # the span paths, then the same through the tracer's start_span (the span maker off:
    # the path before it, in this run)
    for suffix in ("", ", via start_span"):
        probes.configure(tracer=tracer, span_rate_limit=1e12, span_burst=10**9)  # every call starts a trace
        if suffix:
            probes.state._settings.span_maker = None
        rows.append((f"aiotel sampled span{suffix}", measure(f, span_calls, repeats)))
        probes.configure(tracer=tracer, span_rate_limit=1e-9, span_burst=1, trace_span_budget=10**9)
        if suffix:
            probes.state._settings.span_maker = None
        with tracer.start_as_current_span("request"):  # a recorded trace: every call is its child
            rows.append((f"aiotel recorded child in a trace{suffix}", measure(f, span_calls, repeats)))
    rows.append(("OTel SDK @start_as_current_span", measure(otel_decorated, span_calls, repeats)))

    base = rows[0][1]
    otel = rows[-1][1]
    print(f"per-call overhead, CPython {platform.python_version()} on {platform.machine()}, medians of {repeats}; "
          f"aiotel probes: {'C accelerator' if probes.accelerator_available() else 'pure Python (accelerator not built)'}")
    print(f"{'case':<40}{'ns/call':>10}{'x bare':>10}{'x OTel':>10}")
    for name, ns in rows:
        print(f"{name:<40}{ns:>10.0f}{ns / base:>10.1f}{ns / otel:>10.2f}")
    found = dict(rows)
    unsampled, sampled = found["aiotel unsampled call"] / base, found["aiotel sampled span"] / otel
    print(f"targets: unsampled <= 5.3x bare: {unsampled:.1f}x {'met' if unsampled <= 5.3 else 'MISSED'}; "
          f"sampled <= 0.5x OTel decorator: {sampled:.2f}x {'met' if sampled <= 0.5 else 'MISSED'}")
    child = found["aiotel recorded child in a trace"] / found["aiotel sampled span"]
    print(f"a recorded child costs {child:.2f}x a call that starts its own trace; the context read costs "
          f"{found['aiotel unsampled call'] / found['aiotel spans off']:.2f}x the metrics-only call (C probes)")
    made = found["aiotel sampled span"] / found["aiotel sampled span, via start_span"]
    made_child = found["aiotel recorded child in a trace"] / found["aiotel sampled span, via start_span"]
    print(f"the span maker: a sampled call costs {made:.2f}x the same call through start_span; a recorded child "
          f"{made_child:.2f}x it (target <= 1.0x: {'met' if made_child <= 1.0 else 'MISSED'})")
    hud = found.get("hud-sdk native Monitor (no key)")
    if hud is not None:
        met = found["aiotel unsampled call"] <= hud
        print(f"target: unsampled <= hud-sdk's monitor: {found['aiotel unsampled call'] / hud:.2f}x {'met' if met else 'MISSED'}")
    print()
    both_over_otlp(f, attributes, span_calls, repeats)
    probes.configure(tracer=tracer, span_rate_limit=0)
    print()
    context_read_price(f, tracer, calls // 2, repeats * 3)
    print()
    paths(calls, repeats, tracer)
    return 0


def both_over_otlp(f: Callable, attributes: Dict[str, object], span_calls: int, repeats: int) -> None:
    """The sampled call against the SDK's decorator, both providers exporting over OTLP/HTTP
    through a BatchSpanProcessor (see the module's docstring)."""
    import tempfile

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from soak import COLLECTOR, Collector, free_port  # benchmarks/soak.py's sink: answers 200, keeps nothing

    work = tempfile.mkdtemp(prefix="aiotel-overhead-")
    script = os.path.join(work, "collector.py")
    with open(script, "w") as fh:
        fh.write(COLLECTOR)
    receiver = Collector(free_port(), script)
    receiver.up()
    try:
        endpoint = f"http://127.0.0.1:{receiver.port}/v1/traces"

        exported: Dict[str, int] = {}

        class Counted(OTLPSpanExporter):  # the same exporter, counting what it sent (to check both sent all)
            def __init__(self, side: str) -> None:
                super().__init__(endpoint=endpoint, timeout=10)
                self.side = side

            def export(self, spans):  # type: ignore[no-untyped-def]
                result = super().export(spans)
                exported[self.side] = exported.get(self.side, 0) + len(spans)
                return result

        def batched(side: str, *processors: object) -> TracerProvider:
            provider = TracerProvider()
            for processor in processors:
                provider.add_span_processor(processor)
            provider.add_span_processor(BatchSpanProcessor(Counted(side), max_queue_size=max(span_calls + 1, 512),
                                                           schedule_delay_millis=200))
            return provider

        ours, theirs = batched("aiotel", ForeignSpanProcessor()), batched("otel")

        @theirs.get_tracer("bench").start_as_current_span("hot.f", attributes=attributes)
        def otel_decorated(x):
            return x

        def flushed_rounds(fn: Callable, provider: TracerProvider) -> float:
            results = []
            for _ in range(repeats):
                results.append(measure(fn, span_calls, 1))
                provider.force_flush(30_000)  # untimed: the next round starts with an empty queue
            return statistics.median(results)

        probes.configure(tracer=ours.get_tracer("aiotel"), span_rate_limit=1e12, span_burst=10**9)
        sampled = flushed_rounds(f, ours)
        decorated = flushed_rounds(otel_decorated, theirs)
        probes.configure(tracer=ours.get_tracer("aiotel"), span_rate_limit=1e-9, span_burst=1, trace_span_budget=10**9)
        with ours.get_tracer("aiotel").start_as_current_span("request"):
            child = flushed_rounds(f, ours)
        for provider in (ours, theirs):
            provider.shutdown()
    finally:
        receiver.down()
        shutil.rmtree(work, ignore_errors=True)
    print(f"both exporting over OTLP/HTTP (BatchSpanProcessor, a receiver in another process), medians of {repeats}; "
          f"spans sent: aiotel {exported.get('aiotel', 0)}, OTel {exported.get('otel', 0)}")
    print(f"{'case':<40}{'ns/call':>10}{'x OTel':>10}")
    for name, ns in (("aiotel sampled span", sampled), ("aiotel recorded child in a trace", child),
                     ("OTel SDK @start_as_current_span", decorated)):
        print(f"{name:<40}{ns:>10.0f}{ns / decorated:>10.2f}")


def enter_without_context_read(probe):
    """The pure-Python ``enter`` as it was before spans were decided per trace: the gate
    alone (the baseline of the context read's price)."""
    start = probes._now()
    if start < probe.gate:
        return start
    return probes._begin_span(probe, start)


def context_read_price(f: Callable, tracer: object, calls: int, rounds: int) -> None:
    """What deciding once per trace costs an unsampled call outside any trace: the same
    calls with and without the context read, alternating round by round in this process
    (the median of the per-round ratios; the machine's drift cancels)."""
    def timed() -> int:
        start = time.perf_counter_ns()
        for _ in range(calls):
            f(1)
        return time.perf_counter_ns() - start

    rows = []
    if probes.accelerator_available():  # C: spans off skips the read, otherwise the same path
        ratios = []
        for _ in range(rounds):
            probes.configure(tracer=tracer, span_rate_limit=0)
            without = timed()
            spend_the_cap(f, tracer, True)
            ratios.append(timed() / without)
        rows.append(("C probes", statistics.median(ratios), 1.10))
    spend_the_cap(f, tracer, False)
    ratios = []
    for _ in range(rounds):
        probes.enter = enter_without_context_read
        without = timed()
        probes.enter = probes.python_enter
        ratios.append(timed() / without)
    rows.append(("pure-Python probes", statistics.median(ratios), 1.25))
    probes.configure(tracer=tracer, span_rate_limit=0)
    print(f"{'the context read, unsampled call outside a trace':<50}{'with/without':>14}{'target':>8}")
    for label, ratio, target in rows:
        print(f"{label:<50}{ratio:>14.3f}{'<= ' + format(target, '.2f'):>8} {'met' if ratio <= target else 'MISSED'}")


UNRECORDED = SpanContext(trace_id=1, span_id=1, is_remote=False, trace_flags=TraceFlags(0))


def spend_the_cap(f: Callable, tracer: object, accelerator: bool) -> None:
    """Spans on, the function's cap spent: its calls outside a trace get no span."""
    probes.configure(tracer=tracer, span_rate_limit=1e-9, span_burst=1, accelerator=accelerator)
    f(1)


def peer_rows(calls: int, span_calls: int, repeats: int) -> List[Tuple[str, float]]:
    """The other agents' per-call cost, when this interpreter has them (.venv-peers: see
    benchmarks/startup.py, which installs aiotel there too)."""
    rows = []
    try:
        from hud_sdk.native import Monitor  # hud-sdk's C monitor, as its instrumentation wraps a function

        def hud_monitored(x):
            with Monitor("hot.f"):
                return x

        rows.append(("hud-sdk native Monitor (no key)", measure(hud_monitored, calls, repeats)))
    except ImportError:
        pass
    try:
        os.environ.setdefault("DD_TRACE_AGENT_URL", "http://127.0.0.1:9")  # no agent: spans are dropped
        from ddtrace.trace import tracer as dd_tracer

        rows.append(("ddtrace tracer.wrap (span per call)", measure(dd_tracer.wrap("hot.f")(bare), span_calls, repeats)))
    except ImportError:
        pass
    return rows


def paths(calls: int, repeats: int, tracer: object) -> None:
    """The error path, and a function doing about 10 µs of work, unsampled."""
    probes.configure(tracer=tracer, span_rate_limit=0)
    raising = instrumented(RAISING, "fails")
    working = instrumented(WORKING, "work")
    plain: Dict[str, object] = {}
    exec(compile(RAISING + WORKING, "/bench/plain.py", "exec"), plain)

    def caught(fn: Callable) -> Callable:
        def call(x):
            try:
                fn(x)
            except ValueError:
                pass
        return call

    print(f"{'path (unsampled)':<40}{'bare ns':>10}{'aiotel ns':>10}{'ratio':>10}")
    for label, bare_fn, ours in (
        ("a call that raises (caught by the caller)", caught(plain["fails"]), caught(raising)),
        ("a function doing ~10 us of work", plain["work"], working),
    ):
        before, after = measure(bare_fn, calls // 10, repeats), measure(ours, calls // 10, repeats)
        print(f"{label:<40}{before:>10.0f}{after:>10.0f}{after / before:>10.2f}")
    print()
    features(calls, calls // 10, repeats, tracer)


RAISING = '''
# AI-generated: Claude
def fails(x):
    raise ValueError(x)
'''

WORKING = '''
# AI-generated: Claude
def work(x):
    return sum(range(400))
'''


def features(calls: int, span_calls: int, repeats: int, tracer: object) -> None:
    """Each optional signal on against off (everything else off), in the same run."""
    probes.configure(tracer=tracer, span_rate_limit=0)
    fallbacks = RewriteOptions(count_fallbacks=True, count_empty_results=False)
    empties = RewriteOptions(count_fallbacks=False, count_empty_results=True)
    shapes = RewriteOptions(count_fallbacks=False, count_empty_results=False, capture_shapes=True)
    cases = []
    for label, name, argument, on in (
        ("fallbacks, handler not taken", "fallback", "7", fallbacks),
        ("fallbacks, handler taken", "fallback", "x", fallbacks),
        ("empty results, value returned", "lookup", 1, empties),
        ("empty results, None returned", "lookup", 0, empties),
        ("input shapes, a list argument", "shapes", [1, 2, 3], shapes),
    ):
        off_fn, on_fn = instrumented(FEATURES, name, NO_SIGNALS), instrumented(FEATURES, name, on)
        cases.append((label, measure(off_fn, calls, repeats, argument), measure(on_fn, calls, repeats, argument)))
    # commit attribution: two more attributes on each span; only sampled calls read them
    probes.configure(tracer=tracer, span_rate_limit=1e12)
    plain = instrumented(path="/bench/plain.py")
    attributed = instrumented(path="/bench/attributed.py")
    probes.add_attributes("/bench/attributed.py", 3, {"aiotel.provenance.commit": "0" * 40,
                                                      "aiotel.provenance.commit.time": "2025-01-01T00:00:00Z"})
    cases.append(("commit attribution, sampled span", measure(plain, span_calls, repeats),
                  measure(attributed, span_calls, repeats)))
    # the memory signal: two reads of /proc/self/statm per recorded call (off: no descriptor)
    from aiotel.probes import memory

    kept, memory._fd[0] = memory._fd[0], -1
    try:
        without = measure(plain, span_calls, repeats)
    finally:
        memory._fd[0] = kept
    cases.append(("memory signal, sampled span", without, measure(plain, span_calls, repeats)))
    print(f"{'signal (unsampled calls unless said)':<38}{'off ns':>9}{'on ns':>9}{'on/off':>9}")
    for label, off, on in cases:
        print(f"{label:<38}{off:>9.0f}{on:>9.0f}{on / off:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
