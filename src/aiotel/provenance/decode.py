"""Source bytes to text, the way the interpreter would read them, or a reason not to."""

from __future__ import annotations

from typing import Union

# Larger files are not scanned (generated tables, vendored bundles). Parsing is linear
# but libcst holds the whole tree in memory: about 1 KB per line.
MAX_SOURCE_BYTES = 4 * 1024 * 1024


# Bytes the interpreter cannot read either: the import will raise, and report it itself.
_REJECTED = "syntax error, Python cannot read it either"


class Unreadable(str):
    """Why a file's bytes are not Python source aiotel can read."""


def decode_source(data: bytes, max_bytes: int = MAX_SOURCE_BYTES) -> Union[str, Unreadable]:
    """Decode per PEP 263 (coding cookie, UTF-8 BOM), or say why not."""
    if len(data) > max_bytes:
        return Unreadable(f"file is {len(data)} bytes, over the {max_bytes}-byte scan limit")
    if b"\0" in data:
        return Unreadable("file contains NUL bytes, which Python source cannot")
    try:
        import io
        import tokenize  # here: start-up reads MAX_SOURCE_BYTES from this module, nothing else

        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except (SyntaxError, LookupError) as exc:
        if not _python_accepts(data):
            return Unreadable(f"{_REJECTED}: cannot tell the source encoding: {_first_line(exc)}")
        encoding = "utf-8"  # undecodable bytes in a comment of the first lines: Python reads on
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        if not _python_accepts(data):
            return Unreadable(f"{_REJECTED}: not valid {encoding}: {_first_line(exc)}")
        # Python does not decode comments: undecodable bytes there are harmless to it, and
        # one replacement character each keeps every line and column where it was
        text = data.decode(encoding, "replace")
    return text


def _python_accepts(data: bytes) -> bool:
    """Whether the interpreter compiles these bytes (asked only of files that fail to decode)."""
    try:
        import ast

        compile(data, "<aiotel-scan>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
