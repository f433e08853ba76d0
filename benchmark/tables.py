"""The comparison table: rows like the paper's Table 1, written as Markdown, CSV and LaTeX.

Every "±" in the table is the standard deviation over seeds (blank with one seed). The
"Δ mAP vs Uniform" column is each method's mAP minus the baseline's, both averaged over
seeds, with its 95% paired bootstrap interval over the evaluated videos
(benchmark/measurement/bootstrap.py): an interval that contains 0 is no evidence of a difference. The
per-video spread of the cost is its own column and, in full, in metrics.json. "Evidence lift"
(synthetic stores only) is where the fine reads land: the evidence frames they hit over the
hits expected from as many reads placed at random within each video (benchmark/measurement/evidence.py;
1 = content-blind).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from benchmark.protocol import learned
from benchmark.record import PairRecord
from benchmark.results import LATENCY_MD, TABLE_CSV, TABLE_MD, TABLE_TEX, WEIGHTS
from datasets.common.atomic import atomic_write_text

# Row order and row names are the methods' own (``VideoMethod.suite``, ``row``,
# ``display_name``; methods/registry.py), so a plug-in names and places its own row.
#: The method every other is compared with (the paper's strong baseline).
BASELINE = "uniform"
COST_UNIT_NOTE = "GFLOPs are multiply-accumulates (GMACs) per video, as the field reports them."
#: What a reader cannot tell from a column's name, said once under every table that shows it.
COLUMN_NOTES = {
    "mAP interp. (%)": "mAP interp.: mAP with precision interpolated as ActivityNet's evaluator does (the maximum "
                       "precision at any higher recall), the metric ActivityNet papers report.",
    "Evidence lift": "Evidence lift (synthetic stores): the evidence frames the fine reads hit over the hits as many "
                     "reads placed at random within each video would get; 1 = content-blind, above 1 = the method "
                     "finds the evidence.",
}
#: The columns of the table printed in a terminal, with their shorter headings there (it fits 100
#: columns; the full table is table.md).
TERMINAL_COLUMNS = {"Method": "Method", "mAP (%)": "mAP (%)", "Δ mAP vs Uniform [95% CI]": "Δ vs Uniform [95% CI]",
                    "GFLOPs/video": "GFLOPs/video", "Fine frames/video": "Fine frames"}
#: How a stale row is marked (``stale_name``), and the paragraph that says why (``write_tables``).
STALE_MARK = "(stale)"
MARKS_HEADING = "**Marks.**"
#: The heading of the measured time column, completed with the device it was measured on.
LATENCY_COLUMN = "ms/video (est., "


def _display_name(name: str) -> str:
    from methods.registry import display_name

    return display_name(name)


# ---------------------------------------------------------------------- the time column (`latency`)
def device_label(record: dict[str, Any]) -> str:
    platform = record.get("platform") or {}
    return str(platform.get("gpu") or platform.get("cpu") or "this device")


def caption_note(record: dict[str, Any]) -> str:
    """What the table's time column is, for its caption (the parts are in latency.md)."""
    settings = sorted({s["backbone_setting"] for seeds in record["pairs"].values() for s in seeds.values()})
    return (f"{LATENCY_COLUMN}{device_label(record)}): measured on that device ({record['device']}, "
            f"{record['threads']} threads) by `python -m benchmark latency` on {record['written'][:10]}: the method's "
            f"own time per video + frames read per stream x that stream's backbone latency per frame "
            f"({'; '.join(settings)}); the parts are in {LATENCY_MD}. It says nothing about another device; "
            "— where a pair was computed again after the measurement (run `python -m benchmark latency` again).")


def order_methods(names: list[str]) -> list[str]:
    """``names`` in table order (the methods' own metadata; methods/registry.py)."""
    from methods.registry import ordered  # imported here: reading saved tables needs no torch

    return ordered(names)


def mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    if np.isnan(arr).all():  # a statistic the data cannot give (e.g. evidence lift on a real store)
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")


def measured_estimates(latency: dict[str, Any], name: str, records: dict[str, PairRecord]) -> list[float]:
    """The latency record's time per video for each of ``records``' pairs, or [] unless every one
    was measured on the very model the pair holds now (its model.pt checksum): a pair computed
    again after the measurement shows no time rather than the time of its earlier model."""
    measured = latency["pairs"].get(name) or {}
    estimates = []
    for seed, record in records.items():
        entry = measured.get(seed) or {}
        model = (record.files or {}).get(WEIGHTS)
        if model is None or entry.get("model_sha256") != model:
            return []
        estimates.append(float(entry["estimated_ms_per_video"]))
    return estimates


