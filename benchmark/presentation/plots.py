"""The paper's figures, redrawn from saved results only (no training, no evaluation).

``python -m benchmark plot`` reads ``results/<name>/`` and writes, as PNG and PDF under
``results/<name>/figures/``:

* ``online_curve``: top-1 accuracy against GFLOPs per video, one line per curve of
  online.csv (Figure 2; made by ``python -m benchmark online``);
* ``offline_scatter``: mAP against GFLOPs per video, one labelled point per method of the
  comparison table (table.csv, Table 1 as a picture);
* ``fine_usage_per_class``: LiteEval's fine-feature reads per video for the classes with the
  highest and the lowest mean usage, as box plots with the means marked (Figure 3);
* ``fine_frames_strips``: for a few test videos, one strip per video marking the frames whose
  fine features LiteEval read (the feature-level counterpart of Figure 4); for synthetic data,
  whose store keeps the ground truth, the frames that carry class evidence are marked below.

A figure whose inputs are missing is skipped with a note saying which command makes them.
Matplotlib runs headless (Agg).
"""

from __future__ import annotations

import errno
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import results as layout
from benchmark.results import ONLINE_BASELINES, SEQ_K, UNIFORM_K, unpack_diagnostics
from benchmark.tables import COST_UNIT_NOTE, order_methods
from datasets.common.atomic import atomic_write_bytes
from datasets.common.errors import UsageError, UserError

log = logging.getLogger(__name__)

#: Every method's colour and marker, the same in every figure (``method_style``): Tableau's 20
#: colours and 8 markers, so that no two of the first 20 methods look alike.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

GATED_METHOD = "liteeval"  # whose per-video gate decisions Figures 3 and 4 show
FORMATS = ("png", "pdf")
GFLOPS_LABEL = "GFLOPs per video (GMACs)"
FINE_COLOUR, COARSE_COLOUR, EVIDENCE_COLOUR = "#2ca02c", "#e6e6e6", "#7f3c8d"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display is needed or used
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``stem``.png and .pdf atomically; return their paths."""
    paths = []
    for fmt in FORMATS:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata={"CreationDate": None}
                    if fmt == "pdf" else None)
        path = out_dir / f"{stem}.{fmt}"
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    _pyplot().close(fig)
    return paths


def method_style(method: str) -> dict[str, str]:
    """The colour and marker of a method (a registry name, or an online baseline's name) in every
    figure: by its place among the registered methods (table order), then the online baselines,
    then whatever else in the order first asked for (a plug-in)."""
    from methods.registry import available_methods

    known = [*order_methods(list(available_methods())), *ONLINE_BASELINES]
    if method not in known:
        _EXTRA.setdefault(method, len(_EXTRA))
    k = known.index(method) if method in known else len(known) + _EXTRA[method]
    return {"color": PALETTE[k % len(PALETTE)], "marker": MARKERS[k % len(MARKERS)]}


_EXTRA: dict[str, int] = {}


def _box_distance(box, point) -> float:
    """Distance in display units from ``point`` to the nearest point of ``box``."""
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return float(np.hypot(dx, dy))


#: Where a label may go around its point (offset in points, alignment), nearest first: the eight
#: directions at three distances, and straight above or below starting or ending at the point (for a
#: point by the frame's edge, where a centred label would leave the frame).
LABEL_OFFSETS = [(sx * r, sy * r, ha, va) for r in (6, 14, 24) for sx, sy, ha, va in (
    (1, 0.6, "left", "bottom"), (-1, 0.6, "right", "bottom"), (0, 1.3, "center", "bottom"),
    (0, -1.3, "center", "top"), (1, -1.6, "left", "top"), (-1, -1.6, "right", "top"),
    (1.6, 0, "left", "center"), (-1.6, 0, "right", "center"), (0, 1.3, "left", "bottom"),
    (0, -1.3, "left", "top"), (0, 1.3, "right", "bottom"), (0, -1.3, "right", "top"))]


def _place_labels(ax, xs, ys, labels) -> None:
    """Label points without overlaps: each label at the nearest place around its point that stays in
    the frame, covers no point, overlaps no placed label and lies nearer its own point than any
    other (else it would mislabel). Where none is (two points close together by the frame's edge),
    the place in the frame that overlaps the placed labels least, nearest first, tied to its point
    by a thin line: found, two labels printed on top of each other in the default table's figure."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []  # the placed labels' bounding boxes
    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys)]
    frame = ax.get_window_extent(renderer)

    def overlap(box: Any) -> float:
        return sum(max(0.0, min(box.x1, o.x1) - max(box.x0, o.x0)) * max(0.0, min(box.y1, o.y1) - max(box.y0, o.y0))
                   for o in placed)

    for x, y, label in zip(xs, ys, labels):
        own_point = ax.transData.transform((x, y))
        chosen, fallback = None, None  # fallback: (overlap, offset) of the least-overlapping place in the frame
        for offset in LABEL_OFFSETS:
            dx, dy, ha, va = offset
            text = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=9)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            text.remove()
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if not inside or any(box.contains(px, py) for px, py in points):
                continue
            covered = overlap(box) / max(box.width * box.height, 1e-9)  # the share of this label covered
            own = _box_distance(box, own_point)
            if covered == 0 and not any(_box_distance(box, p) < own - 1e-6 for p in points):
                chosen = offset
                break
            if fallback is None or covered < fallback[0] - 0.05:  # nearer first, unless far less covered
                fallback = (covered, offset)
        dx, dy, ha, va = chosen or (fallback[1] if fallback is not None else LABEL_OFFSETS[0])
        # A label not beside its own point is tied to it by a thin line, so that it cannot be read as another's.
        line = None if chosen else {"arrowstyle": "-", "color": "0.45", "linewidth": 0.6, "shrinkA": 1, "shrinkB": 3}
        text = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, fontsize=9,
                           arrowprops=line)
        placed.append(text.get_window_extent(renderer).expanded(1.05, 1.1))


