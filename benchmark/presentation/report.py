"""``python -m benchmark report``: docs/results.md and the README's generated blocks, from results/.

It also brings each folder's table.md up to date with the marks it owes (stale rows, methods
that did not learn: ``marked_table``), which change when the code or the records do.

No table or figure is pasted by hand: every number on the results page comes from a committed
results folder. For each folder (the catalogue's order first, then any other), the page shows
where and with what it was computed (``provenance.json``: machine, torch, commit, date; the
command where the run recorded it), the folder's hand-written ``notes.md`` (the command for
older runs, and what the numbers say), its table (``table.md``, or ``tune.md`` for a tuning
run) and, where present, the measured time per video, the online curves (``online.csv``), the
figures and the saved streaming runs (``stream-*.json``, as the command printed them). The main
run's rows are also set beside the paper's published numbers (benchmark/presentation/paper.py). The README's headline
table, between its two markers, is the main run's table with the columns a reader needs first;
its streaming block is the saved run named by ``README_STREAM``.

tests/benchmark/test_report.py checks that the committed docs/results.md and README blocks are what this
writes from the committed results.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import preset_origin, tables
from benchmark import results as layout
from benchmark.commands.studies import CHECKS, STUDIES
from benchmark.config import available_cores
from benchmark.presentation import audit, paper, stream_text, words
from benchmark.protocol import learned
from benchmark.record import summary_records, unbacked_pairs
from benchmark.results import folder_lock, read_json, remembering_pair_states
from datasets.common.atomic import atomic_write_text
from datasets.common.errors import UsageError
from datasets.common.gitinfo import REPO, tracked_folders
from datasets.common.progress import progress_bar
from methods.registry import display_name

log = logging.getLogger(__name__)

#: The results folders in the page's order, with their titles (a study's or check's title is its
#: question, benchmark/commands/studies.py); folders not listed follow.
CATALOGUE: tuple[tuple[str, str], ...] = (
    ("default", "Table 1 and the extended suite (the main job)"),
    ("default-curves", "Every method as an accuracy-cost curve, at matched budgets"),
    ("default-ablate-sync", "Table 2: synchronisation"),
    ("default-ablate-gamma", "Table 3: the usage target gamma"),
    ("default-ablate-units", "Table 4: coarse LSTM units"),
    ("default-tune", "How every method's default settings were chosen (the main tune)"),
    *((s.name, f"Study: {s.question}") for s in STUDIES),
    *((c.name, f"Check: {c.question}") for c in CHECKS),
    # Not a reproduce stage: it needs another kind of machine than the one that made the rest.
    ("default-xeon", "A second kind of machine: the main job's rows on an Intel Xeon"),
    ("real-clips", "Real video: LiteEval streaming a clip"),
    # Stores no choice of the shipped settings read, each run by the README's path for your own data.
    ("unseen-b", "A store nobody tuned on (B): the path for your own data"),
    ("unseen-b-tune", "A store nobody tuned on (B): the selection run chose first"),
    ("unseen-c", "A store nobody tuned on (C): the path for your own data"),
    ("unseen-c-tune", "A store nobody tuned on (C): the selection run chose first"),
    ("default-seed1", "A second draw of the default store (data seed 1), by the path for your own data"),
    ("default-seed1-tune", "A second draw of the default store: the selection run chose first"),
    ("default-seed1-readings", "A second draw of the default store: the readings studied on its validation part"),
    ("unseen-a", "A store of `small`'s shape (one the shipped defaults read), by the path for your own data"),
    ("unseen-a-tune", "A store of `small`'s shape: the selection run chose first"),
    # The shipped defaults (methods/shipped.py), chosen across the default store and these two.
    ("shipped-defaults", "The shipped defaults: one setting per method, chosen across three stores"),
    ("small-tune", "The shipped defaults' second store: `small`'s selection trials"),
    ("few-classes-tune", "The shipped defaults' third store: `few-classes`' selection trials"),
    # Their design settings: the default store's design studies, repeated on the same two stores.
    ("shipped-design", "The shipped design settings (readings, architectures), chosen across the same three stores"),
    ("small-design-study", "The shipped design settings' second store: the design studies on `small`"),
    ("few-classes-design-study", "The shipped design settings' third store: the design studies on `few-classes`"),
)
MAIN_RUN = "default"
ABLATIONS = ("sync", "gamma", "units")  # results/<main run>-ablate-<kind>/, set beside the paper's Tables 2-4
HEADLINE_START, HEADLINE_END = "<!-- headline table: python -m benchmark report -->", "<!-- end of headline table -->"
#: The streaming run the README shows (``python -m benchmark stream ... --out``), and its markers.
README_STREAM = ("real-clips", "stream-bikes.json")
STREAM_START, STREAM_END = "<!-- streaming run: python -m benchmark report -->", "<!-- end of streaming run -->"
#: The main run's accuracy-cost sweep, read in the README's summary at matched budgets, and its markers.
MAIN_CURVES = MAIN_RUN + layout.CURVES_SUFFIX
CURVES_START, CURVES_END = "<!-- curves summary: python -m benchmark report -->", "<!-- end of curves summary -->"
#: README's "In short": the comparisons it states, each computed as `python -m benchmark compare RUN A
#: B` computes it and worded by one rule (benchmark/presentation/words.py): (run, A, B, what the paper
#: reports of the same comparison, quoted, or "").
IN_SHORT: tuple[tuple[str, str, str, str], ...] = (
    (MAIN_RUN, "liteeval", "uniform", 'the paper: "as accurate" at about half the cost'),
    (MAIN_RUN, "liteeval_rl", "liteeval", "the paper: LiteEval-RL costlier than LiteEval"),
    (MAIN_RUN, "scsampler", "liteeval", ""),
    (f"{MAIN_RUN}-ablate-sync", "liteeval-nosync", "liteeval-sync", "the paper's Table 2: synchronisation helps"),
    (f"{MAIN_RUN}-ablate-gamma", "liteeval-gamma0.05", "liteeval-gamma0.01", "the paper's Table 3"),
    (f"{MAIN_RUN}-ablate-units", "liteeval-coarse8", "liteeval-coarse32", "the paper's Table 4: about the same"),
    (f"{MAIN_RUN}-ablate-units", "liteeval-coarse8", "liteeval-coarse4", "the paper's Table 4: about the same"),
)
IN_SHORT_START, IN_SHORT_END = "<!-- in short: python -m benchmark report -->", "<!-- end of in short -->"
HEADLINE_COLUMNS = ["Method", "Online", "mAP (%)", "Δ mAP vs Uniform [95% CI]", "GFLOPs/video", "Fine frames/video"]
ONLINE_BUDGETS = (1, 2, 4, 6, 8, 10)
PAGE_HEADER = """# Results

