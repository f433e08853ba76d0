"""How long the rest of a run will take, from the pairs it has finished and the ones it kept.

A pair's time is its method's: every seed of a method trains for the same step budget on the
same data, so a method's finished pair predicts its other seeds. Before a method has finished a
pair here, its time is taken from a pair of it the results folder already holds (a resumed run,
or a run with more seeds), else from the mean of every pair finished so far. The estimate of the
pairs left is spread over the jobs that compute them at once: a rough figure, printed with each
finished pair so that a long run says when it will end, not a promise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from statistics import mean

from datasets.common.progress import duration, eta_text

log = logging.getLogger(__name__)


class RunClock:
    """Pairs finished and the time left, for ``pending`` (method name, seed) pairs on ``jobs``."""

    def __init__(self, pending: Sequence[tuple[str, int]], jobs: int,
                 earlier: Mapping[str, float] | None = None) -> None:
        self.pending = list(pending)
        self.jobs = max(1, jobs)
        self.earlier = dict(earlier or {})
        self.times: dict[str, list[float]] = {}
        self.finished: set[tuple[str, int]] = set()
        self.start = time.monotonic()

    def estimate(self, name: str) -> float | None:
        """Seconds one pair of ``name`` takes (None: nothing to go by yet)."""
        if self.times.get(name):
            return mean(self.times[name])
        if name in self.earlier:
            return self.earlier[name]
        every = [t for times in self.times.values() for t in times]
        return mean(every) if every else None

    def seconds_left(self) -> float | None:
        left = [pair for pair in self.pending if pair not in self.finished]
        if not left:
            return 0.0
        estimates = [self.estimate(name) for name, _ in left]
        if any(e is None for e in estimates):
            return None
        return sum(e for e in estimates if e is not None) / min(self.jobs, len(left))

    def plan(self) -> str:
        """What the run is about to do and, where earlier pairs say, how long it should take."""
        left = self.seconds_left()
        guess = f"; about {duration(left)} by earlier pairs of this folder" if left else ""
        return f"{len(self.pending)} method/seed pair(s) to compute{guess}"

    def done(self, name: str, seed: int, seconds: float) -> str:
        """Record a finished pair; the line that says so, with the run's progress and ETA."""
        self.times.setdefault(name, []).append(seconds)
        self.finished.add((name, seed))
        return (f"{name} seed {seed}: done in {duration(seconds)}; {len(self.finished)} of {len(self.pending)} pairs "
                f"done, {duration(time.monotonic() - self.start)} elapsed, {eta_text(self.seconds_left())}")
