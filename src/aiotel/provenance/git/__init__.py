"""Provenance from git history: which commit last changed most of a function's lines,
and which commits carry trailers naming an AI tool.

``repository`` finds the checkout and runs git (with a timeout), ``blame`` parses who
changed each line, ``history`` caches both per repository and finds the functions that
AI commits wrote. No git, not a repository, a shallow clone's boundary, lines not
committed yet: no answer, never an error. No OpenTelemetry here.
"""

from ..trailers import TrailerRules, parse_trailers
from .blame import Blame, Commit, commit_fields, iso_date, parse_blame
from .history import GitHistory, ai_functions
from .repository import GIT_TIMEOUT_SECONDS, GitError, Repository, find_git_dir, head_revision

__all__ = ["GIT_TIMEOUT_SECONDS", "Blame", "Commit", "GitError", "GitHistory", "Repository", "TrailerRules",
           "ai_functions", "commit_fields", "find_git_dir", "head_revision", "iso_date", "parse_blame",
           "parse_trailers"]
