"""Whether a trained pair learned: the rule that keeps a collapsed method from being a silent row.

A table row is what people cite, so a method that did not learn must say so in its row, whatever
store it ran on (issue 43: on a store nobody had tuned on, AR-Net's policy skipped every frame
and scored chance, and its row looked like any other). The verdict is read from what selection
saw, never from the evaluation split: the validations every pair records (benchmark/training.py),
its training history, and the per-frame costs its record keeps. So it is the same whether a pair
is a tuning trial or a table row, and computing it cannot steer a choice towards the test split.

A pair did not learn when any of these holds (``verdict``):

* **chance**: its best validation mAP is below ``CHANCE_FACTOR`` times what a constant scorer
  gets. A constant score ranks every video alike, so its AP for a class is that class's share of
  the videos, and their mean over C single-label classes is 1 / C (the class count of its
  per-class APs). Twice chance leaves room for the noise of a few validation videos a class and
  still flags a model that learned next to nothing.
* **reads no fine frame**: the method reads the fine stream (its record has a fine per-frame
  cost), yet at every validation it read fewer than one fine frame per video. A validation's
  GFLOPs bound its fine reads from above (every fine read costs at least the fine backbone's
  per-frame GMACs), so a bound below one at every validation is a policy that learned to read
  nothing, not a cheap one.
* **memorised**: the training cross-entropy fell below ``MEMORISED_LOSS`` of its first value
  while the best validation mAP stayed below ``MEMORISED_VALIDATION``: the model fits its
  training videos and nothing else (an LSTM of a million parameters on 272 videos, say).

A row is marked when any of its seeds did not learn; the mark names the seeds and why. Records
keep every number used here, so ``report --check`` reaches the same verdict from the files.
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmark.record import PairRecord

#: A best validation mAP below this many times chance (1 / classes) is "near chance".
CHANCE_FACTOR = 2.0
#: Training cross-entropy below this fraction of its first logged value is "fitted".
MEMORISED_LOSS = 0.01
#: ... and "memorised" when the best validation mAP stays below this (0..1).
MEMORISED_VALIDATION = 0.5
#: How a row whose method did not learn is marked in the table (beside its name).
MARK = "(did not learn)"


def chance_map(record: PairRecord) -> float:
    """What a constant scorer's mAP is on single-label data of the record's classes: 1 / C."""
    return 1.0 / max(1, len(record.per_class_ap))


def _validation_maps(record: PairRecord) -> list[float]:
    maps = [float(v["map"]) for v in record.selection.get("validations") or [] if isinstance(v, Mapping)]
    best = record.selection.get("best_validation_map")
    return maps or ([float(best)] if best is not None else [])


def _cross_entropy(history: list[dict[str, float]]) -> list[float]:
    """The training history's classification loss: its ``ce`` where logged, else its loss (which
    for a method with a policy term is not a cross-entropy, so only ``ce`` is read when present)."""
    for key in ("ce", "classifier_ce", "loss"):
        values = [float(h[key]) for h in history if isinstance(h, Mapping) and key in h]
        if values:
            return values
    return []


def verdict(record: PairRecord) -> str:
    """Why the pair did not learn, in words with its numbers; "" when it learned (module docstring)."""
    maps = _validation_maps(record)
    if not maps:
        return ""  # a record without validations (none written so far) says nothing either way
    best, chance = max(maps), chance_map(record)
    if best < CHANCE_FACTOR * chance:
        return f"best validation mAP {100 * best:.1f}, chance {100 * chance:.1f}"
    fine = float(record.per_frame_gmacs.get("fine") or 0.0)
    validations = [v for v in record.selection.get("validations") or [] if isinstance(v, Mapping)]
    if fine > 0 and validations:
        most = max(float(v["gflops"]) / fine for v in validations)
        if most < 1.0:
            return f"read fewer than one fine frame a video at every validation (at most {most:.2f})"
    losses = _cross_entropy(record.train_history)
    if len(losses) > 1 and losses[0] > 0 and losses[-1] < MEMORISED_LOSS * losses[0] and best < MEMORISED_VALIDATION:
        return (f"memorised: training cross-entropy {losses[-1]:.3g} ({100 * losses[-1] / losses[0]:.1f}% of its "
                f"first), best validation mAP {100 * best:.1f}")
    return ""


def row_verdict(seeds: Mapping[str, PairRecord]) -> str:
    """A row's verdict: the seeds that did not learn, each with why; "" when every seed learned."""
    found = [(seed, why) for seed, record in seeds.items() if (why := verdict(record))]
    if not found:
        return ""
    if len(found) == len(seeds) and len({why for _, why in found}) == 1:
        return f"every seed: {found[0][1]}"
    return "; ".join(f"seed {seed}: {why}" for seed, why in found)


def row_verdicts(per_seed: Mapping[str, Mapping[str, PairRecord]]) -> dict[str, str]:
    """Each label of a folder summary's pairs (``record.summary_records``) that did not learn -> why."""
    return {label: why for label, seeds in per_seed.items() if seeds and (why := row_verdict(seeds))}


def note(rows: Mapping[str, str]) -> str:
    """The caption sentence for the rows (row name -> why) that did not learn; "" for none."""
    if not rows:
        return ""
    which = "; ".join(f"{name}: {why}" for name, why in rows.items())
    return (f"Did not learn, as the validations show (benchmark/protocol/learned.py): {which}. A row marked {MARK} "
            "is not a method's result, and no comparison should rest on it: choose the method's settings on this "
            "store (python -m benchmark tune) first.")
