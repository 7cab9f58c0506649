"""The import hook: scope, the rewritten-pyc cache, fallbacks, early imports, aiotel.auto."""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
import textwrap

import pytest

from aiotel.config import Settings, load_settings
from aiotel.rewriting.importhook import ImportHook, RewritingLoader
from aiotel.rewriting.pyc import read_pyc, rewritten_pyc_path, write_pyc
from aiotel.rewriting.selection import Scope
from aiotel.provenance import scan_source
from conftest import command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

MARKED = textwrap.dedent(
    '''\
    """Doc."""
    from __future__ import annotations


    # AI-generated: Claude
    def hello(name: str) -> str:
        return "hello " + name
    '''
)


def write_module(directory, name, text):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(text)
    return path


def test_scope_leaves_stdlib_site_packages_and_aiotel_alone():
    scope = Scope()
    assert scope.rules_out("json") and scope.rules_out("aiotel.probes")
    assert not scope.rules_out("myapp.models")
    assert scope.wants("myapp", "/srv/app/myapp/__init__.py")
    assert not scope.wants("requests", "/venv/lib/python3.11/site-packages/requests/__init__.py")
    assert not scope.wants("apt", "/usr/lib/python3/dist-packages/apt/__init__.py")
    assert not scope.wants("json", os.path.join(os.path.dirname(os.__file__), "json", "__init__.py"))


def test_include_and_exclude_take_module_or_path_patterns():
    scope = Scope(include=("requests", "*/vendored/*.py"), exclude=("myapp.migrations", "tests/*"))
    assert scope.wants("requests.api", "/venv/lib/python3.11/site-packages/requests/api.py")
    assert scope.wants("lib", "/venv/lib/python3.11/site-packages/vendored/lib.py")
    assert not scope.wants("myapp.migrations.m0001", "/srv/app/myapp/migrations/m0001.py")
    assert not scope.wants("test_x", "/srv/app/tests/test_x.py")
    assert scope.wants("myapp.models", "/srv/app/myapp/models.py")
    assert scope.rules_out("myapp.migrations") and not scope.rules_out("myapp")


def test_rewritten_pyc_has_its_own_tag_and_honours_the_marker_fingerprint(tmp_path):
    source = str(tmp_path / "m.py")
    a = rewritten_pyc_path(source, "aaaa")
    b = rewritten_pyc_path(source, "bbbb")
    assert a != b and "-aiotel-" in a and a.endswith(".pyc")
    assert os.path.basename(a).startswith(f"m.{sys.implementation.cache_tag}-aiotel-")


