"""Who last changed each line: ``git blame --porcelain`` parsed into runs of lines per
commit, the commit that changed most of a function's lines, and the marker fields that
name it. Pure: text in, records out.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Optional, Set, Tuple

_UNCOMMITTED = "0" * 40


@dataclasses.dataclass(frozen=True)
class Commit:
    sha: str
    time: int  # author time, seconds since the epoch
    tool: Optional[str] = None  # the AI tool its trailers name, if any


@dataclasses.dataclass(frozen=True)
class Blame:
    """The commit that last changed each line of one file (None: not committed, or beyond a
    shallow clone's boundary), as runs of (commit, first line, line count)."""

    runs: Tuple[Tuple[Optional[str], int, int], ...]
    times: Dict[str, int]

    def majority(self, first: int, last: int) -> Optional[Commit]:
        """The commit that last changed most of lines ``first..last``; ties go to the later
        commit. None when uncommitted or boundary lines are the most."""
        counts: Dict[Optional[str], int] = {}
        for sha, start, count in self.runs:
            overlap = min(last, start + count - 1) - max(first, start) + 1
            if overlap > 0:
                counts[sha] = counts.get(sha, 0) + overlap
        if not counts:
            return None
        best = max(counts.items(), key=lambda item: (item[1], self.times.get(item[0] or "", -1)))[0]
        return Commit(best, self.times[best]) if best is not None else None


def parse_blame(porcelain: str, cut_off: Set[str] = frozenset()) -> Blame:  # type: ignore[assignment]
    """``git blame --root --porcelain`` output to runs of lines per commit. Lines of a
    ``boundary`` commit or one in ``cut_off`` (a shallow clone's edge, whose history is
    missing) have no known author commit."""
    runs: List[Tuple[Optional[str], int, int]] = []
    times: Dict[str, int] = {}
    boundary: Set[str] = set(cut_off)
    current: Optional[str] = None
    for line in porcelain.splitlines():
        if line.startswith("\t"):
            continue
        parts = line.split(" ")
        if len(parts) >= 3 and len(parts[0]) == 40 and parts[1].isdigit() and parts[2].isdigit():
            current = parts[0]
            if len(parts) >= 4:  # the first line of a group: the group's size
                runs.append((current, int(parts[2]), int(parts[3])))
        elif current is not None and parts[0] == "author-time" and len(parts) == 2 and parts[1].isdigit():
            times[current] = int(parts[1])
        elif current is not None and parts[0] == "boundary":
            boundary.add(current)
    cleaned = tuple(
        (None if sha == _UNCOMMITTED or sha in boundary else sha, start, count) for sha, start, count in runs
    )
    return Blame(cleaned, {sha: t for sha, t in times.items() if sha != _UNCOMMITTED and sha not in boundary})


def iso_date(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def commit_fields(commit: Commit) -> Tuple[Tuple[str, str], ...]:
    """The marker fields (``aiotel.provenance.<key>`` attributes) naming a commit."""
    return (("commit", commit.sha), ("commit.time", iso_date(commit.time)))
