"""The totals a report's window needs, read from a few lines of each process's files.

aiotel's metrics are cumulative, and each export of a process holds every series the
process has (the probes' counts only grow, and the metrics bridge hands all of them to
every collection). So a process's total is its newest export line, and what it had at
``since`` is its newest line at or before that time: found by bisecting the files on the
lines' times (one time per line, in order: each line is one collection). Two or three
lines per process instead of all of them, whatever the size of its files.

The result is what ``rollup.series_totals`` gives over every point of the files, summed
over processes as it is read, so memory holds one process's lines and one total per
series, not the store. Files of layout 1, whose names two processes could share, are
read whole, as before.

A chart over time (the HTML report's) needs more than two lines, but not every line
either: with ``samples``, each process is also read at that many times spread evenly over
its part of the window (each the newest line at or before its time, bisected as the
baseline is), so a chart costs ``samples`` lines a process however long it ran. Being
cumulative, the lines in between are what the sampled ones add up. Of a sampled line
only the duration histogram's counts are taken (what the chart draws), and a store of many
processes is sampled less per process (``SAMPLE_BUDGET`` lines in all, at least two a
process): the chart's cost follows the number of processes, as the totals' does, not
the size of their files.
"""

from __future__ import annotations

import json
import mmap
import os
import re
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from .. import semconv
from .rollup import (_WRONG_SHAPE, LAYOUT, Point, Skipped, _points_of, layout_of, newer_layout, read_points,
                     series_totals)

_TIME = re.compile(rb'"timeUnixNano":"(\d+)"')
SAMPLE_BUDGET = 300  # sampled lines for a chart, over all processes
# In a metrics line: where the duration metric's object begins, and the resource's key
# (only a key can be spelt so: a quote inside a string is escaped)
_DURATION_START = '{"name":"' + semconv.FUNCTION_DURATION + '"'
_RESOURCE_KEY = '"resource":'
_decoder = json.JSONDecoder()

MergedKey = Tuple[str, str, str, str, str, str, Tuple[object, ...], Tuple[float, ...]]


class Window(NamedTuple):
    totals: List[Point]  # one point per series, summed over processes: what it added in the window
    timeline: List[Point]  # each process's points at its sampled lines (and its newest, and baseline)


def read_totals(files: Sequence[str], since: Optional[int] = None, skipped: Optional[Skipped] = None,
                group_by: str = semconv.SERVICE_VERSION) -> List[Point]:
    """One point per series (summed over processes) holding what it added in the window:
    the same totals as ``series_totals(read_points(files), since)`` gives, summed."""
    return read_window(files, since, skipped, group_by).totals


