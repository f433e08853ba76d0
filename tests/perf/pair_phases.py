"""Where one pair's time goes: training steps, validations, the final evaluation, the rest.

    python tests/perf/pair_phases.py --dataset default --method liteeval --seed 0 [--jobs 1] --out phases.json

Runs ``python -m benchmark run --methods METHOD --seeds SEED`` in this process into a scratch
results folder (the committed results are not touched) with timers around the pieces
benchmark/pair.py composes: ``fit`` (the training loop, validations included), each validation
(``validation_candidate``: the checkpoint scored on the held-out rows) and the evaluation
(``scored``). Training steps alone are fit's time less its validations. The figures say what a
faster training step could gain on a pair: only its share of the pair.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def timed(store: dict[str, list[float]], key: str, function: Any) -> Any:
    """``function`` with each call's seconds appended to ``store[key]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            store.setdefault(key, []).append(time.perf_counter() - start)

    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="default")
    parser.add_argument("--method", default="liteeval")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args(argv)
    os.environ.setdefault("LITEEVAL_PROGRESS", "0")
    from step_bound import emit, environment

    import benchmark.pair as pair
    from benchmark.__main__ import main as cli

    times: dict[str, list[float]] = {}
    pair.fit = timed(times, "fit", pair.fit)
    pair.validation_candidate = timed(times, "validation", pair.validation_candidate)
    pair.scored = timed(times, "evaluation", pair.scored)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        code = cli(["run", "--dataset", args.dataset, "--methods", args.method, "--seeds", args.seed,
                    "--results-dir", scratch, "--jobs", "1"])
        total = time.perf_counter() - start
    if code:
        return code
    fit, validations = sum(times.get("fit", [])), times.get("validation", [])
    report = {
        "dataset": args.dataset, "method": args.method, "seed": args.seed, "run_seconds": total,
        "fit_seconds": fit, "validations": len(validations), "validation_seconds": sum(validations),
        "training_steps_seconds": fit - sum(validations), "evaluation_seconds": sum(times.get("evaluation", [])),
        "rest_seconds": total - fit - sum(times.get("evaluation", [])),
    }
    return emit({"environment": environment(), **report}, args.out)


if __name__ == "__main__":
    sys.exit(main())
