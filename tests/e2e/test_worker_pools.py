"""Worker pools that recycle their processes, run as users run them: Celery's prefork pool
on Kombu's filesystem transport (no broker server), gunicorn with ``--max-requests``, and
a ``multiprocessing`` pool with ``maxtasksperchild``. Every call that ran is counted,
in every process, recycled or not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from conftest import command, free_port, run, stop, telemetry_env

pytestmark = pytest.mark.slow  # whole servers: in the main run only (CI time), not per Python version

WORK = textwrap.dedent(
    '''\
    # AI-generated: Claude, 2026-11-20, prompt: "double it"
    def double(n):
        return n * 2
    '''
)


def calls_per_process(function, received):
    """Each process's latest cumulative count of ``function``, by service.instance.id."""
    latest = {}
    for p in received.points:
        if p.metric == "aiotel.function.duration" and p.attributes.get("code.function.name") == function:
            key = p.resource["service.instance.id"]
            latest[key] = max(latest.get(key, 0), p.count)
    return latest


def user_env(env):
    """The environment of a user whose virtualenv is active: its commands come first on PATH."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_"))}, **env, "PATH": path}


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


CELERY_APP = textwrap.dedent(
    '''\
    import os
    from celery import Celery
    import work

    queue = os.environ["QUEUE_DIR"]
    app = Celery("tasks", broker="filesystem://")
    app.conf.broker_transport_options = {"data_folder_in": queue, "data_folder_out": queue}
    app.conf.worker_hijack_root_logger = False


    @app.task(ignore_result=True)
    def job(n):
        result = work.double(n)
        with open(os.path.join(os.environ["DONE_DIR"], f"{n}-{os.getpid()}"), "w") as f:
            f.write(str(result))
    '''
)


def run_celery(tmp_path, env, prefix):
    """20 tasks through 2 prefork processes recycled after 5 tasks each, then a warm
    shutdown (SIGTERM): (seconds the tasks took, the worker's stderr, the pids that ran them)."""
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "tasks.py").write_text(CELERY_APP)
    queue, done = tmp_path / "queue", tmp_path / "done"
    for directory in (queue, done):
        directory.mkdir(exist_ok=True)
        for name in os.listdir(directory):
            os.unlink(directory / name)
    base = {"QUEUE_DIR": str(queue), "DONE_DIR": str(done)}
    sent = run([sys.executable, "-c", "import tasks\nfor i in range(20): tasks.job.delay(i)"], cwd=str(tmp_path),
               env=base)
    assert sent.returncode == 0, sent.stderr
    worker = subprocess.Popen(
        prefix + ["celery", "-A", "tasks", "worker", "--pool=prefork", "--concurrency=2", "--max-tasks-per-child=5",
                  "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=str(tmp_path), env=user_env({**env, **base}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        wait_for(lambda: len(os.listdir(done)) == 20, 90, "20 tasks")
        took = time.monotonic() - started
        time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)  # warm shutdown
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            stop(worker)
    assert worker.returncode == 0, err
    return took, err, {name.split("-")[1] for name in os.listdir(done)}


def test_celery_prefork_recycled_and_warm_stopped_processes_deliver_every_call(tmp_path, http_receiver):
    """The pool processes all end through os._exit: recycled, or at the warm shutdown."""
    pytest.importorskip("celery")
    took, err, pids = run_celery(tmp_path, telemetry_env(http_receiver, tmp_path), command("aiotel-run"))
    assert "aiotel:" not in err, err
    assert len(pids) >= 4  # recycled after 5 tasks each
    received = http_receiver.received
    assert received.wait(lambda r: sum(calls_per_process("work.double", r).values()) == 20, timeout=15), \
        calls_per_process("work.double", received)
    assert len(calls_per_process("work.double", received)) == len(pids)


def test_celery_processes_recycled_while_the_collector_is_down_spill_at_once(tmp_path):
    """No recycled process waits for a collector that is not there (the exit budget here
    is 10 s a process): the tasks take as long as without aiotel, every call is spilled."""
    pytest.importorskip("celery")
    plain_took, _, _ = run_celery(tmp_path, {}, [])
    spill = tmp_path / "spill"
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}", "AIOTEL_SPILL": str(spill),
           "AIOTEL_SHUTDOWN_TIMEOUT": "10", "OTEL_BSP_SCHEDULE_DELAY": "100",
           "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    took, err, pids = run_celery(tmp_path, env, command("aiotel-run"))
    assert took < plain_took * 1.5 + 2, (took, plain_took)
    report = run(command("aiotel") + ["report", "--json", "--store", str(spill)], cwd=str(tmp_path))
    assert [f["calls"] for f in json.loads(report.stdout)["functions"]] == [20], report.stderr
    assert "could not be sent: kept in" in err


GUNICORN_APP = textwrap.dedent(
    '''\
    import os
    import work


    def app(environ, start_response):
        body = str(work.double(len(environ.get("PATH_INFO", "")))).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
        return [body]
    '''
)


def test_gunicorn_workers_recycled_by_max_requests_deliver_every_call(tmp_path, http_receiver):
    pytest.importorskip("gunicorn")
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "wsgi.py").write_text(GUNICORN_APP)
    port = free_port()
    env = telemetry_env(http_receiver, tmp_path)
    server = subprocess.Popen(
        command("aiotel-run") + ["gunicorn", "--workers", "2", "--max-requests", "5", "--bind", f"127.0.0.1:{port}",
                                 "--log-level", "warning", "wsgi:app"],
        cwd=str(tmp_path), env=user_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)
    pids = set()
    try:
        def up():
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/warmup", timeout=2).read()
                return True
            except OSError:
                return False

        wait_for(up, 30, "gunicorn")
        for i in range(29):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{'x' * i}", timeout=10) as response:
                assert response.read() == str(2 * (i + 1)).encode()
                pids.add(response.headers["X-Pid"])
        server.send_signal(signal.SIGTERM)  # graceful stop of the master and the last workers
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            stop(server)
    assert server.returncode == 0, err
    assert len(pids) >= 3  # workers were recycled
    received = http_receiver.received
    assert received.wait(lambda r: sum(calls_per_process("work.double", r).values()) == 30, timeout=15), \
        calls_per_process("work.double", received)


POOL = textwrap.dedent(
    '''\
    import multiprocessing, os, sys
    import work


    def job(n):
        work.double(n)
        return os.getpid()


    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        pool = context.Pool(2, maxtasksperchild=3)
        pids = set(pool.map(job, range(24), chunksize=1))
        pool.close()
        pool.join()
        print(len(pids) >= 4)
    '''
)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_pool_workers_recycled_by_maxtasksperchild_deliver_every_call(tmp_path, http_receiver,
                                                                                      method):
    (tmp_path / "work.py").write_text(WORK)
    (tmp_path / "pool.py").write_text(POOL)
    result = run(command("aiotel-run") + ["python", "pool.py", method], cwd=str(tmp_path),
                 env=user_env(telemetry_env(http_receiver, tmp_path)), timeout=120)
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\n", "")
    received = http_receiver.received
    assert received.wait(lambda r: sum(calls_per_process("work.double", r).values()) == 24, timeout=15), \
        calls_per_process("work.double", received)
