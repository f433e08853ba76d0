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

from tests.helpers import blank_readme

REPO = Path(__file__).resolve().parents[2]


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
        record = json.loads((tmp_path / "kj" / "runs" / "lstm" / f"seed{seed}" / "record.json").read_text())
        assert record["train_steps"] == 2


def test_a_worker_refuses_to_write_once_its_run_is_gone(monkeypatch):
    from benchmark import parallel

    parallel.check_parent(os.getppid())  # its parent: fine
    with pytest.raises(parallel.OrphanedError, match="is gone; its pair is not written"):
        parallel.check_parent(os.getppid() + 10**6)


# ---------------------------------------------------------------------------- 2. links, 3. names
def quick_run(root: Path, *extra: str, dataset: str = "tiny", name: str = "t", method: str = "uniform") -> list[str]:
    return ["-q", "run", "--dataset", dataset, "--methods", method, "--seeds", "0", "--steps", "1", "--jobs", "1",
            "--validations", "1", "--results-dir", str(root), "--name", name, *extra]


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_links_inside_a_results_folder_are_refused_and_never_followed(tmp_path, capsys):
    """Found: a `.lock` linking to another file got that file truncated; a `runs` link sent the pairs elsewhere."""
    from benchmark.__main__ import main

    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    folder = tmp_path / "results" / "t"
    folder.mkdir(parents=True)
    (folder / ".lock").symlink_to(victim)
    assert main(quick_run(tmp_path / "results")) == 2
    assert "holds a symbolic link" in one_line(capsys) and victim.read_text() == "keep me"

    (folder / ".lock").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "runs").symlink_to(elsewhere, target_is_directory=True)
    assert main(quick_run(tmp_path / "results")) == 2
    assert "runs -> " in one_line(capsys) and not any(elsewhere.iterdir())


def test_a_results_folder_that_is_itself_a_link_is_refused(tmp_path, capsys):
    """Found (issue 45): `ln -s /elsewhere R/alias; run --results-dir R --name alias` wrote the whole
    folder (lock, runs/, tables) into /elsewhere; links inside a folder were refused, its own name was not."""
    from benchmark.__main__ import main

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "alias").symlink_to(elsewhere, target_is_directory=True)
    assert main(quick_run(tmp_path / "results", name="alias")) == 2
    assert "is a symbolic link, -> " in one_line(capsys) and not any(elsewhere.iterdir())
    (tmp_path / "results" / "gone").symlink_to(tmp_path / "nowhere", target_is_directory=True)  # a dangling one
    assert main(quick_run(tmp_path / "results", name="gone")) == 2
    assert "is a symbolic link" in one_line(capsys) and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped-store", "", ".", ".hidden"])
def test_a_store_name_that_is_not_one_folder_is_refused(tiny_store, tmp_path, capsys, name):
    """Found: a manifest name of `/some/other/folder` or `../..` put the results (and the clean-up) there."""
    import shutil

    from benchmark.__main__ import main

    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["name"] = name
    (store / "manifest.json").write_text(json.dumps(manifest))
    args = quick_run(tmp_path / "results", dataset=str(store))
    args.remove("--name"), args.remove("t")  # the folder is named after the store
    assert main(args) == 2
    assert "cannot name a results folder" in capsys.readouterr().err
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped-store").exists()
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_a_results_name_that_is_not_one_folder_is_refused(tmp_path, capsys):
    from benchmark.__main__ import main

    for name in ("../up", "a/b", ".", " ", " t", "t "):  # found (issue 45): --name ' ' made a folder named so
        assert main(quick_run(tmp_path / "results", name=name)) == 2
        assert "is one folder" in one_line(capsys)
    assert main(["plot", "--name", "../up", "--results-dir", str(tmp_path)]) == 2
    assert "is one folder" in one_line(capsys)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_the_clean_up_touches_only_the_locked_folders_own_temporaries(tmp_path):
    """Found: a run on --name nest deleted a temporary under results/nest/inner, another run's folder."""
    from benchmark.__main__ import main

    nest = tmp_path / "results" / "nest"
    (nest / "inner").mkdir(parents=True)
    (nest / "runs" / "uniform" / "seed0").mkdir(parents=True)
    theirs = nest / "inner" / ".table.md.abc123.tmp"
    ours = [nest / ".table.md.abc123.tmp", nest / "runs" / "uniform" / "seed0" / ".scores.npz.xyz.tmp"]
    for path in [theirs, *ours]:
        path.write_text("half-written")
    assert main(quick_run(tmp_path / "results", name="nest")) == 0
    assert theirs.exists() and not any(path.exists() for path in ours)


