"""Each marked function's span attributes: built once, from its provenance, when its module
runs; redacted; extended later by commit attribution."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from .. import semconv
from ..provenance.records import Provenance
from .state import FunctionProbe, _probes, _settings

# A secret is never longer than this: redaction looks this far past the prompt's cut, so
# a secret that the cut splits is still found, and a 1 MB prompt is not scanned whole.
_REDACTION_LOOKAHEAD = 4096


# (file path, def line) -> span attributes learnt after the module ran (commit attribution)
_later_attributes: Dict[Tuple[str, int], Dict[str, Any]] = {}


def add_attributes(path: str, line: int, attributes: Dict[str, Any]) -> None:
    """More span attributes for the function defined at ``path:line``, now and when its
    module runs again. The dict is replaced, never changed, for spans starting meanwhile."""
    key = (path, line)
    _later_attributes[key] = dict(_later_attributes.get(key, {}), **attributes)
    for probe in list(_probes):
        if (probe.attributes.get(semconv.CODE_FILE_PATH), probe.attributes.get(semconv.CODE_LINE_NUMBER)) == key:
            probe.set_attributes(dict(probe.attributes, **attributes))


_redactions: Dict[str, str] = {}


def _redacted(text: str) -> str:
    """Redacted marker text, remembered: a module or class marker gives many functions the
    same prompt."""
    found = _redactions.get(text)
    if found is None:
        found = _settings.redact(text)
        if len(_redactions) < 1024:
            _redactions[text] = found
    return found


def function(record: Provenance, path: str, parameters: Tuple[str, ...] = (), source_digest: str = "") -> FunctionProbe:
    """Called once per marked function when its module runs, with the scanner's record of
    it (rebuilt in the rewritten module), the file it loads from, with shapes on, its
    parameter names, and the digest of its source lines."""
    marker = record.marker
    line = record.def_line
    attributes: Dict[str, Any] = {
        semconv.CODE_FUNCTION_NAME: record.qualname,
        semconv.CODE_FILE_PATH: path,
        semconv.CODE_LINE_NUMBER: line,
        semconv.PROVENANCE_TOOL: marker.tool,
        semconv.PROVENANCE_SOURCE: record.source,
    }
    if marker.date:
        attributes[semconv.PROVENANCE_DATE] = marker.date
    if source_digest:
        attributes[semconv.SOURCE_SHA256] = source_digest
    prompt = marker.prompt
    if prompt and _settings.capture_prompt and _settings.prompt_max_length > 0:
        cut = _settings.prompt_max_length
        attributes[semconv.PROVENANCE_PROMPT] = _redacted(prompt[: cut + _REDACTION_LOOKAHEAD])[:cut]
    for key, value in marker.fields:
        attributes.setdefault(semconv.provenance_field(key), _redacted(value[:_REDACTION_LOOKAHEAD]))
    attributes.update(_later_attributes.get((path, line), ()))
    metric_attributes = {
        semconv.CODE_FUNCTION_NAME: record.qualname,
        semconv.PROVENANCE_TOOL: marker.tool,
        semconv.CODE_FILE_PATH: path,
    }
    probe = FunctionProbe(record.qualname, attributes, metric_attributes, parameters)
    _probes.append(probe)
    return probe
