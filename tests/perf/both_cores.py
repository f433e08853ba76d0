"""Whether this machine's cores keep their speed when every one of them works at once.

    python tests/perf/both_cores.py --store data/synthetic/default-seed0 [--methods liteeval] \
        [--processes 1 2] [--steps 8] --out cores.json

The main job runs one pair per core (benchmark/parallel.py), so its bound on an N-core machine
is the single-core bound divided by N only if a core computes as fast beside busy neighbours as
alone. A virtual machine's cores may share a physical core's units (SMT siblings behind the
hypervisor), memory bandwidth or caches; this measures it. For each process count P it starts P
spawned processes at once (one thread each, released together by a barrier), and each measures
the float32 product rate sustained for a few seconds on a large square product and on the
recurrent loop's own small product (batch 64, hidden 128, four gates), then times training steps
of each method as tests/perf/step_bound.py does (its ``prepare`` and ``time_steps``). It prints,
per P, every process's figures and their mean: with P = 2 equal to P = 1, two pairs at once run
at one pair's speed each; worse figures are the hardware's share of the gap.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

#: Product shapes (M, K, N): a large square one, and the loop's recurrent product.
SHAPES = ((1024, 1024, 1024), (64, 128, 512))
#: Seconds each product shape is sustained for.
SUSTAIN = 3.0


def sustained_rate(m: int, k: int, n: int, seconds: float = SUSTAIN) -> float:
    """GFLOP/s of float32 (M, K) x (K, N) products repeated for ``seconds`` on this thread."""
    import torch

    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(8):
            a @ b
        count += 8
    return 2 * m * k * n * count / elapsed / 1e9


def worker(store: str, methods: list[str], steps: int, barrier: Any, queue: Any) -> None:
    os.environ.setdefault("LITEEVAL_PROGRESS", "0")
    import torch
    from step_bound import prepare, time_steps

    torch.set_num_threads(1)
    prepared = {m: prepare(m, store, steps, "fp32") for m in methods}  # loading is not what is measured
    barrier.wait()
    rates = {f"{m}x{k}x{n}": sustained_rate(m, k, n) for m, k, n in SHAPES}
    barrier.wait()
    seconds = {m: time_steps(*prepared[m]) for m in methods}
    queue.put({"pid": os.getpid(), "gflops_per_s": rates, "seconds_per_step": seconds})


def measure(store: str, methods: list[str], steps: int, processes: int) -> list[dict[str, Any]]:
    """Every process's figures, ``processes`` of them computing at once."""
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=worker, args=(store, methods, steps, barrier, queue)) for _ in range(processes)]
    for process in workers:
        process.start()
    found = [queue.get() for _ in workers]
    for process in workers:
        process.join()
        if process.exitcode:
            raise SystemExit(f"a measuring process failed (exit code {process.exitcode})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="a feature store, e.g. data/synthetic/default-seed0")
    parser.add_argument("--methods", nargs="+", default=["liteeval"])
    parser.add_argument("--processes", nargs="+", type=int, default=[1, os.cpu_count() or 1])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args(argv)
    if not Path(args.store).is_dir():
        parser.error(f"--store {args.store}: no such store; generate it with `python -m benchmark run` first")
    rows = []
    for count in args.processes:
        found = measure(args.store, args.methods, args.steps, count)
        means = {"gflops_per_s": {k: mean(f["gflops_per_s"][k] for f in found) for k in found[0]["gflops_per_s"]},
                 "seconds_per_step": {k: mean(f["seconds_per_step"][k] for f in found)
                                      for k in found[0]["seconds_per_step"]}}
        rows.append({"processes": count, "mean": means, "each": found})
        print(f"{count} process(es) at once, mean of each: {json.dumps(means)}", flush=True)
    import torch

    report = {"environment": {"torch": torch.__version__, "machine": platform.machine(), "cpus": os.cpu_count(),
                              "threads_per_process": 1, "steps": args.steps}, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
