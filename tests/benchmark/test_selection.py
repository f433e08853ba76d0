"""A fair table: held-out selection, one budget for all, seeds with intervals, tuning, reference checks."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from benchmark import crosscheck, pair
from benchmark.__main__ import main
from benchmark.commands.tune import search_keys, trial_settings
from benchmark.config import RunConfig
from benchmark.context import RunContext
from benchmark.measurement import bootstrap, metrics
from benchmark.protocol import selection
from benchmark.protocol.budget import Budget
from benchmark.protocol.selection import Candidate
from benchmark.protocol.splits import carve_validation
from benchmark.record import records_of
from benchmark.runner import Runner
from benchmark.training import fit
from datasets.common.gitinfo import REPO
from datasets.loading.bank import FeatureBank
from methods import TrainConfig, available_methods, resolve_method


@pytest.fixture(autouse=True)
def data_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LITEEVAL_DATA", str(tmp_path_factory.getbasetemp() / "data-cache"))


def config(store: Path, root: Path, methods: list[str], **overrides) -> RunConfig:
    values = {"dataset": str(store), "methods": methods, "seeds": [0], "budget": Budget(steps=6, validations=3),
              "results_root": str(root), "show_progress": False, **overrides}
    return RunConfig(**values)


# ---------------------------------------------------------------------------- the validation split
def test_the_validation_split_is_deterministic_stratified_and_disjoint(tiny_store, tmp_path):
    labels = np.eye(5, dtype=np.uint8)[np.arange(100) % 5]
    a, b = carve_validation(labels), carve_validation(labels)
    assert np.array_equal(a.val_rows, b.val_rows) and np.array_equal(a.train_rows, b.train_rows)
    assert not set(a.val_rows) & set(a.train_rows) and len(a.val_rows) + len(a.train_rows) == 100
    assert len(a.val_rows) == 15 and np.bincount(labels[a.val_rows].argmax(1)).tolist() == [3] * 5  # stratified
    assert not np.array_equal(carve_validation(labels, seed=1).val_rows, a.val_rows)
    # A class with one video cannot be stratified: it stays in training.
    lonely = np.vstack([np.pad(labels, ((0, 0), (0, 1))), np.eye(6, dtype=np.uint8)[[5]]])
    assert 100 in carve_validation(lonely).train_rows

    ctx = RunContext.create(config(tiny_store, tmp_path, ["uniform"]))
    val_ids = set(ctx.held_out.val_ids(ctx.train_ids))
    store = ctx.store
    eval_ids = set(store.header.video_ids[store.split_rows(ctx.eval_split)].tolist())
    train_ids = {ctx.train_ids[i] for i in ctx.held_out.train_rows}
    assert val_ids and not val_ids & eval_ids and not val_ids & train_ids
    assert val_ids | train_ids == set(ctx.train_ids)
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="val-fraction"):
            carve_validation(labels, bad)


def test_selection_never_reads_the_evaluation_split(tiny_store, tmp_path, monkeypatch):
    """Poison the evaluation split's labels and features: the selected model is the same."""
    cfg = config(tiny_store, tmp_path, ["liteeval"], budget=Budget(steps=9, validations=3))
    clean = RunContext.create(cfg)
    method, stats = pair.train(clean, clean.plans[0], 0)

    poisoned = RunContext.create(cfg)
    bank = poisoned.bank(poisoned.eval_split)
    bank.labels = torch.roll(bank.labels, 1, dims=1)
    for stream in bank.features:
        bank.features[stream] = torch.randn_like(bank.features[stream]) * 100
    read = []
    real = FeatureBank.batches

    def spy(self, *args, **kwargs):
        read.append(self.split)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FeatureBank, "batches", spy)
    again, stats_again = pair.train(poisoned, poisoned.plans[0], 0)
    assert set(read) == {poisoned.train_split}
    assert stats_again.selection_record() == stats.selection_record() and stats.chosen_step is not None
    for name, tensor in method.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


def exact(step: int, score: float, gflops: float = 1.0) -> Candidate:
    """A checkpoint scored without noise (every resample gives its mAP)."""
    return Candidate(step, score, np.full(selection.RESAMPLES, score), gflops)


