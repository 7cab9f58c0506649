"""``aiotel-run [options] COMMAND ...``: run a command with aiotel active.

The launcher only prepares the environment and ``exec``s the command:
- every option sets exactly one environment variable (``--help`` lists the pairs);
- the bootstrap directory goes first on ``PYTHONPATH`` (the other entries stay as they
  are, empty ones too), so every Python process the command starts imports aiotel's
  sitecustomize;
- ``python [opts] app.py args`` becomes ``python [opts] <tmp>/app.pyc args``, a pyc the
  bootstrap writes from app.py before Python opens it, so the main script is compiled
  by aiotel and still run by Python itself (see ``_bootstrap/_aiotel_main.py``);
  ``python -m pkg``, ``-c`` and console scripts (pytest, gunicorn, ...) run as typed and
  go through the import hook.

Its start-up is part of every run's, so it imports little: without options (the usual
``aiotel-run python app.py``) no argparse and no table of variables; neither ``re`` nor
``shutil`` (the console-script stub pip writes imports ``sys`` alone), which cost this
process more than the rest of its work.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (annotations are strings)
if TYPE_CHECKING:
    import argparse
    from typing import Dict, List, Optional, Sequence, Tuple

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bootstrap")



def is_python_name(name: str) -> bool:
    """``python``, ``python3``, ``python3.12``, with an optional ``d``/``t``/``w`` and ``.exe``."""
    if name.endswith(".exe"):
        name = name[:-4]
    if not name.startswith("python"):
        return False
    version = name[6:]
    if version[-1:] in ("d", "t", "w"):
        version = version[:-1]
    major, dot, minor = version.partition(".")
    return not version or (major.isdigit() and (not dot or minor.isdigit()))


def which(name: str, path: Optional[str] = None) -> Optional[str]:
    """``shutil.which`` on POSIX, where aiotel-run runs (importing shutil costs more than the lookup)."""
    def runnable(candidate: str) -> bool:
        return os.access(candidate, os.F_OK | os.X_OK) and not os.path.isdir(candidate)

    if os.path.dirname(name):
        return name if runnable(name) else None
    if path is None:
        path = os.environ.get("PATH", None)
        if path is None:
            path = os.defpath
    seen = set()
    for directory in path.split(os.pathsep):
        if directory in seen:
            continue
        seen.add(directory)
        candidate = os.path.join(directory, name)
        if runnable(candidate):
            return candidate
    return None

def build_parser() -> argparse.ArgumentParser:
    import argparse

    from .variables import VARIABLES

    parser = argparse.ArgumentParser(
        prog="aiotel-run",
        usage="aiotel-run [options] COMMAND [ARGS ...]",
        description=(
            "Run COMMAND with aiotel: functions marked as AI-generated report OpenTelemetry spans "
            "and metrics. Each option sets the environment variable named next to it; the "
            "standard OTEL_* variables keep their OpenTelemetry meaning."
        ),
        epilog="examples:  aiotel-run python app.py   aiotel-run python -m pkg   aiotel-run pytest -q",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    for variable in VARIABLES:
        default = f" (default: {variable.default})" if variable.default else ""
        parser.add_argument(
            variable.flag,
            dest=variable.name,
            metavar="VALUE",
            help=f"{variable.help}{default}  [{variable.name}]",
        )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run")
    return parser


def with_bootstrap(pythonpath: Optional[str]) -> str:
    """``PYTHONPATH`` with the bootstrap directory first. Empty entries stay: Python puts
    the current directory on ``sys.path`` for each, and the program may rely on it."""
    if not pythonpath:
        return BOOTSTRAP_DIR  # an empty PYTHONPATH adds nothing; "BOOTSTRAP:" would add the cwd
    entries = [e for e in pythonpath.split(os.pathsep) if e != BOOTSTRAP_DIR]
    return os.pathsep.join([BOOTSTRAP_DIR] + entries)


def script_index(python_args: Sequence[str]) -> Optional[int]:
    """Where the script is in the interpreter's arguments; None for -c, -m, stdin, REPL."""
    i = 0
    while i < len(python_args):
        arg = python_args[i]
        if arg == "--":
            return i + 1 if i + 1 < len(python_args) else None
        if arg == "-":
            return None
        if arg.startswith("--"):
            if arg.startswith("--help") or arg == "--version":
                return None
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        if arg.startswith("-"):
            flags = arg[1:]
            for j, flag in enumerate(flags):
                if flag in "cm":
                    return None
                if flag in "WX":  # -W/-X take a value, attached or as the next argument
                    if j == len(flags) - 1:
                        i += 1
                    break
            i += 1
            continue
        return i
    return None