def read_window(files: Sequence[str], since: Optional[int] = None, skipped: Optional[Skipped] = None,
                group_by: str = semconv.SERVICE_VERSION, samples: int = 0) -> Window:
    """The window's totals (``read_totals``) and, with ``samples``, the points of each
    process's lines at ``samples`` times spread over the window: the cumulative steps a
    chart over time is drawn from (``details.calls_over_time``), in one reading."""
    tally = skipped if skipped is not None else Skipped()
    merged: Dict[MergedKey, Point] = {}
    timeline: List[Point] = []
    processes = _processes(files, tally)
    each = max(2, min(samples, SAMPLE_BUDGET // max(len(processes), 1))) if samples else 0
    for process, paths in processes.items():
        if layout_of(paths[0]) < 2:
            points: List[Point] = list(read_points(paths, tally, group_by))
        else:
            points = list(_window_points(process, paths, since, tally, group_by, each))
        for p in series_totals(points, since):
            _add(merged, p)
        if samples:
            timeline.extend(points)
    return Window(list(merged.values()), timeline)


def _add(merged: Dict[MergedKey, Point], p: Point) -> None:
    key = (p.service, p.version, p.function, p.tool, p.path, p.metric, p.labels, tuple(p.bounds))
    known = merged.get(key)
    if known is None:
        merged[key] = Point(process="*", service=p.service, version=p.version, function=p.function, tool=p.tool,
                            path=p.path, error_type=p.error_type, time=p.time, count=p.count, total=p.total,
                            buckets=list(p.buckets), bounds=list(p.bounds), metric=p.metric, labels=p.labels)
        return
    known.count += p.count
    known.total += p.total
    known.time = max(known.time, p.time)
    known.buckets = [a + b for a, b in zip(known.buckets, p.buckets)]


def _age(path: str) -> int:
    """0 for the file a process writes, n for its rotation ``.n`` (older)."""
    suffix = os.path.basename(path).split(".jsonl", 1)[1].lstrip(".")
    return int(suffix) if suffix.isdigit() else 0


def _processes(files: Sequence[str], tally: Skipped) -> Dict[str, List[str]]:
    """Each process's files, oldest first; files of a layout this reader does not know are
    left out (and said, as ``read_points`` says them)."""
    found: Dict[str, List[str]] = {}
    for path in files:
        if layout_of(path) > LAYOUT:
            tally.add(path, newer_layout(path))
            continue
        found.setdefault(os.path.basename(path).split(".jsonl")[0], []).append(path)
    for paths in found.values():
        paths.sort(key=_age, reverse=True)
    return found


def _window_points(process: str, paths: List[str], since: Optional[int], tally: Skipped,
                   group_by: str, samples: int = 0) -> Iterator[Point]:
    """The points of the process's newest usable line and, with ``since``, of its newest
    line at or before ``since``; with ``samples``, also of its newest line at or before
    each of that many times spread from the window's start (``since``, or its first line)
    to its newest line. A line met twice is read once."""
    maps = _Maps(paths)
    try:
        newest = maps.newest_points(process, tally, group_by)
        if newest is None:
            return
        time, points = newest
        yield from points
        if since is not None and time <= since:
            return
        wanted: List[int] = [since] if since is not None else []
        if samples:
            start = since if since is not None else maps.first_time()
            if start is not None and start < time:
                wanted += [start + (time - start) * k // samples for k in range(samples)]
        seen = set()
        for index, at in enumerate(wanted):
            found = maps.last_at_or_before(at)
            if found is None or found[:2] in seen:
                continue
            path, offset, data = found
            seen.add((path, offset))
            say: Callable[[str], None] = lambda reason, path=path: tally.add(path, reason)  # noqa: E731
            baseline = since is not None and index == 0  # its every series counts in the totals
            yield from (_usable(data, process, group_by, say) if baseline else _sampled(data, process, group_by, say)) or []
    finally:
        maps.close()


def _sampled(data: bytes, process: str, group_by: str, say: Callable[[str], None]) -> Optional[List[Point]]:
    """A sampled line's duration points, the one metric its chart draws: its object and
    the resource's decoded alone (half the line); a line of another shape (several
    resources, another writer's field order) is decoded whole."""
    try:
        text = data.decode("utf-8")
        at, key = text.find(_DURATION_START), text.find(_RESOURCE_KEY)
        if at >= 0 and key >= 0 and text.find(_RESOURCE_KEY, key + 1) < 0:
            resource, _ = _decoder.raw_decode(text, key + len(_RESOURCE_KEY))
            metric, _ = _decoder.raw_decode(text, at)
            request = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]}
            return list(_points_of(request, process, group_by, counts_only=True))
    except (ValueError, RecursionError, _WRONG_SHAPE):
        pass
    return _usable(data, process, group_by, say)


def _usable(data: bytes, process: str, group_by: str, say: Callable[[str], None],
            truncated: bool = False) -> Optional[List[Point]]:
    """The points of one line, or None after saying why it cannot be used (the reasons
    ``read_points`` gives, counted the same way)."""
    try:
        request = json.loads(data.decode("utf-8"))
    except RecursionError:
        say("lines of the wrong shape")
        return None
    except ValueError:  # includes UnicodeDecodeError
        say("truncated last line" if truncated else "lines that are not JSON")
        return None
    if not isinstance(request, dict):
        say("lines of the wrong shape")
        return None
    try:
        return list(_points_of(request, process, group_by))
    except _WRONG_SHAPE:
        say("lines of the wrong shape")
        return None


class _Maps:
    """A process's files, oldest first, mapped: only the lines looked at are read."""

    def __init__(self, paths: List[str]) -> None:
        self.paths = paths
        self._maps: Dict[str, Optional[mmap.mmap]] = {}

    def _map(self, path: str) -> Optional[mmap.mmap]:
        if path not in self._maps:
            try:
                with open(path, "rb") as fh:
                    self._maps[path] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # empty, or gone since the listing
                self._maps[path] = None
        return self._maps[path]

    def close(self) -> None:
        for mapped in self._maps.values():
            if mapped is not None:
                mapped.close()

    def newest_points(self, process: str, tally: Skipped, group_by: str) -> Optional[Tuple[int, List[Point]]]:
        """(time, points) of the newest usable line; the lines after it that are not usable
        (a last line cut short by a killed process, garbage) are skipped and said. Older
        files are looked into when the newest holds none (just rotated)."""
        for path in reversed(self.paths):
            mapped = self._map(path)
            if mapped is None:
                continue
            end = len(mapped)
            while end > 0:
                start = mapped.rfind(b"\n", 0, end - 1) + 1
                data = mapped[start:end].rstrip(b"\n")
                if data.strip():
                    truncated = end == len(mapped) and mapped[end - 1:end] != b"\n"
                    points = _usable(data, process, group_by, lambda reason: tally.add(path, reason), truncated)
                    if points is not None:
                        return _time_at(mapped, start) or 0, points
                end = start
        return None

    def first_time(self) -> Optional[int]:
        """The time of the process's oldest line still in its files."""
        for path in self.paths:
            mapped = self._map(path)
            if mapped is not None and len(mapped):
                return _time_at(mapped, 0)
        return None

    def last_at_or_before(self, since: int) -> Optional[Tuple[str, int, bytes]]:
        """(file, offset, line) of the newest line whose time is at or before ``since``:
        bisected in the newest file whose first line is (lines are in time order, one
        collection each)."""
        for path in reversed(self.paths):
            mapped = self._map(path)
            if mapped is None or not len(mapped):
                continue
            first = _time_at(mapped, 0)
            if first is None or first > since:
                continue  # this file starts after ``since``: the line is in an older one, if any is left
            start = _bisect(mapped, since)
            return path, start, mapped[start:_line_end(mapped, start)]
        return None


def _line_end(mapped: mmap.mmap, start: int) -> int:
    end = mapped.find(b"\n", start)
    return len(mapped) if end < 0 else end


def _time_at(mapped: mmap.mmap, start: int) -> Optional[int]:
    found = _TIME.search(mapped, start, _line_end(mapped, start))
    return int(found.group(1)) if found else None


def _bisect(mapped: mmap.mmap, since: int) -> int:
    """Where the last line of ``mapped`` whose time is at or before ``since`` starts, given that the
    line at offset 0 is. Invariant: the line starting at ``low`` qualifies; none starting
    at ``high`` or after does. A line whose time cannot be read counts as after."""
    low, high = 0, len(mapped)
    while True:
        middle = (low + high) // 2
        newline = mapped.find(b"\n", max(middle - 1, low), max(high - 1, low))
        if newline < 0:
            if middle - 1 <= low:
                break  # no line starts between low and high
            high = middle
            continue
        start = newline + 1
        time = _time_at(mapped, start) if start < len(mapped) else None
        if time is not None and time <= since:
            low = start
        else:
            high = start
    return low
