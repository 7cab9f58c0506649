"""Telemetry survives SIGTERM, os.fork and multiprocessing, and exit statuses stay the same."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import command, telemetry_env

pytestmark = pytest.mark.instrumentation

WORK = textwrap.dedent(
    '''\
    import time


    # AI-generated: Claude
    def tick(n):
        time.sleep(0.001)
        return n * 2
    '''
)


def start(args, cwd, env):
    """A long-running program, as a user starts it; returns once it printed 'ready'."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_"))}
    full_env.update(env)
    process = subprocess.Popen(args, cwd=str(cwd), env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("ready"):
            return process, lines
    process.kill()
    raise AssertionError(f"never ready: {lines} {process.stderr.read()}")


def finish(process, timeout=30):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def calls_of(function, received):
    """Calls of ``function`` counted by every process: each one's latest cumulative count."""
    latest = {}
    for p in received.points:
        if p.attributes.get("code.function.name") == function:
            key = p.resource["service.instance.id"]
            latest[key] = max(latest.get(key, 0), p.count)
    return sum(latest.values())


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "work.py").write_text(WORK)
    return tmp_path


LOOP = textwrap.dedent(
    '''\
    import sys, time
    import work

    work.tick(0)
    print("ready", flush=True)
    while True:
        work.tick(1)
        time.sleep(0.01)
    '''
)


def test_sigterm_flushes_the_last_second_and_keeps_the_exit_status(workdir, http_receiver, tmp_path):
    (workdir / "loop.py").write_text(LOOP)
    # the batch processor would hold spans for 30 s: only the SIGTERM flush can deliver them
    env = telemetry_env(http_receiver, tmp_path, OTEL_BSP_SCHEDULE_DELAY="30000", AIOTEL_SPAN_RATE_LIMIT="1000")
    plain, _ = start([sys.executable, "loop.py"], workdir, {})
    time.sleep(0.5)
    plain.send_signal(signal.SIGTERM)
    plain_status = finish(plain)[0]

    process, _ = start(command("aiotel-run") + ["python", "loop.py"], workdir, env)
    time.sleep(1.0)
    killed_at = time.time_ns()
    process.send_signal(signal.SIGTERM)
    status, out, err = finish(process)
    assert status == plain_status == -signal.SIGTERM
    assert err == ""
    got = http_receiver.received
    assert got.wait(lambda r: len(r.spans) > 20 and r.points, timeout=10)
    last_second = [s for s in got.spans if killed_at - 1_000_000_000 <= s.end <= killed_at]
    assert len(last_second) > 10  # ~60 calls a second, all sampled
    counts = [p.count for p in got.points if p.attributes.get("code.function.name") == "work.tick"]
    assert counts and max(counts) > 20


def test_program_handler_for_sigterm_still_wins(workdir, tmp_path):
    (workdir / "own.py").write_text(
        "import signal, sys, time, work\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('own handler', flush=True), sys.exit(7)))\n"
        "print('ready', flush=True)\n"
        "while True:\n    work.tick(1)\n"
    )
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    process, _ = start(command("aiotel-run") + ["python", "own.py"], workdir, env)
    process.send_signal(signal.SIGTERM)
    status, out, err = finish(process)
    assert (status, out, err) == (7, "own handler\n", "")


FORK = textwrap.dedent(
    '''\
    import os, sys, time
    import work

    pid = os.fork()
    if pid == 0:
        work.tick(0)
        print("ready", os.getpid(), flush=True)
        while True:
            work.tick(1)
            time.sleep(0.01)
    _, status = os.waitpid(pid, 0)
    print("child", os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status), flush=True)
    for i in range(3):
        work.tick(i)
    '''
)


def test_fork_child_reports_its_own_calls_and_flushes_on_sigterm(workdir, http_receiver, tmp_path):
    (workdir / "forker.py").write_text(FORK)
    env = telemetry_env(http_receiver, tmp_path, OTEL_BSP_SCHEDULE_DELAY="30000", AIOTEL_SPAN_RATE_LIMIT="1000")
    process, lines = start(command("aiotel-run") + ["python", "forker.py"], workdir, env)
    child = int(lines[-1].split()[1])
    time.sleep(0.5)
    os.kill(child, signal.SIGTERM)
    status, out, err = finish(process)
    assert (status, out, err) == (0, f"child {int(signal.SIGTERM)}\n", "")
    got = http_receiver.received
    # one series per process: the parent's 3 calls, and the child's own (not the parent's too)
    assert got.wait(lambda r: len({p.resource["service.instance.id"] for p in r.points}) == 2, timeout=10)
    by_process = {}
    for p in got.points:
        if p.attributes.get("code.function.name") == "work.tick":
            by_process[p.resource["service.instance.id"]] = max(by_process.get(p.resource["service.instance.id"], 0), p.count)
    assert sorted(by_process.values())[0] == 3 and sorted(by_process.values())[1] > 10


POOL = textwrap.dedent(
    '''\
    import multiprocessing, sys
    import work

    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        if sys.argv[2] == "terminate":  # the context manager ends the workers with SIGTERM
            with context.Pool(2) as pool:
                print(sum(pool.map(work.tick, range(40))))
        else:
            pool = context.Pool(2)
            print(sum(pool.map(work.tick, range(40))))
            pool.close()
            pool.join()
    '''
)


