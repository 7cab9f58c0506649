"""Empty results: a marked function that returns values elsewhere but returns None here is
counted per return line (aiotel.function.empty_results) and noted on the span, on the
wire; the program's output and tracebacks stay the same."""

from __future__ import annotations

import sys
import textwrap

import pytest

from conftest import command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

MODULE = textwrap.dedent(
    '''\
    MISSING = []


    # AI-generated: Claude
    def lookup(table, key):
        if key in table:
            return table[key]
        if key == "":
            return None
        if key == "?":
            return
        MISSING.append(key)


    # AI-generated: Claude
    def never_a_value(x):
        MISSING.append(x)
        return


    # AI-generated: Claude
    def gen(n):
        yield n
        return None


    # AI-generated: Claude
    async def fetch(x):
        if x:
            return x
        return None


    # AI-generated: Claude
    def ratio(a, b):
        if b:
            return (a
                    / b)
        return None
    '''
)

APP = textwrap.dedent(
    '''\
    import asyncio
    import traceback
    import lk

    table = {"a": 1, "n": None}
    print([lk.lookup(table, k) for k in ["a", "n", "n", "", "?", "zz"]], lk.MISSING)
    print(lk.never_a_value(3), list(lk.gen(2)), asyncio.run(lk.fetch(0)), asyncio.run(lk.fetch(5)))
    print(lk.ratio(1, 2), lk.ratio(1, 0))
    try:
        lk.ratio("x", 2)
    except TypeError:
        print(traceback.format_exc())
    '''
)


def test_none_returns_of_value_returning_functions_are_counted_per_line(tmp_path, http_receiver):
    (tmp_path / "lk.py").write_text(MODULE)
    (tmp_path / "app.py").write_text(APP)
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    env = telemetry_env(http_receiver, tmp_path, AIOTEL_SPAN_RATE_LIMIT="1000")
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert 'lk.py", line 37, in ratio' in result.stdout  # the traceback inside a rewritten return

    got = http_receiver.received
    assert got.wait(lambda r: any(p.metric == "aiotel.function.empty_results" for p in r.points))
    values = {
        (p.attributes["code.function.name"], p.attributes["code.line.number"]): p.sum
        for p in got.points if p.metric == "aiotel.function.empty_results"
    }
    assert values == {
        ("lk.lookup", 7): 2,   # a value that happens to be None, twice
        ("lk.lookup", 9): 1,   # return None
        ("lk.lookup", 11): 1,  # bare return
        ("lk.lookup", 5): 1,   # falling off the end: reported on the def line
        ("lk.fetch", 31): 1,   # a coroutine's return
        ("lk.ratio", 39): 1,
    }  # never_a_value returns nothing anywhere and gen is a generator: not counted
    point = next(p for p in got.points if p.metric == "aiotel.function.empty_results")
    assert point.kind == "sum" and set(point.attributes) == {
        "code.function.name", "aiotel.provenance.tool", "code.file.path", "code.line.number"}

    assert got.wait(lambda r: any(e["name"] == "aiotel.empty_result" for s in r.spans for e in s.events))
    events = sorted(e["code.line.number"] for s in got.spans if s.name == "lk.lookup" for e in s.events)
    assert events == [5, 7, 7, 9, 11]
