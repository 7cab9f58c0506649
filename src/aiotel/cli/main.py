"""``aiotel`` entry point: one sub-command per job."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .._version import __version__
from . import doctor, push, report, scan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiotel", description="OpenTelemetry for AI-generated code.")
    parser.add_argument("--version", action="version", version=f"aiotel {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    scan.add_parser(subparsers)
    report.add_parser(subparsers)
    doctor.add_parser(subparsers)
    push.add_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
