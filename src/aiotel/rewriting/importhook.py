"""The import hook: a ``sys.meta_path`` finder that hands marked modules to a rewriting loader.

Modelled on pytest's assertion rewriter. The finder does the cheap things first: a
name-only bail-out, then the normal ``PathFinder`` lookup, the scope check on the path,
and the bytes pre-filter. A module it leaves alone gets ``PathFinder``'s own spec back
(when ``PathFinder`` would be asked next anyway), so its path is searched once, not
twice. Only a module that passes all of them is scanned, and only
one with marked functions gets the ``RewritingLoader``, a ``SourceFileLoader`` whose
``get_code`` returns the rewritten code. Everything else that loader does (``get_source``,
``get_data``, resource readers for ``importlib.resources``, ``is_package``) is the stock
one, and ``__file__``/``__spec__`` are what the normal finder computed.

The scope decision is ``selection``'s and the pyc cache is ``pyc``'s (rewritten code
under its own tag, always complete). Any failure falls back to the stock loader, with
one line on stderr.
"""

from __future__ import annotations

import _imp
import importlib.machinery
import importlib.util
import os
import re
import sys
import threading
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set, Tuple
from zipimport import zipimporter

from .. import log
from ..config import Settings
from ..provenance import CachedScanner
from ..provenance.scan_cache import UnmarkedIndex
from ..provenance.digest import sha256_hex
from .contract import PROBES, RewriteOptions
from .pyc import read_pyc, rewritten_pyc_path, source_invalidation, write_pyc
from .selection import Scope, select

if TYPE_CHECKING:  # these load with the first file that may hold a marker (git: the first marked file)
    from ..provenance.git import GitHistory
    from ..provenance.records import Provenance, ScanResult
    from .attribution import Attribution

_PathFinder = importlib.machinery.PathFinder
_SourceFileLoader = importlib.machinery.SourceFileLoader
MAX_PACKAGE_FILES = 5000  # looked through for cross-module pairs, per top-level package
_MAY_REPLACE = re.compile(rb"(?i)replaces")

def rewrite_options(settings: Settings) -> RewriteOptions:
    return RewriteOptions(capture_shapes=settings.capture_args == "shape")


