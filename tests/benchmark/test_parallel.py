"""Pairs computed in worker processes (--jobs) or on torchrun ranks give a serial run's results."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import parallel
from benchmark.__main__ import main
from benchmark.parallel import default_jobs, schedule

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "docs/examples/coarse_mean.py:CoarseMean"  # a plug-in loaded from a file: workers must re-load it
ARGS = ["--dataset", "tiny", "--steps", "4", "--seeds", "0", "1", "--methods", "lstm", "liteeval", "fastforward",
        PLUGIN]
PAIRS = [(m, s) for m in ("lstm", "liteeval", "fastforward", "coarse_mean") for s in (0, 1)]


def pair_results(root: Path) -> dict[tuple[str, int], dict]:
    out = {}
    for method, seed in PAIRS:
        folder = root / "tiny" / "runs" / method / f"seed{seed}"
        with np.load(folder / "scores.npz") as scores:
            arrays = {k: scores[k] for k in scores.files}
        state = torch.load(folder / "model.pt", weights_only=True)
        metrics = json.loads((folder / "record.json").read_text())
        out[method, seed] = {"arrays": arrays, "state": state,
                             "threads": metrics["computed"]["device"]["torch_threads"]}
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        for name, array in a[key]["arrays"].items():
            assert np.array_equal(array, b[key]["arrays"][name]), (key, name)
        for name, tensor in a[key]["state"].items():
            assert torch.equal(tensor, b[key]["state"][name]), (key, name)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("serial")
    assert main(["-q", "run", *ARGS, "--jobs", "1", "--results-dir", str(root)]) == 0
    provenance = json.loads((root / "tiny" / "provenance.json").read_text())
    assert provenance["execution"]["jobs"] == 1
    return pair_results(root)


def test_jobs_give_the_serial_results_bit_for_bit(serial, tmp_path):
    assert main(["-q", "run", *ARGS, "--jobs", "2", "--results-dir", str(tmp_path)]) == 0
    provenance = json.loads((tmp_path / "tiny" / "provenance.json").read_text())
    assert provenance["execution"] == {"jobs": 2, "threads_per_pair": 1, "rank": 0, "world_size": 1,
                                       "pairs_computed_here": len(PAIRS)}
    parallel = pair_results(tmp_path)
    assert_same(parallel, serial)
    # Every pair ran with the same thread count in both runs: that is what makes them equal.
    assert {r["threads"] for r in parallel.values()} == {r["threads"] for r in serial.values()} == {1}


def test_torchrun_ranks_share_the_pairs_and_rank_0_writes_the_table(serial, tmp_path):
    env = {**os.environ, "LITEEVAL_PROGRESS": "0", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "benchmark",
         "-q", "run", *ARGS, "--device", "cpu", "--results-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("\nLiteEval ") == 1  # one table, printed by rank 0
    provenance = json.loads((tmp_path / "tiny" / "provenance.json").read_text())
    assert provenance["execution"]["world_size"] == 2 and provenance["execution"]["rank"] == 0
    assert provenance["execution"]["pairs_computed_here"] == len(PAIRS) // 2
    assert_same(pair_results(tmp_path), serial)
    table = (tmp_path / "tiny" / "table.csv").read_text()
    assert all(name in table for name in ("lstm", "liteeval", "fastforward", "coarse_mean"))


def test_a_rerun_with_jobs_resumes_and_computes_nothing(tmp_path, monkeypatch):
    args = ["-q", "run", "--dataset", "tiny", "--steps", "2", "--seeds", "0", "--methods", "uniform",
            "--results-dir", str(tmp_path)]
    assert main(args) == 0
    calls = []
    monkeypatch.setattr("benchmark.parallel.run_in_processes", lambda *a: calls.append(a))
    assert main([*args, "--jobs", "2"]) == 0
    assert calls == []  # nothing pending: no workers started
    assert json.loads((tmp_path / "tiny" / "provenance.json").read_text())["execution"]["pairs_computed_here"] == 0


def test_bad_counts_are_one_line_errors(tmp_path, capsys):
    for flag in ("--jobs", "--threads"):
        code = main(["-q", "run", "--dataset", "tiny", "--methods", "uniform", flag, "0", "--results-dir",
                     str(tmp_path)])
        assert code == 2
        assert f"{flag} must be >= 1, got 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # found: --jobs 0 was refused after the folder and its lock were made


def test_liteeval_jobs_sets_the_default_and_a_bad_value_is_one_line(monkeypatch, tmp_path, capsys):
    seen = {}
    monkeypatch.setattr("benchmark.parallel.run_in_processes",
                        lambda ctx, mine, jobs, threads, *_: seen.update(jobs=jobs))
    monkeypatch.setattr("benchmark.parallel.run_here", lambda ctx, mine, threads, *_: seen.update(jobs=1))
    pending = [(0, s) for s in range(4)]
    for value, jobs in (("3", 3), ("1", 1)):
        monkeypatch.setenv("LITEEVAL_JOBS", value)
        assert schedule(object(), pending, jobs=None, threads=None)["jobs"] == seen["jobs"] == jobs
    assert schedule(object(), pending, jobs=2, threads=None)["jobs"] == 2  # --jobs wins
    monkeypatch.setenv("LITEEVAL_JOBS", "many")
    assert main(["-q", "run", "--dataset", "tiny", "--methods", "uniform", "--results-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: LITEEVAL_JOBS='many': must be a whole number")
    assert not any(tmp_path.iterdir())


def test_default_jobs_follow_cores_pairs_and_memory(monkeypatch):
    monkeypatch.setattr("benchmark.parallel.available_cores", lambda: 8)
    monkeypatch.setattr("benchmark.parallel.host_available_bytes", lambda: 10 * 2**30)
    cpu = torch.device("cpu")
    assert default_jobs(cpu, pending=20, bytes_per_worker=2**20) == 8  # one per core
    assert default_jobs(cpu, pending=3, bytes_per_worker=2**20) == 3  # no more than the pairs
    assert default_jobs(cpu, pending=20, bytes_per_worker=4 * 2**30) == 2  # copies of the banks that fit


def test_several_pairs_share_one_gpu_as_its_memory_allows(monkeypatch):
    """A GPU is used, not visited: as many workers as its free memory holds (each its banks and a
    context), capped by the cores that launch their kernels and MAX_JOBS_PER_GPU. No GPU needed:
    the device's free memory is given."""
    from benchmark.parallel import GPU_WORKER_OVERHEAD, MAX_JOBS_PER_GPU

    monkeypatch.delenv("LITEEVAL_JOBS", raising=False)  # the default itself is under test (tests/conftest.py)

    gpu, gib = torch.device("cuda"), 2**30
    big = dict(cores=16, host_free=200 * gib)
    assert default_jobs(gpu, pending=20, bytes_per_worker=gib, device_free=80 * gib, **big) == MAX_JOBS_PER_GPU
    assert default_jobs(gpu, pending=20, bytes_per_worker=gib, device_free=8 * gib, **big) == int(
        0.8 * 8 * gib) // (gib + GPU_WORKER_OVERHEAD)
    assert default_jobs(gpu, pending=20, bytes_per_worker=gib, device_free=gib, **big) == 1  # at least one
    assert default_jobs(gpu, pending=3, bytes_per_worker=gib, device_free=80 * gib, **big) == 3
    assert default_jobs(gpu, pending=20, bytes_per_worker=gib, device_free=80 * gib, cores=2, host_free=200 * gib) == 2

    class GpuRun:  # a run context on a GPU this machine does not have
        device = gpu

        def bank_bytes(self):
            return gib

    seen = {}
    monkeypatch.setattr("benchmark.parallel.device_free_bytes", lambda device: 40 * gib)
    monkeypatch.setattr("benchmark.parallel.available_cores", lambda: 16)
    monkeypatch.setattr("benchmark.parallel.host_available_bytes", lambda: 200 * gib)
    monkeypatch.setattr("benchmark.parallel.run_in_processes",
                        lambda ctx, mine, jobs, threads, *_: seen.update(jobs=jobs, mine=mine))
    pending = [(i, s) for i in range(4) for s in (0, 1, 2)]
    info = schedule(GpuRun(), pending, jobs=None, threads=None)
    assert seen["jobs"] == info["jobs"] == MAX_JOBS_PER_GPU and seen["mine"] == pending


