"""aiotel: OpenTelemetry for AI-generated code.

Importing this package is cheap and imports no OpenTelemetry: user code may use
``@aiotel.ai_generated`` without the agent being active.
"""

from ._version import __version__
from .decorator import ai_generated

__all__ = ["__version__", "ai_generated"]
