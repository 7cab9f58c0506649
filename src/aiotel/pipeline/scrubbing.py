"""What other instrumentations' telemetry carries out of the process: prompts and
completions of LLM calls, by default none; every other string through the redactor.

Three layers, so that no one of them has to be perfect:

1. The instrumentations are told so through their own configuration objects (never by
   writing the environment, which the program and its children would see): OpenInference's
   ``TraceConfig`` hides inputs, outputs and messages (``instrument_options``). The
   OpenTelemetry GenAI instrumentations record no content unless their own switch
   (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``) asks for it.
2. A switch the user set wins: one of OpenInference's ``OPENINFERENCE_HIDE_*`` variables,
   or the GenAI switch, decides for its convention, and layer 3 leaves that convention's
   content alone (``aiotel doctor`` says so).
3. A safety net at export (``scrubbed_span``, ``scrub_log_record``): the content
   attributes, span events and log bodies each convention defines are dropped, or, with
   ``AIOTEL_CAPTURE_LLM_CONTENT=redacted``, put through the redactor. Spans cannot be
   changed once they have ended, so for spans this is done on a copy in the exporter's
   thread; a log record can still be changed when it is emitted, so logs are scrubbed by
   the first log processor.

``AIOTEL_CAPTURE_LLM_CONTENT=true`` exports content as the instrumentations record it.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .. import semconv

GENAI = "genai"
OPENINFERENCE = "openinference"
DROP, REDACT, KEEP = "drop", "redact", "keep"

from ..config import GENAI_CONTENT_SWITCH as GENAI_SWITCH
from ..config import OPENINFERENCE_CONTENT_SWITCHES as OPENINFERENCE_SWITCHES

# Content as each convention spells it: exact attribute keys, and prefixes of the
# flattened ones (``llm.input_messages.0.message.content``).
_GENAI_KEYS = frozenset({"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                         "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.prompt", "gen_ai.completion"})
_GENAI_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.")
_OPENINFERENCE_KEYS = frozenset({"input.value", "output.value", "llm.prompts", "llm.prompt_template.variables",
                                 "llm.prompt_template.template", "reranker.query", "tool.parameters"})
_OPENINFERENCE_PREFIXES = ("llm.input_messages.", "llm.output_messages.", "llm.prompts.", "llm.choices.",
                           "embedding.embeddings.", "retrieval.documents.", "reranker.input_documents.",
                           "reranker.output_documents.", "message.content", "message.contents.",
                           "tool_call.function.arguments")
# GenAI events whose attributes or bodies carry messages (older conventions: span events;
# newer: log events).
CONTENT_EVENTS = frozenset({"gen_ai.content.prompt", "gen_ai.content.completion", "gen_ai.system.message",
                            "gen_ai.user.message", "gen_ai.assistant.message", "gen_ai.tool.message", "gen_ai.choice",
                            "gen_ai.client.inference.operation.details", "gen_ai.evaluation.result"})


def content_family(key: str) -> Optional[str]:
    """The convention whose content ``key`` is, or None when it is not content."""
    if key in _GENAI_KEYS or key.startswith(_GENAI_PREFIXES):
        return GENAI
    if key in _OPENINFERENCE_KEYS or key.startswith(_OPENINFERENCE_PREFIXES):
        return OPENINFERENCE
    return None


class ContentPolicy:
    """What the net does with each convention's content: drop, redact or keep."""

    def __init__(self, capture: str, user_switches: Mapping[str, str], redact: Callable[[str], str]) -> None:
        chosen = {"false": DROP, "redacted": REDACT, "true": KEEP}[capture]
        self.redact = redact
        self.user_switches = dict(user_switches)
        self.by_family = {
            GENAI: KEEP if GENAI_SWITCH in user_switches else chosen,
            OPENINFERENCE: KEEP if any(v in user_switches for v in OPENINFERENCE_SWITCHES.values()) else chosen,
        }

    def clean_attributes(self, attributes: Mapping[str, Any]) -> Tuple[Dict[str, Any], bool]:
        """Content dropped or redacted, every other string redacted; and whether anything changed."""
        clean: Dict[str, Any] = {}
        changed = False
        for key, value in attributes.items():
            family = content_family(key)
            action = self.by_family[family] if family is not None else REDACT
            if action == DROP:
                changed = True
                continue
            if action == REDACT:
                value = self._redacted(value)
                changed = changed or value is not attributes[key]
            clean[key] = value
        return clean, changed

    def event_action(self, name: str) -> str:
        return self.by_family[GENAI] if name in CONTENT_EVENTS else REDACT

    def _redacted(self, value: Any) -> Any:
        if isinstance(value, str):
            clean = self.redact(value)
            return value if clean == value else clean
        if isinstance(value, (tuple, list)) and any(isinstance(item, str) for item in value):
            items = tuple(self.redact(item) if isinstance(item, str) else item for item in value)
            return value if list(items) == list(value) else items
        return value