def plot_online(results: Path, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    table = pd.read_csv(results / layout.ONLINE_CSV)
    means = table.groupby(["method", "display_name", "K"], sort=False)[["top1_percent", "mean_gflops"]]
    means = means.mean().reset_index()
    # The methods in table order (methods/registry.py), the frame-classifier baselines last.
    groups = dict(iter(means.groupby(["method", "display_name"], sort=False)))
    rank = {name: i for i, name in enumerate(order_methods([m for m, _ in groups if m not in ONLINE_BASELINES]))}
    rank.update({UNIFORM_K: len(rank), SEQ_K: len(rank) + 1})
    curves = sorted(groups.items(), key=lambda g: (rank[g[0][0]], g[0]))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (method, name), curve in curves:
        curve = curve.sort_values("K")
        ax.plot(curve.mean_gflops, curve.top1_percent, markersize=4, linewidth=1.5, label=name,
                **method_style(str(method)))
    seeds = sorted(table.seed.unique().tolist())
    budgets = sorted(table.K.unique().tolist())
    ax.set_xlabel(GFLOPS_LABEL)
    ax.set_ylabel("Top-1 accuracy (%)")
    if ax.get_ylim()[1] > 100:  # curves at or near 100%: no axis above what accuracy can reach
        ax.set_ylim(top=100.5)
    ax.set_title(f"{results.name}: online recognition, budgets K = {budgets[0]}..{budgets[-1]} (seeds {seeds})",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return _save(fig, out_dir, "online_curve")


def plot_offline(results: Path, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    table = pd.read_csv(results / layout.TABLE_CSV)
    table = table.set_index("method").loc[order_methods(table.method.tolist())].reset_index()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for row in table.to_dict("records"):
        style = method_style(str(row["method"]))
        ax.scatter([row["gflops_mean"]], [row["map_percent_mean"]], s=36, zorder=3, **style)
        if not (np.isnan(row["map_percent_std"]) or np.isnan(row["gflops_std"])):
            ax.errorbar([row["gflops_mean"]], [row["map_percent_mean"]], xerr=[row["gflops_std"]],
                        yerr=[row["map_percent_std"]],
                        fmt="none", ecolor=style["color"], alpha=0.6, zorder=2)
    ax.set_xlabel(GFLOPS_LABEL)
    ax.set_ylabel("mAP (%)")
    xmax = float((table.gflops_mean + table.gflops_std.fillna(0)).max())
    low = float((table.map_percent_mean - table.map_percent_std.fillna(0)).min())
    high = float((table.map_percent_mean + table.map_percent_std.fillna(0)).max())
    ax.set_xlim(0, xmax * 1.25)
    ax.set_ylim(low - 0.12 * (high - low + 1), high + 0.12 * (high - low + 1))  # the bars whole, not cut
    ax.set_title(f"{results.name}: the comparison table, mAP against cost", fontsize=10)
    ax.grid(alpha=0.3)
    fig.canvas.draw()
    _place_labels(ax, table.gflops_mean.tolist(), table.map_percent_mean.tolist(), table.display_name.tolist())
    seeds = int(table.seeds.max())
    fig.text(0.01, -0.07, f"Each point: a method's mean over {seeds} seed(s); bars: ± one standard deviation over "
             f"the seeds, of mAP and of GFLOPs. {COST_UNIT_NOTE}", fontsize=7, color="0.35", wrap=True)
    return _save(fig, out_dir, "offline_scatter")


def _gated_run(results: Path) -> Path:
    """The first seed's folder of the gated method (LiteEval)."""
    runs = sorted((results / layout.RUNS / GATED_METHOD).glob("seed*"), key=lambda p: int(p.name[4:]))
    for folder in runs:
        if (folder / layout.DIAGNOSTICS).is_file():
            return folder
    raise FileNotFoundError(errno.ENOENT, "no diagnostics", f"{results}/runs/{GATED_METHOD}/seed*/diagnostics.npz")


def _usage(folder: Path) -> tuple[list[str], list[np.ndarray], np.ndarray, list[str], np.ndarray]:
    """(video ids, per-video fine decisions, labels, class names, scores) of a saved run."""
    ids, diagnostics = unpack_diagnostics(folder / layout.DIAGNOSTICS)
    with np.load(folder / layout.SCORES) as data:
        if data["video_ids"].tolist() != ids:
            raise UsageError(f"{folder}: scores.npz and diagnostics.npz list different videos; re-run the method")
        labels, classes, scores = data["labels"].astype(bool), data["class_names"].tolist(), data["scores"]
    return ids, [d.astype(bool) for d in diagnostics["fine_steps"]], labels, classes, scores


def plot_fine_usage(results: Path, out_dir: Path, classes_per_end: int = 6) -> list[Path]:
    plt = _pyplot()
    folder = _gated_run(results)
    _, decisions, labels, classes, _ = _usage(folder)
    reads = np.array([d.sum() for d in decisions])
    per_class = {c: reads[labels[:, c]] for c in range(len(classes)) if labels[:, c].any()}
    order = sorted(per_class, key=lambda c: (per_class[c].mean(), c))
    n = min(classes_per_end, len(order) // 2) if len(order) > 1 else len(order)
    chosen = order[-n:][::-1] + order[:n][::-1] if len(order) > 2 * n else order[::-1]
    data = [per_class[c] for c in chosen]
    names = [f"{classes[c]} (n={len(per_class[c])})" for c in chosen]
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(chosen) + 1.4))
    positions = np.arange(len(chosen))[::-1]
    ax.boxplot(data, positions=positions, orientation="horizontal", widths=0.6, showfliers=True,
               flierprops={"markersize": 3}, medianprops={"color": "#d62728"})
    ax.scatter([d.mean() for d in data], positions, color="#ffbf00", edgecolor="black", zorder=3, s=30)
    ax.set_yticks(positions, names, fontsize=8)
    if len(order) > 2 * n:
        split = positions[n - 1] - 0.5
        ax.axhline(split, color="0.5", linestyle="--", linewidth=0.8)
        # Beside the dashed line, between the boxes (found: at a box's height they lay on its whisker).
        ax.text(0.99, split + 0.06, f"{n} highest, above", transform=ax.get_yaxis_transform(), ha="right",
                va="bottom", fontsize=7, color="0.35")
        ax.text(0.99, split - 0.06, f"{n} lowest, below", transform=ax.get_yaxis_transform(), ha="right", va="top",
                fontsize=7, color="0.35")
    ax.set_xlabel("Fine-feature reads per video (frames)")
    ax.set_title(f"{results.name}: LiteEval's fine-feature reads per video, by class ({folder.name})\n"
                 "boxes: quartiles; red line: median; yellow dot: mean", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, out_dir, "fine_usage_per_class")


def _pick_videos(decisions: list[np.ndarray], correct: np.ndarray, count: int) -> list[int]:
    """Correctly classified videos at evenly spaced quantiles of fine usage (deterministic)."""
    pool = np.flatnonzero(correct) if correct.any() else np.arange(len(decisions))
    usage = np.array([decisions[i].mean() if len(decisions[i]) else 0.0 for i in pool])
    ranked = pool[np.argsort(usage, kind="stable")]
    picks = np.linspace(0, len(ranked) - 1, num=min(count, len(ranked))).round().astype(int)
    return list(dict.fromkeys(ranked[picks].tolist()))


def _evidence(results: Path, ids: list[str]) -> dict[str, np.ndarray]:
    """Synthetic ground truth (frames carrying class evidence) for ``ids``, if the store is at hand."""
    try:
        provenance = json.loads((results / layout.PROVENANCE).read_text())
        from datasets.store.layout import EXTRAS_GROUP
        from datasets.store.reader import FeatureStore, open_h5

        store = FeatureStore.open(provenance["dataset"]["path"])
        header = store.header
        with open_h5(store.features_path) as h5:
            name = f"{EXTRAS_GROUP}/evidence"
            if name not in h5:
                return {}
            evidence = h5[name][()]
    except (OSError, KeyError, ValueError, UserError) as exc:  # the store not at hand (a clone): no marks
        log.info("no evidence overlay for the frame strips (%s)", exc)
        return {}
    row = {v: i for i, v in enumerate(header.video_ids.tolist())}
    offsets = header.offsets
    return {v: evidence[offsets[row[v]] : offsets[row[v] + 1]].astype(bool) for v in ids if v in row}


def plot_frame_strips(results: Path, out_dir: Path, count: int = 8) -> list[Path]:
    plt = _pyplot()
    from matplotlib.patches import Patch
    from matplotlib.transforms import ScaledTranslation

    folder = _gated_run(results)
    ids, decisions, labels, classes, scores = _usage(folder)
    correct = labels[np.arange(len(ids)), scores.argmax(1)]
    chosen = _pick_videos(decisions, correct, count)
    evidence = _evidence(results, [ids[i] for i in chosen])
    longest = max(len(decisions[i]) for i in chosen)
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(chosen) + 1.5))
    ticks, names = [], []
    for row, i in enumerate(chosen):
        y = len(chosen) - 1 - row
        fired = decisions[i]
        colours = np.where(fired, FINE_COLOUR, COARSE_COLOUR)
        ax.bar(np.arange(len(fired)), 0.62, bottom=y - 0.22, width=0.92, color=colours, align="edge", linewidth=0)
        if ids[i] in evidence:
            marks = np.flatnonzero(evidence[ids[i]])
            ax.bar(marks, 0.12, bottom=y - 0.38, width=0.92, color=EVIDENCE_COLOUR, align="edge", linewidth=0)
        truth = ", ".join(classes[c] for c in np.flatnonzero(labels[i]))
        ticks.append(y + 0.09)
        names.append(f"{ids[i]} | {truth} | {int(fired.sum())}/{len(fired)} fine")
    ax.set_yticks(ticks, names, fontsize=8)
    ax.set_xlim(0, longest)
    ax.set_ylim(-0.6, len(chosen) - 0.25)
    ax.set_xlabel("Frame (1 per second of video)")
    handles = [Patch(color=FINE_COLOUR, label="fine features read"), Patch(color=COARSE_COLOUR, label="coarse only")]
    if evidence:
        handles.append(Patch(color=EVIDENCE_COLOUR, label="frame shows the class (synthetic ground truth)"))
    below_axis = ax.transAxes + ScaledTranslation(0, -0.5, fig.dpi_scale_trans)  # 0.5 inch under the axis
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below_axis, ncol=3,
              fontsize=8, frameon=False)
    ax.set_title(f"{results.name}: frames whose fine features LiteEval read ({folder.name}; correctly classified "
                 "test videos, from low to high usage)", fontsize=9)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    return _save(fig, out_dir, "fine_frames_strips")


