"""The directory the HTML report writes: created 0700 with 0600 files, as the store is (the
pages hold error messages), and never a file overwritten that the report did not write:
a directory that is not empty and holds no manifest of an earlier report is refused."""

from __future__ import annotations

import json
import os
from typing import List

MANIFEST = "aiotel-report.json"


class ReportError(Exception):
    """The site cannot be written where asked (said as one line, exit 2)."""


def prepare(directory: str) -> List[str]:
    """Create ``directory`` (0700), or check that it is this report's; the files an earlier
    report wrote there (to be replaced)."""
    if not os.path.exists(directory):
        os.makedirs(directory, mode=0o700)
        return []
    if os.path.islink(directory) or not os.path.isdir(directory):
        raise ReportError(f"{directory} is not a directory")
    entries = os.listdir(directory)
    if not entries:
        return []
    manifest = os.path.join(directory, MANIFEST)
    try:
        with open(manifest, encoding="utf-8") as fh:
            earlier = json.load(fh)
        if earlier.get("written_by") != "aiotel report --html":
            raise ValueError("not aiotel's")
        return [str(name) for name in earlier.get("files", []) if "/" not in str(name)]
    except (OSError, ValueError, AttributeError):
        raise ReportError(f"{directory} is not empty and holds no {MANIFEST} of an earlier report: "
                          "not overwriting files aiotel did not write (give an empty or new directory)") from None


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def write_private(directory: str, name: str, text: str) -> None:
    """``name`` in ``directory``, mode 0600: created, or, when an earlier report wrote it,
    replaced whole (a temporary file, then a rename: a reader never sees half a page)."""
    final = os.path.join(directory, name)
    data = text.encode("utf-8")
    try:
        fd = os.open(final, _NEW_FILE, 0o600)
    except FileExistsError:
        temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
        fd = os.open(temporary, _NEW_FILE, 0o600)
        try:
            _write_all(fd, data)
            os.replace(temporary, final)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        return
    try:
        _write_all(fd, data)
    except BaseException:
        os.unlink(final)  # half a page is never left behind
        raise


def _write_all(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
