"""Accuracy-cost curves read at matched budgets (benchmark/curves/matching.py), against values
computed by hand."""

from __future__ import annotations

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
