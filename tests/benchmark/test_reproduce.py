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
    # Each stage says which pairs it computed and which it kept (issue 44): all computed here.
    assert record["stages"]["table"]["pairs"]["kept"] == 0 and record["stages"]["table"]["pairs"]["computed"] > 0

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

    # A changed input (the tuned settings) runs the stages that read it, and every stage after them;
    # in a fresh clone (no weights: not committed) too. Found: online stopped on the missing weights.
    weights = sorted((root / "tiny" / "runs").rglob("model.pt"))
    assert weights
    for path in weights:
        path.unlink()
    tuned = root / "tiny-tune" / "tuned.json"
    tuned.write_text(json.dumps({**json.loads(tuned.read_text()), "uniform": {"dropout": 0.3}}))
    assert [o["state"] for o in reproduce(options, counting)] == ["skipped", "ran", "ran", "ran", "ran"]
    table = json.loads((root / "tiny.reproduce.json").read_text())["stages"]["table"]["pairs"]
    assert table["computed"] > 0 and table["kept"] == 0  # uniform's pairs again, LiteEval's for their weights
    assert all(path.is_file() for path in weights)


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


@pytest.mark.parametrize("flags, said", [
    (["--dataset", "nosuch"], "--dataset 'nosuch' is neither a synthetic preset"),
    (["--jobs", "0"], "--jobs must be >= 1, got 0"),  # found: silently dropped (the default ran instead)
    (["--jobs", "-1"], "--jobs must be >= 1, got -1"),  # found: planned, refused hours later by the tune
    (["--tune-seeds", "-1"], "--tune-seeds -1: seeds must lie in [0, 2**32)"),
    (["--trials", "0"], "--trials 0: must be at least 1"),
    (["--points", "1"], "--points 1: a curve needs at least 2 points"),
    (["--steps", "0"], "--steps 0: must be a positive number of steps"),
])
def test_a_plan_with_a_flag_its_stages_would_refuse_is_refused_before_it_is_printed(flags, said, tiny_store,
                                                                                   tmp_path, capsys):
    """Found: `reproduce --dataset nosuch --dry-run` printed a plan with estimates and exit 0, and
    `--jobs 0` was dropped from every stage's command without a word."""
    args = ["reproduce", "--dataset", str(tiny_store), "--results-dir", str(tmp_path / "results"), *flags]
    for dry in (["--dry-run"], []):
        assert main([*args, *dry]) == 2
        captured = capsys.readouterr()
        assert said in captured.err and "reproduce " not in captured.out and "Traceback" not in captured.err
    assert not (tmp_path / "results").exists()


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


