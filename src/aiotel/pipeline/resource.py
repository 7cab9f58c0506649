"""Who is reporting: the resource attributes aiotel adds to the SDK's own.

``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` always win; aiotel only fills
what they leave out:

- ``service.name``: the one ``aiotel-run`` resolved for its program
  (``AIOTEL_SERVICE_NAME``, inherited by every Python child: spawn children, server and
  test workers), else the script's or module's name (``app`` for ``python app.py``,
  ``pkg`` for ``python -m pkg``, ``pytest`` for a console script);
- ``process.pid``: the reporting process, as ``ps`` shows it (renewed in a forked child);
- ``service.version``: the installed distribution of the ``-m`` package or console script
  (not for generic runners such as gunicorn or pytest, whose version says nothing about
  the app), else ``git describe --tags --always --dirty``;
- ``vcs.ref.head.revision`` and ``vcs.repository.url.full``: CI variables
  (``GITHUB_SHA``, ``CI_COMMIT_SHA``, ...), else the git checkout, read from ``.git``
  without running git; credentials are stripped from URLs;
- ``service.instance.id``: the SDK's (or a random UUID where the SDK adds none), renewed
  in a forked child;
- ``telemetry.distro.name`` / ``telemetry.distro.version``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from typing import Dict, Mapping, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from .. import semconv
from .._version import __version__
from ..config import CI_REVISION_VARIABLES
from ..provenance.git import find_git_dir, head_revision

# Runners whose distribution version is not the application's.
_RUNNERS = {
    "gunicorn", "uvicorn", "hypercorn", "daphne", "waitress", "pytest", "py.test", "flask",
    "celery", "python", "ipython", "jupyter", "streamlit", "dramatiq", "rq", "huey",
}

def strip_credentials(url: str) -> str:
    """``https://user:token@host/repo`` → ``https://host/repo``; scp-style git URLs lose the user."""
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return re.sub(r"^[^@/]+@", "", url)  # git@host:org/repo.git


def program(argv: Optional[list] = None, orig_argv: Optional[list] = None, main: Optional[str] = None,
            cwd: Optional[str] = None) -> Tuple[str, str, str]:
    """(kind, name, directory) of the program this process runs: kind is script, module, command or other.

    ``argv`` and ``cwd``: as they were when the process started (now, by default)."""
    here = cwd or os.getcwd()
    if main:  # aiotel-run python app.py: the launcher named the script
        return "script", os.path.splitext(os.path.basename(main))[0], os.path.dirname(os.path.normpath(os.path.join(here, main)))
    argv = list(sys.argv if argv is None else argv)
    orig = list(getattr(sys, "orig_argv", None) or [] if orig_argv is None else orig_argv) or _proc_cmdline()
    first = argv[0] if argv else ""
    if first == "-m":
        for i, arg in enumerate(orig[1:], 1):
            if arg == "-m" and i + 1 < len(orig):
                return "module", orig[i + 1], here
            if arg.startswith("-m") and len(arg) > 2:
                return "module", arg[2:], here
        return "other", "", here
    if not first or first == "-c" or first == "-":
        return "other", "", here
    name = os.path.basename(first)
    if name.endswith((".py", ".pyw", ".pyc")):
        return "script", os.path.splitext(name)[0], os.path.dirname(os.path.normpath(os.path.join(here, first)))
    return "command", name, here


