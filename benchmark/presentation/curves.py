"""A sweep's matched-budget table and figure, from its curves.csv and the points' saved scores.

The table reads every method at 25%, 50% and 100% of Uniform-25's GFLOPs (Uniform at its own
25 frames, the paper's operating point): its mAP there, interpolated between the two points
around the budget and left blank outside them (never extrapolated); the difference from
Uniform-K at the same budget with a 95% paired bootstrap interval over the test videos, seeds
pooled (benchmark/curves/matching.py); the GFLOPs it needs to reach Uniform-25's mAP; and
whether any of its points is on the front (no point of any method is as cheap and as accurate).
The figure draws each method through its points (mean over seeds, the seeds' spread as bars),
online methods solid and offline ones dashed, the front's points ringed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import results
from benchmark.curves.matching import SHARES, Curve, matched_difference, pareto_front
from benchmark.curves.sweep import REFERENCE, REFERENCE_POINT
from benchmark.measurement.bootstrap import Difference, resample_counts, resample_indices, resampled_maps
from benchmark.presentation import words
from datasets.common.atomic import atomic_write_bytes, atomic_write_json, file_sha256
from datasets.common.errors import UsageError

#: A matched-budget cell is "measured" where one of the two points it is read between lies within
#: this share of the budget's cost; else it is marked ``INTERPOLATED`` (read off a chord).
MEASURED_WITHIN = 0.05
INTERPOLATED = "†"


def load(folder: Path) -> pd.DataFrame:
    path = folder / results.CURVES_CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; make it with `python -m benchmark curves`")
    return pd.read_csv(path, keep_default_na=False, dtype={"point": str})


def point_curves(folder: Path, table: pd.DataFrame) -> dict[str, Curve]:
    """Each method's curve, with the bootstrap draws of every point (seeds pooled)."""
    labels, counts = None, None
    curves: dict[str, Curve] = {}
    for method, rows in table.groupby("method", sort=False):
        gflops, maps, draws = [], [], []
        for _, point in rows.groupby("point", sort=False):
            seeds = []
            for where in point["where"]:
                with np.load(folder / where / results.SCORES) as data:
                    seeds.append(data["scores"])
                    if labels is None:
                        labels = data["labels"]
                        counts = resample_counts(resample_indices(len(labels)), len(labels))
            assert labels is not None and counts is not None  # set by the first point's scores
            gflops.append(float(point["gflops"].mean()))
            maps.append(float(point["map_percent"].mean()) / 100)
            draws.append(resampled_maps(np.stack(seeds), labels, counts).mean(axis=1))
        curves[str(method)] = Curve.of(gflops, maps, np.stack(draws, axis=1))
    return curves


@dataclass(frozen=True)
class Matched:
    """One method read at the matched budgets (mAP as fractions; None: its points do not reach)."""

    method: str
    display_name: str
    online: bool
    maps: dict[float, float | None]  # budget share -> mAP there
    differences: dict[float, Difference | None]  # budget share -> against Uniform-K there (reference: None)
    reach: float | None  # GFLOPs to reach Uniform-25's mAP
    front: bool
    # True where the cheapest point already exceeds Uniform-25's mAP: ``reach`` is that point's cost,
    # an upper bound on what reaching it takes, not a crossing.
    reach_bound: bool = False
    # budget share -> the GFLOPs of the two measured points its reading lies between (None: not reached).
    spans: dict[float, tuple[float, float] | None] = field(default_factory=dict)

    def measured(self, share: float, budget: float) -> bool:
        """Whether the reading at ``share`` (``budget`` GFLOPs) rests on a point measured within
        ``MEASURED_WITHIN`` of the budget, rather than on a chord between points further away."""
        span = self.spans.get(share)
        return span is not None and min(abs(span[0] - budget), abs(span[1] - budget)) <= MEASURED_WITHIN * budget

    def reach_words(self) -> str:
        """``reach`` as the table and the summary say it: "at most" where it is a bound."""
        return "—" if self.reach is None else f"{'at most ' if self.reach_bound else ''}{self.reach:.1f}"


