"""Which two versions a comparison sets side by side when none are named, for every source.

The *new* version is the one first seen most recently (the alert rules take it among the
versions scraped now: they are about live code). The *previous* version is, of the others, the one last seen most recently: for
a clean cut-over, the one whose data ended just before the new one began; during a canary
or a rolling deploy, the one still running beside it (the comparison that matters then).
The Prometheus alert rules (``aiotel-versions``) find them the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from ..store import rollup
from . import BadArgument

Seen = Dict[str, Tuple[int, int]]  # version -> (first seen, last seen), ns or s alike


def newest_and_previous(seen: Seen) -> Optional[Tuple[str, str]]:
    """(previous, new), or None with fewer than two versions."""
    if len(seen) < 2:
        return None
    new = max(seen, key=lambda v: (seen[v][0], v))
    previous = max((v for v in seen if v != new), key=lambda v: (seen[v][1], v))
    return previous, new


def compared(source: str, stats: List[rollup.FunctionStats], old: Optional[str], new: Optional[str],
             seen: Callable[[], Seen]) -> Dict[str, Any]:
    """compare_versions' answer over ``stats``: the versions named, or the newest and the
    previous one by ``seen`` (read only then)."""
    if (old is None) != (new is None):
        raise BadArgument("old and new: give both versions, or neither for the new one and the one before it")
    known = sorted({s.version for s in stats})
    chosen = "arguments"
    if old is None or new is None:
        pair = newest_and_previous({v: t for v, t in seen().items() if v in known})
        if pair is None:
            where = "Prometheus" if source == "prometheus" else f"the {source}"
            raise BadArgument(f"compare_versions needs two versions; {where} has {', '.join(known) or 'none'}")
        (old, new), chosen = pair, "the newest version and the one before it"
    for name in (old, new):
        if name not in known:
            raise BadArgument(f"version {name!r}: no data; known: {', '.join(known) or 'none'}")
    return {"source": source, "old": old, "new": new, "chosen_by": chosen,
            "functions": [c.to_json() for c in rollup.compare(stats, old, new)]}