FIGURES: dict[str, tuple[Callable[[Path, Path], list[Path]], str, str]] = {
    # name: (function, input it needs, the command that makes that input)
    "online_curve": (plot_online, layout.ONLINE_CSV, "python -m benchmark online"),
    "offline_scatter": (plot_offline, layout.TABLE_CSV, "python -m benchmark run"),
    "fine_usage_per_class": (plot_fine_usage, str(layout.pair_dir(Path(), GATED_METHOD, "*") / layout.DIAGNOSTICS),
                             f"python -m benchmark run --methods {GATED_METHOD}"),
    "fine_frames_strips": (plot_frame_strips, str(layout.pair_dir(Path(), GATED_METHOD, "*") / layout.DIAGNOSTICS),
                           f"python -m benchmark run --methods {GATED_METHOD}"),
}


def plot_all(results: Path | str, figures: list[str] | None = None) -> list[Path]:
    """Draw every figure whose inputs exist under ``results``; return the files written."""
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"{results}: no results folder; make one with `python -m benchmark run`")
    unknown = sorted(set(figures or []) - set(FIGURES))
    if unknown:
        raise UsageError(f"unknown figure(s) {unknown}; known: {sorted(FIGURES)}")
    out_dir = results / layout.FIGURES
    written: list[Path] = []
    for name in figures or list(FIGURES):
        function, needs, command = FIGURES[name]
        try:
            written += function(results, out_dir)
        except FileNotFoundError as exc:
            missing = exc.filename or needs  # the file that was actually missing, else what the figure needs
            log.warning("%s: skipped, %s is missing. Make it with `%s --name %s` (a run's missing pairs are computed; "
                        "online evaluates the run's saved models)", name, missing, command, results.name)
    if not written:
        raise FileNotFoundError(f"{results}: nothing to plot; run `python -m benchmark run` and "
                                "`python -m benchmark online` first")
    return written