# ---------------------------------------------------------------------------- 4. labels, 5. plug-in outputs
@pytest.mark.parametrize("scores, counts, expected", [
    ("batch.labels", '{"classifier": ones}', "labels are for the loss"),  # found: 100.0 mAP at 1.7 GFLOPs
    ("torch.tensor(0.5)", '{"classifier": ones}', "scores have shape ()"),  # found: broadcast to every video
    ("logits.softmax(-1)", '{"classifier": -ones}', "whole, non-negative run counts"),  # found: subtracted cost
    ("logits.softmax(-1)", "{}", "step_counts lacks ['classifier']"),  # found: charged 0
    ("logits.softmax(-1)", '{"classifier": ones, "free": ones}', "cost_modules() does not declare"),
    ("logits.argmax(-1)", '{"classifier": ones}', "scores must be a float tensor"),
])
def test_a_plugins_output_is_checked_where_it_leaves_the_method(tmp_path, capsys, scores, counts, expected):
    from tests.benchmark.test_guarantees import error_line, plugin, run

    spec = plugin(tmp_path, "cheat", scores=scores, counts=counts)
    assert run(tmp_path, "--methods", spec, "--unchecked") == 2  # the run's own guard, past the conformance check
    line = error_line(capsys)
    assert expected in line and "'cheat'" in line


# ---------------------------------------------------------------------------- 6-7. what a folder holds
def test_the_report_refuses_a_folder_whose_pairs_are_gone(tmp_path, capsys, current_ablation):
    """Found: a deleted or truncated pair's row, latency and online curve stayed on the page, exit 0."""
    import shutil

    from benchmark.__main__ import main

    results = tmp_path / "results"
    shutil.copytree(current_ablation, results / "default-ablate-sync")
    readme = tmp_path / "README.md"
    readme.write_text(blank_readme())
    report = ["report", "--results-dir", str(results), "--out", str(tmp_path / "page.md"), "--readme", str(readme)]
    assert main(report) == 0
    (results / "default-ablate-sync" / "runs" / "liteeval-sync" / "seed1" / "scores.npz").unlink()
    assert main(report) == 2
    line = one_line(capsys)
    assert "liteeval-sync seed 1 (scores.npz is missing)" in line and "not complete on disk" in line
    shutil.rmtree(results / "default-ablate-sync" / "runs")  # a folder that kept its summary only says so
    assert main(report) == 0
    assert "Its method/seed pairs were not kept" in (tmp_path / "page.md").read_text()


def test_the_report_never_publishes_another_results_folder_over_the_repositorys_page(tmp_path, capsys):
    """Found: `report --results-dir /tmp/scratch` replaced the repository's README tables and
    docs/results.md with the scratch folder's (an empty one: every table gone), exit 0."""
    from benchmark.__main__ import main
    from datasets.common.gitinfo import REPO

    (tmp_path / "results" / "scratch").mkdir(parents=True)
    before = {p: (REPO / p).read_bytes() for p in ("README.md", "docs/results.md")}
    assert main(["report", "--results-dir", str(tmp_path / "results")]) == 2
    line = one_line(capsys)
    assert f"--results-dir {tmp_path / 'results'} is not this repository's results/" in line
    assert "pass --out and --readme" in line
    assert main(["report", "--results-dir", str(tmp_path / "results"), "--readme", str(REPO / "README.md")]) == 2
    assert "published docs/results.md with" in one_line(capsys)  # the page alone is refused too
    assert {p: (REPO / p).read_bytes() for p in before} == before


def test_a_report_to_out_writes_only_there(tmp_path, capsys):
    """Found (issue 46): `report --name mine --out /tmp/mine-report.md` also rewrote README.md."""
    from benchmark.__main__ import main
    from datasets.common.gitinfo import REPO

    before = {p: (REPO / p).read_bytes() for p in ("README.md", "docs/results.md")}
    page = tmp_path / "mine-report.md"
    assert main(["report", "--name", "real-clips", "--out", str(page)]) == 0  # a small folder: a quick page
    assert page.is_file() and "## Real video: LiteEval streaming a clip" in page.read_text()
    assert main(["report", "--name", "real-clips"]) == 2  # the repository's page publishes every committed folder
    assert "pass --out PAGE" in one_line(capsys)
    assert {p: (REPO / p).read_bytes() for p in before} == before


