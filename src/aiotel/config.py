"""Environment variables to one frozen settings object. Pure: a mapping in, values out.

Every ``AIOTEL_*`` variable is read here and nowhere else. A bad value never stops
the program: it becomes a problem (one sentence naming the variable and the value)
and the default is used.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, List, Mapping, Optional, Tuple, TypeVar

from .provenance import MAX_SOURCE_BYTES, MarkerConfig, MarkerPatternError, default_cache_dir

T = TypeVar("T")

_FALSE = {"0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True)
class Settings:
    markers: MarkerConfig = MarkerConfig()
    cache_dir: Optional[str] = None  # None: no scan cache
    max_source_bytes: int = MAX_SOURCE_BYTES
    problems: Tuple[str, ...] = ()


def parse_marker_patterns(value: str) -> Tuple[str, ...]:
    """AIOTEL_MARKERS: one regular expression per line, or a JSON array of them."""
    stripped = value.strip()
    if stripped.startswith("["):
        patterns = json.loads(stripped)
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError("a JSON value must be an array of strings")
        return tuple(patterns)
    return tuple(line.strip() for line in stripped.splitlines() if line.strip())


def parse_positive_int(value: str) -> int:
    number = int(value.strip())
    if number <= 0:
        raise ValueError("expected a positive whole number")
    return number


def load_settings(environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Read the ``AIOTEL_*`` variables of ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    problems: List[str] = []

    def read(name: str, parse: Callable[[str], T], default: T) -> T:
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw)
        except (ValueError, MarkerPatternError) as exc:
            problems.append(f"{name}={raw!r} ignored ({exc}); using the default")
            return default

    def markers(raw: str) -> MarkerConfig:
        return MarkerConfig(parse_marker_patterns(raw))

    cache_dir: Optional[str] = default_cache_dir(env)
    raw_cache = env.get("AIOTEL_CACHE_DIR")
    if raw_cache is not None and raw_cache.strip():
        cache_dir = None if raw_cache.strip().lower() in _FALSE | {"none"} else raw_cache
    return Settings(
        markers=read("AIOTEL_MARKERS", markers, MarkerConfig()),
        cache_dir=cache_dir,
        max_source_bytes=read("AIOTEL_MAX_SOURCE_BYTES", parse_positive_int, MAX_SOURCE_BYTES),
        problems=tuple(problems),
    )