Generated by `python -m benchmark report` from the committed folders under `results/`; do not
edit by hand (tests/benchmark/test_report.py checks that this page is what the command writes). Each
section says where its numbers were computed; the text under "Notes" is the folder's
`notes.md`, written by whoever ran it. GFLOPs are multiply-accumulates (GMACs) per video, as
the field reports them.
"""


@dataclass
class Report:
    page: str
    headline: str
    stream: str  # the README's streaming run
    curves: str  # the README's reading of the main sweep at matched budgets
    in_short: str  # the README's "In short": its comparisons, computed and worded by one rule
    tables: dict[str, str]  # results folder name -> its table.md with the marks it owes now


def _read_json(path: Path) -> dict[str, Any]:
    """``results.read_json``, as an empty mapping where the file is missing or not an object."""
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def machine_line(provenance: dict[str, Any]) -> str:
    """Where and with what a folder was last written, from its provenance."""
    platform, device = provenance.get("platform") or {}, provenance.get("device") or {}
    git = provenance.get("git") or {}
    parts = []
    cpu = platform.get("cpu")
    if cpu:
        cores = device.get("cpu_count")
        parts.append(f"{cpu} ({cores} cores, {platform.get('cpu_isa', '?')})" if cores else str(cpu))
    parts.append(f"GPU {platform['gpu']}" if platform.get("gpu") else "no GPU")
    if platform.get("device"):
        parts.append(f"device {platform['device']}")
    if platform.get("torch"):
        parts.append(f"torch {platform['torch']}")
    if git.get("commit"):
        parts.append(f"commit {git['commit'][:7]}{' (dirty)' if git.get('dirty') else ''}")
    if provenance.get("written"):
        parts.append(f"written {str(provenance['written'])[:10]}")
    return "; ".join(parts)


def pair_machines(folder: Path) -> str:
    """Where the folder's method/seed pairs were computed (each pair's record says), by CPU and device."""
    counts: dict[str, int] = {}
    for seeds in summary_records(folder).values():
        for record in seeds.values():
            platform = record.platform
            where = f"{platform.get('cpu', '?')}, {platform.get('device', '?')}, torch {platform.get('torch', '?')}"
            counts[where] = counts.get(where, 0) + 1
    if not counts:
        return ""
    return "; ".join(f"{where} ({n} pair{'s' if n > 1 else ''})" for where, n in counts.items())


def _online_table(folder: Path) -> str:
    table = pd.read_csv(folder / layout.ONLINE_CSV)
    seeds = sorted(set(table.seed))
    return (tables.online_markdown(table, ONLINE_BUDGETS)
            + f"\n\nTop-1 accuracy on the evaluation split when a prediction is forced after a budget K, and the "
            f"mean GFLOPs per video at that point; means over seeds {seeds}. Every K is in `online.csv`.\n")


def _beside_the_paper(summary: pd.DataFrame) -> str:
    """The main run's rows beside the paper's Table 1 (FCVID) and the later methods' papers."""
    published = {**paper.TABLE1, **paper.LATER_METHODS}
    base = summary.loc[summary.method == tables.BASELINE]
    base_cost = float(base.gflops_mean.iloc[0]) if len(base) else float("nan")
    paper_base = paper.TABLE1[tables.BASELINE]["FCVID"][1]
    rows = []
    for r in summary.to_dict("records"):
        numbers = published.get(r["method"], {}).get("FCVID")
        if numbers is None:
            continue
        rows.append({
            "Method": r["display_name"],
            "Paper: mAP (%)": f"{numbers[0]:.1f}",
            "Paper: GFLOPs": f"{numbers[1]:.1f}",
            "Paper: cost / Uniform's": f"{numbers[1] / paper_base:.2f}" if r["method"] in paper.TABLE1 else "—",
            "Here: mAP (%)": f"{r['map_percent_mean']:.1f}",
            "Here: GFLOPs": f"{r['gflops_mean']:.1f}",
            "Here: cost / Uniform's": f"{r['gflops_mean'] / base_cost:.2f}",
        })
    return (pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
            + "\n\nPaper: FCVID, Table 1 of the LiteEval paper (and, for the later methods, their own papers, "
            "on other backbones: context, not targets; benchmark/presentation/paper.py). Here: the synthetic default, "
            "the table above. Absolute mAP is not comparable between the two; the cost ratios and the order are.\n")


