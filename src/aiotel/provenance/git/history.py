"""Provenance from git history for one process: blame per file and the commits whose
trailers name an AI tool, over a per-repository disk cache, and the functions those
commits wrote.

The cache is one file per repository in the scan cache directory, valid while HEAD stays
the same (blame entries also need the file's size and mtime). Thread-safe: the
attribution worker and the import hook share one ``GitHistory``.
"""

from __future__ import annotations

import ast
import json
import os
import threading
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ...cachedir import write_atomically
from ..digest import sha256_hex
from ..records import SOURCE_GIT, Marker, Provenance
from ..syntax import has_own_yield
from ..trailers import TrailerRules, parse_trailers
from .blame import Blame, Commit, commit_fields, iso_date, parse_blame
from .repository import GitError, Repository, find_git_dir, head_revision

_CACHE_FORMAT = 1
_MAX_CACHED_FILES = 2000


class GitHistory:
    """Blame and AI-trailer lookups for one process, over a per-repository disk cache.

    Thread-safe (the attribution worker and the import hook share it); git runs one
    command at a time."""

    def __init__(self, cache_dir: Optional[str], rules: TrailerRules = TrailerRules()) -> None:
        self.cache_dir = cache_dir
        self.rules = rules
        self._repositories: Dict[str, Optional[Repository]] = {}
        self._caches: Dict[str, dict] = {}
        self._lock = threading.RLock()
        self.problems: List[str] = []  # one line per thing git could not do, for the caller to log
        self._said: Set[str] = set()
        self._git_found: Optional[bool] = None
        self._dirty: Set[str] = set()  # git dirs whose cache changed since the last save
        if hasattr(os, "register_at_fork"):
            # a lock held by a thread at fork stays held in the child
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.RLock()

    def _git_available(self) -> bool:
        if self._git_found is None:
            import shutil

            self._git_found = shutil.which("git") is not None
            if not self._git_found:
                self._problem("git is not installed; no function gets a commit or git provenance")
        return self._git_found

    def repository(self, path: str) -> Optional[Repository]:
        directory = os.path.dirname(os.path.abspath(path))
        with self._lock:
            if directory not in self._repositories:
                git_dir = find_git_dir(directory)
                head = head_revision(git_dir) if git_dir else None
                root = self._work_tree(git_dir) if git_dir and head else None
                self._repositories[directory] = Repository(git_dir, root, head) if git_dir and head and root else None
            return self._repositories[directory]

    @staticmethod
    def _work_tree(git_dir: str) -> Optional[str]:
        if os.path.basename(git_dir) == ".git":
            return os.path.dirname(git_dir)
        gitdir_file = os.path.join(git_dir, "gitdir")  # a linked worktree names its own .git file
        try:
            with open(gitdir_file) as fh:
                return os.path.dirname(fh.read().strip())
        except OSError:
            return None  # a submodule or bare repository: not followed

    # -- the cache file: {"format", "head", "ai": {...} | absent, "blame": {relpath: {...}}}

    def _cache_path(self, repo: Repository) -> Optional[str]:
        if not self.cache_dir:
            return None
        digest = sha256_hex(os.path.realpath(repo.git_dir).encode("utf-8", "surrogateescape"))
        return os.path.join(self.cache_dir, "git", digest[:24] + ".json")

    def _cache(self, repo: Repository) -> dict:
        key = repo.git_dir
        cache = self._caches.get(key)
        if cache is None:
            cache = {}
            path = self._cache_path(repo)
            if path:
                try:
                    with open(path, "rb") as fh:
                        cache = json.loads(fh.read())
                except (OSError, ValueError):
                    cache = {}
            if not isinstance(cache, dict) or cache.get("format") != _CACHE_FORMAT or cache.get("head") != repo.head:
                cache = {"format": _CACHE_FORMAT, "head": repo.head, "blame": {}}
            self._caches[key] = cache
        return cache

    def _save(self, repo: Repository) -> None:
        path = self._cache_path(repo)
        if not path:
            return
        try:
            payload = json.dumps(self._cache(repo), separators=(",", ":")).encode("utf-8", "surrogateescape")
        except ValueError:
            return
        write_atomically(path, payload)  # a failure only means no cache next time

    def _problem(self, what: str) -> None:
        if what not in self._said:  # once per process, even after the caller took it
            self._said.add(what)
            self.problems.append(what)

    # -- blame

    def blame(self, path: str, st: os.stat_result, cached_only: bool = False) -> Optional[Blame]:
        """Who last changed each line of ``path`` (whose current stat is ``st``); None when
        git cannot say. ``cached_only``: never run git, answer from the cache or not at all.
        git runs outside the lock: an import asking the cache never waits for a blame."""
        repo = self.repository(path)
        if repo is None:
            return None
        relative = repo.relative(path)
        if relative is None:
            return None
        key = [st.st_size, st.st_mtime_ns]
        with self._lock:
            entry = self._cache(repo)["blame"].get(relative)
            if isinstance(entry, dict) and entry.get("key") == key:
                try:
                    return Blame(tuple((r[0], r[1], r[2]) for r in entry["runs"]), dict(entry["times"]))
                except (KeyError, TypeError, IndexError):
                    pass
            if cached_only or not self._git_available():
                return None
        try:
            # --root: a root commit is an author like any other; a shallow edge is not
            found = parse_blame(repo.run("blame", "--root", "--porcelain", "--", relative), repo.shallow_edge)
        except GitError as exc:
            if "no such path" not in str(exc) and "not tracked" not in str(exc):
                with self._lock:
                    self._problem(f"{relative}: {exc}")
            found = Blame((), {})  # untracked: every line counts as not committed
        with self._lock:
            entries = self._cache(repo)["blame"]
            if len(entries) >= _MAX_CACHED_FILES:
                entries.clear()
            entries[relative] = {"key": key, "runs": [list(r) for r in found.runs], "times": found.times}
            self._dirty.add(repo.git_dir)
        return found

    def save(self) -> None:
        """Write the caches changed since the last save (atomically; a failure means no cache)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            for repo in [r for r in self._repositories.values() if r is not None and r.git_dir in dirty]:
                self._save(repo)
                dirty.discard(repo.git_dir)

    # -- AI trailers

    def ai_commits(self, repo: Repository) -> Tuple[Dict[str, Commit], Set[str]]:
        """Commits whose trailers name an AI tool, and the files they touched (relative to
        the work tree). One ``git log`` per HEAD, cached."""
        with self._lock:
            cache = self._cache(repo)
            rules_key = [list(self.rules.keys), list(self.rules.coauthors)]
            ai = cache.get("ai")
            if not (isinstance(ai, dict) and ai.get("rules") == rules_key):
                if not self._git_available():
                    return {}, set()
                try:
                    commits, files = self._search_log(repo)
                except GitError as exc:
                    self._problem(f"{repo.root}: {exc}")
                    return {}, set()
                ai = {"rules": rules_key, "commits": {c.sha: [c.time, c.tool] for c in commits.values()},
                      "files": sorted(files)}
                cache["ai"] = ai
                self._save(repo)
            try:
                commits = {sha: Commit(sha, int(v[0]), v[1]) for sha, v in ai["commits"].items()}
                return commits, set(ai["files"])
            except (KeyError, TypeError, ValueError, IndexError):
                cache.pop("ai", None)
                return {}, set()

    def _search_log(self, repo: Repository) -> Tuple[Dict[str, Commit], Set[str]]:
        out = repo.run(
            "log", "-i", "-E", f"--grep={self.rules.grep_pattern()}", "--name-only",
            "--format=%x1e%H%x1f%at%x1f%(trailers:unfold)%x1f", "HEAD",
        )
        commits: Dict[str, Commit] = {}
        files: Set[str] = set()
        for record in out.split("\x1e")[1:]:
            fields = record.split("\x1f")
            if len(fields) < 4:
                continue
            sha, when, trailers, names = fields[0].strip(), fields[1].strip(), fields[2], fields[3]
            tool = self.rules.tool(parse_trailers(trailers))
            if tool is None or not when.isdigit():
                continue
            commits[sha] = Commit(sha, int(when), tool)
            files.update(n.strip() for n in names.splitlines() if n.strip())
        return commits, files


def ai_functions(
    source: bytes, path: str, module: str, blame: Blame, commits: Dict[str, Commit], skip_lines: Set[int]
) -> List[Provenance]:
    """Records for the functions and methods (not nested in functions) whose lines were
    last changed mostly by a commit in ``commits``; functions at ``skip_lines`` (their
    ``def`` lines) already have a marker, which wins."""
    try:
        tree = ast.parse(source, path)
    except (SyntaxError, ValueError):
        return []
    found: List[Provenance] = []

    def visit(body: Sequence[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, prefix + node.name + ".")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno not in skip_lines:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                last = node.end_lineno or node.lineno
                winner = blame.majority(first, last)
                commit = commits.get(winner.sha) if winner else None
                if commit is None or not commit.tool:
                    continue
                own = has_own_yield(node)
                is_async = isinstance(node, ast.AsyncFunctionDef)
                qualname = prefix + node.name
                found.append(Provenance(
                    qualname=f"{module}.{qualname}" if module else qualname,
                    module=module,
                    def_line=node.lineno,
                    first_line=first,
                    last_line=last,
                    is_async=is_async,
                    is_generator=bool(own) and not is_async,
                    is_async_generator=bool(own) and is_async,
                    source=SOURCE_GIT,
                    marker=Marker(tool=commit.tool, date=iso_date(commit.time)[:10], fields=commit_fields(commit),
                                  raw=f"git commit {commit.sha[:12]}"),
                ))

    visit(tree.body, "")
    return found