def summary_frame(
    metrics: dict[str, dict[str, PairRecord]], online: dict[str, bool], display: dict[str, str] | None = None,
    differences: dict[str, dict[str, Any]] | None = None, latency: dict[str, Any] | None = None,
    settings_of: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per method: means and standard deviations over seeds (numbers, for the CSV),
    and the difference to ``BASELINE`` with its interval where ``differences`` has one."""
    rows = []
    display = display or {}
    for name in order_methods(list(metrics)):
        per_seed = list(metrics[name].values())
        shown = display.get(name) or _display_name(name)
        row: dict[str, Any] = {"method": name, "display_name": shown,
                               "online": online.get(name, False), "seeds": len(per_seed)}
        fields: dict[str, Callable[[PairRecord], float]] = {
            "map_percent": lambda m: 100 * m.map,
            "map_interpolated_percent": lambda m: 100 * m.map_interpolated,
            "top1_percent": lambda m: 100 * m.top1,
            "gflops": lambda m: m.gflops["mean"],
            "gflops_video_std": lambda m: m.gflops["std"],
            "fine_frames": lambda m: m.fine_frames,
            "evidence_lift": lambda m: np.nan if m.evidence_lift is None else m.evidence_lift,
            "first_fifth_share": lambda m: (m.fine_reads_vs_evidence or {}).get("first_fifth_share", np.nan),
            "params": lambda m: m.params,
            "train_seconds": lambda m: m.train_seconds,
            "eval_videos_per_second": lambda m: m.eval_videos_per_second,
        }
        for key, get in fields.items():
            row[f"{key}_mean"], row[f"{key}_std"] = mean_std([get(m) for m in per_seed])
        if latency is not None:  # benchmark/commands/latency.py: estimated ms per video on one device
            estimates = measured_estimates(latency, name, metrics[name])
            row["latency_ms_mean"], row["latency_ms_std"] = mean_std(estimates or [np.nan])
            row["latency_device"] = latency["device_label"]
        reasons = sorted({m.stale for m in per_seed if m.stale})
        row["stale"] = "; ".join(reasons)  # "" when every seed was computed by the current code
        row["did_not_learn"] = learned.row_verdict(metrics[name])  # "" when every seed learned
        row["settings_of"] = (settings_of or {}).get(name, "")  # the mark of settings chosen on another store
        delta = (differences or {}).get(name)
        row["delta_map_percent"], row["delta_map_ci_low_percent"], row["delta_map_ci_high_percent"] = (
            (100 * delta["estimate"], 100 * delta["ci_low"], 100 * delta["ci_high"]) if delta else (np.nan,) * 3)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_records(summary: pd.DataFrame, differences: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The summary as metrics.json stores it: per method, each number's mean and std over
    seeds (mAP and top-1 in percent, as in the table, named so: ``map_percent``) and the
    bootstrap difference to the baseline (a fraction, as its ``unit`` says)."""
    out: dict[str, dict[str, Any]] = {}
    for row in summary.to_dict("records"):
        entry: dict[str, Any] = {"display_name": row["display_name"], "online": bool(row["online"]),
                                 "seeds": int(row["seeds"])}
        for key in [k[: -len("_mean")] for k in row if k.endswith("_mean")]:
            std = row[f"{key}_std"]
            mean = row[f"{key}_mean"]
            entry[key] = {"mean": None if np.isnan(mean) else mean, "std": None if np.isnan(std) else std}
        if did_not_learn(row):
            entry["did_not_learn"] = row["did_not_learn"]
        if isinstance(row.get("settings_of"), str) and row["settings_of"]:
            entry["settings_of"] = row["settings_of"]
        if row["method"] in differences:
            entry[f"delta_map_vs_{BASELINE}"] = {**differences[row["method"]], "unit": "mAP (0..1)"}
        out[row["method"]] = entry
    return out


def plus_minus(mean: float, std: float, digits: int) -> str:
    text = f"{mean:.{digits}f}"
    return text if np.isnan(std) else f"{text} ± {std:.{digits}f}"


def _delta(row: dict[str, Any]) -> str:
    if np.isnan(row["delta_map_percent"]):
        return "(baseline)" if row["method"] == BASELINE else "—"
    low, high = row["delta_map_ci_low_percent"], row["delta_map_ci_high_percent"]
    return f"{row['delta_map_percent']:+.1f} [{low:+.1f}, {high:+.1f}]"


def _count(n: float) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}K"


def is_stale(row: dict[str, Any]) -> bool:
    """Whether a summary row (a dict of table.csv) is marked stale (older tables have no column)."""
    return isinstance(row.get("stale"), str) and bool(row["stale"])


def stale_name(name: str) -> str:
    """A row's name as the table shows it when its numbers were computed by code that changed since."""
    return f"{name} {STALE_MARK}"


