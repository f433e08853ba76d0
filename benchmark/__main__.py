"""Command line of the harness: ``python -m benchmark COMMAND``; every command is listed below with
what it does, and ``python -m benchmark COMMAND --help`` gives its options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark import results as results_layout
from benchmark.config import DEFAULT_SEEDS, RunConfig
from benchmark.precision import DEFAULT as DEFAULT_PRECISION
from benchmark.precision import PRECISIONS
from benchmark.protocol.budget import Budget
from benchmark.protocol.splits import VALIDATION_FRACTION, VALIDATION_SEED
from benchmark.store_settings import SELECTION_TRIALS
from datasets.common.cli import run_cli
from datasets.common.errors import UsageError
from methods.suites import SUITES


def _cmd_methods(args: argparse.Namespace) -> int:
    from methods import shipped
    from methods.base import Preset, preset_settings
    from methods.registry import available_methods, ordered

    known = available_methods()
    width = max(len(n) for n in known)
    for name in ordered(list(known)):
        cls = known[name]
        mode = "online " if cls.online else "offline"
        print(f"{name:<{width}}  {cls.shown_name():<13} {mode}  {cls.suite:<8}  streams={','.join(cls.streams):<12} "
              f"{cls.summary}")
        if cls.citation:
            print(f"{'':<{width}}  {cls.citation}")
        if cls.cost_knob is not None:
            knob = cls.cost_knob
            print(f"{'':<{width}}  cost knob: {knob.setting} ({knob.what or knob.setting}), points "
                  f"{', '.join(map(str, knob.points))}, read in {knob.at}")
        if args.verbose:
            if shipped.settings(name):
                print(f"{'':<{width}}  shipped defaults (any store without its own): {shipped.settings(name)}")
                print(f"{'':<{width}}    {shipped.ORIGIN.describe()}")
            for dataset, preset in cls.presets.items():
                print(f"{'':<{width}}  preset {dataset!r}: {preset_settings(preset)}")
                for origin in preset.origins if isinstance(preset, Preset) else ():
                    print(f"{'':<{width}}    {origin.describe()}")
                if isinstance(preset, Preset) and preset.note:
                    print(f"{'':<{width}}    set by hand: {preset.note}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from benchmark.conformance import check_method, summary_lines
    from benchmark.stores import resolve_store
    from methods.registry import resolve_method

    store = resolve_store(args.dataset, args.data_seed, show_progress=not args.quiet)
    failed = 0
    for spec in args.specs:
        cls = resolve_method(spec)
        findings = check_method(cls, store, fast=args.fast)
        print("\n".join(summary_lines(cls, findings)))
        failed += any(not f.passed for f in findings)
    return 1 if failed else 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from benchmark.presentation.runs import listing

    root = Path(args.results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"--results-dir {root}: no such folder")
    print(listing(root))
    return 0


def _cmd_stores(args: argparse.Namespace) -> int:
    from benchmark.stores import data_root, store_listing

    root = Path(args.data) if args.data else data_root()
    print("\n".join(store_listing(root)))
    return 0


def _config(args: argparse.Namespace) -> RunConfig:
    budget = Budget(epochs=args.epochs, min_steps=args.min_steps, steps=args.steps, batch_size=args.batch_size,
                    validations=args.validations, patience=None if args.patience == 0 else args.patience)
    return RunConfig(
        dataset=args.dataset, data_seed=args.data_seed, methods=args.methods, suite=getattr(args, "suite", "paper"),
        seeds=args.seeds, device=args.device,
        budget=budget, val_fraction=args.val_fraction, val_seed=args.val_seed, name=args.name,
        config_file=args.config, presets=getattr(args, "presets", True), results_root=args.results_dir,
        train_split=args.train_split,
        eval_split=args.eval_split, force=args.force, refresh=getattr(args, "refresh", False),
        show_progress=not args.quiet,
        jobs=getattr(args, "jobs", None), threads=getattr(args, "threads", None),
        reread_evidence=getattr(args, "reread_evidence", False), precision=args.precision,
        unchecked=getattr(args, "unchecked", False), overrides=args.overrides or [],
    )


#: The option names of the run flags, as RunConfig names them.
_CONFIG_NAMES = {"config": "config_file", "results_dir": "results_root"}


def _followup_config(args: argparse.Namespace) -> RunConfig:
    """A follow-up command's config: the run's own, from its folder, with the run flags typed
    (benchmark/followup.py). Its run flags have no defaults, so only the typed ones are in ``args``."""
    from benchmark.followup import followup_config

    given = {_CONFIG_NAMES.get(k, k): getattr(args, k) for k in args.run_flags if hasattr(args, k)}
    if given.get("patience") == 0:
        given["patience"] = None  # --patience 0: never stop early, recorded as none
    given["show_progress"] = not args.quiet
    return followup_config(given)


def _print_table(texts: dict[str, str]) -> int:
    # Under torchrun only rank 0 writes (and prints) the table; the other ranks return {}.
    if texts:
        from benchmark.summary import TERMINAL

        print(texts[TERMINAL])
        if "crosscheck" in texts:
            print(texts["crosscheck"])
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from benchmark.runner import run
    from benchmark.select_first import settle

    return _print_table(run(settle(_config(args), args.settings_from)))


def _cmd_tune(args: argparse.Namespace) -> int:
    import json

    from benchmark.commands.tune import tune

    try:
        space = json.loads(args.space) if args.space is not None else None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--space is not valid JSON ({exc}); e.g. '{{\"penalty\": [\"video\", \"batch\"]}}'") from exc
    result = tune(_config(args), trials=args.trials, tune_seed=args.tune_seed, space=space)
    if result is None:  # a torchrun rank other than 0: rank 0 chooses and prints
        return 0
    print(result.table)
    print(f"\nbest settings written to {result.config_path}; use them with "
          f"`python -m benchmark run --config {result.config_path}`")
    return 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    from benchmark.commands import transfer
    from methods.registry import available_methods

    root = Path(args.results_dir)
    folders = []
    for run in args.tunes:
        folder = results_layout.run_folder(run, root)
        if not folder.is_dir():
            raise UsageError(f"{run}: no such tune under {root} (nor a folder); name each store's "
                             "`python -m benchmark tune` run")
        folders.append(folder)
    choice = transfer.choose(folders)
    shown = {name: cls.shown_name() for name, cls in available_methods().items()}
    print(transfer.write(choice, root / args.name, force=args.force, shown=shown))
    print(f"chosen settings written to {root / args.name / results_layout.TUNED_JSON}; methods/shipped.py ships them")
    return 0


def _cmd_curves(args: argparse.Namespace) -> int:
    from benchmark.curves.sweep import curves
    from benchmark.presentation.curves import write

    folder = curves(_config(args), keep=args.points)
    if folder is None:  # a torchrun rank other than 0: rank 0 writes and prints
        return 0
    print(write(folder))
    print(f"written: {folder / results_layout.CURVES_CSV}, {results_layout.CURVES_MD} and figures/curves.png/.pdf")
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from benchmark.commands.ablation import ablate

    return _print_table(ablate(args.kind, _config(args)))


def _existing_folder(folder: Path) -> Path:
    """``folder``, which a command that reads a run's results needs to exist (taking its lock
    would otherwise create it, empty, on the way to failing)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such results folder; run `python -m benchmark run` first, or pass "
                                "--name/--results-dir of an existing one")
    return folder


