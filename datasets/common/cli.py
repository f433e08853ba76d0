"""What every command line of the suite does around its subcommands.

Subcommands set ``func`` on their parser; ``run_cli`` parses, sets up logging, runs the
subcommand, and turns the errors a user can fix (bad input, refused overwrite) into one
``error: ...`` line and exit code 2, instead of a traceback; Ctrl-C gives one line and exit
code 130 (the shell's code for SIGINT).
"""

from __future__ import annotations

import argparse
import logging
import sys

from datasets.common.errors import StoreError

# Errors whose message says what to fix (a missing input names the command that makes it).
USER_ERRORS = (StoreError, FileExistsError, FileNotFoundError, ValueError)


def run_cli(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: everything finished so far is kept (every file is written atomically); run the same "
              "command again to resume", file=sys.stderr)
        return 130
