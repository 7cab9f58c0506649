"""Silent fallback paths: every except handler inside a marked function that catches
something is counted (aiotel.function.fallbacks) and noted on the span, on the wire; the
program's behaviour and tracebacks stay the same."""

from __future__ import annotations

import sys
import textwrap

import pytest

from conftest import command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

MODULE = textwrap.dedent(
    '''\
    # AI-generated: Claude
    def swallow(text):
        try:
            return int(text)
        except ValueError:
            return 0


    # AI-generated: Claude
    def reraise(key):
        try:
            return {"a": 1}[key]
        except KeyError:
            raise LookupError(key)


    # AI-generated: Claude
    def nested(text):
        try:
            try:
                return int(text)
            except ValueError:
                return int(float(text))
        except (TypeError, ValueError) as exc:
            return repr(exc)[:10]


    # AI-generated: Claude
    def only_finally(text):
        try:
            return len(text)
        finally:
            pass


    # AI-generated: Claude
    def gen(items):
        for item in items:
            try:
                yield 1 / item
            except ZeroDivisionError:
                yield None
    '''
)

APP = textwrap.dedent(
    '''\
    import traceback
    import fb

    print([fb.swallow(t) for t in ["1", "x", "y"]])
    print(fb.nested("2.5"), fb.nested("zz"), fb.only_finally("abc"))
    print(list(fb.gen([1, 0, 2, 0])))
    try:
        fb.reraise("b")
    except LookupError:
        print(traceback.format_exc())
    '''
)


def test_fallbacks_are_counted_per_handler_and_noted_on_spans(tmp_path, http_receiver):
    (tmp_path / "fb.py").write_text(MODULE)
    (tmp_path / "app.py").write_text(APP)
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    env = telemetry_env(http_receiver, tmp_path, AIOTEL_SPAN_RATE_LIMIT="1000")
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert "LookupError: b" in result.stdout and 'fb.py", line 12, in reraise' in result.stdout

    got = http_receiver.received
    assert got.wait(lambda r: any(p.metric == "aiotel.function.fallbacks" for p in r.points))
    counts = {
        (p.attributes["code.function.name"], p.attributes["code.line.number"], p.attributes["exception.type"]): p.count
        for p in got.points if p.metric == "aiotel.function.fallbacks"
    }
    # value of a Sum point, read by the receiver into `sum`
    values = {
        (p.attributes["code.function.name"], p.attributes["code.line.number"], p.attributes["exception.type"]): p.sum
        for p in got.points if p.metric == "aiotel.function.fallbacks"
    }
    assert values == {
        ("fb.swallow", 5, "ValueError"): 2,       # a handler that swallows
        ("fb.reraise", 13, "KeyError"): 1,        # one that re-raises: it still caught something
        ("fb.nested", 22, "ValueError"): 2,       # nested: the inner handler, twice
        ("fb.nested", 24, "ValueError"): 1,       # and the outer one, once
        ("fb.gen", 41, "ZeroDivisionError"): 2,   # a generator handler
    }, counts
    point = next(p for p in got.points if p.metric == "aiotel.function.fallbacks")
    assert point.kind == "sum" and set(point.attributes) == {
        "code.function.name", "aiotel.provenance.tool", "code.file.path", "code.line.number", "exception.type"}
    # on the sampled span of the call that fell back
    assert got.wait(lambda r: any(e["name"] == "aiotel.fallback" for s in r.spans for e in s.events))
    swallow_events = [e for s in got.spans if s.name == "fb.swallow" for e in s.events]
    assert swallow_events == [{"name": "aiotel.fallback", "code.line.number": 5, "exception.type": "ValueError"}] * 2
    assert not [s for s in got.spans if s.name == "fb.only_finally" and s.events]