def did_not_learn(row: dict[str, Any]) -> bool:
    """Whether a summary row (a dict of table.csv) is of a method that did not learn (older tables have no column)."""
    return isinstance(row.get("did_not_learn"), str) and bool(row["did_not_learn"])


def shown_name(row: dict[str, Any]) -> str:
    """A row's name with the marks its records and its run owe whatever the code is: settings chosen on
    another store (benchmark/store_settings.py), a method that did not learn
    (benchmark/protocol/learned.py). The stale mark, which depends on the code, is put on after
    (``stale_name``)."""
    name = row["display_name"]
    if isinstance(row.get("settings_of"), str) and row["settings_of"]:
        name = f"{name} {row['settings_of']}"
    return f"{name} {learned.MARK}" if did_not_learn(row) else name


def unmarked(cell: str) -> str:
    """A written row name without the marks ``shown_name`` and ``stale_name`` put on it."""
    cell = cell.removesuffix(f" {STALE_MARK}").removesuffix(f" {learned.MARK}")
    return re.sub(r" \(settings of [^()]*\)$", "", cell)


def stale_note(stale: dict[str, str], rows: int | None = None) -> str:
    """The caption sentence for the stale rows (row name -> why) of a table of ``rows`` rows, ""
    for none."""
    if not stale:
        return ""
    by_reason: dict[str, list[str]] = {}
    for name, why in stale.items():
        by_reason.setdefault(why, []).append(name)
    if rows == len(stale) and len(by_reason) == 1:
        which = f"every row: {next(iter(by_reason))}"
    else:
        which = "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())
    return (f"Rows marked {STALE_MARK} were computed by code that has changed since, so the current code may give "
            f"other numbers (benchmark/code_fingerprint.py): {which}. Recompute them with --force.")


def failed_note(failed: dict[str, str]) -> str:
    """The marks' sentence for the pairs that failed ("method seed k" -> why); "" for none."""
    if not failed:
        return ""
    return ("Failed, so no row: " + "; ".join(f"{key}: {why}" for key, why in failed.items())
            + ". A failed method's other seeds are kept in the folder; the same command computes the rest once it "
              "is fixed.")


def mark_stale_rows(markdown: str, names: set[str]) -> str:
    """A written table (table.md) with the stale marks of when it was written taken off
    (``strip_marks``) and the first cell of each row in ``names`` marked stale instead."""
    lines = strip_marks(markdown).split("\n")
    for i, line in enumerate(lines):
        cells = line.split("|")
        if i >= 2 and line.startswith("|") and len(cells) > 2 and unmarked(cells[1].strip()) in names:
            shown = cells[1].strip()
            cells[1] = cells[1].replace(shown, stale_name(shown), 1)
            lines[i] = "|".join(cells)
    return "\n".join(lines)


def with_column_notes(markdown: str) -> str:
    """A table.md text without its marks (``strip_marks``) whose caption explains each column of
    ``COLUMN_NOTES`` its header shows, once; ``report`` brings tables written before an
    explanation existed up to date with it."""
    header = markdown.split("\n", 1)[0]
    owed = [note for column, note in COLUMN_NOTES.items() if f" {column} " in header and note not in markdown]
    return markdown.rstrip("\n") + "".join(" " + note for note in owed) if owed else markdown


def terminal_table(markdown: str, where: Path) -> str:
    """What a command prints of a table.md: its main columns (``TERMINAL_COLUMNS`` that it has),
    which fit a 100-column terminal, and where the full table and its caption are."""
    lines = markdown.split("\n")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    if len(rows) < 3:
        return markdown
    header, body = rows[0], rows[2:]
    keep = [header.index(c) for c in TERMINAL_COLUMNS if c in header]
    narrow = tabulate([[r[i] for i in keep] for r in body], headers=[TERMINAL_COLUMNS[header[i]] for i in keep],
                      tablefmt="simple", disable_numparse=True)
    return f"{narrow}\n\nThe full table ({len(header)} columns), its caption and marks: {where}"


def with_marks(markdown: str, marks: str) -> str:
    """A table.md text with its marks paragraph (none when ``marks`` is empty), as written."""
    return markdown.rstrip("\n") + "\n" + (f"\n{MARKS_HEADING} {marks}\n" if marks else "")


def strip_marks(markdown: str) -> str:
    """A written table.md without the marks it was written with (its "Marks." paragraph and the
    rows' stale marks): what holds whatever the code is now."""
    markdown = markdown.split(f"\n{MARKS_HEADING}", 1)[0].rstrip("\n")
    return markdown.replace(f" {STALE_MARK} ", " ").replace(f" {STALE_MARK}|", "|")


