"""Every attribute, event and metric name aiotel emits: a public contract that dashboards,
alert rules and `aiotel report` depend on, spelled once here with what it means.

Names from the OpenTelemetry semantic conventions keep their spec meaning; the
``aiotel.*`` names are our own. Pure constants: importing this costs nothing.
"""

AIOTEL_SCOPE = "aiotel"  # the instrumentation scope of aiotel's own spans and metrics

# --- OpenTelemetry semantic conventions (code, errors, exceptions) ---
CODE_FUNCTION_NAME = "code.function.name"  # the fully qualified function name, e.g. shop.cart.Cart.total
CODE_FILE_PATH = "code.file.path"  # the source file of the function
CODE_LINE_NUMBER = "code.line.number"  # the `def` line; on events and fallback series, the line they happened on
ERROR_TYPE = "error.type"  # the class of the exception that left a call, qualified unless builtin
EXCEPTION_TYPE = "exception.type"  # the class of an exception an `except` handler caught
EXCEPTION_MESSAGE = "exception.message"  # redacted message, on the span's exception event
EXCEPTION_STACKTRACE = "exception.stacktrace"  # redacted traceback (the 64 frames nearest the raise), on the span's exception event
EXCEPTION_ESCAPED = "exception.escaped"  # on the exception event, as the SDK's record_exception sets it

# --- resource (one per process) ---
SERVICE_NAME = "service.name"  # the program; inherited by every child and worker
SERVICE_VERSION = "service.version"  # the deployed version: what `aiotel report --compare` sets side by side
SERVICE_INSTANCE_ID = "service.instance.id"  # one per process (a forked child gets its own)
PROCESS_PID = "process.pid"  # the process that reports, as `ps` shows it (a forked child's own)
TELEMETRY_DISTRO_NAME = "telemetry.distro.name"  # always "aiotel"
TELEMETRY_DISTRO_VERSION = "telemetry.distro.version"  # aiotel's version
VCS_REF_HEAD_REVISION = "vcs.ref.head.revision"  # the commit the program runs, from git or CI variables
VCS_REPOSITORY_URL_FULL = "vcs.repository.url.full"  # the repository, credentials stripped

# --- provenance: what the marker (or git) says about the function ---
PROVENANCE_PREFIX = "aiotel.provenance."  # + each extra marker field (reviewed, ticket, model, ...)
PROVENANCE_TOOL = "aiotel.provenance.tool"  # the AI tool or model the marker names ("unknown" if none)
PROVENANCE_DATE = "aiotel.provenance.date"  # the marker's ISO date
PROVENANCE_PROMPT = "aiotel.provenance.prompt"  # the marker's prompt, cut to AIOTEL_PROMPT_MAX_LENGTH, redacted
PROVENANCE_SOURCE = "aiotel.provenance.source"  # where it came from: comment, module, class, decorator, git
PROVENANCE_COMMIT = "aiotel.provenance.commit"  # the commit that last changed most of the function's lines
PROVENANCE_COMMIT_TIME = "aiotel.provenance.commit.time"  # that commit's date (ISO 8601)
SOURCE_SHA256 = "aiotel.source.sha256"  # SHA-256 of the function's source lines (first decorator to last line) that ran

# --- why a span exists, and what a trace left out ---
SPAN_REASON = "aiotel.span.reason"  # root (started a trace), in_trace (inside a recorded one), error or slow (late)
# on an aiotel span: the calls inside it, per function, that got no span because their
# trace had AIOTEL_TRACE_SPAN_BUDGET spans of that function (parallel arrays)
UNRECORDED_FUNCTIONS = "aiotel.span.unrecorded.functions"
UNRECORDED_CALLS = "aiotel.span.unrecorded.calls"
MEMORY_RSS_DELTA = "aiotel.memory.rss_delta"  # span: the process's resident bytes at the call's end less its start

# --- on another instrumentation's span started inside a marked call: which AI function made it ---
FUNCTION_NAME = "aiotel.function.name"  # the innermost running marked function, qualified
FUNCTION_FILE = "aiotel.function.file"  # its source file
FUNCTION_LINE = "aiotel.function.line"  # its `def` line
FUNCTION_TOOL = "aiotel.function.tool"  # the AI tool its marker names

# --- LLM calls (other instrumentations' spans), as the GenAI conventions and OpenInference name them ---
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"  # chat, text_completion, generate_content, embeddings, ...
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"  # the model asked for; metric attribute of the LLM rollup
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"  # the model that answered
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"  # openai, anthropic, ...; metric attribute of the LLM rollup
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"  # metric attribute: input or output
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"  # OpenInference's LLM, EMBEDDING, CHAIN, ...; CHAIN on aiotel's spans when OpenInference is installed

