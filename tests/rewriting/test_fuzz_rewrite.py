"""Fuzzing the rewrite: Hypothesis writes small programs (functions with branches, loops,
try/except/finally, returns of values and of None, raises, prints, generators, nested
functions, calls between the functions and bounded recursion), marks every function,
and runs each program plainly and rewritten with every signal on. What the program can
observe must be the same: results, printed output, exception types and messages, and
the line numbers of every traceback frame.

The example budget is fixed and the search derandomized, so CI runs the same programs
every time; a failure prints the program."""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import itertools
import linecache
import traceback
import types

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from opentelemetry.sdk.trace import TracerProvider

from aiotel import probes
from aiotel.provenance import scan_source
from aiotel.rewriting.rewrite import RewriteOptions, rewrite_module

pytestmark = pytest.mark.instrumentation

ALL_ON = RewriteOptions(count_fallbacks=True, count_empty_results=True, capture_shapes=True)
ARGUMENTS = [(0,), (1,), (3, 0), (2, 5, 7), ("s",), (None,)]

EXPRESSIONS = st.sampled_from([
    "a", "b", "x", "1", "0", "None", "a + 1", "a // b", "x * 2", "len(rest)", "[a, b]", "str(a)",
    "int('7')", "int(str(a) + 'x')", "a if b else None", "x - a", "(a, x)", "{} .get(a)",
])
EXCEPTIONS = st.sampled_from(["ValueError", "ZeroDivisionError", "TypeError", "(ValueError, TypeError)", "Exception"])


@st.composite
def blocks(draw, depth: int, generator: bool, callees: int):
    """A list of statement lines (without the function's indentation)."""
    lines = []
    for _ in range(draw(st.integers(1, 3))):
        kinds = ["assign", "print", "return", "raise", "call"]
        if depth < 3:
            kinds += ["if", "for", "try", "inner"]
        if generator:
            kinds += ["yield", "yield"]
        kind = draw(st.sampled_from(kinds))
        expr = draw(EXPRESSIONS)
        if kind == "assign":
            lines.append(f"x = {expr}")
        elif kind == "print":
            lines.append(f"print('p', {expr})")
        elif kind == "return":
            lines.append(draw(st.sampled_from([f"return {expr}", "return", "return None"])))
        elif kind == "raise":
            lines.append(f"raise {draw(st.sampled_from(['ValueError', 'KeyError', 'RuntimeError']))}({expr})")
        elif kind == "yield":
            lines.append(f"x = yield {expr}")
        elif kind == "call":
            target = draw(st.integers(0, callees)) if callees else None
            if target is None or target == callees:  # itself: bounded recursion
                lines.append("x = f_self(a - 1) if isinstance(a, int) and a > 0 else x")
            else:
                call = f"f{target}({expr})"
                lines.append(f"x = list(itertools.islice({call}, 5)) if inspect.isgeneratorfunction(f{target}) else {call}")
        else:
            # a nested function's body must not yield: that would make it a generator
            inner = draw(blocks(depth + 1, generator and kind != "inner", callees))
            if kind == "if":
                other = draw(blocks(depth + 1, generator, callees))
                lines += [f"if {expr}:"] + ["    " + l for l in inner] + ["else:"] + ["    " + l for l in other]
            elif kind == "for":
                lines += [f"for i in range({draw(st.integers(0, 3))}):"] + ["    " + l for l in inner]
            elif kind == "try":
                handler = draw(blocks(depth + 1, generator, callees))
                lines += ["try:"] + ["    " + l for l in inner]
                lines += [f"except {draw(EXCEPTIONS)} as e:"] + ["    " + l for l in handler]
                if draw(st.booleans()):
                    lines += ["finally:", "    print('finally', x)"]
            else:  # a nested function, not marked: its returns and handlers are its own
                lines += ["def inner(y):"] + ["    " + l for l in inner] + ["    return y"]
                lines.append("x = inner(a)")
    return lines


@st.composite
def programs(draw):
    functions = []
    for index in range(draw(st.integers(1, 4))):
        generator = draw(st.booleans())
        body = ["x = a"] + draw(blocks(0, generator, index))
        source = [f"# AI-generated: Fuzz, prompt: \"program {index}\"", f"def f{index}(a, b=2, *rest):"]
        source += ["    " + line.replace("f_self", f"f{index}") for line in body]
        functions.append("\n".join(source))
    program = "import inspect\nimport itertools\n\n\n" + "\n\n\n".join(functions) + "\n"
    ast.parse(program)  # the strategy writes only valid programs
    return program


_loaded = itertools.count()


def observe(source: str, instrument: bool):
    """Everything a caller can tell about each function of ``source``."""
    name = f"fuzzed_{next(_loaded)}"
    path = f"/virtual/{name}.py"
    tree = ast.parse(source, path)
    if instrument:
        records = scan_source(source.encode(), path, name).functions
        assert rewrite_module(tree, records, path, ALL_ON) == len(records) == source.count("# AI-generated")
    linecache.cache[path] = (len(source), None, source.splitlines(True), path)
    module = types.ModuleType(name)
    module.__file__ = path
    exec(compile(tree, path, "exec"), module.__dict__)
    seen = []
    for function_name in sorted(n for n in vars(module) if n.startswith("f")):
        function = getattr(module, function_name)
        seen.append((function_name, str(inspect.signature(function)), inspect.isgeneratorfunction(function),
                     function.__code__.co_firstlineno))
        for arguments in ARGUMENTS:
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    result = function(*arguments)
                    if inspect.isgenerator(result):
                        result = list(itertools.islice(result, 20))
                seen.append(("returned", repr(result), out.getvalue()))
            except Exception as exc:  # what the program sees of a failure
                frames = [(f.lineno, f.name) for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
                seen.append(("raised", type(exc).__name__, str(exc), frames, out.getvalue()))
    return seen


@pytest.fixture(scope="module", autouse=True)
def sampled_tracer():
    provider = TracerProvider()  # no processor: spans are made and dropped
    probes.configure(tracer=provider.get_tracer("fuzz"), span_rate_limit=1e9)
    yield
    probes.configure()


@pytest.mark.slow
@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(), st.booleans())
def test_rewritten_programs_behave_like_the_originals(source, sampled):
    probes.configure(tracer=TracerProvider().get_tracer("fuzz"), span_rate_limit=1e9 if sampled else 0)
    assert observe(source, True) == observe(source, False), source
