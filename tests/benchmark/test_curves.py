"""Accuracy-cost curves read at matched budgets (benchmark/curves/matching.py), against values
computed by hand."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from benchmark.curves.matching import Curve, matched_difference, pareto_front


def test_interpolation_between_the_bracketing_points_and_never_beyond_them():
    curve = Curve.of([40.0, 10.0, 20.0], [0.90, 0.60, 0.80])  # given out of order: sorted by cost
    assert curve.gflops.tolist() == [10.0, 20.0, 40.0]
    assert curve.map_at(10.0) == pytest.approx(0.60) and curve.map_at(40.0) == pytest.approx(0.90)
    assert curve.map_at(15.0) == pytest.approx(0.70)  # halfway from 0.60 to 0.80
    assert curve.map_at(25.0) == pytest.approx(0.825)  # a quarter of the way from 0.80 to 0.90
    assert curve.map_at(9.9) is None and curve.map_at(40.1) is None  # no extrapolation


def test_the_cost_to_reach_a_target_is_where_the_curve_first_crosses_it():
    curve = Curve.of([10.0, 20.0, 40.0], [0.60, 0.80, 0.90])
    assert curve.cost_to_reach(0.70) == pytest.approx(15.0)
    assert curve.cost_to_reach(0.85) == pytest.approx(30.0)
    assert curve.cost_to_reach(0.50) == pytest.approx(10.0)  # already there at its cheapest point
    assert curve.cost_to_reach(0.95) is None
    dip = Curve.of([10.0, 20.0, 30.0], [0.70, 0.60, 0.90])  # not monotone: the first crossing counts
    assert dip.cost_to_reach(0.65) == pytest.approx(10.0)
    assert dip.cost_to_reach(0.75) == pytest.approx(20.0 + 10.0 * (0.15 / 0.30))


def test_points_at_one_cost_keep_the_better():
    curve = Curve.of([10.0, 10.0, 20.0], [0.5, 0.7, 0.8], draws=np.array([[0.4, 0.6, 0.9]]))
    assert curve.maps.tolist() == [0.7, 0.8] and curve.draws.tolist() == [[0.6, 0.9]]


def test_a_matched_difference_carries_the_interpolation_through_every_resample():
    draws_a = np.array([[0.60, 0.80], [0.50, 0.90], [0.70, 0.70]])  # 3 resamples x 2 points
    draws_b = np.array([[0.55, 0.65], [0.60, 0.60], [0.50, 0.70]])
    a = Curve.of([10.0, 20.0], [0.60, 0.80], draws_a)
    b = Curve.of([5.0, 25.0], [0.55, 0.75], draws_b)
    diff = matched_difference(a, b, 15.0, confidence=0.5)
    # a at 15: halfway, 0.70; b at 15: halfway from 5 to 25, 0.65.
    assert diff.estimate == pytest.approx(0.05)
    per_resample = np.array([0.70 - 0.60, 0.70 - 0.60, 0.70 - 0.60])  # a: .7/.7/.7; b: .6/.6/.6
    assert diff.low == pytest.approx(np.percentile(per_resample, 25))
    assert matched_difference(a, b, 22.0) is None  # a has no point beyond 20


def test_the_front_holds_the_points_nothing_beats_at_their_cost():
    curves = {"cheap": Curve.of([10.0, 30.0], [0.70, 0.75]), "good": Curve.of([20.0, 40.0], [0.80, 0.95])}
    # cheap@30 (0.75) is beaten by good@20 (0.80, cheaper); the rest are on the front.
    assert pareto_front(curves) == {"cheap": [0], "good": [0, 1]}


def test_a_sweep_without_the_reference_is_refused_before_it_trains(tmp_path, capsys):
    """Found (issue 45): `curves --methods lstm` trained every point, then failed: no uniform curve."""
    from benchmark.__main__ import main

    assert main(["-q", "curves", "--dataset", "tiny", "--methods", "lstm", "--steps", "2", "--seeds", "0",
                 "--results-dir", str(tmp_path)]) == 2
    assert "add uniform to --methods" in capsys.readouterr().err and not any(tmp_path.iterdir())


# ------------------------------------------------------------------------ the sweep on the tiny store
def test_curves_sweeps_both_kinds_of_knob_resumes_and_reads_the_table(tmp_path, capsys, caplog):
    """`benchmark curves` on the tiny store: Uniform (an evaluation-time knob: one training, every
    point evaluated), LiteEval (a training-time knob: one training per point) and a plug-in that
    declares its own knob. The run's pairs at the methods' own settings are reused, a second call
    recomputes nothing, and the matched-budget table reads from the saved points."""
    import json
    from pathlib import Path

    import pandas as pd

    from benchmark.__main__ import main

    plugin = tmp_path / "knobbed.py"
    example = (Path(__file__).resolve().parents[2] / "docs/examples/coarse_mean.py").read_text()
    example = example.replace("import MethodOutput", "import CostKnob, MethodOutput")
    plugin.write_text(example.replace("    online = False  # the mean uses the whole video\n",
                               "    online = False  # the mean uses the whole video\n"
                               '    cost_knob = CostKnob("dropout", (0.0, 0.5), "training", "dropout")\n'))
    spec = f"{plugin}:CoarseMean"
    # Settings fixed here rather than the shipped defaults, which may move: with these, LiteEval's two
    # points on the tiny store lie far from each other, so the table has interpolated cells to mark.
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({m: {"dropout": 0.5, "train": {"lr": 0.001, "weight_decay": 0.0001}}
                                    for m in ("uniform", "liteeval")}))
    common = ["-q", "--dataset", "tiny", "--steps", "2", "--seeds", "0", "1", "--results-dir", str(tmp_path),
              "--config", str(settings)]
    methods = ["--methods", "uniform", "liteeval", spec]
    assert main(["-q", "run", *common[1:], *methods]) == 0
    assert main(["-q", "curves", *common[1:], *methods, "--points", "2"]) == 0
    out = tmp_path / "tiny-curves"
    table = pd.read_csv(out / "curves.csv", dtype={"point": str})
    found = set(zip(table.method, table.point))
    # --points thins the trained points; an evaluation-time frame count is measured at every count
    assert sorted(p for p in found if p[0] != "uniform") == [
        ("coarse_mean", "0.0"), ("coarse_mean", "0.5"), ("liteeval", "0.001"), ("liteeval", "0.2")]
    assert sorted(int(k) for m, k in found if m == "uniform") == list(range(1, 26))
    uniform = table[table.method == "uniform"].groupby("point").fine_frames.mean()
    assert uniform["3"] == 3 and uniform["25"] > uniform["3"]  # the knob moved what it reads
    assert (out / "points" / "uniform" / "frames=3" / "seed1" / "scores.npz").is_file()
    assert (out / "runs" / "liteeval@gamma=0.2" / "seed0" / "record.json").is_file()
    assert json.loads((out / "curves.json").read_text())["knobs"]["uniform"]["setting"] == "frames"
    assert "| Uniform " in (out / "curves.md").read_text() and (out / "figures" / "curves.pdf").is_file()
    # Measured and interpolated cells are told apart (issue 44): Uniform, measured at every frame
    # count, is read within 5% of every budget; a method read between two distant points is marked.
    from benchmark.presentation.curves import INTERPOLATED
    from benchmark.presentation.curves import matched_budgets as read_now

    reading = read_now(out)
    uniform_row = next(m for m in reading.rows if m.method == "uniform")
    assert all(uniform_row.measured(s, s * reading.base_gflops) for s in (0.25, 0.5, 1.0))
    marked = [(m.method, s) for m in reading.rows for s in (0.25, 0.5, 1.0)
              if m.maps[s] is not None and not m.measured(s, s * reading.base_gflops)]
    cells = (out / "curves.md").read_text().split("\n\n")[0]
    assert marked and cells.count(f" {INTERPOLATED}") == len(marked)
    assert f"{INTERPOLATED} where both lie further away" in (out / "curves.md").read_text()
    # The README reads the saved matched-budget reading; it says what the table says, and only
    # while the curves.csv it came from is unchanged.
    from benchmark.presentation.curves import matched_budgets, matched_table, read_matched

    assert matched_table(out, read=read_matched(out)) == (out / "curves.md").read_text()
    assert read_matched(out) == matched_budgets(out)
    saved = json.loads((out / "matched.json").read_text())
    (out / "matched.json").write_text(json.dumps({**saved, "curves_csv_sha256": "0" * 64, "base_map": 0.0}))
    assert read_matched(out).base_map == matched_budgets(out).base_map > 0  # a stale reading is recomputed
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("**/record.json")} | {
        p: p.stat().st_mtime_ns for p in out.glob("points/**/point.json")}
    capsys.readouterr()
    assert main(["-q", "curves", *common[1:], *methods, "--points", "2"]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}  # resumed: nothing recomputed
    # Found: in a fresh clone (weights are not committed) the sweep trained every new point for 36
    # minutes, then stopped at the first evaluation-time point whose model it could not load. A pair
    # whose points remain to be evaluated and that has no weights is trained again first.
    shutil.rmtree(out / "points" / "uniform" / "frames=7" / "seed0")
    (out / "runs" / "uniform" / "seed0" / "model.pt").unlink()
    with caplog.at_level(logging.WARNING, logger="benchmark.curves.sweep"):
        assert main(["-q", "curves", *common[1:], *methods, "--points", "2"]) == 0
    assert any("no weights here" in r.getMessage() and "uniform seed 0" in r.getMessage() for r in caplog.records)
    assert (out / "points" / "uniform" / "frames=7" / "seed0" / "point.json").is_file()


def test_a_sweep_takes_the_tables_current_pairs_in_place_of_its_own_outdated_ones(tmp_path):
    """After the table is recomputed at new settings, `curves --refresh` copies the table's pairs
    (the methods at their own settings) over the sweep's outdated ones instead of training them
    again: the sweep's record is the table's, byte for byte (a retrained one has its own times)."""
    from benchmark.__main__ import main

    common = ["-q", "--dataset", "tiny", "--seeds", "0", "--methods", "uniform", "--results-dir", str(tmp_path)]
    assert main(["-q", "run", *common[1:], "--steps", "2"]) == 0
    assert main(["-q", "curves", *common[1:], "--steps", "2", "--points", "2"]) == 0
    assert main(["-q", "run", *common[1:], "--steps", "3", "--refresh"]) == 0  # the table moves on
    assert main(["-q", "curves", *common[1:], "--steps", "3", "--points", "2", "--refresh"]) == 0
    table = tmp_path / "tiny" / "runs" / "uniform" / "seed0" / "record.json"
    sweep = tmp_path / "tiny-curves" / "runs" / "uniform" / "seed0" / "record.json"
    assert sweep.read_bytes() == table.read_bytes()


def test_the_summary_sorts_methods_by_the_side_of_zero_their_interval_lies_on():
    """The README's sentences say only what the matched-budget reading holds: at each budget,
    more accurate where the interval is above zero, no different where it spans zero, less where
    below, how many are not compared, and the cost to reach Uniform-25 in order."""
    from benchmark.measurement.bootstrap import Difference
    from benchmark.presentation.curves import Matched, MatchedBudgets, in_words

    def row(name, diff, reach=None, front=False, bound=False):
        return Matched(name, name.upper(), False, {0.25: 0.9, 0.5: 0.9, 1.0: None},
                       {0.25: None, 0.5: diff, 1.0: None}, reach, front, bound)

    read = MatchedBudgets(200.0, 0.915, [
        Matched("uniform", "Uniform", False, {0.25: 0.7, 0.5: 0.87, 1.0: 0.915}, {0.25: None, 0.5: None, 1.0: None},
                200.0, False),
        row("up", Difference(0.10, 0.08, 0.12, 1000, 0.95), reach=30.0, front=True, bound=True),
        row("flat", Difference(0.01, -0.01, 0.03, 1000, 0.95), reach=150.0),
        row("down", Difference(-0.05, -0.07, -0.03, 1000, 0.95)),
        row("short", None, front=True)])
    text = in_words(read, stale=frozenset({"DOWN"}))
    assert "front (a point that no point of any method beats in both cost and mAP): UP, SHORT." in text
    assert "At 25% of Uniform-25's cost (50.0 GFLOPs): no method's points reach it." in text
    assert ("At 50% of Uniform-25's cost (100.0 GFLOPs), against Uniform at that cost (1 of 4 methods' points do "
            "not reach it): more accurate: UP +10.0 [+8.0, +12.0]; no difference detected (the interval spans zero): "
            "FLAT +1.0 [-1.0, +3.0]; less accurate: DOWN (stale) -5.0 [-7.0, -3.0].") in text
    # UP's cheapest point already beats the target: its 30.0 is an upper bound, said so (issue 44).
    assert "(91.5; Uniform needs 200.0; \"at most\": the cheapest point already exceeds it): UP at most 30.0, " \
        "FLAT 150.0." in text
    # A method that did not learn is marked, and never named on the front (issue 43).
    text = in_words(read, not_learnt=frozenset({"SHORT"}))
    assert "front (a point that no point of any method beats in both cost and mAP): UP." in text
    text = in_words(read, not_learnt=frozenset({"UP"}))
    assert "more accurate: UP (did not learn) +10.0" in text and "cost and mAP): SHORT." in text


def test_curves_on_two_torchrun_ranks_shares_the_points_and_rank_0_writes_once(tmp_path):
    """Found: every rank took the sweep folder's lock (the second was refused) and copied the
    run's pairs in, so `torchrun ... -m benchmark curves` could not run. Rank 0 now copies and
    holds the lock; the ranks see the copies before they agree on the pairs left."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    from benchmark.__main__ import main

    repo = Path(__file__).resolve().parents[2]
    common = ["--dataset", "tiny", "--steps", "2", "--seeds", "0", "1", "--results-dir", str(tmp_path),
              "--methods", "uniform", "liteeval"]
    assert main(["-q", "run", *common]) == 0
    env = {**os.environ, "LITEEVAL_PROGRESS": "0", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "benchmark",
         "curves", *common, "--points", "2", "--device", "cpu"],
        cwd=repo, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "tiny-curves"
    table = pd.read_csv(out / "curves.csv", dtype={"point": str})
    assert sorted(set(zip(table.method, table.point)))[:2] == [("liteeval", "0.001"), ("liteeval", "0.2")]
    assert len(table) == (2 + 25) * 2  # every point (Uniform's frame counts 1 to 25), both seeds
    execution = json.loads((out / "provenance.json").read_text())["execution"]
    assert execution["world_size"] == 2 and execution["pairs_computed_here"] == 2  # 4 trained points, 2 ranks
    assert done.stderr.count("pair(s) of results/tiny reused") <= 1