def test_the_best_validation_checkpoint_is_kept_and_patience_stops(tiny_store):
    bank = FeatureBank(tiny_store, "train", device="cpu", show_progress=False)
    cls = resolve_method("uniform")
    states, scores = [], iter([0.2, 0.6, 0.4, 0.3, 0.1, 0.9])

    def validate(method, step):
        states.append({k: v.clone() for k, v in method.state_dict().items()})
        return exact(step, next(scores))

    method = cls(bank.num_classes, {"fine": bank.dim("fine")})
    stats = fit(method, bank, TrainConfig(), Budget(steps=12, validations=6, patience=3, batch_size=32), seed=0,
                validate=validate, show_progress=False)
    record = stats.selection_record()
    assert [v["step"] for v in record["validations"]] == [2, 4, 6, 8, 10]  # stopped: 3 validations without gain
    assert stats.stopped_early and stats.steps == 10 and stats.chosen_step == 4
    assert record["chosen_validation_map"] == record["best_validation_map"] == 0.6
    for name, tensor in method.state_dict().items():
        assert torch.equal(tensor, states[1][name])


def test_a_method_trained_in_stages_is_chosen_and_stopped_within_its_last_stage(tiny_store):
    """A pretraining stage's checkpoints are not the method (its policy never trained), and its
    plateau must not end the run before the next stage has trained (methods/base.py phase_starts)."""
    bank = FeatureBank(tiny_store, "train", device="cpu", show_progress=False)
    base = resolve_method("uniform")

    class Staged(base):  # type: ignore[misc, valid-type]
        def phase_starts(self, steps):
            return (6,)

    # Stage one (steps 2, 4, 6 validated; 6 is its last) peaks early; stage two starts after step 6.
    scores = iter([0.9, 0.5, 0.4, 0.3, 0.6, 0.5, 0.55, 0.2, 0.1, 0.1])
    method = Staged(bank.num_classes, {"fine": bank.dim("fine")})
    stats = fit(method, bank, TrainConfig(), Budget(steps=20, validations=10, patience=3, batch_size=32), seed=0,
                validate=lambda m, step: exact(step, next(scores)), show_progress=False)
    record = stats.selection_record()
    # Without stages the run would stop at step 8 (3 validations below 0.9) and keep step 2.
    assert [v["step"] for v in record["validations"]] == [8, 10, 12, 14, 16]
    assert stats.chosen_step == 10 and stats.stopped_early and stats.steps == 16


def test_a_cheaper_checkpoint_within_the_noise_is_kept(tiny_store):
    """The rule, applied to checkpoints: the best mAP (step 4) costs 3x; step 2 is within one
    standard error of it and cheaper, so step 2's weights are restored, and the record says why."""
    bank = FeatureBank(tiny_store, "train", device="cpu", show_progress=False)
    method = resolve_method("uniform")(bank.num_classes, {"fine": bank.dim("fine")})
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.02, selection.RESAMPLES)
    scored = {2: (0.80, 10.0, noise), 4: (0.81, 30.0, np.zeros(selection.RESAMPLES)), 6: (0.70, 5.0, noise)}
    states = {}

    def validate(method, step):
        states[step] = {k: v.clone() for k, v in method.state_dict().items()}
        score, gflops, jitter = scored[step]
        return Candidate(step, score, score + jitter, gflops)

    stats = fit(method, bank, TrainConfig(), Budget(steps=6, validations=3, patience=None, batch_size=32), seed=0,
                validate=validate, show_progress=False)
    record = stats.selection_record()
    assert stats.chosen_step == 2 and record["best_step"] == 4 and record["criterion"] == selection.RULE
    verdicts = {v["step"]: v for v in record["validations"]}
    assert verdicts[2]["within_noise"] and verdicts[4]["within_noise"] and not verdicts[6]["within_noise"]
    assert verdicts[2]["chosen"] and verdicts[2]["gap_to_best"] == pytest.approx(0.01)
    for name, tensor in method.state_dict().items():
        assert torch.equal(tensor, states[2][name])


