"""The silent signals: an ``except`` handler that caught something (a fallback) and a
``None`` returned by a function that returns values elsewhere."""

from __future__ import annotations

import sys
from typing import Any

from .. import semconv
from .attributes import _redacted
from .experiments import ShadowCall
from .state import Call, FunctionProbe


def _type_name(cls: type) -> str:
    # semantic-conventions error.type style: the class name, qualified unless builtin
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def fallback(probe: FunctionProbe, call: Any, line: int) -> None:
    """An ``except`` handler of the function (on ``line``) caught something: count it, and
    note it on the call's span when the call is sampled."""
    try:
        if call.__class__ is ShadowCall:  # a shadow arm's handlers are not the function's own calls
            return
        kind = _type_name(sys.exc_info()[1].__class__)
        key = (line, kind)
        probe.fallbacks[key] = probe.fallbacks.get(key, 0) + 1
        if call.__class__ is Call:
            call.span.add_event(semconv.EVENT_FALLBACK, {semconv.CODE_LINE_NUMBER: line, semconv.EXCEPTION_TYPE: _redacted(kind)})
    except Exception:
        pass


def empty(probe: FunctionProbe, call: Any, line: int) -> None:
    """The function, which returns values elsewhere, returns None at ``line``."""
    try:
        if call.__class__ is ShadowCall:
            return
        probe.empties[line] = probe.empties.get(line, 0) + 1
        if call.__class__ is Call:
            call.span.add_event(semconv.EVENT_EMPTY_RESULT, {semconv.CODE_LINE_NUMBER: line})
    except Exception:
        pass