def _ablation_beside_the_paper(kind: str, summary: pd.DataFrame) -> str:
    """An ablation's rows beside the paper's Table 2, 3 or 4 (FCVID), matched row by row."""
    rows = summary.to_dict("records")
    published: dict[str, tuple[float, float | None]]
    if kind == "sync":
        published = {"liteeval-nosync": (paper.TABLE2["w/o sync"], None), "liteeval-sync": (paper.TABLE2["sync"], None)}
        label = "the paper's Table 2"
    elif kind == "gamma":
        published = {f"liteeval-gamma{g:.2f}": values for g, values in paper.TABLE3.items()}
        label = "the paper's Table 3"
    else:  # units: the paper's rows in order of size (64..512 coarse units, fine 2048), here 1/8..1 of the default's
        sized = sorted(rows, key=lambda r: int("".join(c for c in r["method"] if c.isdigit()) or 0))
        published = {r["method"]: (paper.TABLE4[units], None) for r, units in zip(sized, sorted(paper.TABLE4))}
        label = "the paper's Table 4 (64, 128, 256, 512 coarse units, fine 2048), row for row by size"
    shown = [{
        "Row": r["display_name"],
        "Paper: mAP (%)": f"{published[r['method']][0]:.1f}",
        "Paper: GFLOPs": "—" if published[r["method"]][1] is None else f"{published[r['method']][1]:.1f}",
        "Here: mAP (%)": f"{r['map_percent_mean']:.1f} ± {r['map_percent_std']:.1f}",
        "Here: GFLOPs": f"{r['gflops_mean']:.1f} ± {r['gflops_std']:.1f}",
    } for r in rows if r["method"] in published]
    return (pd.DataFrame(shown).to_markdown(index=False, disable_numparse=True)
            + f"\n\nPaper: FCVID, {label} (benchmark/presentation/paper.py). Here: the table above.\n")