def _existing_run(cfg: RunConfig) -> Path:
    """The results folder of ``cfg`` (a follow-up command's config always names it), which must
    exist: checked, and then locked, before the context loads the store, which may first have to
    generate it (a folder in use is reported at once, not after the store has loaded)."""
    return _existing_folder(Path(cfg.results_root) / str(cfg.name))


def _cmd_online(args: argparse.Namespace) -> int:
    from benchmark.commands.online import OnlineOptions, run_online, summary
    from benchmark.context import RunContext

    if args.max_k < 1:
        raise UsageError(f"--max-k must be >= 1, got {args.max_k}")
    cfg = _followup_config(args)
    with results_layout.folder_lock(_existing_run(cfg)):
        ctx = RunContext.create(cfg)
        options = OnlineOptions(budgets=tuple(range(1, args.max_k + 1)), horizon_method=args.horizon_method,
                                frame_model=args.frame_model)
        table = run_online(ctx, options)
    print(summary(table))
    print(f"\nwritten: {ctx.out / results_layout.ONLINE_CSV}")
    return 0


def _cmd_latency(args: argparse.Namespace) -> int:
    from benchmark import summary
    from benchmark.commands.latency import LatencyOptions, run_latency
    from benchmark.context import RunContext

    cfg = _followup_config(args)
    with results_layout.folder_lock(_existing_run(cfg)):
        ctx = RunContext.create(cfg)
        run_latency(ctx, LatencyOptions(batch=args.latency_batch, repeats=args.repeats, warmup=args.warmup))
        # The folder's table gains the estimate as a column, from the saved pairs (nothing is recomputed);
        # its provenance.json, which describes the run that computed them, is kept.
        texts = summary.write(ctx)
    print((ctx.out / results_layout.LATENCY_MD).read_text())
    print(texts[summary.TERMINAL])
    print(f"written: {ctx.out / results_layout.LATENCY_MD}, latency.json, and the folder's table with the estimate "
          "as a column")
    return 0