def test_studies_run_on_top_of_the_tune_and_every_later_stage_reads_their_choices(tiny_store, tmp_path, capsys):
    from benchmark.commands.studies import Check, Study
    from benchmark.reproduce import merged_settings, settings_path

    root = tmp_path / "results"
    store = str(tiny_store)
    studies = (Study("tiny-dropout", "uniform", {"dropout": [0.0, 0.5]}, 2, "uniform's dropout", dataset=store),
               Study("tiny-hidden", "uniform", {"hidden": [16, 32]}, 2, "uniform's width", dataset=store))
    checks = (Check("tiny-bf16", ("uniform",), "the rows in bfloat16", options=("--precision", "bf16"), seeds=(0,),
                    dataset=store),)
    options = Options(dataset=store, results_dir=str(root), methods=["uniform"], seeds=[0], trials=2, steps=2,
                      jobs=1, device="cpu", stages=["tune", "studies", "table", "checks"], studies=studies,
                      checks=checks)
    ran: list[list[str]] = []

    def recording(argv: list[str]) -> int:
        ran.append(argv)
        return main(["-q", *argv])

    outcomes = reproduce(options, recording)
    assert [o["stage"] for o in outcomes] == ["tune", "studies", "table", "checks"]
    assert "2. studies" in capsys.readouterr().out
    assert [a[0] for a in ran] == ["tune", "tune", "tune", "run", "run"]
    first, second = ran[1], ran[2]
    assert "--config" in first and "--space" in first and first[first.index("--name") + 1] == "tiny-dropout"
    # No stage reads the presets (they repeat what reproduce chooses): class defaults and the choices so far.
    assert all("--no-presets" in argv for argv in ran)
    assert second[second.index("--name") + 1] == "tiny-hidden"

    tuned = json.loads((root / "tiny-tune" / "tuned.json").read_text())["uniform"]
    dropout = json.loads((root / "tiny-dropout" / "tuned.json").read_text())["uniform"]["dropout"]
    hidden = json.loads((root / "tiny-hidden" / "tuned.json").read_text())["uniform"]["hidden"]
    settings = json.loads(settings_path(options).read_text())
    # The record names the store that chose it, as the tune's provenance has it, and the runs that chose.
    store = settings.pop("_store")
    fingerprint = json.loads((root / "tiny-tune" / "provenance.json").read_text())["dataset"]["fingerprint"]
    assert store == {"name": "tiny", "fingerprint": fingerprint, "validation": {"fraction": 0.15, "seed": 0},
                     "chosen_by": ["tiny-tune", "tiny-dropout", "tiny-hidden"]}
    # The tune's optimiser, the first study's dropout on top, the second's width on top of both.
    assert settings == {"uniform": {**tuned, "dropout": dropout, "hidden": hidden}} == merged_settings(options)
    assert merged_settings(options, upto=1)["uniform"] == {**tuned, "dropout": dropout}
    for name in ("tiny", "tiny-bf16"):  # the table and the check ran with them
        config = json.loads((root / name / "runs" / "uniform" / "seed0" / "config.json").read_text())
        assert config["hparams"]["dropout"] == dropout and config["hparams"]["hidden"] == hidden
        assert all(config["train"][k] == v for k, v in tuned["train"].items())
    assert json.loads((root / "tiny-bf16" / "runs" / "uniform" / "seed0" / "config.json").read_text())[
        "precision"] == "bf16"
    # Each folder names the stage's own command, not reproduce's.
    assert json.loads((root / "tiny" / "provenance.json").read_text())["command"].startswith(
        "python -m benchmark -q run --dataset")
    assert json.loads((root / "tiny-dropout" / "tune.json").read_text())["command"].startswith(
        "python -m benchmark -q tune --methods uniform")

    # The repository's own studies run only when its own default results are reproduced.
    from benchmark.commands.studies import CHECKS, STUDIES
    from benchmark.reproduce import checks_of, studies_of
    from datasets.common.gitinfo import REPO

    assert studies_of(Options(results_dir=str(REPO / "results"))) == STUDIES
    assert checks_of(Options(results_dir=str(REPO / "results"))) == CHECKS
    assert studies_of(Options(results_dir=str(root))) == () and checks_of(Options(dataset="small")) == ()


def test_every_origin_beyond_the_main_tune_is_a_study_that_searches_its_keys():
    from benchmark import preset_origin
    from benchmark.commands.studies import STUDIES
    from methods.presets import TABLE1_TUNE
    from methods.registry import available_methods

    declared = {(method, origin.record, frozenset(origin.keys)) for preset in ("default", "small")
                for method, found in preset_origin.origins(preset).items() for origin in found}
    own = available_methods()
    studies = [(s.method, s.name, frozenset(own[s.method].search_space if s.space is None else s.space))
               for s in STUDIES]
    on_main = {(s.method, s.name, keys) for s, (_, _, keys) in zip(STUDIES, studies) if s.dataset == "default"}
    # A study on the main store is cited by its method's preset, for the keys it searches (another
    # store's studies are carried by that store's settings record, results/<store>.settings.json).
    assert on_main <= declared
    beyond = {d for d in declared if d[1] != TABLE1_TUNE.record}
    assert on_main <= beyond <= set(studies)  # and every choice beyond the main tune is one of them
    assert len({s.name for s in STUDIES}) == len(STUDIES)


