"""Which functions are AI-generated, and what their provenance says.

Pure: source bytes in, records out; no OpenTelemetry here.
"""

from .cached import CachedScanner
from .cache import default_cache_dir
from .decode import MAX_SOURCE_BYTES
from .grammar import DEFAULT_MARKERS, MarkerConfig, MarkerPatternError
from .prefilter import Prefilter
from .records import Marker, Notice, Provenance, ScanResult
from .scanner import scan_source

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
