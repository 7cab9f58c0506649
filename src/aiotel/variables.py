"""Every environment variable aiotel-run knows, with its command-line option: the table
``aiotel-run --help``, ``aiotel doctor`` and the README list. Kept apart from ``config``
so the launcher, which only passes variables on, imports almost nothing."""

from __future__ import annotations

from typing import NamedTuple, Tuple

# Literal copies of provenance.decode.MAX_SOURCE_BYTES and provenance.trailers'
# DEFAULT_AI_TRAILERS: importing those would cost the launcher more than it does in all
# (tests/cli/test_config.py checks that they agree).
MAX_SOURCE_BYTES = 4 * 1024 * 1024
DEFAULT_AI_TRAILERS = ("Generated-by", "Assisted-by")


class Variable(NamedTuple):
    """One environment variable of aiotel-run; ``flag`` is its command-line twin."""

    name: str
    flag: str
    default: str
    help: str


# What aiotel-run --help lists; each flag sets exactly its variable for the command.
VARIABLES: Tuple[Variable, ...] = (
    Variable("AIOTEL_INCLUDE", "--include", "", "extra modules or paths to instrument (comma-separated fnmatch patterns; a pattern with '/' or ending in .py is a path)"),
    Variable("AIOTEL_EXCLUDE", "--exclude", "", "modules or paths never to instrument (same patterns); wins over --include"),
    Variable("AIOTEL_SPAN_RATE_LIMIT", "--span-rate-limit", "10", "new traces a marked function may start per second (after a burst of AIOTEL_SPAN_BURST); 0 = metrics only, no aiotel spans"),
    Variable("AIOTEL_SPAN_BURST", "--span-burst", "100", "calls of one function that may start traces at once before AIOTEL_SPAN_RATE_LIMIT applies"),
    Variable("AIOTEL_TRACE_SPAN_BUDGET", "--trace-span-budget", "1000", "spans of one function in one trace; calls past it are counted on the nearest aiotel span and in aiotel.function.spans_over_budget"),
    Variable("AIOTEL_SLOW_THRESHOLD", "--slow-threshold", "100ms,4xp99", "a call without a span that took longer than this (the larger of a floor and a multiple of the function's p99) gets a late span; off: none"),
    Variable("AIOTEL_LATE_SPAN_RATE", "--late-span-rate", "1", "late spans (failed or slow calls without a span) per second per function, after a burst of 10; 0 = none"),
    Variable("AIOTEL_TRACE_RATE_LIMIT", "--trace-rate-limit", "100", "new traces recorded per second per process, whoever starts them, when OTEL_TRACES_SAMPLER is not set; 0 = no limit"),
    Variable("AIOTEL_PROMPT_MAX_LENGTH", "--prompt-max-length", "256", "characters of the marker's prompt put on spans"),
    Variable("AIOTEL_CAPTURE_PROMPT", "--capture-prompt", "true", "put the marker's prompt on spans (true/false)"),
    Variable("AIOTEL_ACCELERATOR", "--accelerator", "true", "use the probes' C accelerator when it was built at install (false: the pure-Python probes)"),
    Variable("AIOTEL_CAPTURE_ARGS", "--capture-args", "none", "shape: record each argument's type name and length (never its value) on spans and as metrics; none: nothing"),
    Variable("AIOTEL_CAPTURE_LLM_CONTENT", "--capture-llm-content", "false", "prompts and completions of LLM calls: false: none leaves the process; redacted: exported through the redactor; true: exported as the instrumentations record them (a content switch of the instrumentation's own that you set wins)"),
    Variable("AIOTEL_SHADOW", "--shadow", "0", "experiments: the fraction of calls of a pair (a marker's `replaces:`) that also run the other function and compare (1 = every call; name=fraction per function, comma-separated); both functions then run, on the same arguments"),
    Variable("AIOTEL_REDACT", "--redact", "", "extra regular expressions whose matches are replaced by [REDACTED] in prompts, marker fields and exception messages (one per line or a JSON array; a group named 'secret' limits the replacement to it)"),
    Variable("AIOTEL_GIT_BLAME", "--git-blame", "true", "put on spans the commit that last changed most of each marked function's lines (git blame, cached, in the background)"),
    Variable("AIOTEL_GIT_PROVENANCE", "--git-provenance", "false", "true: functions last changed mostly by a commit with an AI trailer count as AI-generated without a marker"),
    Variable("AIOTEL_GIT_AI_TRAILERS", "--git-ai-trailers", ",".join(DEFAULT_AI_TRAILERS), "trailer keys whose value names the AI tool (comma-separated)"),
    Variable("AIOTEL_GIT_AI_COAUTHORS", "--git-ai-coauthors", "Copilot,Claude,Cursor,Codex,Aider,Devin,...", "a Co-authored-by trailer whose name or address contains one of these (comma-separated, any case) marks an AI commit"),
    Variable("AIOTEL_SHUTDOWN_TIMEOUT", "--shutdown-timeout", "1", "seconds to flush telemetry at exit before giving up"),
    Variable("AIOTEL_INSTRUMENT_LIBRARIES", "--instrument-libraries", "true", "activate the installed OpenTelemetry instrumentations (requests, flask, ...), as opentelemetry-instrument does"),
    Variable("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "--disabled-instrumentations", "", "instrumentations not to activate (comma-separated entry point or distribution names: openai is both OpenInference's and OpenTelemetry's, openinference-instrumentation-openai one of them)"),
    Variable("AIOTEL_MARKERS", "--markers", "", "extra marker regular expressions, one per line or a JSON array"),
    Variable("AIOTEL_CACHE_DIR", "--cache-dir", "$XDG_CACHE_HOME/aiotel/scan", "scan cache directory; 'off' disables it"),
    Variable("AIOTEL_MAX_SOURCE_BYTES", "--max-source-bytes", str(MAX_SOURCE_BYTES), "larger files are not scanned"),
    Variable("AIOTEL_STORE", "--store", "./.aiotel", "the embedded store: where telemetry goes when no exporter and no endpoint is set"),
    Variable("AIOTEL_STORE_MAX_BYTES", "--store-max-bytes", "20971520", "size at which a store file is rotated (five files per process and signal at most; spans in the oldest are counted as dropped)"),
    Variable("AIOTEL_SPILL", "--spill", "$XDG_STATE_HOME/aiotel/spill", "where OTLP exports that could not be sent go (collector down, queue full, exit deadline), for `aiotel push`; 'off' disables it"),
    Variable("AIOTEL_SPILL_MAX_BYTES", "--spill-max-bytes", "104857600", "the spill's size cap; what does not fit is counted as lost"),
    Variable("OTEL_SERVICE_NAME", "--service-name", "", "service.name of the resource"),
    Variable("OTEL_TRACES_EXPORTER", "--traces-exporter", "store, or otlp once an endpoint is set", "otlp, console, store or none (comma-separated)"),
    Variable("OTEL_METRICS_EXPORTER", "--metrics-exporter", "store, or otlp once an endpoint is set", "otlp, prometheus, console, store or none (comma-separated)"),
    Variable("OTEL_LOGS_EXPORTER", "--logs-exporter", "store, or otlp once an endpoint is set", "otlp, console, store or none (comma-separated): log records, GenAI events among them"),
    Variable("OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED", "--logging-handler", "false", "true: every record of the program's logging goes out as an OTel log record too"),
    Variable("OTEL_EXPORTER_PROMETHEUS_HOST", "--prometheus-host", "localhost", "where the prometheus exporter serves /metrics"),
    Variable("OTEL_EXPORTER_PROMETHEUS_PORT", "--prometheus-port", "9464", "its port"),
    Variable("OTEL_EXPORTER_OTLP_ENDPOINT", "--endpoint", "http://localhost:4318 (grpc: :4317)", "OTLP endpoint"),
    Variable("OTEL_EXPORTER_OTLP_PROTOCOL", "--protocol", "http/protobuf", "grpc or http/protobuf"),
    Variable("OTEL_RESOURCE_ATTRIBUTES", "--resource-attributes", "", "key=value,... added to the resource (service.version, deployment.environment.name, ...)"),
    Variable("OTEL_SDK_DISABLED", "--sdk-disabled", "false", "true: instrument nothing"),
    Variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "--traces-endpoint", "", "OTLP endpoint for traces only (full URL for http/protobuf)"),
    Variable("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "--metrics-endpoint", "", "OTLP endpoint for metrics only"),
    Variable("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "--logs-endpoint", "", "OTLP endpoint for logs only"),
    Variable("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "--logs-protocol", "", "grpc or http/protobuf for logs"),
    Variable("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "--traces-protocol", "", "grpc or http/protobuf for traces"),
    Variable("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "--metrics-protocol", "", "grpc or http/protobuf for metrics"),
    Variable("OTEL_EXPORTER_OTLP_HEADERS", "--headers", "", "key=value,... sent with every export (per-signal: OTEL_EXPORTER_OTLP_{TRACES,METRICS}_HEADERS)"),
    Variable("OTEL_EXPORTER_OTLP_COMPRESSION", "--compression", "none", "gzip or none"),
    Variable("OTEL_EXPORTER_OTLP_TIMEOUT", "--otlp-timeout", "10000", "milliseconds per export request"),
    Variable("OTEL_EXPORTER_OTLP_CERTIFICATE", "--certificate", "", "CA certificate file for TLS"),
    Variable("OTEL_EXPORTER_OTLP_CLIENT_KEY", "--client-key", "", "client key file for mTLS"),
    Variable("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "--client-certificate", "", "client certificate file for mTLS"),
    Variable("OTEL_EXPORTER_OTLP_INSECURE", "--insecure", "false", "grpc without TLS"),
    Variable("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "--temporality", "cumulative", "cumulative, delta or lowmemory"),
    Variable("OTEL_BSP_SCHEDULE_DELAY", "--bsp-schedule-delay", "5000", "milliseconds between span batch exports"),
    Variable("OTEL_BSP_EXPORT_TIMEOUT", "--bsp-export-timeout", "30000", "milliseconds a span batch export may take"),
    Variable("OTEL_BSP_MAX_QUEUE_SIZE", "--bsp-max-queue-size", "2048", "spans queued before new ones are dropped"),
    Variable("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "--bsp-max-export-batch-size", "512", "spans per export request"),
    Variable("OTEL_METRIC_EXPORT_INTERVAL", "--metric-export-interval", "60000", "milliseconds between metric exports"),
    Variable("OTEL_METRIC_EXPORT_TIMEOUT", "--metric-export-timeout", "30000", "milliseconds a metric export may take"),
    Variable("OTEL_LOG_LEVEL", "--log-level", "warn", "what aiotel and the OTel SDK say on stderr: debug, info, warn or error"),
    Variable("OTEL_TRACES_SAMPLER", "--sampler", "parent-based, AIOTEL_TRACE_RATE_LIMIT new traces/s", "the OpenTelemetry sampler; once set, used as it is"),
    Variable("OTEL_TRACES_SAMPLER_ARG", "--sampler-arg", "", "its argument, e.g. a ratio"),
)


# Set by aiotel-run for the processes it starts (the main script to instrument; "already
# said that the command's interpreter has no aiotel"): never the user's to set.
SET_BY_LAUNCHER = ("AIOTEL_MAIN", "AIOTEL_UNREACHABLE")
