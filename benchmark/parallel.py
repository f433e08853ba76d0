"""Where the (method, seed) pairs of a run are computed: here, in worker processes, or on ranks.

Pairs are independent: each seeds its own generators (benchmark/training.py) and writes its own
folder, so the order and the process they run in do not change their results. What does change
floating-point results on a CPU is the number of threads a pair's operators use (reductions
and matrix products split their work by thread), so every pair runs with the same
``threads`` however many run at once; a run with ``--jobs 2`` is bit-identical to one with
``--jobs 1`` on the same machine (tests/benchmark/test_parallel.py).

* ``--jobs N`` (CPU): N worker processes (spawned, not forked: OpenMP is not fork-safe), each
  loading the banks once and taking pairs as they come; they die with the run's process and
  write nothing once it is gone (``_die_with_parent``). Small recurrences are latency-bound,
  so one process with two threads leaves a 2-core machine half idle; two processes with one
  thread each fill it. Default: one job per core, as many as the pairs and the host memory
  allow, one thread per pair.
* On a GPU the same worker processes share the device: one pair's small recurrent kernels leave
  a GPU mostly waiting on their launches, and several processes launching at once fill it. The
  default is as many as the GPU's free memory holds (each its own copy of the banks plus
  ``GPU_WORKER_OVERHEAD`` for the CUDA context, a model and its activations), no more than the
  CPU cores that launch their kernels, the pairs, or ``MAX_JOBS_PER_GPU``.
* ``torchrun --nproc-per-node N -m benchmark run ...``: rank r of W computes every W-th pending
  pair on its own GPU (``cuda:LOCAL_RANK``), as ``python -m datasets extract`` shards videos;
  rank 0 writes the table once every rank is done. The ranks agree on the pending pairs before
  any of them writes one.
"""

from __future__ import annotations

import ctypes
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import torch

from benchmark import pair
from benchmark.config import RunConfig, available_cores, check_counts, environment_jobs
from benchmark.context import SELECTION_GUARD, RunContext
from benchmark.eta import RunClock, expected
from benchmark.plans import MethodPlan
from benchmark.training import DivergedError
from datasets.common.cli import configure_logging
from datasets.common.progress import MODE_VARIABLE, progress_bar, progress_mode
from datasets.loading.device import host_available_bytes
from datasets.loading.guard import restrict_splits
from methods.base import MethodError, MethodOutputError

log = logging.getLogger(__name__)

#: Threads per pair on a CPU unless ``--threads`` says otherwise (see the module docstring).
DEFAULT_THREADS = 1
#: What a worker needs on a GPU besides its banks: the CUDA context, a model, its activations.
GPU_WORKER_OVERHEAD = 2 * 2**30
#: The most worker processes that share one GPU by default (beyond that they mostly queue).
MAX_JOBS_PER_GPU = 8


