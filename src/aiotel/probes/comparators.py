"""The built-in comparators of an experiment's two outcomes. Only these: a comparator named
in configuration or in a marker is looked up here, never imported.

Each returns True (same), False (differs) or None (inconclusive: the values cannot say,
for example a numpy array whose ``==`` gives an array, or an ``==`` that raised).
Types are compared before any comparator runs (see ``experiments._mismatch``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

_MAX_DEPTH = 32  # nested containers compared element by element this deep, then by ==
_NUMBERS = (int, float)


def _is_nan(value: Any) -> bool:
    return value.__class__ is float and value != value


def _truth(result: Any) -> Optional[bool]:
    """What ``==`` gave, as a bool when it is one (a numpy scalar bool counts), else None."""
    if result is True or result is False:
        return result
    if type(result).__name__ in ("bool_", "bool") and getattr(result, "shape", None) == ():
        return bool(result)
    return None


def _containers(a: Any, b: Any, depth: int) -> bool:
    """Lists, tuples or dicts of one type, not nested too deep: compared element by element."""
    return depth < _MAX_DEPTH and a.__class__ is b.__class__ and a.__class__ in (list, tuple, dict)


def _elements(a: Any, b: Any, same: Callable[[Any, Any, int], Optional[bool]], depth: int) -> Optional[bool]:
    """Two containers (``_containers``), element by element with ``same``."""
    if len(a) != len(b):
        return False
    if a.__class__ is dict:
        if a.keys() != b.keys():
            return False
        pairs = ((a[k], b[k]) for k in a)
    else:
        pairs = zip(a, b)
    inconclusive = False
    for x, y in pairs:
        verdict = same(x, y, depth + 1)
        if verdict is False:
            return False
        inconclusive = inconclusive or verdict is None
    return None if inconclusive else True


def eq(a: Any, b: Any, depth: int = 0) -> Optional[bool]:
    """``==``, with NaN equal to NaN (also inside lists, tuples and dicts)."""
    if a is b or (_is_nan(a) and _is_nan(b)):
        return True
    if _containers(a, b, depth):
        return _elements(a, b, eq, depth)
    try:
        return _truth(a == b)
    except Exception:
        return None


def approx(tolerance: float) -> Callable[[Any, Any, int], Optional[bool]]:
    """Numbers equal within ``tolerance``, relative or absolute (``math.isclose`` with both
    set to it); other values as ``eq``."""

    def close(a: Any, b: Any, depth: int = 0) -> Optional[bool]:
        if isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS) and not isinstance(a, bool) and not isinstance(b, bool):
            if _is_nan(a) or _is_nan(b):
                return _is_nan(a) and _is_nan(b)
            return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
        if _containers(a, b, depth):
            return _elements(a, b, close, depth)
        return eq(a, b, _MAX_DEPTH)

    return close


def same_repr(a: Any, b: Any, depth: int = 0) -> Optional[bool]:
    try:
        return repr(a) == repr(b)
    except Exception:
        return None


def same_type(a: Any, b: Any, depth: int = 0) -> Optional[bool]:
    return True  # the types were compared before: the values are not looked at


def comparator(name: str) -> Callable[[Any, Any, int], Optional[bool]]:
    """The comparator a pair names (``provenance.pairs.parse_comparator`` checked it)."""
    if name.startswith("approx:"):
        return approx(float(name[len("approx:"):]))
    return {"repr": same_repr, "type": same_type}.get(name, eq)
