"""What a run promises (docs/guarantees.md), each fault tested the way it was found (issue 14):
a plug-in's undeclared read, a --force rerun interrupted between its files, two runs on one
folder, deleted result files, an unwritable folder, a full disk, and bad input that must end in
one line and exit code 2 rather than a traceback."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark import results
from benchmark.__main__ import main
from datasets.common.atomic import atomic_write_bytes
from datasets.common.errors import UsageError, WriteError

REPO = Path(__file__).resolve().parents[2]

PLUGIN = '''
from dataclasses import dataclass

import torch
from torch import nn

from datasets.loading.sampling import AllFrames
from methods.base import MethodOutput, StepModule, TrainConfig, VideoMethod
from methods.losses import soft_cross_entropy


class Plugin(VideoMethod):
    name = "{name}"
    summary = "test plug-in"
    streams = ("coarse",)
    online = False

    @dataclass(frozen=True)
    class Hparams:
        pass

    train_defaults = TrainConfig(lr=1e-3)

    def __init__(self, num_classes, dims, **hparams):
        super().__init__(num_classes, dims, **hparams)
        self.classifier = nn.Linear(dims["coarse"], num_classes)

    def sampler(self, train):
        return AllFrames()

    def forward(self, batch):
        feature = batch.read("coarse").sum(1) / batch.steps.unsqueeze(1)
        {extra}
        logits = self.classifier(feature)
        ones = torch.ones(batch.size, dtype=torch.long, device=logits.device)
        return MethodOutput(scores={scores}, step_counts={counts}, extras={{"logits": logits}})

    def loss(self, output, batch):
        loss = soft_cross_entropy(output.extras["logits"], batch.labels)
        return loss, {{}}

    def cost_modules(self):
        dim = self.dims["coarse"]
        return {{"classifier": StepModule(self.classifier, lambda: (torch.zeros(1, dim),))}}
'''


@pytest.fixture(autouse=True)
def data_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LITEEVAL_DATA", str(tmp_path_factory.getbasetemp() / "data-cache"))


def run(tmp_path: Path, *extra: str, steps: int = 2, name: str = "t") -> int:
    return main(["-q", "run", "--dataset", "tiny", "--steps", str(steps), "--seeds", "0", "--jobs", "1",
                 "--results-dir", str(tmp_path), "--name", name, *extra])


def plugin(tmp_path: Path, name: str, *, extra: str = "", scores: str = "logits.softmax(-1)",
           counts: str = '{"classifier": ones}') -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(PLUGIN.format(name=name, extra=extra, scores=scores, counts=counts))
    return f"{path}:Plugin"


def pair(tmp_path: Path, method: str, name: str = "t") -> Path:
    return tmp_path / name / "runs" / method / "seed0"


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------- 1. undeclared reads
@pytest.mark.parametrize("beside", [["lstm"], []], ids=["beside-a-fine-method", "alone"])
def test_a_read_of_an_undeclared_stream_is_refused_whoever_else_runs(tmp_path, capsys, beside):
    """Found: beside LSTM (which loads "fine") the plug-in's fine reads cost nothing; alone, a KeyError."""
    sneaky = plugin(tmp_path, "sneaky", extra='batch.read("fine")')
    assert run(tmp_path, "--methods", *beside, sneaky, "--unchecked") == 2  # the run's own guard, past the check
    line = error_line(capsys)
    assert "'sneaky'" in line and "'fine'" in line and "streams" in line
    assert not (pair(tmp_path, "sneaky") / "record.json").exists()


# ---------------------------------------------------------------- 2. interrupted --force
class Killed(BaseException):
    """Stands for SIGKILL in the middle of writing a pair's files."""


def test_an_interrupted_force_rerun_is_redone_not_reported_with_old_numbers(tmp_path, monkeypatch):
    """Found: config.json rewritten, metrics.json still the old run's; the next run said "done already"."""
    assert run(tmp_path, "--methods", "lstm", steps=2) == 0
    import benchmark.pair as pair_module

    real = pair_module.atomic_write_bytes

    def dies_at_the_weights(path, data):
        if Path(path).name == "model.pt":
            raise Killed
        real(path, data)

    monkeypatch.setattr(pair_module, "atomic_write_bytes", dies_at_the_weights)
    with pytest.raises(Killed):
        run(tmp_path, "--methods", "lstm", "--force", steps=3)
    monkeypatch.setattr(pair_module, "atomic_write_bytes", real)
    assert results.pair_state(pair(tmp_path, "lstm")).done is False

    assert run(tmp_path, "--methods", "lstm", steps=3) == 0
    record = json.loads((pair(tmp_path, "lstm") / "record.json").read_text())
    assert record["train_steps"] == 3 and record["budget_steps"] == 3
    summary = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert summary["per_seed"]["lstm"]["0"]["train_steps"] == 3


