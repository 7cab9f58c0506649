"""The built-in comparators of an experiment's outcomes."""

from __future__ import annotations

from aiotel.probes.comparators import comparator


class ArrayLike:
    """An == that answers with something that is not a bool, as numpy arrays do."""

    def __eq__(self, other):
        return [True, False]


def test_eq_takes_nan_as_equal_and_an_unanswerable_eq_as_inconclusive():
    eq = comparator("eq")
    nan = float("nan")
    assert eq(nan, float("nan"), 0) is True
    assert eq([1, {"a": (nan,)}], [1, {"a": (float("nan"),)}], 0) is True
    assert eq([1, 2], [1, 3], 0) is False
    assert eq({"a": 1}, {"b": 1}, 0) is False
    assert eq(ArrayLike(), ArrayLike(), 0) is None
    assert eq([ArrayLike()], [ArrayLike()], 0) is None


def test_approx_repr_and_type():
    close = comparator("approx:0.01")
    assert close(1.0, 1.005, 0) is True
    assert close([1.0, 2.0], [1.0, 2.1], 0) is False
    assert close(0.0, 0.001, 0) is True  # absolute near zero
    assert close("a", "a", 0) is True
    assert comparator("repr")({1: 2}, {1: 2}, 0) is True
    assert comparator("repr")(1, True, 0) is False
    assert comparator("type")(1, 2, 0) is True  # the types were compared before it runs
