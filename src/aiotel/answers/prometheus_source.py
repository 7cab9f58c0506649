"""Answers from Prometheus (a fleet's metrics), through its HTTP API.

The numbers are rebuilt as the store's records (``rollup.FunctionStats``) from PromQL over
aiotel's series, then go through the same code: quantiles interpolated in the buckets
as Prometheus' ``histogram_quantile`` does, flags as ``report --compare`` raises them.

The window: each series' latest value in it (a process's cumulative total), less, with
``since``, its value when the window began; processes are summed. Without ``since``, the
last 7 days. A counter that reset inside the window (a process that restarted under the
same labels) counts from its reset. Versions come from the series' ``service_version``
label, which the collector path puts there; without it every series is version
"unknown". Spans are not in Prometheus: what only spans tell (latest errors, slowest
calls, marker fields besides the tool) needs the store.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

from ..store import rollup
from . import BadArgument, SourceCannotAnswer
from .store_source import iso, numbers, since_ns, version_detail
from .versions import compared

DEFAULT_RANGE_S = 7 * 86400
TIMEOUT_S = 15.0
BY = "code_function_name, aiotel_provenance_tool, code_file_path, service_version"
SPANS_NEEDED = "{what} needs spans: run aiotel mcp on the embedded store (--store) rather than --prometheus"

Sample = Tuple[Dict[str, str], float]


def _buckets(steps: List[Tuple[float, float]]) -> Tuple[List[float], List[int]]:
    """Prometheus' cumulative ``le`` buckets as the store's: bounds and a count per bucket."""
    steps = sorted(steps)
    counts, previous = [], 0.0
    for _, value in steps:
        counts.append(round(value - previous))
        previous = value
    return [le for le, _ in steps if not math.isinf(le)], counts


class PrometheusSource:
    """Prometheus' HTTP API at ``url`` (for example http://127.0.0.1:9090)."""

    name = "prometheus"

    def __init__(self, url: str, now: Optional[float] = None) -> None:
        self.url = url.rstrip("/")
        self.now = now  # evaluation time (s); None: Prometheus' now

    # --- PromQL ----------------------------------------------------------------------

    def query(self, expr: str) -> List[Sample]:
        params = {"query": expr}
        if self.now is not None:
            params["time"] = f"{self.now:.3f}"
        request = urllib.request.Request(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}",
                                         headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise SourceCannotAnswer(f"Prometheus at {self.url} answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceCannotAnswer(f"Prometheus at {self.url} cannot be read: {reason}") from None
        if body.get("status") != "success":
            raise SourceCannotAnswer(f"Prometheus at {self.url}: {body.get('error', 'query failed')}")
        return [(dict(item.get("metric", {})), float(item["value"][1])) for item in body["data"]["result"]]

    @staticmethod
    def _window(series: str, range_s: int, since: bool) -> str:
        """Each series' amount in the window (see the module's docstring)."""
        latest = f"last_over_time({series}[{range_s}s])"
        if not since:
            return latest
        return f"({latest} - (last_over_time({series}[5m] offset {range_s}s) or {latest} * 0))"

    def _range(self, since: Optional[int]) -> Tuple[int, bool]:
        if since is None:
            return DEFAULT_RANGE_S, False
        now = self.now if self.now is not None else time.time()
        seconds = int(math.ceil(now - since / 1e9))
        if seconds < 1:
            raise BadArgument("since: a time in the future")
        return seconds, True

    # --- the numbers -----------------------------------------------------------------

    def stats(self, since: Optional[int] = None) -> List[rollup.FunctionStats]:
        """The text report's records, per function and version, from Prometheus."""
        range_s, windowed = self._range(since)

        def summed(series: str, by: str = BY) -> List[Sample]:
            return self.query(f"sum by ({by}) ({self._window(series, range_s, windowed)})")

        entries: Dict[Tuple[str, str], rollup.FunctionStats] = {}

        def entry(labels: Dict[str, str]) -> rollup.FunctionStats:
            key = (labels.get("code_function_name", ""), labels.get("service_version") or rollup.UNKNOWN_VERSION)
            if key not in entries:
                entries[key] = rollup.FunctionStats(key[0], key[1], labels.get("aiotel_provenance_tool", ""),
                                                    labels.get("code_file_path", ""))
            return entries[key]

        for labels, value in summed("aiotel_function_duration_seconds_count"):
            entry(labels).calls += round(value)
        for labels, value in summed('aiotel_function_duration_seconds_count{error_type!=""}', BY + ", error_type"):
            found = entry(labels)
            found.errors += round(value)
            found.error_types[labels.get("error_type", "")] += round(value)
        for labels, value in summed("aiotel_function_duration_seconds_sum"):
            entry(labels).total_seconds += value
        cumulative: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
        for labels, value in summed("aiotel_function_duration_seconds_bucket", BY + ", le"):
            found = entry(labels)
            cumulative.setdefault((found.function, found.version), []).append((float(labels["le"]), value))
        for key, steps in cumulative.items():
            entries[key].bounds, entries[key].buckets = _buckets(steps)
        for labels, value in summed("aiotel_function_fallbacks_total", BY + ", code_line_number, exception_type"):
            line = labels.get("code_line_number", "")
            entry(labels).fallbacks[(int(line) if line.isdigit() else line, labels.get("exception_type", ""))] += round(value)
        for labels, value in summed("aiotel_function_empty_results_total", BY + ", code_line_number"):
            line = labels.get("code_line_number", "")
            entry(labels).empty_results[int(line) if line.isdigit() else line] += round(value)
        for labels, value in summed("aiotel_function_input_types_total", BY + ", aiotel_input_parameter, aiotel_input_type"):
            shape = entry(labels).inputs.setdefault(
                (labels.get("aiotel_input_parameter", ""), labels.get("aiotel_input_type", "")), rollup.InputShape())
            shape.calls += round(value)
        sizes: Dict[Tuple[str, str, str, str], List[Tuple[float, float]]] = {}
        shape_by = BY + ", aiotel_input_parameter, aiotel_input_type"
        for labels, value in summed("aiotel_function_input_size_bucket", shape_by + ", le"):
            found = entry(labels)
            key = (found.function, found.version, labels.get("aiotel_input_parameter", ""),
                   labels.get("aiotel_input_type", ""))
            sizes.setdefault(key, []).append((float(labels["le"]), value))
        for labels, value in summed("aiotel_function_input_size_sum", shape_by):
            found = entry(labels)
            found.inputs.setdefault((labels.get("aiotel_input_parameter", ""), labels.get("aiotel_input_type", "")),
                                    rollup.InputShape()).total_length += value
        for (function, version, parameter, kind), steps in sizes.items():
            shape = entries[(function, version)].inputs.setdefault((parameter, kind), rollup.InputShape())
            shape.bounds, shape.buckets = _buckets(steps)
            shape.sized = sum(shape.buckets)
        for labels, value in summed("aiotel_function_input_errors_total", BY + ", error_type, aiotel_input_parameter, "
                                    "aiotel_input_type, aiotel_input_length"):
            entry(labels).failed_inputs[(labels.get("error_type", ""), labels.get("aiotel_input_parameter", ""),
                                         labels.get("aiotel_input_type", ""), labels.get("aiotel_input_length", ""))] += round(value)
        llm_by = BY + ", gen_ai_request_model, gen_ai_provider_name"

        def usage(labels: Dict[str, str]) -> rollup.LLMUsage:
            return entry(labels).llm.setdefault(
                (labels.get("gen_ai_request_model", ""), labels.get("gen_ai_provider_name", "")), rollup.LLMUsage())

        for labels, value in summed("aiotel_function_gen_ai_operation_duration_seconds_count", llm_by):
            usage(labels).calls += round(value)
        for labels, value in summed('aiotel_function_gen_ai_operation_duration_seconds_count{error_type!=""}', llm_by):
            usage(labels).errors += round(value)
        for labels, value in summed("aiotel_function_gen_ai_operation_duration_seconds_sum", llm_by):
            usage(labels).seconds += value
        for labels, value in summed("aiotel_function_gen_ai_token_usage_sum", llm_by + ", gen_ai_token_type"):
            kind = labels.get("gen_ai_token_type")
            if kind == "input":
                usage(labels).input_tokens += round(value)
            elif kind == "output":
                usage(labels).output_tokens += round(value)
        return sorted((s for s in entries.values() if s.calls and s.function),
                      key=lambda s: (s.function, s.version))

    def versions_seen(self) -> Dict[str, Tuple[int, int]]:
        """Each version's first and last scrape in the last 7 days, at a minute's resolution."""
        present = f"timestamp(sum by (service_version) (aiotel_function_duration_seconds_count))[{DEFAULT_RANGE_S}s:1m]"
        first = {labels.get("service_version") or rollup.UNKNOWN_VERSION: value
                 for labels, value in self.query(f"min_over_time({present})")}
        last = {labels.get("service_version") or rollup.UNKNOWN_VERSION: value
                for labels, value in self.query(f"max_over_time({present})")}
        return {version: (int(first[version]), int(last.get(version, first[version]))) for version in first}

    # --- the questions ---------------------------------------------------------------

    def list_functions(self, since: Optional[str] = None, version: Optional[str] = None) -> Dict[str, Any]:
        start = since_ns(since)
        rows = []
        for s in self.stats(start):
            if version is None or s.version == version:
                row = numbers(s)
                row["line"] = row["date"] = None  # not in the metrics: the store's spans have them
                rows.append(row)
        return {"source": self.name, "since": iso(start) if start is not None else None, "functions": rows,
                "window": "since" if start is not None else "the last 7 days"}

    def function_detail(self, function: str) -> Dict[str, Any]:
        stats = [s for s in self.stats() if s.function == function]
        if not stats:
            raise BadArgument(f"function {function!r}: no series of it in Prometheus over the last 7 days")
        versions = [version_detail(s) for s in stats]  # memory: None, it is not read from Prometheus
        return {"source": self.name, "function": function,
                "provenance": {"aiotel.provenance.tool": stats[-1].tool}, "file": stats[-1].path, "line": None,
                "commit": None, "versions": versions, "latest_errors": None,
                "not_from_this_source": "marker fields besides the tool, the commit, the latest errors: they are in "
                                        "spans (aiotel mcp --store)"}

    def recent_errors(self, function: Optional[str] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        raise SourceCannotAnswer(SPANS_NEEDED.format(what="recent_errors"))

    def slow_calls(self, function: Optional[str] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        raise SourceCannotAnswer(SPANS_NEEDED.format(what="slow_calls"))

    def compare_versions(self, old: Optional[str] = None, new: Optional[str] = None) -> Dict[str, Any]:
        return compared(self.name, self.stats(), old, new, self.versions_seen)