def stale_rows(folder: Path) -> dict[str, str]:
    """The folder's rows with a stale pair (row name -> why)."""
    summary = _read_json(folder / layout.SUMMARY).get("summary") or {}
    reasons: dict[str, set[str]] = {}
    for label, _, why in audit.stale_pairs(folder):
        reasons.setdefault(label, set()).add(why)
    return {(summary.get(label) or {}).get("display_name") or label: "; ".join(sorted(found))
            for label, found in reasons.items()}


def marks(folder: Path) -> tuple[dict[str, str], str]:
    """The folder's stale rows, and the caption sentences a table of it owes its reader: which
    rows are stale, which methods did not learn, which pairs failed."""
    stale = stale_rows(folder)
    document = _read_json(folder / layout.SUMMARY)
    per_seed = summary_records(folder)
    rows = len(per_seed)
    names = document.get("summary") or {}
    not_learnt = {(names.get(label) or {}).get("display_name") or label: why
                  for label, why in learned.row_verdicts(per_seed).items()}
    return stale, " ".join(filter(None, [tables.stale_note(stale, rows), learned.note(not_learnt),
                                         tables.failed_note(document.get("failed") or {})]))


def marked_table(folder: Path) -> str | None:
    """The folder's table.md with the marks it owes now (stale rows, methods that did not learn)
    in place of those it was written with; None where there is no table.md. ``write``
    puts it back in the folder, so a table read on its own says what the pages say."""
    path = folder / layout.TABLE_MD
    if not path.is_file():
        return None
    stale, owed = marks(folder)
    return tables.with_marks(tables.with_column_notes(tables.mark_stale_rows(path.read_text(), set(stale))), owed)


