"""Environment variables to one frozen settings object. Pure: a mapping in, values out.

Every ``AIOTEL_*`` variable, and each ``OTEL_*`` one that aiotel itself interprets, is
read here and nowhere else (the OTLP exporters read their endpoint, headers and timeouts
themselves, as the spec describes). A bad value never stops
the program: it becomes a problem (one sentence naming the variable and the value)
and the default is used.
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple, TypeVar

from .cachedir import default_cache_dir
from .provenance.decode import MAX_SOURCE_BYTES
from .provenance.grammar import MarkerConfig, MarkerPatternError
from .provenance.trailers import DEFAULT_AI_COAUTHORS, DEFAULT_AI_TRAILERS
from .variables import SET_BY_LAUNCHER, VARIABLES, Variable  # noqa: F401  (re-exported: the table lives there)

T = TypeVar("T")

# What resource detection (aiotel.pipeline.resource) reads besides the SDK's own
# variables: the commit and repository that CI systems name, in order of preference.
CI_REVISION_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "CIRCLE_SHA1", "BITBUCKET_COMMIT",
                         "TRAVIS_COMMIT", "GIT_COMMIT", "SOURCE_VERSION")
CI_REPOSITORY_VARIABLES = ("GITHUB_REPOSITORY", "GITHUB_SERVER_URL", "CI_PROJECT_URL", "BUILDKITE_REPO",
                           "CIRCLE_REPOSITORY_URL")
# AIOTEL_SERVICE_NAME: set by aiotel-run for its program and inherited by the program's
# Python children (see launcher.service_name); OTEL_SERVICE_NAME still wins.
RESOURCE_VARIABLES = ("OTEL_SERVICE_NAME", "AIOTEL_SERVICE_NAME") + CI_REVISION_VARIABLES + CI_REPOSITORY_VARIABLES
DEFAULT_STORE = ".aiotel"

_FALSE = {"0", "false", "no", "off"}


class Settings(NamedTuple):
    """Everything aiotel reads from the environment, read once (``load_settings``).

    A NamedTuple, not a dataclass: it is built at every start-up, and importing
    ``dataclasses`` (with ``inspect``) would cost each process 6 ms. ``_replace`` gives
    a changed copy."""

    markers: MarkerConfig = MarkerConfig()
    cache_dir: Optional[str] = None  # None: no scan cache
    max_source_bytes: int = MAX_SOURCE_BYTES
    include: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    span_rate_limit: float = 10.0
    span_burst: int = 100
    trace_span_budget: int = 1000
    # (floor in ns, multiple of the function's p99; 0 = floor only), or None: off
    slow_threshold: Optional[Tuple[int, float]] = (100_000_000, 4.0)
    late_span_rate: float = 1.0
    trace_rate_limit: float = 100.0  # new traces a second, when OTEL_TRACES_SAMPLER is not set
    traces_sampler_set: bool = False
    prompt_max_length: int = 256
    capture_prompt: bool = True
    accelerator: bool = True
    capture_args: str = "none"  # or "shape": type and length of each argument, never values
    llm_content: str = "false"  # AIOTEL_CAPTURE_LLM_CONTENT: false, redacted or true
    # the LLM instrumentations' own content switches that the user set (they win: pipeline.scrubbing)
    llm_content_switches: Mapping[str, str] = MappingProxyType({})
    logging_handler: bool = False  # OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED: the program's logging records as OTel logs
    # AIOTEL_SHADOW: (fraction of an experiment's calls that run both arms, per function name)
    shadow: Tuple[float, Tuple[Tuple[str, float], ...]] = (0.0, ())
    redact: Tuple[str, ...] = ()  # patterns added to aiotel.probes.redact.BUILT_IN
    git_blame: bool = True
    git_provenance: bool = False
    git_ai_trailers: Tuple[str, ...] = DEFAULT_AI_TRAILERS
    git_ai_coauthors: Tuple[str, ...] = DEFAULT_AI_COAUTHORS
    shutdown_timeout: float = 1.0
    instrument_libraries: bool = True
    disabled_instrumentations: Tuple[str, ...] = ()  # entry point names (OTEL_PYTHON_DISABLED_INSTRUMENTATIONS)
    # the RESOURCE_VARIABLES that are set: resource detection's view of the environment
    resource_environ: Mapping[str, str] = MappingProxyType({})
    log_level: str = "warn"
    # read here so a bad value is named once, by aiotel, and the SDK gets the default
    bsp_schedule_delay_ms: int = 5000
    bsp_export_timeout_ms: int = 30000
    bsp_max_queue_size: int = 2048
    bsp_max_export_batch_size: int = 512
    metric_export_interval_ms: int = 60000
    metric_export_timeout_ms: int = 30000
    otlp_compression: Mapping[str, str] = MappingProxyType({"TRACES": "none", "METRICS": "none", "LOGS": "none"})
    otlp_timeout_s: Mapping[str, float] = MappingProxyType({"TRACES": 10.0, "METRICS": 10.0, "LOGS": 10.0})
    sdk_disabled: bool = False
    traces_exporters: Tuple[str, ...] = ("store",)
    metrics_exporters: Tuple[str, ...] = ("store",)
    logs_exporters: Tuple[str, ...] = ("store",)
    store_dir: str = DEFAULT_STORE
    private_store_dir: str = ""  # where the store goes when store_dir is refused (see store.writer)
    private_spill_dir: str = ""  # the spill's default, and where it goes when AIOTEL_SPILL is refused
    spill_dir: Optional[str] = None  # what OTLP exporters could not send (see store.spill); None: off
    spill_max_bytes: int = 100 * 1024 * 1024
    store_max_bytes: int = 20 * 1024 * 1024
    otlp_traces_protocol: str = "http/protobuf"
    otlp_metrics_protocol: str = "http/protobuf"
    otlp_logs_protocol: str = "http/protobuf"
    prometheus_host: str = "localhost"
    prometheus_port: int = 9464
    problems: Tuple[str, ...] = ()


_EXPORTERS = {"otlp", "console", "store", "prometheus", "none"}
_PROTOCOLS = {"grpc", "http/protobuf"}


def parse_marker_patterns(value: str) -> Tuple[str, ...]:
    """AIOTEL_MARKERS: one regular expression per line, or a JSON array of them."""
    stripped = value.strip()
    if stripped.startswith("["):
        import json  # here: rarely needed, and start-up pays for every import

        patterns = json.loads(stripped)
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError("a JSON value must be an array of strings")
        return tuple(patterns)
    return tuple(line.strip() for line in stripped.splitlines() if line.strip())


def parse_positive_int(value: str) -> int:
    number = int(value.strip())
    if number <= 0:
        raise ValueError("expected a positive whole number")
    return number


def parse_non_negative_int(value: str) -> int:
    number = int(value.strip())
    if number < 0:
        raise ValueError("expected a whole number, 0 or more")
    return number


def parse_non_negative_float(value: str) -> float:
    number = float(value.strip())
    if not number >= 0 or number == float("inf"):
        raise ValueError("expected a finite number, 0 or more")
    return number


_DURATION_UNITS = (("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000))


def parse_duration_ns(value: str) -> int:
    """``250ms``, ``1.5s``, ``800us``: a duration with its unit, in ns."""
    text = value.strip().lower()
    for unit, scale in _DURATION_UNITS:
        if text.endswith(unit) and not (unit == "s" and text[-2:-1] in ("n", "u", "µ", "m")):
            number = float(text[: -len(unit)])
            if not number >= 0 or number == float("inf"):
                raise ValueError("expected a duration, 0 or more")
            return int(number * scale)
    raise ValueError(f"{value.strip()!r} has no unit (ns, us, ms or s)")


def parse_slow_threshold(value: str) -> Optional[Tuple[int, float]]:
    """AIOTEL_SLOW_THRESHOLD: ``off``, or a floor and/or a multiple of the function's p99,
    comma-separated (``100ms,4xp99``); the threshold is the larger of the two."""
    text = value.strip().lower()
    if text in _FALSE:
        return None
    floor, multiple = 0, 0.0
    for term in (t.strip() for t in text.split(",")):
        if term.endswith("xp99"):
            multiple = float(term[:-4])
            if not multiple > 0 or multiple == float("inf"):
                raise ValueError(f"{term!r}: the multiple of p99 must be above 0")
        else:
            floor = parse_duration_ns(term)
    if floor <= 0 and multiple <= 0:
        raise ValueError("expected off, a duration like 100ms, a multiple like 4xp99, or both")
    return floor, multiple


def parse_compression(value: str) -> str:
    compression = value.strip().lower()
    if compression not in ("gzip", "none"):
        raise ValueError("expected gzip or none")
    return compression


def parse_log_level(value: str) -> str:
    level = value.strip().lower()
    if level not in ("debug", "info", "warn", "warning", "error"):
        raise ValueError("expected debug, info, warn or error")
    return level


def parse_port(value: str) -> int:
    number = int(value.strip())
    if not 0 < number < 65536:
        raise ValueError("expected a port number, 1 to 65535")
    return number


def parse_milliseconds(value: str) -> float:
    """An OTLP timeout in milliseconds (the spec's unit), returned in seconds (the SDK's)."""
    return parse_positive_int(value) / 1000.0


def parse_bool(value: str) -> bool:
    """The OTel spec's boolean: only 'true' (any case) is true, and only 'false' false."""
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError("expected true or false")
    return lowered == "true"


