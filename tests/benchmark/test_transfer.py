"""The shipped defaults, chosen across stores by one rule (benchmark/commands/transfer.py), and the
committed choice that methods/shipped.py repeats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark import results as layout
from benchmark.__main__ import main
from benchmark.commands import transfer
from benchmark.config import RunConfig
from datasets.common.errors import UsageError

BUDGET = {"batch_size": 64, "epochs": 30.0, "min_steps": 600, "patience": 6, "steps": None, "validations": 20}
SETTINGS = [{"dropout": 0.5, "train.lr": 0.001}, {"dropout": 0.0, "train.lr": 0.001},
            {"dropout": 0.2, "train.lr": 0.003}]


def fake_tune(root: Path, run: str, store: str, trials: list[tuple[float, float, float, bool]], *,
              settings: list[dict] | None = None, scored_on: str = "validation", budget: dict | None = None,
              method: str = "uniform", collapsed: tuple[int, ...] = ()) -> Path:
    """A tune's records: per trial (validation mAP, GFLOPs, standard error of its gap, within the noise)."""
    folder = root / run
    folder.mkdir(parents=True)
    best = max(m for m, _, _, _ in trials)
    rows = [{"method": method, "trial": k, "setting": (settings or SETTINGS)[k], "validation_map_percent": m,
             "gflops": g, "gap_to_best_percent": best - m, "standard_error_percent": se, "within_noise": w,
             "chosen": False,
             "did_not_learn": "memorised" if k in collapsed else ""}
            for k, (m, g, se, w) in enumerate(trials)]
    (folder / "tune.json").write_text(json.dumps({
        "schema_version": layout.SCHEMA_VERSION, "trials": rows, "scored_on": scored_on,
        "budget": {**BUDGET, **(budget or {})}, "trials_per_method": len(rows),
        "tune_seed": 0, "seeds": [0], "validation": {"num_videos": 48}}))
    (folder / "provenance.json").write_text(json.dumps({"dataset": {"name": store, "fingerprint": store * 2}}))
    return folder


def chosen_trial(folders: list[Path]) -> int:
    choice = transfer.choose(folders)
    return choice.chosen("uniform").trial


def test_one_store_is_that_stores_own_rule(tmp_path):
    """On one store's verdicts the rule picks what the store's selection rule picks: the cheapest
    within the noise (trial 1 here, not the best, trial 0)."""
    a = fake_tune(tmp_path, "a-tune", "a",
                  [(90.0, 100.0, 0.0, True), (89.5, 60.0, 0.8, True), (80.0, 10.0, 1.0, False)])
    b = fake_tune(tmp_path, "b-tune", "b", [(70.0, 20.0, 0.0, True), (69.0, 12.0, 1.5, True), (50.0, 2.0, 1.0, False)])
    assert chosen_trial([a, b]) == 1  # within the noise on both, and cheaper relative to each store's best


def test_where_none_is_within_the_noise_everywhere_the_best_worst_case_wins(tmp_path):
    a = fake_tune(tmp_path, "a-tune", "a", [(90.0, 50.0, 0.0, True), (88.0, 10.0, 0.5, False), (84.0, 5.0, 0.5, False)])
    b = fake_tune(tmp_path, "b-tune", "b", [(60.0, 50.0, 1.0, False), (70.0, 10.0, 0.0, True), (69.0, 5.0, 2.0, True)])
    # trial 0: worst gap 10 (store b); trial 1: worst gap 2 (store a); trial 2: worst gap 6: trial 1
    choice = transfer.choose([a, b])
    assert choice.chosen("uniform").trial == 1
    assert [s.worst_gap for s in choice.methods["uniform"]] == [10.0, 2.0, 6.0]


