"""A dataset the suite has never seen gets its own selection on `run`'s default path (issue 43;
benchmark/select_first.py, benchmark/store_settings.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from benchmark import store_settings as settings
from benchmark.__main__ import main
from benchmark.config import STORE_KEY, load_method_config
from benchmark.results import TABLE_MD, TUNE_JSON
from datasets.common.gitinfo import REPO
from tests.helpers import poison_split

QUICK = ["--steps", "3", "--seeds", "0", "--jobs", "1"]


@pytest.fixture(scope="module")
def unseen(tmp_path_factory) -> Path:
    """A store no selection has read: the `tiny` generator's shape at another seed, made as a user's
    own store is (no synthetic preset name), so it is not a try-out store."""
    from datasets.sources.synthetic import preset, synthesize

    out = tmp_path_factory.mktemp("unseen") / "unseen"
    return synthesize(preset("tiny"), out, seed=5, name="unseen", preset_name=None, show_progress=False)


def _run(store: Path, root: Path, *extra: str, methods=("uniform",)) -> int:
    return main(["-q", "run", "--dataset", str(store), "--methods", *methods, *QUICK, "--results-dir", str(root),
                 *extra])


def test_a_store_without_settings_has_them_chosen_first_then_found_by_its_fingerprint(unseen, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="benchmark.select_first"):
        assert _run(unseen, tmp_path) == 0
    assert any("no settings chosen on this store" in r.getMessage() for r in caplog.records)
    record = settings.read(tmp_path / "unseen.settings.json")
    assert record is not None and set(record.methods) == {"uniform"} and record.chosen_by == ("unseen-tune",)
    tune = json.loads((tmp_path / "unseen-tune" / TUNE_JSON).read_text())
    assert tune["trials_per_method"] == {"uniform": settings.SELECTION_TRIALS} and tune["scored_on"] == "validation"
    assert record.methods["uniform"] == tune["chosen"]["uniform"]
    provenance = json.loads((tmp_path / "unseen" / "provenance.json").read_text())
    assert record.fingerprint == provenance["dataset"]["fingerprint"]
    assert provenance["config"]["config_file"] == str(record.path) and provenance["config"]["named_choices"] is False
    table = (tmp_path / "unseen" / TABLE_MD).read_text()
    assert "Settings: chosen on this store's validation part" in table and "(settings of" not in table
    assert f"{settings.SELECTION_TRIALS} selection trainings each" in table  # the same effort, counted
    assert "design settings (a reading, an architecture) were chosen across stores" in table  # not searched: said
    # Run again, with one more method: only that method is chosen, in a selection of its own (found:
    # it went into unseen-tune, whose tune.json, tuned.json and tune.md then held lstm's choice alone);
    # Uniform's choice and its selection's folder are kept as they were.
    caplog.clear()
    first = {f: (tmp_path / "unseen-tune" / f).read_bytes() for f in (TUNE_JSON, "tuned.json", "tune.md")}
    trials_before = sorted(p.name for p in (tmp_path / "unseen-tune" / "runs").iterdir())
    with caplog.at_level(logging.WARNING, logger="benchmark.select_first"):
        assert _run(unseen, tmp_path, methods=("uniform", "lstm")) == 0
    [message] = [r.getMessage() for r in caplog.records if "no settings chosen" in r.getMessage()]
    assert "for lstm;" in message and "uniform" not in message.split(" for ")[1].split(";")[0]
    again = settings.read(tmp_path / "unseen.settings.json")
    assert again is not None and set(again.methods) == {"uniform", "lstm"}
    assert again.methods["uniform"] == record.methods["uniform"]
    assert again.chosen_by == ("unseen-tune", "unseen-tune-lstm")
    assert {f: (tmp_path / "unseen-tune" / f).read_bytes() for f in first} == first
    assert sorted(p.name for p in (tmp_path / "unseen-tune" / "runs").iterdir()) == trials_before
    assert settings.effort(again) == {"uniform": settings.SELECTION_TRIALS, "lstm": settings.SELECTION_TRIALS}
    assert f"{settings.SELECTION_TRIALS} selection trainings each" in (tmp_path / "unseen" / TABLE_MD).read_text()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="benchmark.select_first"):
        assert _run(unseen, tmp_path, methods=("uniform", "lstm")) == 0  # everything chosen: no selection
    assert not [r for r in caplog.records if "no settings chosen" in r.getMessage()]
    # A first table on the store has an ETA from its first pair on: its selection's pair times, this machine's.
    from benchmark.config import RunConfig
    from benchmark.eta import machine_here
    from benchmark.protocol.budget import Budget
    from benchmark.runner import Runner
    from benchmark.select_first import settle

    cfg = settle(RunConfig(dataset=str(unseen), methods=["uniform", "lstm"], seeds=[0], budget=Budget(steps=3),
                           results_root=str(tmp_path), name="fresh", show_progress=False))
    seconds = Runner(cfg).selection_seconds(machine_here("cpu"))
    assert set(seconds) == {"uniform", "lstm"} and all(s > 0 for s in seconds.values())


def test_refresh_chooses_again_where_the_run_chose_recomputing_only_stale_trials(unseen, tmp_path, caplog):
    """Found: `run --refresh` recomputed a table's stale pairs but kept a selection whose trials were
    stale (the record was found, so its tune never ran): the settings rested on old code's trials."""
    import logging

    assert _run(unseen, tmp_path) == 0
    pair = tmp_path / "unseen-tune" / "runs" / "uniform-trial1" / "seed0" / "record.json"
    fresh = tmp_path / "unseen-tune" / "runs" / "uniform-trial0" / "seed0" / "record.json"
    record = json.loads(pair.read_text())
    record["code"]["files"]["methods/uniform.py"] = "0" * 16  # as if computed by other code
    pair.write_text(json.dumps(record))
    kept_before, settings_before = fresh.stat().st_mtime_ns, (tmp_path / "unseen.settings.json").read_text()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="benchmark.select_first"):
        assert _run(unseen, tmp_path) == 0  # without --refresh: the record is used as it is
    assert not caplog.records and json.loads(pair.read_text())["code"]["files"]["methods/uniform.py"] == "0" * 16
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="benchmark.select_first"):
        assert _run(unseen, tmp_path, "--refresh") == 0
    assert any(r.getMessage().startswith("--refresh: choosing the settings of uniform on this store again")
               for r in caplog.records)
    assert json.loads(pair.read_text())["code"]["files"]["methods/uniform.py"] != "0" * 16  # computed again
    assert fresh.stat().st_mtime_ns == kept_before  # the current trials were kept
    again = settings.read(tmp_path / "unseen.settings.json")
    assert again is not None and again.chosen_by == ("unseen-tune",)
    assert (tmp_path / "unseen.settings.json").read_text() == settings_before  # the same trials, the same choice