def test_pyc_cache_round_trip_and_invalidation(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = write_module(tmp_path, "m", MARKED)
    st = os.stat(path)
    code = compile(MARKED, str(path), "exec")
    pyc = str(tmp_path / "__pycache__" / "m.test.pyc")
    assert write_pyc(pyc, code, st) is True
    assert read_pyc(pyc, st).co_filename == str(path)
    path.write_text(MARKED + "\n# edited\n")
    assert read_pyc(pyc, os.stat(path)) is None  # size changed: stale
    assert not [n for n in os.listdir(tmp_path / "__pycache__") if n.endswith(".tmp")]


def test_no_pyc_when_python_is_told_not_to_write_bytecode(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = write_module(tmp_path, "m", MARKED)
    assert write_pyc(str(tmp_path / "m.pyc"), compile("", "m", "exec"), os.stat(path)) is False
    assert not (tmp_path / "m.pyc").exists()


def test_unwritable_cache_location_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert write_pyc(str(blocker / "sub" / "m.pyc"), compile("", "m", "exec"), os.stat(blocker)) is False


def test_a_failing_rewrite_falls_back_to_the_stock_loader_with_one_line(tmp_path, capsys):
    path = write_module(tmp_path, "broken_rewrite", MARKED)
    data = path.read_bytes()
    result = scan_source(data, str(path), "broken_rewrite")
    record = result.functions[0]
    # a path no code object can hold: compile() of the rewritten tree raises
    bad = dataclasses.replace(record, source=object())
    result = dataclasses.replace(result, functions=(bad,))
    loader = RewritingLoader("broken_rewrite", str(path), data, os.stat(path), result, "fp")
    import aiotel.log

    aiotel.log.setup(otel_loggers=False)
    code = loader.get_code("broken_rewrite")
    namespace = {"__name__": "broken_rewrite"}
    exec(code, namespace)
    assert namespace["hello"]("x") == "hello x"
    assert "__aiotel_probes__" not in namespace
    err = capsys.readouterr().err
    assert err.count("aiotel: could not instrument") == 1 and "runs uninstrumented" in err


def test_hook_ignores_unmarked_and_out_of_scope_modules(tmp_path, monkeypatch):
    write_module(tmp_path / "pkg_plain", "__init__", "def f():\n    return 1\n")
    write_module(tmp_path / "pkg_marked", "__init__", MARKED)
    monkeypatch.syspath_prepend(str(tmp_path))
    hook = ImportHook(load_settings({"AIOTEL_CACHE_DIR": "off"}))
    assert hook.find_spec("pkg_plain") is None
    assert hook.find_spec("json") is None
    spec = hook.find_spec("pkg_marked")
    assert isinstance(spec.loader, RewritingLoader)
    assert spec.origin == str(tmp_path / "pkg_marked" / "__init__.py")
    assert spec.submodule_search_locations == [str(tmp_path / "pkg_marked")]
    assert ImportHook(Settings(exclude=("pkg_marked",))).find_spec("pkg_marked") is None


def test_a_module_left_alone_gets_path_finders_own_spec_when_path_finder_is_next(tmp_path, monkeypatch):
    """Then the path is searched once, not by the hook and again by PathFinder."""
    from importlib.machinery import BuiltinImporter, FrozenImporter, PathFinder, SourceFileLoader

    write_module(tmp_path / "pkg_alone", "__init__", "def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hook = ImportHook(load_settings({"AIOTEL_CACHE_DIR": "off"}))

    class DistutilsShim:  # as setuptools' _distutils_hack.DistutilsMetaFinder is
        def find_spec(self, fullname, path, target=None):
            return None

        def spec_for_pkg_other(self):
            return None

    DistutilsShim.__module__ = "_distutils_hack"
    monkeypatch.setattr(sys, "meta_path", [hook, DistutilsShim(), BuiltinImporter, FrozenImporter, PathFinder])
    spec, expected = hook.find_spec("pkg_alone"), PathFinder.find_spec("pkg_alone")
    assert type(spec.loader) is SourceFileLoader
    assert (spec.name, spec.origin, spec.cached, spec.submodule_search_locations) == (
        expected.name, expected.origin, expected.cached, expected.submodule_search_locations)

    class UsersFinder:
        def find_spec(self, fullname, path, target=None):
            return None

    # a finder of someone else's would be asked before PathFinder: it still is
    monkeypatch.setattr(sys, "meta_path", [hook, UsersFinder(), PathFinder])
    assert hook.find_spec("pkg_alone") is None
    # one asked before the hook has answered already
    monkeypatch.setattr(sys, "meta_path", [UsersFinder(), hook, PathFinder])
    assert hook.find_spec("pkg_alone") is not None
    # the shim answers for its own names
    write_module(tmp_path / "pkg_other", "__init__", "")
    monkeypatch.setattr(sys, "meta_path", [hook, DistutilsShim(), PathFinder])
    assert hook.find_spec("pkg_other") is None


def test_a_file_known_unmarked_is_instrumented_once_it_carries_a_marker(tmp_path, monkeypatch):
    path = write_module(tmp_path, "growing", "def hello(name):\n    return name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = load_settings({"AIOTEL_CACHE_DIR": str(tmp_path / "cache")})
    first = ImportHook(settings)
    spec = first.find_spec("growing")
    assert spec is None or not isinstance(spec.loader, RewritingLoader)
    assert first.unmarked.has(str(path), os.stat(path))
    later = ImportHook(settings)  # a later process: knows the file without reading it
    assert later.unmarked.has(str(path), os.stat(path))
    path.write_text(MARKED)
    assert isinstance(ImportHook(settings).find_spec("growing").loader, RewritingLoader)


def test_a_finder_the_program_puts_after_the_hook_still_wins(tmp_path):
    (tmp_path / "shadowed.py").write_text("ORIGIN = 'disk'\n")
    (tmp_path / "main.py").write_text(textwrap.dedent('''\
        import importlib.abc, importlib.machinery, importlib.util, sys

        class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, fullname, path, target=None):
                return importlib.util.spec_from_loader(fullname, self) if fullname == "shadowed" else None

            def create_module(self, spec):
                return None

            def exec_module(self, module):
                module.ORIGIN = "finder"

        # just before PathFinder: under aiotel-run that is after aiotel's hook
        sys.meta_path.insert(sys.meta_path.index(importlib.machinery.PathFinder), Finder())
        import shadowed
        print(shadowed.ORIGIN)
        '''))
    plain = run([sys.executable, "main.py"], cwd=str(tmp_path))
    instrumented = run(command("aiotel-run") + ["python", "main.py"], cwd=str(tmp_path),
                       env={"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"})
    assert plain.stdout == instrumented.stdout == "finder\n", instrumented.stderr
    assert instrumented.returncode == 0 and instrumented.stderr == ""


def test_early_import_is_named_once_and_auto_instruments_later_ones(tmp_path, http_receiver):
    write_module(tmp_path, "early", MARKED)
    write_module(tmp_path, "late", MARKED.replace("hello", "bye"))
    script = tmp_path / "prog.py"
    script.write_text(
        "import early\nimport aiotel.auto\nimport aiotel\nimport late\n"
        "print(early.hello('a'), late.bye('b'), aiotel.instrument())\n"
    )
    result = run([sys.executable, str(script)], cwd=str(tmp_path), env=telemetry_env(http_receiver, tmp_path))
    assert result.returncode == 0 and result.stdout == "hello a bye b True\n"
    assert result.stderr == (
        "aiotel: module 'early' was imported before aiotel started; its 1 marked function(s) are not instrumented\n"
    )
    assert http_receiver.received.wait(lambda r: "late.bye" in {s.name for s in r.spans})
    assert "early.hello" not in {s.name for s in http_receiver.received.spans}


def test_source_change_is_picked_up_through_the_pyc_cache(tmp_path):
    module = write_module(tmp_path, "changing", MARKED)
    (tmp_path / "prog.py").write_text("import changing\nprint(changing.hello('x'))\n")
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "PYTHONDONTWRITEBYTECODE": None,
           "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    first = run(command("aiotel-run") + ["python", "prog.py"], cwd=str(tmp_path), env=env)
    module.write_text(MARKED.replace('"hello "', '"hi there "'))
    os.utime(module, (1, 2_000_000_000))
    second = run(command("aiotel-run") + ["python", "prog.py"], cwd=str(tmp_path), env=env)
    assert (first.stdout, second.stdout) == ("hello x\n", "hi there x\n")
    assert len(list((tmp_path / "__pycache__").glob("changing.*-aiotel-*.pyc"))) == 1


def test_read_only_cache_locations_change_nothing(tmp_path):
    write_module(tmp_path, "ro", MARKED)
    (tmp_path / "prog.py").write_text("import ro\nprint(ro.hello('x'))\n")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "PYTHONDONTWRITEBYTECODE": None,
           "PYTHONPYCACHEPREFIX": str(blocker), "AIOTEL_CACHE_DIR": str(blocker / "scan")}
    result = run(command("aiotel-run") + ["python", "prog.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stdout) == (0, "hello x\n")
    # one line each for what aiotel could not do, then it goes on without those caches
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "cannot write the scan cache" in lines[0] and "cannot cache rewritten code" in lines[1]


def test_concurrent_imports_leave_warning_filters_and_results_unchanged(tmp_path):
    for i in range(8):
        write_module(tmp_path, f"conc{i}", MARKED.replace("hello", f"hello{i}"))
    (tmp_path / "prog.py").write_text(
        "import importlib, threading, warnings\n"
        "before = list(warnings.filters)\n"
        "out = {}\n"
        "def load(i):\n"
        "    out[i] = getattr(importlib.import_module(f'conc{i}'), f'hello{i}')('x')\n"
        "threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(sorted(out.items()), warnings.filters == before)\n"
    )
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "AIOTEL_CACHE_DIR": "off"}
    plain = run([sys.executable, "prog.py"], cwd=str(tmp_path))
    result = run(command("aiotel-run") + ["python", "prog.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert result.stdout.endswith("True\n")


def test_the_cached_pyc_name_carries_the_rewrite_format_and_options():
    from aiotel.config import load_settings
    from aiotel.rewriting.contract import REWRITE_FORMAT

    plain = ImportHook(load_settings({"AIOTEL_CACHE_DIR": "off"})).fingerprint
    shapes = ImportHook(load_settings({"AIOTEL_CACHE_DIR": "off", "AIOTEL_CAPTURE_ARGS": "shape"})).fingerprint
    assert f"r{REWRITE_FORMAT}" in plain and plain != shapes
    assert rewritten_pyc_path("/x/m.py", plain) != rewritten_pyc_path("/x/m.py", shapes)


@pytest.mark.parametrize("check", ["default", "never"])
def test_rewritten_pyc_follows_a_checked_hash_pyc_of_the_source(tmp_path, check):
    """Reproducible builds fix every mtime and compile checked-hash pycs: a changed source
    of the same size and mtime must not run the old rewritten code (unless the
    interpreter is told never to check hashes, as Python itself then would not)."""
    import py_compile

    module = tmp_path / "hashed.py"
    module.write_text('# AI-generated: Claude\ndef word():\n    return "one"\n')
    (tmp_path / "prog.py").write_text("import hashed\nprint(hashed.word())\n")
    py_compile.compile(str(module), invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    stamp = os.stat(module).st_mtime_ns
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "PYTHONDONTWRITEBYTECODE": None,
           "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    python = ["python", "--check-hash-based-pycs", check, "prog.py"]
    first = run(command("aiotel-run") + python, cwd=str(tmp_path), env=env)
    assert (first.returncode, first.stdout, first.stderr) == (0, "one\n", "")
    assert glob.glob(str(tmp_path / "__pycache__" / "hashed.*-aiotel-*.pyc"))
    module.write_text('# AI-generated: Claude\ndef word():\n    return "two"\n')  # same size
    os.utime(module, ns=(stamp, stamp))
    second = run(command("aiotel-run") + python, cwd=str(tmp_path), env=env)
    plain = run([sys.executable, "--check-hash-based-pycs", check, "prog.py"], cwd=str(tmp_path))
    assert (second.returncode, second.stdout) == (0, plain.stdout)
    assert second.stdout == ("two\n" if check == "default" else "one\n")


@pytest.mark.instrumentation
def test_a_script_run_with_runpy_run_path_is_instrumented_with_its_lines_intact(tmp_path, http_receiver):
    (tmp_path / "job.py").write_text(textwrap.dedent(
        '''\
        # AI-generated: Claude, 2026-11-20, prompt: "fail on odd"
        def check(n):
            if n % 2:
                raise ValueError(n)
            return n
        '''))
    (tmp_path / "app.py").write_text(textwrap.dedent(
        '''\
        import runpy, traceback
        scope = runpy.run_path("job.py", run_name="job_script")
        print([scope["check"](n) for n in (0, 2)])
        try:
            scope["check"](3)
        except ValueError:
            print(traceback.format_exc().splitlines()[-2].strip())
        '''))
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert http_receiver.received.wait(
        lambda r: sum(p.count for p in r.latest_points("aiotel.function.duration").values()
                      if p.attributes.get("code.function.name") == "job.check") == 3)


def test_looking_through_a_package_for_pairs_stops_at_its_bound_and_says_so(tmp_path, monkeypatch, capsys):
    """The walk for cross-module pairs is bounded per package; past the bound, aiotel says
    what it no longer follows. Within it, the pair's control is registered."""
    from aiotel.rewriting import importhook

    package = tmp_path / "boundpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a_legacy.py").write_text("def total(items):\n    return sum(items)\n")
    (package / "b_fast.py").write_text("# AI-generated: Claude, replaces: .a_legacy.total\n"
                                       "def fast(items):\n    return sum(items)\n")
    for name in ("c", "d", "e"):
        (package / f"{name}.py").write_text("x = 1\n")
    hook = ImportHook(load_settings({"AIOTEL_CACHE_DIR": "off"}))
    monkeypatch.setattr(importhook, "MAX_PACKAGE_FILES", 3)
    hook._look_through_package("boundpkg", [str(package)])
    assert set(hook.controls) == {"boundpkg.a_legacy"}  # files are looked through in name order
    assert ("boundpkg has more than 3 files: cross-module experiment pairs beyond them are paired only "
            "when the rewrite is imported before the code it replaces") in capsys.readouterr().err
    hook._look_through_package("boundpkg", [str(package)])  # once per package
    assert "more than 3 files" not in capsys.readouterr().err
