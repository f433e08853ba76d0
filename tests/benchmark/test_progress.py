"""Long runs that talk: timestamps, how far each loop is, and when the run should end, in a log
file as on a terminal (datasets/common/progress.py, benchmark/eta.py)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.eta import RunClock
from datasets.common import progress

REPO = Path(__file__).resolve().parents[2]

TIMESTAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "


def test_off_a_terminal_a_loop_logs_how_far_it_is_and_when_it_should_end(monkeypatch, caplog):
    monkeypatch.setenv(progress.MODE_VARIABLE, "log")
    monkeypatch.setenv(progress.INTERVAL_VARIABLE, "0")
    with caplog.at_level(logging.INFO, logger="progress"):
        with progress.progress_bar(total=4, desc="train uniform seed 0", unit="step") as bar:
            for _ in range(4):
                bar.update(1)
                bar.set_postfix(loss="0.5")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("train uniform seed 0: 1/4 step (25%)") and "ETA" in lines[0]
    assert "loss=0.5" in lines[1]
    assert lines[-1].startswith("train uniform seed 0: done, 4 step in")


def test_a_short_loop_says_nothing_and_quiet_means_quiet(monkeypatch, caplog):
    monkeypatch.setenv(progress.MODE_VARIABLE, "log")
    monkeypatch.setenv(progress.INTERVAL_VARIABLE, "3600")
    with caplog.at_level(logging.INFO, logger="progress"):
        with progress.progress_bar(total=3, desc="eval", unit="video") as bar:
            bar.update(3)
        monkeypatch.setenv(progress.INTERVAL_VARIABLE, "0")
        with progress.progress_bar(total=3, desc="eval", unit="video", enable=False) as bar:
            bar.update(3)
    assert caplog.records == []


@pytest.mark.parametrize("value, mode", [("0", "off"), ("log", "log"), ("1", "bar"), ("bar", "bar")])
def test_the_variable_chooses_bars_lines_or_nothing(monkeypatch, value, mode):
    monkeypatch.setenv(progress.MODE_VARIABLE, value)
    assert progress.progress_mode() == mode


class FakeTime:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_time_left_comes_from_each_methods_own_pairs_then_earlier_ones_never_another_methods():
    t = FakeTime()
    pending = [("uniform", 0), ("uniform", 1), ("liteeval", 0), ("liteeval", 1)]
    clock = RunClock(pending, jobs=2, earlier={"liteeval": 600.0}, now=t)
    assert clock.seconds_left() is None  # Uniform's time is not known yet
    t.t += 10
    line = clock.done("uniform", 0, 10.0)
    assert "1 of 4 pairs done" in line and "10s elapsed" in line
    # Uniform seed 1 (10 s, its own seed's) is done now by its estimate, liteeval seed 0 has just
    # started on the freed worker (600 s, the folder's earlier pair), seed 1 waits for the first
    # worker free: 600 s from now.
    assert clock.seconds_left() == pytest.approx(600)
    t.t += 2
    clock.done("uniform", 1, 12.0)  # liteeval seed 1 starts on the other worker
    t.t += 500
    clock.done("liteeval", 0, 500.0)  # its own time now: seed 1 has 500 - 500 s left
    assert clock.seconds_left() == pytest.approx(0)
    t.t -= 400  # (had it finished 400 s sooner: seed 1, 100 s in, would have 400 s left)
    assert clock.seconds_left() == pytest.approx(400)
    other = RunClock([("a", 0), ("b", 0)], jobs=1, now=t)
    line = other.done("a", 0, 30.0)
    # b has not run: a's 30 s say nothing of it (methods differ a hundredfold).
    assert other.seconds_left() is None and "ETA once a pair of each of b has finished" in line
    assert progress.duration(3725) == "1h02m" and progress.duration(65) == "1m05s"
    # A tune's trials (a sweep's points, an ablation's rows) are one method: one finished trial times the rest.
    trials = RunClock([(f"lstm-trial{k}", 0) for k in range(4)] + [(f"liteeval-trial{k}", 0) for k in range(9)], 2,
                      now=t)
    line = trials.done("lstm-trial0", 0, 20.0)
    assert "ETA once a pair of each of liteeval has finished" in line  # the method, once: not nine labels
    for k in (1, 2, 3):
        trials.done(f"lstm-trial{k}", 0, 20.0)
    trials.done("liteeval-trial0", 0, 100.0)  # trials 1 (just started) and 2 run; 3 to 8 wait: 4 rounds of 100 s
    assert trials.seconds_left() == pytest.approx(400)


def test_another_machines_times_scaled_by_this_machines_speed_time_what_has_not_finished_here():
    """Found: the main job on a new kind of machine (every user's first run) said "ETA once a pair
    of each of ... has finished" until its last LiteEval pair, though the folder held every
    method's time from the machine that computed the committed results."""
    t = FakeTime()
    pending = [("liteeval", 0), ("liteeval", 1), ("uniform", 0), ("uniform", 1)]
    clock = RunClock(pending, jobs=1, now=t, elsewhere={"liteeval": 300.0, "uniform": 10.0})
    assert clock.seconds_left() is None and clock.eta().startswith("ETA once")  # no speed measured yet
    t.t += 600
    line = clock.done("liteeval", 0, 600.0)  # this machine takes twice as long
    assert clock.speed() == pytest.approx(2.0)
    assert clock.seconds_left() == pytest.approx(600 + 2 * 20)  # liteeval 1 by its own seed, uniform by 2 x 10 s
    assert line.endswith("(scaled from another machine's times)")
    t.t += 600
    clock.done("liteeval", 1, 600.0)
    t.t += 30
    line = clock.done("uniform", 0, 30.0)  # uniform's own time now: nothing left is scaled
    assert clock.seconds_left() == pytest.approx(30) and "scaled" not in line
    plain = RunClock(pending, jobs=1, now=t, earlier={"liteeval": 50.0}, elsewhere={"liteeval": 300.0})
    assert plain.estimate("liteeval") == 50.0  # this kind of machine's own earlier time comes first


def test_the_last_pair_of_a_run_has_what_its_estimate_leaves_not_a_whole_pair():
    """Found: one LiteEval pair of 5m40s left, 5m30s into it, the run said "ETA 5m32s"."""
    t = FakeTime()
    pending = [(m, s) for m in ("uniform", "liteeval") for s in (0, 1, 2)]
    clock = RunClock(pending, jobs=2, earlier={"uniform": 10.0, "liteeval": 340.0}, now=t)
    assert clock.seconds_left() == pytest.approx(10 + 340 + 340)  # u0 u1 | u2 l0 | l1 l2, each worker
    for seed in (0, 1, 2):
        t.t += 5
        clock.done("uniform", seed, 10.0)
    t.t += 340
    clock.done("liteeval", 0, 340.0)
    t.t += 10
    clock.done("liteeval", 1, 345.0)  # liteeval seed 2 started when seed 0 finished, 10 s ago
    assert clock.seconds_left() == pytest.approx((340 + 345) / 2 - 10)
    t.t += 320  # seed 2, 330 s in, has seconds left
    assert clock.seconds_left() == pytest.approx(342.5 - 330)
    assert clock.eta().startswith(("ETA 12s", "ETA 13s")), clock.eta()


def test_earlier_pairs_time_a_run_only_from_this_kind_of_machine():
    from dataclasses import replace

    from benchmark.eta import machine_here, timed_here
    from benchmark.provenance import cpu_model, gpu_name
    from benchmark.record import PairRecord

    here = machine_here("cuda:1")
    gpu = gpu_name("cuda:1")  # None without CUDA: the kind is then the device type
    assert here == f"{cpu_model()}, {gpu or 'cuda'}"
    committed = PairRecord.load(REPO / "results/default/runs/uniform/seed0/record.json")

    def record(platform: dict | None, train: float = 90.0, evaluation: float = 10.0) -> PairRecord:
        return replace(committed, computed={} if platform is None else {"platform": platform}, train_seconds=train,
                       eval_seconds=evaluation)

    assert timed_here(record({"cpu": cpu_model(), "device": "cuda:0", "gpu": gpu}), here) == 100.0
    assert timed_here(record({"cpu": cpu_model(), "device": "cpu"}), here) is None
    other_gpu = {"cpu": cpu_model(), "device": "cuda", "gpu": "Another GPU"}  # an H200's pairs do not time an H100
    assert timed_here(record(other_gpu), here) is None
    assert timed_here(record({"cpu": "another", "device": "cuda"}), here) is None
    assert timed_here(record(None, 5.0, 0.0), here) is None  # no platform: where it ran is unknown
    # the order pairs start in needs only how methods compare, which any machine's pairs tell
    assert record({"cpu": "another", "device": "cuda"}).seconds == 100.0
    assert record(None, 5.0, 0.0).seconds == 5.0 and record(None, 0.0, 0.0).seconds is None


def test_a_run_in_workers_logs_each_pair_start_end_training_progress_and_eta_with_timestamps(tmp_path):
    env = {**os.environ, "LITEEVAL_DATA": str(tmp_path / "data"), progress.INTERVAL_VARIABLE: "0",
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop(progress.MODE_VARIABLE, None)  # stderr is a pipe here: lines, as in a log file
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--dataset", "tiny", "--steps", "3", "--validations", "1",
         "--seeds", "0", "1", "--methods", "uniform", "lstm", "--jobs", "2", "--results-dir", str(tmp_path / "r")],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert lines and all(re.match(TIMESTAMP, line) for line in lines if line.strip()), lines[:5]
    text = done.stderr
    for name in ("uniform", "lstm"):
        for seed in (0, 1):
            assert f"{name} seed {seed}: started" in text  # logged by the worker that computes it
            assert re.search(rf"{name} seed {seed}: done in \S+; \d of 4 pairs done", text)
    assert re.search(r"4 of 4 pairs done, \S+ elapsed, ETA 0s", text)
    assert re.search(r"train (uniform|lstm) seed \d: \d/3 step", text)  # a worker's training progress
    assert "\r" not in text
