"""``python -m benchmark list-runs``: the results folders under a root, one line each, as a user asks of them.

Which runs are here, on what data, with which methods and seeds, where their pairs were computed,
how many of their pairs have their trained weights here (a clone has none: git keeps no weights,
and ``online``, ``latency`` and ``stream`` load them), and whether their tables can be cited
(``report --check``'s verdict: benchmark/presentation/audit.py).
It reads the folders' summaries and provenance and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import results as layout
from benchmark.presentation import audit
from benchmark.provenance import machine_kind
from benchmark.record import summary_records
from benchmark.results import remembering_pair_states
from datasets.common.progress import progress_bar

COLUMNS = ["Run", "Dataset", "Methods", "Seeds", "Pairs", "Weights here", "Computed on", "State"]


def _seeds(per_seed: dict[str, dict[str, Any]]) -> str:
    seeds = sorted({int(s) for found in per_seed.values() for s in found if str(s).isdigit()})
    return " ".join(map(str, seeds)) or "—"


def row(folder: Path) -> dict[str, str]:
    """One folder's line: its dataset, methods, seeds, pairs, weights, machines and state."""
    provenance = layout.read_json(folder / layout.PROVENANCE)
    provenance = provenance if isinstance(provenance, dict) else {}
    per_seed = summary_records(folder)
    dataset = provenance.get("dataset") or {}
    name = dataset.get("name") or "?"
    fingerprint = str(dataset.get("fingerprint") or "")[:8]
    machines = sorted({machine_kind(r.platform) for seeds in per_seed.values() for r in seeds.values()})
    problems = audit.check_folder(folder)
    state = "ok" if not problems else "; ".join(dict.fromkeys(p.kind for p in problems))
    if (folder / layout.TUNE_JSON).is_file():
        state += " (a selection run)"
    learned = audit.not_learnt(folder.parent, [folder.name])
    if learned:
        state += "; rows that did not learn"
    return {"Run": folder.name, "Dataset": f"{name} ({fingerprint})" if fingerprint else name,
            "Methods": str(len(per_seed)), "Seeds": _seeds(per_seed),
            "Pairs": str(sum(len(s) for s in per_seed.values())),
            "Weights here": str(sum(layout.has_weights(layout.pair_dir(folder, method, seed))
                                    for method, seeds in per_seed.items() for seed in seeds)),
            "Computed on": " | ".join(machines) or "—",
            "State": state}


def frame(root: Path) -> pd.DataFrame:
    """Every results folder under ``root`` (a folder with a summary or provenance), one row each.
    Each pair is checked once (its checksums and re-scored numbers, about 0.03 s a pair), although
    the audit's checks of a folder ask about the same pairs several times."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()
                     and any((p / f).is_file() for f in (layout.SUMMARY, layout.PROVENANCE)))
    with remembering_pair_states(), progress_bar(total=len(folders), desc="list-runs", unit="folder") as bar:
        rows = []
        for folder in folders:
            rows.append(row(folder))
            bar.update(1)
    return pd.DataFrame(rows, columns=COLUMNS)


def listing(root: Path) -> str:
    """``frame`` as the command prints it."""
    rows = frame(root)
    if rows.empty:
        return f"no results folders under {root}: `python -m benchmark run` writes one"
    return (rows.to_markdown(index=False, disable_numparse=True)
            + f"\n\n{len(rows)} runs under {root}. Weights here: the pairs whose trained weights (model.pt) are on "
            "this machine, which `online`, `latency` and `stream` load (git keeps none; `run ... --restore-weights` "
            "recomputes the missing ones). State: `ok`, or what `python -m benchmark report --check` finds "
            "(benchmark/presentation/audit.py).")