def test_a_candidate_that_did_not_learn_somewhere_is_not_shipped(tmp_path):
    """Found: FastForward's best worst case memorised `small` (did not learn); the next best is shipped."""
    a = fake_tune(tmp_path, "a-tune", "a", [(90.0, 50.0, 0.0, True), (88.0, 10.0, 0.5, False), (84.0, 5.0, 0.5, False)])
    b = fake_tune(tmp_path, "b-tune", "b", [(60.0, 50.0, 1.0, False), (70.0, 10.0, 0.0, True), (69.0, 5.0, 2.0, True)],
                  collapsed=(1,))
    choice = transfer.choose([a, b])
    assert [s.learned for s in choice.methods["uniform"]] == [True, False, True]
    assert choice.chosen("uniform").trial == 2  # worst gap 6 (trial 1's 2 did not learn on b)
    every = fake_tune(tmp_path, "c-tune", "c", [(60.0, 50.0, 1.0, False), (70.0, 10.0, 0.0, True),
                                                (69.0, 5.0, 2.0, True)], collapsed=(0, 1, 2))
    assert transfer.choose([a, every]).chosen("uniform").trial == 1  # none learned everywhere: the rule as before


def test_what_the_rule_cannot_compare_is_refused_in_one_line(tmp_path):
    trials = [(90.0, 1.0, 0.0, True), (80.0, 1.0, 1.0, False), (70.0, 1.0, 1.0, False)]
    a = fake_tune(tmp_path, "a-tune", "a", trials)
    with pytest.raises(UsageError, match="at least two tunes"):
        transfer.choose([a])
    other = fake_tune(tmp_path, "b-tune", "b", trials, settings=[SETTINGS[0], SETTINGS[2], SETTINGS[1]])
    with pytest.raises(UsageError, match="the same candidates on every store"):
        transfer.choose([a, other])
    longer = fake_tune(tmp_path, "c-tune", "c", trials, budget={"epochs": 60.0})
    with pytest.raises(UsageError, match="epochs 60.0, but a-tune 30.0"):
        transfer.choose([a, longer])
    tested = fake_tune(tmp_path, "d-tune", "d", trials, scored_on="test")
    with pytest.raises(UsageError, match="scored on 'test'"):
        transfer.choose([a, tested])
    again = fake_tune(tmp_path, "e-tune", "a", trials)
    with pytest.raises(UsageError, match="tuned the same store"):
        transfer.choose([a, again])
    lstm = fake_tune(tmp_path, "f-tune", "f", trials, method="lstm")
    with pytest.raises(UsageError, match="the same methods; missing"):
        transfer.choose([a, lstm])