def test_the_selection_rule_on_scores():
    """One function decides for trials and checkpoints: within one paired-bootstrap standard error
    of the best, the cheapest; a constant cost leaves the choice to mAP; ties go to the earlier."""
    rng = np.random.default_rng(3)
    n, c = 200, 5
    labels = np.eye(c, dtype=bool)[rng.integers(0, c, n)]
    noise = rng.random((n, c))
    counts = selection.resample_counts(n)
    strong = selection.candidate("strong", noise + 0.5 * labels, labels, 100.0, counts)
    jitter = np.random.default_rng(1).normal(0, 0.03, (n, c))  # a little worse, well within the noise
    close = selection.candidate("close", noise + 0.5 * labels + jitter, labels, 60.0, counts)
    weak = selection.candidate("weak", noise + 0.05 * labels, labels, 10.0, counts)
    assert strong.map > close.map > weak.map
    chosen = selection.choose([strong, close, weak])
    assert chosen.best == "strong" and chosen.chosen == "close"
    verdict = chosen.verdict("close")
    assert verdict.within_noise and 0 < verdict.gap <= verdict.standard_error
    assert not chosen.verdict("weak").within_noise
    # The standard error is that of the paired difference over the fixed resamples.
    expected = np.std(strong.draws - close.draws)
    assert verdict.standard_error == pytest.approx(expected)
    # A constant cost: the highest mAP; equal candidates: the earlier one.
    flat = [selection.Candidate(k, m.map, m.draws, 50.0) for k, m in enumerate([weak, close, strong])]
    assert selection.choose(flat).chosen == 2
    assert selection.choose([exact(0, 0.5), exact(1, 0.5)]).chosen == 0
    with pytest.raises(ValueError, match="nothing to select"):
        selection.choose([])


# ---------------------------------------------------------------------------- one budget
def test_the_budget_rule_gives_every_method_the_same_steps(tiny_store, tmp_path):
    budget = Budget()
    assert budget.total_steps(272) == budget.min_steps  # a small dataset gets the floor
    assert budget.total_steps(64_000) == 30_000  # a large one 30 passes
    assert Budget(steps=7).total_steps(10**6) == 7
    cfg = config(tiny_store, tmp_path, list(available_methods()), budget=Budget(epochs=2, min_steps=5, patience=None))
    Runner(cfg).run()
    per_seed = json.loads((tmp_path / "tiny" / "metrics.json").read_text())["per_seed"]
    steps = {name: seeds["0"]["train_steps"] for name, seeds in per_seed.items()}
    assert set(steps) == set(available_methods()) and set(steps.values()) == {5}
    assert {seeds["0"]["budget_steps"] for seeds in per_seed.values()} == {5}
    with pytest.raises(ValueError, match="--min-steps 0"):
        Budget(min_steps=0)


# ---------------------------------------------------------------------------- uncertainty
def test_average_precision_is_scikit_learns_with_ties():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((3, 40, 5)), 1)  # many ties
    labels = rng.random((40, 5)) < 0.3
    labels[:, 4] = False  # a class without positives: NaN, left out of the mean
    ours = bootstrap.average_precision(scores, labels)
    for s in range(3):
        for c in range(4):
            assert ours[s, c] == pytest.approx(average_precision_score(labels[:, c], scores[s, :, c]), abs=1e-6)
        assert np.isnan(ours[s, 4])
        assert bootstrap.mean_ap(scores, labels)[s] == pytest.approx(metrics.score(scores[s], labels).map, abs=1e-6)


def test_the_bootstrap_interval_matches_a_brute_force_loop():
    rng = np.random.default_rng(1)
    n, c = 30, 4
    labels = np.eye(c, dtype=bool)[rng.integers(0, c, n)]
    method = rng.random((2, n, c)) + 0.6 * labels
    reference = rng.random((3, n, c)) + 0.3 * labels
    indices = bootstrap.resample_indices(n, resamples=200, seed=3)
    fast = bootstrap.paired_difference(method, reference, labels, bootstrap.resample_counts(indices, n))
    draws = []
    for rows in indices:
        a = np.mean([metrics.score(m[rows], labels[rows]).map for m in method])
        b = np.mean([metrics.score(r[rows], labels[rows]).map for r in reference])
        draws.append(a - b)
    low, high = np.percentile(draws, [2.5, 97.5])
    full = np.mean([metrics.score(m, labels).map for m in method]) - np.mean(
        [metrics.score(r, labels).map for r in reference])
    assert fast.estimate == pytest.approx(full, abs=1e-6)
    assert (fast.low, fast.high) == pytest.approx((low, high), abs=1e-5)
    assert fast.low < fast.estimate < fast.high and fast.resamples == 200


