"""Training and evaluation throughput of every registered method, against an earlier commit.

Not part of the default test run (marker ``perf``). Run it with::

    python -m pytest -m perf tests/perf/test_training_speed.py -s -p no:cacheprovider

For every registered method, at its own defaults ("today") and, where the paper gives them, at
the paper's proportions (tests/perf/throughput.py), it measures videos per second of one
training epoch and of one evaluation pass on the `default` preset: this checkout with
pytest-benchmark (one training epoch per round), and the baseline commit the same way in a
subprocess on a ``git worktree`` of it (``LITEEVAL_BASELINE``, default: the last commit
before the fused recurrences), on the same data in the same run. It prints the table with
the ratios and writes it to ``.benchmarks/training-throughput.md``.

``LITEEVAL_BENCH_STORE`` points at an existing `default` store (else one is generated);
``LITEEVAL_BENCH_DEVICE`` picks the device; ``LITEEVAL_BENCH_METHODS`` limits the methods.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from methods.registry import available_methods
from tests.perf.throughput import PAPER, Banks, build, settings_for, time_eval_pass, time_train_epoch

pytestmark = pytest.mark.perf
REPO = Path(__file__).resolve().parents[2]
BASELINE = os.environ.get("LITEEVAL_BASELINE", "2b76999")  # the commit before issue 11's work
ROUNDS = int(os.environ.get("LITEEVAL_BENCH_ROUNDS", "2"))
METHODS = os.environ.get("LITEEVAL_BENCH_METHODS", "").split() or sorted(available_methods())
CASES = [(m, s) for m in METHODS for s in settings_for(m)]
TARGET = 5.0  # issue 11: LiteEval at paper proportions trains >= 5x faster than the baseline


@pytest.fixture(scope="module")
def banks(store_path) -> Banks:
    return Banks(store_path, os.environ.get("LITEEVAL_BENCH_DEVICE", "auto"))


@pytest.fixture(scope="module")
def baseline(store_path, banks, tmp_path_factory) -> dict[tuple[str, str], dict]:
    """The baseline commit's throughput, measured first (nothing else running)."""
    tree = tmp_path_factory.mktemp("baseline") / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), BASELINE], cwd=REPO, check=True,
                   capture_output=True)
    out = tree.parent / "baseline.json"
    try:
        subprocess.run([sys.executable, str(REPO / "tests" / "perf" / "throughput.py"), "--repo", str(tree),
                        "--store", str(store_path), "--device", str(banks.device), "--rounds", str(ROUNDS),
                        "--methods", *METHODS, "--out", str(out)], check=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
    rows = json.loads(out.read_text())["rows"]
    return {(r["method"], r["setting"]): r for r in rows}


@pytest.fixture(scope="module")
def table(banks):
    rows: list[dict] = []
    yield rows
    lines = [
        (f"Training and evaluation throughput (videos/s), `default` preset, device {banks.device}, "
         f"{os.cpu_count()} CPU(s), best of {ROUNDS} epochs / passes; baseline = commit {BASELINE}"),
        "",
        "| method | setting | train videos/s | eval videos/s | baseline train | baseline eval | train x | eval x |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['setting']} | {r['train']:.0f} | {r['eval']:.0f} | {r['base_train']:.0f} "
                     f"| {r['base_eval']:.0f} | {r['train'] / r['base_train']:.2f} "
                     f"| {r['eval'] / r['base_eval']:.2f} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    out = REPO / ".benchmarks" / "training-throughput.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


@pytest.mark.parametrize("method, setting", CASES)
def test_training_and_evaluation_throughput(benchmark, banks, baseline, table, method, setting):
    model, config = build(method, settings_for(method)[setting], banks)
    time_train_epoch(model, config, banks, seed=100)  # warm-up, as the baseline's measurement does
    seeds = iter(range(1000))
    epoch = benchmark.pedantic(lambda: time_train_epoch(model, config, banks, seed=next(seeds)), rounds=ROUNDS,
                               iterations=1)
    del epoch
    train = banks.train.num_videos / benchmark.stats.stats.min
    time_eval_pass(model, config, banks)
    evaluation = banks.test.num_videos / min(time_eval_pass(model, config, banks) for _ in range(max(ROUNDS, 3)))
    base = baseline[method, setting]
    row = {"method": method, "setting": setting, "train": train, "eval": evaluation,
           "base_train": base["train_videos_per_s"], "base_eval": base["eval_videos_per_s"]}
    table.append(row)
    benchmark.extra_info.update(setting=setting, train_videos_per_s=round(train, 1),
                                eval_videos_per_s=round(evaluation, 1), baseline=BASELINE,
                                train_speedup=round(train / row["base_train"], 2),
                                eval_speedup=round(evaluation / row["base_eval"], 2))
    if method == "liteeval" and setting == PAPER:
        assert train / row["base_train"] >= TARGET, (
            f"LiteEval at paper proportions trains {train / row['base_train']:.2f}x faster than {BASELINE}; "
            f"the target is {TARGET}x")
