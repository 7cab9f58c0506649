"""Commit attribution: each marked function's spans name the commit that last changed most
of its lines (``aiotel.provenance.commit`` and ``.commit.time``), so a regression can be
pinned to the generated commit that caused it.

Off the hot path and never blocking start-up. At import the blame cache answers at
once, or the file is queued; a background thread runs ``git blame`` for the queue once
the telemetry pipeline has started (the first marked call, when the exporter threads
start anyway), so a program that forks before that stays single-threaded. Until the
answer arrives, spans go out without the attribute.
"""

from __future__ import annotations

import os
import threading
from typing import List, Sequence, Tuple

from .. import log, semconv
from ..provenance import Provenance
from ..provenance.git import Blame, GitHistory, iso_date
from ..provenance.records import SOURCE_GIT

COMMIT = semconv.PROVENANCE_COMMIT
COMMIT_TIME = semconv.PROVENANCE_COMMIT_TIME


def apply(path: str, records: Sequence[Provenance], blame: Blame) -> int:
    """Give each function of ``records`` its commit; returns how many had one."""
    from .. import probes  # loaded by the marked modules that asked for this

    attributed = 0
    for record in records:
        commit = blame.majority(record.first_line, record.last_line)
        if commit is not None:
            probes.add_attributes(path, record.def_line, {COMMIT: commit.sha, COMMIT_TIME: iso_date(commit.time)})
            attributed += 1
    return attributed


def report_problems(history: GitHistory, what: str) -> None:
    """One line per thing git could not do."""
    while history.problems:
        log.warn(f"{what}: {history.problems.pop(0)}")


class Attribution:
    """The queue of files waiting for ``git blame`` and the thread that works it off."""

    def __init__(self, history: GitHistory) -> None:
        self.history = history
        self._pending: List[Tuple[str, os.stat_result, Tuple[Provenance, ...]]] = []
        self._lock = threading.Lock()
        self._running = False
        self._allowed = False
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def request(self, path: str, st: os.stat_result, records: Sequence[Provenance]) -> None:
        """Attribute the marked functions of ``path`` (called at import; never runs git here)."""
        wanted = tuple(r for r in records if r.source != SOURCE_GIT)  # git records name their commit already
        if not wanted or self.history.repository(path) is None:
            return
        blame = self.history.blame(path, st, cached_only=True)
        if blame is not None:
            apply(path, wanted, blame)
            return
        with self._lock:
            self._pending.append((path, st, wanted))
            start = self._allowed and not self._running
            self._running = self._running or start
        if start:
            self._spawn()

    def allow_background(self) -> None:
        """The pipeline runs: a thread may start now."""
        with self._lock:
            self._allowed = True
            start = bool(self._pending) and not self._running
            self._running = self._running or start
        if start:
            self._spawn()

    def _spawn(self) -> None:
        try:
            threading.Thread(target=self._work, name="aiotel-git-blame", daemon=True).start()
        except RuntimeError:  # interpreter shutting down
            with self._lock:
                self._running = False

    def _work(self) -> None:
        try:
            self._work_off()
            self.history.save()
        except Exception:
            pass
        finally:
            # not running only once the cache is saved: ``wait`` at exit waits for that too
            with self._lock:
                self._running = bool(self._pending) and self._allowed  # queued meanwhile: go on
                again = self._running
            if again:
                self._spawn()

    def _work_off(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    break
                # taken off the queue only when done: a child forked meanwhile redoes it
                item = self._pending[0]
            path, st, records = item
            try:
                blame = self.history.blame(path, st)
                if blame is not None:
                    apply(path, records, blame)
                report_problems(self.history, "commit attribution")
            except Exception as exc:  # a bug here must not reach the program
                log.warn(f"commit attribution failed for {path} ({type(exc).__name__}: {exc})")
            with self._lock:
                if self._pending and self._pending[0] is item:
                    self._pending.pop(0)

    def wait(self, timeout: float) -> bool:
        """True once the queue is worked off and the blame cache saved; at exit (within
        what is left of AIOTEL_SHUTDOWN_TIMEOUT), so that a short program's next run
        names the commits at once instead of blaming again and again."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending and not self._running:
                    return True
            time.sleep(0.01)
        return False

    def _after_fork(self) -> None:
        # the worker thread does not exist in the child: start another for what is left
        self._lock = threading.Lock()
        self._running = False
        if self._pending and self._allowed:
            self._running = True
            self._spawn()
