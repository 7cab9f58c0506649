"""Resource detection: only what OTEL_* leaves out, credentials never kept."""

from __future__ import annotations

import subprocess

from aiotel.provenance.git import head_revision
from aiotel.pipeline.resource import detected_attributes, git_remote_url, program, strip_credentials


def test_credentials_are_stripped_from_repository_urls():
    assert strip_credentials("https://user:s3cret@git.example.com:8443/org/repo.git") == "https://git.example.com:8443/org/repo.git"
    assert strip_credentials("https://token@git.example.com/org/repo") == "https://git.example.com/org/repo"
    assert strip_credentials("git@git.example.com:org/repo.git") == "git.example.com:org/repo.git"


def test_program_name_for_script_module_and_command():
    assert program(argv=["/srv/app/serve.py", "x"], orig_argv=[])[:2] == ("script", "serve")
    assert program(argv=["-m", "--flag"], orig_argv=["python", "-X", "dev", "-m", "pkg.tool", "--flag"])[:2] == ("module", "pkg.tool")
    assert program(argv=["/venv/bin/gunicorn", "app:app"], orig_argv=[])[:2] == ("command", "gunicorn")
    assert program(argv=["-c"], orig_argv=["python", "-c", "pass"])[:2] == ("other", "")
    assert program(main="/srv/app/tool.py")[:2] == ("script", "tool")


def test_revision_and_remote_are_read_from_the_checkout(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "x")
    git("remote", "add", "origin", "https://bot:tok@git.example.com/org/repo.git")
    expected = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert head_revision(str(tmp_path / ".git")) == expected
    git("pack-refs", "--all")  # the branch now lives in packed-refs only
    assert head_revision(str(tmp_path / ".git")) == expected
    assert git_remote_url(str(tmp_path / ".git")) == "https://bot:tok@git.example.com/org/repo.git"
    found = detected_attributes({}, {}, main=str(tmp_path / "app.py"))
    assert found["vcs.ref.head.revision"] == expected
    assert found["vcs.repository.url.full"] == "https://git.example.com/org/repo.git"
    assert found["service.name"] == "app" and found["service.version"] == expected[:7]


def test_ci_variables_and_configured_values_win(tmp_path):
    env = {"GITHUB_SHA": "abc123", "GITHUB_REPOSITORY": "org/repo", "GITHUB_SERVER_URL": "https://git.example.com"}
    found = detected_attributes(env, {"service.version": "2.0"}, main=str(tmp_path / "app.py"))
    assert found["vcs.ref.head.revision"] == "abc123"
    assert found["vcs.repository.url.full"] == "https://git.example.com/org/repo"
    assert "service.version" not in found  # configured: left to OTEL_RESOURCE_ATTRIBUTES
    assert "service.name" not in detected_attributes({"OTEL_SERVICE_NAME": "x"}, {"service.name": "x"}, main="/a/app.py")
    assert found["telemetry.distro.name"] == "aiotel"