def device_free_bytes(device: torch.device) -> int:
    """Free memory of a CUDA device, as the driver reports it."""
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def default_jobs(device: torch.device, pending: int, bytes_per_worker: int, *, cores: int | None = None,
                 host_free: int | None = None, device_free: int | None = None) -> int:
    """One job per core, no more than the pending pairs, nor than host memory holds copies of
    the banks; on a GPU also no more than its free memory holds workers (see the module
    docstring). ``cores``, ``host_free`` and ``device_free`` replace what the machine reports
    (tests decide for a GPU they do not have)."""
    jobs = min(available_cores() if cores is None else cores, max(pending, 1))
    available = host_available_bytes() if host_free is None else host_free
    if available is not None and bytes_per_worker > 0:
        jobs = min(jobs, max(1, int(0.8 * available) // bytes_per_worker))
    if device.type == "cuda":
        free = device_free_bytes(device) if device_free is None else device_free
        jobs = min(jobs, MAX_JOBS_PER_GPU, max(1, int(0.8 * free) // (bytes_per_worker + GPU_WORKER_OVERHEAD)))
    return jobs


# ---------------------------------------------------------------------- worker processes

#: Seconds between a worker's checks that the run's process is still there (where the kernel
#: cannot be asked to kill it with its parent).
PARENT_CHECK_SECONDS = 1.0


class OrphanedError(RuntimeError):
    """A worker found that the run which started it is gone."""


def _die_with_parent(parent: int) -> None:
    """Make this worker end with the run's process, however that ends (Ctrl-C, SIGTERM, kill -9).

    Only the run's process holds the results folder's lock; a worker that outlived it would go
    on writing pairs into a folder that another run may have locked since. On Linux the kernel
    kills the worker when its parent dies (``PR_SET_PDEATHSIG``); everywhere a daemon thread
    checks once a second that the parent is still its parent, and ``check_parent`` is called
    before any pair is written."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
    check_parent(parent)  # the parent may have died before the line above

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def check_parent(parent: int) -> None:
    """Refuse to go on (and to write) once the run's process ``parent`` is gone."""
    if os.getppid() != parent:
        raise OrphanedError(f"the run that started this worker (pid {parent}) is gone; its pair is not written")


class _Worker:
    """What a worker process keeps between its pairs: the run's context and its write check."""

    def __init__(self, ctx: RunContext, before_write: Callable[[], None]) -> None:
        self.ctx = ctx
        self.before_write = before_write


_WORKER: _Worker | None = None


def _start_worker(cfg: RunConfig, plans: list[MethodPlan], threads: int, parent: int | None = None) -> None:
    """Each worker builds the run's context once (store, banks on first use, costs) from the
    run's config, so it computes what the parent would (a selection run's worker scores on
    validation, and may load no other split than the training split). It lives only as long
    as the run's process ``parent`` (``_die_with_parent``)."""
    global _WORKER
    if parent is not None:
        _die_with_parent(parent)
    # Ctrl-C reaches the whole process group; the parent alone handles it (it stops the
    # workers), so the user sees one line, not a traceback per worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker logs as its parent does (a spawned process starts with no logging set up); its
    # progress is timestamped lines, never a bar, which would garble the other workers' on the
    # terminal they share (datasets/common/progress.py).
    configure_logging()
    if progress_mode() == "bar":
        os.environ[MODE_VARIABLE] = "log"
    # tqdm guards its bars with a multiprocessing lock, a named semaphore that a worker stopped by the
    # run (terminate: SIGTERM) never releases, and the resource tracker then warns of it at exit;
    # a worker's bars are log lines of its own, so a thread lock serves (issue 45: "leaked semaphores").
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)
    ctx = RunContext.create(cfg, plans)
    _WORKER = _Worker(ctx, (lambda: check_parent(parent)) if parent is not None else (lambda: None))
    if ctx.selection:  # a worker of a selection run: the training split alone, for the worker's life
        restrict_splits({ctx.train_split}, SELECTION_GUARD)


def _compute_timed(ctx: RunContext, index: int, seed: int,
                   before_write: Callable[[], None] = lambda: None) -> float:
    """Compute one pair, saying when it starts; its wall-clock seconds."""
    log.info("%s seed %d: started", ctx.plans[index].name, seed)
    start = time.perf_counter()
    pair.compute(ctx, ctx.plans[index], seed, before_write=before_write)
    return time.perf_counter() - start


#: A method's own failure in one pair (its code raised, its output broke the interface, its loss
#: diverged): that pair fails, and every other pair of the run is still computed (issue 45).
PAIR_FAILURES: tuple[type[BaseException], ...] = (MethodError, MethodOutputError, DivergedError)


def failure_reason(exc: BaseException) -> str:
    """What a failed pair's row says: the error, and for a diverged loss also the other usual cause."""
    text = str(exc)
    if isinstance(exc, DivergedError):
        text += ("; or, for a plug-in, a bug in its forward or loss (`python -m benchmark check` runs its conformance "
                 "checks)")
    return text


def _failed(ctx: RunContext, index: int, seed: int, exc: BaseException, failures: dict[str, str]) -> None:
    key = f"{ctx.plans[index].name} seed {seed}"
    failures[key] = failure_reason(exc)
    log.error("%s: FAILED, %s; the other pairs go on", key, failures[key])


def _run_in_worker(index: int, seed: int) -> tuple[int, int, float]:
    assert _WORKER is not None
    return index, seed, _compute_timed(_WORKER.ctx, index, seed, _WORKER.before_write)


def _clock(ctx: RunContext, pending: Sequence[tuple[int, int]], jobs: int,
           earlier: dict[str, float] | None, elsewhere: Mapping[str, float] | None) -> RunClock:
    return RunClock([(ctx.plans[index].name, seed) for index, seed in pending], jobs, earlier, elsewhere=elsewhere)


def run_in_processes(ctx: RunContext, pending: Sequence[tuple[int, int]], jobs: int, threads: int,
                     earlier: dict[str, float] | None = None,
                     elsewhere: Mapping[str, float] | None = None) -> dict[str, str]:
    """Compute the pending (plan index, seed) pairs in ``jobs`` spawned worker processes; return the
    pairs that failed (``PAIR_FAILURES``), each with why."""
    context = multiprocessing.get_context("spawn")
    clock = _clock(ctx, pending, jobs, earlier, elsewhere)
    log.info("%s, in %d worker processes, %d thread(s) each", clock.plan(), jobs, threads)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker,
                               initargs=(ctx.cfg, ctx.plans, threads, os.getpid()))
    try:
        with progress_bar(total=len(pending), desc="pairs", unit="pair",
                          enable=ctx.cfg.show_progress and progress_mode() == "bar") as bar:
            futures = {pool.submit(_run_in_worker, index, seed): (index, seed) for index, seed in pending}
            failures: dict[str, str] = {}
            for future in as_completed(futures):
                try:
                    index, seed, seconds = future.result()  # a worker's exception is raised here, with its message
                except PAIR_FAILURES as exc:
                    _failed(ctx, *futures[future], exc, failures)
                    bar.update(1)
                    continue
                log.info("%s (%s)", clock.done(ctx.plans[index].name, seed, seconds),
                         ctx.pair_dir(ctx.plans[index], seed))
                bar.update(1)
    except BaseException:
        # Ctrl-C or a failed pair: stop the other workers now rather than after their pairs
        # (a pair cut short has no record and is computed again by the next run).
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    pool.shutdown(wait=True)
    return failures


def run_here(ctx: RunContext, pending: Sequence[tuple[int, int]], threads: int,
             earlier: dict[str, float] | None = None,
             elsewhere: Mapping[str, float] | None = None) -> dict[str, str]:
    """Compute the pending pairs one after another in this process, with ``threads`` threads; return
    the pairs that failed (``PAIR_FAILURES``), each with why."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    clock = _clock(ctx, pending, 1, earlier, elsewhere)
    if len(pending) > 1:
        log.info("%s, one after another in this process", clock.plan())
    failures: dict[str, str] = {}
    try:
        for index, seed in pending:
            try:
                seconds = _compute_timed(ctx, index, seed)
            except PAIR_FAILURES as exc:
                _failed(ctx, index, seed, exc, failures)
                continue
            log.info("%s", clock.done(ctx.plans[index].name, seed, seconds))
    finally:
        torch.set_num_threads(before)
    return failures


def longest_first(names: Sequence[str], pending: Sequence[tuple[int, int]],
                  seconds: Mapping[str, float]) -> list[tuple[int, int]]:
    """``pending`` (plan index, seed) pairs in the order to start them: the longest expected
    first (``seconds``: a pair's time by plan name, from any machine: only the methods' ranking
    matters), those with no time before them all (they may be the longest), otherwise as given.

    Workers take pairs in this order, so the last pairs to start are short ones that fill the
    gaps, not a LiteEval pair that leaves the other workers idle for minutes at the end (the
    longest-processing-time-first rule). The order changes no result (the module docstring)."""
    def key(pair: tuple[int, int]) -> float:
        took = expected(names[pair[0]], seconds)
        return -math.inf if took is None else -took

    return sorted(pending, key=key)


def schedule(
    ctx: RunContext,
    pending: Sequence[tuple[int, int]],
    *,
    jobs: int | None,
    threads: int | None,
    rank: int = 0,
    world: int = 1,
    earlier: dict[str, float] | None = None,
    costs: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Compute this process's share of ``pending``; return how (for the provenance). ``earlier``:
    seconds a pair of each method took before on this kind of machine, for the time left
    (benchmark/eta.py); ``costs``: the same from any machine, to start the longest pairs first
    (``longest_first``; every rank orders alike before taking its share) and, scaled by this
    machine's speed on the pairs it finishes, to time the methods it has no earlier pair of."""
    check_counts(jobs, threads)
    threads = threads or DEFAULT_THREADS
    if costs:
        pending = longest_first([plan.name for plan in ctx.plans], pending, costs)
    mine = list(pending[rank::world])
    if world > 1:
        if jobs not in (None, 1):
            log.warning("--jobs %d ignored under torchrun: each rank computes its pairs one after another", jobs)
        jobs = 1
    elif jobs is None:
        jobs = environment_jobs() or default_jobs(ctx.device, len(mine), ctx.bank_bytes())
    jobs = max(1, min(jobs, len(mine))) if mine else 1
    failures: dict[str, str] | None = {}
    if jobs > 1:
        failures = run_in_processes(ctx, mine, jobs, threads, earlier, costs)
    elif mine:
        failures = run_here(ctx, mine, threads, earlier, costs)
    execution: dict[str, Any] = {"jobs": jobs, "threads_per_pair": threads, "rank": rank, "world_size": world,
                                 "pairs_computed_here": len(mine)}
    if failures:
        execution["failed"] = dict(failures)  # "method seed k" -> why (the runner marks them and exits non-zero)
    return execution
