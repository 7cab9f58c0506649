"""The process's resident memory, read at the start and the end of each recorded call: the
``aiotel.function.memory.rss_delta`` signal.

Read from ``/proc/self/statm`` through a descriptor kept open from the first recorded
call on (close-on-exec), with ``os.pread``: about 1.5 µs a read on CPython 3.11, most of
it the system call. ``getrusage`` gives only the high-water mark, which never goes down,
so it shows 0 for a call that allocates and frees after the first peak. ``/proc/self``
is resolved when the file is opened, so a forked child opens its own.
Process-wide: another thread's allocations land on whichever call is running. Linux
only; elsewhere no call carries the signal.
"""

from __future__ import annotations

import os
from typing import List

# Bucket bounds of the histogram, in bytes, both ways: a call may also give memory back.
_STEPS = (1 << 14, 1 << 18, 1 << 22, 1 << 26, 1 << 30)  # 16 KiB, 256 KiB, 4 MiB, 64 MiB, 1 GiB
BOUNDS_BYTES = tuple(-step for step in reversed(_STEPS)) + (0,) + _STEPS

_UNOPENED, _UNREADABLE = -2, -1
_fd: List[int] = [_UNOPENED]  # opened at the first recorded call: a process that records none keeps no descriptor
_page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _open() -> int:
    try:
        _fd[0] = os.open("/proc/self/statm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except (OSError, AttributeError):
        _fd[0] = _UNREADABLE
    return _fd[0]


def _reopen_in_child() -> None:
    """The parent's descriptor reads the parent's memory: the child opens its own, when it
    first needs it."""
    old, _fd[0] = _fd[0], _UNOPENED
    if old >= 0:
        try:
            os.close(old)
        except OSError:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reopen_in_child)


def rss() -> int:
    """Resident bytes now; -1 when it cannot be read."""
    fd = _fd[0]
    if fd < 0:
        if fd == _UNREADABLE:
            return -1
        fd = _open()
        if fd < 0:
            return -1
    try:
        fields = os.pread(fd, 96, 0).split()
    except OSError:  # closed under us (a daemon closing every descriptor)
        _fd[0] = _UNREADABLE
        return -1
    if len(fields) != 7 or not fields[1].isdigit():
        _fd[0] = _UNREADABLE
        return -1  # not statm: the number was reused for another file
    return int(fields[1]) * _page