def test_the_tables_draws_in_threads_are_the_one_thread_draws(monkeypatch):
    """folder_summary.resampled_maps shares the methods over threads (the cores idle after a run's
    pairs); each method's draws are the same numbers as computed alone."""
    from benchmark import folder_summary

    rng = np.random.default_rng(2)
    n, c = 40, 5
    labels = np.eye(c, dtype=bool)[rng.integers(0, c, n)]
    per_method = {f"m{k}": rng.random((3, n, c)) + 0.2 * k * labels for k in range(4)}
    counts = bootstrap.resample_counts(bootstrap.resample_indices(n, resamples=300), n)
    monkeypatch.setattr(folder_summary, "available_cores", lambda: 3)
    threaded = folder_summary.resampled_maps(per_method, labels, counts)
    assert list(threaded) == list(per_method)
    for name, scores in per_method.items():
        assert np.array_equal(threaded[name], bootstrap.resampled_maps(scores, labels, counts))


def test_the_table_shows_seeds_and_the_difference_to_uniform(tiny_store, tmp_path):
    cfg = config(tiny_store, tmp_path, ["uniform", "lstm"], seeds=[0, 1])
    texts = Runner(cfg).run()
    assert "Δ mAP vs Uniform [95% CI]" in texts["table.md"] and "(baseline)" in texts["table.md"]
    assert "mean ± std over 2 seeds" in texts["table.md"] and "validation" in texts["table.md"]
    summary = json.loads((tmp_path / "tiny" / "metrics.json").read_text())["summary"]
    delta = summary["lstm"]["delta_map_vs_uniform"]
    assert delta["ci_low"] <= delta["estimate"] <= delta["ci_high"] and delta["resamples"] == bootstrap.RESAMPLES
    assert summary["lstm"]["map_percent"]["std"] is not None and "delta_map_vs_uniform" not in summary["uniform"]


def test_compare_prints_the_paired_difference_of_two_rows(tiny_store, tmp_path, capsys):
    """`benchmark compare` is the table's Δ for any two rows: against Uniform it prints the table's number."""
    from benchmark.presentation.compare import compare

    cfg = config(tiny_store, tmp_path, ["uniform", "lstm", "liteeval"], seeds=[0, 1])
    Runner(cfg).run()
    out = tmp_path / "tiny"
    summary = json.loads((out / "metrics.json").read_text())["summary"]
    delta = summary["lstm"]["delta_map_vs_uniform"]
    found = compare(out, "LSTM", "uniform")  # a row name or a result name, any case
    assert (found.difference.estimate, found.difference.low, found.difference.high) == pytest.approx(
        (delta["estimate"], delta["ci_low"], delta["ci_high"]))
    assert found.seeds == [0, 1] and found.evaluated_on == "test"
    assert main(["compare", str(out), "liteeval", "lstm"]) == 0
    printed = capsys.readouterr().out
    assert "LiteEval against LSTM, seeds [0, 1] pooled" in printed and "times LSTM" in printed
    assert main(["compare", str(out), "liteeval", "framexit"]) == 2
    assert "no row 'framexit'" in capsys.readouterr().err
    # Across folders: the same rows in bfloat16 against these, paired by video.
    Runner(config(tiny_store, tmp_path, ["lstm"], seeds=[0, 1], name="bf16", precision="bf16")).run()
    across = compare(tmp_path / "bf16", "lstm", "lstm", against=out)
    assert across.seeds == [0, 1] and across.a.precision == "bf16" and across.b.precision == "fp32"
    assert across.difference.low <= across.difference.estimate <= across.difference.high
    assert main(["compare", str(tmp_path / "bf16"), "lstm", "lstm", "--against", str(out)]) == 0
    assert "LSTM (bf16) against" in capsys.readouterr().out
    # Runs named as every command names them (issue 46: `compare mine ...` found no folder).
    assert main(["compare", "bf16", "lstm", "lstm", "--against", "tiny", "--results-dir", str(tmp_path)]) == 0
    assert "LSTM (bf16) against" in capsys.readouterr().out
    assert main(["compare", str(out), "lstm", "lstm"]) == 2  # one folder, one row: nothing to compare
    capsys.readouterr()
    # Rows scored on other splits are named with their folders and splits (found: "liteeval and
    # liteeval were scored on different splits", the same row name of two folders).
    from benchmark.presentation import compare as compare_module

    real_row = compare_module._folder_row

    def on_validation(folder, asked):
        row = real_row(folder, asked)
        if Path(folder) != out:
            return row
        return dataclasses.replace(row, records={s: dataclasses.replace(r, evaluated_on="validation")
                                                 for s, r in row.records.items()})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compare_module, "_folder_row", on_validation)
        assert main(["compare", str(tmp_path / "bf16"), "lstm", "lstm", "--against", str(out)]) == 2
    assert (f"lstm was scored on test and {out}: lstm on validation; a paired comparison needs the same videos"
            in capsys.readouterr().err)
    # A mistyped path is named as typed, not joined under --results-dir ("results/results/x").
    assert main(["compare", "results/nosuch", "lstm", "uniform", "--results-dir", str(tmp_path)]) == 2
    assert "error: results/nosuch: no results folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------- tuning
