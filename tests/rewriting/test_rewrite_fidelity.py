"""The rewriter changes nothing the program can observe but the spans it emits.

Each test loads the same source twice, plainly and rewritten (scanner → rewrite →
compile), and compares what the code sees. Spans go to the SDK's in-memory exporter.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import pickle
import sys
import textwrap
import traceback
import types

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aiotel import probes
from aiotel.provenance import scan_source
from aiotel.rewriting.rewrite import rewrite_module

pytestmark = pytest.mark.instrumentation

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture(autouse=True, scope="module", params=["accelerator", "pure-python"])
def tracer_provider(request):
    """Every test runs with the C enter/leave and with the pure-Python ones."""
    accelerator = request.param == "accelerator"
    if accelerator and not probes.accelerator_available():
        pytest.skip("the C accelerator is not built here (test_accelerator says whether it should be)")
    if trace.get_tracer_provider() is not PROVIDER:
        trace.set_tracer_provider(PROVIDER)  # once per process: the API refuses a second one
    # a cap no test reaches: every call of these samples gets its span
    probes.configure(tracer=PROVIDER.get_tracer("aiotel"), span_rate_limit=1e6, accelerator=accelerator)
    assert probes.accelerated() == accelerator
    yield
    probes.configure()


@pytest.fixture(autouse=True)
def clear_spans():
    EXPORTER.clear()


_counter = [0]


def load(source: str, instrument: bool) -> types.ModuleType:
    source = textwrap.dedent(source)
    _counter[0] += 1
    name = f"fidelity_{_counter[0]}_{'on' if instrument else 'off'}"
    path = f"/virtual/{name}.py"
    tree = ast.parse(source, path)
    if instrument:
        records = scan_source(source.encode(), path, name).functions
        assert records, "the sample must carry markers"
        assert rewrite_module(tree, records, path) == len(records)
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    import linecache

    linecache.cache[path] = (len(source), None, source.splitlines(True), path)
    exec(compile(tree, path, "exec"), module.__dict__)
    return module


def both(source: str):
    return load(source, False), load(source, True)


def span_names():
    return [s.name.split(".", 1)[1] for s in EXPORTER.get_finished_spans()]


SAMPLE = '''
    """Module doc."""
    from __future__ import annotations
    import functools

    REGISTRY = {}

    def register(fn):
        REGISTRY[fn.__name__] = fn
        return fn

    # AI-generated: Claude, 2024-01-01, prompt: "add", reviewed: yes
    @register
    def add(a, b: int = 2, *args, key=None, **kw) -> int:
        """Add things."""
        return a + b

    # AI-generated: Claude
    def fails(x):
        y = x + 1
        raise ValueError(f"bad {y}")

    # AI-generated: Claude
    def outer(n):
        total = 0
        def helper(i):
            return i * n
        for i in range(n):
            total += helper(i)
        return total

    # AI-generated: GPT-4
    class Shape:
        def __init__(self, size):
            self.__size = size

        @property
        def size(self):
            return self.__size

        @classmethod
        def unit(cls):
            return cls(1)

        @staticmethod
        def kind():
            return "shape"

        def __repr__(self):
            return f"Shape({self.__size})"

    # AI-generated: Copilot
    @functools.lru_cache(maxsize=None)
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    # AI-generated: Copilot
    def recurse(n):
        return 0 if n == 0 else 1 + recurse(n - 1)

    # AI-generated: Copilot
    def swallow():
        try:
            return int("x")
        except ValueError:
            return -1

    # AI-generated: Copilot
    def gen(n):
        for i in range(n):
            got = yield i
            if got:
                yield got * 10
        return "done"

    # AI-generated: Copilot
    def delegate():
        result = yield from gen(2)
        yield result

    # AI-generated: Copilot
    async def coro(x):
        await asyncio_sleep(0)
        return x * 2

    # AI-generated: Copilot
    async def agen(n):
        for i in range(n):
            yield i

    # AI-generated: Copilot
    def no_body_but_doc():
        """Only a docstring."""

    async def asyncio_sleep(t):
        return None
'''


def test_results_and_function_identity_are_unchanged():
    plain, inst = both(SAMPLE)
    for m in (plain, inst):
        assert m.REGISTRY["add"] is m.add
    assert inst.add(1) == plain.add(1) == 3
    assert inst.outer(4) == plain.outer(4)
    assert inst.fib(20) == plain.fib(20)
    assert inst.swallow() == plain.swallow() == -1
    assert repr(inst.Shape.unit()) == repr(plain.Shape.unit()) == "Shape(1)"
    assert inst.Shape(3).size == 3 and inst.Shape.kind() == "shape"
    assert inst.__doc__ == plain.__doc__ == "Module doc."
    assert inst.no_body_but_doc() is None and inst.no_body_but_doc.__doc__ == "Only a docstring."


def test_inspect_answers_are_unchanged():
    plain, inst = both(SAMPLE)
    for name in ("add", "fails", "outer", "gen", "coro", "agen", "recurse"):
        p, i = getattr(plain, name), getattr(inst, name)
        assert str(inspect.signature(i)) == str(inspect.signature(p))
        assert (i.__name__, i.__qualname__, i.__doc__, i.__defaults__, i.__kwdefaults__, i.__annotations__) == (
            p.__name__, p.__qualname__, p.__doc__, p.__defaults__, p.__kwdefaults__, p.__annotations__)
        assert i.__code__.co_firstlineno == p.__code__.co_firstlineno
        for check in (inspect.iscoroutinefunction, inspect.isgeneratorfunction, inspect.isasyncgenfunction):
            assert check(i) == check(p)
        assert inspect.getsource(i) == inspect.getsource(p)


def test_traceback_line_numbers_are_unchanged():
    plain, inst = both(SAMPLE)

    def frames(fn):
        with pytest.raises(ValueError) as info:
            fn(1)
        return [(f.name, f.lineno, f.line) for f in traceback.extract_tb(info.value.__traceback__)][1:]

    assert frames(inst.fails) == frames(plain.fails)
    assert frames(inst.fails)[-1][2] == 'raise ValueError(f"bad {y}")'


@pytest.mark.slow
def test_recursion_depth_is_unchanged():
    plain, inst = both(SAMPLE)
    limit = sys.getrecursionlimit()

    def reaches(fn, n):
        try:
            fn(n)
            return True
        except RecursionError:
            return False

    low, high = 0, limit
    while low < high:  # the deepest n the plain function reaches
        mid = (low + high + 1) // 2
        low, high = (mid, high) if reaches(plain.recurse, mid) else (low, mid - 1)
    assert reaches(inst.recurse, low) and not reaches(inst.recurse, low + 1)
    assert inst.recurse(limit - 100) == limit - 100


def test_pickling_by_reference_finds_the_same_function():
    _, inst = both(SAMPLE)
    assert pickle.loads(pickle.dumps(inst.add)) is inst.add


def test_generators_behave_the_same_with_send_and_return_value():
    plain, inst = both(SAMPLE)

    def drive(m):
        g = m.gen(3)
        out = [next(g), g.send(5), next(g), next(g)]
        with pytest.raises(StopIteration) as stop:
            next(g)
        return out, stop.value.value, list(m.delegate())

    assert drive(inst) == drive(plain)


def test_coroutines_and_async_generators_behave_the_same():
    plain, inst = both(SAMPLE)

    async def drive(m):
        return await m.coro(21), [x async for x in m.agen(3)]

    assert asyncio.run(drive(inst)) == asyncio.run(drive(plain)) == (42, [0, 1, 2])


def test_spans_carry_the_contract_attributes_and_nesting():
    _, inst = both(SAMPLE)
    inst.outer(2)
    with pytest.raises(ValueError):
        inst.fails(1)
    spans = {s.name.split(".", 1)[1]: s for s in EXPORTER.get_finished_spans()}
    assert set(spans) == {"outer", "fails"}  # helper is nested in a function-marked def: not marked
    add_span = spans["outer"]
    assert add_span.kind == trace.SpanKind.INTERNAL
    attrs = dict(add_span.attributes)
    assert attrs["aiotel.provenance.tool"] == "Claude" and attrs["aiotel.provenance.source"] == "comment"
    assert attrs["code.function.name"] == f"{inst.__name__}.outer"
    assert attrs["code.line.number"] == inst.outer.__code__.co_firstlineno
    failed = spans["fails"]
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert failed.attributes["error.type"] == "ValueError"
    assert [e.name for e in failed.events] == ["exception"]


def test_swallowed_exception_is_not_an_error():
    _, inst = both(SAMPLE)
    inst.swallow()
    (span,) = EXPORTER.get_finished_spans()
    assert span.status.status_code != trace.StatusCode.ERROR


def test_generator_span_never_leaks_into_the_caller_and_is_parent_inside():
    _, inst = both(
        """
        from opentelemetry import trace

        # AI-generated: X
        def child():
            return trace.get_current_span().get_span_context().span_id

        # AI-generated: X
        def producer():
            for _ in range(2):
                yield trace.get_current_span().get_span_context().span_id, child()
        """
    )
    caller = trace.get_current_span().get_span_context().span_id
    g = inst.producer()
    inside, _ = next(g)
    assert trace.get_current_span().get_span_context().span_id == caller
    inside_again, _ = next(g)
    assert inside_again == inside != caller
    assert list(g) == []
    spans = EXPORTER.get_finished_spans()
    producer = next(s for s in spans if s.name.endswith("producer"))
    children = [s for s in spans if s.name.endswith("child")]
    assert len(children) == 2 and all(c.parent.span_id == producer.context.span_id for c in children)


def test_closed_generator_ends_its_span_without_error():
    _, inst = both(SAMPLE)
    g = inst.gen(5)
    next(g)
    g.close()
    (span,) = EXPORTER.get_finished_spans()
    assert span.status.status_code != trace.StatusCode.ERROR


def test_nested_marked_calls_are_parent_and_child():
    _, inst = both(
        """
        # AI-generated: X
        def inner():
            return 1

        # AI-generated: X
        def outer():
            return inner() + 1
        """
    )
    inst.outer()
    inner, outer = EXPORTER.get_finished_spans()
    assert inner.parent.span_id == outer.context.span_id and outer.parent is None


def test_class_private_names_survive_mangling():
    _, inst = both(
        """
        # AI-generated: X
        class Vault:
            def __init__(self):
                self.__secret = 1

            def __reveal(self):
                return self.__secret

            def open(self):
                return self.__reveal()
        """
    )
    assert inst.Vault().open() == 1
    # __qualname__ keeps the name as written; only attribute access is mangled.
    assert sorted(span_names()) == ["Vault.__init__", "Vault.__reveal", "Vault.open"]


def test_coroutine_span_is_current_across_awaits_and_async_generator_does_not_leak():
    _, inst = both(
        """
        import asyncio
        from opentelemetry import trace

        def current():
            return trace.get_current_span().get_span_context().span_id

        # AI-generated: X
        async def worker():
            before = current()
            await asyncio.sleep(0)
            return before, current()

        # AI-generated: X
        async def ticks():
            for _ in range(2):
                await asyncio.sleep(0)
                yield current()
        """
    )

    async def drive():
        caller = inst.current()
        before, after = await inst.worker()
        seen = []
        async for inside in inst.ticks():
            seen.append((inside, inst.current()))
        return caller, before, after, seen

    caller, before, after, seen = asyncio.run(drive())
    spans = {s.name.rsplit(".", 1)[1]: s for s in EXPORTER.get_finished_spans()}
    assert before == after == spans["worker"].context.span_id
    assert [inside for inside, _ in seen] == [spans["ticks"].context.span_id] * 2
    assert all(outside == caller for _, outside in seen)  # the caller's context after each step
