"""LLM calls made inside AI-generated functions: recognised on other instrumentations'
spans, tallied per function for ``aiotel.function.gen_ai.*``.

Two conventions are read: the OpenTelemetry GenAI conventions (``gen_ai.operation.name``,
``gen_ai.usage.*``: opentelemetry-instrumentation-openai-v2 and the other official ones)
and OpenInference's (``openinference.span.kind``, ``llm.token_count.*``: Phoenix's).
A call is attributed to the function its span names (``aiotel.function.*``, set when it
started: ``foreign_spans``); a call outside every marked function is not tallied.

Counted when its span ends, so every call is counted only if its span is recorded:
``RecordLLMCalls`` turns a sampler's "drop" for an LLM span started inside a marked call
into "record only" (recorded, tallied here, never exported). When two instrumentations
record the same call as nested LLM spans (a framework's span around the client's), the
innermost is counted, and its LLM parent adds only the token counts the innermost lacked.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import StatusCode

from .. import semconv
from ..probes import frames

GENAI_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
OPENINFERENCE_KINDS = frozenset({"LLM", "EMBEDDING"})

# The GenAI conventions' recommended bucket bounds for gen_ai.client.token.usage and
# gen_ai.client.operation.duration, so both histograms compare with the client's own.
TOKEN_BOUNDS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BOUNDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_DURATION_BOUNDS_NS = tuple(int(bound * 1e9) for bound in DURATION_BOUNDS)

# spans of LLM calls already counted, by their parent's span id: that parent, if it is an
# LLM span too (a wrapper of the same call), is not counted again; bounded
_MAX_COUNTED_PARENTS = 10_000


def is_llm_start(attributes: Optional[Mapping[str, Any]]) -> bool:
    """Whether a span about to start is an LLM call, from the attributes it starts with
    (both conventions set these before the call: the sampler sees them)."""
    if not attributes:
        return False
    return (attributes.get(semconv.GEN_AI_OPERATION_NAME) in GENAI_OPERATIONS
            or attributes.get(semconv.OPENINFERENCE_SPAN_KIND) in OPENINFERENCE_KINDS)


def _request_model(attributes: Mapping[str, Any]) -> str:
    model = attributes.get(semconv.GEN_AI_REQUEST_MODEL)
    if model:
        return str(model)
    parameters = attributes.get("llm.invocation_parameters")  # OpenInference: the request, as JSON
    if isinstance(parameters, str) and '"model"' in parameters:
        try:
            model = json.loads(parameters).get("model")
        except (ValueError, AttributeError):
            model = None
        if isinstance(model, str) and model:
            return model
    return str(attributes.get(semconv.GEN_AI_RESPONSE_MODEL) or attributes.get("llm.model_name") or "unknown")


def _provider(attributes: Mapping[str, Any]) -> str:
    for key in (semconv.GEN_AI_PROVIDER_NAME, "gen_ai.system", "llm.provider", "llm.system"):
        value = attributes.get(key)
        if value:
            return str(value)
    return "unknown"


def _tokens(attributes: Mapping[str, Any], *keys: str) -> Optional[int]:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return int(value)
    return None


class LLMCall:
    """What one ended LLM span says: whose call, which model, tokens, time, outcome."""

    __slots__ = ("function", "model", "provider", "input_tokens", "output_tokens", "duration_ns", "error_type")

    def __init__(self, function: Dict[str, Any], model: str, provider: str, input_tokens: Optional[int],
                 output_tokens: Optional[int], duration_ns: int, error_type: Optional[str]) -> None:
        self.function = function
        self.model = model
        self.provider = provider
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.duration_ns = duration_ns
        self.error_type = error_type


def llm_call(span: Any) -> Optional[LLMCall]:
    """The LLM call an ended span records, or None (not an LLM span, or made outside every
    marked function)."""
    attributes = span.attributes or {}
    name = attributes.get(semconv.FUNCTION_NAME)
    if not name:
        return None
    genai = attributes.get(semconv.GEN_AI_OPERATION_NAME) in GENAI_OPERATIONS
    if not genai and attributes.get(semconv.OPENINFERENCE_SPAN_KIND) not in OPENINFERENCE_KINDS:
        return None
    function = {
        semconv.CODE_FUNCTION_NAME: name,
        semconv.PROVENANCE_TOOL: attributes.get(semconv.FUNCTION_TOOL, "unknown"),
        semconv.CODE_FILE_PATH: attributes.get(semconv.FUNCTION_FILE, ""),
    }
    error_type = None
    if span.status.status_code is StatusCode.ERROR:
        error_type = str(attributes.get(semconv.ERROR_TYPE) or "_OTHER")
    start, end = span.start_time or 0, span.end_time or 0
    return LLMCall(
        function, _request_model(attributes), _provider(attributes),
        _tokens(attributes, semconv.GEN_AI_USAGE_INPUT_TOKENS, "llm.token_count.prompt"),
        _tokens(attributes, semconv.GEN_AI_USAGE_OUTPUT_TOKENS, "llm.token_count.completion"),
        max(end - start, 0), error_type,
    )


def _bucket(bounds: Sequence[int], value: int) -> int:
    for index, bound in enumerate(bounds):
        if value <= bound:
            return index
    return len(bounds)


class Tally:
    """Running totals per function, model, provider and outcome: each histogram's bucket
    counts then its sum, as ``pipeline.metrics`` reads them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.durations: Dict[Tuple[Any, ...], List[int]] = {}
        self.tokens: Dict[Tuple[Any, ...], List[int]] = {}

    def add(self, call: LLMCall, count_call: bool = True, tokens: Tuple[bool, bool] = (True, True)) -> None:
        """One call: its duration (unless ``count_call`` is False) and the token counts
        ``tokens`` says (input, output) to take."""
        function = call.function
        key = (function[semconv.CODE_FUNCTION_NAME], function[semconv.PROVENANCE_TOOL],
               function[semconv.CODE_FILE_PATH], call.model, call.provider)
        with self.lock:
            if count_call:
                durations = self.durations.setdefault(key + (call.error_type,), [0] * (len(DURATION_BOUNDS) + 2))
                durations[_bucket(_DURATION_BOUNDS_NS, call.duration_ns)] += 1
                durations[-1] += call.duration_ns
            for kind, count, take in (("input", call.input_tokens, tokens[0]), ("output", call.output_tokens, tokens[1])):
                if count is not None and take:
                    series = self.tokens.setdefault(key + (kind,), [0] * (len(TOKEN_BOUNDS) + 2))
                    series[_bucket(TOKEN_BOUNDS, count)] += 1
                    series[-1] += count

    def duration_series(self) -> Iterator[Tuple[Tuple[Any, ...], Dict[str, Any], List[int]]]:
        with self.lock:
            items = [(key, list(values)) for key, values in self.durations.items()]
        for key, values in items:
            attributes = _attributes(key)
            if key[5] is not None:
                attributes[semconv.ERROR_TYPE] = key[5]
            yield key, attributes, values

    def token_series(self) -> Iterator[Tuple[Tuple[Any, ...], Dict[str, Any], List[int]]]:
        with self.lock:
            items = [(key, list(values)) for key, values in self.tokens.items()]
        for key, values in items:
            attributes = _attributes(key)
            attributes[semconv.GEN_AI_TOKEN_TYPE] = key[5]
            yield key, attributes, values


