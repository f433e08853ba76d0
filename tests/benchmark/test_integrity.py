"""Selection never reads the evaluation split, in any process; provenance and staleness tell the truth.

The tuning runs here poison the evaluation split on disk (labels shuffled, every frame NaN):
a choice that depends on it in any way (serial, two worker processes, two torchrun ranks)
comes out different or fails, one that does not is identical to the clean store's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.__main__ import main
from benchmark.config import RunConfig
from benchmark.context import RunContext
from benchmark.protocol.budget import Budget
from datasets.loading.bank import FeatureBank
from datasets.loading.guard import SplitNotAllowedError, only_splits, restrict_splits
from tests.helpers import blank_readme, poison_split

REPO = Path(__file__).resolve().parents[2]
TUNE = ["-q", "tune", "--methods", "uniform", "liteeval", "--trials", "2", "--steps", "3", "--validations", "2"]


@pytest.fixture(autouse=True)
def data_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LITEEVAL_DATA", str(tmp_path_factory.getbasetemp() / "data-cache"))


@pytest.fixture(scope="module")
def poisoned(tiny_store, tmp_path_factory) -> Path:
    return poison_split(tiny_store, tmp_path_factory.mktemp("poisoned") / "tiny", "test")


def choice(root: Path, name: str = "tiny-tune") -> dict:
    """What a tune chose and every number it chose from (the trials' records say where they were scored)."""
    out = root / name
    record = json.loads((out / "tune.json").read_text())
    scored = {p.parent.parent.name + "/" + p.parent.name: json.loads(p.read_text())["evaluated_on"]
              for p in out.glob("runs/*/seed*/record.json")}
    return {"chosen": json.loads((out / "tuned.json").read_text()), "trials": record["trials"], "scored": scored}


@pytest.fixture(scope="module")
def clean_choice(tiny_store, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("clean-tune")
    assert main([*TUNE, "--dataset", str(tiny_store), "--jobs", "1", "--results-dir", str(root)]) == 0
    found = choice(root)
    assert set(found["scored"].values()) == {"validation"} and len(found["scored"]) == 4
    return found


def test_tune_with_two_workers_chooses_on_validation_whatever_the_test_split_holds(clean_choice, poisoned, tmp_path):
    assert main([*TUNE, "--dataset", str(poisoned), "--jobs", "2", "--results-dir", str(tmp_path)]) == 0
    provenance = json.loads((tmp_path / "tiny-tune" / "provenance.json").read_text())
    assert provenance["execution"]["jobs"] == 2  # the pairs really ran in two worker processes
    assert choice(tmp_path) == clean_choice  # every trial on validation, every number and the choice identical


def test_tune_on_two_torchrun_ranks_chooses_on_validation(clean_choice, poisoned, tmp_path):
    env = {**os.environ, "LITEEVAL_PROGRESS": "0", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "benchmark",
         *TUNE, "--dataset", str(poisoned), "--device", "cpu", "--results-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best settings written to") == 1  # rank 0 alone chooses and prints
    provenance = json.loads((tmp_path / "tiny-tune" / "provenance.json").read_text())
    assert provenance["execution"]["world_size"] == 2
    assert choice(tmp_path) == clean_choice


def test_a_selection_run_cannot_name_or_load_the_evaluation_split(tiny_store, tmp_path, capsys):
    cfg = RunConfig(dataset=str(tiny_store), methods=["uniform"], seeds=[0], budget=Budget(steps=2),
                    results_root=str(tmp_path), show_progress=False, selection=True)
    ctx = RunContext.create(cfg)
    assert ctx.eval_split is None and ctx.scored_on == "validation"
    with pytest.raises(ValueError, match="no evaluation split"):
        ctx.bank(ctx.eval_split)
    # While it runs, no bank of another split loads in this process (nor in its workers: parallel.py).
    with ctx.guard(), pytest.raises(SplitNotAllowedError, match="split 'test' may not be loaded here"):
        FeatureBank(tiny_store, "test", device="cpu", show_progress=False)
    FeatureBank(tiny_store, "test", device="cpu", show_progress=False)  # outside it, nothing is restricted
    with pytest.raises(ValueError, match="never names the evaluation split"):
        replace(cfg, eval_split="test")
    # At the command line: tune has no --eval-split, and a refused split is one line, exit 2.
    with pytest.raises(SystemExit):
        main(["tune", "--eval-split", "test"])
    capsys.readouterr()
    with only_splits({"train"}, "a test says so"):
        code = main(["-q", "run", "--dataset", str(tiny_store), "--methods", "uniform", "--seeds", "0", "--steps",
                     "1", "--jobs", "1", "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "split 'test' may not be loaded here; a test says so" in err


def test_a_worker_of_a_selection_run_is_restricted_for_its_life(tiny_store, tmp_path):
    from benchmark import parallel

    cfg = RunConfig(dataset=str(tiny_store), methods=["uniform"], seeds=[0], results_root=str(tmp_path),
                    show_progress=False, selection=True)
    try:
        parallel._start_worker(cfg, RunContext.create(cfg).plans, 1)
        with pytest.raises(SplitNotAllowedError):
            FeatureBank(tiny_store, "test", device="cpu", show_progress=False)
    finally:
        restrict_splits(None)
        parallel._WORKER = None


def test_tune_refuses_trials_that_were_not_scored_on_validation(tiny_store, tmp_path, capsys):
    args = [*TUNE, "--dataset", str(tiny_store), "--jobs", "1", "--results-dir", str(tmp_path)]
    assert main(args) == 0
    record = tmp_path / "tiny-tune" / "runs" / "liteeval-trial1" / "seed0" / "record.json"
    data = json.loads(record.read_text())
    data["evaluated_on"] = "test"  # what the parallel tune wrote before the fix
    record.write_text(json.dumps(data))
    # The checksums do not cover metrics.json itself: the pair still counts as done, and tune refuses it.
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "liteeval-trial1 seed 0 (test) were not scored on the validation part" in err


def test_store_errors_cross_from_a_worker_process_as_themselves():
    """A worker's error reaches the parent through pickle; it must arrive as the same one line."""
    import pickle

    from datasets.common.errors import Problem, StoreValidationError

    error = StoreValidationError("/stores/x", [Problem("features.h5", "NaN in 3 frames", "rebuild it")])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is StoreValidationError and str(again) == str(error) and again.problems == error.problems
    refused = pickle.loads(pickle.dumps(SplitNotAllowedError("split 'test' may not be loaded here")))
    assert str(refused) == "split 'test' may not be loaded here"


# ---------------------------------------------------------------------------- provenance and staleness
def copy_of_the_suite(root: Path) -> Path:
    """The suite's code (not its results) as a fresh git repository of its own, to edit freely."""
    import shutil

    repo = root / "suite"
    for part in ("benchmark", "datasets", "methods", "docs/examples"):
        shutil.copytree(REPO / part, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def test_an_edit_under_methods_makes_provenance_dirty_and_the_row_stale(tmp_path, tmp_path_factory):
    repo = copy_of_the_suite(tmp_path)
    env = {**os.environ, "LITEEVAL_PROGRESS": "0", "LITEEVAL_DATA": str(tmp_path_factory.getbasetemp() / "data-cache")}
    results = tmp_path / "results"
    command = [sys.executable, "-m", "benchmark", "-q", "run", "--dataset", "tiny", "--methods", "uniform", "lstm",
               "--seeds", "0", "--steps", "2", "--jobs", "1", "--results-dir", str(results)]

    def run() -> subprocess.CompletedProcess:
        done = subprocess.run(command, cwd=repo, capture_output=True, text=True, env=env, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    first = run()
    assert "STALE" not in first.stderr and "(stale)" not in (results / "tiny" / "table.md").read_text()
    assert json.loads((results / "tiny" / "provenance.json").read_text())["git"]["dirty"] is False
    record = json.loads((results / "tiny" / "runs" / "lstm" / "seed0" / "record.json").read_text())
    assert "methods/lstm.py" in record["code"]["files"] and "benchmark/training.py" in record["code"]["files"]
    assert "methods/uniform.py" not in record["code"]["files"]  # one method's edit leaves another's rows alone

    lstm = repo / "methods" / "lstm.py"
    original = lstm.read_text()
    lstm.write_text(original + "\n_AN_EDIT = 'that may change what the method computes'\n")
    second = run()  # nothing is recomputed without --force; the stale pair is named, kept and marked
    assert "lstm seed 0: kept, but STALE: changed since: methods/lstm.py" in second.stderr
    assert "uniform seed 0: kept, but STALE" not in second.stderr
    table = (results / "tiny" / "table.md").read_text()
    assert "| LSTM (stale) " in table and "| Uniform " in table and "Uniform (stale)" not in table
    assert "LSTM: changed since: methods/lstm.py" in table
    assert json.loads((results / "tiny" / "provenance.json").read_text())["git"]["dirty"] is True

    # The report judges staleness against the code as it is when the report is written.
    readme = tmp_path / "README.md"
    readme.write_text(blank_readme())
    report = [sys.executable, "-m", "benchmark", "report", "--results-dir", str(results), "--out",
              str(tmp_path / "page.md"), "--readme", str(readme)]
    subprocess.run(report, cwd=repo, check=True, capture_output=True, env=env, timeout=300)
    page = (tmp_path / "page.md").read_text()  # a stale folder is withheld, with why; its table says which row
    assert "results/tiny: stale: 1 of 2 pairs (lstm seed 0) changed since: methods/lstm.py" in page
    assert "| LSTM (stale) " not in page and "| LSTM (stale) " in (results / "tiny" / "table.md").read_text()
    lstm.write_text(original)  # the same code again: the pair is current again, and published
    subprocess.run(report, cwd=repo, check=True, capture_output=True, env=env, timeout=300)
    page = (tmp_path / "page.md").read_text()
    assert "(stale)" not in page and "| LSTM " in page and "results/tiny: stale" not in page


def test_a_preset_or_its_origin_is_settings_not_code_to_the_fingerprint(tmp_path):
    """Adopting the values a new tune chose (or citing its record) leaves pairs current: the pair
    records its settings and another configuration is caught on that ground; any other edit counts."""
    from benchmark.code_fingerprint import file_hash

    source = tmp_path / "method.py"
    template = (
        "from methods.base import Origin, Preset\n\n"
        "#: where it was chosen\n"
        "TUNE = Origin({record!r}, ('dropout',), scored_on='validation', date='2026-12-02')\n\n\n"
        "class Method:\n"
        "    # chosen by TUNE\n"
        "    presets = {{'default': Preset({{'dropout': {dropout},\n"
        "                                   'train': {{'lr': 1e-3}}}}, (TUNE,))}}\n\n"
        "    def forward(self, x):\n"
        "        return {body}\n"
    )

    def digest(**changes) -> str:
        source.write_text(template.format(**{"record": "a-tune", "dropout": 0.5, "body": "x", **changes}))
        return file_hash(source)

    first = digest()
    assert digest(dropout=0.2) == first and digest(record="another-tune") == first
    assert digest(body="2 * x") != first
    source.write_text("x = 1\nclass Method: presets = {'default': {}}\n")  # a declaration sharing its line
    shared = file_hash(source)
    source.write_text("x = 1\nclass Method: presets = {'default': {'dropout': 0.1}}\n")
    assert file_hash(source) != shared


def test_comments_and_docstrings_are_not_code_to_the_fingerprint_but_every_statement_is(tmp_path):
    """Mending a comment or a docstring must not stale hours of results (scheme 2)."""
    from benchmark.code_fingerprint import file_hash

    source = tmp_path / "method.py"
    base = ('"""What the method does."""\nimport math  # why\n\n\nclass Method:\n    """Its docstring."""\n\n'
            '    def forward(self, x):\n        # a comment\n        tag = "# not a comment"\n'
            '        text = """a value   \n\nover lines"""  # blank lines and spaces in it count\n'
            '        return math.tanh(x) + 1  # "quoted" in a comment\n')

    def digest(*edit: str) -> str:
        source.write_text(base.replace(*edit) if edit else base)
        return file_hash(source)

    first = digest()
    for edit in (("# why", "# because"), ("Its docstring.", "Another docstring,\n    on two lines."),
                 ("\n\n\nclass", "\n\nclass"), ("+ 1  #", "+ 1      #"), ("        # a comment\n", ""),
                 ('"quoted"', "unquoted"), ('lines"""  #', 'lines"""#')):
        assert digest(*edit) == first, edit
    for edit in (("+ 1", "+ 2"), ("tanh", "sinh"), ("# not a comment", "# no comment"),
                 ("import math", "import cmath"), ("value   \n\n", "value   \n"), ("value   ", "value")):
        assert digest(*edit) != first, edit
    source.write_bytes(base.replace("\n", "\r\n").encode())  # a Windows checkout
    assert file_hash(source) == first


def test_a_tuning_folder_scored_on_the_test_split_is_named_and_every_shipped_choice_was_made_on_validation(tmp_path):
    from benchmark import preset_origin
    from benchmark.presentation import audit

    record = tmp_path / "default-tune"
    record.mkdir()
    (record / "tune.json").write_text(json.dumps({"schema_version": 2, "trials": []}))
    committed = json.loads((preset_origin.RESULTS / "default/runs/uniform/seed0/record.json").read_text())
    trials = {"uniform-trial0": {"0": {**committed, "evaluated_on": "test"}}}
    (record / "metrics.json").write_text(json.dumps({"schema_version": 2, "per_seed": trials}))
    assert [p.kind for p in audit._selection("default-tune", record)] == ["selection on test"]
    trials["uniform-trial0"]["0"]["evaluated_on"] = "validation"  # the same record, chosen on validation
    (record / "metrics.json").write_text(json.dumps({"schema_version": 2, "per_seed": trials}))
    assert audit._selection("default-tune", record) == []

    # The committed records: every shipped choice was made on validation (issue 31's re-tune).
    assert {c.folder for c in preset_origin.choices() if c.scored_on != "validation"} == set()
    assert preset_origin.scored_on(preset_origin.RESULTS / "default-tune") == "validation"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_selection_run_refuses_to_train_on_an_evaluation_split(tiny_store, tmp_path, capsys, jobs):
    """Found (issue 44): `tune --train-split test` carved its validation part out of the test split,
    and its record still said "validation"."""
    assert main(["-q", "tune", "--dataset", str(tiny_store), "--methods", "uniform", "--trials", "1", "--steps", "2",
                 "--train-split", "test", "--jobs", jobs, "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--train-split test: a table evaluates on 'test'" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_each_pair_records_the_checkout_as_it_was_when_that_pair_was_computed(tiny_store, tmp_path, monkeypatch):
    """Found (issue 44): the git state was read once when a run started, so pairs computed after
    their method file was edited said `dirty: false`. It is read for each record that names it."""
    from benchmark import provenance

    states = iter({"commit": f"c{k}", "dirty": bool(k % 2)} for k in range(100))
    monkeypatch.setattr(provenance, "git_state", lambda: next(states))
    assert main(["-q", "run", "--dataset", str(tiny_store), "--methods", "uniform", "--seeds", "0", "1",
                 "--steps", "2", "--results-dir", str(tmp_path), "--name", "g"]) == 0
    recorded = [json.loads((tmp_path / "g" / "runs" / "uniform" / f"seed{s}" / "record.json").read_text())
                ["computed"]["git"] for s in (0, 1)]
    assert recorded[0] != recorded[1]  # each pair asked when it was computed, not once for the run
    later = json.loads((tmp_path / "g" / "provenance.json").read_text())["git"]
    assert int(later["commit"][1:]) > max(int(r["commit"][1:]) for r in recorded)
