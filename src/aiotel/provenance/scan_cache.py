"""On-disk cache of scan results, keyed by (path, size, mtime, aiotel version, markers).

Invariant: a cache file is always a complete JSON document. Writes go to a temporary
file in the same directory and are renamed into place (atomic on POSIX and Windows).
Any failure to read or write simply means no cache: a read-only home, a full disk or a
race with another process must never reach the user.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from .._version import __version__
from ..cachedir import write_atomically
from .digest import sha256_hex
from .grammar import MarkerConfig

if TYPE_CHECKING:  # the records load with the first cached scan read
    from .records import ScanResult

_FORMAT = 3  # 3: Provenance.shadow names both arms, across modules too


class ScanCache:
    """``get``/``put`` scan results for a file whose ``os.stat`` result the caller has."""

    def __init__(self, directory: Optional[str], config: MarkerConfig) -> None:
        self.directory = directory
        self.problem: Optional[str] = None  # why the first write failed, for the caller to say once
        self._salt = f"{_FORMAT}\0{__version__}\0{config.fingerprint}\0"

    def _entry(self, path: str, st: os.stat_result) -> Optional[str]:
        if not self.directory:
            return None
        key = f"{self._salt}{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}"
        digest = sha256_hex(key.encode("utf-8", "surrogateescape"))
        return os.path.join(self.directory, digest[:2], digest[2:] + ".json")

    def get(self, path: str, st: os.stat_result) -> Optional[ScanResult]:
        entry = self._entry(path, st)
        if entry is None:
            return None
        import json

        from .records import ScanResult

        try:
            with open(entry, "rb") as fh:
                return ScanResult.from_json(json.loads(fh.read()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, path: str, st: os.stat_result, result: ScanResult) -> bool:
        """Store ``result``; False when the cache could not be written (never raises)."""
        entry = self._entry(path, st)
        if entry is None:
            return False
        import json

        payload = json.dumps(result.to_json(), separators=(",", ":")).encode("utf-8", "surrogateescape")
        problem = write_atomically(entry, payload)
        if problem is not None and self.problem is None:
            self.problem = problem
        return problem is None


class UnmarkedIndex:
    """Files the pre-filter found no marker in, keyed by size and mtime as Python keys its
    own bytecode cache: a warm import of an unmarked module costs a ``stat``, not a read.

    One append-only file per cache directory and marker configuration, a line per file
    version (``size NUL mtime_ns NUL path``); the last line for a path wins, a torn or
    foreign line is skipped, and past ``MAX_LINES`` the file starts afresh. Appends of one
    short line with ``O_APPEND`` do not interleave between processes.
    """

    MAX_LINES = 50_000

    def __init__(self, directory: Optional[str], config: MarkerConfig) -> None:
        self.directory = directory
        self.problem: Optional[str] = None  # why the first write failed, for the caller to say once
        self._salt = f"{_FORMAT}\0{__version__}\0{config.fingerprint}"
        self._file: Optional[str] = None
        self._known: Optional[dict] = None  # path -> (size, mtime_ns), read on first use

    def _load(self) -> dict:
        known: dict = {}
        if self.directory:
            digest = sha256_hex(self._salt.encode("utf-8", "surrogateescape"))[:16]
            self._file = os.path.join(self.directory, f"unmarked-{digest}.idx")
            try:
                with open(self._file, "rb") as fh:
                    lines = fh.read().split(b"\n")
            except OSError:
                lines = []
            if len(lines) > self.MAX_LINES:
                try:
                    os.unlink(self._file)
                except OSError:
                    pass
                lines = []
            for line in lines:
                parts = line.split(b"\0")
                if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                    known[os.fsdecode(parts[2])] = (int(parts[0]), int(parts[1]))
        self._known = known
        return known

    def has(self, path: str, st: os.stat_result) -> bool:
        known = self._known if self._known is not None else self._load()
        return known.get(path) == (st.st_size, st.st_mtime_ns)

    def add(self, path: str, st: os.stat_result) -> None:
        """Remember that this version of ``path`` carries no marker (never raises)."""
        known = self._known if self._known is not None else self._load()
        known[path] = (st.st_size, st.st_mtime_ns)
        encoded = os.fsencode(path)
        if self._file is None or self.problem is not None or b"\n" in encoded:
            return
        line = b"%d\0%d\0%s\n" % (st.st_size, st.st_mtime_ns, encoded)
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)  # type: ignore[arg-type]
            fd = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except (OSError, ValueError) as exc:
            self.problem = f"{getattr(exc, 'strerror', None) or exc}"
