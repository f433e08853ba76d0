"""What every command line of the suite does around its subcommands.

Subcommands set ``func`` on their parser; ``run_cli`` parses, sets up logging, runs the
subcommand, and turns the errors a user can fix (``UserError``: bad input, a refused overwrite,
a plug-in that fails; and the file system's errors) into one ``error: ...`` line and exit code
2, instead of a traceback (``LITEEVAL_DEBUG=1`` shows it too); Ctrl-C gives one line and exit
code 130 (the shell's code for SIGINT), and SIGTERM (a scheduler's or `kill`'s stop) one line and
143, both after the same clean-up (worker processes stopped, locks released). Any other exception
is a bug of the suite and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback

from datasets.common.errors import UserError

# Errors whose message says what to fix: the suite's own (UserError: bad arguments, settings,
# stores, plug-ins, results folders), and the file system's, which name the file. Anything else
# (a ValueError from inside NumPy, say) is a bug and keeps its traceback.
USER_ERRORS = (UserError, FileExistsError, FileNotFoundError, PermissionError)
#: Set to 1 to see the traceback behind a one-line error too.
DEBUG_VARIABLE = "LITEEVAL_DEBUG"
#: Every logged line starts with the time it was written: a log file of a long run says when
#: each pair started and ended (and the progress lines, datasets/common/progress.py, how far it is).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


#: Libraries whose INFO lines are chatter in a command's log (fontTools: a line per font subset
#: for every PDF figure matplotlib writes); their warnings still show.
QUIET_LIBRARIES = ("fontTools",)


def configure_logging() -> None:
    """INFO and above to stderr, timestamped; the commands and their worker processes alike."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


#: The exit statuses of a command stopped by Ctrl-C and by SIGTERM (the shell's 128 + signal number).
INTERRUPTED, TERMINATED = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it unwinds as Ctrl-C does (workers stopped,
    locks released, nothing half-written kept)."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated()


def run_cli(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    args = parser.parse_args(argv)
    configure_logging()
    # Only where no one else handles SIGTERM (a caller's own handler, a test runner's) and only in
    # the main thread, where Python delivers signals; put back when the command ends.
    own = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    before = signal.signal(signal.SIGTERM, _terminated) if own else None
    try:
        return args.func(args)
    except Terminated:
        print("terminated (SIGTERM): everything finished so far is kept (every file is written atomically; worker "
              "processes were stopped); run the same command again to resume", file=sys.stderr)
        return TERMINATED
    except USER_ERRORS as exc:
        if os.environ.get(DEBUG_VARIABLE) == "1":
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`... | head`): nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted: everything finished so far is kept (every file is written atomically); run the same "
              "command again to resume", file=sys.stderr)
        return INTERRUPTED
    finally:
        if own:
            signal.signal(signal.SIGTERM, before)
