"""The marker grammar: which comments are markers, and what their fields say.

    # AI-generated: GPT-4, 2024-01-15, prompt: "optimize database query", reviewed=yes

After ``AI-generated:`` come comma-separated items. An item ``key: value`` or
``key=value`` is a field; ``tool``, ``date`` and ``prompt`` are the named ones. Of the
items that are not fields, the first is the tool and one that looks like an ISO date
is the date. Values may be quoted ("..." or '...', backslash escapes the quote);
an unquoted value that runs on past a comma keeps the rest (``prompt: sort, fast``).
Pure: strings in, values out.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, List, Optional, Pattern, Sequence, Tuple

from .digest import sha256_hex
if TYPE_CHECKING:  # the records load with the first marker parsed
    from .records import Marker

# `AI-generated` must be followed by a colon or end the comment, so prose such as
# "# AI-generated code below is slow" is not mistaken for a marker. The word is
# accepted in lower, Title or UPPER case only: the bytes pre-filter looks for those.
_MARKER_RE = re.compile(r"#+\s*[Aa][Ii][-_ ]?(?:generated|Generated|GENERATED)\s*(?::(?P<rest>.*))?$", re.DOTALL)
_IGNORE_RE = re.compile(r"#+\s*aiotel\s*:\s*ignore\b", re.IGNORECASE)
_KEY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)\s*[:=]\s*(.*)$", re.DOTALL)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][0-9:.+\-Z]*)?$")


class MarkerPatternError(ValueError):
    """An extra marker pattern (AIOTEL_MARKERS) is not a valid regular expression."""


class MarkerConfig:
    """The marker spellings in force: the built-in one plus the user's extra patterns.

    Extra patterns are matched, case-insensitively, from the start of a comment's text
    (after ``#`` and spaces). Named groups become fields (``tool``, ``date``, ``prompt``
    or any other name); text after the match that starts with a comma is read with
    the standard field grammar. Immutable, compared by its patterns (a plain class, not
    a dataclass: start-up builds one, and importing dataclasses costs it 6 ms).
    """

    __slots__ = ("extra_patterns", "compiled")
    extra_patterns: Tuple[str, ...]
    compiled: Tuple[Pattern[str], ...]

    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        compiled = []
        for pattern in extra_patterns:
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise MarkerPatternError(f"marker pattern {pattern!r} is not a valid regular expression: {exc}") from None
        object.__setattr__(self, "extra_patterns", tuple(extra_patterns))
        object.__setattr__(self, "compiled", tuple(compiled))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"MarkerConfig is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MarkerConfig) and other.extra_patterns == self.extra_patterns

    def __hash__(self) -> int:
        return hash(self.extra_patterns)

    def __repr__(self) -> str:
        return f"MarkerConfig(extra_patterns={self.extra_patterns!r})"

    @property
    def fingerprint(self) -> str:
        """Changes whenever the patterns change (part of the scan cache key)."""
        if not self.extra_patterns:
            return _NO_EXTRA_PATTERNS
        return sha256_hex("\0".join(self.extra_patterns).encode())[:16]


DEFAULT_MARKERS = MarkerConfig()


def is_ignore_comment(comment: str) -> bool:
    """``# aiotel: ignore`` opts a function, class or module out."""
    return _IGNORE_RE.match(comment) is not None


def marker_text(comment: str, config: MarkerConfig) -> Optional[Tuple[int, str]]:
    """If this comment starts a marker, the index of the spelling that matched and the text after it.

    Index 0 is the built-in ``AI-generated`` spelling, 1.. the extra patterns.
    """
    match = _MARKER_RE.match(comment)
    if match is not None:
        return 0, match.group("rest") or ""
    body = comment.lstrip("#").strip()
    for index, pattern in enumerate(config.compiled, start=1):
        if pattern.match(body):
            return index, body
    return None


