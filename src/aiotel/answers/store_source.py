"""Answers from the embedded store: the numbers of ``aiotel report`` (one computation,
``store.rollup``), the provenance and failures of its spans (``store.details``).

Each question reads the store afresh: the store grows while the program runs, and the
readers take a few lines a process (``store.window``), not the whole store. Only
``slow_calls`` reads every span line of its window."""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Optional, Tuple

from ..store import rollup
from ..store.details import LATEST_ERRORS, Detail, read_spans, slowest_calls
from ..store.since import parse_since
from ..store.window import read_window
from . import BadArgument, SourceCannotAnswer
from .untrusted import quoted
from .versions import compared

MAX_LIMIT = 100


def iso(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).isoformat()


def since_ns(since: Optional[str]) -> Optional[int]:
    if since is None or since == "":
        return None
    try:
        return parse_since(since)
    except ValueError:
        raise BadArgument(f"since {since!r}: expected a duration such as 30m, 2h, 7d, or an ISO 8601 time") from None


def checked_limit(limit: Optional[int], default: int = 10) -> int:
    if limit is None:
        return default
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise BadArgument(f"limit {limit!r}: expected a whole number from 1 to {MAX_LIMIT}")
    return limit


def numbers(s: rollup.FunctionStats) -> Dict[str, Any]:
    """What list_functions gives of one function and version (the text report's columns)."""
    return {
        "function": s.function, "version": s.version, "file": s.path, "tool": s.tool, "calls": s.calls,
        "errors": s.errors, "error_rate": s.error_rate, "p50_seconds": s.quantile(0.5),
        "p95_seconds": s.quantile(0.95), "p99_seconds": s.quantile(0.99), "fallbacks": sum(s.fallbacks.values()),
        "none_rate": s.empty_rate,
    }


def version_detail(s: rollup.FunctionStats) -> Dict[str, Any]:
    """What function_detail gives of one version: the numbers, the latency buckets, errors,
    fallbacks and None returns by line, input shapes and memory (any source's records)."""
    entry = numbers(s)
    data = s.to_json()
    entry.update({
        "mean_seconds": s.mean,
        "latency": {"bounds_seconds": list(s.bounds), "bucket_counts": list(s.buckets)},
        "errors_by_type": data["error_types"], "fallbacks_by_line": data["fallbacks"],
        "none_returns_by_line": data["empty_results"], "input_shapes": data["inputs"],
        "errors_by_input": data["errors_by_input"], "memory": data["memory"],
    })
    return entry


def failure(function: str, f: Any) -> Dict[str, Any]:
    return {"time": iso(f.time), "function": function, "version": f.version, "exception_type": f.error_type,
            "message": quoted(f.message), "line": f.line, "trace_id": f.trace_id, "inputs": dict(f.inputs)}


class StoreSource:
    """The embedded store at ``path`` (the directory ``aiotel report`` reads)."""

    name = "store"

    def __init__(self, path: str) -> None:
        self.path = path

    # --- reading ---------------------------------------------------------------------

    def _files(self, signal: str) -> List[str]:
        if not os.path.isdir(self.path):
            raise SourceCannotAnswer(f"the store {self.path!r} does not exist or is not a directory")
        return rollup.store_files(self.path, signal)

    def _window(self, since: Optional[int], samples: int = 0) -> Tuple[List[rollup.FunctionStats], List[rollup.Point]]:
        files = self._files("metrics")
        if not files:
            raise SourceCannotAnswer(f"no metrics in the store {self.path!r} yet: run a program under aiotel-run first")
        try:
            totals, timeline = read_window(files, since, rollup.Skipped(), samples=samples)
        except OSError as exc:
            raise SourceCannotAnswer(f"the store {self.path!r} cannot be read: {exc.strerror or exc}") from None
        return rollup.summarize(totals, since), timeline

    def _details(self, wanted: Dict[str, int],
                 latest: int = LATEST_ERRORS) -> Tuple[Dict[str, Tuple[str, str]], Dict[str, Detail]]:
        try:
            return read_spans(self._files("traces"), wanted, rollup.Skipped(), latest)
        except OSError as exc:
            raise SourceCannotAnswer(f"the store's spans cannot be read: {exc.strerror or exc}") from None

    def _versions_seen(self) -> Dict[str, Tuple[int, int]]:
        """Each version's first and last export time (its processes' first and newest lines)."""
        _, timeline = self._window(None, samples=1)
        seen: Dict[str, Tuple[int, int]] = {}
        for p in timeline:
            first, last = seen.get(p.version, (p.time, p.time))
            seen[p.version] = (min(first, p.time), max(last, p.time))
        return seen

    # --- the questions ---------------------------------------------------------------

    def list_functions(self, since: Optional[str] = None, version: Optional[str] = None) -> Dict[str, Any]:
        start = since_ns(since)
        stats, _ = self._window(start)
        if version is not None:
            stats = [s for s in stats if s.version == version]
        _, details = self._details({s.function: 0 for s in stats})
        rows = []
        for s in stats:
            row = numbers(s)
            detail = details.get(s.function)
            row["line"] = detail.def_line if detail else None
            row["date"] = detail.provenance.get("aiotel.provenance.date") if detail else None
            rows.append(row)
        return {"source": self.name, "since": iso(start) if start is not None else None, "functions": rows}

    def function_detail(self, function: str) -> Dict[str, Any]:
        stats = [s for s in self._window(None)[0] if s.function == function]
        if not stats:
            raise BadArgument(f"function {function!r}: no calls of it in the store (list_functions names those seen)")
        commits, details = self._details({function: sum(s.errors for s in stats)})
        detail = details.get(function)
        versions = [version_detail(s) for s in stats]
        commit = commits.get(function)
        return {
            "source": self.name, "function": function,
            "provenance": dict(detail.provenance) if detail else {},
            "file": (detail.path if detail and detail.path else stats[-1].path),
            "line": detail.def_line if detail else None,
            "commit": {"sha": commit[0], "time": commit[1]} if commit else None,
            "versions": versions,
            "latest_errors": [failure(function, f) for f in (detail.failures if detail else [])],
        }

    def recent_errors(self, function: Optional[str] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        count = checked_limit(limit)
        stats = self._window(None)[0]
        if function is not None and not any(s.function == function for s in stats):
            raise BadArgument(f"function {function!r}: no calls of it in the store (list_functions names those seen)")
        wanted: Dict[str, int] = {}
        for s in stats:
            if function is None or s.function == function:
                wanted[s.function] = wanted.get(s.function, 0) + s.errors
        _, details = self._details({f: n for f, n in wanted.items() if n}, latest=count)
        found = [(f.time, name, f) for name, d in details.items() for f in d.failures]
        found.sort(key=lambda item: item[0], reverse=True)
        return {"source": self.name, "errors": [failure(name, f) for _, name, f in found[:count]]}

    def compare_versions(self, old: Optional[str] = None, new: Optional[str] = None) -> Dict[str, Any]:
        return compared(self.name, self._window(None)[0], old, new, self._versions_seen)

    def slow_calls(self, function: Optional[str] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        count = checked_limit(limit)
        try:
            calls = slowest_calls(self._files("traces"), function, count, None, rollup.Skipped())
        except OSError as exc:
            raise SourceCannotAnswer(f"the store's spans cannot be read: {exc.strerror or exc}") from None
        return {"source": self.name, "calls": [
            {"function": c.function, "version": c.version, "seconds": c.seconds, "ended": iso(c.end),
             "trace_id": c.trace_id, "span_id": c.span_id, "error_type": c.error_type or None} for c in calls]}
