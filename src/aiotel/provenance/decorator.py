"""``@aiotel.ai_generated``: mark a function (or class) as AI-generated in code."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, TypeVar, Union, overload

T = TypeVar("T")

ATTRIBUTE = "__aiotel_provenance__"


@overload
def ai_generated(__target: T) -> T: ...


@overload
def ai_generated(__tool: Optional[str] = None, **fields: str) -> Callable[[T], T]: ...


def ai_generated(__tool: Union[str, Any, None] = None, **fields: str) -> Any:
    """Mark the decorated function or class as AI-generated.

    ``@ai_generated``, ``@ai_generated("Claude")`` or
    ``@ai_generated(tool="Claude", date="2024-01-15", prompt="...", reviewed="yes")``.
    Returns the very object it was given, with the provenance attached as
    ``__aiotel_provenance__``; the scanner reads the same call from source, so
    instrumentation sees it before the function exists. Arguments must be string
    literals for the scanner to read them.
    """
    if __tool is not None and not isinstance(__tool, str):
        return _attach(__tool, {"tool": "unknown"})
    provenance: Dict[str, str] = {"tool": fields.pop("tool", None) or __tool or "unknown"}
    provenance.update(fields)

    def mark(target: T) -> T:
        return _attach(target, provenance)

    return mark


def _attach(target: T, provenance: Dict[str, str]) -> T:
    try:
        setattr(target, ATTRIBUTE, dict(provenance))
    except (AttributeError, TypeError):
        pass  # builtins and slotted objects: the source marker still counts
    return target
