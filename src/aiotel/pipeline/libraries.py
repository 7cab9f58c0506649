"""The installed OpenTelemetry instrumentations (requests, flask, sqlalchemy, openai, ...),
activated as ``opentelemetry-instrument`` activates them: every ``opentelemetry_instrumentor``
entry point whose library is installed, minus ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``.
So an AI-written function's span sits inside the request span and holds the HTTP, database
and LLM calls it makes.

Unlike ``opentelemetry-instrument``, each is activated when its library is first imported,
not at start-up: loading an instrumentor imports its library (Flask alone is 100 ms), and a
program that never imports the library should not pay for it. A post-import hook runs the
instrumentor right after the library's module has executed, before the importing
statement binds any name, so ``from flask import Flask`` gets the instrumented class.
The library is the one the instrumentor's distribution names in its ``instruments`` extra,
or, for the standard library's (which name none), the module below; an instrumentor
that names no module at all is activated at start-up, as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import threading
from typing import Any, Callable, Collection, Dict, Iterable, List, Optional, Set, Tuple

from .. import log
from ..provenance.digest import sha256_hex

_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")

# Instrumentors of standard-library modules declare no library: the module they patch.
_STANDARD_LIBRARY_TARGETS = {
    "urllib": "urllib.request",
    "sqlite3": "sqlite3",
    "asyncio": "asyncio",
    "threading": "threading",
    "logging": "logging",
    "dbapi": None,
}


def _metadata() -> Any:
    """``importlib.metadata``; on Python 3.9 the ``importlib_metadata`` backport when it is
    installed (the OpenTelemetry API requires it there), as the instrumentations use it:
    3.9's own entry points do not name their distribution, which tells an instrumentor's
    library and checks the remembered list."""
    if sys.version_info < (3, 10):
        try:
            import importlib_metadata

            return importlib_metadata
        except ImportError:
            pass
    from importlib import metadata

    return metadata


def _entry_points() -> Iterable:
    metadata = _metadata()
    if sys.version_info >= (3, 10) or metadata.__name__ == "importlib_metadata":
        return metadata.entry_points(group="opentelemetry_instrumentor")
    return metadata.entry_points().get("opentelemetry_instrumentor", [])  # type: ignore[attr-defined]


def library_modules(entry_point: Any) -> Optional[List[str]]:
    """The top-level modules of the libraries an instrumentor instruments (its distribution's
    ``instruments`` extra); [] when none is installed; None when it names no library."""
    dist = getattr(entry_point, "dist", None)
    requirements = [r for r in (getattr(dist, "requires", None) or []) if "instruments" in r.split(";", 1)[-1]]
    if not requirements:
        target = _STANDARD_LIBRARY_TARGETS.get(entry_point.name)
        return [target] if target else None
    modules = []
    for requirement in requirements:
        match = _REQUIREMENT_NAME.match(requirement)
        if match:
            module = _top_level_module(match.group(1))
            if module is not None and module not in modules:
                modules.append(module)
    return modules


def _top_level_module(distribution: str) -> Optional[str]:
    """The importable name of an installed distribution, or None when it is not installed."""
    guess = distribution.lower().replace("-", "_").replace(".", "_")
    if importlib.util.find_spec(guess) is not None:
        return guess
    metadata = _metadata()
    try:
        top_level = metadata.distribution(distribution).read_text("top_level.txt") or ""
    except metadata.PackageNotFoundError:
        return None
    names = [line.strip() for line in top_level.splitlines() if line.strip() and not line.startswith("_")]
    return names[0] if names else None


# Keyword arguments for an instrumentor's instrument(), by its distribution's name (the
# content policy: pipeline.scrubbing.instrument_options); set by ``instrument_libraries``
_options: Callable[[Optional[str]], Dict[str, Any]] = lambda distribution: {}


# The exit flush has begun: an instrumentation activated now (a set-up still importing an
# exporter's modules, say) would record nothing, and asks the providers already shut down
# for a meter, which the SDK says on stderr.
_exiting = [False]


def stop_activating() -> None:
    _exiting[0] = True


def _activate(entry_point: Any, check_versions: bool = True) -> bool:
    """Load and run one instrumentor; False (said once) when it cannot, or (silently) at exit."""
    if _exiting[0]:
        return False
    try:
        dist = getattr(entry_point, "dist", None)
        if check_versions and dist is not None:
            from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

            if get_dist_dependency_conflicts(dist) is not None:
                return False  # its library is installed in a version it does not support
        entry_point.load()().instrument(skip_dep_check=True, **_options(distribution_name(entry_point)))
        return True
    except Exception as exc:
        log.warn(f"instrumentation {entry_point.name!r} not activated ({type(exc).__name__}: {exc})")
        return False


class _KnownEntryPoint:
    """An instrumentor entry point as remembered in the cache: loaded, and its distribution
    read, only when it is activated."""

    def __init__(self, name: str, value: str, dist_name: Optional[str]) -> None:
        self.name = name
        self.value = value
        self.dist_name = dist_name

    def load(self) -> Any:
        module, _, attribute = self.value.partition(":")
        found: Any = importlib.import_module(module.strip())
        for part in attribute.strip().split(".") if attribute else ():
            found = getattr(found, part)
        return found

    @property
    def dist(self) -> Any:
        if not self.dist_name:
            return None
        return _metadata().distribution(self.dist_name)


def _path_key() -> List[List[Any]]:
    """What the installed entry points depend on: each sys.path directory and its mtime
    (installing or removing a distribution changes it)."""
    key = []
    for entry in sys.path:
        try:
            key.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            key.append([entry, None])
    return key


def _entry_points_file(entry_point: Any) -> Optional[str]:
    """The ``entry_points.txt`` that declares ``entry_point``, if its distribution has one."""
    folder = getattr(getattr(entry_point, "dist", None), "_path", None)  # importlib.metadata's PathDistribution
    return os.path.join(str(folder), "entry_points.txt") if folder else None


def _declared(data: bytes) -> Set[Tuple[str, str]]:
    """The (name, value) instrumentor entry points that one ``entry_points.txt`` declares."""
    found: Set[Tuple[str, str]] = set()
    section = None
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == "opentelemetry_instrumentor" and "=" in line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            found.add((name.strip(), value.strip()))
    return found


def _verified(entries: Any) -> Optional[List[Tuple[Any, Optional[List[str]]]]]:
    """The cached entries as entry points, when every one is declared, as cached, by the
    ``entry_points.txt`` of a distribution installed on ``sys.path``; None otherwise.

    One read per distribution, so the cache keeps what it saves; a forged entry (the
    cache file is only data) never reaches ``import``."""
    installed = {os.path.abspath(entry or ".") for entry in sys.path}  # as importlib.metadata names them
    declared: Dict[str, Set[Tuple[str, str]]] = {}
    found = []
    for entry in entries:
        path, name, value = entry["file"], entry["name"], entry["value"]
        folder = os.path.dirname(path)
        if (os.path.basename(path) != "entry_points.txt" or not folder.endswith((".dist-info", ".egg-info"))
                or os.path.abspath(os.path.dirname(folder)) not in installed):
            return None
        if path not in declared:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                return None
            if sha256_hex(data) != entry["digest"]:
                return None
            declared[path] = _declared(data)
        if (name, value) not in declared[path]:
            return None
        found.append((_KnownEntryPoint(name, value, entry["dist"]), entry["modules"]))
    return found


def _discover(cache_dir: Optional[str]) -> List[Tuple[Any, Optional[List[str]]]]:
    """(entry point, library modules) for every installed instrumentor. Reading entry
    points scans every distribution (importlib.metadata: about 15 ms), so the answer is
    cached by ``sys.path`` and its directories' mtimes, and checked (``_verified``)
    against the distributions before anything in it is imported."""
    import json

    cache = os.path.join(cache_dir, "instrumentors.json") if cache_dir else None
    key = _path_key()
    if cache is not None:
        try:
            with open(cache, encoding="utf-8") as fh:
                data = json.load(fh)
            if data.get("key") == key:
                known = _verified(data["entries"])
                if known is not None:
                    return known
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    found = []
    for entry_point in _entry_points():
        try:
            modules = library_modules(entry_point)
        except Exception as exc:
            log.warn(f"instrumentation {entry_point.name!r} not activated ({type(exc).__name__}: {exc})")
            continue
        found.append((entry_point, modules))
    if cache is not None:
        entries = []
        for ep, modules in found:
            path = _entry_points_file(ep)
            try:
                with open(path, "rb") as fh:  # type: ignore[arg-type]
                    digest = sha256_hex(fh.read())
            except (OSError, TypeError):
                return found  # a distribution that cannot be checked later: no cache
            entries.append({"name": ep.name, "value": ep.value, "modules": modules, "file": path, "digest": digest,
                            "dist": getattr(getattr(ep, "dist", None), "name", None)})
        from ..cachedir import write_atomically

        # a failure only means that the next start reads the entry points again
        write_atomically(cache, json.dumps({"key": key, "entries": entries}).encode("utf-8", "surrogateescape"))
    return found


def instrument_libraries(disabled: Collection[str] = (), cache_dir: Optional[str] = None,
                         options: Optional[Callable[[Optional[str]], Dict[str, Any]]] = None) -> List[str]:
    """Activate, or arm for the first import of their library, the installed instrumentations
    whose entry point or distribution names are not in ``disabled``; returns their names.
    ``options(distribution)``: keyword arguments for an instrumentor's ``instrument()``."""
    global _options
    if options is not None:
        _options = options
    armed = []
    for entry_point, modules in _discover(cache_dir):
        if entry_point.name in disabled or distribution_name(entry_point) in disabled:
            continue
        if modules is None:
            if _activate(entry_point, check_versions=False):  # no library: no version to check
                armed.append(entry_point.name)
            continue
        if not modules:
            continue  # its library is not installed
        once = _Once(entry_point)
        for module in modules:
            when_imported(module, once)
        armed.append(entry_point.name)
    return armed


