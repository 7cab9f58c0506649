"""Finished spans as one OTLP/JSON line, written directly: the text that encoding them as
protobuf (``encode_spans``), then ``MessageToDict`` and hex ids (``writer.otlp_json``)
gives, byte for byte, at about a fifth of the cost (105 µs a span that way; the
store's writer thread could not keep up with a few thousand spans a second).

Fields come in protobuf field order with proto3's JSON rules: fields at their default are
left out, except inside ``AnyValue``'s oneof; 64-bit integers are strings. A value this
module does not spell exactly as protobuf would (a non-finite float, an integer outside
int64, a string that is not valid UTF-8, any other type) raises ``Unusual``, and the
writer encodes that batch the slow way. ``tests/store/test_span_json.py`` holds the two
encoders to the same text.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Sequence

_INT64 = (-(2**63), 2**63 - 1)
# SpanFlags: the parent's is-remote bit is known (always), and set when it is remote
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


class Unusual(ValueError):
    """A value whose protobuf spelling this encoder does not reproduce."""


def spans_line(spans: Sequence[Any]) -> str:
    """The OTLP/JSON export request of ``spans`` (SDK ``ReadableSpan``s), no newline."""
    grouped: Dict[Any, Dict[Any, List[dict]]] = {}
    for span in spans:
        grouped.setdefault(span.resource, {}).setdefault(span.instrumentation_scope or None, []).append(_span(span))
    resource_spans = []
    for resource, scopes in grouped.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            entry: Dict[str, Any] = {"scope": _scope(scope), "spans": encoded}
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        entry = {"resource": _with_attributes({}, resource.attributes), "scopeSpans": scope_spans}
        if resource.schema_url:
            entry["schemaUrl"] = resource.schema_url
        resource_spans.append(entry)
    return json.dumps({"resourceSpans": resource_spans} if resource_spans else {}, separators=(",", ":"))


def _span(span: Any) -> dict:
    context = span.get_span_context()
    out: Dict[str, Any] = {"traceId": f"{context.trace_id:032x}", "spanId": f"{context.span_id:016x}"}
    if context.trace_state:
        out["traceState"] = ",".join(f"{key}={value}" for key, value in context.trace_state.items())
    parent = span.parent
    if parent:
        out["parentSpanId"] = f"{parent.span_id:016x}"
    if span.name:
        out["name"] = _text(span.name)
    kind = span.kind.value + 1  # the SDK's INTERNAL is 0, OTLP's SPAN_KIND_INTERNAL 1
    out["kind"] = kind
    if span.start_time:
        out["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        out["endTimeUnixNano"] = str(span.end_time)
    _with_attributes(out, span.attributes)
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        out["events"] = [_event(event) for event in span.events]
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        out["links"] = [_link(link) for link in span.links]
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    status = span.status
    if status is not None:
        encoded: Dict[str, Any] = {}
        if status.description:
            encoded["message"] = _text(status.description)
        if status.status_code.value:
            encoded["code"] = status.status_code.value
        out["status"] = encoded
    out["flags"] = _flags(parent)
    return out


def _flags(context: Optional[Any]) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if context is not None and context.is_remote else 0)


def _event(event: Any) -> dict:
    out: Dict[str, Any] = {}
    if event.timestamp:
        out["timeUnixNano"] = str(event.timestamp)
    if event.name:
        out["name"] = _text(event.name)
    _with_attributes(out, event.attributes)
    if event.dropped_attributes:
        out["droppedAttributesCount"] = event.dropped_attributes
    return out


def _link(link: Any) -> dict:
    out: Dict[str, Any] = {"traceId": f"{link.context.trace_id:032x}", "spanId": f"{link.context.span_id:016x}"}
    _with_attributes(out, link.attributes)
    if link.dropped_attributes:
        out["droppedAttributesCount"] = link.dropped_attributes
    out["flags"] = _flags(link.context)
    return out


def _scope(scope: Optional[Any]) -> dict:
    out: Dict[str, Any] = {}
    if scope is None:
        return out
    if scope.name:
        out["name"] = _text(scope.name)
    if scope.version:
        out["version"] = _text(scope.version)
    return _with_attributes(out, scope.attributes)


def _with_attributes(out: dict, attributes: Any) -> dict:
    if attributes:
        out["attributes"] = [_key_value(str(key), value) for key, value in attributes.items()]
    return out


def _key_value(key: str, value: Any) -> dict:
    return {"key": _text(key), "value": _value(value)} if key else {"value": _value(value)}


def _value(value: Any) -> dict:
    kind = type(value)
    if kind is str:
        return {"stringValue": _text(value)}
    if kind is bool:
        return {"boolValue": value}
    if kind is int:
        if not _INT64[0] <= value <= _INT64[1]:
            raise Unusual("an integer outside int64")
        return {"intValue": str(value)}
    if kind is float:
        if not math.isfinite(value):
            raise Unusual("a float that is not finite")
        return {"doubleValue": value}
    if value is None:
        return {}
    if kind in (tuple, list):
        return {"arrayValue": {"values": [_value(item) for item in value]} if value else {}}
    raise Unusual(f"a value of type {kind.__name__}")


def _text(value: str) -> str:
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: protobuf refuses it
            raise Unusual("a string that is not valid UTF-8") from None
    return value