def _section(folder: Path, title: str, marked: str | None) -> str:
    provenance = _read_json(folder / layout.PROVENANCE)
    across = _read_json(folder / layout.TRANSFER_JSON)  # a choice across stores trains nothing: no machine
    written_by = ("no machine (it reads the tunes' records and trains nothing)" if across
                  else machine_line(provenance) if provenance
                  else "no provenance.json of its own (its notes say where its runs were computed)")
    lines = [f"## {title}", "", f"`results/{folder.name}/`, last written by: {written_by}."]
    if across.get("command") and not provenance.get("command"):
        provenance = {**provenance, "command": across["command"]}
    if (folder / layout.SUMMARY).is_file() and not (folder / layout.RUNS).is_dir():
        lines.append("Its method/seed pairs were not kept: the numbers below are its summary as written, and nothing "
                     "here can be checked against per-video scores.")
    pairs = pair_machines(folder)
    if pairs:
        lines.append(f"Pairs computed on: {pairs}.")
    if provenance.get("command"):
        lines.append(f"Command: `{provenance['command']}`.")
    notes = folder / layout.NOTES
    if notes.is_file():
        lines += ["", "**Notes.**", "", notes.read_text().strip()]
    if (folder / layout.TRANSFER_MD).is_file():
        lines += ["", (folder / layout.TRANSFER_MD).read_text().strip()]
    if (folder / layout.TUNE_MD).is_file():
        lines += ["", (folder / layout.TUNE_MD).read_text().strip()]
        owed = marks(folder)[1]
        if owed:
            lines += ["", f"{tables.MARKS_HEADING} {owed}"]
    elif marked is not None:
        lines += ["", marked.strip()]
    if folder.name == MAIN_RUN and (folder / layout.TABLE_CSV).is_file():
        beside = _beside_the_paper(pd.read_csv(folder / layout.TABLE_CSV))
        lines += ["", "### Beside the published numbers", "", beside.strip()]
    kind = folder.name.removeprefix(f"{MAIN_RUN}-ablate-")
    if kind in ABLATIONS and (folder / layout.TABLE_CSV).is_file():
        beside = _ablation_beside_the_paper(kind, pd.read_csv(folder / layout.TABLE_CSV))
        lines += ["", "### Beside the published numbers", "", beside.strip()]
    if (folder / layout.LATENCY_MD).is_file():
        measured = (folder / layout.LATENCY_MD).read_text().strip()
        lines += ["", "### Time per video (measured on one device)", "", measured]
    if (folder / layout.ONLINE_CSV).is_file():
        lines += ["", "### Online budget curves", "", _online_table(folder).strip()]
    if (folder / layout.CURVES_MD).is_file():  # an accuracy-cost sweep (benchmark/curves/)
        lines += ["", "### At matched budgets", "", (folder / layout.CURVES_MD).read_text().strip()]
    for record in sorted(folder.glob(layout.STREAM_RECORDS)):
        lines += ["", f"### Streaming run: `{record.name}`", "", streaming_run(record).strip()]
    figures = sorted((folder / layout.FIGURES).glob("*.png")) if (folder / layout.FIGURES).is_dir() else []
    if figures:
        lines += ["", "### Figures", ""]
        lines += [f"![{f.stem.replace('_', ' ')}](../results/{folder.name}/figures/{f.name})" for f in figures]
    return "\n".join(lines) + "\n"


WITHHELD_TITLE = "Not published: what report --check found"


def withheld(results: Path, present: set[str]) -> dict[str, list[audit.Problem]]:
    """The folders among ``present`` that ``report --check`` does not pass, with their problems:
    the page lists them and shows none of their numbers, and the README's blocks do not come
    from them (a table no command produces from the current code is not one to cite)."""
    shown = _shown_root(results)
    return {name: [replace(p, root=shown) for p in problems] for name in sorted(present)
            if (problems := audit.check_folder(results / name))}


def _shown_root(results: Path) -> str:
    """How the page names the results root: relative to the repository when it is inside it, so
    that the page is the same on every machine and in every clone."""
    try:
        return str(results.resolve().relative_to(REPO.resolve()))
    except ValueError:
        return str(results)


def withheld_note(name: str, problems: list[audit.Problem]) -> str:
    """What a README block says in place of a withheld folder's numbers."""
    kinds = ", ".join(dict.fromkeys(p.kind for p in problems))
    return (f"(`results/{name}/` is not published: `python -m benchmark report --check` finds {len(problems)} "
            f"problem(s) in it ({kinds}); `python -m benchmark reproduce` regenerates it. What was found: "
            f"[docs/results.md](docs/results.md#{_anchor(WITHHELD_TITLE)}).)\n")


def _withheld_section(held: dict[str, list[audit.Problem]]) -> str:
    lines = [f"## {WITHHELD_TITLE}", "",
             "These committed folders are not shown: a table of them is not what the current code computes, or "
             "a selection in them scored on the test split (`python -m benchmark report --check`; "
             "benchmark/presentation/audit.py). `python -m benchmark reproduce` regenerates the main job's folders; "
             "a study's folder, its own command with `--refresh`.", ""]
    lines += [f"- {problem.line()}" for problems in held.values() for problem in problems]
    return "\n".join(lines) + "\n"


