"""The scanner never raises, says why it skipped a file, and agrees with ``ast``."""

from __future__ import annotations

import ast
import codecs
import sys

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from aiotel.provenance import MarkerConfig, scan_source

MARKER = b"# AI-generated: Fuzz, 2024-01-01, prompt: \"x\"\n\n"


def ast_functions(source):
    """{(qualname, def line, first line, is_generator, is_async)} for every def, per ``ast``."""
    tree = ast.parse(source)
    found = set()

    def own_yields(node):
        stack = list(ast.iter_child_nodes(node))
        while stack:
            child = stack.pop()
            if isinstance(child, (ast.Yield, ast.YieldFrom)):
                return True
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            stack.extend(ast.iter_child_nodes(child))
        return False

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                first = child.decorator_list[0].lineno if child.decorator_list else child.lineno
                is_async = isinstance(child, ast.AsyncFunctionDef)
                found.add((name, child.lineno, first, own_yields(child), is_async))
                walk(child, f"{name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            elif not isinstance(child, ast.Lambda):
                walk(child, prefix)

    walk(tree, "")
    return found


def reported(result):
    return {(f.qualname, f.def_line, f.first_line, f.is_generator or f.is_async_generator, f.is_async)
            for f in result.functions}


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"# AI-generated: X\ndef f(:\n", "syntax error at line 2"),
        (b"# AI-generated: X\n\x00def f(): pass\n", "NUL bytes"),
        (b"# AI-generated: X\ndef f():\n    pass\nx = '\xff\xfe'\n", "not valid utf-8"),
        (b"# -*- coding: klingon -*-\n# AI-generated: X\ndef f(): pass\n", "cannot tell the source encoding"),
    ],
)
def test_unreadable_source_is_skipped_with_a_reason(data, reason):
    result = scan_source(data, "bad.py", "bad")
    assert result.functions == ()
    assert reason in result.skipped


def test_pep263_encoding_and_bom_are_honoured():
    latin = "# -*- coding: latin-1 -*-\n# AI-generated: X, prompt: \"caf\xe9\"\ndef f():\n    pass\n".encode("latin-1")
    (f,) = scan_source(latin, "l.py", "l").functions
    assert f.marker.prompt == "caf\xe9" and f.def_line == 3
    bom = codecs.BOM_UTF8 + "# AI-generated: X, prompt: \"\u00fcber\"\ndef f():\n    pass\n".encode()
    (g,) = scan_source(bom, "b.py", "b").functions
    assert g.marker.prompt == "\u00fcber" and g.def_line == 2


def test_huge_file_is_skipped_under_the_documented_cap():
    data = b"# AI-generated: X\ndef f():\n    pass\n" + b"x = 1\n" * 1000
    result = scan_source(data, "big.py", "big", max_bytes=1000)
    assert "scan limit" in result.skipped


def test_deep_nesting_does_not_raise():
    depth = 90  # below the interpreter's 100-level indentation limit
    lines = ["# AI-generated: X"]
    for level in range(depth):
        lines.append("    " * level + f"def f{level}():")
    lines.append("    " * depth + "pass")
    data = ("\n".join(lines) + "\n").encode()
    result = scan_source(data, "deep.py", "deep")
    assert result.skipped is None
    assert len(result.functions) == 1  # only the outermost def carries the marker
    parens = b"# AI-generated: X\ndef f():\n    return " + b"(" * 180 + b"1" + b")" * 180 + b"\n"
    assert scan_source(parens, "p.py", "p").functions[0].qualname == "p.f"


def test_file_without_markers_is_never_parsed():
    # Invalid Python: a parse would report it. The pre-filter answers first.
    result = scan_source(b"def f(:\n", "x.py", "x")
    assert result.skipped is None and result.functions == ()


def test_extra_pattern_usable_only_as_text_makes_every_file_parsed():
    config = MarkerConfig((r"\N{SNOWMAN} (?P<tool>\w+)",))
    found = scan_source("# \u2603 Snowy\ndef f():\n    pass\n".encode(), "s.py", "s", config).functions
    assert found[0].marker.tool == "Snowy"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data):
    result = scan_source(MARKER + data, "fuzz.py", "")
    if result.skipped is None:
        assert reported(result) <= ast_functions((MARKER + data).decode("utf-8-sig", "replace"))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_arbitrary_marker_text_never_raises(text):
    # Only the characters that end a comment line (or any Python source) are kept out.
    for breaker in "\r\n\x0c\x00":
        text = text.replace(breaker, " ")
    source = "# AI-generated: " + text + "\ndef f():\n    pass\n"
    result = scan_source(source.encode("utf-8"), "m.py", "m")
    assert result.skipped is None
    assert [f.qualname for f in result.functions] == ["m.f"]


try:
    import hypothesmith
except ImportError:  # pragma: no cover - a `test` extra; some interpreters lack a wheel
    hypothesmith = None


@pytest.mark.slow
@pytest.mark.skipif(hypothesmith is None, reason="hypothesmith is not installed")
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_every_def_of_valid_python_is_found_at_ast_line(data):
    code = data.draw(hypothesmith.from_grammar() if sys.version_info >= (3, 9) else st.nothing())
    source = MARKER.decode() + code
    try:
        expected = ast_functions(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return  # hypothesmith's grammar admits some programs the compiler rejects
    result = scan_source(source.encode("utf-8", "surrogatepass"), "gen.py", "")
    if result.skipped is not None:
        assert "libcst cannot parse" in result.skipped or "nested too deeply" in result.skipped
        return
    assert reported(result) == expected


@pytest.mark.slow
@pytest.mark.skipif(hypothesmith is None, reason="hypothesmith is not installed")
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_generated_programs_with_defs_are_found(data):
    body = data.draw(hypothesmith.from_node())
    source = MARKER.decode() + "def _f():\n" + "".join("    " + line + "\n" for line in body.splitlines() or ["pass"])
    try:
        expected = ast_functions(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    result = scan_source(source.encode("utf-8", "surrogatepass"), "gen.py", "")
    if result.skipped is None:
        assert reported(result) == expected
