"""What fusing LiteEval's gated loop into one kernel could save at most, measured before writing it.

    python tests/perf/fusion_ceiling.py --store data/synthetic/default-seed0 \
        [--methods liteeval liteeval_rl] [--steps 8] [--repeats 3] --out ceiling.json

docs/performance.md found the training step 2.1 to 2.8 times its matrix-product bound and named
a hand-written kernel for the gated recurrence (methods/gated_recurrence.py), forward and
backward, as what would close the gap. Such a kernel changes the floating-point results, so
every committed LiteEval pair would have to be recomputed (hours on two cores). This script
says, before anyone pays that, how much it could gain at best:

1. it times training steps of each method at the ``default`` preset as tests/perf/step_bound.py
   does (its ``prepare`` and ``time_steps``: batch 64 in ``fit``'s order, one thread), while
   capturing what each step hands the recurrence (its inputs and the gradients that come back
   into its outputs);
2. on those captured batches it times the recurrence alone, forward and backward through
   autograd as in training, and then **only its matrix products** (the same calls on the same
   shapes, in the same order: the per-step recurrent product and margin, the per-step backward
   product, and the products before and after the loops), with nothing else;
3. the difference is the loop's time that is not matrix products (elementwise work, indexing,
   operator dispatch, Python, autograd's node): the most that any fused kernel, which still has
   to compute the same products, could remove. The step with that removed is the ceiling, and
   its ratio to the product bound (step_bound.py's definition, on the same machine) is the
   best a loop kernel alone could reach.

Best of ``--repeats`` for each timing; one thread; nothing is changed in the methods.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def capture(method_name: str, store: str, steps: int) -> tuple[float, list[dict[str, Any]], Callable[[Any], None],
                                                                list[Any]]:
    """Seconds per training step, and per timed step what the recurrence received and what
    gradients came back into its outputs."""
    import torch
    from step_bound import prepare, time_steps

    import methods.liteeval as liteeval

    step, batches = prepare(method_name, store, steps, "fp32")
    calls: list[dict[str, Any]] = []
    original = liteeval.gated_recurrence

    def recording(*args: Any) -> Any:
        out = original(*args)
        call: dict[str, Any] = {"args": [a.detach().clone() if torch.is_tensor(a) else a for a in args],
                                "grads": [None, None, None], "live": int((out[1] > 0).sum())}
        for index, tensor in enumerate(out):
            if tensor.requires_grad:
                tensor.register_hook(lambda grad, index=index: call["grads"].__setitem__(
                    index, None if grad is None else grad.detach().clone()))
        calls.append(call)
        return out

    liteeval.gated_recurrence = recording
    try:
        for batch in batches[:2]:  # warm-up, as time_steps does (captured, then discarded)
            step(batch)
        calls.clear()
        for batch in batches[2:]:
            step(batch)
        captured = list(calls)
    finally:
        liteeval.gated_recurrence = original
    seconds = time_steps(step, batches)  # timed without the recording wrapper
    return seconds, captured, step, batches


def loop_seconds(call: dict[str, Any]) -> float:
    """The recurrence as in training: forward, then backward through autograd."""
    import torch

    from methods.gated_recurrence import gated_recurrence

    args = list(call["args"])
    differentiable = (0, 1, 2, 3, 6, 7, 8)  # fine_in, gate_in, hc, cc, w_hh, w_gh, w_gc
    for index in differentiable:
        args[index] = args[index].detach().clone().requires_grad_(True)
    start = time.perf_counter()
    outputs = gated_recurrence(*args)
    pairs = [(o, g) for o, g in zip(outputs, call["grads"]) if g is not None and o.requires_grad]
    torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
    return time.perf_counter() - start


def products_seconds(call: dict[str, Any]) -> float:
    """Only the matrix products GatedRecurrence computes, on the same shapes, in order."""
    import torch

    fine_in, gate_in, hc, cc, valid, noise, w_hh, w_gh, w_gc, spec = call["args"]
    # autograd hands a Function zeros for an output that received no gradient (materialize_grads)
    d_logits = call["grads"][2] if call["grads"][2] is not None else gate_in.new_zeros(gate_in.shape)
    steps, b, four_h = fine_in.shape
    h = four_h // 4
    with torch.no_grad():
        start = time.perf_counter()
        w_t = torch.cat([w_hh, (w_gh[1] - w_gh[0]).unsqueeze(0)], dim=0).t().contiguous()
        w_dc = w_gc[1] - w_gc[0]
        pre_in = torch.cat([fine_in, (gate_in[..., 1] - gate_in[..., 0]).unsqueeze(2)], dim=2)
        margins = fine_in.new_empty(steps, b)
        states = fine_in.new_empty(steps, b, h)
        hf, cf = fine_in.new_zeros(b, h), fine_in.new_zeros(b, h)
        for t in range(steps):  # forward: the recurrent product and the margin's cell part
            pre = torch.addmm(pre_in[t], hf, w_t)
            torch.addmv(pre[:, four_h], cf, w_dc, out=margins[t])
            states[t] = pre[:, h:2 * h]  # a slice of the product's output stands in for the new state
            hf = states[t]
        previous = torch.cat([hf.new_zeros(1, b, h), states[:-1]], dim=0)
        gate_in + previous @ w_gh.t() + previous @ w_gc.t()
        w_back = torch.cat([w_hh, (w_gh[1] - w_gh[0]).unsqueeze(0)], dim=0)
        if not spec.gate_detached:
            d_logits @ w_gh, d_logits @ w_gc
        row = fine_in.new_ones(b, four_h + 1) * 1e-3
        for _ in range(steps):  # backward: what each step sends into the state before
            dh_prev = row[:, :four_h] @ w_hh if spec.gate_detached else row @ w_back
            row[:, :h] = dh_prev
        flat = previous.reshape(-1, h)
        live = torch.arange(call["live"])  # as many rows as fired in training (which ones does not matter here)
        fine_in.new_ones(len(live), four_h).t() @ flat[live]  # d W_hh on the rows where the gate fired
        grads = fine_in.new_ones(steps * b, 2)
        grads.t() @ flat, grads.t() @ flat  # d W_gh, d W_gc
    return time.perf_counter() - start


def measure(method_name: str, store: str, steps: int, repeats: int) -> dict[str, Any]:
    from step_bound import profile_steps

    seconds, calls, _, _ = capture(method_name, store, steps)
    loops = [min(loop_seconds(c) for _ in range(repeats)) for c in calls]
    products = [min(products_seconds(c) for _ in range(repeats)) for c in calls]
    per_step_loop = sum(loops) / len(calls)
    per_step_products = sum(products) / len(calls)
    saved = max(per_step_loop - per_step_products, 0.0)
    bound_row = profile_steps(method_name, store, steps, "fp32")  # the product bound, as step_bound.py defines it
    bound = bound_row["bound_seconds_per_step"]
    products = bound_row["profiled_self_seconds_per_step"]["products"]  # every product kernel, in the profile
    return {
        "method": method_name, "seconds_per_step": seconds, "bound_seconds_per_step": bound,
        "ratio_to_bound": seconds / bound,
        "loop_seconds_per_step": per_step_loop, "loop_products_seconds_per_step": per_step_products,
        "loop_other_seconds_per_step": saved,
        "ceiling_seconds_per_step": seconds - saved, "ceiling_ratio_to_bound": (seconds - saved) / bound,
        # The step in four parts: the bound; the product kernels' time above it (they run below the
        # peak rate at the step's shapes); the loop's other work; everything else in the step.
        "parts_seconds_per_step": {"product bound": bound, "products above the bound": products - bound,
                                   "loop, not products": saved, "rest of the step": seconds - products - saved},
        "mean_steps_per_loop": sum(c["args"][0].shape[0] for c in calls) / len(calls),
        "mean_frames_per_video": bound_row["mean_frames_per_video"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--methods", nargs="+", default=["liteeval", "liteeval_rl"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args(argv)
    os.environ.setdefault("LITEEVAL_PROGRESS", "0")
    import torch
    from step_bound import emit, environment

    torch.set_num_threads(1)
    rows = [measure(m, args.store, args.steps, args.repeats) for m in args.methods]
    return emit({"environment": environment(), "rows": rows}, args.out)


if __name__ == "__main__":
    sys.exit(main())
