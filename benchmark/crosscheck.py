"""Cross-machine check: a run compared with the results that were in its folder before (the earlier results).

Floating-point results are bit-identical on the same kind of machine and differ elsewhere
(other CPU kernels round differently), so a run never silently reuses results computed on
another machine (``Runner.verdict``), and never silently diverges from them either: before
it replaces them, their summary is kept (``results.EARLIER``); afterwards each method's
seed-mean mAP and GFLOPs are compared with it (``results.CROSSCHECK``), and a difference is
called *within the earlier spread* when it is at most ``SPREAD_FACTOR`` standard deviations of
the earlier seeds (a single earlier seed has no spread: only an identical number is within).
Only like is compared with like: a method whose settings, budget or seeds changed since is
listed as not compared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

from benchmark import results
from benchmark.record import PairRecord, PerSeed, records_of, summary_records
from benchmark.results import SCHEMA_KEY, SCHEMA_VERSION, read_json
from datasets.common.atomic import atomic_write_json

SPREAD_FACTOR = 2.0
QUANTITIES = {"map_percent": "mAP (%)", "gflops": "GFLOPs/video"}

log = logging.getLogger(__name__)


def computed_elsewhere(pair_dir: Path, platform: dict[str, Any]) -> bool:
    """Whether ``pair_dir`` holds a finished result computed on another kind of machine."""
    record = PairRecord.parsed(_read(results.record_path(pair_dir)))
    return record is not None and record.platform != platform  # absent or corrupt: not a finished result


def _read(path: Path) -> Any:
    """``results.read_json``, with a warning for a file that is there but unreadable: an
    earlier summary that cannot be read is no comparison, and must not stop a run (even --force)."""
    data = read_json(path)
    if data is None and path.is_file():
        log.warning("%s is unreadable (empty or not JSON); ignoring it", path)
    return data


def load(out: Path, *, replacing: bool = True) -> dict[str, Any] | None:
    """The earlier results of ``out``: while ``replacing`` results computed elsewhere, the kept
    earlier summary if there is one of the current schema (a resumed replacement compares with
    what was there before it began), else the folder's current summary (None when there is
    neither). A later run on this machine compares with the current summary, not with the other
    machine's results the folder keeps as a record."""
    kept = _read(out / results.EARLIER) if replacing else None
    if isinstance(kept, dict) and kept.get(SCHEMA_KEY) == SCHEMA_VERSION and not _completed(out, kept):
        return kept
    data = _read(out / results.SUMMARY)
    per_seed = summary_records(out)
    if not isinstance(data, dict) or "summary" not in data or not per_seed:
        return None
    platforms = {json.dumps(r.platform, sort_keys=True) for seeds in per_seed.values() for r in seeds.values()}
    provenance = _read(out / results.PROVENANCE)
    dataset = (provenance or {}).get("dataset", {}).get("fingerprint") if isinstance(provenance, dict) else None
    return {SCHEMA_KEY: SCHEMA_VERSION, "summary": data["summary"], "configs": configs(per_seed),
            "dataset_fingerprint": dataset,
            "platforms": [json.loads(p) for p in sorted(platforms)],
            "source": f"{out / results.SUMMARY} as it was before this run"}


def configs(per_seed: PerSeed) -> dict[str, Any]:
    """What each method's results were computed with (settings and budget), for comparing like with like."""
    out = {}
    for name, seeds in per_seed.items():
        first = next(iter(seeds.values()))
        out[name] = {"hparams": first.hparams, "train": first.train, "budget_steps": first.budget_steps,
                     "seeds": sorted(seeds)}
    return out


def keep(out: Path, earlier: dict[str, Any]) -> None:
    """Save the earlier results once per replacement; a resumed run then compares with the same
    ones. Those a finished replacement compared with (``_completed``) are a record of that one,
    not of this: they give way to the results this replacement began from."""
    kept = _read(out / results.EARLIER)
    if not isinstance(kept, dict) or _completed(out, kept):
        atomic_write_json(out / results.EARLIER, earlier)


def digest(earlier: dict[str, Any]) -> str:
    """Names one set of earlier results (what a cross-machine check says it compared with)."""
    named = {key: earlier.get(key) for key in ("summary", "platforms", "source")}
    return hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()[:16]


def _completed(out: Path, kept: dict[str, Any]) -> bool:
    """Whether the kept earlier results are those a finished replacement compared with: the
    folder's cross-machine check names them by digest."""
    check = _read(out / results.CROSSCHECK)
    return isinstance(check, dict) and check.get("earlier_digest") == digest(kept)


def compare(earlier: dict[str, Any], current: dict[str, Any], dataset_fingerprint: str | None = None) -> dict[str, Any]:
    """Per method in both and computed with the same settings on the same data: the earlier and
    the new means, their difference, and whether it lies within the earlier seeds' spread.
    ``current`` is the folder's new summary; methods whose settings changed are listed, not
    compared, and nothing is compared when the dataset changed (``dataset_fingerprint``, the
    run's, against the earlier one's)."""
    rows, skipped = [], {}
    now = configs(records_of(current["per_seed"]))
    earlier_data = earlier.get("dataset_fingerprint")
    other_data = earlier_data is not None and dataset_fingerprint is not None and earlier_data != dataset_fingerprint
    earlier_rows = earlier["summary"]
    for name, new in current["summary"].items():
        old = earlier_rows.get(name)
        if old is None:
            continue
        if other_data:
            skipped[name] = f"the dataset changed (fingerprint {earlier_data} -> {dataset_fingerprint})"
            continue
        if earlier.get("configs", {}).get(name) != now[name]:
            skipped[name] = "settings, budget or seeds changed"
            continue
        for key, label in QUANTITIES.items():
            old_mean, old_std, new_mean = old[key]["mean"], old[key]["std"], new[key]["mean"]
            diff = new_mean - old_mean
            band = SPREAD_FACTOR * old_std if old_std is not None and not math.isnan(old_std) else 0.0
            rows.append({"method": name, "quantity": label, "earlier": old_mean, "earlier_std": old_std,
                         "earlier_seeds": old["seeds"], "new": new_mean, "difference": diff,
                         "within_spread": abs(diff) <= band + 1e-9, "band": band})
    return {"rule": f"|new - earlier| <= {SPREAD_FACTOR:g} x the earlier results' std over seeds",
            "earlier_source": earlier.get("source"), "earlier_platforms": earlier.get("platforms"),
            "earlier_digest": digest(earlier),
            "rows": rows, "not_compared": skipped}


def describe(check: dict[str, Any]) -> str:
    """The comparison as lines to print."""
    lines = [f"Compared with the results that were here ({check['rule']}):"]
    for row in check["rows"]:
        verdict = "within the earlier spread" if row["within_spread"] else "OUTSIDE the earlier spread"
        lines.append(f"  {row['method']:<14} {row['quantity']:<13} {row['new']:8.2f} vs {row['earlier']:8.2f} "
                     f"(difference {row['difference']:+.2f}, band ±{row['band']:.2f}): {verdict}")
    for name, why in check.get("not_compared", {}).items():
        lines.append(f"  {name:<14} not compared: {why}")
    return "\n".join(lines)
