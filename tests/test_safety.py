"""Nothing outside the results folder is touched, and nothing is trusted that can lie (issue 28).

Each test reproduces a fault as it was found: orphan workers writing after their run was killed,
links followed out of a results folder, a store's name escaping --results-dir, labels visible at
evaluation, unchecked plug-in outputs, an edited metrics.json, a report of pairs that are gone,
settings out of range.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def data_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LITEEVAL_DATA", str(tmp_path_factory.getbasetemp() / "data-cache"))


def environment() -> dict[str, str]:
    return {**os.environ, "LITEEVAL_PROGRESS": "0", "CUDA_VISIBLE_DEVICES": ""}


# ---------------------------------------------------------------------------- 1. orphan workers
def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the workers through /proc")
def test_workers_die_with_the_run_and_write_nothing_after_it(tmp_path):
    """Found: kill -9 of the run left its workers training; they overwrote a later run's pairs."""
    base = [sys.executable, "-m", "benchmark", "-q", "run", "--dataset", "tiny", "--methods", "lstm", "--seeds", "0",
            "1", "--validations", "1", "--results-dir", str(tmp_path), "--name", "kj"]
    run = subprocess.Popen([*base, "--steps", "1000000", "--jobs", "2"], cwd=REPO, env=environment(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        workers: list[int] = []
        while time.time() < deadline and len(workers) < 2:
            workers = [pid for pid in children(run.pid) if is_worker(pid)]
            time.sleep(0.2)
        assert len(workers) == 2, "the run did not start two workers"
        time.sleep(5)  # they load the store and start training
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "the workers outlived the run"
    # A second run takes the folder; nothing of the first appears in it afterwards.
    done = subprocess.run([*base, "--steps", "2", "--jobs", "1", "--force"], cwd=REPO, env=environment(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    time.sleep(2)
    for seed in (0, 1):
        record = json.loads((tmp_path / "kj" / "runs" / "lstm" / f"seed{seed}" / "metrics.json").read_text())
        assert record["train_steps"] == 2


def test_a_worker_refuses_to_write_once_its_run_is_gone(monkeypatch):
    from benchmark import parallel

    parallel.check_parent(os.getppid())  # its parent: fine
    with pytest.raises(parallel.OrphanedError, match="is gone; its pair is not written"):
        parallel.check_parent(os.getppid() + 10**6)
