"""Which functions are AI-generated, and what their provenance says.

Pure: source bytes in, records out; no OpenTelemetry here. The names below load their
submodule on first use (PEP 562), so importing one piece (the launcher needs a constant)
costs only that piece; libcst (about 140 ms to import) loads only when a file that
passed the pre-filter is actually scanned.
"""

import importlib
from typing import Any

_WHERE = {
    "CachedScanner": "cached_scanner",
        "MAX_SOURCE_BYTES": "decode",
    "DEFAULT_MARKERS": "grammar",
    "MarkerConfig": "grammar",
    "MarkerPatternError": "grammar",
    "Prefilter": "prefilter",
    "Marker": "records",
    "Notice": "records",
    "Provenance": "records",
    "ScanResult": "records",
    "scan_source": "scanner",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
    globals()[name] = value
    return value
