"""What ``aiotel doctor`` says of the installed OpenTelemetry instrumentations: each one
active (activated at start-up), armed (activated when its library is first imported),
disabled, idle (its library is not installed) or failed, with the reason and the fix; and
for the LLM instrumentation sets aiotel tests (its extras), whether what is installed is
what was tested.

A doctor runs in its own process: "failed" is what would fail here, found by loading
the instrumentor as aiotel-run would (its import), and by the version check it makes.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..config import GENAI_CONTENT_SWITCH, OPENINFERENCE_CONTENT_SWITCHES, Settings


class TestedSet:
    """An extra of aiotel's: the instrumentation, the helper packages pinned with it, and the
    client versions the tests run it with (never pinned: the program's own library)."""

    def __init__(self, extra: str, pins: Mapping[str, str], client: str, tested_clients: str) -> None:
        self.extra = extra
        self.pins = dict(pins)
        self.client = client
        self.tested_clients = tested_clients


# Kept equal to pyproject.toml's extras (tests/e2e/test_llm_calls.py checks).
TESTED_SETS = {
    "opentelemetry-instrumentation-openai-v2": TestedSet(
        "openai", {"opentelemetry-instrumentation-openai-v2": "2.4b0", "opentelemetry-util-genai": "1.1b0"},
        "openai", ">=2.8,<3"),
    "openinference-instrumentation-openai": TestedSet(
        "openinference", {"openinference-instrumentation-openai": "0.1.66", "openinference-instrumentation": "0.1.72",
                          "openinference-semantic-conventions": "0.1.42"},
        "openai", ">=2.8,<3"),
}


def _installed_version(distribution: str) -> Optional[str]:
    from ..pipeline.libraries import _metadata

    metadata = _metadata()
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _within(version: str, specifier: str) -> Optional[bool]:
    try:
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(specifier).contains(version, prereleases=True)
    except Exception:
        return None  # no packaging, or a version it cannot read: not said


def _set_notes(distribution: Optional[str]) -> List[str]:
    tested = TESTED_SETS.get(distribution or "")
    if tested is None:
        return []
    notes = []
    for package, pinned in tested.pins.items():
        installed = _installed_version(package)
        if installed != pinned:
            notes.append(f"{package} {installed or 'not installed'} is not the tested {pinned}: "
                         f"pip install 'aiotel[{tested.extra}]'")
    client = _installed_version(tested.client)
    if client is not None and _within(client, tested.tested_clients) is False:
        notes.append(f"{tested.client} {client} is outside the versions this set is tested with "
                     f"({tested.client}{tested.tested_clients})")
    return notes


def _fix(distribution: Optional[str]) -> str:
    tested = TESTED_SETS.get(distribution or "")
    if tested is None:
        return "install a release of it that supports the installed library"
    pins = ", ".join(f"{package}=={version}" for package, version in tested.pins.items())
    return (f"pip install 'aiotel[{tested.extra}]' ({pins}), with {tested.client}{tested.tested_clients}, "
            "the versions it is tested with")


def instrumentations(settings: Settings) -> List[Dict[str, Any]]:
    """One row per installed instrumentor: name, distribution, state, reason, fix, notes."""
    from ..pipeline import libraries

    rows: List[Dict[str, Any]] = []
    seen_libraries: Dict[str, List[str]] = {}
    for entry_point, modules in libraries._discover(None):
        distribution = libraries.distribution_name(entry_point)
        row: Dict[str, Any] = {"name": entry_point.name, "distribution": distribution,
                               "version": _installed_version(distribution) if distribution else None,
                               "libraries": modules, "reason": None, "fix": None, "notes": _set_notes(distribution)}
        rows.append(row)
        if not settings.instrument_libraries:
            row["state"], row["reason"] = "disabled", "AIOTEL_INSTRUMENT_LIBRARIES=false"
            continue
        if entry_point.name in settings.disabled_instrumentations or distribution in settings.disabled_instrumentations:
            row["state"], row["reason"] = "disabled", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
            continue
        if modules == []:
            row["state"], row["reason"] = "idle", "its library is not installed"
            continue
        failure = _load_failure(entry_point)
        if failure is not None:
            row["state"], row["reason"], row["fix"] = "failed", failure, _fix(distribution)
            continue
        row["state"] = "active" if modules is None else "armed"
        row["reason"] = ("activated at start-up" if modules is None
                         else f"activated when {' or '.join(modules)} is first imported")
        for module in modules or ():
            seen_libraries.setdefault(module, []).append(distribution or entry_point.name)
    for module, distributions in seen_libraries.items():
        if len(distributions) > 1:
            for row in rows:
                if row["distribution"] in distributions and row["state"] in ("active", "armed"):
                    others = [d for d in distributions if d != row["distribution"]]
                    row["notes"].append(f"{module} is also instrumented by {', '.join(others)}: each call is recorded "
                                        f"by both; choose one with OTEL_PYTHON_DISABLED_INSTRUMENTATIONS={others[0]}")
    return rows


def _load_failure(entry_point: Any) -> Optional[str]:
    """Why aiotel-run could not activate this instrumentor here, or None."""
    try:
        dist = getattr(entry_point, "dist", None)
        if dist is not None:
            from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

            conflict = get_dist_dependency_conflicts(dist)
            if conflict is not None:
                return str(conflict)
        entry_point.load()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def content_policy(settings: Settings) -> Tuple[str, List[str]]:
    """What leaves the process of LLM calls' prompts and completions, and the user's
    switches that decide instead of aiotel's default."""
    said = {"false": "not exported (AIOTEL_CAPTURE_LLM_CONTENT=false)",
            "redacted": "exported through the redactor (AIOTEL_CAPTURE_LLM_CONTENT=redacted)",
            "true": "exported as the instrumentations record them (AIOTEL_CAPTURE_LLM_CONTENT=true)"}[settings.llm_content]
    switches = settings.llm_content_switches
    notes = []
    if GENAI_CONTENT_SWITCH in switches:
        notes.append(f"{GENAI_CONTENT_SWITCH}={switches[GENAI_CONTENT_SWITCH]} is set: the OpenTelemetry GenAI "
                     "instrumentations' content follows it, not aiotel's setting")
    set_here = [f"{name}={switches[name]}" for name in OPENINFERENCE_CONTENT_SWITCHES.values() if name in switches]
    if set_here:
        notes.append(f"{', '.join(set_here)} set: OpenInference's content follows your switches, not aiotel's setting")
    return said, notes