def headline(results: Path) -> str:
    """The main run's table with the headline columns, and where it comes from."""
    csv = results / MAIN_RUN / layout.TABLE_CSV
    if not csv.is_file():
        return f"(no `results/{MAIN_RUN}/table.csv` yet: run `python -m benchmark run`)\n"
    summary = pd.read_csv(csv)
    stale, owed = marks(results / MAIN_RUN)
    summary["stale"] = [stale.get(name, "") for name in summary.display_name]  # judged now, not when written
    shown = tables.display_frame(summary)
    shown = shown[HEADLINE_COLUMNS + [c for c in shown.columns if c.startswith(tables.LATENCY_COLUMN)]]
    machines = pair_machines(results / MAIN_RUN)
    seeds = int(summary.seeds.max())
    timed = any(c.startswith(tables.LATENCY_COLUMN) for c in shown.columns)
    time_note = (" The time per video was measured on the one device its heading names (`python -m benchmark "
                 "latency`), not where the pairs were computed, and says nothing about another device."
                 if timed else "")
    return (shown.to_markdown(index=False, disable_numparse=True)
            + f"\n\nFrom `results/{MAIN_RUN}/`, {seeds} seeds, mean ± std (pairs computed on: {machines}).{time_note} "
            + (f"{owed} " if owed else "")
            + "Every column, the protocol and what the numbers say: [docs/results.md](docs/results.md).\n")


def stale_methods(folder: Path) -> frozenset[str]:
    """The methods of a sweep folder with a stale pair (their display names): a point of a method
    is stale when its own training is, or, for a point read at evaluation, the method's pair."""
    summary = _read_json(folder / layout.SUMMARY).get("summary") or {}
    methods = {label.split("@")[0] for label, _, _ in audit.stale_pairs(folder)}
    return frozenset((summary.get(m) or {}).get("display_name") or m for m in methods)


def curves_summary(results: Path, page_anchor: str) -> str:
    """The main sweep at matched budgets, in sentences (benchmark/presentation/curves.py ``summary``),
    with where it comes from and its figure."""
    from benchmark.presentation import curves as curves_report

    folder = results / MAIN_CURVES
    if not (folder / layout.CURVES_CSV).is_file():
        return f"(no `results/{MAIN_CURVES}/{layout.CURVES_CSV}` yet: run `python -m benchmark curves`)\n"
    read = curves_report.read_matched(folder)
    stale = stale_methods(folder)
    from benchmark.eta import method_of
    from methods.registry import display_name

    per_seed = summary_records(folder)
    not_learnt = frozenset(display_name(method_of(label)) for label in learned.row_verdicts(per_seed))
    command = _read_json(folder / layout.PROVENANCE).get("command") or "python -m benchmark curves"
    seeds = curves_report.load(folder).groupby(["method", "point"])["seed"].nunique().min()
    figure = folder / layout.FIGURES / "curves.png"
    shown = f"\n\n![Accuracy against cost, every method](results/{MAIN_CURVES}/{layout.FIGURES}/curves.png)" \
        if figure.is_file() else ""
    stale_note = (" Methods marked (stale) have points computed by code that has changed since." if stale else "")
    learnt_note = (" Methods marked (did not learn) have a point that did not learn (benchmark/protocol/learned.py) "
                   "and are not named on the front." if not_learnt else "")
    stale_note += learnt_note
    return (curves_report.in_words(read, stale=stale, not_learnt=not_learnt)
            + f"\n\nFrom `results/{MAIN_CURVES}/` (`{command}`), {seeds} seeds per point, each method along its "
            f"cost knob under the main run's budget and selection.{stale_note} The table at 25%, 50% and 100% of "
            f"Uniform-25's cost: [docs/results.md](docs/results.md#{page_anchor}).{shown}\n")


def streaming_run(path: Path) -> str:
    """A saved streaming run as the command printed it, with the command that made it."""
    record = _read_json(path)
    if not record.get("live"):
        return f"(`{path}` is not a streaming record of `python -m benchmark stream --out`)\n"
    command = record.get("command") or f"python -m benchmark stream {record['video']} --run {record['run']}"
    saved = f"results/{path.parent.name}/{path.name}"
    return f"```\n{stream_text.render(record)}\n```\n\nPrinted by `{command}` (the record: `{saved}`).\n"


