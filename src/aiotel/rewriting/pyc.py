"""The rewritten bytecode's cache: next to the normal pyc, under aiotel's own tag.

``mod.cpython-311-aiotel-<version>-<fingerprint>.pyc``: plain Python never loads it, and
a change of aiotel, of ``AIOTEL_MARKERS`` or of the rewrite's options never reuses it.
Invariant (as pytest's rewriter keeps it): the cached pyc is always complete. It is
written to a temporary name and renamed into place (atomic on POSIX); a write that
fails is said once, and the module is rewritten at each start.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import sys
import threading
from types import CodeType
from typing import Optional

from .. import log
from .._version import __version__


def rewritten_pyc_path(source_path: str, fingerprint: str) -> Optional[str]:
    """Where the rewritten bytecode of ``source_path`` is cached (honours pycache_prefix)."""
    try:
        normal = importlib.util.cache_from_source(source_path)
    except (NotImplementedError, ValueError):
        return None
    base, ext = os.path.splitext(normal)
    return f"{base}-aiotel-{__version__}-{fingerprint}{ext}"


def source_invalidation(source_path: str) -> int:
    """How the source's own pyc is invalidated (PEP 552 flags): 0 by mtime and size,
    0b11 by a hash of the source (checked), 0b01 by a hash never checked. The rewritten
    pyc follows it: a build with fixed mtimes (reproducible images) uses hash-based pycs,
    where mtime and size say nothing about a changed source."""
    try:
        with open(importlib.util.cache_from_source(source_path), "rb") as fh:
            head = fh.read(8)
    except (OSError, NotImplementedError, ValueError):
        return 0
    if len(head) < 8 or head[:4] != importlib.util.MAGIC_NUMBER:
        return 0
    return int.from_bytes(head[4:8], "little") & 0b11


def _pyc_header(st: os.stat_result, source: bytes, flags: int) -> bytes:
    # the stock pyc header: magic, flags, then the source's mtime and size, or its hash
    if flags & 0b01:
        return importlib.util.MAGIC_NUMBER + flags.to_bytes(4, "little") + importlib.util.source_hash(source)
    return (
        importlib.util.MAGIC_NUMBER
        + (0).to_bytes(4, "little")
        + (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
        + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    )


def _check_source(flags: int) -> bool:
    """Whether a hash-based pyc is checked against its source, as the interpreter decides
    (``--check-hash-based-pycs``)."""
    try:
        import _imp

        mode = _imp.check_hash_based_pycs
    except (ImportError, AttributeError):
        mode = "default"
    return mode == "always" or (mode == "default" and bool(flags & 0b10))


def read_pyc(pyc: str, st: os.stat_result, source: bytes = b"", flags: int = 0) -> Optional[CodeType]:
    """The cached code if it was made from this source (by mtime and size, or by hash, as
    ``flags`` says), else None."""
    try:
        with open(pyc, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    header = _pyc_header(st, source, flags)
    if flags & 0b01 and not _check_source(flags):
        header = header[:8]  # an unchecked hash: Python would not look at the source either
    if data[: len(header)] != header:
        return None
    try:
        code = marshal.loads(data[16:])
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


_said_about_pyc = False


def write_pyc(pyc: str, code: CodeType, st: os.stat_result, source: bytes = b"", flags: int = 0) -> bool:
    """Atomically write ``pyc``; False (and nothing half-written) when the directory refuses,
    which is said once per process."""
    if sys.dont_write_bytecode:
        return False
    temporary = f"{pyc}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.makedirs(os.path.dirname(pyc), exist_ok=True)
        with open(temporary, "wb") as fh:
            fh.write(_pyc_header(st, source, flags))
            fh.write(marshal.dumps(code))
        os.replace(temporary, pyc)
        return True
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        global _said_about_pyc
        if not _said_about_pyc:
            _said_about_pyc = True
            log.warn(f"cannot cache rewritten code in {os.path.dirname(pyc)} ({exc.strerror or exc}); "
                     "marked modules are rewritten at each start")
        return False
