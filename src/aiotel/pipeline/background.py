"""aiotel's own set-up, off the program's threads.

The first marked call would otherwise pay for building the exporters and the meter
provider (their imports: 40-200 ms) before the program gets its result back. ``run``
does that work in a thread of its own, started by that first call, never at start-up
(pre-fork servers must fork a process without threads).

Two risks come with a thread that imports, and ``settle`` answers both:

- a fork while it imports would leave the module locks it holds taken for ever in the
  child: before every ``os.fork`` the thread is waited for (bounded: ``SET_UP_WAIT``);
- at exit its work must be done before the flush: the flush waits for it first, within
  its own time budget.

The call that starts the thread does not wait for it, and the thread sleeps a moment
before its work, so that call finishes first.
"""

from __future__ import annotations

import _thread
import os
import threading
import time
from typing import Any, Callable, List

# How long a fork, or a span with no room left to wait in, waits for a set-up still
# running. One that takes longer is stuck (on a lock the waiting thread holds, say): the
# fork goes on and the child is told; the span overflows.
SET_UP_WAIT = 2.0

# How long the end of the program waits for a set-up still running (half the exit
# budget, AIOTEL_SHUTDOWN_TIMEOUT; set by the pipeline)
EXIT_WAIT = [0.5]

_running: List[Any] = []  # a lock per task, held while it runs
_lock = threading.Lock()
_unsettled_fork = [False]  # the last fork happened while the set-up still ran
_inside = threading.local()  # set in the set-up's own threads: they never wait for themselves
_hooked = [False]


def run(task: Callable[[], None]) -> None:
    """Run ``task`` in a thread of its own; in place where no thread can start (at exit).

    A bare ``_thread`` thread: ``threading.Thread.start`` waits until the new thread has
    run, which, with the interpreter lock to hand over, costs the caller 0.2 to 10 ms."""
    _hook_forks()
    done = _thread.allocate_lock()
    done.acquire()

    def body() -> None:
        try:
            _inside.task = True
            time.sleep(0.001)  # the call that started it goes on first
            task()
        except BaseException as exc:  # a thread's end is no place to raise
            try:
                from .. import log

                log.warn(f"telemetry set-up failed ({type(exc).__name__}: {exc})")
            except BaseException:
                pass
        finally:
            done.release()

    with _lock:
        _running[:] = [lock for lock in _running if lock.locked()] + [done]
    try:
        _thread.start_new_thread(body, ())
    except RuntimeError:  # interpreter shutdown: no new threads (3.12+)
        inside = getattr(_inside, "task", False)
        _inside.task = True
        try:
            task()
        finally:
            _inside.task = inside
            done.release()


def settle(timeout: float) -> bool:
    """Wait for the set-up still running, up to ``timeout`` seconds; True when none is left."""
    if getattr(_inside, "task", False):
        return not running()
    deadline = time.monotonic() + timeout
    with _lock:
        locks = list(_running)
    for lock in locks:
        if lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            lock.release()
    return not running()


def settle_at_exit() -> bool:
    return settle(EXIT_WAIT[0])


def running() -> bool:
    with _lock:
        _running[:] = [lock for lock in _running if lock.locked()]
        return bool(_running)


def forked_while_running() -> bool:
    """In a forked child: whether the parent's set-up was still running at the fork."""
    return _unsettled_fork[0]


def _before_fork() -> None:
    # a set-up that outlived one wait is not waited for at every later fork
    _unsettled_fork[0] = not settle(0.0 if _unsettled_fork[0] else SET_UP_WAIT)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _running.clear()  # no thread survives a fork


def _hook_forks() -> None:
    """Registered with the first task, not at import: fork hooks registered later run
    first, and ours must run before concurrent.futures' (loaded at start-up by the SDK's
    resource detection), which takes that module's global lock until the fork is done,
    a lock the set-up needs to detect its resources."""
    if not _hooked[0] and hasattr(os, "register_at_fork"):
        _hooked[0] = True
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