def test_torchrun_ranks_take_every_world_th_pair(monkeypatch):
    seen = {}
    monkeypatch.setattr("benchmark.parallel.run_here", lambda ctx, mine, threads, *_: seen.update(mine=mine))
    pending = [(i, s) for i in range(3) for s in (0, 1)]
    info = schedule(object(), pending, jobs=None, threads=None, rank=1, world=2)
    assert seen["mine"] == pending[1::2]
    assert info == {"jobs": 1, "threads_per_pair": 1, "rank": 1, "world_size": 2, "pairs_computed_here": 3}


def test_the_longest_pairs_start_first_by_earlier_times_from_any_machine(monkeypatch):
    """Workers take pairs in the order given: the longest expected first (a LiteEval pair started
    last would leave the other workers idle at the end), unknown ones before them (they may be
    longer still), a label without a time of its own (a tune's trial) by its method's."""
    from types import SimpleNamespace

    names = ["uniform", "liteeval", "lstm", "plugin", "liteeval-t2"]
    ctx = SimpleNamespace(plans=[SimpleNamespace(name=n) for n in names], device=torch.device("cpu"))
    costs = {"uniform": 5.0, "liteeval": 400.0, "lstm": 45.0}
    seen = {}
    monkeypatch.setattr("benchmark.parallel.run_in_processes",
                        lambda ctx, mine, jobs, threads, *_: seen.update(mine=mine))
    monkeypatch.setattr("benchmark.parallel.run_here", lambda ctx, mine, threads, *_: seen.update(mine=mine))
    pending = [(i, s) for i in range(len(names)) for s in (0, 1)]
    schedule(ctx, pending, jobs=2, threads=None, costs=costs)
    assert [(names[i], s) for i, s in seen["mine"]] == [
        ("plugin", 0), ("plugin", 1), ("liteeval", 0), ("liteeval", 1), ("liteeval-t2", 0), ("liteeval-t2", 1),
        ("lstm", 0), ("lstm", 1), ("uniform", 0), ("uniform", 1)]
    schedule(ctx, pending, jobs=2, threads=None)  # nothing to go by: the order given
    assert seen["mine"] == pending
    schedule(ctx, pending, jobs=None, threads=None, costs=costs, rank=1, world=2)  # ranks share the ordered list
    assert [(names[i], s) for i, s in seen["mine"]] == [
        ("plugin", 1), ("liteeval", 1), ("liteeval-t2", 1), ("lstm", 1), ("uniform", 1)]