def test_a_threshold_is_measured_where_its_cost_meets_each_budget_it_can_reach():
    """Issue 44: an evaluation-time threshold was measured at its declared points only, so a
    matched-budget cell between two distant points was read off a chord. Between the declared
    values whose costs bracket a budget, bisection measures the value whose cost meets it."""
    from benchmark.curves.sweep import AT_BUDGET, budget_values

    def gate(v: float) -> float:  # an exit gate: the higher the threshold, the more it reads; steep near 1
        return 10 + 90 * v ** 4

    values = budget_values([0.05, 0.2, 0.5, 0.95, 0.999], gate, [25.0, 50.0, 100.0, 200.0])
    for budget in (25.0, 50.0):
        assert any(abs(gate(v) - budget) <= AT_BUDGET * budget for v in values), budget
    assert all(gate(v) < gate(0.999) for v in values)  # 100 and 200 lie beyond its reach: no point there

    def utility(v: float) -> float:  # a stopping threshold: the higher, the earlier it stops
        return 40 - 150 * v

    [*_, last] = budget_values([0.2, 0.1, 0.0], utility, [30.0])
    assert abs(utility(last) - 30.0) <= AT_BUDGET * 30.0
    assert budget_values([0.0, 0.5, 1.0], lambda v: 100 * v, [50.0]) == []  # a declared point is at it already


