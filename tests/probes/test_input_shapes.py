"""Input shapes (AIOTEL_CAPTURE_ARGS=shape): the type and length of each argument, never its
value, as aiotel.function.input.types / .input.size and span attributes, on the wire."""

from __future__ import annotations

import sys
import textwrap

import pytest

from conftest import command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

MODULE = textwrap.dedent(
    '''\
    class Lazy:
        """A Python __len__ may run a query: aiotel must never call it."""
        calls = 0

        def __len__(self):
            Lazy.calls += 1
            return 7


    # AI-generated: Claude
    def summarize(items, label, *extra, limit=10, **options):
        return len(extra) + len(options)


    class Cart:
        # AI-generated: Claude
        def add(self, item, qty):
            return qty

        # AI-generated: Claude
        @staticmethod
        def parse(text):
            return text.split()
    '''
)

APP = textwrap.dedent(
    '''\
    import sh

    print(sh.summarize([1, 2, 3], "s3cr3t-value"))
    print(sh.summarize((), "y", 1, 2, limit=3, k=1))
    print(sh.summarize(None, sh.Lazy()))
    kinds = [1, 2.0, b"b", bytearray(b"c"), {1}, frozenset(), {}, [], (), range(3), 1j, True]
    print([sh.summarize("abcd", kind) for kind in kinds])
    print(sh.Cart().add("apple", 2), sh.Cart.parse("a b"), sh.Lazy.calls)
    '''
)


def test_argument_types_and_lengths_are_recorded_never_values(tmp_path, http_receiver):
    (tmp_path / "sh.py").write_text(MODULE)
    (tmp_path / "app.py").write_text(APP)
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    env = telemetry_env(http_receiver, tmp_path, AIOTEL_SPAN_RATE_LIMIT="1000", AIOTEL_CAPTURE_ARGS="shape")
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert result.stdout.rstrip().endswith("2 ['a', 'b'] 0")  # Lazy.__len__ never called

    got = http_receiver.received
    assert got.wait(lambda r: any(p.metric == "aiotel.function.input.size" for p in r.points))

    def key(p):
        return p.attributes["code.function.name"], p.attributes["aiotel.input.parameter"], p.attributes["aiotel.input.type"]

    calls = {key(p): p.sum for p in got.points if p.metric == "aiotel.function.input.types"}
    sizes = {key(p): (p.count, p.sum) for p in got.points if p.metric == "aiotel.function.input.size"}
    assert calls[("sh.summarize", "items", "list")] == 1
    assert calls[("sh.summarize", "items", "NoneType")] == 1
    assert calls[("sh.summarize", "items", "str")] == 12
    assert calls[("sh.summarize", "label", "sh.Lazy")] == 1
    assert calls[("sh.summarize", "extra", "tuple")] == 15 and calls[("sh.summarize", "options", "dict")] == 15
    assert calls[("sh.summarize", "limit", "int")] == 15
    # a method's self is left out; a staticmethod has none
    assert {k for k in calls if k[0] == "sh.Cart.add"} == {("sh.Cart.add", "item", "str"), ("sh.Cart.add", "qty", "int")}
    assert {k for k in calls if k[0] == "sh.Cart.parse"} == {("sh.Cart.parse", "text", "str")}
    # ten type names per parameter, the rest counted together
    label_types = {k[2] for k in calls if k[:2] == ("sh.summarize", "label")}
    assert len(label_types) == 11 and "_OTHER" in label_types
    assert sum(v for k, v in calls.items() if k[:2] == ("sh.summarize", "label")) == 15

    assert sizes[("sh.summarize", "items", "list")] == (1, 3)
    assert sizes[("sh.summarize", "items", "str")] == (12, 48)
    assert sizes[("sh.summarize", "extra", "tuple")] == (15, 2)
    assert ("sh.summarize", "items", "NoneType") not in sizes and ("sh.summarize", "label", "sh.Lazy") not in sizes
    point = next(p for p in got.points if p.metric == "aiotel.function.input.size")
    assert point.kind == "histogram" and set(point.attributes) == {
        "code.function.name", "aiotel.provenance.tool", "code.file.path", "aiotel.input.parameter", "aiotel.input.type"}

    # span attributes: type and length per parameter, on every sampled call
    first = next(s for s in got.spans if s.name == "sh.summarize" and s.attributes.get("aiotel.input.items.length") == 3)
    assert first.attributes["aiotel.input.items.type"] == "list"
    assert first.attributes["aiotel.input.label.type"] == "str" and first.attributes["aiotel.input.label.length"] == 12
    assert first.attributes["aiotel.input.extra.length"] == 0 and first.attributes["aiotel.input.limit.type"] == "int"
    assert "aiotel.input.limit.length" not in first.attributes
    # never a value
    assert "s3cr3t" not in repr([s.attributes for s in got.spans]) + repr([p.attributes for p in got.points])