@dataclass(frozen=True)
class MatchedBudgets:
    """A sweep read at 25%, 50% and 100% of Uniform-25's cost: what its table and the README's
    summary both say, computed once."""

    base_gflops: float
    base_map: float
    rows: list[Matched]

    def to_dict(self) -> dict[str, Any]:
        def diff(d: Difference | None) -> list[float] | None:
            return None if d is None else [d.estimate, d.low, d.high, d.resamples, d.confidence]

        return {"base_gflops": self.base_gflops, "base_map": self.base_map, "shares": list(SHARES),
                "rows": [{"method": m.method, "display_name": m.display_name, "online": m.online,
                          "maps": [m.maps[s] for s in SHARES], "differences": [diff(m.differences[s]) for s in SHARES],
                          "reach": m.reach, "front": m.front, "reach_bound": m.reach_bound,
                          "spans": [None if (g := m.spans.get(s)) is None else list(g) for s in SHARES]}
                         for m in self.rows]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchedBudgets:
        shares = [float(s) for s in data["shares"]]

        def diff(d: list[float] | None) -> Difference | None:
            return None if d is None else Difference(float(d[0]), float(d[1]), float(d[2]), int(d[3]), float(d[4]))

        rows = [Matched(r["method"], r["display_name"], bool(r["online"]), dict(zip(shares, r["maps"])),
                        {s: diff(d) for s, d in zip(shares, r["differences"])}, r["reach"], bool(r["front"]),
                        bool(r["reach_bound"]),
                        {s: None if g is None else (float(g[0]), float(g[1])) for s, g in zip(shares, r["spans"])})
                for r in data["rows"]]
        return cls(float(data["base_gflops"]), float(data["base_map"]), rows)


def matched_budgets(folder: Path, table: pd.DataFrame | None = None,
                    curves: dict[str, Curve] | None = None) -> MatchedBudgets:
    """Every method of a sweep folder at the matched budgets (``table``, ``curves``: already read)."""
    table = load(folder) if table is None else table
    curves = point_curves(folder, table) if curves is None else curves
    if REFERENCE not in curves:
        raise UsageError(f"{folder}: the sweep has no {REFERENCE} curve to match budgets against")
    ref_rows = table[(table["method"] == REFERENCE) & (table["point"].astype(str) == str(REFERENCE_POINT))]
    if ref_rows.empty:
        raise UsageError(f"{folder}: {REFERENCE} has no point at {REFERENCE_POINT} frames (its Uniform-25)")
    base_gflops, base_map = float(ref_rows["gflops"].mean()), float(ref_rows["map_percent"].mean()) / 100
    front = pareto_front(curves)
    names = dict(zip(table["method"], table["display_name"]))
    online = {str(m): bool(rows["online"].iloc[0]) for m, rows in table.groupby("method", sort=False)}
    rows = [Matched(method, names[method], online[method],
                    {share: curve.map_at(share * base_gflops) for share in SHARES},
                    {share: None if method == REFERENCE else
                     matched_difference(curve, curves[REFERENCE], share * base_gflops) for share in SHARES},
                    curve.cost_to_reach(base_map), bool(front[method]), bool(curve.maps[0] >= base_map),
                    {share: curve.span_at(share * base_gflops) for share in SHARES})
            for method, curve in curves.items()]
    return MatchedBudgets(base_gflops, base_map, rows)


def interval(diff: Difference) -> str:
    """A difference in mAP points with its interval, as every table of the suite prints one."""
    return f"{100 * diff.estimate:+.1f} [{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]"


def matched_table(folder: Path, table: pd.DataFrame | None = None, curves: dict[str, Curve] | None = None,
                  read: MatchedBudgets | None = None) -> str:
    """The matched-budget table (Markdown) of a sweep folder (``table``, ``curves``, ``read``: already read)."""
    read = matched_budgets(folder, table, curves) if read is None else read
    rows = []
    for m in read.rows:
        row = {"Method": m.display_name}
        for share in SHARES:
            value, diff = m.maps[share], m.differences[share]
            head = f"{int(100 * share)}% ({share * read.base_gflops:.1f} GFLOPs)"
            mark = "" if m.measured(share, share * read.base_gflops) else f" {INTERPOLATED}"
            row[f"mAP at {head}"] = "—" if value is None else f"{100 * value:.1f}{mark}"
            row[f"Δ vs Uniform-K at {int(100 * share)}%"] = (
                "(reference)" if m.method == REFERENCE else "—" if diff is None else interval(diff))
        row["GFLOPs to reach Uniform-25"] = m.reach_words()
        row["On the front"] = "yes" if m.front else "no"
        rows.append(row)
    caption = (f"Each method's mAP (%) at 25%, 50% and 100% of Uniform-25's cost ({read.base_gflops:.1f} GFLOPs), "
               "interpolated between its two points around the budget: unmarked where one of them was measured "
               f"within {MEASURED_WITHIN:.0%} of the budget's cost, {INTERPOLATED} where both lie further away (a "
               "chord; their costs are in matched.json); — where its points do not reach the "
               "budget (never extrapolated). Δ: against Uniform-K at the same budget, 95% paired bootstrap "
               "interval over the test videos, seeds pooled. GFLOPs to reach Uniform-25's mAP "
               f"({100 * read.base_map:.1f}): where the method's curve first crosses it; \"at most\" where its "
               "cheapest point already exceeds it (an upper bound, not a crossing). On the front: one of its "
               "points is beaten by no point of any method in both cost and mAP.")
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n\n" + caption + "\n"


def in_words(read: MatchedBudgets, stale: frozenset[str] = frozenset(),
            not_learnt: frozenset[str] = frozenset()) -> str:
    """The matched-budget reading in a few sentences, every number from ``read``: the front; at
    each budget of the table, who is more accurate than Uniform-K at that cost, no different, or
    less (by the side of zero the paired interval lies on), and how many methods' points do not
    reach it; the cost of reaching Uniform-25's mAP. ``stale``: display names to mark;
    ``not_learnt``: display names of methods with a point that did not learn
    (benchmark/protocol/learned.py), marked, and never named on the front."""
    def name(m: Matched) -> str:
        return (m.display_name + (" (stale)" if m.display_name in stale else "")
                + (" (did not learn)" if m.display_name in not_learnt else ""))

    others = [m for m in read.rows if m.method != REFERENCE]
    parts = [f"On the accuracy-cost front (a point that no point of any method beats in both cost and mAP): "
             f"{', '.join(name(m) for m in read.rows if m.front and m.display_name not in not_learnt) or 'none'}."]
    for share in SHARES:
        found = [(m, d) for m in others if (d := m.differences.get(share)) is not None]
        said = {m.method: words.verdict(d.low, d.high) for m, d in found}
        groups = [(label, [(m, d) for m, d in found if said[m.method] == verdict]) for verdict, label in
                  ((words.MORE, words.MORE), (words.UNDETECTED, f"{words.UNDETECTED} (the interval spans zero)"),
                   (words.LESS, words.LESS))]
        clauses = ["{}: {}".format(label, "; ".join(
            f"{name(m)} {interval(d)}" for m, d in sorted(group, key=lambda pair: -pair[1].estimate)))
            for label, group in groups if group]
        head = f"At {int(100 * share)}% of Uniform-25's cost ({share * read.base_gflops:.1f} GFLOPs)"
        absent = len(others) - len(found)
        missing = f" ({absent} of {len(others)} methods' points do not reach it)" if absent else ""
        parts.append(f"{head}, against Uniform at that cost{missing}: " + "; ".join(clauses) + "."
                     if clauses else f"{head}: no method's points reach it.")
    reached = sorted((m.reach, name(m), m.reach_words()) for m in others if m.reach is not None)
    if reached:
        parts.append(f"GFLOPs to reach Uniform-25's mAP ({100 * read.base_map:.1f}; Uniform needs "
                     f"{read.base_gflops:.1f}; \"at most\": the cheapest point already exceeds it): "
                     + ", ".join(f"{shown} {said}" for _, shown, said in reached) + ".")
    parts.append("Differences are mAP points with 95% paired bootstrap intervals over the test videos.")
    return " ".join(parts)


def read_matched(folder: Path) -> MatchedBudgets:
    """A sweep's matched-budget reading: its matched.json where that was written from the sweep's
    curves.csv as it is now, else computed (the bootstrap over every point takes minutes)."""
    saved = results.read_json(folder / results.MATCHED_JSON)
    csv = folder / results.CURVES_CSV
    current = isinstance(saved, dict) and all("spans" in r for r in saved.get("rows", []))
    if current and csv.is_file() and saved.get("curves_csv_sha256") == file_sha256(csv):
        return MatchedBudgets.from_dict(saved)
    return matched_budgets(folder)


def write_matched(folder: Path, read: MatchedBudgets | None = None) -> None:
    """matched.json: the reading the README's summary shows, tied to the curves.csv it came from."""
    read = matched_budgets(folder) if read is None else read
    atomic_write_json(folder / results.MATCHED_JSON, {
        **read.to_dict(), "curves_csv_sha256": file_sha256(folder / results.CURVES_CSV)})


def write(folder: Path) -> str:
    """Write curves.md, matched.json and the figure; return the table."""
    table = load(folder)
    curves = point_curves(folder, table)  # the bootstrap draws, computed once for all
    read = matched_budgets(folder, table, curves)
    text = matched_table(folder, read=read)
    atomic_write_bytes(folder / results.CURVES_MD, text.encode())
    write_matched(folder, read)
    plot(folder, table, curves)
    return text


def plot(folder: Path, table: pd.DataFrame | None = None, curves: dict[str, Curve] | None = None) -> list[Path]:
    """mAP against GFLOPs per video, one line per method through its points."""
    from benchmark.presentation.plots import GFLOPS_LABEL, _pyplot, _save, method_style

    table = load(folder) if table is None else table
    curves = point_curves(folder, table) if curves is None else curves
    front = pareto_front(curves)
    plt = _pyplot()
    plt.rcParams["pdf.fonttype"] = 42  # TrueType in the PDF, readable and editable in print
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for method, rows in table.groupby("method", sort=False):
        stats = rows.groupby("point", sort=False).agg(g=("gflops", "mean"), m=("map_percent", "mean"),
                                                      gs=("gflops", "std"), ms=("map_percent", "std")).sort_values("g")
        online = bool(rows["online"].iloc[0])
        line = ax.errorbar(stats["g"], stats["m"], xerr=stats["gs"].fillna(0), yerr=stats["ms"].fillna(0),
                           linestyle="-" if online else "--", markersize=4, capsize=2,
                           label=f"{rows['display_name'].iloc[0]}{' (online)' if online else ''}",
                           **method_style(str(method)))
        curve = curves[str(method)]
        for k in front[str(method)]:
            ax.plot(curve.gflops[k], 100 * curve.maps[k], marker="o", markersize=10, markerfacecolor="none",
                    markeredgecolor="black", color=line[0].get_color(), linestyle="none")
    ax.set_xlabel(GFLOPS_LABEL)
    ax.set_ylabel("mAP (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)  # beside the data
    seeds = sorted(table["seed"].unique().tolist()) if "seed" in table else []
    ax.set_title(f"{folder.name}: accuracy against cost (ringed: on the Pareto front)", fontsize=10)
    fig.text(0.01, -0.06, f"Each point: a method at one setting of its cost knob, the mean over seeds {seeds}; bars: "
             "± one standard deviation over the seeds. Ringed: no point of any method is both cheaper and more "
             "accurate.", fontsize=7, color="0.35", wrap=True)
    out_dir = folder / results.FIGURES
    return _save(fig, out_dir, "curves")