@pytest.mark.parametrize("command", ["online", "latency", "plot"])
def test_a_command_on_a_missing_results_folder_creates_nothing(command, tmp_path, capsys, monkeypatch):
    """Found: `online` and `latency` took the lock of a folder that was not there (creating it and
    its .lock) before failing on the missing pairs; and they generated the synthetic store first
    (about 20 s for `default`, minutes for `paper`) only to say so."""
    from benchmark.__main__ import main

    monkeypatch.setenv("LITEEVAL_DATA", str(tmp_path / "data"))  # where the preset's store would be generated
    argv = [command, "--name", "nosuch", "--results-dir", str(tmp_path / "results")]
    if command != "plot":
        argv += ["--dataset", "tiny"]
    assert main(argv) == 2
    assert f"{tmp_path / 'results' / 'nosuch'}: no such results folder" in one_line(capsys)
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


# ---------------------------------------------------------------------------- 8. settings in range
@pytest.mark.parametrize("config, expected", [
    ({"lstm": {"train": {"grad_clip": -1.0}}}, "grad_clip = -1.0 is out of range: it must be > 0"),  # found: ascent
    ({"lstm": {"hidden": 0}}, "hidden = 0 is out of range: it must be >= 1"),
    ({"lstm": {"dropout": 1.0}}, "dropout = 1.0 is out of range: it must be >= 0 and < 1"),
    ({"lstm": {"train": {"lr": 0.0}}}, "lr = 0.0 is out of range: it must be > 0"),
    ({"fastforward": {"jumps": [1, 0]}}, "jumps = [1, 0] is out of range: it must be >= 1"),
    ({"liteeval": {"gamma": float("nan")}}, "gamma = nan is out of range: it must be a finite number"),
    ({"liteeval": {"penalty": "frame"}}, "penalty = 'frame'; choose one of ['video', 'batch']"),
])
def test_settings_out_of_range_are_refused_naming_the_key(tmp_path, capsys, config, expected):
    from benchmark.__main__ import main

    path = tmp_path / "settings.json"
    path.write_text(json.dumps(config))
    method = next(iter(config))
    assert main(quick_run(tmp_path / "results", "--config", str(path), method=method)) == 2
    line = one_line(capsys)
    assert expected in line and f"'{method}'" in line


def test_an_infinite_budget_is_one_line(tmp_path, capsys):
    from benchmark.__main__ import main

    assert main(["-q", "run", "--dataset", "tiny", "--epochs", "inf", "--results-dir", str(tmp_path)]) == 2
    assert "--epochs inf: must be a positive, finite number" in one_line(capsys)


def test_every_numeric_setting_declares_its_bounds():
    """So a new method or setting cannot leave one unchecked (methods/base.py ``bounded``, ``choice``)."""
    import typing
    from dataclasses import fields

    from methods import TrainConfig, available_methods

    for owner in [TrainConfig, *(cls.Hparams for cls in available_methods().values())]:
        hints = typing.get_type_hints(owner)
        for f in fields(owner):
            numeric = any(t in (int, float) for t in (hints[f.name], *typing.get_args(hints[f.name]))
                          ) and hints[f.name] is not bool
            assert not numeric or "bounds" in f.metadata, f"{owner.__qualname__}.{f.name} has no bounds"
            # A setting that names a reading or a schedule lists its options (methods/base.py ``choice``).
            assert hints[f.name] is not str or "choices" in f.metadata, f"{owner.__qualname__}.{f.name} has no options"


