"""How close one training step of a method comes to its matrix-product bound, for any checkout.

    python tests/perf/step_bound.py --store data/synthetic/default-seed0 --methods liteeval liteeval_rl \
        [--repo /path/to/other/checkout] [--precision bf16] --out step.json

For each method at the store's ``default`` preset (the table's settings) it times training steps
(forward, loss, backward, gradient clipping, Adam) on the first batches of the training split
in the order ``fit`` draws them (batch 64, length buckets), after two untimed warm-up steps, on
one thread. torch.profiler counts the floating-point operations of every matrix product of
those steps (``with_flops``: mm, addmm, bmm, matmul, linear; the fused LSTM kernel's products
are added from its shapes), and the machine's float32 product rate on one thread is measured
on the step's own largest product shape and on a large square one. The bound is the step's
product FLOPs at the best of those rates: no implementation of the same arithmetic in the same
precision on this core runs faster. The profile's self times, grouped (products, elementwise,
the recurrence's Python loop, random numbers, copies and the rest), say where the rest goes.

``--repo`` imports the suite from another checkout, so the same script times the code before
and after a change on the same machine and data.

``--widths 1 3 6`` (issue 48) times one model on each batch of 64 videos tiled k times (the
same videos and padded length, k times the operands) and reports each row per 64 videos
(``seconds_per_model_step``): the operand widths of a stack of k models whose batches share a
length bucket, with the operator count of one. It stands in for what training k seeds as one
stacked model can save on per-operator work; it is not a stacked model (a stack has k sets of
weights: batched products of the same FLOPs, an optimizer step over k times the parameters, a
per-model gradient norm).

``--device cuda --no-profile`` times the same steps on a GPU (tests/perf/device_check.sh runs
it there): seconds only, since the bound is the CPU's product rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Operators whose self time counts as matrix products.
PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::addmv", "aten::mv",
            "aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward")
RANDOM = ("aten::bernoulli_", "aten::uniform_", "aten::exponential_", "aten::normal_", "aten::random_")
COPIES = ("aten::copy_", "aten::cat", "aten::index", "aten::index_select", "aten::index_copy_", "aten::clone",
          "aten::stack", "aten::_to_copy")
LOOPS = ("GatedRecurrence", "GatedRecurrenceBackward")


def product_rate(shapes: list[tuple[int, int, int]], repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of float32 products (M, K, N) on this thread, best of ``repeats``."""
    import torch

    rates = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        rates[f"{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
    return rates


def lstm_flops(event: Any) -> float:
    """FLOPs of the products inside one fused LSTM layer call, from its input shapes."""
    shapes = event.input_shapes
    try:
        x, w_ih, w_hh = shapes[0], shapes[1], shapes[2]
        tokens = x[0] * x[1]
        flops = 2 * tokens * (w_ih[0] * w_ih[1] + w_hh[0] * w_hh[1])
    except (IndexError, TypeError):
        return 0.0
    return 3 * flops if "backward" in event.key else flops


def prepare(method_name: str, store: str, steps: int, precision: str, width: int = 1,
            device: str = "cpu") -> tuple[Callable[[Any], None], list[Any]]:
    """One training step of ``method_name`` at the ``default`` preset, and ``steps`` + 2 batches
    of 64 videos of the training split in ``fit``'s order (the first two for warming up), each
    tiled ``width`` times, on one thread."""
    import torch

    from benchmark.training import seed_everything
    from datasets.loading.bank import FeatureBank
    from methods.base import preset_settings
    from methods.registry import resolve_method

    torch.set_num_threads(1)
    bank = FeatureBank(store, "train", device=device, show_progress=False)
    cls = resolve_method(method_name)
    settings = preset_settings(cls.presets["default"])
    train = settings.pop("train", {})
    seed_everything(0)
    method = cls(bank.num_classes, {s: bank.dim(s) for s in cls.streams}, **settings).to(bank.device).train()
    optimiser = torch.optim.Adam(method.parameters(), lr=train.get("lr", 1e-3),
                                 weight_decay=train.get("weight_decay", 0.0))
    generator = torch.Generator().manual_seed(0)
    batches: list[Any] = []
    while len(batches) < steps + 2:  # further epochs where one has fewer batches (a small store)
        for batch in bank.batches(64, method.sampler(train=True), train=True, generator=generator):
            batches.append(batch)
            if len(batches) == steps + 2:
                break
    if width > 1:
        import numpy as np

        batches = [next(bank.batches(64 * width, method.sampler(train=True), train=True, shuffle=False,
                                     rows=np.tile(b.index.cpu().numpy(), width), generator=generator))
                   for b in batches]
    try:
        from benchmark.precision import computing_in
    except ImportError:  # a checkout from before --precision
        if precision != "fp32":
            raise
        from contextlib import nullcontext

        def computing_in(precision, device):
            return nullcontext()

    def step(batch) -> None:
        method.on_step(0, 1000)
        with computing_in(precision, bank.device):
            output = method(batch)
            loss, _ = method.loss(output, batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(method.parameters(), 5.0)
        optimiser.step()

    return step, batches


def time_steps(step: Callable[[Any], None], batches: list[Any]) -> float:
    """Seconds per step over ``batches[2:]``, after two warm-up steps on ``batches[:2]`` (on a
    GPU, until its queue is empty)."""
    import torch

    def synchronize() -> None:
        if batches[0].mask.is_cuda:
            torch.cuda.synchronize()

    for batch in batches[:2]:
        step(batch)
    synchronize()
    start = time.perf_counter()
    for batch in batches[2:]:
        step(batch)
    synchronize()
    return (time.perf_counter() - start) / (len(batches) - 2)


def profile_steps(method_name: str, store: str, steps: int, precision: str, width: int = 1,
                  device: str = "cpu", profile_too: bool = True) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    step, batches = prepare(method_name, store, steps, precision, width, device)
    seconds = time_steps(step, batches)
    timed = {"method": method_name, "precision": precision, "width": width, "device": device,
             "seconds_per_step": seconds, "seconds_per_model_step": seconds / width,
             "videos_per_step": sum(b.mask.shape[0] for b in batches[2:]) / steps,
             "mean_frames_per_video": sum(b.mask.shape[1] for b in batches[2:]) / steps}
    if not profile_too:
        return timed
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        for batch in batches[2:]:
            step(batch)
    events = prof.key_averages(group_by_input_shape=True)
    flops = sum(e.flops or 0 for e in events) + sum(lstm_flops(e) * e.count for e in events
                                                       if e.key.startswith("aten::mkldnn_rnn_layer"))
    groups = {"products": 0.0, "random numbers": 0.0, "copies and indexing": 0.0, "recurrence loop (Python)": 0.0,
              "other operators": 0.0}
    for e in prof.key_averages():
        share = e.self_cpu_time_total / 1e6 / steps
        if e.key in PRODUCTS:
            groups["products"] += share
        elif e.key in RANDOM:
            groups["random numbers"] += share
        elif e.key in COPIES:
            groups["copies and indexing"] += share
        elif e.key in LOOPS:
            groups["recurrence loop (Python)"] += share
        else:
            groups["other operators"] += share
    products = [e for e in events if e.key == "aten::mm" and e.input_shapes and len(e.input_shapes) == 2
                and len(e.input_shapes[0]) == 2 and e.count]
    largest = max(products, key=lambda e: (e.flops or 0) / e.count, default=None)  # the step's biggest product
    shapes = [(4096, 1024, 2048)]
    if largest is not None:
        (m, k), (_, n) = largest.input_shapes[0], largest.input_shapes[1]
        shapes.append((m, k, n))
    rates = product_rate(shapes)
    peak = max(rates.values())
    per_step = flops / steps
    return {**timed, "product_gflop_per_step": per_step / 1e9, "fp32_product_gflops_per_s": rates,
            "bound_seconds_per_step": per_step / (peak * 1e9), "ratio_to_bound": seconds / (per_step / (peak * 1e9)),
            "profiled_self_seconds_per_step": groups}


def environment(**extra: Any) -> dict[str, Any]:
    """What a measurement ran on, for its JSON (these scripts measure on one thread)."""
    import torch

    return {"torch": torch.__version__, "machine": platform.machine(), "threads": 1, "processor": processor(),
            "cpu_isa": torch.backends.cpu.get_cpu_capability(), **extra}


def processor() -> str:
    """The CPU's model name: platform.processor() is empty on Linux, so /proc/cpuinfo first (the
    measured code may be another checkout's, so this does not import the suite's provenance)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def emit(report: dict[str, Any], out: str | None) -> int:
    """Print ``report`` as JSON, and write it to ``out`` where given; the script's exit code."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        Path(out).write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--methods", nargs="+", default=["liteeval", "liteeval_rl"])
    parser.add_argument("--repo", help="checkout whose code is measured (default: this one)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precision", nargs="+", default=["fp32"])
    parser.add_argument("--widths", nargs="+", type=int, default=[1],
                        help="batches of 64 x k videos, reported per 64 (the module docstring)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="time the steps only: no profile and no bound (on a GPU, the bound is not the CPU's)")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.repo or Path(__file__).resolve().parents[2]).resolve()))
    os.environ.setdefault("LITEEVAL_PROGRESS", "0")

    rows = [profile_steps(m, args.store, args.steps, precision, width, args.device, args.profile)
            for m in args.methods for precision in args.precision for width in args.widths]
    import torch

    gpu = {"gpu": torch.cuda.get_device_name()} if args.device.startswith("cuda") else {}
    return emit({"environment": environment(repo=args.repo or "this checkout", device=args.device, **gpu),
                 "rows": rows}, args.out)


if __name__ == "__main__":
    sys.exit(main())
