"""Experiment pairs from a marker's `replaces:`: resolved from the syntax tree, or refused with the reason."""

from __future__ import annotations

import textwrap

import pytest

from aiotel.provenance import CachedScanner
from aiotel.provenance.pairs import relative_target
from aiotel.provenance.scanner import scan_source


def scan(source):
    result = scan_source(textwrap.dedent(source).encode(), "m.py", "m")
    pairs = {f.local_qualname: f.shadow[2:] for f in result.functions if f.shadow and f.shadow[0] == "candidate"}
    # both arms name each other, in one module here
    assert {(f.shadow[0], f.shadow[2], f.local_qualname) for f in result.functions if f.shadow and f.shadow[0] == "control"} == {
        ("control", candidate, control) for candidate, (control, _) in pairs.items()}
    assert all(f.shadow[1] == "m" for f in result.functions if f.shadow)
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


@pytest.mark.parametrize("name, module, is_package, expected", [
    (".legacy.total", "shop.fast", False, ("shop.legacy", "total")),
    (".legacy:Cart.total", "shop.fast", False, ("shop.legacy", "Cart.total")),
    ("..legacy.total", "shop.billing.vat", False, ("shop.legacy", "total")),
    (".legacy.total", "shop", True, ("shop.legacy", "total")),  # in a package's __init__, "." is the package
    (".sub.mod.f", "shop.fast", False, ("shop.sub.mod", "f")),
])
def test_relative_names_mean_what_a_relative_import_means(name, module, is_package, expected):
    assert relative_target(name, module, is_package) == expected


@pytest.mark.parametrize("name, module, problem", [
    (".total", "shop.fast", "names no module"),
    ("..legacy.total", "shop.fast", "reaches above the top-level package"),
    (".legacy.total", "fast", "is not in a package"),
    (".legacy:Cart.total()", "shop.fast", "is not a function name"),
])
def test_relative_names_that_mean_nothing_say_why(name, module, problem):
    with pytest.raises(ValueError, match=problem):
        relative_target(name, module, False)


def write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_a_pair_across_modules_is_checked_against_the_other_file_which_is_never_imported(tmp_path):
    write(tmp_path, {
        "shop/__init__.py": "",
        "shop/legacy.py": '''
            raise SystemExit("aiotel must not run this file")

            def total(items, *, tax=0):
                return 0

            async def slow(x):
                return x

            class Cart:
                def count(self):
                    return 0

            def other(items, *, tax=0):
                return 0
        ''',
        "shop/fast.py": '''
            # AI-generated: Claude, replaces: .legacy.total, compare: repr
            def fast_total(items, *, tax=0):
                return 0

            # AI-generated: Claude, replaces: .legacy:Cart.count
            def fast_count(self):
                return 0

            # AI-generated: Claude, replaces: .legacy.missing
            def r1(x):
                return x

            # AI-generated: Claude, replaces: .legacy.slow
            def r2(x):
                return x

            # AI-generated: Claude, replaces: .legacy.other
            def r3(items, tax=0):
                return 0

            # AI-generated: Claude, replaces: .nowhere.total
            def r4(items):
                return 0

            # AI-generated: Claude, replaces: .legacy:Cart.count
            def r5(self):
                return 0
        ''',
    })
    result = CachedScanner().scan_path(str(tmp_path / "shop" / "fast.py"), "shop.fast")
    assert {f.local_qualname: f.shadow for f in result.functions if f.shadow} == {
        "fast_total": ("candidate", "shop.legacy", "total", "repr"),
        "fast_count": ("candidate", "shop.legacy", "Cart.count", "eq"),
    }
    assert [(c.qualname, c.source, c.shadow, c.marker.field_dict()) for c in result.controls] == [
        ("shop.legacy.total", "control", ("control", "shop.fast", "fast_total", "repr"), {"replaced_by": "shop.fast.fast_total"}),
        ("shop.legacy.Cart.count", "control", ("control", "shop.fast", "fast_count", "eq"), {"replaced_by": "shop.fast.fast_count"}),
    ]
    assert [c.def_line for c in result.controls] == [4, 11]
    assert [n.message for n in result.notices] == [
        "experiment not shadowed: replaces: no function 'missing' is defined in shop.legacy",
        "experiment not shadowed: shop.legacy.slow is async (not shadowed: both arms would have to be awaited by the caller)",
        "experiment not shadowed: signatures differ: shop.fast.r3(items, tax=...) and shop.legacy.other(items, *, tax=...)",
        "experiment not shadowed: no source file for shop.nowhere beside this one (aiotel reads it; it never imports it)",
        "experiment not shadowed: shop.legacy.Cart.count is already in the pair fast_count replaces shop.legacy.Cart.count",
    ]