def test_a_method_added_to_a_store_chosen_with_more_trainings_gets_as_many(unseen, tmp_path):
    """Found: a plug-in added to the default store's table (10 selection trainings behind every
    built-in method, its design studies included) was chosen with 4 trials, and into default-tune,
    whose choices it replaced. An added method gets the trainings the record's methods rest on."""
    root = tmp_path / "results"
    assert main(["-q", "tune", "--dataset", str(unseen), "--methods", "uniform", "--trials", "6", *QUICK,
                 "--results-dir", str(root), "--name", "mine-study"]) == 0
    fingerprint = json.loads((root / "mine-study" / "provenance.json").read_text())["dataset"]["fingerprint"]
    chosen = json.loads((root / "mine-study" / "tuned.json").read_text())
    settings.write(root / "unseen.settings.json", store="unseen", fingerprint=fingerprint, methods=chosen,
                   chosen_by=["mine-study"], validation=settings.carve(0.15, 0))
    assert _run(unseen, root, methods=("uniform", "lstm")) == 0
    record = settings.read(root / "unseen.settings.json")
    assert record is not None and record.chosen_by == ("mine-study", "unseen-tune-lstm")
    assert json.loads((root / "unseen-tune-lstm" / TUNE_JSON).read_text())["trials_per_method"] == {"lstm": 6}
    assert settings.effort(record) == {"uniform": 6, "lstm": 6}
    assert "6 selection trainings each" in (root / "unseen" / TABLE_MD).read_text()


