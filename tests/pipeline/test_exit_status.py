"""Every way a program ends, it ends as without aiotel: same status, same output, and,
where exit handlers run at all, the calls made before it are delivered. Each case runs
three times, as a user would: ``python app.py``, then under ``aiotel-run`` with the
embedded store, then with OTLP to the test receiver."""

from __future__ import annotations

import json
import re
import signal
import sys
import textwrap

import pytest

from conftest import command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

PROGRAM = textwrap.dedent(
    '''\
    import atexit, os, signal, sys, time


    # AI-generated: Claude, 2026-11-20, prompt: "add one"
    def step(n):
        return n + 1


    for i in range(3):
        step(i)
    print("before the end", flush=True)
    {ending}
    print("after the end")
    '''
)

ENDINGS = {
    "keyboard-interrupt": "raise KeyboardInterrupt",
    "system-exit-3": "raise SystemExit(3)",
    "system-exit-message": "sys.exit('giving up')",
    "system-exit-none": "sys.exit()",
    "system-exit-256": "sys.exit(256)",
    "sigterm-default": "os.kill(os.getpid(), signal.SIGTERM); time.sleep(10)",
    "os-exit": "sys.stdout.flush(); os._exit(7)",
    "atexit-raises": "atexit.register(lambda: 1 / 0)",
}
# os._exit runs no exit handler, with or without aiotel: what was not exported is lost.
DELIVERED = {name for name in ENDINGS if name != "os-exit"}


def _program_stderr(text):
    """The program's own lines, object addresses aside (they differ between runs)."""
    return [re.sub(r" at 0x[0-9a-f]+", " at 0x…", line) for line in text.splitlines() if not line.startswith("aiotel:")]


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_ending_keeps_status_output_and_telemetry(tmp_path, http_receiver, ending):
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text(PROGRAM.format(ending=ENDINGS[ending]))
    plain = run([sys.executable, "main.py"], cwd=str(app), timeout=60)
    if ending == "keyboard-interrupt":
        assert plain.returncode == -signal.SIGINT
    if ending == "sigterm-default":
        assert plain.returncode == -signal.SIGTERM

    store = tmp_path / "store"
    with_store = run(command("aiotel-run") + ["python", "main.py"], cwd=str(app), timeout=60,
                     env={"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")})
    with_otlp = run(command("aiotel-run") + ["python", "main.py"], cwd=str(app), timeout=60,
                    env=telemetry_env(http_receiver, tmp_path))
    for name, result in (("store", with_store), ("otlp", with_otlp)):
        assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout), (name, result.stderr)
        assert _program_stderr(result.stderr) == _program_stderr(plain.stderr), name

    if ending in DELIVERED:
        report = run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path))
        calls = {f["function"]: f["calls"] for f in json.loads(report.stdout)["functions"]}
        assert calls == {"main.step": 3}, report.stderr  # a main script is named by its file
        received = http_receiver.received
        assert received.wait(lambda r: sum(p.count for p in r.latest_points("aiotel.function.duration").values()) == 3,
                             timeout=10), (received.requests, with_otlp.stderr)
