"""The cache directory decides what gets imported (the instrumentor list names entry points),
so a cache that someone else can write is never used, and a cached entry that no
installed distribution declares is never imported."""

from __future__ import annotations

import json
import os

import pytest

from conftest import command, run

PROGRAM = "# AI-generated: Claude\ndef f():\n    return 41 + 1\n\n\nprint(f())\n"

# Imported only if aiotel trusted a forged entry: it leaves a file behind.
EVIL = "import pathlib\npathlib.Path(__file__).with_name('IMPORTED').write_text('yes')\n\nclass Evil:\n    pass\n"


@pytest.fixture
def program(tmp_path):
    """A marked program, the module a forger would name, and a real instrumentor cache."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "prog.py").write_text(PROGRAM)
    (app / "evilmod.py").write_text(EVIL)
    cache = tmp_path / "cache"
    result = launch(app, cache)
    assert (result.returncode, result.stdout, result.stderr) == (0, "42\n", "")
    assert (cache / "instrumentors.json").exists()
    return app, cache


def launch(app, cache):
    env = {"AIOTEL_CACHE_DIR": str(cache), "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
    return run(command("aiotel-run") + ["python", "prog.py"], cwd=str(app), env=env)


def forge(cache, **entry):
    """Add an entry naming evilmod to the instrumentor cache, its key left valid."""
    path = cache / "instrumentors.json"
    data = json.loads(path.read_text())
    assert data["entries"], "the test needs one real instrumentor (opentelemetry-instrumentation-flask)"
    real = data["entries"][0]
    data["entries"].append(dict(real, name="evil", value="evilmod:Evil", modules=None, dist=None, **entry))
    path.write_text(json.dumps(data))


def assert_untouched(app, result):
    assert (result.returncode, result.stdout) == (0, "42\n")
    assert not (app / "IMPORTED").exists(), "a module named by a forged cache entry was imported"


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722])
def test_a_cache_others_can_write_is_not_used(program, mode):
    app, cache = program
    forge(cache)
    os.chmod(cache, mode)
    result = launch(app, cache)
    assert_untouched(app, result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and f"not using the cache directory {cache}" in lines[0], result.stderr
    assert f"mode {mode:04o}" in lines[0] and "running without a cache" in lines[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root")
def test_a_cache_owned_by_another_user_is_not_used(program):
    app, cache = program
    forge(cache)
    os.chown(cache, 65534, 65534)
    result = launch(app, cache)
    assert_untouched(app, result)
    assert "owned by uid 65534" in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_a_cache_that_is_a_symbolic_link_is_not_used(program, tmp_path):
    app, cache = program
    forge(cache)
    link = tmp_path / "link"
    link.symlink_to(cache)
    result = launch(app, link)
    assert_untouched(app, result)
    assert f"not using the cache directory {link}: it is a symbolic link" in result.stderr


def test_a_forged_entry_in_a_private_cache_is_never_imported(program, tmp_path):
    """Even in a cache only this user can write: the entry is checked against the
    installed distributions' entry_points.txt before anything is imported."""
    app, cache = program
    forge(cache)  # names a real distribution's file, which does not declare it
    result = launch(app, cache)
    assert_untouched(app, result)
    assert result.stderr == ""
    # a file of the forger's own, with a matching digest, is not an installed distribution
    fake = tmp_path / "elsewhere" / "evil-1.0.dist-info" / "entry_points.txt"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"[opentelemetry_instrumentor]\nevil = evilmod:Evil\n")
    from aiotel.provenance.digest import sha256_hex

    data = json.loads((cache / "instrumentors.json").read_text())
    data["entries"] = [e for e in data["entries"] if e["name"] != "evil"]
    (cache / "instrumentors.json").write_text(json.dumps(data))
    forge(cache, file=str(fake), digest=sha256_hex(fake.read_bytes()))
    result = launch(app, cache)
    assert_untouched(app, result)
    # and the cache was rebuilt from the real entry points, without the forged one
    names = [e["name"] for e in json.loads((cache / "instrumentors.json").read_text())["entries"]]
    assert "evil" not in names and names


def test_a_missing_cache_is_created_private(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "prog.py").write_text(PROGRAM)
    cache = tmp_path / "new" / "cache"
    result = launch(app, cache)
    assert (result.returncode, result.stdout, result.stderr) == (0, "42\n", "")
    assert oct(os.stat(cache).st_mode & 0o777) == oct(0o700)


def test_scan_and_doctor_refuse_the_same_cache(program):
    app, cache = program
    os.chmod(cache, 0o777)
    env = {"AIOTEL_CACHE_DIR": str(cache)}
    scan = run(command("aiotel") + ["scan", "prog.py"], cwd=str(app), env=env)
    assert scan.returncode == 0 and "f" in scan.stdout
    assert f"not using the cache directory {cache}" in scan.stderr
    doctor = run(command("aiotel") + ["doctor", "--json"], cwd=str(app), env=env)
    report = json.loads(doctor.stdout)
    assert any(f"not using the cache directory {cache}" in p for p in report["problems"]), report["problems"]
    assert doctor.returncode == 1  # unhealthy: aiotel-run would say the same