def test_an_added_method_gets_as_few_trainings_as_the_rest_too(unseen, tmp_path):
    """The same effort both ways: on a record whose methods rest on 2 selection trainings, an added
    method gets 2, not the 4 of a store's first selection; without a record (or any of its
    selections here), 4."""
    assert main(["-q", "tune", "--dataset", str(unseen), "--methods", "uniform", "--trials", "2", *QUICK,
                 "--results-dir", str(tmp_path), "--name", "few"]) == 0
    fingerprint = json.loads((tmp_path / "few" / "provenance.json").read_text())["dataset"]["fingerprint"]
    settings.write(tmp_path / "unseen.settings.json", store="unseen", fingerprint=fingerprint,
                   methods=json.loads((tmp_path / "few" / "tuned.json").read_text()), chosen_by=["few"],
                   validation=settings.carve(0.15, 0))
    record = settings.read(tmp_path / "unseen.settings.json")
    assert settings.matched_trials(record) == 2 and settings.matched_trials(None) == settings.SELECTION_TRIALS
    assert settings.matched_trials(replace(record, chosen_by=("gone",))) == settings.SELECTION_TRIALS


def test_refresh_chooses_again_in_each_of_runs_selections_and_only_those_it_names(unseen, tmp_path, caplog):
    """With a method added in its own selection, --refresh chooses again in both; a run that names
    only some methods leaves the selection of the others as it is (found: it retuned them into the
    store's first selection folder, whose choices for the methods left out were lost)."""
    import logging

    assert _run(unseen, tmp_path, methods=("uniform",)) == 0
    assert _run(unseen, tmp_path, methods=("uniform", "lstm")) == 0
    kept = (tmp_path / "unseen-tune" / "tuned.json").read_bytes()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="benchmark.select_first"):
        assert _run(unseen, tmp_path, "--refresh", methods=("lstm",)) == 0
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("--refresh: choosing the settings of lstm") and "unseen-tune-lstm" in m for m in said)
    assert any(m.startswith("--refresh: ") and "unseen-tune is not chosen again" in m for m in said)
    assert (tmp_path / "unseen-tune" / "tuned.json").read_bytes() == kept
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="benchmark.select_first"):
        assert _run(unseen, tmp_path, "--refresh", methods=("uniform", "lstm")) == 0
    assert sum(m.getMessage().startswith("--refresh: choosing") for m in caplog.records) == 2


def test_curves_and_ablations_on_a_store_read_its_settings_as_its_table_does(unseen, tmp_path, caplog):
    """Found: on a store with its own settings record, `curves` and `ablate` trained every method
    at the shipped defaults (and a plug-in at its class defaults), not at the settings the table was
    trained with: the sweep did not reuse a single pair of the table, and its curves were not the
    table's methods. They now settle the store's settings as `run` does."""
    import logging

    assert _run(unseen, tmp_path, methods=("uniform", "liteeval")) == 0
    record = settings.read(tmp_path / "unseen.settings.json")
    assert record is not None and set(record.methods) == {"uniform", "liteeval"}
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(["-q", "curves", "--dataset", str(unseen), "--methods", "uniform", "liteeval", *QUICK,
                     "--results-dir", str(tmp_path), "--points", "2"]) == 0
    assert any("pair(s) of results/unseen reused" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if "no settings chosen" in r.getMessage()]
    for method, point, knob in (("uniform", "uniform", None), ("liteeval", "liteeval@gamma=0.2", "gamma")):
        table = json.loads((tmp_path / "unseen" / "runs" / method / "seed0" / "config.json").read_text())
        swept = json.loads((tmp_path / "unseen-curves" / "runs" / point / "seed0" / "config.json").read_text())
        assert swept["train"] == table["train"]  # the optimiser the store's selection chose
        assert {k: v for k, v in swept["hparams"].items() if k != knob} == {
            k: v for k, v in table["hparams"].items() if k != knob}
    # The ablations start from LiteEval's setting in the record (one no default has: told apart).
    chosen = {**record.methods, "liteeval": {**record.methods["liteeval"], "train": {"lr": 0.0123}}}
    settings.write(record.path, store=record.store, fingerprint=record.fingerprint, methods=chosen,
                   chosen_by=record.chosen_by, validation=record.validation or {})
    assert main(["-q", "ablate", "sync", "--dataset", str(unseen), *QUICK, "--results-dir", str(tmp_path)]) == 0
    variant = json.loads((tmp_path / "unseen-ablate-sync" / "runs" / "liteeval-sync" / "seed0" / "config.json")
                         .read_text())
    assert variant["train"]["lr"] == 0.0123 and variant["hparams"]["sync"] is True
    # --settings-from, as `run` takes it: another store's record, for the sweep and the ablations too.
    settings.write(tmp_path / "other.settings.json", store="other", fingerprint="0" * 16,
                   methods={m: {"train": {"lr": 0.0456}} for m in ("uniform", "liteeval")}, chosen_by=[],
                   validation=settings.carve(0.15, 0))
    assert main(["-q", "ablate", "sync", "--dataset", str(unseen), *QUICK, "--results-dir", str(tmp_path),
                 "--name", "from-other", "--settings-from", "other"]) == 0
    variant = json.loads((tmp_path / "from-other" / "runs" / "liteeval-sync" / "seed0" / "config.json").read_text())
    assert variant["train"]["lr"] == 0.0456
    assert main(["-q", "curves", "--dataset", str(unseen), "--methods", "uniform", *QUICK, "--points", "2",
                 "--results-dir", str(tmp_path), "--name", "swept", "--settings-from", "other"]) == 0
    swept = json.loads((tmp_path / "swept-curves" / "runs" / "uniform" / "seed0" / "config.json").read_text())
    assert swept["train"]["lr"] == 0.0456


