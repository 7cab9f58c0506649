"""The bytes pre-filter: most files carry no marker and must never be parsed."""

from __future__ import annotations

import re
from typing import Optional, Pattern, Tuple

from .grammar import MarkerConfig

# Every built-in marker spelling (`# AI-generated`, `# AI-Generated`, `# AI-GENERATED`,
# `@ai_generated`) contains one of these; `bytes.__contains__` is a fast substring search,
# a few GB/s, where a case-insensitive regex is ten times slower.
_NEEDLES = (b"enerated", b"ENERATED")


def _bytes_pattern(pattern: str) -> Optional[Pattern[bytes]]:
    try:
        return re.compile(rb"#[ \t#]*(?:" + pattern.encode("utf-8") + rb")", re.IGNORECASE)
    except (re.error, UnicodeEncodeError):
        return None


def compile_extra(config: MarkerConfig) -> Tuple[Optional[Pattern[bytes]], ...]:
    """Bytes versions of the extra patterns; None where one cannot run on bytes."""
    return tuple(_bytes_pattern(p) for p in config.extra_patterns)


class Prefilter:
    """``may_have_markers(data)`` is False only when no marker can be in the file."""

    def __init__(self, config: MarkerConfig) -> None:
        self._extra = compile_extra(config)
        # A pattern that cannot be searched as bytes means every file must be parsed.
        self._always = any(p is None for p in self._extra)

    def may_have_markers(self, data: bytes) -> bool:
        for needle in _NEEDLES:
            if needle in data:
                return True
        if self._always:
            return True
        for pattern in self._extra:
            if pattern is not None and pattern.search(data):
                return True
        return False