# --- span events inside a marked call ---
EVENT_FALLBACK = "aiotel.fallback"  # an `except` handler caught something (code.line.number, exception.type)
EVENT_EMPTY_RESULT = "aiotel.empty_result"  # the function returned None where it returns values elsewhere
INPUT_PREFIX = "aiotel.input."  # span attributes aiotel.input.<parameter>.type / .length (shapes opt-in)

# --- metrics ---
FUNCTION_DURATION = "aiotel.function.duration"  # histogram, s: every call; its count is the call count
FUNCTION_FALLBACKS = "aiotel.function.fallbacks"  # counter: except handlers that caught something, by line and type
FUNCTION_EMPTY_RESULTS = "aiotel.function.empty_results"  # counter: None returns, by return line
FUNCTION_INPUT_TYPES = "aiotel.function.input.types"  # counter: calls per parameter and argument type (opt-in)
FUNCTION_INPUT_SIZE = "aiotel.function.input.size"  # histogram: argument lengths per parameter and type (opt-in)
FUNCTION_INPUT_ERRORS = "aiotel.function.input.errors"  # counter: failed calls per error.type, parameter, type, length bucket (opt-in)
FUNCTION_MEMORY_RSS_DELTA = "aiotel.function.memory.rss_delta"  # histogram, By: recorded calls' change of RSS
FUNCTION_GEN_AI_OPERATION_DURATION = "aiotel.function.gen_ai.operation.duration"  # histogram, s: LLM calls made inside a marked function; count = calls
FUNCTION_GEN_AI_TOKEN_USAGE = "aiotel.function.gen_ai.token.usage"  # histogram, {token}: their tokens per call, by gen_ai.token.type; sum = tokens
FUNCTION_SPANS_OVER_BUDGET = "aiotel.function.spans_over_budget"  # counter: calls a trace's span budget left without a span
SPANS_DROPPED = "aiotel.spans.dropped"  # counter: finished spans that never reached their exporter's destination, by reason
SPANS_DROPPED_REASON = "aiotel.spans.dropped.reason"  # queue_full (OTEL_BSP_MAX_QUEUE_SIZE), export_failed, store_rotated or exit_deadline
METRIC_EXPORTS_FAILED = "aiotel.metrics.exports_failed"  # counter: metric exports that failed (the next one carries the totals)
# --- experiments (AIOTEL_SHADOW): a candidate (the AI rewrite) against the control it replaces ---
EXPERIMENT_CALLS = "aiotel.experiment.calls"  # counter: calls run on both arms and compared
EXPERIMENT_MISMATCHES = "aiotel.experiment.mismatches"  # counter: compared calls whose arms disagreed, by kind
EXPERIMENT_ARM_DURATION = "aiotel.experiment.arm.duration"  # histogram, s: each arm's own time in a compared call
EXPERIMENT_SHADOW_ERRORS = "aiotel.experiment.shadow.errors"  # counter: exceptions the shadow arm raised (never re-raised)
EXPERIMENT_CANDIDATE = "aiotel.experiment.candidate"  # the AI rewrite, qualified (code.function.name form)
EXPERIMENT_CONTROL = "aiotel.experiment.control"  # the function it replaces, qualified
EXPERIMENT_COMPARATOR = "aiotel.experiment.comparator"  # eq, repr, type or approx:<tolerance>
EXPERIMENT_LIVE = "aiotel.experiment.live"  # the arm the program called (candidate or control): its result is the one returned
EXPERIMENT_ARM = "aiotel.experiment.arm"  # on arm.duration and shadow spans: candidate or control
EXPERIMENT_ROLE = "aiotel.experiment.role"  # on arm.duration: live (the program's call) or shadow (the extra run)
MISMATCH_KIND = "aiotel.experiment.mismatch.kind"  # value, exception, type or inconclusive
SHADOW = "aiotel.shadow"  # true on the span of a shadow arm: not a call the program made
EVENT_MISMATCH = "aiotel.experiment.mismatch"  # on the live call's span: kind and both arms' types, never values
MISMATCH_CANDIDATE_TYPE = "aiotel.experiment.candidate.type"  # the candidate's result or exception type
MISMATCH_CONTROL_TYPE = "aiotel.experiment.control.type"  # the control's
INPUT_PARAMETER = "aiotel.input.parameter"  # metric attribute: the parameter's name
INPUT_TYPE = "aiotel.input.type"  # metric attribute: the argument's type name
UNKNOWN_INPUT_TYPE = "_UNKNOWN"  # aiotel.input.type of a failed call whose shapes are not known (probes.shapes)
INPUT_LENGTH = "aiotel.input.length"  # metric attribute: the argument's length bucket ("0", "1", "2..10", "11..100", ...)


def provenance_field(key: str) -> str:
    """The span attribute of an extra marker field."""
    return PROVENANCE_PREFIX + key


def input_attribute(parameter: str, what: str) -> str:
    """``aiotel.input.<parameter>.type`` or ``.length`` on a sampled call's span."""
    return f"{INPUT_PREFIX}{parameter}.{what}"
