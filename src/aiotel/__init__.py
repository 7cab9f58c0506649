"""aiotel: OpenTelemetry for AI-generated code.

Importing this package is cheap and imports no OpenTelemetry: user code may use
``@aiotel.ai_generated`` without the agent being active.
"""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__", "ai_generated", "instrument"]


def __getattr__(name: str) -> object:
    # loaded on first use: the launcher and the bootstrap import this package too
    if name == "ai_generated":
        from .provenance.decorator import ai_generated

        return ai_generated
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def instrument() -> bool:
    """Start aiotel from code: telemetry set up from the environment, import hook installed.

    Modules imported after this call are instrumented; returns True when aiotel is active.
    Safe to call more than once, and it never raises.
    """
    from .start import instrument as start

    return start()