def display_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The human-readable table (strings), in the same row order."""
    rows = []
    for r in summary.to_dict("records"):
        rows.append({
            "Method": stale_name(shown_name(r)) if is_stale(r) else shown_name(r),
            "Online": "yes" if r["online"] else "no",
            "mAP (%)": plus_minus(r["map_percent_mean"], r["map_percent_std"], 1),
            "Δ mAP vs Uniform [95% CI]": _delta(r),
            "mAP interp. (%)": plus_minus(r["map_interpolated_percent_mean"], r["map_interpolated_percent_std"], 1),
            "Top-1 (%)": plus_minus(r["top1_percent_mean"], r["top1_percent_std"], 1),
            "GFLOPs/video": plus_minus(r["gflops_mean"], r["gflops_std"], 1),
            "GFLOPs std over videos": f"{r['gflops_video_std_mean']:.1f}",
            "Fine frames/video": f"{r['fine_frames_mean']:.1f}",
            "Evidence lift": "—" if np.isnan(r["evidence_lift_mean"]) else plus_minus(r["evidence_lift_mean"],
                                                                                r["evidence_lift_std"], 2),
            "Params": _count(r["params_mean"]),
            "Train (s)": f"{r['train_seconds_mean']:.1f}",
            "Eval (videos/s)": f"{r['eval_videos_per_second_mean']:.0f}",
        })
        if "latency_device" in r and isinstance(r["latency_device"], str):
            rows[-1][f"{LATENCY_COLUMN}{r['latency_device']})"] = (
                "—" if np.isnan(r["latency_ms_mean"]) else plus_minus(r["latency_ms_mean"], r["latency_ms_std"], 1))
    return pd.DataFrame(rows)


def write_tables(
    summary: pd.DataFrame, out_dir: Path, caption: str, columns: list[str] | None = None, marks: str = ""
) -> dict[str, str]:
    """Write table.md, table.csv and table.tex under ``out_dir``; return their texts.

    ``columns`` picks and orders the displayed columns (all by default); the CSV always
    has every number. ``marks`` (stale rows, methods that did not learn) follow the
    caption as a paragraph of their own, which ``strip_marks`` can take off again."""
    shown = display_frame(summary)
    if columns is not None:
        shown = shown[columns]
    markdown = with_marks(with_column_notes(shown.to_markdown(index=False, disable_numparse=True)
                                            + f"\n\n{caption} {COST_UNIT_NOTE}"), marks)
    latex = (
        "% " + caption + " " + COST_UNIT_NOTE + (f" {marks}" if marks else "") + "\n"
        + tabulate(shown.values.tolist(), headers=list(shown.columns), tablefmt="latex_booktabs", disable_numparse=True)
        + "\n"
    )
    texts = {TABLE_MD: markdown, TABLE_CSV: summary.to_csv(index=False), TABLE_TEX: latex}
    for name, text in texts.items():
        atomic_write_text(out_dir / name, text)
    return texts


# ---------------------------------------------------------------------- a tuning run's trials
def setting_text(setting: dict[str, Any]) -> str:
    """A trial's setting on one line (``train.lr=0.001, dropout=0.5``)."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items())


def tune_markdown(rows: list[dict[str, Any]]) -> str:
    """The trials of a tuning run (``tune.json``'s ``trials``) as a Markdown table, with the
    selection rule's verdict where a row has ``within_noise`` (benchmark/protocol/selection.py)."""
    shown = []
    for r in rows:
        method = _display_name(r["method"]) + (f" {learned.MARK}" if r.get("did_not_learn") else "")
        row = {"Method": method, "Trial": str(r["trial"]), "Setting": setting_text(r["setting"]),
               "Validation mAP (%)": f"{r['validation_map_percent']:.1f}", "GFLOPs/video": f"{r['gflops']:.1f}"}
        if "within_noise" in r:
            row["± 1 SE of the best"] = "yes" if r["within_noise"] else ""
        row["Chosen"] = "yes" if r["chosen"] else ""
        shown.append(row)
    return pd.DataFrame(shown).to_markdown(index=False, disable_numparse=True)


def online_markdown(table: pd.DataFrame, ks: Iterable[int] | None = None) -> str:
    """online.csv as Markdown: top-1 / GFLOPs per curve (rows, in the file's order) and online
    budget K (columns: ``ks`` where given, else every K), seeds averaged."""
    means = table.groupby(["display_name", "K"], sort=False)[["top1_percent", "mean_gflops"]].mean()
    present = set(table.K)
    shown = sorted(present) if ks is None else [k for k in ks if k in present]
    rows = []
    for name in dict.fromkeys(table.display_name):
        row = {"top-1 (%) / GFLOPs": name}
        for k in shown:
            accuracy, gflops = means.loc[(name, k)]
            row[f"K={k}"] = f"{accuracy:.1f} / {gflops:.1f}"
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