def _attributes(key: Tuple[Any, ...]) -> Dict[str, Any]:
    return {semconv.CODE_FUNCTION_NAME: key[0], semconv.PROVENANCE_TOOL: key[1], semconv.CODE_FILE_PATH: key[2],
            semconv.GEN_AI_REQUEST_MODEL: key[3], semconv.GEN_AI_PROVIDER_NAME: key[4]}


TALLY = Tally()


def reset_after_fork() -> None:
    """A forked child counts its own calls, from zero."""
    global TALLY
    TALLY = Tally()
    _counted_parents.clear()


_counted_parents: Dict[int, LLMCall] = {}


class LLMCallProcessor(SpanProcessor):
    """Tallies each ended LLM span made inside a marked function (recorded or record-only)."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        try:
            inner = _counted_parents.pop(span.get_span_context().span_id, None)
            call = llm_call(span)
            if call is None:
                return
            if inner is not None:  # a wrapper of a call counted already: only the tokens that one lacked
                TALLY.add(call, count_call=False, tokens=(inner.input_tokens is None, inner.output_tokens is None))
                return
            TALLY.add(call)
            parent = span.parent
            if parent is not None and not parent.is_remote and len(_counted_parents) < _MAX_COUNTED_PARENTS:
                _counted_parents[parent.span_id] = call
        except Exception:
            pass  # a tally is never worth a span: the span goes on as it was

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RecordLLMCalls(Sampler):
    """The sampler in place, except that an LLM span it would drop, started inside a
    marked call, is recorded without being sampled: its call is tallied, nothing is
    exported, and the trace decision it propagates is still "not sampled"."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(self, parent_context: Optional[Any], trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None, trace_state: Any = None) -> SamplingResult:
        result = self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is Decision.DROP and is_llm_start(attributes) and frames.innermost_probe() is not None:
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordLLMCalls{{{self.inner.get_description()}}}"
