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


def refusal(path: Optional[str]) -> Optional[str]:
    """Why the cache directory ``path`` must not be used, as one sentence, or None.

    What it holds decides what gets imported and instrumented, so, as ssh and pip treat
    their own files, it must be a real directory (checked with ``lstat``: a symbolic link
    is refused) owned by this user and writable by nobody else. A missing one is created
    here, ``0700``, so that nobody can slip one in later; one that cannot be created holds
    nothing to read, and writing to it says why when it fails."""
    if not path:
        return None
    import stat

    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except (OSError, ValueError):
        pass  # a dangling symbolic link is caught below
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return None
    if stat.S_ISLNK(st.st_mode):
        why = "it is a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        return None
    elif hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        why = f"it is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    elif st.st_mode & 0o022:
        who = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002)) if st.st_mode & bit)
        why = f"it is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    else:
        return None
    return f"not using the cache directory {path}: {why}; running without a cache (AIOTEL_CACHE_DIR)"
