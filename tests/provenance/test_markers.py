"""Every marker form of the grammar in DESIGN.md, read from plain source strings."""

from __future__ import annotations

import textwrap

import pytest

from aiotel.provenance import MarkerConfig, scan_source


def scan(source: str, module: str = "m", config: MarkerConfig = MarkerConfig()):
    return scan_source(textwrap.dedent(source).encode(), "m.py", module, config)


def marked(source: str, **kwargs):
    return {f.qualname: f for f in scan(source, **kwargs).functions}


def test_comment_directly_above_def_marks_it():
    found = marked(
        """
        import os

        # AI-generated: GPT-4, 2024-01-15, prompt: "optimize database query"
        def optimize_user_search(query_params):
            return query_params

        def plain():
            pass
        """
    )
    assert list(found) == ["m.optimize_user_search"]
    f = found["m.optimize_user_search"]
    assert (f.marker.tool, f.marker.date, f.marker.prompt) == ("GPT-4", "2024-01-15", "optimize database query")
    assert f.source == "comment"
    assert f.def_line == 5 and f.first_line == 5 and f.last_line == 6
    assert f.marker.raw == '# AI-generated: GPT-4, 2024-01-15, prompt: "optimize database query"'


def test_marker_on_first_line_of_file_belongs_to_the_def_below():
    found = marked("# AI-generated: Claude\ndef first():\n    pass\n\ndef second():\n    pass\n")
    assert list(found) == ["m.first"]
    assert found["m.first"].source == "comment"


def test_comment_above_first_decorator_marks_the_function():
    found = marked(
        """
        # AI-generated: Copilot
        @app.route("/")
        @login_required
        def index():
            return "ok"
        """
    )
    f = found["m.index"]
    assert f.first_line == 3 and f.def_line == 5


def test_comment_between_decorators_and_def_marks_the_function():
    found = marked(
        """
        import functools

        @functools.lru_cache()
        # AI-generated: Copilot
        def cached():
            return 1
        """
    )
    assert found["m.cached"].marker.tool == "Copilot"


def test_multi_line_marker_continues_after_a_trailing_comma_and_indented_lines():
    found = marked(
        """
        # AI-generated: Claude, 2024-03-01,
        #   prompt: "rank search results
        #   by freshness and popularity",
        #   ticket: SHOP-42
        # TODO: unrelated note
        def rank():
            pass
        """
    )
    marker = found["m.rank"].marker
    assert marker.prompt == "rank search results by freshness and popularity"
    assert marker.field_dict() == {"ticket": "SHOP-42"}
    assert marker.raw.count("\n") == 3


def test_blank_line_between_comment_and_def_breaks_the_link():
    result = scan(
        """
        x = 1
        # AI-generated: GPT-4

        def detached():
            pass
        """
    )
    assert result.functions == ()
    assert [n.line for n in result.notices] == [3]
    assert "blank line breaks the link" in result.notices[0].message


def test_module_header_marker_marks_every_function():
    found = marked(
        '''
        # AI-generated: Cursor, 2024-06-01, prompt: "utility module"
        """Utilities."""

        def a():
            def nested():
                pass

        class K:
            def method(self):
                pass

        # AI-generated: Claude
        def b():
            pass
        '''
    )
    assert set(found) == {"m.a", "m.a.<locals>.nested", "m.K.method", "m.b"}
    assert found["m.a"].source == "module" and found["m.a"].marker.tool == "Cursor"
    assert found["m.b"].source == "comment" and found["m.b"].marker.tool == "Claude"  # nearest wins


def test_module_marker_separated_by_blank_line_from_first_def():
    found = marked("# AI-generated: Aider\n\ndef a():\n    pass\n\ndef b():\n    pass\n")
    assert {f.source for f in found.values()} == {"module"}
    assert set(found) == {"m.a", "m.b"}


def test_class_marker_marks_its_methods_and_nearest_marker_wins():
    found = marked(
        """
        # AI-generated: Copilot
        class Cart:
            def total(self):
                pass

            # AI-generated: GPT-4o
            def discount(self):
                pass

            class Line:
                def price(self):
                    pass

        def outside():
            pass
        """
    )
    assert set(found) == {"m.Cart.total", "m.Cart.discount", "m.Cart.Line.price"}
    assert found["m.Cart.total"].source == "class"
    assert found["m.Cart.discount"].marker.tool == "GPT-4o"
    assert found["m.Cart.Line.price"].marker.tool == "Copilot"