def test_every_method_declares_a_valid_search_space_of_the_same_size():
    sizes = set()
    for name, cls in available_methods().items():
        kinds = search_keys(cls)
        assert kinds, name
        sizes.add(int(np.prod([len(v) for v in cls.search_space.values()])))
    assert len(sizes) == 1  # the same tuning effort for every built-in method


def test_tune_writes_a_config_that_run_accepts(tiny_store, tmp_path, capsys, monkeypatch):
    loaded = []
    real = FeatureBank.__init__

    def spy(self, store, split, **kwargs):
        loaded.append(split)
        real(self, store, split, **kwargs)

    monkeypatch.setattr(FeatureBank, "__init__", spy)
    common = ["--dataset", str(tiny_store), "--steps", "3", "--validations", "2", "--jobs", "1",
              "--results-dir", str(tmp_path)]
    assert main(["-q", "tune", "--methods", "uniform", "liteeval", "--trials", "2", *common]) == 0
    assert set(loaded) == {"train"}  # tuning never loads the evaluation split
    out = tmp_path / "tiny-tune"
    tuned = json.loads((out / "tuned.json").read_text())
    assert set(tuned) == {"uniform", "liteeval"} and "lr" in tuned["liteeval"]["train"]
    record = json.loads((out / "tune.json").read_text())
    assert len(record["trials"]) == 4 and {t["trial"] for t in record["trials"]} == {0, 1}
    assert "tuned.json" in capsys.readouterr().out
    assert main(["-q", "run", "--methods", "uniform", "liteeval", "--seeds", "0", "--config", str(out / "tuned.json"),
                 *common]) == 0
    per_seed = json.loads((tmp_path / "tiny" / "metrics.json").read_text())["per_seed"]
    assert per_seed["liteeval"]["0"]["train"]["lr"] == tuned["liteeval"]["train"]["lr"]


def test_a_method_can_take_its_own_number_of_trials_and_its_first_trials_do_not_move(tiny_store, tmp_path, capsys):
    """reproduce evens out each method's studies with `tune --trials N METHOD=N`
    (benchmark/reproduce.py ``evened_trials``): a method's trials are the first of the same draw
    whatever their number, so a longer tune keeps the shorter one's trials; a count for a method
    not tuned, or a malformed one, is one line (exit 2)."""
    from benchmark.plans import plan_methods

    common = ["--dataset", str(tiny_store), "--steps", "2", "--validations", "2", "--jobs", "1",
              "--results-dir", str(tmp_path)]
    assert main(["-q", "tune", "--methods", "uniform", "lstm", "--trials", "3", "lstm=1", *common]) == 0
    record = json.loads((tmp_path / "tiny-tune" / "tune.json").read_text())
    assert record["trials_per_method"] == {"uniform": 3, "lstm": 1}
    assert sorted((t["method"], t["trial"]) for t in record["trials"]) == [("lstm", 0), ("uniform", 0),
                                                                          ("uniform", 1), ("uniform", 2)]
    assert "trials: uniform 3, lstm 1" in (tmp_path / "tiny-tune" / "tune.md").read_text()
    (plan,) = plan_methods(RunConfig(methods=["uniform"]), "tiny")
    assert trial_settings(plan, 6, tune_seed=0)[:3] == trial_settings(plan, 3, tune_seed=0)
    capsys.readouterr()
    assert main(["-q", "tune", "--methods", "uniform", "--trials", "3", "lstm=1", *common]) == 2
    assert "--trials lstm=1: not among the methods tuned (uniform)" in capsys.readouterr().err
    assert main(["-q", "tune", "--methods", "uniform", "--trials", "3", "uniform", *common]) == 2
    assert "give METHOD=N after the count" in capsys.readouterr().err