def instrumented_code(
    source: bytes, path: str, records: Sequence[Provenance], options: RewriteOptions = RewriteOptions()
) -> Optional[CodeType]:
    """Parse, rewrite and compile; None when no record matched a def of ``source``."""
    import ast

    from .rewrite import rewrite_module

    # dont_inherit: aiotel's own `from __future__` lines must not reach the user's code
    tree = compile(source, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    if not rewrite_module(tree, records, path, options, source):
        return None
    return compile(tree, path, "exec", dont_inherit=True)


class RewritingLoader(_SourceFileLoader):
    """A stock source loader whose ``get_code`` instruments the marked functions."""

    def __init__(
        self, fullname: str, path: str, source: bytes, st: os.stat_result, result: ScanResult, fingerprint: str,
        options: RewriteOptions = RewriteOptions(),
    ) -> None:
        super().__init__(fullname, path)
        self._source = source
        self._stat = st
        self._result = result
        self._fingerprint = fingerprint
        self._options = options

    def get_code(self, fullname: str) -> CodeType:  # type: ignore[override]
        code = None
        try:
            code = self._instrumented()
        except Exception as exc:
            log.warn(f"could not instrument {self.path} ({type(exc).__name__}: {exc}); it runs uninstrumented")
        finally:
            self._source = b""  # the loader stays referenced by the module; keep it small
        return code if code is not None else super().get_code(fullname)

    def _instrumented(self) -> Optional[CodeType]:
        if not self._source:
            return None  # a second get_code (reload): the stock loader reads the file anew
        pyc = rewritten_pyc_path(self.path, self._fingerprint)
        flags = source_invalidation(self.path) if pyc is not None else 0
        if pyc is not None:
            cached = read_pyc(pyc, self._stat, self._source, flags)
            if cached is not None:
                return cached
        code = instrumented_code(self._source, self.path, self._result.functions, self._options)
        if code is not None and pyc is not None:
            write_pyc(pyc, code, self._stat, self._source, flags)
        return code


class ImportHook:
    """The ``sys.meta_path`` finder. Returns None (normal import) for anything it does not rewrite."""

    def __init__(self, settings: Settings) -> None:
        self.scope = Scope(settings.include, settings.exclude)
        self.scanner = CachedScanner(settings.markers, settings.cache_dir, settings.max_source_bytes)
        self.unmarked = UnmarkedIndex(settings.cache_dir, settings.markers)
        self.options = rewrite_options(settings)
        # the cached pyc depends on the marker patterns and on what the rewrite inserts
        self.fingerprint = settings.markers.fingerprint[:12] + self.options.tag
        self._local = threading.local()
        self._said_about_cache = False
        self._zips_said: Set[str] = set()
        self.history: Optional[GitHistory] = None
        self.attribution: Optional[Attribution] = None
        self.git_provenance = settings.git_provenance
        self._git_settings = settings if settings.git_blame or settings.git_provenance else None
        self._background_allowed = False
        self._git_lock = threading.Lock()
        # cross-module pairs: module -> local qualname -> the control's record, from its candidate's scan
        self.controls: Dict[str, Dict[str, Provenance]] = {}
        self._controls_rewritten: Set[Tuple[str, str]] = set()
        self._controls_left_out: Set[str] = set()  # control modules imported uninstrumented, said once
        self._packages_looked_through: Set[str] = set()

    def scan(self, source: bytes, path: str, module: str, st: os.stat_result) -> ScanResult:
        """The functions of ``source`` to instrument: marked ones, then (with
        AIOTEL_GIT_PROVENANCE) those last changed by AI commits; queues commit attribution."""
        result = self.scanner.scan_bytes(source, path, module, st)
        report_scan_problems(result)
        self._register_controls(result)
        self._say_once_if_unwritable(self.scanner.cache.problem, self.scanner.cache.directory)
        if self.git_provenance or result.functions:
            self._load_git()
        if self.git_provenance and self.history is not None and not result.skipped:
            from_git = self._functions_from_git(source, path, module, st, result)
            if from_git:
                import dataclasses

                result = dataclasses.replace(result, functions=result.functions + tuple(from_git))
        if self.attribution is not None and result.functions:
            self.attribution.request(path, st, result.functions)
        return result

    def _load_git(self) -> None:
        """The git history and the blame queue, when the settings ask for them: on the
        first file that needs them (start-up does not load git)."""
        if self._git_settings is None:
            return
        from ..provenance.git import GitHistory, TrailerRules
        from .attribution import Attribution

        with self._git_lock:  # two threads may import their first marked modules at once
            settings, self._git_settings = self._git_settings, None
            if settings is None:
                return
            rules = TrailerRules(settings.git_ai_trailers, settings.git_ai_coauthors)
            self.history = GitHistory(settings.cache_dir, rules)
            if settings.git_blame:
                self.attribution = Attribution(self.history)
        if self.attribution is not None and self._background_allowed:
            self.attribution.allow_background()

    def allow_background(self) -> None:
        """The pipeline runs: aiotel's own threads (the blame queue's) may start."""
        self._background_allowed = True
        if self.attribution is not None:
            self.attribution.allow_background()

    def wait_for_background(self, timeout: float) -> bool:
        """At exit: the blame queue worked off and its cache saved, within ``timeout``."""
        return self.attribution.wait(timeout) if self.attribution is not None else True

    def _say_once_if_unwritable(self, problem: Optional[str], directory: Optional[str]) -> None:
        if problem is not None and not self._said_about_cache:
            self._said_about_cache = True
            log.warn(f"cannot write the scan cache in {directory} ({problem}); "
                     "files are read and marked files scanned at each start (AIOTEL_CACHE_DIR moves it, 'off' turns it off)")

    def _functions_from_git(self, source: bytes, path: str, module: str, st: os.stat_result, result: ScanResult) -> List[Provenance]:
        from ..provenance.git import ai_functions
        from .attribution import report_problems

        assert self.history is not None
        repo = self.history.repository(path)
        if repo is None:
            return []
        commits, files = self.history.ai_commits(repo)
        found: List[Provenance] = []
        if commits and repo.relative(path) in files:
            blame = self.history.blame(path, st)
            if blame is not None:
                found = ai_functions(source, path, module, blame, commits, {r.def_line for r in result.functions})
        self.history.save()
        report_problems(self.history, "git provenance")
        return found

    def pyc_fingerprint(self, result: ScanResult) -> str:
        """Git-provenance records, and the arms of cross-module pairs, are not a function of
        the source alone: their digest is part of the cached pyc's name."""
        from ..provenance.records import SOURCE_GIT

        from_git = [r.to_json() for r in result.functions if r.source == SOURCE_GIT or r.crosses_modules]
        if not from_git:
            return self.fingerprint
        import json

        digest = sha256_hex(json.dumps(from_git, sort_keys=True).encode("utf-8", "surrogateescape"))
        return f"{self.fingerprint}-g{digest[:10]}"

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None, target: Optional[ModuleType] = None):
        if getattr(self._local, "busy", False):
            return None
        if self.scope.rules_out(fullname):
            if fullname in self.controls:
                self._say_controls_left_out(fullname, "its module is excluded (AIOTEL_EXCLUDE, or out of scope)")
            return None
        self._local.busy = True  # the scanner imports lazily; those imports are not ours
        try:
            return self._find_spec(fullname, path, target)
        except Exception as exc:
            log.warn(f"import hook failed for {fullname} ({type(exc).__name__}: {exc}); imported uninstrumented")
            return None
        finally:
            self._local.busy = False

    def _find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType]):
        spec = _PathFinder.find_spec(fullname, path, target)
        if spec is None:
            # another finder's module: an editable install's finder (setuptools, when the
            # package's directory is not its import name)
            spec = _later_finders_spec(self, fullname, path, target)
            return self.rewritten(fullname, spec) if spec is not None else None
        if isinstance(spec.loader, zipimporter):
            self._say_if_zipped_and_marked(fullname, spec)
            return None
        locations = list(spec.submodule_search_locations or ())
        if "." not in fullname and locations and self.scope.wants(fullname, os.path.join(locations[0], "__init__.py")):
            try:
                self._look_through_package(fullname, locations)
            except Exception as exc:  # the package itself is still imported, and instrumented
                log.warn(f"could not look through {fullname} for experiment pairs across its modules "
                         f"({type(exc).__name__}: {exc}); a pair is then followed only when its rewrite is imported first")
        # A module left alone: hand back PathFinder's own answer, when PathFinder would be
        # asked next anyway, so the path is not searched a second time.
        return self.rewritten(fullname, spec, spec if _path_finder_answers_next(self, fullname) else None)

    def by_location(self, spec: Any) -> Any:
        """``spec``, made by ``spec_from_file_location`` (see ``by_location``), with the
        rewriting loader when its file has functions to instrument."""
        if spec is None or not spec.name or getattr(self._local, "busy", False) or self.scope.rules_out(spec.name):
            return spec
        self._local.busy = True
        try:
            return self.rewritten(spec.name, spec, spec) or spec
        except Exception as exc:
            log.warn(f"import hook failed for {spec.name} ({type(exc).__name__}: {exc}); loaded uninstrumented")
            return spec
        finally:
            self._local.busy = False

    def rewritten(self, fullname: str, spec: Any, plain: Any = None) -> Any:
        """``spec`` with the rewriting loader when its module has functions to
        instrument; ``plain`` otherwise. Only plain source files are rewritten."""
        if type(spec.loader) is not _SourceFileLoader or not spec.origin:
            return plain
        origin = spec.origin
        if not self.scope.wants(fullname, origin):
            if fullname in self.controls:
                self._say_controls_left_out(fullname, f"its module is not instrumented ({self.scope.why_not(fullname, origin)})")
            return plain
        controls = self.controls.get(fullname)
        if not self.git_provenance and not controls:
            try:
                if self.unmarked.has(origin, os.stat(origin)):
                    return plain  # this version of the file was read before: no marker
            except OSError:
                return None  # the stock loader will report it
        try:
            with open(origin, "rb") as fh:
                st = os.fstat(fh.fileno())
                source = fh.read()
        except OSError:
            return None  # the stock loader will report it
        if not self.git_provenance and not self.scanner.prefilter.may_have_markers(source):
            self.unmarked.add(origin, st)
            self._say_once_if_unwritable(self.unmarked.problem, self.unmarked.directory)
            if not controls:
                return plain
        result = self.scan(source, origin, fullname, st)
        if controls:
            result = self._with_controls(result, controls)
        if not select(self.scope, fullname, origin, result).functions:
            return plain
        spec.loader = RewritingLoader(fullname, origin, source, st, result, self.pyc_fingerprint(result), self.options)
        return spec

    def _register_controls(self, result: ScanResult) -> None:
        """Remember the controls that ``result``'s pairs name in other modules, for when
        those modules are imported. A control module imported already ran uninstrumented:
        said once, with the pairs it leaves out."""
        from ..provenance.records import EXPERIMENT_REFUSED

        late: Dict[str, List[str]] = {}
        for control in result.controls:
            known = self.controls.setdefault(control.module, {})
            earlier = known.setdefault(control.local_qualname, control)
            pair = f"{control.marker.field_dict().get('replaced_by')} replaces {control.qualname}"
            if earlier.shadow != control.shadow:
                log.warn(f"{EXPERIMENT_REFUSED}{pair}: {control.qualname} is in the pair "
                         f"{earlier.marker.field_dict().get('replaced_by')} replaces {control.qualname} already")
            elif (control.module in sys.modules and control.module not in self._controls_left_out
                  and (control.module, control.local_qualname) not in self._controls_rewritten):
                late.setdefault(control.module, []).append(pair)
        for module, pairs in late.items():
            log.warn(f"{EXPERIMENT_REFUSED}{', '.join(pairs)}: {module} was imported before aiotel read the marker that names it")

    def _say_controls_left_out(self, module: str, why: str) -> None:
        """The pairs whose control lives in ``module``, which is imported uninstrumented: said
        once, so no experiment is believed to run that does not."""
        from ..provenance.records import EXPERIMENT_REFUSED

        if module in self._controls_left_out:
            return
        self._controls_left_out.add(module)
        pairs = [f"{c.marker.field_dict().get('replaced_by')} replaces {c.qualname}"
                 for c in self.controls.get(module, {}).values()]
        if pairs:
            log.warn(f"{EXPERIMENT_REFUSED}{', '.join(pairs)}: {why}")

    def _with_controls(self, result: ScanResult, controls: Dict[str, Provenance]) -> ScanResult:
        """``result`` (a control module's) with the records of the controls other modules' pairs name."""
        import dataclasses

        from ..provenance.records import EXPERIMENT_REFUSED

        if result.skipped:
            return result  # not read (too large, undecodable...): said by the scan, and rewritten for nobody
        functions = list(result.functions)
        for local, control in controls.items():
            own = next((i for i, r in enumerate(functions) if r.local_qualname == local), None)
            if own is None:
                functions.append(control)
            elif functions[own].shadow is None:  # marked itself: keeps its own provenance
                functions[own] = dataclasses.replace(functions[own], shadow=control.shadow)
            else:
                log.warn(f"{EXPERIMENT_REFUSED}{control.qualname} is already in a pair of its own module; "
                         f"not paired with {control.marker.field_dict().get('replaced_by')}")
                continue
            self._controls_rewritten.add((result.module, local))
        functions.sort(key=lambda r: r.def_line)
        return dataclasses.replace(result, functions=tuple(functions))

    def _look_through_package(self, package: str, locations: List[str]) -> None:
        """Before the first module of a top-level package runs: the controls that markers in
        its files name in its other modules, so that a control module imported before its
        rewrite is instrumented too. A stat per known unmarked file; a read for the rest."""
        if package in self._packages_looked_through:
            return
        self._packages_looked_through.add(package)
        seen = 0
        for location in locations:
            for directory, subdirs, files in os.walk(location):
                subdirs[:] = sorted(d for d in subdirs if d.isidentifier() and d != "__pycache__")
                relative = os.path.relpath(directory, location)
                parts = [package] + ([] if relative == os.curdir else relative.split(os.sep))
                for name in sorted(files):
                    if not name.endswith(".py") or not name[:-3].isidentifier():
                        continue
                    seen += 1
                    if seen > MAX_PACKAGE_FILES:
                        log.warn(f"{package} has more than {MAX_PACKAGE_FILES} files: cross-module experiment pairs "
                                 "beyond them are paired only when the rewrite is imported before the code it replaces")
                        return
                    module = ".".join(parts + ([] if name == "__init__.py" else [name[:-3]]))
                    self._register_pairs_of(os.path.join(directory, name), module)

    def _register_pairs_of(self, path: str, module: str) -> None:
        if not self.scope.wants(module, path):
            return
        try:
            if self.unmarked.has(path, os.stat(path)):
                return
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                source = fh.read()
        except OSError:
            return
        if not self.scanner.prefilter.may_have_markers(source):
            self.unmarked.add(path, st)
        elif _MAY_REPLACE.search(source):
            self._register_controls(self.scanner.scan_bytes(source, path, module, st))

    def _say_if_zipped_and_marked(self, fullname: str, spec: Any) -> None:
        """A module in a zip archive (zipapp, egg) is not rewritten: said once per archive
        that holds marked functions, so nobody believes they are watched."""
        archive = getattr(spec.loader, "archive", "")
        if archive in self._zips_said or not self.scope.wants(fullname, spec.origin or archive):
            return
        try:
            source = spec.loader.get_source(fullname)
        except Exception:
            return
        if not source or not self.scanner.prefilter.may_have_markers(source.encode("utf-8", "surrogateescape")):
            return
        marked = self.scanner.scan_bytes(source.encode("utf-8", "surrogateescape"), spec.origin or archive, fullname, None)
        if marked.functions:
            self._zips_said.add(archive)
            log.warn(f"not instrumenting {archive}: modules imported from a zip archive run uninstrumented "
                     f"({fullname} has {len(marked.functions)} marked function(s)); install or unpack it to watch them")

    def invalidate_caches(self) -> None:
        pass


