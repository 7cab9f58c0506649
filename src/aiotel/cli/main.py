"""``aiotel`` entry point: one sub-command per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from .._version import __version__

COMMANDS = ("scan", "report", "doctor", "push", "mcp")  # each a module of this package with add_parser and run


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, that command's alone: a command loads no other's modules."""
    parser = argparse.ArgumentParser(prog="aiotel", description="OpenTelemetry for AI-generated code.")
    parser.add_argument("--version", action="version", version=f"aiotel {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is None or name == only:
            importlib.import_module(f"{__package__}.{name}").add_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    parser = build_parser(arguments[0] if arguments and arguments[0] in COMMANDS else None)
    args = parser.parse_args(arguments)
    if getattr(args, "run", None) is None:
        parser.print_usage(sys.stderr)
        print("aiotel: error: a COMMAND is required", file=sys.stderr)
        return 2
    try:
        return int(args.run(args, args.subparser))
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