def test_a_first_selection_leaves_a_tune_of_other_methods_in_its_folder_alone(unseen, tmp_path):
    """`tune --dataset STORE` names its folder <store>-tune, where a first selection goes: a user's own
    tune of another method there is kept, and the selection takes a folder of its own."""
    assert main(["-q", "tune", "--dataset", str(unseen), "--methods", "lstm", "--trials", "1", *QUICK,
                 "--results-dir", str(tmp_path)]) == 0
    own = (tmp_path / "unseen-tune" / "tuned.json").read_bytes()
    assert _run(unseen, tmp_path) == 0
    record = settings.read(tmp_path / "unseen.settings.json")
    assert record is not None and record.chosen_by == ("unseen-tune-uniform",) and set(record.methods) == {"uniform"}
    assert (tmp_path / "unseen-tune" / "tuned.json").read_bytes() == own


def test_a_tune_that_would_drop_another_tunes_choices_is_refused(unseen, tmp_path, capsys):
    args = ["-q", "tune", "--dataset", str(unseen), "--trials", "1", *QUICK, "--results-dir", str(tmp_path),
            "--name", "mine-tune"]
    assert main([*args, "--methods", "uniform", "lstm"]) == 0
    capsys.readouterr()
    before = (tmp_path / "mine-tune" / "tuned.json").read_bytes()
    assert main([*args, "--methods", "uniform"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lose those of lstm" in err[0] and "--name" in err[0]
    assert (tmp_path / "mine-tune" / "tuned.json").read_bytes() == before


def test_the_choice_does_not_depend_on_the_evaluation_split_with_two_workers_or_two_ranks(unseen, tmp_path, capsys):
    """The selection on the default path is a selection run: the evaluation split is out of its reach, in
    its workers and on torchrun's ranks too. A poisoned evaluation split (labels shuffled, frames NaN)
    changes nothing chosen."""
    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    poisoned = poison_split(unseen, tmp_path / "store" / "unseen", "test")
    args = ["--methods", "uniform", "lstm", "--steps", "3", "--seeds", "0"]
    # From the shipped defaults, as the default path's selection (no --no-presets); serial: --jobs
    # gives the same numbers bit for bit.
    assert main(["-q", "tune", "--dataset", str(unseen), *args, "--jobs", "1", "--results-dir",
                 str(clean), "--name", "unseen-tune"]) == 0
    args += ["--jobs", "2"]
    capsys.readouterr()
    # The selection runs to its end; only the table, which reads the evaluation split, meets the poison.
    assert main(["-q", "run", "--dataset", str(poisoned), *args, "--results-dir", str(dirty)]) == 2
    assert "split 'test'): " in capsys.readouterr().err and not (dirty / "unseen" / TABLE_MD).exists()
    chosen = json.loads((clean / "unseen-tune" / TUNE_JSON).read_text())
    record = settings.read(dirty / "unseen.settings.json")
    assert record is not None and record.methods == chosen["chosen"]
    poisoned_trials = json.loads((dirty / "unseen-tune" / TUNE_JSON).read_text())["trials"]
    key = "validation_map_percent"
    assert [t[key] for t in poisoned_trials] == [t[key] for t in chosen["trials"]]
    # On two torchrun ranks (found: `run` refused there and sent the user to tune by hand): each rank
    # trains its share of the trials, rank 0 writes the record, and the table stops at the poison.
    ranks = tmp_path / "ranks"
    env = {**os.environ, "LITEEVAL_PROGRESS": "0", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "benchmark",
         "-q", "run", "--dataset", str(poisoned), *args[:-2], "--device", "cpu", "--results-dir", str(ranks)],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode != 0 and "split 'test'): " in done.stderr and not (ranks / "unseen" / TABLE_MD).exists()
    tuned = json.loads((ranks / "unseen-tune" / "provenance.json").read_text())
    assert tuned["execution"]["world_size"] == 2 and tuned["execution"]["pairs_computed_here"] < 2 * 4
    record = settings.read(ranks / "unseen.settings.json")
    assert record is not None and record.methods == chosen["chosen"]
    ranked_trials = json.loads((ranks / "unseen-tune" / TUNE_JSON).read_text())["trials"]
    assert [t[key] for t in ranked_trials] == [t[key] for t in chosen["trials"]]


def test_settings_from_another_store_mark_every_row_they_cover(unseen, tmp_path):
    other = REPO / "results" / "default.settings.json"
    assert _run(unseen, tmp_path, "--settings-from", str(other), "--name", "borrowed",
                methods=("uniform", "lstm")) == 0
    table = (tmp_path / "borrowed" / TABLE_MD).read_text()
    assert "| Uniform (settings of default)" in table and "| LSTM (settings of default)" in table
    assert "Settings: chosen on another store, default" in table
    assert not (tmp_path / "unseen-tune").exists()  # nothing was chosen here
    summary = json.loads((tmp_path / "borrowed" / "metrics.json").read_text())["summary"]
    assert summary["lstm"]["settings_of"] == "(settings of default)"


def test_a_settings_record_given_as_config_is_said_in_the_caption_with_its_effort(unseen, tmp_path):
    """Reproduce's stages run with `--no-presets --config results/<store>.settings.json`: the table
    says where those settings were chosen and on how many trainings, counting none for a method
    the record does not cover (it runs its class defaults)."""
    assert _run(unseen, tmp_path) == 0  # chooses Uniform's settings first: the store's own record
    record = tmp_path / "unseen.settings.json"
    assert _run(unseen, tmp_path, "--no-presets", "--config", str(record), "--name", "staged",
                methods=("uniform", "lstm")) == 0
    table = (tmp_path / "staged" / TABLE_MD).read_text()
    assert "Settings: chosen on this store's validation part" in table
    assert f"unequal selection trainings: uniform {settings.SELECTION_TRIALS}, lstm 0" in table
    assert not (tmp_path / "unseen-tune" / "runs" / "lstm-trial0").exists()  # --config: nothing chosen
    # A config file by hand (no store in it) is used as given, and nothing is said of it.
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"uniform": {"dropout": 0.0}}))
    assert _run(unseen, tmp_path, "--config", str(mine), "--name", "by-hand") == 0
    assert "Settings:" not in (tmp_path / "by-hand" / TABLE_MD).read_text()


