"""The probes' C accelerator (``aiotel._speedups``) against the pure-Python probes.

Both pairs of ``enter``/``leave`` must count alike, hand sampled calls to the same span
code and take the Python path for anything unexpected. The fidelity tests
(test_rewrite_fidelity, the fidelity matrix) run whole programs both ways.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import threading
import time
from bisect import bisect_left

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aiotel import probes

from conftest import command, run

pytestmark = pytest.mark.instrumentation

IMPLEMENTATIONS = ["accelerator", "pure-python"]


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request):
    accelerator = request.param == "accelerator"
    if accelerator and not probes.accelerator_available():
        pytest.skip("the C accelerator is not built here")
    probes.configure(accelerator=accelerator)
    assert probes.accelerated() == accelerator
    yield request.param
    probes.configure()


def new_probe(name: str = "f") -> probes.FunctionProbe:
    """A probe of its own, not registered (probes.function would let later tests' metric
    readers see it, broken slots and all)."""
    attributes = {"code.function.name": f"m.{name}", "code.file.path": "/virtual/m.py"}
    return probes.FunctionProbe(f"m.{name}", attributes, dict(attributes))


def test_the_accelerator_is_built_where_a_compiler_is():
    """An install on Linux with a C compiler builds it; a silent build failure would
    leave every user on the slower probes."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if not sys.platform.startswith("linux") or shutil.which(compiler) is None:
        pytest.skip("no C compiler, or not Linux: the pure-Python probes are expected")
    assert probes.accelerator_available()


def calls(probe):
    """How many calls the probe counted, Python's and the accelerator's."""
    return sum(probe.ok_counts()[:-1])


def start_of(call):
    """An unsampled call's start: the int the Python probes give, or the accelerator's token."""
    return call if call.__class__ is int else probes._token_base + int(call)


