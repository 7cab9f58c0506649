"""Which functions are AI-generated, and what their provenance says.

Pure: source bytes in, records out; no OpenTelemetry here. libcst (about 140 ms to
import) loads only when a file that passed the pre-filter is actually scanned.
"""

from typing import Any

from .cached import CachedScanner
from .cache import default_cache_dir
from .decode import MAX_SOURCE_BYTES
from .grammar import DEFAULT_MARKERS, MarkerConfig, MarkerPatternError
from .prefilter import Prefilter
from .records import Marker, Notice, Provenance, ScanResult

__all__ = [
    "CachedScanner",
    "DEFAULT_MARKERS",
    "MAX_SOURCE_BYTES",
    "Marker",
    "MarkerConfig",
    "MarkerPatternError",
    "Notice",
    "Prefilter",
    "Provenance",
    "ScanResult",
    "default_cache_dir",
    "scan_source",
]


def __getattr__(name: str) -> Any:
    if name == "scan_source":
        from .scanner import scan_source

        return scan_source
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