def instrument_options(distribution: Optional[str], policy: Optional[ContentPolicy]) -> Dict[str, Any]:
    """Keyword arguments for an instrumentor's ``instrument()`` that carry the content
    policy, through the instrumentation's own configuration object; {} when it has none."""
    if policy is None or not distribution or not distribution.startswith("openinference-instrumentation-"):
        return {}
    if policy.by_family[OPENINFERENCE] != DROP:
        return {}  # the user's switches (read by TraceConfig itself), or content opted in (redacted at export)
    try:
        from openinference.instrumentation import TraceConfig
    except Exception:
        return {}  # an OpenInference too old or too new: the net still drops its content
    # only the fields the user left unset: a field left None is read from its variable
    hide = {field: True for field, variable in OPENINFERENCE_SWITCHES.items() if variable not in policy.user_switches}
    try:
        return {"config": TraceConfig(**hide)}
    except TypeError:  # a field this release does not have: the ones it has
        import dataclasses

        known = {f.name for f in dataclasses.fields(TraceConfig)}
        return {"config": TraceConfig(**{k: v for k, v in hide.items() if k in known})}


def scrubbed_span(span: Any, policy: ContentPolicy) -> Any:
    """``span``, or a copy without the content the policy drops and with its other strings
    (attributes, event attributes, status) redacted."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Status

    attributes, changed = policy.clean_attributes(span.attributes or {})
    events = []
    for event in span.events:
        action = policy.event_action(event.name)
        if action == DROP:
            changed = True
            continue
        if action == KEEP:  # a content event, content opted in: as recorded
            events.append(event)
            continue
        clean, event_changed = policy.clean_attributes(event.attributes or {})
        if event_changed:
            changed = True
            event = Event(event.name, clean, event.timestamp)
        events.append(event)
    status = span.status
    if status.description:
        description = policy.redact(status.description)
        if description != status.description:
            changed = True
            status = Status(status.status_code, description)
    if not changed:
        return span
    return ReadableSpan(name=span.name, context=span.context, parent=span.parent, resource=span.resource,
                        attributes=attributes, events=events, links=span.links, kind=span.kind, status=status,
                        start_time=span.start_time, end_time=span.end_time,
                        instrumentation_scope=span.instrumentation_scope)


def scrub_log_record(record: Any, policy: ContentPolicy) -> None:
    """A log record as it is emitted (the SDK's ``log_record``): a GenAI content event's
    body dropped or redacted, content attributes as on spans."""
    name = getattr(record, "event_name", None) or (record.attributes or {}).get("event.name")
    if name in CONTENT_EVENTS:
        action = policy.by_family[GENAI]
        if action == DROP:
            record.body = None
        elif action == REDACT:
            record.body = _redacted_body(record.body, policy)
    if record.attributes:
        clean, changed = policy.clean_attributes(record.attributes)
        if changed:
            record.attributes = clean


def _redacted_body(body: Any, policy: ContentPolicy) -> Any:
    if isinstance(body, str):
        return policy.redact(body)
    if isinstance(body, Mapping):
        return {key: _redacted_body(value, policy) for key, value in body.items()}
    if isinstance(body, (list, tuple)):
        return [_redacted_body(value, policy) for value in body]
    return body


def scrubbing(exporter: Any, policy: ContentPolicy) -> Any:
    """``exporter``, other instrumentations' spans scrubbed before it sees them (in the
    exporter's thread; aiotel's own spans are redacted when made)."""
    export = exporter.export

    def scrubbed_export(spans: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            spans = [span if _own(span) else scrubbed_span(span, policy) for span in spans]
        except Exception:
            # never an export lost for want of scrubbing, never content let through for it
            spans = [span for span in spans if _own(span) or not _has_content(span)]
        return export(spans, *args, **kwargs)

    exporter.export = scrubbed_export
    return exporter


def _own(span: Any) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == semconv.AIOTEL_SCOPE


def _has_content(span: Any) -> bool:
    return any(content_family(key) for key in (span.attributes or {})) or any(
        event.name in CONTENT_EVENTS for event in span.events)


def content_policy(settings: Any) -> ContentPolicy:
    """The policy ``settings`` ask for (AIOTEL_CAPTURE_LLM_CONTENT and the switches the user set)."""
    from ..probes.redact import Redactor

    return ContentPolicy(settings.llm_content, settings.llm_content_switches, Redactor(settings.redact))