# ---------------------------------------------------------------------------- 9. concurrent first use
def test_runs_started_at_once_on_a_new_machine_share_one_generated_store(tmp_path):
    """Found: of three runs that found the preset store missing, one failed (asking for an --overwrite run
    does not have) and another replaced the store under a run already using it."""
    env = {**environment(), "LITEEVAL_DATA": str(tmp_path / "data")}
    code = ("import logging; logging.basicConfig(level=logging.INFO)\n"
            "from benchmark.stores import resolve_store; print(resolve_store('tiny', 0, show_progress=False))")
    runs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], [err[-1500:] for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1
    assert sum("generating the 'tiny' synthetic store" in err for _, err in outputs) == 1


# ---------------------------------------------------------------------------- 10. one line, or a traceback
def test_a_diverging_loss_is_one_line(tmp_path, capsys):
    from tests.benchmark.test_guarantees import error_line, plugin, run

    spec = plugin(tmp_path, "diverges", extra="feature = feature * float('nan')")
    assert run(tmp_path, "--methods", spec, "--unchecked") == 2
    assert "the training loss became nan at step 1; lower the learning rate" in error_line(capsys)


@pytest.mark.parametrize("body, expected", [
    ("def broken(:\n", "SyntaxError at line 1"),
    ("import no_such_module_anywhere\n", "ModuleNotFoundError at line 1: No module named 'no_such_module_anywhere'"),
    ("x = 1\nraise RuntimeError('boom')\n", "RuntimeError at line 2: boom"),
])
def test_a_plugin_file_that_fails_to_import_is_one_line(tmp_path, capsys, body, expected):
    from tests.benchmark.test_guarantees import error_line, run

    path = tmp_path / "bad_plugin.py"
    path.write_text(body)
    assert run(tmp_path, "--methods", f"{path}:Bad") == 2
    line = error_line(capsys)
    assert f"plug-in file {path} could not be imported: {expected}" in line


def test_a_plugin_file_without_its_class_is_named_as_a_file(tmp_path, capsys):
    from tests.benchmark.test_guarantees import error_line, run

    assert run(tmp_path, "--methods", "docs/examples/coarse_mean.py") == 2
    assert "names a file but no class: pass it as docs/examples/coarse_mean.py:ClassName" in error_line(capsys)


def test_a_plugin_that_raises_in_forward_is_named_with_its_line(tmp_path, capsys):
    from tests.benchmark.test_guarantees import error_line, plugin, run

    spec = plugin(tmp_path, "raises", extra="feature = feature.reshape(7, -1, 3)")
    assert run(tmp_path, "--methods", spec, "--unchecked") == 2
    line = error_line(capsys)
    assert "method 'raises' raised RuntimeError in forward() at " in line and "raises.py:" in line


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the crafted file, expected here
def test_a_pickled_model_file_is_one_line_not_run(tmp_path, capsys):
    """Found: a pickle payload in model.pt (with its checksum updated) gave a traceback under online."""
    import hashlib
    import pickle

    from benchmark.__main__ import main
    from tests.benchmark.test_guarantees import error_line, pair, run

    assert run(tmp_path, "--methods", "uniform", "liteeval") == 0
    folder = pair(tmp_path, "liteeval")
    marker = tmp_path / "payload-ran"
    (folder / "model.pt").write_bytes(pickle.dumps(Payload(str(marker))))
    record = json.loads((folder / "record.json").read_text())
    record["files"]["model.pt"] = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    (folder / "record.json").write_text(json.dumps(record))
    code = main(["-q", "online", "--dataset", "tiny", "--methods", "uniform", "liteeval", "--seeds", "0",
                 "--steps", "2", "--max-k", "2", "--results-dir", str(tmp_path), "--name", "t"])
    assert code == 2 and "is not a plain state dict of tensors" in error_line(capsys)
    assert not marker.exists()


class Payload:
    """What a malicious model.pt would carry: code that runs when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path(self.marker).write_text, ("ran",))


def test_an_internal_error_is_a_traceback_not_a_user_line():
    """Found: a NumPy ValueError ('shape mismatch') printed as a bare `error:` line; only the suite's
    own errors (and the file system's) are one line."""
    import argparse

    from datasets.common.cli import run_cli

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=lambda args: int(__import__("numpy").zeros(2) + __import__("numpy").zeros(3)))
    with pytest.raises(ValueError, match="could not be broadcast"):
        run_cli(parser, [])


# ---------------------------------------------------------------------------- 11. lines that say what is wrong
def store_copy(tiny_store: Path, tmp_path: Path) -> Path:
    import shutil

    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    return store


def edit_manifest(store: Path, edit) -> None:
    manifest = json.loads((store / "manifest.json").read_text())
    edit(manifest)
    (store / "manifest.json").write_text(json.dumps(manifest))


def test_an_empty_split_and_unknown_manifest_keys_are_store_problems(tiny_store, tmp_path, capsys):
    """Found: an empty evaluation split passed validate and failed after training; unknown keys passed silently."""
    from datasets.__main__ import main as datasets_main
    from datasets.store.reader import FeatureStore

    store = store_copy(tiny_store, tmp_path)
    edit_manifest(store, lambda m: m["splits"].update(extra={"num_videos": 0, "labelled": True}))
    assert datasets_main(["validate", str(store)]) != 0
    captured = capsys.readouterr()
    assert "the split has 0 videos" in captured.out + captured.err
    edit_manifest(store, lambda m: (m["splits"].pop("extra"), m.update(nmae="typo"),
                                    m["streams"]["fine"].update(dimm=3)))
    with pytest.raises(Exception, match=r"unknown key\(s\) \['nmae'\]") as found:
        FeatureStore.open(store)
    assert "unknown key(s) ['dimm']" in str(found.value)


def test_a_store_whose_data_lies_outside_it_is_refused(tiny_store, tmp_path):
    """Found: an HDF5 file with external storage outside its folder was accepted."""
    import h5py

    from datasets.store.reader import FeatureStore

    store = store_copy(tiny_store, tmp_path)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(bytes(64))
    with h5py.File(store / "features.h5", "r+") as f:
        f.create_dataset("extras/elsewhere", shape=(4,), dtype="int64", external=[(str(outside), 0, 32)])
    with pytest.raises(Exception, match="'extras/elsewhere' stores its data in"):
        FeatureStore.open(store)
    with h5py.File(store / "features.h5", "r+") as f:
        del f["extras/elsewhere"]
        f["extras/link"] = h5py.ExternalLink(str(outside), "/x")
    with pytest.raises(Exception, match="'extras/link' is an external link"):
        FeatureStore.open(store)


@pytest.mark.parametrize("args, expected", [
    (["--train-split", "test"], "--train-split 'test': the training and evaluation splits are both 'test'"),
    (["--seeds", str(2**70)], "seeds must lie in [0, 2**32)"),
])
def test_unclear_lines_now_say_what_is_wrong(tmp_path, capsys, args, expected):
    from benchmark.__main__ import main

    base = ["-q", "run", "--dataset", "tiny", "--methods", "uniform", "--steps", "1", "--results-dir", str(tmp_path)]
    assert main([*base, *args]) == 2
    assert expected in one_line(capsys)


def test_an_unlabelled_split_is_refused_before_training(tiny_store, tmp_path, capsys):
    import h5py
    import numpy as np

    from benchmark.__main__ import main
    from datasets.store.checks import header_digest

    store = store_copy(tiny_store, tmp_path)
    with h5py.File(store / "features.h5", "r+") as f:
        splits = f["splits"][:].astype(str)
        labels = f["labels"][:]
        labels[splits == "test"] = 0
        f["labels"][...] = labels
        digest = header_digest(f["video_ids"][:].astype(str), splits, labels, f["offsets"][:])
    edit_manifest(store, lambda m: (m["splits"]["test"].update(labelled=False),
                                    m["checksums"].update(header_sha256=digest)))
    code = main(["-q", "run", "--dataset", str(store), "--methods", "uniform", "--steps", "1", "--eval-split", "test",
                 "--results-dir", str(tmp_path / "results")])
    assert code == 2 and "--eval-split 'test' carries no labels" in one_line(capsys)
    assert not list((tmp_path / "results").glob("*/runs/*/seed*/record.json")) and np.any(labels)


# ---------------------------------------------------------------------------- 4. one failing method
#: Plug-ins that fail mid-training, after the conformance check has passed them: one whose own code
#: raises at its second step, one whose loss becomes NaN there.
FAILING = '''
import torch

from docs.examples.coarse_mean import CoarseMean


class Raises(CoarseMean):
    name = "raises"
    display_name = "Raises"

    def on_step(self, step, steps):
        if step >= 1:
            raise RuntimeError("a bug in the plug-in")


class Diverges(CoarseMean):
    name = "diverges"
    display_name = "Diverges"

    def on_step(self, step, steps):
        self.step = step

    def loss(self, output, batch):
        loss, logs = super().loss(output, batch)
        return (loss * float("nan") if getattr(self, "step", 0) >= 1 else loss), logs
'''


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_one_failing_method_fails_its_rows_not_the_run(tmp_path, capsys, jobs):
    """Found (issue 45): a plug-in whose forward raised, or whose loss became NaN, stopped the whole run:
    later methods were never computed, and with --jobs 2 the pair in progress elsewhere was thrown away."""
    from benchmark import results
    from benchmark.__main__ import main

    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING)
    args = ["-q", "run", "--dataset", "tiny", "--methods", f"{plugin}:Raises", f"{plugin}:Diverges", "uniform",
            "--seeds", "0", "--steps", "4", "--jobs", jobs, "--results-dir", str(tmp_path / "r"), "--name", "f",
            "--unchecked"]  # the conformance check would refuse them before training: as the issue found them
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "2 of 3 pair(s) failed: " in err and "raises seed 0: " in err and "a bug in the plug-in" in err
    assert "the training loss became nan" in err and "or, for a plug-in, a bug in its forward or loss" in err
    folder = tmp_path / "r" / "f"
    assert results.pair_state(folder / "runs" / "uniform" / "seed0").done  # the method after them was computed
    table = (folder / "table.md").read_text()
    assert "| Uniform" in table and "| Raises" not in table and "Failed, so no row: raises seed 0: " in table
    assert set(json.loads((folder / "metrics.json").read_text())["failed"]) == {"raises seed 0", "diverges seed 0"}