def test_a_design_study_of_several_methods_gives_each_its_own_space(tiny_store, tmp_path, capsys):
    """``--space`` keyed by method searches each method's own settings in one tune (the shipped
    design settings are chosen from such studies, results/shipped-design); a method left out, or
    one not tuned, is one line (exit 2)."""
    common = ["--dataset", str(tiny_store), "--steps", "2", "--validations", "2", "--jobs", "1",
              "--results-dir", str(tmp_path)]
    space = {"scsampler": {"reading": ["official", "suite"]}, "uniform": {"dropout": [0.5, 0.0]}}
    assert main(["-q", "tune", "--methods", "uniform", "scsampler", "--trials", "2", "--space", json.dumps(space),
                 *common]) == 0
    record = json.loads((tmp_path / "tiny-tune" / "tune.json").read_text())
    assert record["search_spaces"] == space
    assert sorted((t["method"], json.dumps(t["setting"])) for t in record["trials"]) == [
        ("scsampler", '{"reading": "official"}'), ("scsampler", '{"reading": "suite"}'),
        ("uniform", '{"dropout": 0.0}'), ("uniform", '{"dropout": 0.5}')]
    capsys.readouterr()
    assert main(["-q", "tune", "--methods", "uniform", "lstm", "--trials", "2", "--space", json.dumps(space),
                 *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gives the spaces of scsampler, uniform" in err[0] and "uniform, lstm" in err[0]


def test_trials_start_from_the_current_setting_and_do_not_repeat():
    from benchmark.plans import plan_methods

    (plan,) = plan_methods(RunConfig(methods=["lstm"]), "default")
    settings = trial_settings(plan, 5, tune_seed=0)
    assert settings[0] == {"train.lr": plan.train.lr, "train.weight_decay": plan.train.weight_decay,
                           "dropout": plan.full_hparams()["dropout"]}
    assert len({json.dumps(s, sort_keys=True) for s in settings}) == 5
    assert trial_settings(plan, 5, tune_seed=0) == settings
    with pytest.raises(ValueError, match="only 18 settings"):
        trial_settings(plan, 19, tune_seed=0)


# ---------------------------------------------------------------------------- other machines
def as_if_computed_on(out: Path, cpu: str, shift: float) -> None:
    """Make the uniform pairs of ``out`` read as computed on ``cpu``, their summary's mAP ``shift`` higher."""
    for path in out.glob("runs/*/seed*/record.json"):
        record = json.loads(path.read_text())
        record["computed"]["platform"]["cpu"] = cpu
        path.write_text(json.dumps(record))
    summary = json.loads((out / "metrics.json").read_text())
    summary["summary"]["uniform"]["map_percent"]["mean"] += shift
    for record in summary["per_seed"]["uniform"].values():
        record["computed"]["platform"]["cpu"] = cpu
    (out / "metrics.json").write_text(json.dumps(summary))


def test_results_from_another_machine_are_recomputed_and_compared(tiny_store, tmp_path, capsys, caplog):
    args = ["-q", "run", "--dataset", str(tiny_store), "--methods", "uniform", "--seeds", "0", "1", "--steps", "3",
            "--results-dir", str(tmp_path)]
    assert main(args) == 0
    out = tmp_path / "tiny"
    capsys.readouterr()
    assert main(args) == 0  # same machine: kept, nothing to compare
    assert "Compared with" not in capsys.readouterr().out and not (out / "earlier.json").exists()

    as_if_computed_on(out, "Another CPU", 50.0)  # the committed results came from another CPU, another mean
    with caplog.at_level(logging.WARNING, logger="benchmark.runner"):
        assert main(args) == 0
    said = [r.getMessage() for r in caplog.records if "another kind of machine" in r.getMessage()]
    assert len(said) == 1  # one line for all such pairs, not one a pair
    assert "2 pair(s)" in said[0] and "(cpu Another CPU; here: cpu " in said[0] and "uniform seeds 0 1" in said[0]
    printed = capsys.readouterr().out
    assert "Compared with the results that were here" in printed and "OUTSIDE the earlier spread" in printed
    check = json.loads((out / "crosscheck.json").read_text())
    rows = {row["quantity"]: row for row in check["rows"]}
    assert rows["mAP (%)"]["difference"] == pytest.approx(-50.0) and not rows["mAP (%)"]["within_spread"]
    assert rows["GFLOPs/video"]["within_spread"]  # recomputed identically on this machine
    assert check["earlier_platforms"][0]["cpu"] == "Another CPU"
    assert json.loads((out / "earlier.json").read_text())["summary"]["uniform"]["map_percent"]["mean"] > 50

    # Other settings are not compared with the reference, they are named.
    config = tmp_path / "lr.json"
    config.write_text(json.dumps({"uniform": {"train": {"lr": 0.01}}}))
    assert main([*args, "--config", str(config), "--force"]) == 0
    assert "uniform        not compared: settings, budget or seeds changed" in capsys.readouterr().out
    # Found: a later --force run on this machine compared with the kept earlier.json (the other
    # machine's results, at other settings) and said "not compared" of bit-identical pairs.
    assert main([*args, "--config", str(config), "--force"]) == 0
    printed = capsys.readouterr().out
    assert "not compared" not in printed and "mAP (%)" in printed and "OUTSIDE" not in printed
    assert json.loads((out / "earlier.json").read_text())["summary"]["uniform"]["map_percent"]["mean"] > 50  # kept

    # Found: on a third machine, the run compared with the earlier.json of the finished replacement
    # above (the first machine's results), not with the results that were in the folder.
    as_if_computed_on(out, "Third CPU", 30.0)
    assert main([*args, "--config", str(config)]) == 0
    check = json.loads((out / "crosscheck.json").read_text())
    rows = {row["quantity"]: row for row in check["rows"]}
    assert rows["mAP (%)"]["difference"] == pytest.approx(-30.0) and check["earlier_platforms"][0]["cpu"] == "Third CPU"
    kept = json.loads((out / "earlier.json").read_text())
    assert kept["platforms"][0]["cpu"] == "Third CPU" and check["earlier_digest"] == crosscheck.digest(kept)


def test_results_on_another_dataset_are_not_compared_with_the_reference():
    """Found: after the default store changed, the run compared its numbers with the old store's."""
    row = {"gflops": {"mean": 195.0, "std": 0.0}, "seeds": 3}
    summary = {"uniform": {**row, "map_percent": {"mean": 90.0, "std": 1.0}}}
    record = json.loads((REPO / "results/default/runs/uniform/seed0/record.json").read_text())
    per_seed = {"uniform": {"0": {**record, "hparams": {}, "train": {}, "budget_steps": 600}}}
    earlier = {"summary": {"uniform": {**row, "map_percent": {"mean": 91.0, "std": 1.0}}},
               "configs": crosscheck.configs(records_of(per_seed)), "dataset_fingerprint": "aaaa"}
    current = {"schema_version": 2, "summary": summary, "per_seed": per_seed}
    rows = crosscheck.compare(earlier, current, "aaaa")["rows"]
    assert rows[0]["quantity"] == "mAP (%)" and rows[0]["difference"] == pytest.approx(-1.0)
    check = crosscheck.compare(earlier, current, "bbbb")
    assert not check["rows"] and "dataset changed" in check["not_compared"]["uniform"]


def test_the_shipped_presets_repeat_their_records_and_say_truly_where_they_were_chosen():
    """Every built-in method's `default` preset names its origins (methods/presets.py): the values
    it ships are the ones its records chose, and the split each origin declares is the one its
    record's trials say they were scored on (four records say test: issue 24)."""
    from benchmark import preset_origin
    from benchmark.plans import plan_methods

    plans = {p.name: p for p in plan_methods(RunConfig(suite="extended"), "default")}
    origins = preset_origin.origins()
    assert set(origins) == set(plans)  # every built-in method says where its preset comes from
    found = preset_origin.choices()
    assert len(found) == sum(len(o) for o in origins.values())  # every origin's record holds its choice
    for choice in found:
        plan = plans[choice.method]
        assert preset_origin.uses(choice.setting, plan.full_hparams(), asdict(plan.train)), choice
        assert choice.declared == choice.scored_on, choice
        keys = {k for k in choice.setting if k != "train"} | {f"train.{k}" for k in choice.setting.get("train", {})}
        assert keys == set(choice.keys), choice
        origin = next(o for o in origins[choice.method] if o.record == choice.folder)
        assert set(choice.keys) <= set(origin.keys), choice
    # A setting two records chose is the later one's (a study on top of the tune): LiteEval's dropout.
    liteeval = {c.folder: c.keys for c in found if c.method == "liteeval"}
    assert "dropout" in liteeval["default-liteeval-dropout-tune"]
    assert all("dropout" not in keys for folder, keys in liteeval.items() if folder != "default-liteeval-dropout-tune")
    # Another store's presets that name origins are held to the same: LiteEval-RL on `small`.
    small = {p.name: p for p in plan_methods(RunConfig(suite="extended", dataset="small"), "small")}
    found = preset_origin.choices("small")
    assert {c.method for c in found} == set(preset_origin.origins("small")) == {"liteeval_rl"}
    for choice in found:
        assert preset_origin.uses(choice.setting, small[choice.method].full_hparams(),
                                  asdict(small[choice.method].train)), choice
        assert choice.declared == choice.scored_on == "validation", choice


def test_the_shipped_presets_are_the_settings_reproduce_chose():
    """The README's main job (`run`: the presets) computes what `reproduce` computes (`run
    --no-presets --config results/default.settings.json`: class defaults and the choices of its
    tune and studies): every method's settings are the same either way, on the default and on the
    other store a study chose for, so the chosen values live in the records and the code repeats
    them (benchmark/reproduce.py)."""
    from benchmark import preset_origin
    from benchmark.plans import plan_methods

    for dataset in ("default", "small"):
        settings = REPO / "results" / f"{dataset}.settings.json"
        assert settings.is_file(), f"{settings}: missing; `python -m benchmark reproduce` writes it"

        def resolved(**config) -> dict[str, tuple[dict, dict]]:
            cfg = RunConfig(suite="extended", dataset=dataset, **config)  # noqa: B023
            return {p.name: (p.full_hparams(), asdict(p.train)) for p in plan_methods(cfg, dataset)}  # noqa: B023

        shipped, chosen = resolved(), resolved(presets=False, config_file=str(settings))
        covered = set(json.loads(settings.read_text())) - {"_store"}  # the methods chosen on this store
        if dataset != "default":  # `run` there trains with the record itself (benchmark/select_first.py, step 1);
            covered &= set(preset_origin.origins(dataset))  # a preset named for the store repeats it where one is
        differ = [f"{dataset}: {method}: {key} ships {shipped[method][part].get(key)!r}, reproduce chose {value!r}"
                  for method in sorted(covered) for part in (0, 1) for key, value in chosen[method][part].items()
                  if shipped[method][part].get(key) != value]
        assert not differ, "adopt the chosen settings in the presets (methods/<method>.py):\n" + "\n".join(differ)


def test_methods_verbose_prints_where_each_preset_was_chosen(capsys):
    assert main(["methods", "--verbose"]) == 0
    printed = capsys.readouterr().out
    assert "dropout, train.lr, train.weight_decay: chosen by results/default-tune on 2026-12-07, trials " \
           "scored on validation" in printed
    assert "policy_through, entropy_weight: chosen by results/default-liteeval-rl-tune on" in printed
    assert "set by hand: the paper's section 3.1" in printed