def test_a_rerun_starts_the_pairs_that_took_longest_before_first_wherever_they_ran(tiny_store, tmp_path, monkeypatch):
    """The run reads its folder's earlier pairs for the order (any machine's: only how methods
    compare matters) and for the time left (this kind of machine's only)."""
    from benchmark.config import RunConfig
    from benchmark.protocol.budget import Budget
    from benchmark.runner import Runner

    cfg = RunConfig(dataset=str(tiny_store), methods=["uniform", "lstm"], seeds=[0],
                    budget=Budget(steps=2, validations=1), results_root=str(tmp_path), show_progress=False, jobs=1)
    Runner(cfg).run()
    for name, seconds in (("uniform", 7.0), ("lstm", 300.0)):  # as if another machine had computed them
        path = tmp_path / "tiny" / "runs" / name / "seed0" / "record.json"
        record = json.loads(path.read_text())
        record["computed"]["platform"]["cpu"] = "another processor"
        record.update(train_seconds=seconds, eval_seconds=0.0)
        path.write_text(json.dumps(record))
    runner = Runner(dataclasses.replace(cfg, force=True))
    # another machine's times order the pairs, and are no clock for this one
    assert runner.earlier_seconds() == ({}, {"uniform": 7.0, "lstm": 300.0})
    order, run_here = [], parallel.run_here

    def watched(ctx, mine, threads, earlier=None, elsewhere=None):
        order.extend(ctx.plans[i].name for i, _ in mine)
        return run_here(ctx, mine, threads, earlier, elsewhere)

    monkeypatch.setattr(parallel, "run_here", watched)
    runner.run()
    assert order == ["lstm", "uniform"]  # the plans' order is uniform, lstm


@pytest.mark.parametrize("command", [["online", "--dataset", "tiny"], ["latency", "--dataset", "tiny"],
                                     ["reproduce", "--dry-run"], ["report", "--check"]])
def test_a_one_process_command_under_torchrun_says_so_and_touches_nothing(command, monkeypatch, tmp_path, capsys):
    """Only run, tune, curves and ablate split their work over ranks; under torchrun every other
    command would run whole on each rank, and all but one stop at the folder's lock."""
    monkeypatch.chdir(tmp_path)  # nothing may be written here
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(command) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"error: `{command[0]}` runs in one process and does not split its work over torchrun's 2 ranks; "
                     f"run it as `python -m benchmark {command[0]} ...` (torchrun splits run, tune, curves, ablate)")
    assert not any(tmp_path.iterdir())