def _proc_cmdline() -> list:
    # Python 3.9 has no sys.orig_argv; Linux tells the full command line anyway
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def git_remote_url(git_dir: str) -> Optional[str]:
    """``remote.origin.url`` from the repository's config file."""
    config = os.path.join(git_dir, "config")
    commondir = os.path.join(git_dir, "commondir")
    try:
        if os.path.isfile(commondir):
            with open(commondir) as fh:
                config = os.path.join(os.path.normpath(os.path.join(git_dir, fh.read().strip())), "config")
        with open(config) as fh:
            section = None
            for line in fh:
                line = line.strip()
                if line.startswith("["):
                    section = line
                elif section == '[remote "origin"]' and line.replace(" ", "").startswith("url="):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def git_describe(directory: str) -> Optional[str]:
    try:
        done = subprocess.run(
            ["git", "-C", directory, "describe", "--tags", "--always", "--dirty"],
            capture_output=True, text=True, timeout=2, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def distribution_version(kind: str, name: str) -> Optional[str]:
    """The installed version of the program's own distribution, if it has one."""
    if kind not in ("module", "command") or not name or name in _RUNNERS:
        return None
    try:
        from importlib import metadata
    except ImportError:
        return None
    try:
        if kind == "module":
            top = name.partition(".")[0]
            mapping = getattr(metadata, "packages_distributions", None)  # 3.10+
            candidates = mapping().get(top, []) if mapping else [top]
        else:
            candidates = [ep.dist.name for ep in metadata.entry_points(group="console_scripts", name=name)  # type: ignore[call-arg]
                          if getattr(ep, "dist", None) is not None]
        for candidate in candidates:
            if candidate.lower() in _RUNNERS:
                continue
            return metadata.version(candidate)
    except Exception:
        return None
    return None


def detected_attributes(environ: Mapping[str, str], configured: Mapping[str, object], main: Optional[str] = None,
                        argv: Optional[list] = None, cwd: Optional[str] = None) -> Dict[str, object]:
    """What aiotel adds: only keys ``configured`` (the SDK's resource from the environment) lacks.

    ``environ``: the variables of ``config.RESOURCE_VARIABLES`` that are set; ``argv``:
    ``sys.argv`` and ``cwd`` the working directory as they were when aiotel started (the
    program may have changed them since)."""
    found: Dict[str, object] = {semconv.TELEMETRY_DISTRO_NAME: "aiotel", semconv.TELEMETRY_DISTRO_VERSION: __version__}
    if semconv.SERVICE_INSTANCE_ID not in configured:  # newer SDKs add it themselves
        found[semconv.SERVICE_INSTANCE_ID] = str(uuid.uuid4())
    if semconv.PROCESS_PID not in configured:
        found[semconv.PROCESS_PID] = os.getpid()
    kind, name, directory = program(argv=argv, main=main, cwd=cwd)
    service = str(configured.get(semconv.SERVICE_NAME, ""))
    inherited = environ.get("AIOTEL_SERVICE_NAME", "").strip()  # what aiotel-run named the program
    if (not service or service.startswith("unknown_service")) and not environ.get("OTEL_SERVICE_NAME"):
        if inherited or name:
            found[semconv.SERVICE_NAME] = inherited or name
    git_dir = find_git_dir(directory)
    if semconv.SERVICE_VERSION not in configured:
        version = distribution_version(kind, name) or (git_describe(os.path.dirname(git_dir)) if git_dir else None)
        if version:
            found[semconv.SERVICE_VERSION] = version
    if semconv.VCS_REF_HEAD_REVISION not in configured:
        revision = next((environ[v] for v in CI_REVISION_VARIABLES if environ.get(v)), None)
        revision = revision or (head_revision(git_dir) if git_dir else None)
        if revision:
            found[semconv.VCS_REF_HEAD_REVISION] = revision
    if semconv.VCS_REPOSITORY_URL_FULL not in configured:
        url = None
        if environ.get("GITHUB_REPOSITORY"):
            url = f"{environ.get('GITHUB_SERVER_URL', 'https://github.com').rstrip('/')}/{environ['GITHUB_REPOSITORY']}"
        url = url or environ.get("CI_PROJECT_URL") or environ.get("BUILDKITE_REPO") or environ.get("CIRCLE_REPOSITORY_URL")
        url = url or (git_remote_url(git_dir) if git_dir else None)
        if url:
            found[semconv.VCS_REPOSITORY_URL_FULL] = strip_credentials(url)
    return found
