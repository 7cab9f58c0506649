"""Secrets out of text before it leaves the process: marker prompts and fields, exception
messages and stack traces on spans.

Built-in patterns catch the secrets most often pasted into prompts and error messages;
``AIOTEL_REDACT`` adds more. A match is replaced by ``[REDACTED]``; when a pattern has a
group named ``secret``, only that group is (``password=[REDACTED]`` keeps its key).
"""

from __future__ import annotations

import re
from typing import Pattern, Sequence, Tuple

REPLACEMENT = "[REDACTED]"

BUILT_IN: Tuple[str, ...] = (
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}\b",  # GitHub tokens
    r"\bsk-[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic and similar API keys
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack tokens
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API keys
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JSON Web Tokens
    r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/-]{12,}=*)",
    # key = value, the key possibly prefixed (db_password, GITHUB_TOKEN)
    r"(?i)\b\w*?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)"
    r"\b[\"']?\s*[:=]\s*(?P<secret>\"[^\"]*\"|'[^']*'|[^\s\"',;]+)",
    r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/:@]+:(?P<secret>[^\s/@]+)@",  # credentials in a URL
)


class Redactor:
    """Applies the built-in patterns and ``extra`` ones (validated by ``config``)."""

    def __init__(self, extra: Sequence[str] = ()) -> None:
        self.patterns: Tuple[Pattern[str], ...] = tuple(re.compile(p) for p in BUILT_IN + tuple(extra))

    def __call__(self, text: str) -> str:
        for pattern in self.patterns:
            if "secret" in pattern.groupindex:
                text = pattern.sub(_replace_secret_group, text)
            else:
                text = pattern.sub(REPLACEMENT, text)
        return text


def _replace_secret_group(match: "re.Match[str]") -> str:
    start, end = match.span("secret")
    if start < 0:
        return REPLACEMENT
    whole = match.group(0)
    offset = match.start(0)
    return whole[: start - offset] + REPLACEMENT + whole[end - offset:]