def skips_bootstrap(python_args: Sequence[str], script_at: int) -> bool:
    """-I (isolated) and -E ignore PYTHONPATH, -S skips site: the bootstrap cannot run."""
    for arg in python_args[:script_at]:
        if arg.startswith("-") and not arg.startswith("--"):
            flags = arg[1:]
            for flag in flags:
                if flag in "IES":
                    return True
                if flag in "WX":
                    break
    return False


def python_command(program: str, args: List[str], env: Dict[str, str]) -> List[str]:
    """The command to exec: a Python main script is replaced by the pyc the bootstrap writes."""
    if not is_python_name(os.path.basename(program)):
        return args
    python_args = args[1:]
    at = script_index(python_args)
    if at is None:
        return args
    if skips_bootstrap(python_args, at):
        print("aiotel-run: python -I/-E/-S skips PYTHONPATH or site; running the command uninstrumented", file=sys.stderr)
        return args
    script = python_args[at]
    if not os.path.isfile(script) or not _plain_source(script):
        return args  # a directory, zip app, missing file or NUL bytes: Python's own handling
    if "-x" in python_args[:at]:
        return args  # -x skips the first source line: leave that to Python
    import json

    workdir = private_directory("aiotel-main-")  # removed by the script's first statement
    stem = os.path.splitext(os.path.basename(script))[0] or "main"
    pyc = os.path.join(workdir, stem + ".pyc")
    open(pyc, "wb").close()
    env["AIOTEL_MAIN"] = json.dumps({"script": script, "path": os.path.abspath(script), "pyc": pyc})
    return [args[0]] + python_args[:at] + [pyc] + python_args[at + 1 :]


def service_name(program: str, args: List[str]) -> Optional[str]:
    """The program's name, as resource detection would name it in the process itself: the
    script's (``app`` for ``python app.py``), the module's (``python -m pkg``), or the
    command's (``pytest``, ``gunicorn``); None for ``python -c`` and the REPL. Passed to
    every Python child as ``AIOTEL_SERVICE_NAME``, so workers that a server or a pool
    starts (spawn children, uvicorn and xdist workers) report under their program's name."""
    if not is_python_name(os.path.basename(program)):
        return os.path.basename(program) or None
    python_args = args[1:]
    at = script_index(python_args)
    if at is not None:
        return os.path.splitext(os.path.basename(python_args[at]))[0] or None
    for i, arg in enumerate(python_args):
        if not arg.startswith("-") or arg == "--":
            return None
        if arg == "-m":
            return python_args[i + 1] if i + 1 < len(python_args) else None
        if arg.startswith("-m"):
            return arg[2:]
        if "c" in arg[1:] and not arg.startswith("--"):
            return None
    return None


def private_directory(prefix: str) -> str:
    """A new directory, mode 0700, in the first usable temporary directory, as
    ``tempfile.mkdtemp`` makes it (whose import costs this process more than the rest
    of its work); OSError when none can be made."""
    candidates = [os.environ.get(v) for v in ("TMPDIR", "TEMP", "TMP")] + ["/tmp", "/var/tmp", "/usr/tmp"]
    last: Optional[OSError] = None
    for base in [c for c in candidates if c] + [os.getcwd()]:
        for _ in range(10):
            path = os.path.join(os.path.abspath(base), prefix + os.urandom(6).hex())
            try:
                os.mkdir(path, 0o700)
                return path
            except FileExistsError as exc:
                last = exc
            except OSError as exc:
                last = exc
                break  # not writable: the next candidate
    raise last or OSError("no temporary directory")