def _cmd_stream(args: argparse.Namespace) -> int:
    from benchmark.commands.stream import StreamOptions, stream_video, write_record
    from benchmark.presentation.stream_text import describe_frame, header, summary

    if args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    if args.out and Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"--out {args.out} already exists; choose another path, or pass --overwrite to replace "
                              "it")
    weights = {s: w for s, w in (("coarse", args.coarse_weights), ("fine", args.fine_weights)) if w}
    compare = None if args.compare == "none" else args.compare
    options = StreamOptions(method=args.method, seed=args.seed, compare=compare, store=args.store, weights=weights,
                            device=args.device, realtime=args.realtime, top=args.top)
    run = args.run or str(Path("results") / args.name)
    print(header(args.video, args.method, run))
    record = stream_video(args.video, run, options,
                          on_frame=lambda frame: print(describe_frame(frame), flush=True))
    print(summary(record))
    if args.out:
        write_record(record, args.out)
        print(f"written: {args.out}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from benchmark.config import folder_name_problem
    from benchmark.presentation.plots import plot_all
    from benchmark.results import folder_lock

    if folder_name_problem(args.name):
        raise UsageError(f"--name {args.name!r}: {folder_name_problem(args.name)}; results/<name> is one folder")
    folder = _existing_folder(Path(args.results_dir) / args.name)
    with folder_lock(folder):
        for path in plot_all(folder, args.figures):
            print(path)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from benchmark.presentation.compare import compare, describe

    against = results_layout.run_folder(args.against, args.results_dir) if args.against is not None else None
    print(describe(compare(results_layout.run_folder(args.run, args.results_dir), args.a, args.b, against)))
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from benchmark.migration import migrate

    root = Path(args.results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"--results-dir {root}: no such folder")
    done, refused = migrate(root)
    for line in done:
        print(line)
    print(f"{len(done)} change(s); {len(refused)} pair(s) left as they were" + "".join(f"\n  {r}" for r in refused))
    return 0 if not refused else 1


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from benchmark.reproduce import Options, reproduce

    options = Options(dataset=args.dataset, data_seed=args.data_seed, name=args.name, results_dir=args.results_dir,
                      methods=args.methods, seeds=args.seeds, tune_seeds=args.tune_seeds, trials=args.trials,
                      points=args.points, steps=args.steps, device=args.device, jobs=args.jobs,
                      threads=args.threads, stages=args.stages)
    reproduce(options, main, dry_run=args.dry_run)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from benchmark.presentation.report import published, write

    results = Path(args.results_dir)
    if args.check:
        from benchmark.presentation.audit import check, not_learnt, unequal_effort

        if not results.is_dir():
            raise FileNotFoundError(f"--results-dir {results}: no such folder")
        names = sorted(published(results, args.name))
        problems = check(results, names)
        for problem in problems:
            print(problem.line())
        for line in not_learnt(results, names) + unequal_effort(results):
            print(line)
        folders = len({p.folder for p in problems})
        print(f"report --check: {len(names)} published folders, "
              + (f"{len(problems)} problem(s) in {folders}" if problems else "every one passes"))
        return 1 if problems else 0
    # A report to --out writes only there (and to --readme, where named): the repository's page and
    # README change only when the committed folders are published (issue 46).
    page = Path(args.out or DEFAULT_PAGE)
    readme = Path(args.readme) if args.readme else (None if args.out else Path(DEFAULT_README))
    if args.out is None and args.name:
        raise UsageError(f"--name {' '.join(args.name)}: the repository's {DEFAULT_PAGE} and {DEFAULT_README} publish "
                         "the committed folders, not a choice of them; pass --out PAGE to write a report of these")
    _refuse_foreign_publication(results, page if args.out is None else None,
                                readme if args.readme is None and readme is not None else None)
    write(results, page, readme, args.name)
    print(f"written: {page}" + (f" and the generated blocks of {readme} (headline table, curves summary, 'In "
                                "short', streaming run)" if readme is not None else ""))
    return 0


#: What ``report`` writes unless told otherwise: the repository's own published page and README.
DEFAULT_PAGE, DEFAULT_README = "docs/results.md", "README.md"


def _refuse_foreign_publication(results: Path, *defaults: Path | None) -> None:
    """The repository's page and README are rewritten only from the repository's own results/:
    ``report --results-dir elsewhere`` would otherwise replace the published tables with a
    scratch folder's (or with none). Naming --out and --readme is the deliberate way."""
    from datasets.common.gitinfo import REPO

    if results_layout.is_published_root(results):
        return
    published = [REPO / DEFAULT_PAGE, REPO / DEFAULT_README]
    hit = [path for path in defaults if path is not None and path.resolve() in {p.resolve() for p in published}]
    if hit:
        raise UsageError(f"--results-dir {results} is not this repository's results/, and `report` would replace the "
                         f"published {' and '.join(str(p) for p in hit)} with what it holds; pass --out and --readme "
                         "to write the page and README elsewhere (or --check to audit it)")


#: The commands that split their work over torchrun ranks (rank 0 holds the folder's lock and writes
#: the tables); every other command runs in one process.
RANK_AWARE = ("run", "tune", "curves", "ablate")


def _in_one_process(command: str, func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func``, refused under torchrun: each rank would run the whole command, and all but one
    would stop at the results folder's lock (or write the same files twice)."""

    def guarded(args: argparse.Namespace) -> int:
        from datasets.common.distributed import launched_world

        world = launched_world()
        if world > 1:
            raise UsageError(f"`{command}` runs in one process and does not split its work over torchrun's "
                             f"{world} ranks; run it as `python -m benchmark {command} ...` (torchrun splits "
                             f"{', '.join(RANK_AWARE)})")
        return func(args)

    return guarded


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="train and evaluate methods, write the comparison table under results/")
    _run_options(p, methods=True)
    p.add_argument("--settings-from", metavar="NAME",
                   help="train with the settings chosen on another store (results/NAME.settings.json, or a path to "
                        "one), marked in the caption and on every row they cover; by default a store is run with its "
                        "own, chosen first on its validation part where it has none (benchmark/select_first.py)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("tune", help="search each method's declared settings on the held-out validation part of the "
                                    "training split (the same number of trials for every method; the evaluation "
                                    "split is never read); writes a config file for run --config")
    _run_options(p, methods=True, seeds=(0,), evaluates=False)
    p.add_argument("--trials", type=int, default=SELECTION_TRIALS,
                   help="settings tried per method; the first is the method's current one (default "
                        f"{SELECTION_TRIALS})")
    p.add_argument("--tune-seed", type=int, default=0, help="seed of the random draw of settings (default 0)")
    p.add_argument("--space", help="a JSON object of setting -> candidate values that replaces the methods' declared "
                                   "search spaces (keys: Hparams fields or train.<setting>)")
    p.set_defaults(func=_cmd_tune)

    p = sub.add_parser("transfer", help="choose each method's shipped defaults across stores: the same trials tuned "
                                        "on each store (its validation part only), one rule (the cheapest within "
                                        "the noise on every store, else the best worst case); writes "
                                        "results/<name>/tuned.json and a table of every method on every store")
    p.add_argument("tunes", nargs="+", metavar="RUN",
                   help="each store's tune (a name under --results-dir or a folder), tuned with the same --trials, "
                        "--tune-seed and --no-presets")
    p.add_argument("--name", default="shipped-defaults", help="the folder written under --results-dir "
                                                               "(default: shipped-defaults)")
    p.add_argument("--results-dir", default="results", help="root of the results (default: results)")
    p.add_argument("--force", action="store_true", help="replace a choice made there from other tunes")
    p.set_defaults(func=_cmd_transfer)

    p = sub.add_parser("curves", help="every method along its cost knob (accuracy-cost curves, three seeds, the "
                                      "run's budget and selection), with a matched-budget table and figure under "
                                      "results/<name>-curves")
    _run_options(p, methods=True)
    p.add_argument("--points", type=int, help="at most this many trainings per method with a training-time knob, "
                                              "evenly spread over its declared points (default: all of them); an "
                                              "evaluation-time knob is measured at every point")
    p.set_defaults(func=_cmd_curves)

    from benchmark.commands.defaults import ABLATION_KINDS as KINDS

    p = sub.add_parser("ablate", help="LiteEval ablations like the paper's Tables 2-4, under results/")
    p.add_argument("kind", choices=KINDS, help="sync (Table 2), gamma (Table 3) or units (Table 4)")
    _run_options(p, methods=False)
    p.set_defaults(func=_cmd_ablate)

    from benchmark.commands.defaults import FRAME_MODEL, HORIZON_METHOD
    from benchmark.presentation.plots import FIGURES

    p = sub.add_parser("online", help="online budget curves (LiteEval-K, Uniform-K, Seq-K; Figure 2) from trained "
                                      "models, as results/<name>/online.csv")
    _run_options(p, methods=True, force=False, followup=True)
    p.add_argument("--max-k", type=int, default=10, help="budgets K = 1..MAX_K (default 10)")
    p.add_argument("--horizon-method", "--reference", dest="horizon_method", default=HORIZON_METHOD,
                   help=f"online method whose stopping points define Uniform-K's K' (default {HORIZON_METHOD}; "
                        "--reference is its former name)")
    p.add_argument("--frame-model", default=FRAME_MODEL,
                   help=f"trained frame classifier that Uniform-K and Seq-K average (default {FRAME_MODEL})")
    p.set_defaults(func=_cmd_online)

    p = sub.add_parser("latency", help="measured backbone latency and time per video on this device, as "
                                       "results/<name>/latency.json and latency.md, and as a column of the "
                                       "folder's table")
    _run_options(p, methods=True, force=False, followup=True)
    p.add_argument("--latency-batch", type=int, default=64, help="the throughput batch for offline methods (64)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement; the median is kept (5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (2)")
    p.set_defaults(func=_cmd_latency)

    p = sub.add_parser("stream", help="an online method of a run (LiteEval) on a video file as it plays, with the "
                                      "fine backbone run only where its gate fires; then Uniform on the same video")
    p.add_argument("video", help="the video file")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="the run whose trained models to use (results/<name>), trained on a store "
                                      "extracted from videos")
    which.add_argument("--run", help="the same as a folder path (a run under another results root)")
    p.add_argument("--method", default="liteeval", help="the online method to stream (default liteeval)")
    p.add_argument("--seed", type=int, help="which trained seed (default: the lowest in the run)")
    p.add_argument("--compare", default="uniform",
                   help="the offline method of the same run to run on the whole video afterwards (default uniform; "
                        "none: no comparison)")
    p.add_argument("--store", help="the run's feature store, if it moved since training (default: the path its "
                                   "provenance.json records)")
    p.add_argument("--coarse-weights", help="the coarse backbone's checkpoint, if it moved since extraction")
    p.add_argument("--fine-weights", help="the fine backbone's checkpoint, if it moved since extraction")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    p.add_argument("--realtime", action="store_true",
                   help="wait for each frame's time in the video, as a camera would deliver it (default: as fast as "
                        "decoding allows)")
    p.add_argument("--top", type=int, default=3, help="running top classes printed per frame (3)")
    p.add_argument("--out", help="also write the whole record (per-frame decisions, times, machine) as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_cmd_stream)

    p = sub.add_parser("plot", help="redraw the figures (PNG and PDF) from saved results, under "
                                    "results/<name>/figures/")
    p.add_argument("--name", default="default", help="results/<name> to plot (default: default)")
    p.add_argument("--results-dir", default="results", help="root of the results (default: results)")
    p.add_argument("--figures", nargs="+", choices=sorted(FIGURES), help="only these figures (default: all)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("report", help="write docs/results.md and the README's generated blocks (headline table, "
                                      "curves summary, streaming run) from results/; --check audits them")
    p.add_argument("--results-dir", default="results", help="root of the results (default: results)")
    p.add_argument("--out", help="the results page to write (default: docs/results.md, only from this repository's "
                                 "results/)")
    p.add_argument("--readme", help="the README whose generated blocks are replaced (default: README.md, only from "
                                    "this repository's results/)")
    p.add_argument("--name", nargs="+", help="the results folders to publish (default: those committed to git, so "
                                            "that scratch experiments stay off the page)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1, naming each problem, when a published "
                                                        "folder has stale pairs, pairs from several kinds of machine, "
                                                        "a selection on the test split, or pairs its table does not "
                                                        "match")
    p.set_defaults(func=_cmd_report)

    from benchmark.commands.defaults import REPRODUCE_STAGES

    p = sub.add_parser("reproduce", help="every published number of a dataset from the current code: tune -> table "
                                         "-> Tables 2-4 -> online -> curves -> latency -> figures -> report, each "
                                         "stage resumed or skipped when up to date; prints its plan and ETA first")
    p.add_argument("--dataset", default="default", help="synthetic preset or store directory (default: default)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic store (default 0)")
    p.add_argument("--name", help="results/<name> of the table (default: the dataset's name); the other stages "
                                  "write results/<name>-tune, -ablate-*, -curves")
    p.add_argument("--results-dir", default="results", help="root of the results (default: results)")
    p.add_argument("--methods", nargs="+", metavar="METHOD", help="default: every method of the extended suite")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default: 0 1 2)")
    p.add_argument("--tune-seeds", nargs="+", type=int, default=[0], help="seeds of each trial (default: 0)")
    p.add_argument("--trials", type=int, default=SELECTION_TRIALS,
                   help=f"trials per method, the same for every method (default {SELECTION_TRIALS})")
    p.add_argument("--points", type=int, default=5, help="trained points per training-time knob in the curves stage "
                                                        "(default 5)")
    p.add_argument("--steps", type=int, help="exactly this many steps per pair (a quick run; default: the budget "
                                             "rule)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    p.add_argument("--jobs", type=int, help="pairs at once (default: as `run` chooses)")
    p.add_argument("--threads", type=int, help="threads per pair (default 1 on a CPU)")
    p.add_argument("--stages", nargs="+", choices=REPRODUCE_STAGES, metavar="STAGE",
                   help=f"only these stages ({' '.join(REPRODUCE_STAGES)}; default: all)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its estimated time, run nothing")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("compare", help="two rows of a results folder: their mAP difference with its paired bootstrap "
                                       "interval over the same videos (seeds pooled), and their costs")
    p.add_argument("run", help="the run: its name (results/<name>, as --name names it) or its folder's path")
    p.add_argument("a", help="a row: its result name (runs/<name>) or its name in the table")
    p.add_argument("b", help="the row it is compared with")
    p.add_argument("--against", metavar="RUN", help="read B from this run instead (a name or a folder; one that scored "
                                                   "the same videos, e.g. the same run in another --precision)")
    p.add_argument("--results-dir", default="results", help="where run names are looked up (default: results)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("migrate", help="bring results folders written by an earlier version up to date: rename files "
                                       "to their current names (a pair's metrics.json to record.json, "
                                       "reference*.json to earlier.json and crosscheck.json), add the checksums to "
                                       "pairs written before them, where the pair's files agree, and restamp code "
                                       "fingerprints of an earlier scheme where their code is the current code")
    p.add_argument("--results-dir", default="results", help="root of the results (default: results)")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("check", help="run the conformance checks on methods (registered names, module:Class, "
                                     "path/file.py:Class, entry points) and say what each failed check found and what "
                                     "to change; run checks every plug-in this way before training it")
    p.add_argument("specs", nargs="+", metavar="METHOD", help="what --methods accepts")
    p.add_argument("--dataset", default="tiny",
                   help="store the checks train and read on, its training split only (default: the tiny synthetic "
                        "store, generated on first use; a store directory for methods with other streams)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of a synthetic store (default 0)")
    p.add_argument("--fast", action="store_true", help="only the checks run applies to plug-ins (not determinism "
                                                       "and gradients, which train twice)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("list-runs", help="list the results folders: dataset, methods, seeds, where their pairs were "
                                    "computed, and whether report --check passes them")
    p.add_argument("--results-dir", default="results", help="root of the results (default: results)")
    p.set_defaults(func=_cmd_runs)

    p = sub.add_parser("stores", help="list what --dataset accepts: the synthetic presets (and whether each is "
                                      "generated yet), the stores found under the data folder, and the dataset "
                                      "names that select methods' presets")
    p.add_argument("--data", help="the folder to look for stores in (default: $LITEEVAL_DATA, else data/)")
    p.set_defaults(func=_cmd_stores)

    p = sub.add_parser("methods", help="list the registered methods")
    p.add_argument("--verbose", action="store_true", help="also each method's presets and where they were chosen")
    p.set_defaults(func=_cmd_methods)
    for command, subparser in sub.choices.items():
        if command not in RANK_AWARE:
            subparser.set_defaults(func=_in_one_process(command, subparser.get_default("func")))
    return parser


def _run_options(p: argparse.ArgumentParser, *, methods: bool, force: bool = True,
                 seeds: tuple[int, ...] = DEFAULT_SEEDS, evaluates: bool = True, followup: bool = False) -> None:
    """Options shared by run, tune, ablate and the commands that follow a run (online, latency).
    ``evaluates=False`` (tune, a selection run): no --eval-split, nor --reread-evidence, which
    would name or read the evaluation split. ``followup``: the options get no defaults (the
    run's recorded settings are the defaults, benchmark/followup.py), and their names are kept
    in ``run_flags`` so that the command can tell which were typed."""
    added: list[argparse.Action] = []  # what this function adds: followup commands take them without defaults

    def add(where: Any, *names: str, **options: Any) -> None:  # a parser or an argument group
        added.append(where.add_argument(*names, **options))

    from datasets.sources.synthetic import PRESETS

    add(p, "--dataset", default="default",
                   help=f"synthetic preset ({', '.join(PRESETS)}; generated on first use) or a store directory")
    add(p, "--data-seed", type=int, default=0, help="seed of the synthetic store (default 0)")
    if methods:
        add(p, "--methods", nargs="+", metavar="METHOD",
                       help="registered names or plug-ins (module:Class, path/file.py:Class); default: every "
                            "registered method of --suite")
        add(p, "--suite", choices=list(SUITES), default="paper",
                       help="without --methods: 'paper' runs the paper's Table 1 (the default), 'extended' adds the "
                            "later methods (SCSampler, ...) below it, same protocol and seeds")
    else:
        p.set_defaults(methods=None, suite="paper")
    add(p, "--seeds", nargs="+", type=int, default=list(seeds),
                   help=f"training seeds (default: {' '.join(map(str, seeds))})")
    add(p, "--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    add(p, "--precision", default=DEFAULT_PRECISION, choices=list(PRECISIONS),
                   help="arithmetic of the matrix products: fp32 (the default) or bf16 (faster on CPUs with "
                        "AVX-512 BF16 and on GPUs; it changes the numbers, see docs/performance.md)")
    budget = p.add_argument_group("training budget (the same for every method; benchmark/protocol/budget.py)")
    default = Budget()
    add(budget, "--epochs", type=float, default=default.epochs,
                        help="passes over the training videos, when more than --min-steps "
                             f"(default {default.epochs:g})")
    add(budget, "--min-steps", type=int, default=default.min_steps,
                        help=f"at least this many optimizer steps, whatever the dataset's size (default "
                             f"{default.min_steps})")
    add(budget, "--steps", type=int, help="exactly this many optimizer steps (replaces --epochs/--min-steps)")
    add(budget, "--batch-size", type=int, default=default.batch_size,
                        help=f"training batch, in videos (default {default.batch_size})")
    add(budget, "--validations", type=int, default=default.validations,
                        help=f"validation passes spread over the budget; the best is kept (default "
                             f"{default.validations})")
    add(budget, "--patience", type=int, default=default.patience,
                        help=f"stop after this many validations without improvement; 0: never (default "
                             f"{default.patience})")
    add(budget, "--val-fraction", type=float, default=VALIDATION_FRACTION,
                        help=f"share of the training split held out for selection, stratified (default "
                             f"{VALIDATION_FRACTION})")
    add(budget, "--val-seed", type=int, default=VALIDATION_SEED,
                        help=f"seed of the held-out carve (default {VALIDATION_SEED})")
    add(p, "--name", help="results/<name> (default: the dataset name)")
    add(p, "--config", help="per-method hyper-parameters (JSON or TOML); see benchmark/config.py")
    add(p, "--no-presets", dest="presets", action="store_false",
                   help="class defaults and --config only, no preset of the dataset (reproduce runs so: its "
                        "choices do not depend on the presets that repeat them)")
    add(p, "--set", nargs="+", dest="overrides", metavar="METHOD.KEY=VALUE",
                   help="settings for this run without a file, over the config file's: e.g. lstm.hidden=64 "
                        "liteeval.gamma=0.1 liteeval.train.lr=3e-4 (values read as JSON where they are); recorded "
                        "in provenance.json like a config file")
    add(p, "--results-dir", default="results", help="root of the results (default: results)")
    add(p, "--train-split", help="split to train on (default: train/training)")
    if evaluates:
        add(p, "--eval-split", help="split to evaluate on (default: test, else validation)")
    else:
        p.set_defaults(eval_split=None)
    if force:
        add(p, "--force", action="store_true", help="recompute method/seed pairs that are done already")
        add(p, "--refresh", action="store_true", help="recompute only the pairs that are stale (their code "
                                                              "changed since) or were computed with another "
                                                              "configuration; keep the others")
        add(p, "--jobs", type=int, help="method/seed pairs computed at once in worker processes (default: "
                                                "$LITEEVAL_JOBS where set, else one per CPU core, as memory "
                                                "allows; on a GPU as many as its memory holds; under torchrun "
                                                "each rank takes its share of the pairs)")
        add(p, "--threads", type=int, help="threads per pair (default 1 on a CPU; the floating-point "
                                                   "results depend on it, not on --jobs)")
        add(p, "--unchecked", action="store_true",
                       help="train a plug-in that fails the conformance check (benchmark check) anyway, its row "
                            "marked; by default such a plug-in is refused")
        if evaluates:
            add(p, "--reread-evidence", action="store_true",
                           help="synthetic stores: recompute each saved pair's evidence statistics (lift, "
                                "first-fifth share) by evaluating its saved model again, for results written before "
                                "their current definition (benchmark/measurement/evidence.py)")
    else:
        p.set_defaults(force=False)
    if followup:
        for action in added:
            action.default = argparse.SUPPRESS
        p.set_defaults(run_flags=tuple(a.dest for a in added))


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (None: this process's); a given ``argv`` is what the records
    it writes name as their command (``python -m benchmark reproduce`` runs its stages so)."""
    if argv is None:
        return run_cli(build_parser(), argv)
    from benchmark.provenance import running

    with running(argv):
        return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
