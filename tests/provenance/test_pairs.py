"""Experiment pairs from a marker's `replaces:`: resolved from the syntax tree, or refused with the reason."""

from __future__ import annotations

import textwrap

from aiotel.provenance.scanner import scan_source


def scan(source):
    result = scan_source(textwrap.dedent(source).encode(), "m.py", "m")
    pairs = {f.local_qualname: f.shadow for f in result.functions if f.shadow}
    controls = [f.local_qualname for f in result.functions if f.source == "control"]
    return pairs, controls, [n.message for n in result.notices]


def test_same_module_and_same_class_and_decorator_form():
    pairs, controls, notices = scan('''
        import aiotel

        def old(a, *, b=1):
            return a

        # AI-generated: Claude, replaces: old
        def new(a, *, b=1):
            return a

        class Cart:
            def total(self, items):
                return 0

            # AI-generated: GPT-4, replaces: total, compare: approx:0.001
            def fast_total(self, items):
                return 0

        @aiotel.ai_generated("Claude", replaces="Cart.total", compare="repr")
        def outside(self, items):
            return 0

        def old_rate():
            return 1

        @aiotel.ai_generated("Claude", replaces="old_rate", compare="repr")
        def rate():
            return 1
    ''')
    assert pairs == {"new": ("old", "eq"), "Cart.fast_total": ("Cart.total", "approx:0.001"), "rate": ("old_rate", "repr")}
    assert controls == ["old", "Cart.total", "old_rate"]
    assert notices == ["experiment not shadowed: Cart.total is already in the pair Cart.fast_total replaces Cart.total"]


def test_refusals_say_why():
    _, controls, notices = scan('''
        import functools

        def plain(x):
            return x

        async def coro(x):
            return x

        def gen(x):
            yield x

        class K:
            @staticmethod
            def static(x):
                return x

        # AI-generated: a, replaces: coro
        def r1(x):
            return x

        # AI-generated: a, replaces: gen
        def r2(x):
            return x

        # AI-generated: a, replaces: K.static
        def r3(x):
            return x

        # AI-generated: a, replaces: r4
        def r4(x):
            return x

        # AI-generated: a, replaces: plain, compare: almost
        def r5(x):
            return x

        # AI-generated: a, replaces: plain(x)
        def r6(x):
            return x

        def outer():
            # AI-generated: a, replaces: plain
            def inner(x):
                return x
            return inner
    ''')
    assert controls == []
    assert notices == [
        "experiment not shadowed: coro is async (not shadowed: both arms would have to be awaited by the caller)",
        "experiment not shadowed: gen is a generator (not shadowed: its results arrive one by one)",
        "experiment not shadowed: K.static is decorated with @staticmethod",
        "experiment not shadowed: r4 names itself",
        "experiment not shadowed: compare: 'almost' is not a built-in comparator (eq, repr, type, approx:<tolerance>)",
        "experiment not shadowed: replaces: 'plain(x)' is not a function name",
        "experiment not shadowed: outer.<locals>.inner is not defined directly in the module or a class body",
    ]
