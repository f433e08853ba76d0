"""``python -m benchmark reproduce`` (benchmark/reproduce.py) end to end on the tiny store: the
plan first, every stage run once, skipped when nothing changed, resumed after an interruption
between stages, and run again when its input changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.__main__ import main
from benchmark.reproduce import Options, reproduce

STAGES = ["tune", "table", "online", "curves", "plot"]


def _options(store: Path, root: Path) -> Options:
    return Options(dataset=str(store), results_dir=str(root), methods=["uniform", "liteeval"], seeds=[0],
                   trials=2, points=2, steps=2, jobs=1, device="cpu", stages=STAGES)


def test_reproduce_runs_each_stage_once_resumes_after_an_interruption_and_reruns_what_changed(tiny_store, tmp_path,
                                                                                               capsys):
    root = tmp_path / "results"
    options = _options(tiny_store, root)
    ran: list[str] = []

    def interrupted(argv: list[str]) -> int:
        if argv[0] == "online":
            raise KeyboardInterrupt  # the machine went away between stages
        ran.append(argv[0])
        return main(["-q", *argv])

    with pytest.raises(KeyboardInterrupt):
        reproduce(options, interrupted)
    plan = capsys.readouterr().out
    assert "reproduce tiny: 5 stages" in plan and "python -m benchmark tune --dataset" in plan
    assert ran == ["tune", "run"]
    assert (root / "tiny-tune" / "tuned.json").is_file() and (root / "tiny" / "table.md").is_file()
    record = json.loads((root / "tiny.reproduce.json").read_text())
    assert set(record["stages"]) == {"tune", "table"}

    ran.clear()

    def counting(argv: list[str]) -> int:
        ran.append(argv[0])
        return main(["-q", *argv])

    outcomes = reproduce(options, counting)  # resumes: the two finished stages are not run again
    assert [o["state"] for o in outcomes] == ["skipped", "skipped", "ran", "ran", "ran"]
    resumed = capsys.readouterr().out
    # LiteEval's sweep trains a model per point: timed by the pairs the first stages computed here.
    assert "time unknown" not in resumed and "on this kind of machine" in resumed
    assert ran == ["online", "curves", "plot"]
    assert (root / "tiny" / "online.csv").is_file() and (root / "tiny-curves" / "curves.csv").is_file()

    ran.clear()
    assert [o["state"] for o in reproduce(options, counting)] == ["skipped"] * 5 and ran == []
    assert "up to date, skipped" in capsys.readouterr().out

    # A changed input (the tuned settings) runs the stages that read it, and every stage after them.
    tuned = root / "tiny-tune" / "tuned.json"
    tuned.write_text(json.dumps({**json.loads(tuned.read_text()), "uniform": {"dropout": 0.3}}))
    assert [o["state"] for o in reproduce(options, counting)] == ["skipped", "ran", "ran", "ran", "ran"]


def test_the_plan_alone_and_an_unknown_stage(tiny_store, tmp_path, capsys):
    root = tmp_path / "results"
    args = ["reproduce", "--dataset", str(tiny_store), "--results-dir", str(root), "--methods", "uniform",
            "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reproduce tiny: " in out and "time unknown" in out  # no earlier pair to estimate by
    assert not root.exists()  # a dry run writes nothing
    with pytest.raises(SystemExit) as refused:  # argparse: one line naming the stages, exit 2
        main([*args, "--stages", "tabel"])
    assert refused.value.code == 2 and "invalid choice: 'tabel'" in capsys.readouterr().err


def test_refresh_recomputes_stale_pairs_and_keeps_fresh_ones(tiny_store, tmp_path):
    root = tmp_path / "results"
    args = ["-q", "run", "--dataset", str(tiny_store), "--methods", "uniform", "--seeds", "0", "1", "--steps", "2",
            "--results-dir", str(root), "--name", "r"]
    assert main(args) == 0
    records = {seed: root / "r" / "runs" / "uniform" / f"seed{seed}" / "record.json" for seed in (0, 1)}
    data = json.loads(records[1].read_text())
    data["code"]["files"]["methods/uniform.py"] = "0" * 16  # as if uniform.py changed after this pair
    records[1].write_text(json.dumps(data))
    before = {seed: path.stat().st_mtime_ns for seed, path in records.items()}
    assert main(args) == 0  # a plain rerun keeps the stale pair (and marks its row)
    assert json.loads(records[1].read_text())["code"]["files"]["methods/uniform.py"] == "0" * 16
    assert main([*args, "--refresh"]) == 0
    assert json.loads(records[1].read_text())["code"]["files"]["methods/uniform.py"] != "0" * 16
    assert records[0].stat().st_mtime_ns == before[0]  # the fresh pair was kept