def test_a_file_that_does_not_match_its_checksum_makes_the_pair_not_done(tmp_path):
    assert run(tmp_path, "--methods", "uniform") == 0
    folder = pair(tmp_path, "uniform")
    assert results.pair_state(folder).done
    (folder / "model.pt").write_bytes(b"not the weights")
    state = results.pair_state(folder)
    assert not state.done and "model.pt" in state.reason
    before = (folder / "record.json").stat().st_mtime_ns
    assert run(tmp_path, "--methods", "uniform") == 0
    assert (folder / "record.json").stat().st_mtime_ns != before and results.pair_state(folder).done


# ---------------------------------------------------------------- 3. one writer per folder
def test_a_second_run_on_a_folder_in_use_is_refused_with_the_holder(tmp_path, capsys):
    """Found: two runs with different settings on one name both exited 0 with a mixed table."""
    with results.folder_lock(tmp_path / "t"):
        assert run(tmp_path, "--methods", "uniform") == 2
    line = error_line(capsys)
    assert "in use" in line and f"pid {os.getpid()}" in line and "--name" in line
    assert not (tmp_path / "t" / "runs").exists()
    assert run(tmp_path, "--methods", "uniform") == 0  # released


def test_the_lock_is_taken_before_the_plugin_check(tmp_path, capsys, monkeypatch):
    """Found (issue 45): `run` checked its plug-ins (20 s for a slow one) before it locked its folder; a
    `latency` on the same name took the lock in that gap, and the run failed after the check."""
    from benchmark import conformance

    checked = []
    monkeypatch.setattr(conformance, "vet_plugins", lambda *a, **k: checked.append(1) or {})
    with results.folder_lock(tmp_path / "t"):
        assert run(tmp_path, "--methods", "uniform") == 2
    assert "in use" in error_line(capsys) and checked == []  # refused before the check ran
    assert run(tmp_path, "--methods", "uniform") == 0 and checked == [1]


