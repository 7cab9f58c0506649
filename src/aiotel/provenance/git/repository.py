"""A git checkout as aiotel sees it: its ``.git`` directory (worktrees and submodules
followed), HEAD read from the repository files, and git run on it with a timeout.

No answer is ever an error for the caller: a missing ``.git`` or HEAD is None; a git
that is missing, slow or failing raises ``GitError`` with the reason in one line.
"""

from __future__ import annotations

import os
import subprocess
from typing import Optional, Set

GIT_TIMEOUT_SECONDS = 10.0


class GitError(Exception):
    """git could not answer (not installed, timed out, failed): the reason, in one line."""


def find_git_dir(start: str) -> Optional[str]:
    """The ``.git`` directory of the repository holding ``start`` (a worktree's or
    submodule's ``gitdir:`` file followed), or None."""
    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, ".git")
        if os.path.isdir(candidate):
            return candidate
        if os.path.isfile(candidate):
            try:
                with open(candidate) as fh:
                    line = fh.read().strip()
                if line.startswith("gitdir:"):
                    return os.path.normpath(os.path.join(directory, line[7:].strip()))
            except OSError:
                return None
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _common_dir(git_dir: str) -> str:
    commondir = os.path.join(git_dir, "commondir")
    if os.path.isfile(commondir):
        with open(commondir) as fh:
            return os.path.normpath(os.path.join(git_dir, fh.read().strip()))
    return git_dir


def head_revision(git_dir: str) -> Optional[str]:
    """HEAD's commit, read from the repository files (no git process)."""
    try:
        with open(os.path.join(git_dir, "HEAD")) as fh:
            head = fh.read().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head[4:].strip()
        common = _common_dir(git_dir)
        for base in (git_dir, common):
            path = os.path.join(base, ref)
            if os.path.isfile(path):
                with open(path) as fh:
                    return fh.read().strip() or None
        with open(os.path.join(common, "packed-refs")) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except OSError:
        pass
    return None


class Repository:
    """One checkout: its ``.git`` directory, work tree and current HEAD."""

    def __init__(self, git_dir: str, root: str, head: str) -> None:
        self.git_dir = git_dir
        self.root = root
        self.head = head
        self.shallow_edge: Set[str] = set()  # a shallow clone's grafted commits: blame stops there
        try:
            with open(os.path.join(_common_dir(git_dir), "shallow")) as fh:
                self.shallow_edge = {line.strip() for line in fh if line.strip()}
        except OSError:
            pass

    def relative(self, path: str) -> Optional[str]:
        real = os.path.realpath(path)
        root = os.path.realpath(self.root)
        if not real.startswith(os.path.join(root, "")):
            return None
        return os.path.relpath(real, root).replace(os.sep, "/")

    def run(self, *args: str) -> str:
        """Run git on this repository; raises GitError with the reason."""
        env = dict(os.environ, GIT_DIR=self.git_dir, GIT_WORK_TREE=self.root, GIT_OPTIONAL_LOCKS="0",
                   GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        env.pop("GIT_INDEX_FILE", None)
        try:
            done = subprocess.run(
                ["git", "-c", "core.quotePath=false", *args],
                cwd=self.root, env=env, capture_output=True, timeout=GIT_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise GitError("git is not installed") from None
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took more than {GIT_TIMEOUT_SECONDS:g} s") from None
        except OSError as exc:
            raise GitError(f"git could not run: {exc.strerror or exc}") from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed: {message[0] if message else 'exit status ' + str(done.returncode)}")
        return done.stdout.decode("utf-8", "surrogateescape")