def test_decorator_marker_in_code():
    found = marked(
        """
        import aiotel
        from aiotel import ai_generated

        @aiotel.ai_generated(tool="Claude", date="2024-02-02", prompt="p", reviewed="yes")
        def a():
            pass

        @ai_generated("Gemini")
        def b():
            pass

        @ai_generated
        def c():
            pass
        """
    )
    assert found["m.a"].source == "decorator"
    assert found["m.a"].marker.tool == "Claude" and found["m.a"].marker.prompt == "p"
    assert found["m.a"].marker.field_dict() == {"reviewed": "yes"}
    assert found["m.b"].marker.tool == "Gemini"
    assert found["m.c"].marker.tool == "unknown"


def test_decorator_marker_with_non_literal_argument_is_noticed():
    result = scan(
        """
        @ai_generated(tool=TOOL_NAME)
        def a():
            pass
        """
    )
    assert result.functions[0].marker.tool == "unknown"
    assert "not a string literal" in result.notices[0].message


def test_ignore_opts_a_function_out_of_a_module_marker():
    found = marked(
        """
        # AI-generated: Copilot

        def kept():
            pass

        # aiotel: ignore
        def skipped():
            def inner():
                pass

        # aiotel: ignore
        class Hidden:
            def method(self):
                pass
        """
    )
    assert set(found) == {"m.kept"}


def test_ignore_in_module_header_opts_the_whole_module_out():
    assert marked("# aiotel: ignore\n\n# AI-generated: X\ndef f():\n    pass\n") == {}


def test_markers_in_strings_docstrings_and_after_code_do_not_count():
    result = scan(
        '''
        def a():
            """
            # AI-generated: GPT-4
            """

        TEXT = """
        # AI-generated: GPT-4
        def b():
            pass
        """

        x = 1  # AI-generated: GPT-4
        def c():  # AI-generated: GPT-4
            pass
        '''
    )
    assert result.functions == ()
    assert sorted(n.line for n in result.notices) == [13, 14]
    assert all("same line" in n.message for n in result.notices)


def test_nested_functions_get_locals_qualnames():
    found = marked(
        """
        def outer():
            # AI-generated: Claude
            def inner():
                class Local:
                    # AI-generated: Claude
                    def method(self):
                        pass
            return inner
        """
    )
    assert set(found) == {"m.outer.<locals>.inner", "m.outer.<locals>.inner.<locals>.Local.method"}


def test_function_marker_does_not_extend_to_nested_defs():
    assert set(marked("# AI-generated: X\ndef outer():\n    def inner():\n        pass\n")) == {"m.outer"}


def test_same_method_name_in_two_classes():
    found = marked(
        """
        class A:
            # AI-generated: Claude
            def run(self):
                pass

        class B:
            # AI-generated: GPT-4
            def run(self):
                pass
        """
    )
    assert found["m.A.run"].marker.tool == "Claude"
    assert found["m.B.run"].marker.tool == "GPT-4"


def test_async_generator_and_async_generator_flags():
    found = marked(
        """
        # AI-generated: X

        async def coro():
            await thing()

        def gen():
            yield 1

        async def agen():
            yield 1

        def not_a_generator():
            return lambda: (yield)

        def outer_not_generator():
            def inner():
                yield 1
            return inner
        """
    )
    flags = {name: (f.is_async, f.is_generator, f.is_async_generator) for name, f in found.items()}
    assert flags["m.coro"] == (True, False, False)
    assert flags["m.gen"] == (False, True, False)
    assert flags["m.agen"] == (True, False, True)
    assert flags["m.not_a_generator"] == (False, False, False)
    assert flags["m.outer_not_generator"] == (False, False, False)
    assert flags["m.outer_not_generator.<locals>.inner"] == (False, True, False)


def test_lambdas_are_not_reported():
    # A lambda has no def line for a marker to stand above and no name for a span.
    assert marked("# AI-generated: X\n\nsquare = lambda x: x * x\n") == {}