@pytest.mark.parametrize("token", [False, True])
def test_unsampled_calls_land_in_the_bucket_of_their_duration(implementation, token):
    if token and implementation != "accelerator":
        pytest.skip("only the accelerator's enter gives tokens")
    clock = probes._now
    for bound in probes.BOUNDS_NS:
        for elapsed in (bound - bound // 3, bound + 1):
            probe = new_probe()
            before = clock()
            start = before - elapsed  # a call that started `elapsed` ns ago
            probes.leave(probe, float(start - probes._token_base) if token else start)
            slack = clock() - before  # what the leave itself may add to it
            low, high = bisect_left(probes.BOUNDS_NS, elapsed), bisect_left(probes.BOUNDS_NS, elapsed + slack)
            counts = probe.ok_counts()
            counted = [i for i, n in enumerate(counts[:-1]) if n]
            assert len(counted) == 1 and low <= counted[0] <= high and counts[counted[0]] == 1, (elapsed, counted)
            assert elapsed <= counts[-1] <= elapsed + slack


def test_enter_returns_the_start_time_while_no_span_may_start(implementation):
    probe = new_probe()
    probes.configure(tracer=None, accelerator=implementation == "accelerator")
    before = probes._now()
    call = probes.enter(probe)
    assert call.__class__ is (float if implementation == "accelerator" else int)
    assert before <= start_of(call) <= probes._now()
    probes.leave(probe, call)
    assert calls(probe) == 1


def test_a_failed_call_and_a_slow_one_are_timed_from_the_tokens_start(implementation):
    """The accelerator's token crosses into the Python functions (fail, a slow call's late span)."""
    probe = new_probe()
    probes.configure(tracer=None, accelerator=implementation == "accelerator")
    call = probes.enter(probe)
    time.sleep(0.002)
    probes.fail(probe, call, ValueError("x"))
    (kind, counts), = probe.errors.items()
    assert kind == "ValueError" and sum(counts[:-1]) == 1 and 2_000_000 <= counts[-1] < 1_000_000_000
    probe.slow = 1_000_000  # 1 ms: the next call is slow, handed to Python with its start as an int
    call = probes.enter(probe)
    time.sleep(0.002)
    probes.leave(probe, call)
    assert calls(probe) == 1 and 2_000_000 <= probe.ok_counts()[-1] < 1_000_000_000


def test_calls_outside_a_trace_get_spans_until_the_burst_is_spent(implementation):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    probes.configure(tracer=provider.get_tracer("t"), span_rate_limit=0.001, span_burst=3,
                     accelerator=implementation == "accelerator")
    probe = new_probe("sampled")
    entered = []
    for _ in range(5):
        entered.append(probes.enter(probe))
        probes.leave(probe, entered[-1])
    unsampled = "float" if implementation == "accelerator" else "int"
    assert [c.__class__.__name__ for c in entered] == ["Call", "Call", "Call", unsampled, unsampled]
    assert [s.name for s in exporter.get_finished_spans()] == ["m.sampled"] * 3
    assert calls(probe) == 5


def test_calls_inside_a_recorded_trace_always_get_spans(implementation):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    probes.configure(tracer=provider.get_tracer("t"), span_rate_limit=0.001, span_burst=1,
                     accelerator=implementation == "accelerator")
    probe = new_probe("nested")
    entered = [probes.enter(probe) for _ in range(5)]  # each inside the one before
    for call in reversed(entered):
        probes.leave(probe, call)
    assert [c.__class__.__name__ for c in entered] == ["Call"] * 5
    spans = exporter.get_finished_spans()
    assert [s.attributes["aiotel.span.reason"] for s in spans] == ["in_trace"] * 4 + ["root"]
    assert len({s.context.trace_id for s in spans}) == 1


def test_the_first_call_starts_the_pipeline(implementation):
    started = []
    probes.configure(starter=lambda: started.append(True), accelerator=implementation == "accelerator")
    probe = new_probe()
    probes.leave(probe, probes.enter(probe))
    probes.leave(probe, probes.enter(probe))
    assert started == [True] and calls(probe) == 2


@pytest.mark.parametrize("spans", [False, True])
def test_the_pipeline_start_is_not_timed_as_the_first_call(implementation, spans):
    """The start (SDK, exporters, readers: tens of ms in real runs) is aiotel's time."""
    tracer = TracerProvider().get_tracer("t") if spans else None
    probes.configure(tracer=tracer, starter=lambda: time.sleep(0.05), accelerator=implementation == "accelerator")
    probe = new_probe()
    probes.leave(probe, probes.enter(probe))
    assert calls(probe) == 1 and probe.ok_counts()[-1] < 50_000_000


def test_slots_holding_something_unexpected_take_the_python_path():
    if not probes.accelerator_available():
        pytest.skip("the C accelerator is not built here")
    probes.configure(accelerator=True)
    try:
        probe = new_probe()
        probe.fast_counts = bytearray(3)  # not the size the C code writes: it leaves the call to Python
        probes.leave(probe, probes.enter(probe))
        assert sum(probe.ok_buckets) == 1 and probe.ok_sum_ns > 0 and probe.fast_counts == bytearray(3)

        class Subclass(probes.FunctionProbe):
            pass

        other = Subclass("m.g", {}, {})
        probes.leave(other, probes.enter(other))
        assert sum(other.ok_buckets) == 1
        probe.ok_buckets = None  # broken beyond repair: the call goes uncounted, nothing raises
        probes.leave(probe, probes.enter(probe))
    finally:
        probes.configure()


def test_threads_lose_no_counts_with_the_accelerator():
    """Each C call runs whole under the GIL (the pure-Python increments may be split on 3.9)."""
    if not probes.accelerator_available():
        pytest.skip("the C accelerator is not built here")
    probes.configure(accelerator=True)
    probe = new_probe()
    enter, leave = probes.enter, probes.leave
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible

    def work():
        for _ in range(20_000):
            leave(probe, enter(probe))

    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(previous)
        probes.configure()
    assert calls(probe) == 8 * 20_000


@pytest.mark.parametrize("value, expected", [(None, "C accelerator"), ("false", "pure Python (AIOTEL_ACCELERATOR=false)")])
def test_doctor_says_which_probes_run(tmp_path, value, expected):
    if value is None and not probes.accelerator_available():
        pytest.skip("the C accelerator is not built here")
    result = run(command("aiotel") + ["doctor"], cwd=str(tmp_path),
                 env={"AIOTEL_ACCELERATOR": value, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"})
    assert f"probes: {expected}" in result.stdout, result.stdout + result.stderr


def test_switching_probes_rebinds_them_in_rewritten_modules(monkeypatch):
    """Rewritten modules call their own globals ``__aiotel_enter__``/``__aiotel_leave__``
    (one global read on the hottest path): a switch must reach them, as a pair."""
    import ast
    import types

    from aiotel.provenance import scan_source
    from aiotel.rewriting.rewrite import rewrite_module

    source = "# AI-generated: Claude\ndef f(x):\n    return x\n"
    tree = ast.parse(source)
    assert rewrite_module(tree, scan_source(source.encode(), "/virtual/switch.py", "switch").functions, "/virtual/switch.py")
    module = types.ModuleType("switch")
    monkeypatch.setitem(sys.modules, "switch", module)
    exec(compile(tree, "/virtual/switch.py", "exec"), module.__dict__)
    try:
        for accelerator in (False, True):
            probes.configure(accelerator=accelerator)
            assert (module.__aiotel_enter__, module.__aiotel_leave__) == (probes.enter, probes.leave)
            assert module.f(3) == 3
    finally:
        probes.configure()
    probe = module.__aiotel_f0__
    assert calls(probe) == 2