def test_bad_settings_from_is_one_line(unseen, tmp_path, capsys):
    assert _run(unseen, tmp_path, "--settings-from", "nosuch") == 2
    err = capsys.readouterr().err
    assert "--settings-from nosuch: no settings record" in err and "Traceback" not in err
    assert _run(unseen, tmp_path, "--settings-from", "default", "--no-presets") == 2
    assert "--settings-from: the settings are already given by --no-presets" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_try_out_store_runs_the_shipped_defaults_and_says_so(tiny_store, tmp_path):
    assert _run(tiny_store, tmp_path, "--name", "t") == 0
    table = (tmp_path / "t" / TABLE_MD).read_text()
    assert ("Settings: the methods' shipped defaults (chosen across stores: methods/shipped.py), not chosen on this "
            "store (tiny is a store for trying") in table
    assert not list(tmp_path.glob("*.settings.json"))


def test_the_repository_records_are_found_by_fingerprint_and_read_as_config_files():
    root = REPO / "results"
    default = settings.read(root / "default.settings.json")
    assert default is not None and default.fingerprint
    assert settings.find(root, default.fingerprint, settings.carve(0.15, 0)) == default
    assert settings.find(root, default.fingerprint, settings.carve(0.3, 0)) is None  # scored on another part
    provenance = json.loads((root / "default" / "provenance.json").read_text())
    assert provenance["dataset"]["fingerprint"] == default.fingerprint  # the main job's store is the one it names
    assert STORE_KEY not in load_method_config(default.path) and "liteeval" in load_method_config(default.path)