def parse_redact_patterns(value: str) -> Tuple[str, ...]:
    import re

    patterns = parse_marker_patterns(value)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
    return patterns


def parse_capture_args(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ("none", "shape"):
        raise ValueError("expected none or shape; argument values are never captured")
    return mode


def parse_llm_content(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ("false", "redacted", "true"):
        raise ValueError("expected false, redacted or true")
    return mode


# The LLM instrumentations' own content switches (pipeline.scrubbing: a switch the user set
# wins): the GenAI conventions' one, and OpenInference's, by the TraceConfig field each sets.
GENAI_CONTENT_SWITCH = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
OPENINFERENCE_CONTENT_SWITCHES = {
    "hide_inputs": "OPENINFERENCE_HIDE_INPUTS",
    "hide_outputs": "OPENINFERENCE_HIDE_OUTPUTS",
    "hide_input_messages": "OPENINFERENCE_HIDE_INPUT_MESSAGES",
    "hide_output_messages": "OPENINFERENCE_HIDE_OUTPUT_MESSAGES",
    "hide_input_images": "OPENINFERENCE_HIDE_INPUT_IMAGES",
    "hide_input_text": "OPENINFERENCE_HIDE_INPUT_TEXT",
    "hide_output_text": "OPENINFERENCE_HIDE_OUTPUT_TEXT",
    "hide_embeddings_text": "OPENINFERENCE_HIDE_EMBEDDINGS_TEXT",
    "hide_prompts": "OPENINFERENCE_HIDE_PROMPTS",
    "hide_choices": "OPENINFERENCE_HIDE_CHOICES",
    "hide_retrieval_documents": "OPENINFERENCE_HIDE_RETRIEVAL_DOCUMENTS",
}
LLM_CONTENT_SWITCHES = (GENAI_CONTENT_SWITCH,) + tuple(OPENINFERENCE_CONTENT_SWITCHES.values())


def _fraction(text: str) -> float:
    number = float(text.strip())
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{text.strip()!r} is not a fraction from 0 to 1")
    return number


def parse_shadow(value: str) -> Tuple[float, Tuple[Tuple[str, float], ...]]:
    """AIOTEL_SHADOW: a fraction (``1``: every call, ``0.01``: one in a hundred) for every
    experiment, and/or ``name=fraction`` items for the pair a function belongs to
    (``fast_total=1,other=0.05``)."""
    default = 0.0
    by_name: List[Tuple[str, float]] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        name, equals, fraction = item.rpartition("=")
        if not equals:
            default = _fraction(fraction)
        elif not name.strip():
            raise ValueError(f"{item!r} names no function")
        else:
            by_name.append((name.strip(), _fraction(fraction)))
    return default, tuple(by_name)


def parse_patterns(value: str) -> Tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def parse_exporters(value: str) -> Tuple[str, ...]:
    names = tuple(n.strip().lower() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in _EXPORTERS]
    if unknown:
        raise ValueError(f"unknown exporter {unknown[0]!r}; aiotel knows {', '.join(sorted(_EXPORTERS))}")
    return tuple(n for n in names if n != "none")


def parse_log_exporters(value: str) -> Tuple[str, ...]:
    names = parse_exporters(value)
    if "prometheus" in names:
        raise ValueError("prometheus takes metrics only; logs go to otlp, console or store")
    return names


def parse_protocol(value: str) -> str:
    protocol = value.strip().lower()
    if protocol not in _PROTOCOLS:
        raise ValueError("expected grpc or http/protobuf")
    return protocol


def store_dir(environ: Mapping[str, str]) -> str:
    """The embedded store's directory as given (``AIOTEL_STORE``), relative to the working
    directory unless absolute: where the program writes and ``aiotel report`` reads."""
    return environ.get("AIOTEL_STORE", "").strip() or DEFAULT_STORE


# Read by an aiotel command, never by a monitored program: known, so not said to be ignored.
COMMAND_VARIABLES = ("AIOTEL_MCP_TOKEN",)


def mcp_token(environ: Mapping[str, str]) -> Optional[str]:
    """``aiotel mcp --http``'s bearer token (``AIOTEL_MCP_TOKEN``), if set."""
    return environ.get("AIOTEL_MCP_TOKEN", "").strip() or None


def private_dir(environ: Mapping[str, str], name: str) -> str:
    """``$XDG_STATE_HOME/aiotel/<name>``, else ``~/.local/state/aiotel/<name>``: aiotel's
    own state (a refused store's stand-in ``store``, the ``spill``), never the working directory."""
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(environ.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state"), "aiotel", name)


class _Noting(Mapping[str, str]):
    """The environment, noting each name looked up: what is set but never asked for is a
    variable aiotel does not know (a misspelt one, most often)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.asked: set = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self.env[name]

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(name)
        return self.env.get(name, default)

    def __contains__(self, name: object) -> bool:
        self.asked.add(name)
        return name in self.env

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def unknown_variables(env: Mapping[str, str], asked: Iterable[str]) -> List[str]:
    """One sentence per AIOTEL_ variable that is set but that aiotel never reads."""
    known = (set(asked) | set(SET_BY_LAUNCHER) | set(RESOURCE_VARIABLES) | set(COMMAND_VARIABLES)
             | {v.name for v in VARIABLES})
    unknown = sorted(name for name in env if name.startswith("AIOTEL_") and name not in known)
    if not unknown:
        return []
    import difflib

    readable = sorted(name for name in known if name.startswith("AIOTEL_") and name not in SET_BY_LAUNCHER)
    said = []
    for name in unknown:
        # compared without the prefix that every one of them shares
        close = difflib.get_close_matches(name[len("AIOTEL_"):], [n[len("AIOTEL_"):] for n in readable], n=1)
        said.append(f"{name} is not a variable aiotel reads: ignored"
                    + (f" (did you mean AIOTEL_{close[0]}?)" if close else ""))
    return said


def load_settings(environ: Optional[Mapping[str, str]] = None) -> Settings:
    """Read the variables aiotel interprets from ``environ`` (default: ``os.environ``)."""
    noting = _Noting(os.environ if environ is None else environ)
    settings = _load_settings(noting)
    problems = unknown_variables(noting.env, noting.asked)
    return settings._replace(problems=settings.problems + tuple(problems)) if problems else settings


def _load_settings(env: Mapping[str, str]) -> Settings:
    problems: List[str] = []

    def read(name: str, parse: Callable[[str], T], default: T) -> T:
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw)
        except (ValueError, MarkerPatternError) as exc:
            problem = f"{name}={raw!r} ignored ({exc}); using the default"
            if problem not in problems:  # a generic variable is read once per signal
                problems.append(problem)
            return default

    def markers(raw: str) -> MarkerConfig:
        return MarkerConfig(parse_marker_patterns(raw))

    cache_dir: Optional[str] = default_cache_dir(env)
    raw_cache = env.get("AIOTEL_CACHE_DIR")
    if raw_cache is not None and raw_cache.strip():
        cache_dir = None if raw_cache.strip().lower() in _FALSE | {"none"} else raw_cache
    spill_dir: Optional[str] = private_dir(env, "spill")
    raw_spill = env.get("AIOTEL_SPILL")
    if raw_spill is not None and raw_spill.strip():
        spill_dir = None if raw_spill.strip().lower() in _FALSE | {"none"} else os.path.abspath(raw_spill.strip())
    protocol = read("OTEL_EXPORTER_OTLP_PROTOCOL", parse_protocol, "http/protobuf")

    def default_exporter(signal: str) -> Tuple[str, ...]:
        # No exporter and no endpoint configured: the embedded store, so nothing is lost
        # and `aiotel report` works with zero set-up. An endpoint alone means OTLP.
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
        return ("otlp",) if any(env.get(name, "").strip() for name in endpoints) else ("store",)

    return Settings(
        markers=read("AIOTEL_MARKERS", markers, MarkerConfig()),
        cache_dir=cache_dir,
        max_source_bytes=read("AIOTEL_MAX_SOURCE_BYTES", parse_positive_int, MAX_SOURCE_BYTES),
        include=read("AIOTEL_INCLUDE", parse_patterns, ()),
        exclude=read("AIOTEL_EXCLUDE", parse_patterns, ()),
        span_rate_limit=read("AIOTEL_SPAN_RATE_LIMIT", parse_non_negative_float, 10.0),
        span_burst=read("AIOTEL_SPAN_BURST", parse_positive_int, 100),
        trace_span_budget=read("AIOTEL_TRACE_SPAN_BUDGET", parse_non_negative_int, 1000),
        slow_threshold=read("AIOTEL_SLOW_THRESHOLD", parse_slow_threshold, (100_000_000, 4.0)),
        late_span_rate=read("AIOTEL_LATE_SPAN_RATE", parse_non_negative_float, 1.0),
        trace_rate_limit=read("AIOTEL_TRACE_RATE_LIMIT", parse_non_negative_float, 100.0),
        traces_sampler_set=bool(env.get("OTEL_TRACES_SAMPLER", "").strip()),
        prompt_max_length=read("AIOTEL_PROMPT_MAX_LENGTH", parse_non_negative_int, 256),
        capture_prompt=read("AIOTEL_CAPTURE_PROMPT", parse_bool, True),
        accelerator=read("AIOTEL_ACCELERATOR", parse_bool, True),
        capture_args=read("AIOTEL_CAPTURE_ARGS", parse_capture_args, "none"),
        llm_content=read("AIOTEL_CAPTURE_LLM_CONTENT", parse_llm_content, "false"),
        llm_content_switches={name: env[name] for name in LLM_CONTENT_SWITCHES if env.get(name, "").strip()},
        logging_handler=read("OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED", parse_bool, False),
        shadow=read("AIOTEL_SHADOW", parse_shadow, (0.0, ())),
        redact=read("AIOTEL_REDACT", parse_redact_patterns, ()),
        git_blame=read("AIOTEL_GIT_BLAME", parse_bool, True),
        git_provenance=read("AIOTEL_GIT_PROVENANCE", parse_bool, False),
        git_ai_trailers=read("AIOTEL_GIT_AI_TRAILERS", parse_patterns, DEFAULT_AI_TRAILERS),
        git_ai_coauthors=read("AIOTEL_GIT_AI_COAUTHORS", parse_patterns, DEFAULT_AI_COAUTHORS),
        shutdown_timeout=read("AIOTEL_SHUTDOWN_TIMEOUT", parse_non_negative_float, 1.0),
        instrument_libraries=read("AIOTEL_INSTRUMENT_LIBRARIES", parse_bool, True),
        disabled_instrumentations=parse_patterns(env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")),
        resource_environ={name: env[name] for name in RESOURCE_VARIABLES if env.get(name)},
        log_level=read("OTEL_LOG_LEVEL", parse_log_level, "warn"),
        bsp_schedule_delay_ms=read("OTEL_BSP_SCHEDULE_DELAY", parse_non_negative_int, 5000),
        bsp_export_timeout_ms=read("OTEL_BSP_EXPORT_TIMEOUT", parse_non_negative_int, 30000),
        bsp_max_queue_size=read("OTEL_BSP_MAX_QUEUE_SIZE", parse_positive_int, 2048),
        bsp_max_export_batch_size=read("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", parse_positive_int, 512),
        metric_export_interval_ms=read("OTEL_METRIC_EXPORT_INTERVAL", parse_positive_int, 60000),
        metric_export_timeout_ms=read("OTEL_METRIC_EXPORT_TIMEOUT", parse_positive_int, 30000),
        # the signal's own variable wins over the generic one, as the spec says
        otlp_compression={
            signal: read(f"OTEL_EXPORTER_OTLP_{signal}_COMPRESSION", parse_compression, None)
            or read("OTEL_EXPORTER_OTLP_COMPRESSION", parse_compression, "none")
            for signal in ("TRACES", "METRICS", "LOGS")
        },
        otlp_timeout_s={
            signal: read(f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT", parse_milliseconds, None)
            or read("OTEL_EXPORTER_OTLP_TIMEOUT", parse_milliseconds, 10.0)
            for signal in ("TRACES", "METRICS", "LOGS")
        },
        sdk_disabled=read("OTEL_SDK_DISABLED", parse_bool, False),
        traces_exporters=read("OTEL_TRACES_EXPORTER", parse_exporters, default_exporter("TRACES")),
        metrics_exporters=read("OTEL_METRICS_EXPORTER", parse_exporters, default_exporter("METRICS")),
        logs_exporters=read("OTEL_LOGS_EXPORTER", parse_log_exporters, default_exporter("LOGS")),
        store_dir=os.path.abspath(store_dir(env)),
        private_store_dir=private_dir(env, "store"),
        private_spill_dir=private_dir(env, "spill"),
        spill_dir=spill_dir,
        spill_max_bytes=read("AIOTEL_SPILL_MAX_BYTES", parse_positive_int, 100 * 1024 * 1024),
        prometheus_host=env.get("OTEL_EXPORTER_PROMETHEUS_HOST", "").strip() or "localhost",
        prometheus_port=read("OTEL_EXPORTER_PROMETHEUS_PORT", parse_port, 9464),
        store_max_bytes=read("AIOTEL_STORE_MAX_BYTES", parse_positive_int, 20 * 1024 * 1024),
        otlp_traces_protocol=read("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", parse_protocol, protocol),
        otlp_metrics_protocol=read("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", parse_protocol, protocol),
        otlp_logs_protocol=read("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", parse_protocol, protocol),
        problems=tuple(problems),
    )