def parse_marker(lines: Sequence[str], spelling: int, text: str, config: MarkerConfig) -> Tuple[Marker, List[str]]:
    """Read a marker's fields; returns the marker and what was ignored, in words."""
    problems: List[str] = []
    pairs: List[Tuple[str, str]] = []
    if spelling > 0:
        match = config.compiled[spelling - 1].match(text)
        assert match is not None
        pairs.extend((k.lower(), v.strip()) for k, v in match.groupdict().items() if v is not None)
        rest = text[match.end() :].strip()
        text = rest[1:] if rest.startswith(",") else ""
        if rest and not rest.startswith(","):
            pairs.append(("note", rest))
    items, unterminated = _split_items(text)
    if unterminated:
        problems.append("a quote is never closed; the value runs to the end of the marker")
    positional: List[str] = []
    last_key: Optional[str] = None
    for item, quoted in items:
        key_match = None if quoted else _KEY_RE.match(item)
        if key_match is not None:
            key = key_match.group(1).lower().replace("-", "_")
            value, _ = _unquote(key_match.group(2).strip())
            pairs.append((key, value))
            last_key = key
        elif last_key is not None and not quoted and not _DATE_RE.match(item):
            # An unquoted value with a comma in it: `prompt: sort users, fast`.
            key, value = pairs[-1]
            pairs[-1] = (key, f"{value}, {item}")
        else:
            positional.append(_unquote(item)[0])

    fields = dict(pairs)
    tool = fields.pop("tool", None)
    date = fields.pop("date", None)
    prompt = fields.pop("prompt", None)
    for value in positional:
        if date is None and _DATE_RE.match(value):
            date = value
        elif tool is None:
            tool = value
        else:
            problems.append(f"ignored {value!r}: only a tool and a date may stand without a key")
    if date is not None and not _valid_date(date):
        problems.append(f"date {date!r} is not an ISO date (YYYY-MM-DD); kept as written")
    from .records import UNKNOWN_TOOL, Marker, sorted_fields

    marker = Marker(
        tool=tool or UNKNOWN_TOOL,
        date=date or None,
        prompt=prompt,
        fields=sorted_fields(list(fields.items())),
        raw="\n".join(lines),
    )
    return marker, problems


def continues_marker(previous_text: str, next_comment: str) -> bool:
    """Whether a comment line directly below a marker line carries on its fields.

    It does when the text so far ends with a comma or leaves a quote open, or when
    the next line is indented (``#   prompt: ...``).
    """
    body = next_comment.lstrip("#")
    if not body.strip():
        return False
    if _IGNORE_RE.match(next_comment) or _MARKER_RE.match(next_comment):
        return False
    if previous_text.rstrip().endswith(","):
        return True
    if _split_items(previous_text)[1]:
        return True
    return body.startswith("  ")


# sha256("")[:16], the fingerprint of the built-in spelling alone, computed at every start
_NO_EXTRA_PATTERNS = "e3b0c44298fc1c14"


def continuation_text(comment: str) -> str:
    return comment.lstrip("#").strip()


def _valid_date(value: str) -> bool:
    import datetime  # here: only marked files get this far

    try:
        datetime.date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def _split_items(text: str) -> Tuple[List[Tuple[str, bool]], bool]:
    """Split on commas outside quotes. Returns (item, starts-with-quote) pairs and
    whether a quote was left open."""
    items: List[Tuple[str, bool]] = []
    current: List[str] = []
    quote: Optional[str] = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            current.append(ch)
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'" and _opens_quote(current):
            quote = ch
            current.append(ch)
        elif ch == ",":
            items.append(_item("".join(current)))
            current = []
        else:
            current.append(ch)
        i += 1
    items.append(_item("".join(current)))
    return [item for item in items if item[0]], quote is not None


def _opens_quote(current: List[str]) -> bool:
    """A quote opens a value only at the start of an item or right after `:`/`=`
    (so the apostrophe in `don't` is just a letter)."""
    before = "".join(current).rstrip()
    return not before or before[-1] in ":="


def _item(raw: str) -> Tuple[str, bool]:
    stripped = raw.strip()
    return stripped, stripped[:1] in ("'", '"')


def _unquote(value: str) -> Tuple[str, bool]:
    if len(value) >= 1 and value[0] in "\"'":
        quote = value[0]
        body = value[1:]
        if body.endswith(quote) and not body.endswith("\\" + quote):
            body = body[:-1]
        return body.replace("\\" + quote, quote), True
    return value, False
