"""Would ``torch.compile`` close LiteEval's gap to its product bound? One forward step of the gated
fine recurrence (methods/gated_recurrence.py: the recurrent product, the margin, the decision, the
LSTM cell's elementwise work and the synchronised update), looped over a video's steps as the
training loop does, eager against compiled (inductor, ``dynamic=False``), on one thread.

    python tests/perf/compile_loop.py [--steps 150] [--batch 64] [--hidden 128] [--repeats 10]

Prints the seconds per loop of each, the compile time, and the largest difference of the final
state (the compiled step fuses the elementwise work; the product stays a library call).
"""

from __future__ import annotations

import argparse
import time

import torch


def make_step(hidden: int):
    four = 4 * hidden

    def step(pre_in_t, hf, cf, w_t, w_dc, offset_t):
        pre = torch.addmm(pre_in_t, hf, w_t)
        margin = torch.addmv(pre[:, four], cf, w_dc)
        fire = (margin + offset_t > 0).unsqueeze(1)
        i, f = torch.sigmoid(pre[:, :hidden]), torch.sigmoid(pre[:, hidden:2 * hidden])
        g, o = torch.tanh(pre[:, 2 * hidden:3 * hidden]), torch.sigmoid(pre[:, 3 * hidden:four])
        c_new = f * cf + i * g
        h_new = o * torch.tanh(c_new)
        return torch.where(fire, h_new, hf), torch.where(fire, c_new, cf)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    b, h, t = args.batch, args.hidden, args.steps
    pre_in = torch.randn(t, b, 4 * h + 1)
    w_t, w_dc, offsets = torch.randn(h, 4 * h + 1) * 0.1, torch.randn(h) * 0.1, torch.randn(t, b)

    def loop(step) -> torch.Tensor:
        hf, cf = torch.zeros(b, h), torch.zeros(b, h)
        for k in range(t):
            hf, cf = step(pre_in[k], hf, cf, w_t, w_dc, offsets[k])
        return hf

    def timed(step) -> float:
        for _ in range(3):
            loop(step)
        start = time.perf_counter()
        for _ in range(args.repeats):
            loop(step)
        return (time.perf_counter() - start) / args.repeats

    eager = make_step(h)
    eager_s = timed(eager)
    start = time.perf_counter()
    compiled = torch.compile(make_step(h), dynamic=False)
    loop(compiled)
    compile_s = time.perf_counter() - start
    compiled_s = timed(compiled)
    difference = float((loop(compiled) - loop(eager)).abs().max())
    print(f"{t} steps, batch {b}, hidden {h}, one thread, torch {torch.__version__}")
    print(f"eager     {eager_s * 1000:.1f} ms per loop ({eager_s / t * 1e6:.0f} us per step)")
    print(f"compiled  {compiled_s * 1000:.1f} ms per loop ({compiled_s / t * 1e6:.0f} us per step); "
          f"compiling took {compile_s:.1f} s")
    print(f"largest difference of the final state: {difference:.2e}")


if __name__ == "__main__":
    main()