# A pool's terminate() (what `with Pool()` does) sends SIGTERM to idle workers, which can
# die of it before Python runs any handler (seen for every start method, CPython 3.9-3.13):
# only close() + join() reliably keeps their last counts. The README says so.
@pytest.mark.parametrize("method, ending", [("fork", "join"), ("forkserver", "join"), ("spawn", "join")])
def test_multiprocessing_children_report_every_call(workdir, http_receiver, tmp_path, method, ending):
    (workdir / "pool.py").write_text(POOL)
    env = telemetry_env(http_receiver, tmp_path, OTEL_BSP_SCHEDULE_DELAY="30000")
    result = subprocess.run(command("aiotel-run") + ["python", "pool.py", method, ending], cwd=str(workdir), timeout=60,
                            env={**{k: v for k, v in os.environ.items()
                                    if not k.startswith(("AIOTEL_", "OTEL_", "GRPC_"))}, **env},
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert (result.returncode, result.stdout, result.stderr) == (0, "1560\n", "")
    got = http_receiver.received

    assert got.wait(lambda r: calls_of("work.tick", r) == 40, timeout=15), calls_of("work.tick", got)


POOL_FOREVER = textwrap.dedent(
    '''\
    import multiprocessing, sys, time
    import work


    def busy(n):
        for _ in range(20):
            work.tick(n)
        return n


    if __name__ == "__main__":
        pool = multiprocessing.get_context("fork").Pool(2)
        result = pool.map_async(busy, range(10_000), chunksize=1)
        time.sleep(0.5)
        print("ready", flush=True)
        result.wait()
    '''
)


def test_sigterm_to_a_pool_program_keeps_its_status_and_the_workers_report(workdir, http_receiver, tmp_path):
    (workdir / "forever.py").write_text(POOL_FOREVER)
    env = telemetry_env(http_receiver, tmp_path, OTEL_BSP_SCHEDULE_DELAY="30000")
    plain, _ = start([sys.executable, "forever.py"], workdir, {})
    plain.send_signal(signal.SIGTERM)
    plain_status = finish(plain)[0]

    process, _ = start(command("aiotel-run") + ["python", "forever.py"], workdir, env)
    process.send_signal(signal.SIGTERM)
    status, out, err = finish(process)
    assert status == plain_status == -signal.SIGTERM
    # the workers notice their parent is gone, stop, and flush through the exit finalizer
    got = http_receiver.received

    def worker_calls(r):
        return sum(max((p.count for p in r.points if p.resource["service.instance.id"] == i
                        and p.attributes.get("code.function.name") == "work.tick"), default=0)
                   for i in {p.resource["service.instance.id"] for p in r.points})

    assert got.wait(lambda r: worker_calls(r) > 20, timeout=20), worker_calls(got)


MAIN_SCRIPT_POOL = textwrap.dedent(
    '''\
    import multiprocessing, sys


    # AI-generated: Claude, 2026-11-20, prompt: "square it"
    def square(n):
        return n * n


    def in_child(n):
        return sum(square(i) for i in range(n))


    if __name__ == "__main__":
        context = multiprocessing.get_context(sys.argv[1])
        process = context.Process(target=in_child, args=(5,))
        process.start()
        process.join()
        pool = context.Pool(2)
        total = sum(pool.map(in_child, [10] * 4))
        pool.close()
        pool.join()
        print(total, square(3), process.exitcode)
    '''
)


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_main_script_functions_are_instrumented_in_children_of_every_start_method(tmp_path, http_receiver, method):
    (tmp_path / "main.py").write_text(MAIN_SCRIPT_POOL)
    env = telemetry_env(http_receiver, tmp_path, OTEL_BSP_SCHEDULE_DELAY="30000")
    plain = subprocess.run([sys.executable, "main.py", method], cwd=str(tmp_path), timeout=60, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL)
    result = subprocess.run(command("aiotel-run") + ["python", "main.py", method], cwd=str(tmp_path), timeout=90,
                            env={**{k: v for k, v in os.environ.items()
                                    if not k.startswith(("AIOTEL_", "OTEL_", "GRPC_"))}, **env},
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, "")

    # 5 calls in the Process, 4 x 10 in the pool's workers, 1 in the parent
    got = http_receiver.received
    assert got.wait(lambda r: calls_of("main.square", r) == 46, timeout=20), calls_of("main.square", got)


IDENTITY = textwrap.dedent(
    '''\
    import multiprocessing, os, subprocess, sys


    # AI-generated: Claude, 2026-11-20, prompt: "square it"
    def square(n):
        return n * n


    if __name__ == "__main__":
        open("pids", "w").write(str(os.getpid()))
        square(1)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(square, (2,))
            pool.close()
            pool.join()
        child = multiprocessing.get_context("fork").Process(target=square, args=(3,))
        child.start()
        child.join()
        # a Python child started by the program itself, from another working directory
        subprocess.run([sys.executable, "-c", "import work; work.tick(4)"], cwd=os.environ["WORK"], check=True)
    '''
)


def test_every_child_reports_the_launchers_service_name_and_its_own_pid(workdir, http_receiver, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text(IDENTITY)
    env = telemetry_env(http_receiver, tmp_path, OTEL_BSP_SCHEDULE_DELAY="30000", WORK=str(workdir))
    result = subprocess.run(command("aiotel-run") + ["python", "main.py"], cwd=str(app), timeout=90,
                            env={**{k: v for k, v in os.environ.items()
                                    if not k.startswith(("AIOTEL_", "OTEL_", "GRPC_"))}, **env},
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    got = http_receiver.received

    def reporters(r):
        found = {}
        for p in r.points:
            if p.metric == "aiotel.function.duration":
                found[p.resource["service.instance.id"]] = (p.resource.get("service.name"), p.resource.get("process.pid"))
        return found

    assert got.wait(lambda r: len(reporters(r)) == 4, timeout=20), reporters(got)
    found = reporters(got)
    assert {name for name, _ in found.values()} == {"main"}  # spawn, fork and a plain subprocess alike
    pids = [pid for _, pid in found.values()]
    assert len(set(pids)) == 4 and int((app / "pids").read_text()) in pids
    assert all(s.resource.get("process.pid") in pids for s in got.spans)