def test_the_lock_is_held_across_processes(tmp_path):
    script = ("import sys, time; from pathlib import Path; from benchmark.results import folder_lock\n"
              "with folder_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "t")], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(results.FolderInUseError, match=f"pid {holder.pid}"), results.folder_lock(tmp_path / "t"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with results.folder_lock(tmp_path / "t"):  # a killed holder's lock is gone with its process
        pass


# ---------------------------------------------------------------- 4. missing files, whole tables
def test_a_deleted_scores_file_means_not_done(tmp_path):
    """Found: with scores.npz deleted the run answered "done already" and never rewrote it."""
    assert run(tmp_path, "--methods", "uniform", "lstm") == 0
    (pair(tmp_path, "lstm") / "scores.npz").unlink()
    assert run(tmp_path, "--methods", "uniform", "lstm") == 0
    assert (pair(tmp_path, "lstm") / "scores.npz").is_file() and results.pair_state(pair(tmp_path, "lstm")).done


def test_the_table_covers_every_pair_in_the_folder_or_says_which_it_leaves_out(tmp_path):
    """Found: a run with fewer --methods shrank table.md and metrics.json to its own methods."""
    assert run(tmp_path, "--methods", "uniform", "lstm") == 0
    assert run(tmp_path, "--methods", "uniform") == 0
    table = (tmp_path / "t" / "table.md").read_text()
    assert "| LSTM" in table and "| Uniform" in table
    assert set(json.loads((tmp_path / "t" / "metrics.json").read_text())["per_seed"]) == {"uniform", "lstm"}

    (pair(tmp_path, "lstm") / "scores.npz").unlink()
    assert run(tmp_path, "--methods", "uniform") == 0
    table = (tmp_path / "t" / "table.md").read_text()
    assert "| LSTM" not in table and "not in the table: lstm (seeds 0): seed 0: scores.npz is missing" in table
    assert "lstm (seeds 0)" in json.loads((tmp_path / "t" / "metrics.json").read_text())["left_out"]


# ---------------------------------------------------------------- 5. unwritable folder, full disk
def test_an_unwritable_results_folder_is_reported_before_training(tmp_path, capsys, monkeypatch):
    """Found: a 62-line PermissionError after the first pair had trained."""
    import benchmark.pair as pair_module

    monkeypatch.setattr(pair_module, "fit", lambda *a, **k: pytest.fail("trained before checking the folder"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["-q", "run", "--dataset", "tiny", "--steps", "2", "--seeds", "0", "--methods", "uniform",
                 "--results-dir", str(blocker / "results")]) == 2
    line = error_line(capsys)
    assert "cannot be written" in line and str(blocker) in line


def test_a_full_disk_names_the_file(tmp_path, capsys, monkeypatch):
    assert run(tmp_path, "--methods", "uniform") == 0  # the store exists; only results are written below
    real = os.replace

    def full(src, dst, *args, **kwargs):
        if Path(dst).name == "scores.npz":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    assert run(tmp_path, "--methods", "uniform", "--force") == 2
    line = error_line(capsys)
    assert "No space left on device" in line and str(pair(tmp_path, "uniform") / "scores.npz") in line
    assert not list(pair(tmp_path, "uniform").glob(".*.tmp"))  # the temporary is gone


def test_atomic_write_error_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "x.bin"
    atomic_write_bytes(target, b"old")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(WriteError, match=str(target)):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_orphan_temporaries_of_a_killed_writer_are_removed(tmp_path):
    assert run(tmp_path, "--methods", "uniform") == 0
    orphan = pair(tmp_path, "uniform") / ".metrics.json.abc123.tmp"
    orphan.write_text("{")
    assert run(tmp_path, "--methods", "uniform") == 0
    assert not orphan.exists()


# ---------------------------------------------------------------- 6. one line, exit code 2
BAD_ARGUMENTS = {
    "epochs-zero": (["--epochs", "0"], "--epochs"),
    "epochs-negative": (["--epochs", "-1"], "--epochs"),
    "seed-negative": (["--seeds", "-1"], "--seeds"),
    "seed-twice": (["--seeds", "0", "0"], "given twice"),
    "device-unknown": (["--device", "tpu"], "--device tpu"),
}


@pytest.mark.parametrize("arguments,expected", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_arguments_give_one_line_and_exit_code_2(tmp_path, capsys, arguments, expected):
    assert main(["-q", "run", "--dataset", "tiny", "--methods", "uniform", "--results-dir", str(tmp_path),
                 "--steps", "2", *arguments]) == 2
    assert expected in error_line(capsys)


def test_cuda_on_a_machine_without_it_is_one_line(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert run(tmp_path, "--methods", "uniform", "--device", "cuda") == 2
    assert "--device cpu" in error_line(capsys)


def test_a_config_value_of_the_wrong_type_is_one_line(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"lstm": {"hidden": "big"}}))
    assert run(tmp_path, "--methods", "lstm", "--config", str(config)) == 2
    line = error_line(capsys)
    assert "hidden = 'big'" in line and "int" in line


def test_a_plugin_returning_nan_is_named(tmp_path, capsys):
    broken = plugin(tmp_path, "broken", scores="torch.full_like(logits, float('nan'))")
    assert run(tmp_path, "--methods", broken, "--unchecked") == 2  # the run's own guard, past the check
    line = error_line(capsys)
    assert "'broken'" in line and "non-finite" in line


@pytest.mark.parametrize("damage", ["empty-pair-metrics", "corrupt-pair-config", "empty-folder-metrics"])
@pytest.mark.parametrize("force", [False, True], ids=["resume", "force"])
def test_corrupt_result_files_are_redone_not_fatal(tmp_path, damage, force):
    """Found: "Expecting value: line 1 column 1", and --force could not get past it."""
    assert run(tmp_path, "--methods", "uniform") == 0
    target = {"empty-pair-metrics": pair(tmp_path, "uniform") / "record.json",
              "corrupt-pair-config": pair(tmp_path, "uniform") / "config.json",
              "empty-folder-metrics": tmp_path / "t" / "metrics.json"}[damage]
    target.write_text("" if "empty" in damage else "{not json")
    assert run(tmp_path, "--methods", "uniform", *(["--force"] if force else [])) == 0
    assert results.pair_state(pair(tmp_path, "uniform")).done
    assert "uniform" in json.loads((tmp_path / "t" / "metrics.json").read_text())["per_seed"]


def stopped(tmp_path: Path, sig: int, *, seeds: tuple[str, ...] = ("0",), jobs: str = "1",
            settle: float = 2.0) -> tuple[int, str]:
    """A long tiny run, sent ``sig`` once its folder is locked and ``settle`` seconds have passed
    (training has started): its exit code and stderr. A shell's background job (and some CI
    runners) start commands with the signal ignored, which a child inherits; the child gets the
    default disposition, as a terminal's foreground job has."""
    env = {**os.environ, "LITEEVAL_DATA": str(tmp_path / "data")}
    command = [sys.executable, "-m", "benchmark", "-q", "run", "--dataset", "tiny", "--methods", "lstm",
               "--seeds", *seeds, "--steps", "100000", "--jobs", jobs, "--results-dir", str(tmp_path)]
    child = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "tiny").glob(".lock")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(settle)
        child.send_signal(sig)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    return child.returncode, err


def test_ctrl_c_is_one_line_and_resumable(tmp_path):
    """Found: Ctrl-C printed a 40-line traceback."""
    code, err = stopped(tmp_path, signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err and "interrupted" in err and "run the same command again" in err
    assert not (tmp_path / "tiny" / "runs" / "lstm" / "seed0" / "record.json").exists()


def test_sigterm_on_a_run_with_workers_is_one_line_and_resumable(tmp_path):
    """Found (issue 45): SIGTERM on a --jobs 2 run exited 143 with no line saying what happened."""
    code, err = stopped(tmp_path, signal.SIGTERM, seeds=("0", "1"), jobs="2", settle=8.0)  # workers training
    assert code == 143, err
    assert "Traceback" not in err and "terminated (SIGTERM)" in err and "run the same command again" in err
    assert "stopped: 0 of the 2 pairs this run computes are done and kept, 2 are not" in err
    assert "leaked semaphore" not in err
    with results.folder_lock(tmp_path / "tiny"):  # released
        pass


def test_a_record_without_checksums_or_of_an_earlier_hashing_scheme_is_computed_again(tmp_path):
    """Found: deleting a record's "files" switched every checksum off. A record without checksums
    (written before they were recorded, or stripped) is not done; one whose code was hashed under an
    earlier scheme is stale: the run computes both again, and nothing converts them in place."""
    from benchmark.code_fingerprint import stale_reason

    assert run(tmp_path, "--methods", "uniform", "lstm") == 0
    uniform, lstm = pair(tmp_path, "uniform"), pair(tmp_path, "lstm")
    record = json.loads((uniform / "record.json").read_text())
    del record["files"]
    (uniform / "record.json").write_text(json.dumps(record))
    assert "no checksums" in results.pair_state(uniform).reason
    code = json.loads((lstm / "record.json").read_text())["code"]
    earlier = {k: v for k, v in code.items() if k != "scheme"}  # a scheme-1 record has no "scheme"
    assert stale_reason(code) == "" and "scheme 1, which this version no longer reads" in stale_reason(earlier)
    assert run(tmp_path, "--methods", "uniform", "lstm") == 0
    assert results.pair_state(uniform).done
    assert "files" in json.loads((uniform / "record.json").read_text())
    with np.load(uniform / "scores.npz") as data:
        arrays = {k: data[k][:10] if k in ("video_ids", "scores", "labels", "gmacs") else data[k] for k in data.files}
    np.savez(uniform / "scores.npz", **arrays)
    assert not results.pair_state(uniform).done  # the checksum no longer matches


def test_an_edited_record_is_not_a_result(tmp_path, capsys):
    """Found: editing a pair's "map" to 99.9 and rerunning showed 9990.0 mAP. The record's numbers must
    be what its checksummed scores give; an edited one is recomputed."""
    assert run(tmp_path, "--methods", "uniform") == 0
    folder = pair(tmp_path, "uniform")
    record = json.loads((folder / "record.json").read_text())
    record["map"] = 99.9
    (folder / "record.json").write_text(json.dumps(record))
    state = results.pair_state(folder)
    assert not state.done and "says map = 99.9" in state.reason
    assert run(tmp_path, "--methods", "uniform") == 0  # computed again, not tabulated
    assert "9990" not in (tmp_path / "t" / "table.md").read_text()
    assert results.pair_state(folder).done


def test_a_pair_is_done_without_its_weights_and_commands_that_need_them_say_how_to_get_them(tmp_path, capsys):
    """Weights are not committed (issue 25): a pair without model.pt is a result; online says how to
    get the weights back, and recomputing brings them back bit for bit on this machine."""
    assert run(tmp_path, "--methods", "uniform", "liteeval") == 0
    folder = pair(tmp_path, "liteeval")
    recorded = json.loads((folder / "record.json").read_text())["files"]["model.pt"]
    (folder / "model.pt").unlink()
    assert results.pair_state(folder).done
    assert run(tmp_path, "--methods", "uniform", "liteeval") == 0  # kept: nothing recomputed
    assert not (folder / "model.pt").exists()
    capsys.readouterr()
    online = ["-q", "online", "--dataset", "tiny", "--methods", "uniform", "liteeval", "--seeds", "0", "--steps", "2",
              "--max-k", "2", "--results-dir", str(tmp_path), "--name", "t"]
    assert main(online) == 2
    line = error_line(capsys)
    assert "trained weights are not here" in line and "--methods liteeval --seeds 0 --force" in line
    assert "--restore-weights` recomputes every done pair of the run whose weights are missing" in line
    uniform = pair(tmp_path, "uniform") / "record.json"
    kept = uniform.read_bytes()
    scores = (folder / "scores.npz").read_bytes()
    assert run(tmp_path, "--methods", "uniform", "liteeval", "--restore-weights") == 0  # only what lacks weights
    assert results.sha256_bytes((folder / "model.pt").read_bytes()) == recorded  # bit for bit, same machine
    assert (folder / "scores.npz").read_bytes() == scores
    assert uniform.read_bytes() == kept  # a pair that has its weights is kept
    (folder / "model.pt").write_bytes(b"not the weights")
    assert "model.pt does not match" in results.pair_state(folder).reason  # where present, it must match


def test_a_record_without_a_setting_added_since_reads_as_computed_before_it(tmp_path):
    """A setting added to a method after results were computed must neither refuse those results
    (when it is at the value they were computed with) nor pass them off as its new default."""
    from dataclasses import replace

    from benchmark.config import RunConfig
    from benchmark.context import RunContext
    from benchmark.protocol.budget import Budget

    cfg = RunConfig(dataset="tiny", methods=["arnet", "liteeval"], seeds=[0], budget=Budget(steps=1),
                    results_root=str(tmp_path), show_progress=False)
    ctx = RunContext.create(cfg)
    arnet, liteeval = ctx.plans
    stored = ctx.identity(arnet, 0)
    del stored["hparams"]["reading"]  # as written before AR-Net's official reading existed
    assert ctx.identity_difference(arnet, 0, stored)  # its default is now the official reading: not what ran
    suite = replace(arnet, hparams={**arnet.hparams, "reading": "suite"})
    assert not ctx.identity_difference(suite, 0, stored)  # what those results were computed with
    stored = ctx.identity(liteeval, 0)
    del stored["hparams"]["gumbel_scale"]  # added at a default that keeps the old behaviour
    assert not ctx.identity_difference(liteeval, 0, stored)


#: Schema 2's names of percentages -> schema 1's (what the previous version wrote).
SCHEMA_1_NAMES = {"map_percent": "map", "map_interpolated_percent": "map_interpolated", "top1_percent": "top1"}


def _as_schema_1(out: Path) -> None:
    """Rewrite a fresh folder as the previous version wrote it: percentages under unsuffixed names,
    no schema_version anywhere."""
    for path in out.glob("runs/*/seed*/record.json"):
        record = json.loads(path.read_text())
        del record["schema_version"]
        path.write_text(json.dumps(record))
    data = json.loads((out / "metrics.json").read_text())
    del data["schema_version"]
    data["summary"] = {m: {SCHEMA_1_NAMES.get(k, k): v for k, v in row.items()} for m, row in data["summary"].items()}
    for seeds in data["per_seed"].values():
        for record in seeds.values():
            del record["schema_version"]
    (out / "metrics.json").write_text(json.dumps(data))


def test_a_folder_of_the_earlier_schema_is_refused_by_what_reads_its_numbers(tmp_path, capsys):
    """Found (issue 46): `map` was a fraction in record.json and a percentage in metrics.json. Every
    percentage is now named *_percent; a folder the earlier version wrote is refused by what reads
    its numbers and named by the audit, with the way to bring it up to date (no committed folder is
    of that schema any more, so the converter itself was removed: issue 47)."""
    from benchmark import api

    assert run(tmp_path, "--methods", "uniform") == 0
    out = tmp_path / "t"
    current = json.loads((out / "metrics.json").read_text())
    assert current["schema_version"] == 2 and 0 < current["summary"]["uniform"]["map_percent"]["mean"] <= 100
    assert 0 < current["per_seed"]["uniform"]["0"]["map"] <= 1 and "map" not in current["summary"]["uniform"]
    _as_schema_1(out)
    with pytest.raises(UsageError, match="schema version 1 .*--force .*python -m benchmark migrate"):
        api.table(out)
    capsys.readouterr()
    assert main(["report", "--check", "--results-dir", str(tmp_path), "--name", "t"]) == 1
    assert "older schema: " in capsys.readouterr().out