def test_the_command_writes_the_choice_and_never_replaces_another_silently(tmp_path, capsys):
    trials = [(90.0, 1.0, 0.0, True), (89.0, 1.0, 2.0, True), (70.0, 1.0, 1.0, False)]
    fake_tune(tmp_path, "a-tune", "a", trials)
    fake_tune(tmp_path, "b-tune", "b", trials)
    fake_tune(tmp_path, "c-tune", "c", trials)
    assert main(["transfer", "a-tune", "b-tune", "--results-dir", str(tmp_path), "--name", "mine"]) == 0
    assert json.loads((tmp_path / "mine" / "tuned.json").read_text()) == {"uniform": {"dropout": 0.5,
                                                                                     "train": {"lr": 0.001}}}
    assert "Uniform" in (tmp_path / "mine" / "transfer.md").read_text()
    record = json.loads((tmp_path / "mine" / "transfer.json").read_text())
    assert record[transfer.TUNES_KEY] == ["a-tune", "b-tune"] and record["rule"] == transfer.RULE
    capsys.readouterr()
    assert main(["transfer", "a-tune", "c-tune", "--results-dir", str(tmp_path), "--name", "mine"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a choice" in err[0] and "--force" in err[0]
    assert main(["transfer", "a-tune", "c-tune", "--results-dir", str(tmp_path), "--name", "mine", "--force"]) == 0
    assert main(["transfer", "a-tune", "nowhere", "--results-dir", str(tmp_path)]) == 2
    assert "nowhere: no such tune" in capsys.readouterr().err


def test_the_shipped_defaults_repeat_the_committed_choice_made_on_three_stores_nobody_tested_on():
    """methods/shipped.py ships what results/shipped-defaults chose, recomputed here from the
    committed tunes; the choice read at least three stores, and not the two kept for testing
    (results/unseen-b, unseen-c: other shapes and seeds)."""
    from datasets.common.gitinfo import REPO
    from methods import shipped
    from methods.registry import available_methods

    results = REPO / "results"
    folder = results / shipped.ORIGIN.record
    record = json.loads((folder / layout.TRANSFER_JSON).read_text())
    assert json.loads((folder / "tuned.json").read_text()) == shipped.SETTINGS
    recomputed = transfer.choose([[results / run for run in runs.split(layout.GROUP)]
                                  for runs in record[transfer.TUNES_KEY]])
    assert recomputed.config() == shipped.SETTINGS
    assert len({s["fingerprint"] for s in record["stores"]}) >= 3
    builtin = {name for name, cls in available_methods().items() if cls.__module__.startswith("methods.")}
    assert set(shipped.SETTINGS) == builtin
    for method, table in shipped.SETTINGS.items():
        keys = {k for k in table if k != "train"} | {f"train.{k}" for k in table.get("train", {})}
        assert keys == set(shipped.ORIGIN.keys), method
    held_out = {json.loads((results / run / "provenance.json").read_text())["dataset"]["fingerprint"]
                for run in ("unseen-b", "unseen-c")}
    assert held_out.isdisjoint(s["fingerprint"] for s in record["stores"])


def test_a_new_store_starts_from_the_shipped_defaults_and_no_presets_from_the_class_defaults():
    from dataclasses import asdict

    from benchmark.plans import plan_methods
    from methods import shipped

    new = {p.name: p for p in plan_methods(RunConfig(suite="extended", named_choices=False), "someone-elses")}
    bare = {p.name: p for p in plan_methods(RunConfig(suite="extended", presets=False), "someone-elses")}
    for method in {*shipped.SETTINGS, *shipped.DESIGN}:
        plan, table = new[method], shipped.settings(method)
        assert {k: plan.full_hparams()[k] for k in table if k != "train"} == {k: v for k, v in table.items()
                                                                              if k != "train"}
        assert {k: asdict(plan.train)[k] for k in table.get("train", {})} == table.get("train", {})
        assert bare[method].hparams == {} and bare[method].train == bare[method].cls.train_defaults


def test_a_store_that_drew_more_trials_is_compared_on_the_trials_every_store_holds(tmp_path):
    """The default store's tune draws more trials of some methods (it evens out their studies,
    benchmark/reproduce.py): the candidates are the first trials every store holds, and that
    store's verdicts on them are computed again among those alone from their pairs' scores, not
    read from a record whose best was a trial the other stores never drew."""
    from benchmark.protocol import selection

    rng = np.random.default_rng(0)
    labels = np.eye(4)[rng.integers(0, 4, 48)]
    quality = {0: 0.9, 1: 0.6, 2: 1.0}  # trial 2, drawn on store a only, is the best there
    scores = {k: q * labels + (1 - q) * rng.random(labels.shape) for k, q in quality.items()}
    a = fake_tune(tmp_path, "a-tune", "a", [(90.0, 100.0, 0.1, False), (80.0, 60.0, 0.1, False),
                                            (99.0, 100.0, 0.0, True)])
    for k, s in scores.items():
        pair = layout.pair_dir(a, f"uniform-trial{k}", 0)
        pair.mkdir(parents=True)
        np.savez(pair / layout.SCORES, video_ids=np.arange(48), labels=labels, scores=s)
    b = fake_tune(tmp_path, "b-tune", "b", [(70.0, 20.0, 0.0, True), (69.0, 12.0, 1.5, True)])
    choice = transfer.choose([a, b])
    assert [s.trial for s in choice.methods["uniform"]] == [0, 1]
    counts = selection.resample_counts(48)
    expected = selection.choose([selection.candidate(k, scores[k], labels, g, counts)
                                 for k, g in ((0, 100.0), (1, 60.0))]).verdicts
    first = transfer.read_store(a).first("uniform", 2)
    assert [r["within_noise"] for r in first] == [v.within_noise for v in expected]
    assert first[0]["gap_to_best_percent"] == 0.0 and first[0]["within_noise"]  # the best of the two, not out
    assert [r["gap_to_best_percent"] for r in first] == [100 * v.gap for v in expected]
    assert "From " in transfer.markdown(choice) and "2 trials of each method" in transfer.markdown(choice)


def test_one_stores_several_tunes_are_read_as_one(tmp_path, capsys):
    """The default store's design studies are one tune per method: ``a+b`` names one store's
    tunes, read as one; tunes of two stores, or of one method twice, are refused in one line."""
    trials = [(90.0, 1.0, 0.0, True), (89.0, 1.0, 2.0, True), (70.0, 1.0, 1.0, False)]
    for store in ("a", "b"):
        for method in ("uniform", "lstm"):
            fake_tune(tmp_path, f"{store}-{method}", store, trials, method=method)
    assert main(["transfer", "a-uniform+a-lstm", "b-uniform+b-lstm", "--results-dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "shipped-defaults" / "transfer.json").read_text())
    assert record[transfer.TUNES_KEY] == ["a-uniform+a-lstm", "b-uniform+b-lstm"]
    assert set(record["chosen"]) == {"uniform", "lstm"}
    assert "results/a-uniform + results/a-lstm" in (tmp_path / "shipped-defaults" / "transfer.md").read_text()
    fake_tune(tmp_path, "a-uniform-again", "a", trials)
    for runs, said in ((["a-uniform+b-lstm", "b-uniform+b-lstm"], "are one store's"),
                       (["a-uniform+a-uniform-again", "b-uniform"], "is tuned by both")):
        capsys.readouterr()
        assert main(["transfer", *runs, "--results-dir", str(tmp_path), "--name", "other"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err


def test_the_shipped_design_settings_repeat_the_choice_made_on_the_same_three_stores():
    """methods/shipped.py's design settings are what results/shipped-design chose, recomputed here
    from the committed studies: the default store's design studies and the same studies on the two
    other stores the optimiser's defaults were chosen on, every method that has design settings."""
    from benchmark.commands.studies import DESIGN
    from datasets.common.gitinfo import REPO
    from methods import shipped

    results = REPO / "results"
    record = json.loads((results / shipped.DESIGN_ORIGIN.record / layout.TRANSFER_JSON).read_text())
    assert json.loads((results / shipped.DESIGN_ORIGIN.record / "tuned.json").read_text()) == shipped.DESIGN
    groups = [[results / run for run in runs.split(layout.GROUP)] for runs in record[transfer.TUNES_KEY]]
    assert transfer.choose(groups).config() == shipped.DESIGN
    assert set(shipped.DESIGN) == set(DESIGN)
    for method, table in shipped.DESIGN.items():
        assert set(table) == set(DESIGN[method]) and set(table) <= set(shipped.DESIGN_ORIGIN.keys), method
    optimiser = json.loads((results / shipped.ORIGIN.record / layout.TRANSFER_JSON).read_text())
    assert [s["fingerprint"] for s in record["stores"]] == [s["fingerprint"] for s in optimiser["stores"]]


def test_a_stores_record_holds_the_design_settings_its_selection_ran_with():
    """A new store's selection searches optimiser and dropout from the shipped defaults; its record
    holds the shipped design settings beside the choice, since the table runs from the record alone."""
    from benchmark.commands.tune import apply_setting, given_settings, trial_settings
    from benchmark.config import as_config
    from benchmark.plans import plan_methods
    from methods import shipped

    for method in shipped.DESIGN:
        (plan,) = plan_methods(RunConfig(methods=[method], named_choices=False), "someone-elses")
        setting = trial_settings(plan, 2, tune_seed=0)[1]
        ran = given_settings(apply_setting(plan, setting, f"{method}-trial1", method), setting)
        assert {k: ran[k] for k in shipped.DESIGN[method] if k not in setting} == {
            k: v for k, v in shipped.DESIGN[method].items() if k not in setting}
        chosen = as_config(setting)
        assert {k: v for k, v in ran.items() if k in chosen and k != "train"} == {
            k: v for k, v in chosen.items() if k != "train"}
        assert chosen.get("train", {}).items() <= ran.get("train", {}).items()