def _plain_source(path: str) -> bool:
    """Source Python would read as compile() does: not a zip app, no NUL byte (3.9 stops
    reading a script file at one, compile() rejects it)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return not data.startswith(b"PK") and b"\0" not in data


def resolve(name: str, path: Optional[str]) -> Optional[str]:
    """The program to run. A bare ``python``/``python3``/``python3.X`` means the interpreter
    aiotel-run is installed with, when it has that name: the one that can import aiotel
    (``.venv/bin/aiotel-run python app.py`` works without activating the virtualenv)."""
    if os.sep not in name and is_python_name(name):
        sibling = os.path.join(os.path.dirname(sys.executable), name)
        if os.path.isfile(sibling) and os.access(sibling, os.X_OK):
            return sibling
    return which(name, path=path)


def script_interpreter(program: str) -> Optional[str]:
    """The Python a console script runs with, from its ``#!`` line (or the ``/bin/sh``
    trampoline pip writes when that line would be too long); None for anything else."""
    try:
        with open(program, "rb") as fh:
            head = fh.read(512).decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].split()
    if words and words[0] == "/bin/sh" and len(head) > 1 and head[1].startswith("'" * 3 + "exec' "):
        quoted = head[1][len("'''exec' "):]  # "/path/to/python" "$0" "$@"
        words = [quoted[1:quoted.index('"', 1)]] if quoted.startswith('"') and '"' in quoted[1:] else []
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")][:1]
        words = [which(words[0]) or words[0]] if words else []
    if not words or not is_python_name(os.path.basename(words[0])):
        return None
    return words[0]


def foreign_interpreter(program: str, environ: Dict[str, str]) -> Optional[str]:
    """The interpreter of the console script ``program`` when aiotel cannot be imported
    there (another virtualenv, the system Python), or None. Checked by running it only
    when it is not aiotel-run's own."""
    interpreter = script_interpreter(program)
    if interpreter is None:
        return None
    ours = os.path.realpath(os.path.dirname(sys.executable))
    if os.path.realpath(os.path.dirname(interpreter)) == ours or not os.path.isfile(interpreter):
        return None
    import subprocess

    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('aiotel') is None)"
    try:
        done = subprocess.run([interpreter, "-c", check], env=environ, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return interpreter if done.returncode == 1 else None


def unreachable(name: str, program: str, interpreter: str) -> str:
    """One line: which program runs, in which environment, and what would work."""
    sibling = os.path.join(os.path.dirname(sys.executable), os.path.basename(program))
    if os.path.isfile(sibling) and os.access(sibling, os.X_OK):
        fix = f"aiotel-run {sibling} (the {name} of aiotel's environment)"
    else:
        fix = f"aiotel-run {sys.executable} -m {name}, if {name} is installed as a module there"
    return (f"aiotel-run: {name} is {program}, run by {interpreter}, where aiotel is not installed "
            f"(aiotel-run belongs to {sys.executable}): it runs uninstrumented. Instead: {fix}; "
            f"or install aiotel for {interpreter}")


def command_environment(environ: Dict[str, str], values: Dict[str, str]) -> Dict[str, str]:
    env = dict(environ)
    env.update(values)
    env["PYTHONPATH"] = with_bootstrap(env.get("PYTHONPATH"))
    return env


def parse(argv: List[str]) -> Optional[Tuple[List[str], Dict[str, str]]]:
    """(command, variables the options set); None after printing a usage error."""
    if argv and not argv[0].startswith("-"):
        return list(argv), {}  # no options: what argparse would say, without loading it
    from .variables import VARIABLES

    parser = build_parser()
    options = parser.parse_args(argv)
    command = list(options.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        parser.print_usage(sys.stderr)
        print("aiotel-run: error: no command given (e.g. aiotel-run python app.py)", file=sys.stderr)
        return None
    values = {v.name: getattr(options, v.name) for v in VARIABLES if getattr(options, v.name) is not None}
    return command, values


def main(argv: Optional[List[str]] = None) -> int:
    parsed = parse(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        return 2
    command, values = parsed
    env = command_environment(dict(os.environ), values)
    program = resolve(command[0], env.get("PATH"))
    if program is None:
        print(f"aiotel-run: command not found: {command[0]}", file=sys.stderr)
        return 127
    if program != which(command[0], path=env.get("PATH")):
        # Python finds its prefix (and so its virtualenv) from argv[0]: name the one we run
        command[0] = program
    if not is_python_name(os.path.basename(program)):
        interpreter = foreign_interpreter(program, dict(os.environ))
        if interpreter is not None:
            print(unreachable(command[0], program, interpreter), file=sys.stderr)
            env["AIOTEL_UNREACHABLE"] = "1"  # said here: its processes need not say it again
    name = service_name(program, command)
    if name:
        env["AIOTEL_SERVICE_NAME"] = name  # this launch names its program; children inherit it
    else:
        env.pop("AIOTEL_SERVICE_NAME", None)  # python -c: not an outer launch's program
    try:
        final = python_command(program, command, env)
    except OSError as exc:  # no temporary directory: the script runs, uninstrumented
        print(f"aiotel-run: cannot prepare the main script ({exc}); running it uninstrumented", file=sys.stderr)
        final = command
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(program, final, env)
    except OSError as exc:
        print(f"aiotel-run: cannot run {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 126
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
