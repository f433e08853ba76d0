"""``python -m benchmark compare RUN A B``: two rows of a results folder, compared on the same videos.

Prose about results quotes numbers a command printed; this is the command for "A against B".
It computes what the table computes for every row against Uniform (benchmark/measurement/bootstrap.py):
the seed-pooled mAP difference A - B with its paired percentile bootstrap interval over the
evaluated videos (the same resamples, so ``compare RUN x uniform`` prints the table's Δ), and
the two costs with their ratio, from the pairs' saved scores and records. Rows are named by
their result name (``runs/<name>``) or their row name in the table, in any case; the seeds are
those both rows have. ``--against OTHER`` reads B from another results folder that scored the
same videos (e.g. the same methods in float32 and in bfloat16): the pairing is by video id, so
both must hold the same evaluated videos with the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark import results
from benchmark.measurement import bootstrap
from benchmark.presentation import words
from benchmark.record import PairRecord
from datasets.common.errors import UsageError


@dataclass(frozen=True)
class Row:
    name: str  # the result name under runs/
    shown: str  # the row name in the table
    records: dict[int, PairRecord]
    folder: Path

    @property
    def precision(self) -> str:
        # Pairs written before --precision computed in float32.
        return "/".join(sorted({str(r.computed.get("precision", "fp32")) for r in self.records.values()}))

    @property
    def gflops(self) -> float:
        return float(np.mean([r.gflops["mean"] for r in self.records.values()]))

    @property
    def stale(self) -> str:
        return "; ".join(sorted({r.stale for r in self.records.values()} - {""}))


@dataclass(frozen=True)
class Comparison:
    folder: Path
    a: Row
    b: Row
    seeds: list[int]
    evaluated_on: str
    num_videos: int
    map_a: float  # mean over seeds, 0..1
    map_b: float
    difference: bootstrap.Difference


def _rows(folder: Path) -> dict[str, str]:
    """Every row name of the folder's summary (and result name) -> its result name."""
    summary = (results.read_json(folder / results.SUMMARY) or {}).get("summary") or {}
    names = {name: name for name, _ in results.pairs_on_disk(folder)}
    names.update({str(entry.get("display_name")): name for name, entry in summary.items() if isinstance(entry, dict)})
    return names


def _resolve(folder: Path, asked: str, names: dict[str, str]) -> str:
    lowered = {k.lower(): v for k, v in names.items()}
    if asked.lower() not in lowered:
        raise UsageError(f"{folder}: no row {asked!r}; its rows: {', '.join(sorted(set(names.values())))}")
    return lowered[asked.lower()]


def _row(folder: Path, name: str, shown: dict[str, str]) -> Row:
    records = {}
    for seed in [seed for result, seed in results.pairs_on_disk(folder) if result == name]:
        pair = results.pair_dir(folder, name, seed)
        if results.pair_state(pair).done:
            records[seed] = PairRecord.load(results.record_path(pair))
    if not records:
        raise UsageError(f"{folder}: {name} has no complete pair; compute it with `python -m benchmark run`")
    return Row(name, shown.get(name, name), records, folder)


def _folder_row(folder: Path, asked: str) -> Row:
    if not (folder / results.RUNS).is_dir():
        raise FileNotFoundError(f"{folder}: no results folder with pairs here; pass results/<name> of a run")
    names = _rows(folder)
    shown = {result: row for row, result in names.items() if row != result}
    return _row(folder, _resolve(folder, asked, names), shown)


def compare(folder: Path | str, a: str, b: str, against: Path | str | None = None) -> Comparison:
    """Row ``a`` of the results folder ``folder`` against row ``b`` of ``against`` (default: the
    same folder); see the module docstring."""
    folder = Path(folder)
    other = folder if against is None else Path(against)
    left, right = _folder_row(folder, a), _folder_row(other, b)
    if left.name == right.name and other.resolve() == folder.resolve():
        raise UsageError(f"{a!r} and {b!r} are the same row; name two different rows (or another folder with "
                         "--against)")
    # Each row named with its folder where they come from two (--against).
    named_b = right.name if other.resolve() == folder.resolve() else f"{other}: {right.name}"
    seeds = sorted(set(left.records) & set(right.records))
    if not seeds:
        raise UsageError(f"{folder}: {left.name} (seeds {sorted(left.records)}) and {named_b} (seeds "
                         f"{sorted(right.records)}) share no seed")
    split_a, split_b = ({r.evaluated_on for s, r in row.records.items() if s in seeds} for row in (left, right))
    if len(split_a | split_b) != 1:
        raise UsageError(f"{folder}: {left.name} was scored on {', '.join(sorted(split_a))} and {named_b} on "
                         f"{', '.join(sorted(split_b))}; a paired comparison needs the same videos")
    ids_a, labels, scores_a = results.load_scores(folder, left.name, seeds)
    ids_b, labels_b, scores_b = results.load_scores(other, right.name, seeds)
    if not (np.array_equal(ids_a, ids_b) and np.array_equal(labels, labels_b)):
        raise UsageError(f"{folder}: {left.name} and {named_b} scored other videos (or other labels); a "
                         "paired comparison needs the same videos of the same store")
    counts = bootstrap.resample_counts(bootstrap.resample_indices(len(ids_a)), len(ids_a))
    difference = bootstrap.paired_difference(scores_a, scores_b, labels, counts)
    return Comparison(folder, left, right, seeds, split_a.pop(), len(ids_a),
                      float(bootstrap.mean_ap(scores_a, labels).mean()),
                      float(bootstrap.mean_ap(scores_b, labels).mean()), difference)


def describe(c: Comparison) -> str:
    """What ``python -m benchmark compare`` prints."""
    d = c.difference
    said = words.verdict(d.low, d.high)
    verdict = (f"{c.a.shown} {said}: the interval excludes 0" if said != words.UNDETECTED else
               f"{said}: the interval contains 0")
    where = (f"{c.folder}: {c.a.shown} against {c.b.shown}" if c.a.folder == c.b.folder else
             f"{c.a.folder}: {c.a.shown} ({c.a.precision}) against {c.b.folder}: {c.b.shown} ({c.b.precision})")
    lines = [
        f"{where}, seeds {c.seeds} pooled, {c.num_videos} videos of {c.evaluated_on}",
        f"  mAP (%)       {100 * c.map_a:.2f} vs {100 * c.map_b:.2f}; difference {100 * d.estimate:+.2f} "
        f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}] ({int(100 * d.confidence)}% paired bootstrap over the videos, "
        f"{d.resamples} resamples; {verdict})",
        f"  GFLOPs/video  {c.a.gflops:.1f} vs {c.b.gflops:.1f}; {c.a.shown} costs {c.a.gflops / c.b.gflops:.2f} "
        f"times {c.b.shown}",
    ]
    for row in (c.a, c.b):
        if row.stale:
            lines.append(f"  note: {row.shown} is stale: {row.stale}")
    return "\n".join(lines)