def presets_section(results: Path, held: dict[str, list[audit.Problem]] | None = None) -> str:
    """The shipped `default` presets and where each setting was chosen (methods/presets.py), with
    the split each record's own trials say they were scored on (a record not published says so)."""
    scored = {(c.method, c.folder): c.scored_on for c in preset_origin.choices(results=results)}
    found = preset_origin.origins()
    rows = [{"Method": display_name(method), "Settings": ", ".join(origin.keys),
             "Chosen by": f"results/{origin.record}" + (" (not published)" if origin.record in (held or {}) else ""),
             "On": origin.date,
             "Trials scored on (their records)": scored.get((method, origin.record), "no record")}
            for method in tables.order_methods(list(found)) for origin in found[method]]
    return ("## The shipped presets and where they were chosen\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
            + "\n\nThe settings every method ships for the embedded default, each from a committed tuning record "
            "(methods/presets.py; `python -m benchmark methods --verbose` prints them). A record whose trials were "
            "scored on anything but validation is named by `python -m benchmark report --check`.\n")


def published(results: Path, names: list[str] | None) -> set[str]:
    """The folders the page shows: ``names`` (``report --name``), else the ones committed to git,
    so that a user's own experiments never leak onto the published page; outside a git checkout,
    every folder."""
    present = {p.name for p in results.iterdir()
               if p.is_dir() and any((p / f).is_file() for f in (layout.PROVENANCE, layout.NOTES, layout.TABLE_MD))}
    if names:
        unknown = sorted(set(names) - present)
        if unknown:
            raise UsageError(f"--name {' '.join(unknown)}: no such results folder under {results}; it has "
                             f"{sorted(present)}")
        return set(names)
    tracked = tracked_folders(results)
    if tracked is None:
        log.warning("%s is not in a git checkout: publishing every folder in it (name them with --name)", results)
        return present
    left = sorted(present - tracked)
    if left:
        log.info("not published (not committed; list them in results/.gitignore and commit them to publish them, "
                 "or name them with --name): %s", ", ".join(left))
    return present & tracked


def build(results: Path, names: list[str] | None = None) -> Report:
    with remembering_pair_states():  # the audit and the tables ask about the same pairs
        return _build(results, names)


def _build(results: Path, names: list[str] | None) -> Report:
    present = published(results, names)
    unbacked = {}
    with progress_bar(total=len(present), desc="report: checking each folder's pairs", unit="folder") as bar:
        for name in sorted(present):  # every pair's files and numbers, about 0.1 s a pair
            if missing := unbacked_pairs(results / name):
                unbacked[name] = missing
            bar.update(1)
    if unbacked:
        name, missing = next(iter(unbacked.items()))
        more = f" (and {len(unbacked) - 1} other folder(s))" if len(unbacked) > 1 else ""
        raise UsageError(f"results/{name}: its table lists pairs that are not complete on disk: {'; '.join(missing)}"
                         f"{more}. Recompute them with `python -m benchmark run --name {name} ...` (the folder's "
                         "command), or remove the folder; the report publishes only what its pairs hold")
    held = withheld(results, present)
    shown = present - set(held)
    order = [(name, title) for name, title in CATALOGUE if name in shown]
    order += [(name, f"`{name}`") for name in sorted(shown - {n for n, _ in CATALOGUE})]
    titles = [title for _, title in order] + ([WITHHELD_TITLE] if held else [])
    contents = "\n".join(f"- [{title}](#{_anchor(title)})" for title in titles)
    marked = {name: marked_table(results / name) for name in sorted(present)}
    sections = "\n".join(_section(results / name, title, marked[name]) for name, title in order)
    if held:
        sections += "\n" + _withheld_section(held)
    folder, name = README_STREAM
    stream = (withheld_note(folder, held[folder]) if folder in held
              else streaming_run(results / folder / name) if (results / folder / name).is_file()
              else f"(no `results/{folder}/{name}` yet: see docs/running.md, Streaming a video)\n")
    curves_title = dict(CATALOGUE)[MAIN_CURVES]
    curves = (withheld_note(MAIN_CURVES, held[MAIN_CURVES]) if MAIN_CURVES in held
              else curves_summary(results, _anchor(curves_title)) if MAIN_CURVES in present
              else f"(`results/{MAIN_CURVES}` is not published: run `python -m benchmark curves` and commit it)\n")
    top = withheld_note(MAIN_RUN, held[MAIN_RUN]) if MAIN_RUN in held else headline(results)
    return Report(page=f"{PAGE_HEADER}\n{presets_section(results, held)}\n{contents}\n\n{sections}",
                  headline=top, stream=stream, curves=curves, in_short=in_short(results, shown),
                  tables={name: text for name, text in marked.items() if text is not None})


