"""How long the rest of a run will take, from the pairs it has finished and the ones it kept.

A pair's time is its method's: every seed of a method trains for the same step budget on the
same data, so a method's finished pair predicts its other seeds. Before a method has finished a
pair here, its time is taken from a pair of it the results folder already holds (a resumed run,
or a run with more seeds), or from another machine's pair of it, scaled (below); with none,
the ETA waits for one of its pairs to finish (methods differ a hundredfold: Uniform's seconds
say nothing of LiteEval's minutes).

The pairs left are laid out on the jobs as the workers take them: in the order given, each to
the first worker free, the pairs being computed counting only what their estimate says they
have left (so the last LiteEval pair, five minutes in, leaves seconds, not another five
minutes). The time left is when the last worker would finish: a rough figure, printed with
each finished pair so that a long run says when it will end, not a promise.

A pair's time says something only of the kind of machine that computed it (the lent GPU
machine's CPU trains LiteEval-RL in a third of the 2-core VM's time): earlier pairs count as
they are only when their record was computed on this processor and device type
(``timed_here``). Another machine's pairs (a clean clone's committed results, on a user's own
machine) count once this machine has finished a pair of a method they also time: scaled by
this machine's time over theirs on what it finished (``RunClock.speed``), and the ETA says so.
The pairs of one method under several labels (a tune's trials, a sweep's points, an ablation's
rows) predict one another (``method_of``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import mean, median
from typing import TYPE_CHECKING

from datasets.common.progress import duration, eta_text

if TYPE_CHECKING:
    from benchmark.record import PairRecord


def method_of(label: str) -> str:
    """The method a row label names: the registered name before a knob's point ("@") or a trial's,
    an ablation row's or a variant's suffix ("-"); registered names hold neither."""
    return label.split("@")[0].split("-")[0]


def machine_here(device: str) -> str:
    """This machine's kind (``provenance.machine_kind``) when it computes on ``device``."""
    from benchmark.provenance import cpu_model, gpu_name, machine_kind

    return machine_kind({"cpu": cpu_model(), "device": device, "gpu": gpu_name(device)})


def timed_here(record: PairRecord, here: str) -> float | None:
    """Seconds a pair took (training and evaluation), if its record was computed on the kind of
    machine ``here`` (``machine_here``); None otherwise, or when the record has no time. (Where
    it was computed does not matter for comparing methods with one another: ``PairRecord.seconds``.)"""
    from benchmark.provenance import machine_kind

    if not record.platform or machine_kind(record.platform) != here:
        return None
    return record.seconds


def pair_seconds(root: Path, folders: Sequence[str], here: str) -> dict[str, float]:
    """Seconds a pair of each method took in ``folders`` under ``root`` on this kind of machine
    (``here``; training and evaluation; the median of every such pair of the method, whatever its
    label: a trial's, a knob point's)."""
    from benchmark.record import summary_records

    seconds: dict[str, list[float]] = {}
    for folder in folders:
        for label, seeds in summary_records(root / folder).items():
            for record in seeds.values():
                took = timed_here(record, here)
                if took is not None:
                    seconds.setdefault(method_of(label), []).append(took)
    return {method: median(times) for method, times in seconds.items()}


def expected(name: str, seconds: Mapping[str, float]) -> float | None:
    """Seconds a pair labelled ``name`` should take by ``seconds`` (label -> a pair's time): its
    own label's, else the mean of its method's under other labels; None when neither is there."""
    if name in seconds:
        return seconds[name]
    alike = [t for other, t in seconds.items() if method_of(other) == method_of(name)]
    return mean(alike) if alike else None