def test_a_name_another_store_or_another_carve_holds_gets_the_fingerprint_or_the_carve(tmp_path):
    usual, larger = settings.carve(0.15, 0), settings.carve(0.3, 0)
    settings.write(tmp_path / "x.settings.json", store="x", fingerprint="aaaa1111bbbb2222", methods={}, chosen_by=[],
                   validation=usual)
    assert settings.path_for(tmp_path, "x", "aaaa1111bbbb2222", usual) == tmp_path / "x.settings.json"
    assert settings.path_for(tmp_path, "x", "cccc3333dddd4444", usual) == tmp_path / "x-cccc3333.settings.json"
    assert settings.path_for(tmp_path, "x", "aaaa1111bbbb2222", larger) == tmp_path / "x-val0.3-0.settings.json"


def test_a_run_on_another_validation_carve_selects_on_it_not_with_a_choice_scored_on_its_training_videos(
        unseen, tmp_path, caplog):
    """Found: the store's record was found by fingerprint alone, so `run --val-fraction 0.3` trained
    with settings scored on videos that its own carve trains on. A record is found by the store and
    the carve it was scored on; another carve is chosen on its own validation part."""
    import logging

    assert _run(unseen, tmp_path) == 0
    with caplog.at_level(logging.WARNING, logger="benchmark.select_first"):
        assert _run(unseen, tmp_path, "--val-fraction", "0.3", "--name", "larger") == 0
    assert any("no settings chosen on this store" in r.getMessage() for r in caplog.records)
    first = settings.read(tmp_path / "unseen.settings.json")
    second = settings.read(tmp_path / "unseen-val0.3-0.settings.json")
    assert first is not None and second is not None and first.fingerprint == second.fingerprint
    assert (first.validation, second.validation) == (settings.carve(0.15, 0), settings.carve(0.3, 0))
    tune = json.loads((tmp_path / "unseen-val0.3-0-tune" / "provenance.json").read_text())
    assert tune["config"]["val_fraction"] == 0.3
    provenance = json.loads((tmp_path / "larger" / "provenance.json").read_text())
    assert provenance["config"]["config_file"] == str(second.path)


def test_a_store_that_shares_a_name_does_not_inherit_its_choices_but_keeps_presets_set_by_hand():
    """A preset chosen on the default store is not applied by name on `run`'s default path (the store's
    record is); a preset set by hand for a dataset's name (the paper's LiteEval sizes for FCVID) is."""
    from dataclasses import replace

    from benchmark.config import RunConfig
    from benchmark.plans import plan_methods

    base = RunConfig(methods=["liteeval"])
    by_name = {p.name: p.full_hparams() for p in plan_methods(base, "default")}
    by_record = {p.name: p.full_hparams() for p in plan_methods(replace(base, named_choices=False), "default")}
    assert by_name["liteeval"]["dropout"] == 0.5 != by_record["liteeval"]["dropout"]  # the shipped default's 0
    fcvid = {p.name: p.full_hparams() for p in plan_methods(replace(base, named_choices=False), "fcvid")}
    assert fcvid["liteeval"]["fine_hidden"] == 2048


def test_the_main_job_trains_what_the_shipped_presets_say():
    """On the default store `run` finds results/default.settings.json by fingerprint and trains with it:
    every method's settings are those the presets ship, so the committed pairs are kept as they are."""
    from dataclasses import asdict

    from benchmark.config import RunConfig
    from benchmark.plans import plan_methods

    def resolved(**config) -> dict:
        cfg = RunConfig(suite="extended", **config)
        return {p.name: (p.full_hparams(), asdict(p.train)) for p in plan_methods(cfg, "default")}

    record = str(REPO / "results" / "default.settings.json")
    assert resolved() == resolved(named_choices=False, config_file=record)


