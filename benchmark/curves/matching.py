"""Reading accuracy-cost curves at matched budgets.

A method's curve is its operating points, each a (GFLOPs per video, mAP) pair averaged over
seeds. Two methods at different costs cannot be ranked from one point each; read at the same
budget, they can. A curve's mAP at a budget B is interpolated linearly between the two points
whose costs bracket B; outside the range of its points it is undefined, never extrapolated (a
method measured from 20 to 80 GFLOPs says nothing about 10 or 100). Where two points share a
cost, the better one stands for it (an operator at that cost would pick it).

The interval of a difference at a budget is the paired bootstrap of
benchmark/measurement/bootstrap.py carried through the interpolation: each resample's mAPs at
the two bracketing points are combined with the same weights as the estimate, for the method
and for the reference (Uniform-K), on the same resampled videos. So the interval covers the test
videos' sampling and, since each point's mAP is a mean over seeds, the seeds' spread as the
mean shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.measurement.bootstrap import CONFIDENCE, Difference

#: The budgets curves are compared at, as shares of the reference's (Uniform-25's) GFLOPs: the
#: matched-budget table's columns, and where a continuous evaluation-time knob is measured
#: (benchmark/curves/sweep.py ``budget_values``).
SHARES = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Curve:
    """One method's operating points, sorted by cost (equal costs: the better point kept).

    ``draws`` (R, P), optional: each point's mAP on each bootstrap resample (seeds averaged),
    for paired intervals."""

    gflops: np.ndarray  # (P,)
    maps: np.ndarray  # (P,)
    draws: np.ndarray | None = None  # (R, P)

    @classmethod
    def of(cls, gflops: Sequence[float], maps: Sequence[float], draws: np.ndarray | None = None) -> Curve:
        g, m = np.asarray(gflops, dtype=np.float64), np.asarray(maps, dtype=np.float64)
        if g.shape != m.shape or g.ndim != 1 or len(g) == 0:
            raise ValueError(f"a curve needs as many costs as mAPs (got {g.shape} and {m.shape})")
        d = None if draws is None else np.asarray(draws, dtype=np.float64)
        if d is not None and d.shape[1:] != g.shape:
            raise ValueError(f"draws must be (resamples, {len(g)}), got {d.shape}")
        order = np.lexsort((-m, g))  # by cost, the better mAP first among equal costs
        keep = np.ones(len(g), dtype=bool)
        keep[1:] = g[order][1:] != g[order][:-1]
        chosen = order[keep]
        return cls(g[chosen], m[chosen], None if d is None else d[:, chosen])

    def bracket(self, budget: float) -> tuple[int, int, float] | None:
        """(i, j, w): the value at ``budget`` is (1 - w) * v[i] + w * v[j]; None outside the points."""
        g = self.gflops
        if budget < g[0] or budget > g[-1]:
            return None
        j = int(np.searchsorted(g, budget, side="left"))
        if g[j] == budget:
            return j, j, 0.0
        i = j - 1
        return i, j, float((budget - g[i]) / (g[j] - g[i]))

    def span_at(self, budget: float) -> tuple[float, float] | None:
        """The costs of the two measured points the reading at ``budget`` lies between (one point
        twice where a point is at the budget); None outside the points."""
        found = self.bracket(budget)
        return None if found is None else (float(self.gflops[found[0]]), float(self.gflops[found[1]]))

    def map_at(self, budget: float) -> float | None:
        """mAP at ``budget`` GFLOPs, interpolated; None where the curve has no points around it."""
        found = self.bracket(budget)
        if found is None:
            return None
        i, j, w = found
        return float((1 - w) * self.maps[i] + w * self.maps[j])

    def draws_at(self, budget: float) -> np.ndarray | None:
        """Each resample's mAP at ``budget``, with the estimate's weights: (R,)."""
        found = self.bracket(budget)
        if found is None or self.draws is None:
            return None
        i, j, w = found
        return (1 - w) * self.draws[:, i] + w * self.draws[:, j]

    def cost_to_reach(self, target: float) -> float | None:
        """The least GFLOPs at which the interpolated curve reaches ``target`` mAP; None if it
        never does within its points."""
        g, m = self.gflops, self.maps
        if m[0] >= target:
            return float(g[0])
        for k in range(1, len(g)):
            if m[k] >= target:
                # m[k - 1] < target <= m[k]: the crossing lies on this segment.
                w = (target - m[k - 1]) / (m[k] - m[k - 1])
                return float(g[k - 1] + w * (g[k] - g[k - 1]))
        return None


def matched_difference(method: Curve, reference: Curve, budget: float,
                       confidence: float = CONFIDENCE) -> Difference | None:
    """mAP(method) - mAP(reference) at ``budget`` GFLOPs with its paired bootstrap interval;
    None where either curve does not cover the budget. Both curves' draws must come from the
    same resamples of the same videos."""
    a, b = method.map_at(budget), reference.map_at(budget)
    da, db = method.draws_at(budget), reference.draws_at(budget)
    if a is None or b is None or da is None or db is None:
        return None
    if da.shape != db.shape:
        raise ValueError("the two curves' draws come from different resamples")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(da - db, [tail, 100 - tail])
    return Difference(a - b, float(low), float(high), len(da), confidence)


def pareto_front(curves: dict[str, Curve]) -> dict[str, list[int]]:
    """For each method, the indices of its points that no point of any method dominates (another
    point at most as costly and at least as accurate, better in one of the two)."""
    everything = [(name, k, float(c.gflops[k]), float(c.maps[k])) for name, c in curves.items()
                  for k in range(len(c.gflops))]
    front: dict[str, list[int]] = {name: [] for name in curves}
    for name, k, g, m in everything:
        dominated = any(g2 <= g and m2 >= m and (g2 < g or m2 > m) for _, _, g2, m2 in everything)
        if not dominated:
            front[name].append(k)
    return front