FLAKY = '''
import os

from docs.examples.coarse_mean import CoarseMean


class Flaky(CoarseMean):
    name = "flaky"
    display_name = "Flaky"

    def on_step(self, step, steps):
        if os.environ.get("FLAKY_FAILS"):
            raise RuntimeError("the recomputation failed")
'''


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_failed_recomputation_of_a_complete_pair_is_a_failure_not_done(tmp_path, capsys, monkeypatch, jobs):
    """Found: a pair complete on disk but recomputed (--force, or stale under --refresh) whose
    recomputation failed was counted as done, since its old files were still complete: the run
    said nothing and exited 0, and a stopped run said such pairs were "done and kept"."""
    from benchmark import results
    from benchmark.__main__ import main

    plugin = tmp_path / "flaky.py"
    plugin.write_text(FLAKY)
    args = ["-q", "run", "--dataset", "tiny", "--methods", f"{plugin}:Flaky", "uniform", "--seeds", "0",
            "--steps", "2", "--jobs", jobs, "--results-dir", str(tmp_path / "r"), "--name", "f", "--unchecked"]
    assert main(args) == 0
    monkeypatch.setenv("FLAKY_FAILS", "1")  # the workers inherit it
    assert main([*args, "--force"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 pair(s) failed: flaky seed 0: " in err and "the recomputation failed" in err
    assert results.pair_state(tmp_path / "r" / "f" / "runs" / "flaky" / "seed0").done  # the old pair, untouched
    assert set(json.loads((tmp_path / "r" / "f" / "metrics.json").read_text())["failed"]) == {"flaky seed 0"}


def test_a_store_s_fingerprint_does_not_depend_on_where_its_extractor_s_weights_lay(tiny_store, tmp_path):
    """Found: an extracted store records the path of its backbones' checkpoint (in the venv), and
    the fingerprint hashed it: the same clips extracted with the same weights from another
    checkout were another store, and no pair trained on the first was recognised on it."""
    from benchmark.stores import dataset_fingerprint
    from datasets.store.reader import FeatureStore

    store = store_copy(tiny_store, tmp_path)

    def weights(path: str, sha: str):
        def edit(manifest):
            manifest["streams"]["fine"]["provenance"] = {"kind": "extract", "weights": {
                "random": False, "checkpoint": path, "sha256": sha}}
        edit_manifest(store, edit)
        return dataset_fingerprint(FeatureStore.open(store))

    here = weights("/home/me/.venv/lib/python3.11/site-packages/lite2.pth", "ab" * 32)
    assert weights("/tmp/clone/.venv/lib/python3.11/site-packages/lite2.pth", "ab" * 32) == here
    assert weights("/home/me/.venv/lib/python3.11/site-packages/lite2.pth", "cd" * 32) != here  # other weights
