"""``python -m benchmark COMMAND``: the command line lives in benchmark/cli/."""

import sys

from benchmark.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
