"""The values the provenance scanner returns: plain data, JSON round-trippable."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

# Where a function's provenance came from (the `aiotel.provenance.source` attribute).
SOURCE_COMMENT = "comment"
SOURCE_MODULE = "module"
SOURCE_CLASS = "class"
SOURCE_DECORATOR = "decorator"
SOURCE_GIT = "git"  # no marker: the commit that last changed most of its lines has an AI trailer
SOURCE_CONTROL = "control"  # no marker: an AI rewrite's marker names it (`replaces:`), see provenance.pairs

UNKNOWN_TOOL = "unknown"
EXPERIMENT_REFUSED = "experiment not shadowed: "  # how a refused pair's notice starts (see provenance.pairs)
CANDIDATE, CONTROL = "candidate", "control"  # an experiment arm, first in Provenance.shadow (see provenance.pairs)


@dataclasses.dataclass(frozen=True)
class Marker:
    """What one marker says: tool, optional date and prompt, and every other field."""

    tool: str = UNKNOWN_TOOL
    date: Optional[str] = None
    prompt: Optional[str] = None
    fields: Tuple[Tuple[str, str], ...] = ()
    raw: str = ""

    def field_dict(self) -> Dict[str, str]:
        return dict(self.fields)


@dataclasses.dataclass(frozen=True)
class Provenance:
    """One marked function, as found in its module's source."""

    qualname: str  # module name + "." + the function's __qualname__
    module: str
    def_line: int  # line of `def` / `async def` (ast's FunctionDef.lineno)
    first_line: int  # first decorator line, else def_line (the code object's co_firstlineno)
    last_line: int
    is_async: bool
    is_generator: bool
    is_async_generator: bool
    source: str  # one of the SOURCE_* values
    marker: Marker
    # an arm of an experiment (see provenance.pairs): (this arm, "candidate" or "control";
    # the other arm's module and local qualname; the comparator)
    shadow: Optional[Tuple[str, str, str, str]] = None

    @property
    def crosses_modules(self) -> bool:
        """Whether this is an arm of a pair whose other arm is in another module."""
        return self.shadow is not None and self.shadow[1] != self.module

    @property
    def local_qualname(self) -> str:
        """The function's own ``__qualname__`` (without the module)."""
        return self.qualname[len(self.module) + 1 :] if self.module else self.qualname

    def to_json(self) -> Dict[str, Any]:
        return {
            "qualname": self.qualname,
            "module": self.module,
            "def_line": self.def_line,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "is_async": self.is_async,
            "is_generator": self.is_generator,
            "is_async_generator": self.is_async_generator,
            "source": self.source,
            "tool": self.marker.tool,
            "date": self.marker.date,
            "prompt": self.marker.prompt,
            "fields": self.marker.field_dict(),
            "marker": self.marker.raw,
            "shadow": list(self.shadow) if self.shadow else None,
        }

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Provenance":
        marker = Marker(
            tool=data["tool"],
            date=data["date"],
            prompt=data["prompt"],
            fields=tuple(sorted(data["fields"].items())),
            raw=data["marker"],
        )
        return cls(
            qualname=data["qualname"],
            module=data["module"],
            def_line=data["def_line"],
            first_line=data["first_line"],
            last_line=data["last_line"],
            is_async=data["is_async"],
            is_generator=data["is_generator"],
            is_async_generator=data["is_async_generator"],
            source=data["source"],
            marker=marker,
            shadow=tuple(data["shadow"]) if data.get("shadow") else None,  # type: ignore[arg-type]
        )


@dataclasses.dataclass(frozen=True)
class Notice:
    """Something in a file that aiotel ignored, and why (said once to the user)."""

    line: int
    message: str

    def to_json(self) -> Dict[str, Any]:
        return {"line": self.line, "message": self.message}


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """Everything the scanner found in one file.

    ``skipped`` is None when the file was read; otherwise it says why it was not
    (too large, undecodable, a syntax error...), and ``functions`` is empty.
    """

    path: str
    module: str
    functions: Tuple[Provenance, ...] = ()
    notices: Tuple[Notice, ...] = ()
    skipped: Optional[str] = None
    # the controls of this file's cross-module pairs: records of functions of other modules
    # (see provenance.cross_pairs); never cached, they depend on those modules' files
    controls: Tuple[Provenance, ...] = ()

    def to_json(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "module": self.module,
            "functions": [f.to_json() for f in self.functions],
            "notices": [n.to_json() for n in self.notices],
            "skipped": self.skipped,
        }

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "ScanResult":
        return cls(
            path=data["path"],
            module=data["module"],
            functions=tuple(Provenance.from_json(f) for f in data["functions"]),
            notices=tuple(Notice(n["line"], n["message"]) for n in data["notices"]),
            skipped=data["skipped"],
        )


def sorted_fields(pairs: List[Tuple[str, str]]) -> Tuple[Tuple[str, str], ...]:
    """Fields in a stable order, the last value winning for a repeated key."""
    return tuple(sorted(dict(pairs).items()))
