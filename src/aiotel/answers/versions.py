"""Which two versions a comparison sets side by side when none are named, for every source.

The *new* version is the one first seen most recently (the alert rules take it among the
versions scraped now: they are about live code). The *previous* version is, of the others, the one last seen most recently: for
a clean cut-over, the one whose data ended just before the new one began; during a canary
or a rolling deploy, the one still running beside it (the comparison that matters then).
The Prometheus alert rules (``aiotel-versions``) find them the same way.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

Seen = Dict[str, Tuple[int, int]]  # version -> (first seen, last seen), ns or s alike


def newest_and_previous(seen: Seen) -> Optional[Tuple[str, str]]:
    """(previous, new), or None with fewer than two versions."""
    if len(seen) < 2:
        return None
    new = max(seen, key=lambda v: (seen[v][0], v))
    previous = max((v for v in seen if v != new), key=lambda v: (seen[v][1], v))
    return previous, new
