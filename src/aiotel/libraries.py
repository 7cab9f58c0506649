"""The installed OpenTelemetry instrumentations (requests, flask, sqlalchemy, openai, ...),
activated as ``opentelemetry-instrument`` activates them: every ``opentelemetry_instrumentor``
entry point whose library is installed, minus ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``.
So an AI-written function's span sits inside the request span and holds the HTTP, database
and LLM calls it makes.

Unlike ``opentelemetry-instrument``, each is activated when its library is first imported,
not at start-up: loading an instrumentor imports its library (Flask alone is 100 ms), and a
program that never imports the library should not pay for it. A post-import hook (wrapt's,
the one the instrumentations themselves depend on) runs the instrumentor right after the
library's module has executed, before the importing statement binds any name, so
``from flask import Flask`` gets the instrumented class. An instrumentor that names no
library (urllib, logging, ...) is activated at start-up, as before.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from typing import Any, Iterable, List, Mapping, Optional

from . import log

_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _entry_points() -> Iterable:
    from importlib import metadata

    if sys.version_info >= (3, 10):
        return metadata.entry_points(group="opentelemetry_instrumentor")
    return metadata.entry_points().get("opentelemetry_instrumentor", [])  # type: ignore[attr-defined]


def library_modules(entry_point: Any) -> Optional[List[str]]:
    """The top-level modules of the libraries an instrumentor instruments (its distribution's
    ``instruments`` extra); [] when none is installed; None when it names no library."""
    dist = getattr(entry_point, "dist", None)
    requirements = [r for r in (getattr(dist, "requires", None) or []) if "instruments" in r.split(";", 1)[-1]]
    if not requirements:
        return None
    modules = []
    for requirement in requirements:
        match = _REQUIREMENT_NAME.match(requirement)
        if match:
            module = _top_level_module(match.group(1))
            if module is not None and module not in modules:
                modules.append(module)
    return modules


def _top_level_module(distribution: str) -> Optional[str]:
    """The importable name of an installed distribution, or None when it is not installed."""
    guess = distribution.lower().replace("-", "_").replace(".", "_")
    if importlib.util.find_spec(guess) is not None:
        return guess
    from importlib import metadata

    try:
        top_level = metadata.distribution(distribution).read_text("top_level.txt") or ""
    except metadata.PackageNotFoundError:
        return None
    names = [line.strip() for line in top_level.splitlines() if line.strip() and not line.startswith("_")]
    return names[0] if names else None


def _activate(entry_point: Any) -> bool:
    """Load and run one instrumentor; False (said once) when it cannot."""
    try:
        from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

        dist = getattr(entry_point, "dist", None)
        if dist is not None and get_dist_dependency_conflicts(dist) is not None:
            return False  # its library is installed in a version it does not support
        entry_point.load()().instrument(skip_dep_check=True)
        return True
    except Exception as exc:
        log.warn(f"instrumentation {entry_point.name!r} not activated ({type(exc).__name__}: {exc})")
        return False


def instrument_libraries(environ: Mapping[str, str]) -> List[str]:
    """Activate, or arm for the first import of their library, the installed instrumentations
    that are not disabled; returns their names."""
    disabled = {name.strip() for name in environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if name.strip()}
    try:
        from wrapt import register_post_import_hook
    except ImportError:  # no opentelemetry-instrumentation: no instrumentors to run
        return []
    armed = []
    for entry_point in _entry_points():
        if entry_point.name in disabled:
            continue
        try:
            modules = library_modules(entry_point)
        except Exception as exc:
            log.warn(f"instrumentation {entry_point.name!r} not activated ({type(exc).__name__}: {exc})")
            continue
        if modules is None:
            if _activate(entry_point):
                armed.append(entry_point.name)
            continue
        if not modules:
            continue  # its library is not installed
        once = _Once(entry_point)
        for module in modules:
            register_post_import_hook(once, module)
        armed.append(entry_point.name)
    return armed


class _Once:
    """The post-import hook of one instrumentor: whichever of its libraries comes first."""

    def __init__(self, entry_point: Any) -> None:
        self.entry_point = entry_point
        self.done = False

    def __call__(self, module: Any) -> None:
        if not self.done:
            self.done = True
            _activate(self.entry_point)
