"""`python -m benchmark report`: the committed results page and headline are what it writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmark.presentation import report

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_results_page_and_headline_are_generated(monkeypatch):
    """The page, the README's blocks and every folder's table are what `report` writes now; and the
    build checks each pair once (found: `report` checked every pair twice, its audit then its
    tables, re-scoring each against its record: half of its 45 s on the committed folders)."""
    from tests.helpers import count_pair_reads

    reads = count_pair_reads(monkeypatch)
    built = report.build(REPO / "results")
    assert len(reads) > 100 and set(reads.values()) == {1}, "each pair is checked once"
    assert (REPO / "docs/results.md").read_text() == built.page, "run `python -m benchmark report`"
    readme = (REPO / "README.md").read_text()
    assert report.with_generated(readme, built) == readme, "run `python -m benchmark report`"
    for name, table in built.tables.items():  # each folder's table carries the marks it owes now
        assert (REPO / "results" / name / "table.md").read_text() == table, "run `python -m benchmark report`"


def test_outside_a_report_a_pair_is_read_afresh(tmp_path):
    """Nothing is remembered outside a report: a pair that changes is read as it is now."""
    from benchmark import results

    folder = tmp_path / "pair"
    folder.mkdir()
    assert not results.pair_state(folder).done and results.pair_state(folder).reason == "not computed"
    (folder / "scores.npz").write_bytes(b"half")
    assert results.pair_state(folder).reason.startswith("incomplete")


def test_report_writes_both_files_and_every_folder_gets_a_section(tmp_path, current_ablation):
    results = tmp_path / "results"
    shutil.copytree(current_ablation, results / "default-ablate-sync", ignore=shutil.ignore_patterns("runs"))
    (results / "mine").mkdir()
    (results / "mine" / "table.md").write_text("| Method | mAP (%) |\n|:--|:--|\n| Mine | 1.0 |\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.HEADLINE_START}\nWAS-HERE\n{report.HEADLINE_END}\nrest\n"
                      f"{report.CURVES_START}\nWAS-HERE\n{report.CURVES_END}\n"
                      f"{report.IN_SHORT_START}\nWAS-HERE\n{report.IN_SHORT_END}\n"
                      f"{report.STREAM_START}\nWAS-HERE\n{report.STREAM_END}\nend\n")
    report.write(results, tmp_path / "results.md", readme)
    page = (tmp_path / "results.md").read_text()
    assert "## Table 2: synchronisation" in page and "## `mine`" in page and "| Mine | 1.0 |" in page
    assert "WAS-HERE" not in readme.read_text() and readme.read_text().endswith(f"{report.STREAM_END}\nend\n")
    assert "no `results/default/table.csv` yet" in readme.read_text()
    assert "no `results/real-clips/stream-bikes.json` yet" in readme.read_text()
    assert "`results/default-curves` is not published" in readme.read_text()


def test_a_readme_without_the_markers_is_refused_with_the_fix(tmp_path):
    (tmp_path / "results").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="has no markers"):
        report.write(tmp_path / "results", tmp_path / "results.md", readme)
    assert readme.read_text() == "no markers here\n"  # nothing half-written


def test_the_page_publishes_the_committed_folders_or_the_ones_named(tmp_path):
    """Found: `report` put every folder under results/ on the page, a user's scratch runs included."""
    import subprocess

    results = tmp_path / "results"
    for name in ("kept", "scratch"):
        (results / name).mkdir(parents=True)
        (results / name / "table.md").write_text(f"| Method | mAP (%) |\n|:--|:--|\n| {name} row | 1.0 |\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "results/kept"], cwd=tmp_path, check=True)
    readme = tmp_path / "README.md"
    readme.write_text(f"{report.HEADLINE_START}\n{report.HEADLINE_END}\n{report.CURVES_START}\n{report.CURVES_END}\n"
                      f"{report.IN_SHORT_START}\n{report.IN_SHORT_END}\n{report.STREAM_START}\n{report.STREAM_END}\n")
    report.write(results, tmp_path / "results.md", readme)
    page = (tmp_path / "results.md").read_text()
    assert "kept row" in page and "scratch row" not in page
    report.write(results, tmp_path / "results.md", readme, ["scratch"])
    page = (tmp_path / "results.md").read_text()
    assert "scratch row" in page and "kept row" not in page
    with pytest.raises(ValueError, match="--name nope: no such results folder"):
        report.write(results, tmp_path / "results.md", readme, ["nope"])


def test_a_folder_of_notes_alone_does_not_claim_a_machine(tmp_path):
    """Found: a study folder holding only notes.md (its runs nested below) was shown as "last written
    by: no GPU", a machine line made of nothing."""
    from benchmark.presentation.report import _section

    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "notes.md").write_text("A study of nested runs.\n")
    text = _section(folder, "study", None)
    assert "last written by: no provenance.json of its own" in text and "no GPU" not in text
