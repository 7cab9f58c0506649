"""Shared helpers: run aiotel's commands as a user would, in a fresh interpreter."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional

import pytest

# The gRPC test receiver's threads live in this process, which forks for every subprocess:
# gRPC's fork handlers then run in the child before it execs and, now and then, abort it
# (SIGABRT, "epoll_wait error: Bad file descriptor"; seen on Python 3.9). This process never
# uses gRPC in a forked child, so its fork support is off; the programs the tests run
# keep their own default (``run`` does not pass this on).
_FORK_SUPPORT = "GRPC_ENABLE_FORK_SUPPORT"
_CALLERS_FORK_SUPPORT = os.environ.get(_FORK_SUPPORT)
os.environ[_FORK_SUPPORT] = "false"

BIN = os.path.dirname(sys.executable)
TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)  # the repository
SAMPLES = os.path.join(TESTS, "samples")  # programs the subprocess tests run
E2E = os.path.join(TESTS, "e2e")


def pytest_collection_modifyitems(items):
    # whole programs against real back-ends: the fast set (-m "not slow") leaves them out
    for item in items:
        if str(item.fspath).startswith(E2E + os.sep):
            item.add_marker(pytest.mark.slow)


# sample programs for subprocess tests, not tests of this repository
collect_ignore = ["samples"]


def command(name: str) -> List[str]:
    """The installed console script, as a user would type it."""
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        pytest.fail(f"console script {name!r} is not installed next to {sys.executable}; run: pip install -e .[test]")
    return [path]


def run(args: List[str], cwd: str, env: Optional[Dict[str, Optional[str]]] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``args`` with the caller's environment minus AIOTEL_/OTEL_ variables, plus ``env``
    (a None value unsets a variable)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_")) and k != _FORK_SUPPORT}
    if _CALLERS_FORK_SUPPORT is not None:
        full_env[_FORK_SUPPORT] = _CALLERS_FORK_SUPPORT
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def aiotel_run(args: List[str], cwd: Any, env: Optional[Dict[str, Optional[str]]] = None) -> subprocess.CompletedProcess:
    """``aiotel-run <args>`` as a user runs it, from ``cwd`` (see ``run`` for ``env``)."""
    return run(command("aiotel-run") + list(args), cwd=str(cwd), env=env)


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    """Each test's own $XDG_STATE_HOME (the spill, a refused store's fallback), passed on by
    ``run``: no test writes to the home directory of the user who runs the suite."""
    state = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


@pytest.fixture
def http_receiver():
    from otlp_receiver import HttpReceiver

    receiver = HttpReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def grpc_receiver():
    from otlp_receiver import GrpcReceiver

    receiver = GrpcReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture(params=["http", "grpc"])
def receiver(request):
    """Each OTLP protocol's receiver in turn."""
    return request.getfixturevalue(f"{request.param}_receiver")


def telemetry_env(receiver, tmp_path, **extra: str) -> Dict[str, str]:
    """Variables for a run that exports to ``receiver``; everything arrives by the exit flush."""
    env = dict(receiver.env())
    env.update(
        {
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            "AIOTEL_CACHE_DIR": str(tmp_path / "aiotel-cache"),
            "AIOTEL_SHUTDOWN_TIMEOUT": "10",
        }
    )
    env.update(extra)
    return env


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Stop a server started by a fixture, by its PID: SIGTERM, then SIGKILL if it lingers."""
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


# --- a real Prometheus server (metrics back-end tests) ----------------------------------

PROMETHEUS = shutil.which("prometheus")


def wait_until(check, timeout=30.0, interval=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return check()


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except OSError:
        return None


@pytest.fixture
def prometheus(tmp_path):
    """A Prometheus server on 127.0.0.1 scraping ``targets`` every second; stopped by PID."""
    assert PROMETHEUS, "prometheus is not installed: apt-get install -y prometheus"
    app_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
    )
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{web_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{web_port}"
    try:
        assert wait_until(lambda: _ready(base), timeout=30), "prometheus did not become ready"
        yield base, app_port
    finally:
        stop(process, timeout=10)


def _ready(base):
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def query(base, promql):
    data = get_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert data is not None and data["status"] == "success", data
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in data["data"]["result"]}