def test_every_method_of_every_published_table_gets_the_same_number_of_selection_trainings():
    """Issue 44 counted the trainings behind each shipped setting: LiteEval-RL 22, Uniform 4. The
    main tune now evens out each method's own studies (benchmark/reproduce.py ``evened_trials``)
    and each check's store gives every method of its check a study of the same size; every
    settings record the repository publishes counts the same for each of its methods, and covers
    every method of the tables that run with it."""
    from benchmark.commands.studies import CHECKS, STUDIES
    from benchmark.presentation.audit import unequal_effort

    studied: dict[str, Counter] = {}
    for study in STUDIES:
        studied.setdefault(study.dataset, Counter())[study.method] += study.pairs
    expected = {check.dataset: max(studied[check.dataset].values()) for check in CHECKS}
    expected["default"] = settings.SELECTION_TRIALS + max(studied["default"].values())  # the tune's own 4 on top
    for dataset, each in expected.items():
        record = settings.read(REPO / "results" / f"{dataset}.settings.json")
        assert record is not None, f"results/{dataset}.settings.json: missing; `benchmark reproduce` writes it"
        assert set(settings.effort(record).values()) == {each}, settings.effort(record)
        assert {m for check in CHECKS if check.dataset == dataset for m in check.methods} <= set(record.methods)
    assert not unequal_effort(REPO / "results")
    assert settings.effort_words({"a": 4, "b": 4}) == "4 selection trainings each"
    assert settings.effort_words({"b": 2, "a": 4}) == "unequal selection trainings: a 4, b 2"


def test_report_check_names_rows_whose_settings_record_chose_again_since(unseen, tmp_path):
    """Found (2026-12-07): a new selection rewrote results/default.settings.json, and the folders
    run with it (ablations, sweeps, checks) still passed --check with the rows of the old settings.
    A row whose pairs ran with a setting the record no longer holds is named, until the folder's
    command is rerun."""
    from benchmark.presentation.audit import check_folder

    assert _run(unseen, tmp_path) == 0
    assert check_folder(tmp_path / "unseen") == []
    path = tmp_path / "unseen.settings.json"
    record = json.loads(path.read_text())
    ran = record["uniform"]["train"]["lr"]
    record["uniform"]["train"]["lr"] = ran * 10  # what a selection run again could choose
    path.write_text(json.dumps(record))
    problems = check_folder(tmp_path / "unseen")
    assert [p.kind for p in problems] == ["settings moved"]
    assert f"uniform (train.lr {ran!r}, now {ran * 10!r})" in problems[0].detail and "--refresh" in problems[0].detail
    # A run with the presets and no --config (a copy of the main job made before the store had a
    # record): `run` there now trains with the store's record, so its rows are held to it too.
    provenance = tmp_path / "unseen" / "provenance.json"
    data = json.loads(provenance.read_text())
    data["config"].update(config_file=None, presets=True, dataset=str(unseen))
    provenance.write_text(json.dumps(data))
    assert [p.kind for p in check_folder(tmp_path / "unseen")] == ["settings moved"]


def test_report_check_names_a_row_computed_before_the_selection_its_settings_cite(unseen, tmp_path):
    """Found (issue 44): a table's pairs can be older than the tune trials whose choice their
    settings record cites (a resumed run kept them). Each row's pairs must postdate every
    selection pair of its method; a row that does not is named."""
    from benchmark.presentation.audit import check_folder

    assert _run(unseen, tmp_path) == 0
    assert check_folder(tmp_path / "unseen") == []
    tune = tmp_path / "unseen-tune"
    summary = json.loads((tune / "metrics.json").read_text())
    for label, seeds in summary["per_seed"].items():
        for seed, record in seeds.items():
            record["computed"]["at"] = "2999-01-01T00:00:00+00:00"  # as if the trials finished after the table
            (tune / "runs" / label / f"seed{seed}" / "record.json").write_text(json.dumps(record))
    (tune / "metrics.json").write_text(json.dumps(summary))
    [problem] = check_folder(tmp_path / "unseen")
    assert problem.kind == "selected after" and "uniform (a pair at " in problem.detail
    assert "a selection pair at 2999-01-01" in problem.detail
