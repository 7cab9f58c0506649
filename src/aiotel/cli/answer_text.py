"""Each answer as readable text: what an MCP client shows beside the structured result.
Recorded exception text is rendered by ``untrusted.readable`` only."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..answers.untrusted import readable
from .units import human_bytes_delta, human_seconds


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _where(row: Dict[str, Any]) -> str:
    return f"{row.get('file') or '?'}:{row['line']}" if row.get("line") else str(row.get("file") or "?")


def list_functions(answer: Dict[str, Any]) -> str:
    rows: List[Dict[str, Any]] = answer["functions"]
    if not rows:
        return f"No AI-generated function was called in this window (source: {answer['source']})."
    lines = [f"{len(rows)} AI-generated function version(s) (source: {answer['source']}"
             + (f", since {answer['since']})" if answer.get("since") else ")")]
    for r in rows:
        lines.append(
            f"- {r['function']} [{r['version']}] at {_where(r)}, by {r['tool'] or '?'}"
            + (f" ({r['date']})" if r.get("date") else "")
            + f": {r['calls']} calls, {r['errors']} errors ({_percent(r['error_rate'])}), p50 {human_seconds(r['p50_seconds'])}"
            f", p95 {human_seconds(r['p95_seconds'])}, p99 {human_seconds(r['p99_seconds'])}, {r['fallbacks']} fallbacks, "
            f"None {_percent(r['none_rate'])}")
    return "\n".join(lines)


def function_detail(answer: Dict[str, Any]) -> str:
    where = _where(answer)
    lines = [f"{answer['function']} at {where} (source: {answer['source']})"]
    for key, value in sorted(answer["provenance"].items()):
        lines.append(f"  {key[len('aiotel.'):] if key.startswith('aiotel.') else key}: {value}")
    if answer.get("commit"):
        lines.append(f"  commit: {answer['commit']['sha']} ({answer['commit']['time']})")
    for v in answer["versions"]:
        lines.append(f"version {v['version']}: {v['calls']} calls, {v['errors']} errors ({_percent(v['error_rate'])}), "
                     f"p50 {human_seconds(v['p50_seconds'])}, p95 {human_seconds(v['p95_seconds'])}, "
                     f"p99 {human_seconds(v['p99_seconds'])}")
        for kind, count in v["errors_by_type"].items():
            lines.append(f"  raised {kind}: {count}")
        for f in v["fallbacks_by_line"]:
            lines.append(f"  fallback at line {f['line']} caught {f['exception.type']}: {f['count']}")
        for r in v["none_returns_by_line"]:
            lines.append(f"  returned None at line {r['line']}: {r['count']}")
        for shape in v["input_shapes"]:
            lines.append(f"  input {shape['parameter']}: {shape['type']} in {shape['calls']} calls")
        for finding in v["errors_by_input"]:
            lines.append(f"  {finding['text']}")
        memory = v.get("memory")
        if memory:
            lines.append(f"  resident memory across {memory['recorded_calls']} recorded calls: mean "
                         f"{human_bytes_delta(memory['mean_rss_delta_bytes'])}")
    if answer.get("latest_errors"):
        lines.append("latest errors:")
        lines += [_error_line(e) for e in answer["latest_errors"]]
    elif answer.get("not_from_this_source"):
        lines.append(f"not from {answer['source']}: {answer['not_from_this_source']}")
    return "\n".join(lines)


def _error_line(e: Dict[str, Any]) -> str:
    shapes = ", ".join(f"{k}={v}" for k, v in sorted(e.get("inputs", {}).items()))
    return (f"- {e['time']} {e['function']} [{e['version']}] {e['exception_type']} at line {e['line'] or '?'}, "
            f"trace {e['trace_id']}" + (f", inputs {shapes}" if shapes else "") + f": {readable(e['message'])}")


def recent_errors(answer: Dict[str, Any]) -> str:
    if not answer["errors"]:
        return "No failed call is recorded."
    return "\n".join([f"{len(answer['errors'])} latest failed call(s), newest first:"]
                     + [_error_line(e) for e in answer["errors"]])


def compare_versions(answer: Dict[str, Any]) -> str:
    lines = [f"{answer['old']} -> {answer['new']} ({answer['chosen_by']}; source: {answer['source']})"]
    for c in answer["functions"]:
        flags = [name for name, on in (("slower", c["slower"]), ("more errors", c["more_errors"]),
                                       ("more fallbacks", c["more_fallbacks"])) if on]
        ratio = "-" if c["latency_ratio"] is None else f"{c['latency_ratio']:.2f}x"
        lines.append(f"- {c['function']}: {c['old_calls']}/{c['new_calls']} calls, mean latency {ratio}, error rate "
                     f"{_percent(c['old_error_rate'])} -> {_percent(c['new_error_rate'])}"
                     + (f"; FLAGGED: {', '.join(flags)}" if flags else ""))
        for drift in c.get("input_drift", []):
            lines.append(f"  inputs changed: {drift['text']}")
    if not answer["functions"]:
        lines.append("No function was called under both versions.")
    return "\n".join(lines)


def slow_calls(answer: Dict[str, Any]) -> str:
    if not answer["calls"]:
        return "No recorded call."
    return "\n".join([f"{len(answer['calls'])} slowest recorded call(s):"] + [
        f"- {human_seconds(c['seconds'])} {c['function']} [{c['version']}] ended {c['ended']}, trace {c['trace_id']}"
        + (f", raised {c['error_type']}" if c["error_type"] else "") for c in answer["calls"]])