_BuiltinImporter = importlib.machinery.BuiltinImporter
_FrozenImporter = importlib.machinery.FrozenImporter
_BUILTIN_NAMES = frozenset(sys.builtin_module_names)


def _path_finder_answers_next(hook: "ImportHook", fullname: str) -> bool:
    """Whether, were ``hook`` to return None, the next finder to answer for ``fullname``
    would be PathFinder: between them on ``sys.meta_path`` sit only finders known not to
    answer for the name (the stock built-in and frozen importers, setuptools' distutils
    shim, which every virtualenv with setuptools has)."""
    after_hook = False  # the finders before the hook have been asked already
    for finder in sys.meta_path:
        if finder is hook:
            after_hook = True
            continue
        if not after_hook:
            continue
        if finder is _PathFinder:
            return fullname not in _BUILTIN_NAMES and not _imp.is_frozen(fullname)
        if finder is _BuiltinImporter or finder is _FrozenImporter:
            continue
        if type(finder).__module__ == "_distutils_hack" and not hasattr(finder, "spec_for_" + fullname):
            continue  # it answers only for the names it has a spec_for_<name> method for
        return False  # someone else's finder would be asked first
    return False


def _later_finders_spec(hook: "ImportHook", fullname: str, path: Any, target: Any) -> Any:
    """The spec that a finder after ``hook`` on ``sys.meta_path`` gives, other than the
    stock ones (PathFinder was asked already) and aiotel's own, or None."""
    after_hook = False
    for finder in list(sys.meta_path):
        if finder is hook:
            after_hook = True
            continue
        if not after_hook or finder in (_PathFinder, _BuiltinImporter, _FrozenImporter):
            continue
        if type(finder).__module__.startswith("aiotel.") or not hasattr(finder, "find_spec"):
            continue
        try:
            spec = finder.find_spec(fullname, path, target)
        except Exception:
            return None  # it will raise again when the import system asks it: its error to report
        if spec is not None:
            return spec
    return None


