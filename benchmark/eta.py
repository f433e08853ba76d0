"""How long the rest of a run will take, from the pairs it has finished and the ones it kept.

A pair's time is its method's: every seed of a method trains for the same step budget on the
same data, so a method's finished pair predicts its other seeds. Before a method has finished a
pair here, its time is taken from a pair of it the results folder already holds (a resumed run,
or a run with more seeds); with neither, the ETA waits for one of its pairs to finish (methods
differ a hundredfold: Uniform's seconds say nothing of LiteEval's minutes). The estimate of the
pairs left is spread over the jobs that compute them at once: a rough figure, printed with each
finished pair so that a long run says when it will end, not a promise.

A pair's time says something only of the kind of machine that computed it (the lent GPU
machine's CPU trains LiteEval-RL in a third of the 2-core VM's time): earlier pairs count only
when their record was computed on this processor and device type (``timed_here``). The pairs of
one method under several labels (a tune's trials, a sweep's points, an ablation's rows) predict
one another (``method_of``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from statistics import mean
from typing import Any

from datasets.common.progress import duration, eta_text


def method_of(label: str) -> str:
    """The method a row label names: the registered name before a knob's point ("@") or a trial's,
    an ablation row's or a variant's suffix ("-"); registered names hold neither."""
    return label.split("@")[0].split("-")[0]


def machine_here(device: str) -> dict[str, str]:
    """This machine as a pair's record names the one that computed it: processor and device type."""
    from benchmark.provenance import cpu_model

    return {"cpu": cpu_model(), "device": device.split(":")[0]}


def timed_here(record: Mapping[str, Any], here: Mapping[str, str]) -> float | None:
    """Seconds a pair took (training and evaluation), if its record was computed on the kind of
    machine ``here`` (``machine_here``); None otherwise, or when the record has no time."""
    platform = ((record.get("computed") or {}).get("platform") or {}) if isinstance(record, Mapping) else {}
    if platform.get("cpu") != here.get("cpu") or str(platform.get("device", "")).split(":")[0] != here.get("device"):
        return None
    seconds = float(record.get("train_seconds") or 0) + float(record.get("eval_seconds") or 0)
    return seconds or None


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
        """Seconds one pair of ``name`` takes (None: nothing to go by yet): its own finished pairs,
        else those of its method under other labels, else the earlier pairs given."""
        if self.times.get(name):
            return mean(self.times[name])
        method = method_of(name)
        alike = [t for other, times in self.times.items() if method_of(other) == method for t in times]
        if alike:
            return mean(alike)
        if name in self.earlier:
            return self.earlier[name]
        alike = [t for other, t in self.earlier.items() if method_of(other) == method]
        return mean(alike) if alike else None

    def left(self) -> list[tuple[str, int]]:
        return [pair for pair in self.pending if pair not in self.finished]

    def untimed(self) -> list[str]:
        """The methods left with nothing to estimate their time by, in order."""
        return list(dict.fromkeys(name for name, _ in self.left() if self.estimate(name) is None))

    def seconds_left(self) -> float | None:
        left = self.left()
        if not left:
            return 0.0
        if self.untimed():
            return None
        return sum(self.estimate(name) or 0.0 for name, _ in left) / min(self.jobs, len(left))

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
                f"done, {duration(time.monotonic() - self.start)} elapsed, {self.eta()}")

    def eta(self) -> str:
        untimed = list(dict.fromkeys(map(method_of, self.untimed())))
        if untimed:
            shown = ", ".join(untimed[:4]) + (f" and {len(untimed) - 4} more" if len(untimed) > 4 else "")
            return f"ETA once a pair of each of {shown} has finished"
        return eta_text(self.seconds_left())
