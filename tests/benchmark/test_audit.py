"""``python -m benchmark report --check`` (benchmark/presentation/audit.py): a folder that a
command of the current code produced passes; each defect a published table can carry is named,
one line per problem, and the command exits 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.__main__ import main
from benchmark.presentation.audit import check_folder
from benchmark.results import SUMMARY


@pytest.fixture(scope="module")
def clean_run(tiny_store, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audit")
    assert main(["-q", "run", "--dataset", str(tiny_store), "--methods", "uniform", "--seeds", "0", "1",
                 "--steps", "2", "--results-dir", str(root), "--name", "clean"]) == 0
    return root / "clean"


@pytest.fixture
def run(clean_run, tmp_path) -> Path:
    copy = tmp_path / "results" / "run"
    shutil.copytree(clean_run, copy)
    return copy


def _edit_summary(folder: Path, edit) -> None:
    """Make the pairs say something else, in the summary and in each pair's record alike (as a pair
    computed so would): the summary is checked against the records (the "edited" kind)."""
    data = json.loads((folder / SUMMARY).read_text())
    edit(data["per_seed"])
    (folder / SUMMARY).write_text(json.dumps(data))
    for label, seeds in data["per_seed"].items():
        for seed, entry in seeds.items():
            (folder / "runs" / label / f"seed{seed}" / "record.json").write_text(json.dumps(entry))


def test_published_files_are_checked_against_the_pairs(run, capsys):
    """Found (issue 45): one byte changed in table.md, or the summary alone edited, passed --check and was published."""
    table = (run / "table.md").read_text()
    shown = table.split("\n")[2].split("|")[3].strip()  # Uniform's mAP cell
    (run / "table.md").write_text(table.replace(f"| {shown} ", f"| 9{shown[1:]} ", 1))
    problems = check_folder(run)
    assert [p.kind for p in problems] == ["edited"] and f"table.md's mAP (%) of Uniform (9{shown[1:]})" in \
        problems[0].detail
    (run / "table.md").write_text(table)
    data = json.loads((run / SUMMARY).read_text())
    data["summary"]["uniform"]["map_percent"]["mean"] += 30
    (run / SUMMARY).write_text(json.dumps(data))
    assert "metrics.json's map_percent of uniform is not the mean of its seeds" in check_folder(run)[0].detail
    data["summary"]["uniform"]["map_percent"]["mean"] -= 30
    data["per_seed"]["uniform"]["1"]["map"] = 0.99  # the summary's copy of a pair, not the pair's record
    (run / SUMMARY).write_text(json.dumps(data))
    assert "metrics.json's uniform seed 1 is not its record.json" in check_folder(run)[0].detail
    assert main(["report", "--check", "--results-dir", str(run.parent), "--name", "run"]) == 1


def test_a_summary_without_all_its_tables_is_incomplete(run):
    """Found (issue 45): the disk filled while the summary was written; table.csv and table.tex were missing."""
    (run / "table.csv").unlink()
    (run / "table.tex").unlink()
    problems = check_folder(run)
    assert [p.kind for p in problems] == ["incomplete"] and "no table.csv, table.tex" in problems[0].detail


def _kinds(folder: Path) -> list[str]:
    return [p.kind for p in check_folder(folder)]


def test_a_folder_the_current_code_made_passes(run, capsys, monkeypatch, caplog):
    import logging

    from datasets.common import progress

    assert check_folder(run) == []
    monkeypatch.setenv(progress.MODE_VARIABLE, "log")  # as in a log file: every folder's progress, timestamped
    monkeypatch.setenv(progress.INTERVAL_VARIABLE, "0")
    with caplog.at_level(logging.INFO, logger="progress"):
        assert main(["report", "--check", "--results-dir", str(run.parent), "--name", "run"]) == 0
    assert "1 published folders, every one passes" in capsys.readouterr().out
    assert any(r.getMessage().startswith("report --check: done, 1 folder in") for r in caplog.records)


def test_a_pair_from_changed_code_is_stale(run):
    _edit_summary(run, lambda per_seed: per_seed["uniform"]["1"]["code"]["files"].update(
        {"methods/uniform.py": "0" * 16}))
    problems = check_folder(run)
    assert [p.kind for p in problems] == ["stale"]
    assert "1 of 2 pairs (uniform seed 1) changed since: methods/uniform.py" in problems[0].line()
    line = problems[0].line()
    assert "recompute them (and only them) with `python -m benchmark -q run --dataset " in line
    assert line.endswith("--name clean --refresh`")
    # The command the folder records, with --refresh (its stale pairs) rather than --force (every pair).
    provenance = json.loads((run / "provenance.json").read_text())
    provenance["command"] = "python -m benchmark tune --methods uniform --space '{\"dropout\": [0, 0.5]}' --force"
    (run / "provenance.json").write_text(json.dumps(provenance))
    assert check_folder(run)[0].line().endswith(
        "with `python -m benchmark tune --methods uniform --space '{\"dropout\": [0, 0.5]}' --refresh`")


def test_the_recorded_command_can_be_pasted_into_a_shell(monkeypatch):
    """Found: provenance.json recorded the words joined by spaces, so a --space of JSON lost its quotes."""
    import shlex
    import sys

    from benchmark import provenance

    argv = ["tune", "--space", '{"explore": [0, 0.1]}', "--name", "my study"]
    monkeypatch.setattr(sys, "argv", ["/x/benchmark/__main__.py", *argv])
    assert shlex.split(provenance.invocation()) == ["python", "-m", "benchmark", *argv]
    with provenance.running(argv):
        assert shlex.split(provenance.invocation()) == ["python", "-m", "benchmark", *argv]


def test_pairs_from_two_kinds_of_machine_in_one_table(run):
    _edit_summary(run, lambda per_seed: per_seed["uniform"]["0"]["computed"]["platform"].update(cpu="Other CPU"))
    problems = check_folder(run)
    assert [p.kind for p in problems] == ["machines"]
    assert "2 kinds of machine" in problems[0].detail and "Other CPU, cpu (1 pairs)" in problems[0].detail


def test_pairs_on_disk_the_table_leaves_out_and_pairs_it_shows_that_are_not_there(run):
    shutil.copytree(run / "runs" / "uniform" / "seed0", run / "runs" / "uniform" / "seed7")
    (run / "runs" / "uniform" / "seed1" / "scores.npz").unlink()
    problems = {p.kind: p.detail for p in check_folder(run)}
    assert set(problems) == {"uncovered", "unbacked"}
    assert "(uniform seed 7)" in problems["uncovered"] and "uniform seed 1" in problems["unbacked"]


def test_a_tune_scored_on_the_test_split_is_named_and_the_command_exits_1(run, capsys):
    _edit_summary(run, lambda per_seed: [r.update(evaluated_on="test") for r in per_seed["uniform"].values()])
    (run / "tune.json").write_text("{}")
    assert _kinds(run) == ["selection on test"]
    assert main(["report", "--check", "--results-dir", str(run.parent), "--name", "run"]) == 1
    out = capsys.readouterr().out
    assert f"{run}: selection on test: its trials were scored on test" in out  # the folder where it is
    assert "1 problem(s) in 1" in out


def test_a_folder_with_pairs_and_no_table_or_rows_and_no_pairs(run):
    summary = json.loads((run / SUMMARY).read_text())
    (run / SUMMARY).unlink()  # pairs on disk that no table shows (a run stopped before its summary)
    problems = check_folder(run)
    assert [p.kind for p in problems] == ["uncovered"] and "2 pairs done on disk and no table" in problems[0].detail
    shutil.rmtree(run / "runs")
    assert check_folder(run) == []  # notes alone: nothing to check
    (run / SUMMARY).write_text(json.dumps({"summary": summary["summary"]}))  # rows whose pairs were not kept
    problems = check_folder(run)
    assert [p.kind for p in problems] == ["unbacked"] and "no pair records" in problems[0].detail


def test_the_page_and_readme_show_only_folders_the_check_passes(run, tmp_path):
    from benchmark.presentation import report
    from tests.helpers import blank_readme

    results = run.parent
    shutil.copytree(run, results / "default")  # the main job's folder, as the README's headline reads it
    _edit_summary(results / "default", lambda per_seed: per_seed["uniform"]["1"]["code"]["files"].update(
        {"methods/uniform.py": "0" * 16}))
    readme = tmp_path / "README.md"
    readme.write_text(blank_readme())
    built = report.write(results, tmp_path / "page.md", readme, ["run", "default"])
    assert "## `run`" in built.page and "## Table 1 and the extended suite" not in built.page
    assert f"## {report.WITHHELD_TITLE}" in built.page and "results/default: stale: 1 of 2 pairs" in built.page
    assert "`results/default/` is not published" in readme.read_text() and "| Uniform" not in readme.read_text()
    shutil.copy(run / SUMMARY, results / "default" / SUMMARY)  # recomputed by the current code: published again
    shutil.copytree(run / "runs", results / "default" / "runs", dirs_exist_ok=True)
    built = report.write(results, tmp_path / "page.md", readme, ["run", "default"])
    assert report.WITHHELD_TITLE not in built.page and "| Uniform" in readme.read_text()


def test_online_curves_read_from_models_computed_again_since_are_named(run):
    per_seed = json.loads((run / SUMMARY).read_text())["per_seed"]
    computed = per_seed["uniform"]["1"]["computed"]["at"]

    def write_online(written: str, weights: list[str]) -> None:
        (run / "online.json").write_text(json.dumps({"written": written, "weights": {w: "model.pt" for w in weights}}))

    write_online("9999-01-01T00:00:00+00:00", ["uniform/seed0", "uniform/seed1"])
    assert check_folder(run) == []  # curves written after every model they read
    write_online("2000-01-01T00:00:00+00:00", ["uniform/seed1"])
    (problem,) = check_folder(run)
    assert problem.kind == "stale curves"
    assert "uniform seed 1" in problem.detail and "benchmark online" in problem.detail
    assert computed > "2000-01-01T00:00:00+00:00"
    write_online("9999-01-01T00:00:00+00:00", ["uniform/seed0", "lstm/seed0"])  # a model the table no longer shows
    assert [p.detail.count("lstm seed 0") for p in check_folder(run)] == [1]


def test_runs_lists_each_folder_with_its_state(run, capsys):
    """Issue 46: no command listed the runs (name, dataset, methods, seeds, machine, state)."""
    assert main(["-q", "list-runs", "--results-dir", str(run.parent)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("| run "))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[1].startswith("tiny (") and cells[2:6] == ["1", "0 1", "2", "2"] and cells[-1].startswith("ok")
    (run / "runs" / "uniform" / "seed1" / "model.pt").unlink()  # as in a clone: git keeps no weights
    assert main(["-q", "list-runs", "--results-dir", str(run.parent)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| run "))
    assert [c.strip() for c in line.split("|")[1:-1]][4:6] == ["2", "1"]
    _edit_summary(run, lambda per_seed: per_seed["uniform"]["1"]["code"]["files"].update(
        {"methods/uniform.py": "0" * 16}))
    assert main(["-q", "list-runs", "--results-dir", str(run.parent)]) == 0
    assert "| stale" in capsys.readouterr().out


def test_list_runs_checks_each_pair_once(run, monkeypatch):
    """Found: `list-runs` took 74 s on the committed results, twice `report --check`: its audit of
    a folder asked about each pair several times and re-scored it each time."""
    from benchmark.presentation.runs import frame
    from tests.helpers import count_pair_reads

    reads = count_pair_reads(monkeypatch)
    assert len(frame(run.parent)) == 1
    assert len(reads) == 2 and set(reads.values()) == {1}, reads


def test_the_printed_table_fits_a_terminal_and_the_caption_explains_its_columns(tiny_store, tmp_path, capsys):
    """Found (issue 46): `run` printed a 269-column table, and nothing said what "mAP interp." or
    "Evidence lift" are. The terminal gets the main columns and where the full table is; the
    table's caption explains the columns a name cannot."""
    assert main(["-q", "run", "--dataset", str(tiny_store), "--methods", "uniform", "liteeval", "--seeds", "0",
                 "--steps", "2", "--results-dir", str(tmp_path), "--name", "wide"]) == 0
    printed = capsys.readouterr().out
    table = printed.split("\n\n")[0].splitlines()
    assert len(table) == 4 and max(map(len, table)) <= 100, printed
    assert table[-1].startswith("LiteEval") and "Evidence lift" not in printed
    assert f"its caption and marks: {tmp_path / 'wide' / 'table.md'}" in printed
    written = (tmp_path / "wide" / "table.md").read_text()
    assert "| Evidence lift" in written and "mAP interp.: mAP with precision interpolated" in written
    assert "Evidence lift (synthetic stores): the evidence frames" in written