class RunClock:
    """Pairs finished and the time left, for ``pending`` (method name, seed) pairs on ``jobs``."""

    def __init__(self, pending: Sequence[tuple[str, int]], jobs: int,
                 earlier: Mapping[str, float] | None = None, now: Callable[[], float] = time.monotonic,
                 elsewhere: Mapping[str, float] | None = None) -> None:
        self.pending = list(pending)
        self.jobs = max(1, jobs)
        self.earlier = dict(earlier or {})
        #: A pair's time by label from any machine (the folder's pairs, whoever computed them):
        #: scaled by how much faster or slower this machine was on the pairs it finished, they
        #: time the methods it has not finished yet (``estimate``).
        self.elsewhere = dict(elsewhere or {})
        self.times: dict[str, list[float]] = {}
        self.finished: set[tuple[str, int]] = set()
        self.now = now
        self.start = now()
        #: Pairs being computed and when they started: workers take pairs in the order given,
        #: the first ``jobs`` at once, then the next one whenever a pair finishes.
        self.running: dict[tuple[str, int], float] = {}
        self._take()

    def _take(self) -> None:
        waiting = (pair for pair in self.pending if pair not in self.finished and pair not in self.running)
        for pair in waiting:
            if len(self.running) >= self.jobs:
                break
            self.running[pair] = self.now()

    def estimate(self, name: str) -> float | None:
        """Seconds one pair of ``name`` takes (None: nothing to go by yet): its own finished pairs,
        else those of its method under other labels, else the earlier pairs of this kind of
        machine, else another machine's (``elsewhere``) times this machine's speed on them."""
        return self._estimate(name)[0]

    def _estimate(self, name: str) -> tuple[float | None, bool]:
        """``estimate``, and whether it is another machine's time scaled (``scaled``)."""
        if self.times.get(name):
            return mean(self.times[name]), False
        method = method_of(name)
        alike = [t for other, times in self.times.items() if method_of(other) == method for t in times]
        if alike:
            return mean(alike), False
        here = expected(name, self.earlier)
        if here is not None:
            return here, False
        there, speed = expected(name, self.elsewhere), self.speed()
        return (None, False) if there is None or speed is None else (there * speed, True)

    def speed(self) -> float | None:
        """This machine's time for a pair over another machine's (``elsewhere``), the median over
        the labels finished here that have one; None before any such pair has finished."""
        ratios = [mean(times) / there for name, times in self.times.items()
                  if (there := expected(name, self.elsewhere))]
        return median(ratios) if ratios else None

    def scaled(self) -> bool:
        """Whether a pair left is timed by another machine's time, scaled (``estimate``)."""
        return any(self._estimate(name)[1] for name, _ in self.left())

    def left(self) -> list[tuple[str, int]]:
        return [pair for pair in self.pending if pair not in self.finished]

    def untimed(self) -> list[str]:
        """The methods left with nothing to estimate their time by, in order."""
        return list(dict.fromkeys(name for name, _ in self.left() if self.estimate(name) is None))

    def seconds_left(self) -> float | None:
        """When the last worker would finish, from now (the module docstring); None while a pair
        left has nothing to estimate its time by."""
        if not self.left():
            return 0.0
        if self.untimed():
            return None
        now = self.now()
        free = [max(0.0, (self.estimate(name) or 0.0) - (now - began)) for (name, _), began in self.running.items()]
        free += [0.0] * (self.jobs - len(free))
        for name, seed in self.left():
            if (name, seed) not in self.running:
                first = free.index(min(free))
                free[first] += self.estimate(name) or 0.0
        return max(free)

    def plan(self) -> str:
        """What the run is about to do and, where earlier pairs say, how long it should take."""
        left = self.seconds_left()
        guess = f"; about {duration(left)} by earlier pairs of this folder" if left else ""
        return f"{len(self.pending)} method/seed pair(s) to compute{guess}"

    def done(self, name: str, seed: int, seconds: float) -> str:
        """Record a finished pair; the line that says so, with the run's progress and ETA."""
        self.times.setdefault(name, []).append(seconds)
        self.finished.add((name, seed))
        self.running.pop((name, seed), None)
        self._take()
        return (f"{name} seed {seed}: done in {duration(seconds)}; {len(self.finished)} of {len(self.pending)} pairs "
                f"done, {duration(self.now() - self.start)} elapsed, {self.eta()}")

    def eta(self) -> str:
        untimed = list(dict.fromkeys(map(method_of, self.untimed())))
        if untimed:
            shown = ", ".join(untimed[:4]) + (f" and {len(untimed) - 4} more" if len(untimed) > 4 else "")
            return f"ETA once a pair of each of {shown} has finished"
        scaled = " (scaled from another machine's times)" if self.scaled() else ""
        return eta_text(self.seconds_left()) + scaled