def report_scan_problems(result: ScanResult) -> None:
    """One line per file for what the scanner ignored; syntax errors are the import's to report."""
    if result.skipped and not result.skipped.startswith("syntax error"):
        log.warn(f"not instrumenting {result.path}: {result.skipped}")
    elif result.notices:
        log.warn(
            f"{result.path}: {len(result.notices)} marker(s) ignored, first at line {result.notices[0].line}: "
            f"{result.notices[0].message} (`aiotel scan {result.path}` lists them)"
        )


def warn_about_early_imports(hook: ImportHook) -> List[str]:
    """Name each already-imported module that has marked functions the hook never saw."""
    late = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py") or PROBES in vars(module):
            continue
        if hook.scope.rules_out(name) or not hook.scope.wants(name, path):
            continue
        try:
            with open(path, "rb") as fh:
                if not hook.scanner.prefilter.may_have_markers(fh.read()):
                    continue  # the usual answer, without the scanner's records
        except OSError:
            continue
        result = hook.scanner.scan_path(path, name)
        if result.functions:
            late.append(name)
            log.warn(
                f"module {name!r} was imported before aiotel started; its {len(result.functions)} "
                "marked function(s) are not instrumented"
            )
    return late


def active_hook() -> Optional[ImportHook]:
    return next((f for f in sys.meta_path if isinstance(f, ImportHook)), None)


def install(settings: Settings) -> ImportHook:
    """Put the hook first on ``sys.meta_path`` (once) and warn about modules it came too late for."""
    existing = active_hook()
    if existing is not None:
        return existing
    hook = ImportHook(settings)
    sys.meta_path.insert(0, hook)
    warn_about_early_imports(hook)
    return hook
