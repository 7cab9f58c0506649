"""The span processor that ties other instrumentations' spans to the AI function that made
them, and tells the probes when a trace's local root ends.

A span started by anything else on aiotel's tracer provider (an LLM or HTTP client, a DB
driver) while a marked function runs gets ``aiotel.function.*``: the innermost marked
function on the thread's stack, whether or not that call got a span of its own. Where the
stack cannot show it (a task that runs after an ``await``), the span in the parent
context that already names one is used. The cost is paid when such a span starts, never
per marked call.

What those spans carry out of the process (LLM content, other strings through the
redactor) is decided at export, by ``scrubbing``.
"""

from __future__ import annotations

from typing import Any, Optional

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import SpanProcessor

from .. import semconv
from ..probes import frames, traces
from ..probes.state import caller_identity

AIOTEL_SCOPE = semconv.AIOTEL_SCOPE
_IDENTITY = (semconv.FUNCTION_NAME, semconv.FUNCTION_FILE, semconv.FUNCTION_LINE, semconv.FUNCTION_TOOL)


def _inherited(parent_context: Any) -> Optional[dict]:
    """The identity the parent span carries: an aiotel span's own, or the one a foreign
    parent was given."""
    parent = trace_api.get_current_span(parent_context)
    attributes = getattr(parent, "attributes", None)
    if not attributes:
        return None
    if semconv.FUNCTION_NAME in attributes:
        return {key: attributes[key] for key in _IDENTITY if key in attributes}
    scope = getattr(parent, "instrumentation_scope", None)
    if scope is not None and scope.name == AIOTEL_SCOPE and semconv.CODE_FUNCTION_NAME in attributes:
        return caller_identity(attributes)
    return None


class ForeignSpanProcessor(SpanProcessor):
    """``openinference_kinds``: OpenInference is installed, so Phoenix reads the traces:
    aiotel's own spans get ``openinference.span.kind = CHAIN`` (a step, its LLM calls
    below it) instead of showing as kind UNKNOWN."""

    def __init__(self, openinference_kinds: bool = False) -> None:
        self.openinference_kinds = openinference_kinds

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        try:
            scope = span.instrumentation_scope
            if scope is not None and scope.name == AIOTEL_SCOPE:
                if self.openinference_kinds:
                    span.set_attribute(semconv.OPENINFERENCE_SPAN_KIND, "CHAIN")
                return  # aiotel's own span: it names its function already
            context = span.get_span_context()
            state = traces.find(context.trace_id)
            if state is not None and span.parent is not None:
                state.parents[context.span_id] = span.parent.span_id
            probe = frames.innermost_probe()
            identity = probe.caller_attributes if probe is not None else _inherited(parent_context)
            if identity:
                span.set_attributes(identity)
        except Exception:
            pass  # attribution is a courtesy: the span goes on as it was

    def on_end(self, span: Any) -> None:
        try:
            parent = span.parent
            if parent is None or parent.is_remote:  # the trace's local root: nothing more of it here
                traces.ended(span.get_span_context().trace_id)
        except Exception:
            pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def openinference_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("openinference.semconv") is not None
    except (ImportError, ValueError):
        return False