def test_a_sweep_measures_a_plugins_threshold_at_the_budgets_and_trains_it_again_where_it_lacks_weights(
        tmp_path, caplog):
    """End to end: a plug-in with a continuous evaluation-time knob gets points at the matched
    budgets (curves.json says which), so its 25% cell is measured, not read off the chord between
    its declared points; in a clone without weights, the sweep trains it again before bisecting."""
    import json

    from benchmark.__main__ import main
    from benchmark.presentation.curves import matched_budgets

    plugin = tmp_path / "shared.py"
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from datasets.loading.sampling import UniformFrames\n"
        "from methods.base import CostKnob, bounded\n"
        "from methods.uniform import Uniform\n\n\n"
        "class Shared(Uniform):\n"
        "    name = 'shared'\n"
        "    display_name = 'Shared'\n"
        "    cost_knob = CostKnob('share', (0.1, 0.5, 1.0), 'evaluation', 'share of the frames read')\n\n"
        "    @dataclass(frozen=True)\n"
        "    class Hparams(Uniform.Hparams):\n"
        "        share: float = bounded(1.0, gt=0, le=1)\n\n"
        "    def sampler(self, train):\n"
        "        return UniformFrames(max(1, round(self.hp.share * self.hp.frames)))\n")
    common = ["--dataset", "tiny", "--steps", "2", "--seeds", "0", "--results-dir", str(tmp_path),
              "--methods", "uniform", f"{plugin}:Shared"]
    assert main(["-q", "curves", *common]) == 0
    out = tmp_path / "tiny-curves"
    [(name, values)] = json.loads((out / "curves.json").read_text())["at_budgets"]["values"].items()
    assert values and all(0.1 < v < 0.5 or 0.5 < v < 1.0 for v in values)
    reading = matched_budgets(out)
    row = next(m for m in reading.rows if m.method == name)
    assert row.measured(0.25, 0.25 * reading.base_gflops)
    point = out / "points" / name / f"share={values[0]}" / "seed0"
    shutil.rmtree(point)
    (out / "runs" / name / "seed0" / "model.pt").unlink()
    with caplog.at_level(logging.WARNING, logger="benchmark.curves.sweep"):
        assert main(["-q", "curves", *common]) == 0
    assert any("no weights here" in r.getMessage() and f"{name} seed 0" in r.getMessage() for r in caplog.records)
    assert (point / "point.json").is_file()