def in_short(results: Path, shown: set[str]) -> str:
    """README's "In short" paragraph: each comparison of ``IN_SHORT`` as ``compare`` computes it,
    in the words of benchmark/presentation/words.py, with its cost ratio and what the paper reports.
    The comparisons run in threads, as a table's bootstrap does (benchmark/folder_summary.py
    ``resampled_maps``): numpy releases the GIL in almost all of it, and each is computed as alone."""
    from benchmark.presentation.compare import compare

    asked = [(run, a, b) for run, a, b, _ in IN_SHORT if run in shown]
    with ThreadPoolExecutor(max_workers=max(1, min(len(asked), available_cores()))) as pool:
        futures = {(run, a, b): pool.submit(compare, results / run, a, b) for run, a, b in asked}
    parts = []
    for run, a, b, reported in IN_SHORT:
        if run not in shown:
            parts.append(f"(`results/{run}` is not published: {a} against {b} is not stated)")
            continue
        try:
            c = futures[run, a, b].result()
        except (UsageError, FileNotFoundError) as exc:  # a folder without these rows or pairs (a user's own run)
            parts.append(f"({a} against {b} in `results/{run}` is not stated: {exc})")
            continue
        d = c.difference
        said = words.sentence(c.a.shown, c.b.shown, 100 * d.estimate, 100 * d.low, 100 * d.high)
        parts.append(f"{said} at {c.a.gflops / c.b.gflops:.2f} times its cost" + (f" ({reported})" if reported else "")
                     + f", `{run}`")
    return ("In short (each comparison as `python -m benchmark compare results/RUN A B` prints it: paired bootstrap "
            "over the test videos, seeds pooled, 95% interval; worded by one rule, benchmark/presentation/words.py: "
            "more or less accurate when the interval excludes zero, no difference detected when it spans it): "
            + "; ".join(parts) + ".\n")


def _anchor(title: str) -> str:
    """GitHub's anchor for a heading."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def with_block(readme: str, block: str, markers: tuple[str, str]) -> str:
    """``readme`` with the text between ``markers`` replaced by ``block``."""
    opening, closing = markers
    start, end = readme.find(opening), readme.find(closing)
    if start < 0 or end < start:
        raise UsageError(f"README.md has no markers {opening!r} ... {closing!r}; put them where the generated "
                         "block goes")
    return readme[: start + len(opening)] + "\n\n" + block + "\n" + readme[end:]


def with_generated(readme: str, report: Report) -> str:
    """``readme`` with its generated blocks (the headline table, the curves' summary, the streaming
    run) replaced."""
    readme = with_block(readme, report.headline, (HEADLINE_START, HEADLINE_END))
    readme = with_block(readme, report.curves, (CURVES_START, CURVES_END))
    readme = with_block(readme, report.in_short, (IN_SHORT_START, IN_SHORT_END))
    return with_block(readme, report.stream, (STREAM_START, STREAM_END))


def write(results: Path, page: Path, readme: Path | None, names: list[str] | None = None) -> Report:
    """Write ``page`` and (where given) the generated blocks of ``readme`` from the folders
    ``published`` picks; return what was written."""
    if not results.is_dir():
        raise UsageError(f"--results-dir {results}: no such folder; run `python -m benchmark run` first")
    report = build(results, names)
    text = with_generated(readme.read_text(), report) if readme is not None else None
    for name, table in report.tables.items():
        folder = results / name
        if (folder / layout.TABLE_MD).read_text() != table:
            with folder_lock(folder):  # a run writing this folder must not have its table changed under it
                atomic_write_text(folder / layout.TABLE_MD, table)
    atomic_write_text(page, report.page)
    if readme is not None and text is not None:
        atomic_write_text(readme, text)
    return report
