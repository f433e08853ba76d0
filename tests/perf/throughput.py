"""Training and evaluation throughput of the registered methods, for any checkout of the suite.

This file is both a library (``measure``, used in-process by tests/perf/test_training_speed.py)
and a script that measures another checkout the same way::

    python tests/perf/throughput.py --repo /path/to/other/checkout --store data/synthetic/default-seed0 \
        --out baseline.json

``--repo`` goes first on ``sys.path``, so the suite's packages (datasets, methods, benchmark)
are imported from that checkout: the same measurement code times the code before and after a
change, on the same machine, in the same run. It only uses the interface every commit since
the harness landed has had (``resolve_method``, ``FeatureBank``, ``fit``, ``evaluate``), in its
two forms: epochs in the method's ``TrainConfig`` (before issue 12), or the run's step
``Budget`` (one epoch = ceil(videos / 64) steps of 64 videos).

What is measured, per method and setting: videos per second of one training epoch (``fit``
for one pass: sampling, forward, loss, backward, clipping, Adam) and of one evaluation
pass (``evaluate``: the metered, conditional inference the table measures), each the best of
``rounds`` repetitions after one untimed warm-up pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

#: Settings measured for every method: "today" is the method's own defaults.
TODAY = "today"
#: The paper's proportions (issue 11): LiteEval coarse 64 / fine 512 with the official code's
#: 512-wide coarse embedding (ActivityNet's LSTM sizes), and the LSTM baseline at 512 units.
PAPER = "paper proportions"
PAPER_PROPORTIONS: dict[str, dict[str, Any]] = {
    "liteeval": {"coarse_hidden": 64, "fine_hidden": 512, "coarse_embed": 512},
    "liteeval_rl": {"coarse_hidden": 64, "fine_hidden": 512, "coarse_embed": 512},
    "lstm": {"hidden": 512},
}


def settings_for(method: str) -> dict[str, dict[str, Any]]:
    """Setting name -> hyper-parameter overrides measured for ``method``."""
    out = {TODAY: {}}
    if method in PAPER_PROPORTIONS:
        out[PAPER] = PAPER_PROPORTIONS[method]
    return out


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Banks:
    """The train and test banks of a store, loaded once for every measurement."""

    def __init__(self, store: Path | str, device: str = "auto") -> None:
        from datasets.loading.bank import FeatureBank

        self.train = FeatureBank(store, "train", device=device, streams=["coarse", "fine"], show_progress=False)
        self.test = FeatureBank(store, "test", device=device, streams=["coarse", "fine"], show_progress=False)
        self.device = self.train.device
        self.dims = {s: self.train.dim(s) for s in ("coarse", "fine")}


def build(method: str, hparams: dict[str, Any], banks: Banks):
    """A fresh, seeded instance of ``method`` and its training settings (one epoch)."""
    from benchmark.training import seed_everything
    from methods.registry import resolve_method

    cls = resolve_method(method)
    seed_everything(0)
    model = cls(banks.train.num_classes, {s: banks.dims[s] for s in cls.streams}, **hparams).to(banks.device)
    if hasattr(cls.train_defaults, "epochs"):  # a checkout from before the run-level budget
        return model, replace(cls.train_defaults, epochs=1)
    return model, cls.train_defaults


def _fit_one_epoch(model, config, banks: Banks, seed: int) -> None:
    from benchmark.training import fit

    if hasattr(config, "epochs"):
        fit(model, banks.train, config, seed=seed, show_progress=False)
        return
    from benchmark.protocol.budget import Budget

    steps = -(-banks.train.num_videos // 64)
    fit(model, banks.train, config, Budget(steps=steps, batch_size=64), seed=seed, show_progress=False)


def time_train_epoch(model, config, banks: Banks, seed: int = 0) -> float:
    """Seconds of one training epoch (``fit`` for one pass, without validation)."""
    _sync(banks.device)
    start = time.perf_counter()
    _fit_one_epoch(model, config, banks, seed)
    _sync(banks.device)
    return time.perf_counter() - start


def time_eval_pass(model, config, banks: Banks) -> float:
    """Seconds of one evaluation pass over the test split (``evaluate``, metered)."""
    from benchmark.training import evaluate

    _sync(banks.device)
    start = time.perf_counter()
    evaluate(model, banks.test, config.eval_batch_size, show_progress=False)
    _sync(banks.device)
    return time.perf_counter() - start


def measure(method: str, setting: str, banks: Banks, rounds: int = 2) -> dict[str, Any]:
    """Best-of-``rounds`` training and evaluation throughput of one method and setting."""
    model, config = build(method, settings_for(method)[setting], banks)
    time_train_epoch(model, config, banks, seed=100)  # warm-up: allocator, kernels, caches
    train = min(time_train_epoch(model, config, banks, seed=r) for r in range(rounds))
    time_eval_pass(model, config, banks)
    evaluation = min(time_eval_pass(model, config, banks) for _ in range(max(rounds, 3)))
    return {
        "method": method, "setting": setting, "hparams": settings_for(method)[setting],
        "train_epoch_s": train, "train_videos_per_s": banks.train.num_videos / train,
        "eval_pass_s": evaluation, "eval_videos_per_s": banks.test.num_videos / evaluation,
        "train_videos": banks.train.num_videos, "eval_videos": banks.test.num_videos,
    }


def environment() -> dict[str, Any]:
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="checkout of the suite whose code is measured")
    parser.add_argument("--store", required=True, help="feature store with train and test splits")
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.repo).resolve()))
    os.environ.setdefault("LITEEVAL_PROGRESS", "0")
    banks = Banks(args.store, args.device)
    rows = [measure(m, s, banks, args.rounds) for m in args.methods for s in settings_for(m)]
    Path(args.out).write_text(json.dumps({"environment": environment(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
