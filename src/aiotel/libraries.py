"""The installed OpenTelemetry instrumentations (requests, flask, sqlalchemy, openai, ...),
activated as ``opentelemetry-instrument`` activates them: every ``opentelemetry_instrumentor``
entry point whose library is installed, minus ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``.
So an AI-written function's span sits inside the request span and holds the HTTP, database
and LLM calls it makes.
"""

from __future__ import annotations

import sys
from typing import Iterable, List, Mapping

from . import log


def _entry_points() -> Iterable:
    from importlib import metadata

    if sys.version_info >= (3, 10):
        return metadata.entry_points(group="opentelemetry_instrumentor")
    return metadata.entry_points().get("opentelemetry_instrumentor", [])  # type: ignore[attr-defined]


def instrument_libraries(environ: Mapping[str, str]) -> List[str]:
    """Activate what is installed and not disabled; returns the names activated."""
    disabled = {name.strip() for name in environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if name.strip()}
    try:
        from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts
    except ImportError:
        return []
    activated = []
    for entry_point in _entry_points():
        if entry_point.name in disabled:
            continue
        try:
            dist = getattr(entry_point, "dist", None)
            if dist is not None and get_dist_dependency_conflicts(dist) is not None:
                continue  # its library is not installed (or in a version it does not support)
            instrumentor = entry_point.load()()
            instrumentor.instrument(skip_dep_check=True)
            activated.append(entry_point.name)
        except Exception as exc:
            log.warn(f"instrumentation {entry_point.name!r} not activated ({type(exc).__name__}: {exc})")
    return activated
