"""Which git trailers make a commit AI-generated, and the tool they name. Pure text."""

from __future__ import annotations

import re
from typing import List, NamedTuple, Optional, Sequence, Tuple

DEFAULT_AI_TRAILERS = ("Generated-by", "Assisted-by")
DEFAULT_AI_COAUTHORS = (
    "Copilot", "Claude", "Cursor", "Codex", "Aider", "Devin", "ChatGPT", "OpenAI", "Gemini", "Windsurf",
    "Codeium", "Tabnine", "Amazon Q", "CodeWhisperer", "Jules", "OpenHands", "Cline", "Sweep",
)


class TrailerRules(NamedTuple):  # not a dataclass: start-up reads this module, and dataclasses costs 6 ms
    """Which trailers make a commit AI-generated, and what tool they name.

    A trailer in ``keys`` (``Generated-by: Cursor``) names the tool whatever it says; a
    ``Co-authored-by`` trailer counts only when its name or address contains one of
    ``coauthors`` (people co-author too), and then its name part is the tool."""

    keys: Tuple[str, ...] = DEFAULT_AI_TRAILERS
    coauthors: Tuple[str, ...] = DEFAULT_AI_COAUTHORS

    def grep_pattern(self) -> str:
        keys = [re.escape(k.lower()) for k in self.keys + ("Co-authored-by",)]
        return "^(" + "|".join(keys) + "):"

    def tool(self, trailers: Sequence[Tuple[str, str]]) -> Optional[str]:
        keys = {k.lower() for k in self.keys}
        names = [n.lower() for n in self.coauthors if n]
        for key, value in trailers:
            key = key.strip().lower()
            name = value.split("<", 1)[0].strip() or value.strip()
            if key in keys and name:
                return name[:100]
            if key == "co-authored-by" and any(n in value.lower() for n in names):
                return name[:100]
        return None


def parse_trailers(text: str) -> List[Tuple[str, str]]:
    """``Key: value`` lines, as ``git log --format=%(trailers:unfold)`` prints them."""
    found = []
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() and " " not in key.strip():
            found.append((key.strip(), value.strip()))
    return found
