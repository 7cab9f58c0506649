"""``aiotel-run COMMAND ...``: run a command with aiotel.

The in-frame instrumentation (bootstrap, import hook) is not part of this version yet:
the command runs unchanged, after one line on standard error that says so.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import List, Optional

USAGE = "usage: aiotel-run COMMAND [ARGS ...]   e.g. aiotel-run python app.py"


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--":
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        return 2 if not args else 0
    program = shutil.which(args[0])
    if program is None:
        print(f"aiotel-run: command not found: {args[0]}", file=sys.stderr)
        return 127
    print("aiotel-run: instrumentation is not available in this version; running the command unchanged",
          file=sys.stderr)
    sys.stderr.flush()
    os.execv(program, args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
