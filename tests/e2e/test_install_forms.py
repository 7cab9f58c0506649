"""Every way a user's code gets installed or loaded, each a real install in a fresh virtualenv:
editable installs by setuptools (a path entry, and an import finder when the package's
directory is not its import name), hatchling, pdm-backend and uv; a zipapp (said to run
uninstrumented, by the run and by doctor); ``spec_from_file_location`` + ``exec_module``.
The program runs from another working directory under ``aiotel-run``, and the embedded
store must count its calls under the module's import name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipapp

import pytest

from conftest import command, run

pytestmark = pytest.mark.slow

MARKED = textwrap.dedent(
    '''\
    # AI-generated: Claude, 2026-11-20, prompt: "add the numbers"
    def total(numbers):
        return sum(numbers)
    '''
)

APP = "import {module}\nprint({module}.total([1, 2, 3]))\n"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A new virtualenv that sees this one's packages (aiotel among them) through a .pth,
    with an ``aiotel-run`` script of its own, as pip would write it."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    python = str(root / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    with open(os.path.join(site, "zz-test-parent.pth"), "w") as f:
        f.write(f"import site; site.addsitedir({ours!r})\n")
    script = root / "bin" / "aiotel-run"
    script.write_text(f"#!{python}\nimport sys\nfrom aiotel.launcher import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return root


def pip_install(venv, *args):
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def run_app(venv, tmp_path, module, app_text=None):
    """The app, from a directory of its own, under the venv's aiotel-run; the store's calls by function."""
    where = tmp_path / "elsewhere"
    where.mkdir(exist_ok=True)
    (where / "app.py").write_text(app_text or APP.format(module=module))
    store = tmp_path / "store"
    env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": None}
    result = run([str(venv / "bin" / "aiotel-run"), "python", "app.py"], cwd=str(where), env=env)
    report = run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path))
    calls = {f["function"]: f["calls"] for f in json.loads(report.stdout)["functions"]} if report.stdout.strip() else {}
    return result, calls


def project(tmp_path, name, pyproject, files):
    root = tmp_path / name
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    return root


def built_by(requires, backend, name):
    """A pyproject.toml of project ``name``, built by ``backend`` (from package ``requires``)."""
    return (f'[build-system]\nrequires = ["{requires}"]\nbuild-backend = "{backend}"\n\n'
            f'[project]\nname = "{name}"\nversion = "0.1"\n')


def setuptools_project(name):
    return built_by("setuptools>=64", "setuptools.build_meta", name)


def test_setuptools_editable_whose_directory_is_not_its_import_name(tmp_path, venv):
    """setuptools installs an import finder (__editable___..._finder) instead of a path entry."""
    root = project(tmp_path, "fancy-project", setuptools_project("fancy-project") + textwrap.dedent('''\
        [tool.setuptools]
        packages = ["fancy"]
        package-dir = {"fancy" = "lib_fancy"}
        '''), {"lib_fancy/__init__.py": MARKED})
    pip_install(venv, "-e", str(root))
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys.meta_path)"],
                          capture_output=True, text=True).stdout
    assert "_EditableFinder" in site  # the form under test: a finder, no path entry
    result, calls = run_app(venv, tmp_path, "fancy")
    assert (result.returncode, result.stdout, result.stderr) == (0, "6\n", "")
    assert calls == {"fancy.total": 1}


@pytest.mark.parametrize("backend", ["setuptools", "hatchling", "pdm-backend"])
def test_editable_installs_with_a_path_entry(tmp_path, venv, backend):
    name = f"calc_{backend.replace('-', '_')}"
    pyproject = {
        "setuptools": setuptools_project(name) + '[tool.setuptools.packages.find]\nwhere = ["src"]\n',
        "hatchling": built_by("hatchling", "hatchling.build", name)
        + f'[tool.hatch.build.targets.wheel]\npackages = ["src/{name}"]\n',
        "pdm-backend": built_by("pdm-backend", "pdm.backend", name),
    }[backend]
    root = project(tmp_path, name, pyproject, {f"src/{name}/__init__.py": MARKED})
    pip_install(venv, "-e", str(root))
    result, calls = run_app(venv, tmp_path, name)
    assert (result.returncode, result.stdout, result.stderr) == (0, "6\n", "")
    assert calls == {f"{name}.total": 1}


def test_uv_editable_install(tmp_path, venv):
    uv = shutil.which("uv")
    if uv is None:
        pip_install(venv, "uv")
        uv = str(venv / "bin" / "uv")
    name = "calc_uv"
    root = project(tmp_path, name, built_by("hatchling", "hatchling.build", name), {f"src/{name}/__init__.py": MARKED})
    done = subprocess.run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), "-e", str(root)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result, calls = run_app(venv, tmp_path, name)
    assert (result.returncode, result.stdout, result.stderr) == (0, "6\n", "")
    assert calls == {f"{name}.total": 1}


def test_a_module_loaded_by_its_path_with_exec_module(tmp_path, venv):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "plugin.py").write_text(MARKED)
    app = textwrap.dedent(f'''\
        import importlib.util
        spec = importlib.util.spec_from_file_location("plugin", {str(plugins / "plugin.py")!r})
        plugin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plugin)
        print(plugin.total([1, 2, 3]))
        ''')
    result, calls = run_app(venv, tmp_path, "plugin", app)
    assert (result.returncode, result.stdout, result.stderr) == (0, "6\n", "")
    assert calls == {"plugin.total": 1}


def test_a_zipapp_runs_as_before_and_aiotel_says_it_is_not_instrumented(tmp_path, venv):
    source = tmp_path / "zipped"
    source.mkdir()
    (source / "calc.py").write_text(MARKED)
    (source / "__main__.py").write_text("import calc\nprint(calc.total([1, 2, 3]))\n")
    archive = tmp_path / "elsewhere" / "calc.pyz"
    archive.parent.mkdir()
    zipapp.create_archive(str(source), str(archive))
    where = archive.parent
    env = {"AIOTEL_STORE": str(tmp_path / "store"), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": None}
    plain = run([sys.executable, "calc.pyz"], cwd=str(where))
    result = run([str(venv / "bin" / "aiotel-run"), "python", "calc.pyz"], cwd=str(where),
                 env={**env, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout) == (0, "6\n")
    [said] = result.stderr.splitlines()
    assert said.startswith(f"aiotel: not instrumenting {archive}: modules imported from a zip archive run uninstrumented")
    doctor = run(command("aiotel") + ["doctor", "--json"], cwd=str(where), env=env)
    report = json.loads(doctor.stdout)
    assert report["would_instrument"] == []
    assert [(e["module"], e["functions"]) for e in report["not_instrumented_zipped"]] == [("calc", ["calc.total"])]
