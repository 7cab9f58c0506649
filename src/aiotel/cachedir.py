"""aiotel's cache directory: where it is, and how a file in it is written.

Everything aiotel caches across processes (scan results, the unmarked index, the git
cache, the installed-instrumentor list) lives there and is written through
``write_atomically``, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional


def write_atomically(path: str, data: bytes) -> Optional[str]:
    """Write ``data`` to ``path`` through a temporary file (``0600``) in the same directory,
    renamed into place, creating the directory (``0700``). Returns None, or why it failed;
    nothing is left behind then."""
    import tempfile  # here: a process that writes no cache never needs it

    folder = os.path.dirname(path)
    tmp = None
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return None
    except (OSError, ValueError) as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return f"{getattr(exc, 'strerror', None) or exc}"


def default_cache_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_CACHE_HOME/aiotel/scan``, else ``~/.cache/aiotel/scan`` (``environ`` from config)."""
    home = environ.get("HOME") or os.path.expanduser("~")
    base = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "aiotel", "scan")
