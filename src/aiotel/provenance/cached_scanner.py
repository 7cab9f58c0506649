"""The scanner as callers use it: pre-filter, then the disk cache, then libcst."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from .scan_cache import ScanCache
from .decode import MAX_SOURCE_BYTES
from .grammar import DEFAULT_MARKERS, MarkerConfig
from .prefilter import Prefilter

if TYPE_CHECKING:  # the records load with the first file that may hold a marker
    from .records import ScanResult


class CachedScanner:
    """Scan files for marked functions, remembering results across processes.

    ``cache_dir=None`` disables the cache.
    """

    def __init__(
        self,
        config: MarkerConfig = DEFAULT_MARKERS,
        cache_dir: Optional[str] = None,
        max_bytes: int = MAX_SOURCE_BYTES,
    ) -> None:
        self.config = config
        self.prefilter = Prefilter(config)
        self.cache = ScanCache(cache_dir, config)
        self.max_bytes = max_bytes

    def scan_bytes(self, data: bytes, path: str, module: str, st: Optional[os.stat_result] = None) -> ScanResult:
        """Scan ``data``, the current bytes of ``path`` (whose stat result is ``st``)."""
        from .records import ScanResult

        if not self.prefilter.may_have_markers(data):
            return ScanResult(path=path, module=module)
        result = self.cache.get(path, st) if st is not None else None
        if result is None or result.module != module:
            from .scanner import scan_candidate  # libcst: loaded only when a file needs it

            result = scan_candidate(data, path, module, self.config, self.max_bytes)
            if st is not None:
                self.cache.put(path, st, result)
        if any(r.crosses_modules for r in result.functions):
            from .cross_pairs import resolve_across  # the other half of a pair across modules: another file

            result = resolve_across(result, data, self.max_bytes)
        return result

    def scan_path(self, path: str, module: str) -> ScanResult:
        """Read and scan one file; an unreadable file comes back skipped, with the reason."""
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read()
        except OSError as exc:
            from .records import ScanResult

            return ScanResult(path=path, module=module, skipped=f"cannot read: {exc.strerror or exc}")
        return self.scan_bytes(data, path, module, st)
