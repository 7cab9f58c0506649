"""Where a report's window starts, from what a user (or a coding agent) types: a duration
back from now (``30m``, ``2h``, ``7d``) or an ISO 8601 time."""

from __future__ import annotations

import datetime
import re
import time
from typing import Optional

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: Optional[float] = None) -> int:
    """A duration back from now, or an absolute ISO 8601 time; in Unix nanoseconds.
    ValueError for anything else."""
    now = time.time() if now is None else now
    match = _DURATION.match(value)
    if match:
        return int((now - float(match.group(1)) * _UNITS[match.group(2)]) * 1e9)
    moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a time without zone is local time
    return int(moment.timestamp() * 1e9)