@pytest.mark.parametrize("status", [130, 143])
def test_a_stage_stopped_by_a_signal_stops_reproduce_with_its_status_not_as_a_failure(tiny_store, tmp_path, capsys,
                                                                                      status):
    """Found: `kill -TERM` on a reproduce left "terminated ...; run the same command again to resume"
    (the stage's command) followed by "error: reproduce: stage studies failed (exit 143) ... fix what
    it said" and exit 2: a deliberate stop read as a failure to fix."""
    import argparse

    from benchmark.cli.reproduce import Reproduce
    from benchmark.reproduce import Stopped

    root = tmp_path / "results"
    options = _options(tiny_store, root)
    ran: list[str] = []

    def stopped(argv: list[str]) -> int:
        ran.append(argv[0])
        return status  # the stage's command caught the signal and said how to resume

    with pytest.raises(Stopped) as stop:
        reproduce(options, stopped)
    assert stop.value.status == status and ran == ["tune"]
    assert not (root / "tiny.reproduce.json").exists()  # the stage is not recorded as done
    command = Reproduce(stopped)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--dataset", str(tiny_store), "--results-dir", str(root), "--methods", "uniform",
                              "--seeds", "0", "--steps", "2", "--jobs", "1", "--device", "cpu"])
    assert command.execute(args) == status
    assert "failed" not in capsys.readouterr().out


def test_the_other_published_runs_make_their_stores_then_run_their_own_commands(tiny_store, tmp_path, capsys):
    from benchmark.commands.studies import Other

    root, made, kept = tmp_path / "results", tmp_path / "data" / "made", tmp_path / "data" / "kept"
    kept.mkdir(parents=True)
    others = (Other((), (("datasets", "synth", "--preset", "tiny", "--seed", "3", "--out", str(made)),)),
              Other((), (("datasets", "sample-clips", "--out", str(kept)),), creates=str(kept)),  # there: skipped
              Other(("tiny-x",), (("benchmark", "run", "--dataset", str(made), "--methods", "uniform", "--seeds", "0",
                                   "--steps", "2", "--name", "tiny-x", "--results-dir", str(root), "--refresh"),)))
    options = Options(dataset=str(tiny_store), results_dir=str(root), jobs=1, device="cpu", stages=["others"],
                      others=others)
    ran: list[list[str]] = []

    def recording(argv: list[str]) -> int:
        ran.append(argv)
        return main(["-q", *argv])

    assert [o["state"] for o in reproduce(options, recording)] == ["ran"]
    assert "12. others" not in capsys.readouterr().out  # only the stage asked for
    assert (made / "manifest.json").is_file() and not any(kept.iterdir())
    assert ran == [["run", "--dataset", str(made), "--methods", "uniform", "--seeds", "0", "--steps", "2", "--name",
                    "tiny-x", "--results-dir", str(root), "--refresh", "--device", "cpu", "--jobs", "1"]]
    assert (root / "tiny-x" / "table.md").is_file()
    ran.clear()
    assert [o["state"] for o in reproduce(options, recording)] == ["skipped"] and ran == []
    # The settings files its commands read are its inputs: edited, the stage runs again.
    config = tmp_path / "uniform.json"
    config.write_text(json.dumps({"uniform": {"dropout": 0.5}}))
    others = (Other(("tiny-x",), ((*others[2].commands[0], "--config", str(config)),)),)
    options = Options(**{**options.__dict__, "others": others})
    assert [o["state"] for o in reproduce(options, recording)] == ["ran"]
    assert [o["state"] for o in reproduce(options, recording)] == ["skipped"]
    config.write_text(json.dumps({"uniform": {"dropout": 0.2}}))
    assert [o["state"] for o in reproduce(options, recording)] == ["ran"]


def test_every_published_folder_is_made_by_a_stage_or_says_why_not():
    """`reproduce` regenerates every number the repository publishes (its stages, then the other runs)."""
    from benchmark.commands.studies import NOT_REPRODUCED
    from benchmark.reproduce import plan
    from datasets.common.gitinfo import REPO, tracked_folders

    published = tracked_folders(REPO / "results")
    assert published, "a git checkout is needed to see what is published"
    made = {f for stage in plan(Options(results_dir=str(REPO / "results"))) for f in stage.folders}
    assert published - made == set(NOT_REPRODUCED)
