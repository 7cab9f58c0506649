"""Secrets out of text before it leaves the process: marker prompts and fields, exception
messages and stack traces on spans, the string attributes of aiotel's span events.

Built-in patterns catch the secrets most often pasted into prompts and error messages;
``AIOTEL_REDACT`` adds more. A match is replaced by ``[REDACTED]``; when a pattern has a
group named ``secret``, only that group is (``password=[REDACTED]`` keeps its key).
"""

from __future__ import annotations

import re
from typing import Pattern, Sequence, Tuple

REPLACEMENT = "[REDACTED]"

_SCHEME = r"(?:(?:basic|digest|bearer|negotiate|ntlm|token|aws4-hmac-sha256)\s+)?"

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
    # (Proxy-)Authorization values, the scheme kept: quoted as a repr, a dict or JSON
    # writes them ('Authorization': 'Basic ...', ("authorization", "Digest u=\"x\", ...")),
    # or bare as in a header line (Authorization: Bearer ..., to the end of the line or
    # of the repr that holds it)
    r"(?i)\b(?:proxy-)?authorization\b[\"']?\s*(?:[:=,]|=>)\s*(?P<q>[\"'])" + _SCHEME
    + r"(?P<secret>(?:\\.|(?!(?P=q))[^\\])+)(?P=q)",
    r"(?i)\b(?:proxy-)?authorization\b\s*[:=]\s*" + _SCHEME + r"(?P<secret>[^\s\"'](?:(?!\\[rn])[^\r\n'])*)",
)

# Per built-in pattern, words (lower case) that any match contains: a text holding none of
# them skips the pattern (case-insensitive regexes are the costly part of redaction).
_NEEDLES: Tuple[Tuple[str, ...], ...] = (
    ("private key",), ("akia", "asia"), ("gh", "github_pat_"), ("sk-",), ("xox",), ("aiza",), ("eyj",), ("bearer",),
    ("pass", "pwd", "secret", "token", "key"), ("://",), ("authorization",), ("authorization",),
)

# An AWS secret access key: 40 characters of base64, mixed case (a commit hash is not).
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_NEARBY = 200  # characters between a key id and its secret key
# "password hunter2": a word after the keyword is a secret only when no dictionary word
# looks like it: it has a digit or a symbol among letters, or a capital past its first letter
_SPOKEN_PASSWORD = re.compile(r"(?i)\b(?:password|passwd|pwd)\s+(?P<secret>[^\s\[\]]{4,})")
_LOOKS_SECRET = re.compile(r"(?=.*[A-Za-z])(?:.*[0-9]|.*[^A-Za-z0-9]|.[^A-Z]*[A-Z])")
_TRAILING = ".,;:)'\""  # punctuation after the value, not part of it


class Redactor:
    """Applies the built-in patterns and ``extra`` ones (validated by ``config``)."""

    def __init__(self, extra: Sequence[str] = ()) -> None:
        patterns = BUILT_IN + tuple(extra)
        needles = _NEEDLES + ((),) * len(extra)  # () : always applied
        self.patterns: Tuple[Tuple[Pattern[str], Tuple[str, ...]], ...] = tuple(
            (re.compile(p), n) for p, n in zip(patterns, needles))
        # one search for every needle: most texts (a URL, a host name) hold none, and leave
        # here, unless an AIOTEL_REDACT pattern (no needles) must always be tried
        self._any_needle = None if extra else re.compile("|".join(re.escape(n) for group in needles for n in group))

    def __call__(self, text: str) -> str:
        lowered = text.lower()
        if self._any_needle is not None and self._any_needle.search(lowered) is None:
            return text
        if "akia" in lowered or "asia" in lowered:  # before the id is redacted: the secret is found by it
            text = _aws_secrets(text)
        if "pass" in lowered or "pwd" in lowered:
            text = _SPOKEN_PASSWORD.sub(_spoken_password, text)
        for pattern, needles in self.patterns:
            if needles and not any(needle in lowered for needle in needles):
                continue
            if "secret" in pattern.groupindex:
                text = pattern.sub(_replace_secret_group, text)
            else:
                text = pattern.sub(REPLACEMENT, text)
        return text


def _replace_secret_group(match: "re.Match[str]") -> str:
    start, end = match.span("secret")
    if start < 0:
        return REPLACEMENT
    if match.group("secret").startswith(REPLACEMENT):  # redacted already (by another pattern)
        return match.group(0)
    whole = match.group(0)
    offset = match.start(0)
    return whole[: start - offset] + REPLACEMENT + whole[end - offset:]


def _aws_secrets(text: str) -> str:
    ids = [match.start() for match in _AWS_KEY_ID.finditer(text)]
    if not ids:
        return text

    def near_an_id(match: "re.Match[str]") -> str:
        if any(abs(match.start() - start) <= _AWS_NEARBY for start in ids):
            return REPLACEMENT
        return match.group(0)

    return _AWS_SECRET.sub(near_an_id, text)


def _spoken_password(match: "re.Match[str]") -> str:
    value = match.group("secret").rstrip(_TRAILING)
    if value == REPLACEMENT or value.startswith(("/", "~/", "./")) or not _LOOKS_SECRET.match(value):  # a path
        return match.group(0)
    start = match.start("secret") - match.start(0)
    return match.group(0)[:start] + REPLACEMENT + match.group(0)[start + len(value):]


if len(_NEEDLES) != len(BUILT_IN):  # a pattern added without its needles would take another's
    raise RuntimeError("aiotel.probes.redact: one needle tuple per built-in pattern")