def distribution_name(entry_point: Any) -> Optional[str]:
    """The distribution that declares an instrumentor: what tells apart two that share an
    entry point name (OpenInference's and OpenTelemetry's OpenAI instrumentations are both
    ``openai``), so ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` takes it too."""
    known = getattr(entry_point, "dist_name", None)
    if known:
        return known
    return getattr(getattr(entry_point, "dist", None), "name", None)


class _Once:
    """The post-import hook of one instrumentor: whichever of its libraries comes first."""

    def __init__(self, entry_point: Any) -> None:
        self.entry_point = entry_point
        self.done = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            _activate(self.entry_point)


def when_imported(module: str, hook: Callable[[], None]) -> None:
    """Call ``hook`` right after ``module`` has executed (now, if it already has)."""
    if module in sys.modules:
        hook()
        return
    finder = next((f for f in sys.meta_path if isinstance(f, _PostImportFinder)), None)
    if finder is None:
        finder = _PostImportFinder()
        sys.meta_path.insert(0, finder)
    finder.hooks.setdefault(module, []).append(hook)


class _PostImportFinder:
    """Finds nothing itself: for a watched module it asks the finders after it, and wraps
    the loader they give so the hooks run when the module has executed. (No
    ``importlib.abc`` base classes: importing that module costs 2 ms at start-up.)"""

    def __init__(self) -> None:
        self.hooks: Dict[str, List[Callable[[], None]]] = {}
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.hooks or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:
            spec = importlib.util.find_spec(fullname)
        except (ImportError, ValueError):
            return None
        finally:
            self._busy.name = None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _HookedLoader(spec.loader, self.hooks.pop(fullname))
        return spec


class _HookedLoader:
    def __init__(self, loader: Any, hooks: List[Callable[[], None]]) -> None:
        self._loader = loader
        self._hooks = hooks

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = self._loader  # the program sees the loader it would without aiotel
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        for hook in self._hooks:
            hook()

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, is_package...
        return getattr(self._loader, name)
