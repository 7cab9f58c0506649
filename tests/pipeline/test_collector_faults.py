"""A collector that is closed, failing (503) or silent changes nothing the program shows,
costs at most 2 s of wall time, and memory stays bounded while it is down."""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import command, free_port, run

pytestmark = pytest.mark.instrumentation

APP = '''\
import resource, sys


# AI-generated: Claude
def work(n):
    if n % 1000 == 999:
        raise ValueError(n)
    return n + 1


def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(calls):
    total = 0
    for n in range(calls):
        try:
            total += work(n)
        except ValueError:
            total -= 1
    return total


run(1000)
before = rss_kib()
print(run(int(sys.argv[1])))
print("rss growth KiB", rss_kib() - before, file=sys.stderr)
'''


class Faulty:
    """Servers that misbehave like a broken collector, on 127.0.0.1."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "closed":
            self.port = free_port()  # nobody listens on it
            self.stop = lambda: None
        elif kind == "503":
            class Unavailable(BaseHTTPRequestHandler):
                def do_POST(self):  # noqa: N802
                    self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

                def log_message(self, *args):
                    pass

            server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
            self.port = server.server_address[1]
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.stop = lambda: (server.shutdown(), server.server_close())
        else:  # silent: accepts connections, never answers
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            held = []

            def accept():
                while True:
                    try:
                        held.append(listener.accept()[0])
                    except OSError:
                        return

            threading.Thread(target=accept, daemon=True).start()
            self.stop = lambda: (listener.close(), [c.close() for c in held])


@pytest.fixture(params=["closed", "503", "silent"])
def collector(request):
    faulty = Faulty(request.param)
    yield faulty
    faulty.stop()


def timed(args, cwd, env):
    started = time.monotonic()
    result = run(args, cwd=str(cwd), env=env)
    return result, time.monotonic() - started


@pytest.mark.slow
def test_broken_collector_costs_at_most_two_seconds_and_changes_no_output(collector, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}", "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    plain, plain_time = timed([sys.executable, "app.py", "20000"], tmp_path, {})
    # the yardstick, measured in the same run: the same program under aiotel, exporting
    # nowhere, so a loaded machine slows both alike and only the collector's cost is left
    _, quiet_time = timed(command("aiotel-run") + ["python", "app.py", "20000"], tmp_path,
                          dict(env, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none"))
    result, wrapped_time = timed(command("aiotel-run") + ["python", "app.py", "20000"], tmp_path, env)
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout)
    aiotel_lines = [line for line in result.stderr.splitlines() if line.startswith("aiotel: ")]
    assert len(aiotel_lines) <= 2, result.stderr
    assert wrapped_time - quiet_time <= 2.0 + 0.5 * quiet_time, (plain_time, quiet_time, wrapped_time)


def test_memory_stays_bounded_while_the_collector_is_down(tmp_path):
    closed = Faulty("closed")
    (tmp_path / "app.py").write_text(APP)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed.port}", "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    result = run(command("aiotel-run") + ["python", "app.py", "100000"], cwd=str(tmp_path), env=env)
    assert result.returncode == 0
    growth = int(next(line for line in result.stderr.splitlines() if line.startswith("rss growth")).split()[-1])
    assert growth < 16 * 1024, f"{growth} KiB for 100 000 calls"  # spans are capped, counts aggregated


def test_with_a_silent_collector_the_store_beside_it_still_gets_everything(tmp_path):
    """OTLP first in the variables, the store second: the exit flush serves the store first,
    so a collector that takes the connection and never answers (it would take the whole
    AIOTEL_SHUTDOWN_TIMEOUT) cannot leave the store without the run's spans and calls."""
    import json

    silent = Faulty("silent")
    try:
        (tmp_path / "app.py").write_text(APP)
        store = tmp_path / "store"
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent.port}", "AIOTEL_CACHE_DIR": str(tmp_path / "c"),
               "OTEL_TRACES_EXPORTER": "otlp,store", "OTEL_METRICS_EXPORTER": "otlp,store", "AIOTEL_STORE": str(store),
               "AIOTEL_SPILL": "off", "OTEL_EXPORTER_OTLP_TIMEOUT": "5000"}
        result = run(command("aiotel-run") + ["python", "app.py", "3000"], cwd=str(tmp_path), env=env)
        assert result.returncode == 0, result.stderr
        report = json.loads(run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path)).stdout)
        [work] = [f for f in report["functions"] if f["function"] == "app.work"]
        assert (work["calls"], work["errors"]) == (4000, 4)  # the warm-up's 1000 and the run's 3000
        spans = sum(line.count('"traceId"') for name in store.iterdir() if name.name.startswith("traces-")
                    for line in name.read_text().splitlines())
        assert spans > 0 and report["spans_dropped"] == 0, report
    finally:
        silent.stop()