@pytest.mark.parametrize(
    "marker, tool, date, prompt, fields",
    [
        ('AI-generated: GPT-4, 2024-01-15, prompt: "optimize"', "GPT-4", "2024-01-15", "optimize", {}),
        ("AI-generated: GPT-4, 2024-01-15, prompt=optimize", "GPT-4", "2024-01-15", "optimize", {}),
        ("AI-generated: tool=Claude, date=2024-02-01", "Claude", "2024-02-01", None, {}),
        ("AI-generated: 'Claude 3.5 Sonnet', prompt: 'it''s'", "Claude 3.5 Sonnet", None, "it''s", {}),
        ('AI-generated: Copilot, prompt: "a, b and c", reviewed: yes', "Copilot", None, "a, b and c", {"reviewed": "yes"}),
        ("AI-generated: Copilot, prompt: sort users, fast", "Copilot", None, "sort users, fast", {}),
        ('AI-generated: Copilot, prompt: "say \\"hi\\""', "Copilot", None, 'say "hi"', {}),
        ("AI-generated: Cursor, model=gpt-4o, Ticket-Id: T-9", "Cursor", None, None, {"model": "gpt-4o", "ticket_id": "T-9"}),
        ("AI-generated:", "unknown", None, None, {}),
        ("AI-generated", "unknown", None, None, {}),
        ("AI-Generated: X", "X", None, None, {}),
        ("AI-GENERATED: X", "X", None, None, {}),
        ("ai-generated: x", "x", None, None, {}),
    ],
)
def test_field_styles(marker, tool, date, prompt, fields):
    found = marked(f"# {marker}\ndef f():\n    pass\n")
    m = found["m.f"].marker
    assert (m.tool, m.date, m.prompt, m.field_dict()) == (tool, date, prompt, fields)


def test_prose_mentioning_ai_generated_is_not_a_marker():
    result = scan("# AI-generated code below is slow\ndef f():\n    pass\n")
    assert result.functions == () and result.notices == ()


def test_malformed_marker_still_marks_and_says_what_it_ignored():
    result = scan('# AI-generated: GPT-4, 2024-13-45, extra, prompt: "never closed\ndef f():\n    pass\n')
    (f,) = result.functions
    assert f.marker.tool == "GPT-4" and f.marker.date == "2024-13-45"
    assert f.marker.prompt == "never closed"
    messages = " | ".join(n.message for n in result.notices)
    assert "not an ISO date" in messages
    assert "'extra'" in messages
    assert "never closed" in messages


def test_extra_marker_patterns_map_named_groups_to_fields():
    config = MarkerConfig((r"Generated by (?P<tool>[\w.-]+)", r"@generated by (?P<tool>\w+)(?: for (?P<ticket>\S+))?"))
    found = marked(
        """
        # Generated by Copilot, prompt: "x"
        def a():
            pass

        # @generated by Claude for T-7
        def b():
            pass

        # generated by hand
        def c():
            pass
        """,
        config=config,
    )
    assert found["m.a"].marker.tool == "Copilot" and found["m.a"].marker.prompt == "x"
    assert found["m.b"].marker.tool == "Claude" and found["m.b"].marker.field_dict() == {"ticket": "T-7"}
    assert found["m.c"].marker.tool == "hand"  # the user's pattern says so; documented as case-insensitive


def test_extra_patterns_are_not_active_by_default():
    assert marked("# Generated by Copilot\ndef a():\n    pass\n") == {}


def test_superseded_marker_is_noticed_and_the_nearest_wins():
    result = scan("# AI-generated: A\n# AI-generated: B\ndef f():\n    pass\n")
    assert result.functions[0].marker.tool == "B"
    assert "superseded" in result.notices[0].message


def test_decorator_marker_wins_over_comment_marker():
    found = marked('# AI-generated: Comment\n@ai_generated(tool="Decorator")\ndef f():\n    pass\n')
    assert found["m.f"].source == "decorator" and found["m.f"].marker.tool == "Decorator"


def test_module_name_prefixes_qualnames_and_is_omitted_when_empty():
    assert set(marked("# AI-generated: X\ndef f():\n    pass\n", module="pkg.sub")) == {"pkg.sub.f"}
    assert set(marked("# AI-generated: X\ndef f():\n    pass\n", module="")) == {"f"}


def test_the_built_in_spelling_has_the_fingerprint_hashlib_gives_it():
    """Precomputed so start-up need not load hashlib; cache keys must not change."""
    import hashlib

    assert MarkerConfig().fingerprint == hashlib.sha256(b"").hexdigest()[:16]
    assert MarkerConfig(("x",)).fingerprint == hashlib.sha256(b"x").hexdigest()[:16]


def test_cache_key_digests_are_sha256():
    import hashlib

    from aiotel.provenance.digest import sha256_hex

    for data in (b"", b"x", bytes(range(256)) * 100):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
