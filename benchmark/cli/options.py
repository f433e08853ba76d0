"""What several commands share: the run options and the config they make, a follow-up command's
config, a results folder that must exist, the table printed at the end of a run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmark.config import DEFAULT_SEEDS, RunConfig
from benchmark.precision import DEFAULT as DEFAULT_PRECISION
from benchmark.precision import PRECISIONS
from benchmark.protocol.budget import Budget
from benchmark.protocol.splits import VALIDATION_FRACTION, VALIDATION_SEED
from methods.suites import SUITES


def run_options(p: argparse.ArgumentParser, *, methods: bool, force: bool = True,
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
        add(p, "--restore-weights", action="store_true",
                       help="also recompute the done pairs whose trained weights (model.pt) are not here, as in a "
                            "fresh clone (git keeps scores and records, not weights): `online`, `latency` and "
                            "`stream` load them; on the kind of machine that computed a pair it comes back bit for "
                            "bit")
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


def add_settings_from(parser: argparse.ArgumentParser) -> None:
    """``--settings-from``, for the commands that train with a store's settings (run, curves, ablate)."""
    parser.add_argument("--settings-from", metavar="NAME",
                        help="train with the settings chosen on another store (results/NAME.settings.json, or a "
                             "path to one), marked in the caption and on every row they cover; by default a store "
                             "is run with its own, chosen first on its validation part where it has none "
                             "(benchmark/select_first.py)")


def config_from(args: argparse.Namespace) -> RunConfig:
    budget = Budget(epochs=args.epochs, min_steps=args.min_steps, steps=args.steps, batch_size=args.batch_size,
                    validations=args.validations, patience=None if args.patience == 0 else args.patience)
    return RunConfig(
        dataset=args.dataset, data_seed=args.data_seed, methods=args.methods, suite=getattr(args, "suite", "paper"),
        seeds=args.seeds, device=args.device,
        budget=budget, val_fraction=args.val_fraction, val_seed=args.val_seed, name=args.name,
        config_file=args.config, presets=getattr(args, "presets", True), results_root=args.results_dir,
        train_split=args.train_split,
        eval_split=args.eval_split, force=args.force, refresh=getattr(args, "refresh", False),
        restore_weights=getattr(args, "restore_weights", False),
        show_progress=not args.quiet,
        jobs=getattr(args, "jobs", None), threads=getattr(args, "threads", None),
        reread_evidence=getattr(args, "reread_evidence", False), precision=args.precision,
        unchecked=getattr(args, "unchecked", False), overrides=args.overrides or [],
    )


#: The option names of the run flags, as RunConfig names them.
CONFIG_NAMES = {"config": "config_file", "results_dir": "results_root"}


def followup_config_from(args: argparse.Namespace) -> RunConfig:
    """A follow-up command's config: the run's own, from its folder, with the run flags typed
    (benchmark/followup.py). Its run flags have no defaults, so only the typed ones are in ``args``."""
    from benchmark.followup import followup_config

    given = {CONFIG_NAMES.get(k, k): getattr(args, k) for k in args.run_flags if hasattr(args, k)}
    if given.get("patience") == 0:
        given["patience"] = None  # --patience 0: never stop early, recorded as none
    given["show_progress"] = not args.quiet
    return followup_config(given)


def print_table(texts: dict[str, str]) -> int:
    # Under torchrun only rank 0 writes (and prints) the table; the other ranks return {}.
    if texts:
        from benchmark.folder_summary import TERMINAL

        print(texts[TERMINAL])
        if "crosscheck" in texts:
            print(texts["crosscheck"])
    return 0


def existing_folder(folder: Path) -> Path:
    """``folder``, which a command that reads a run's results needs to exist (taking its lock
    would otherwise create it, empty, on the way to failing)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such results folder; run `python -m benchmark run` first, or pass "
                                "--name/--results-dir of an existing one")
    return folder


def existing_run(cfg: RunConfig) -> Path:
    """The results folder of ``cfg`` (a follow-up command's config always names it), which must
    exist: checked, and then locked, before the context loads the store, which may first have to
    generate it (a folder in use is reported at once, not after the store has loaded)."""
    return existing_folder(Path(cfg.results_root) / str(cfg.name))


def add_results_dir(parser: argparse.ArgumentParser, what: str = "root of the results") -> None:
    """``--results-dir``, as every command that reads or writes results folders spells it."""
    parser.add_argument("--results-dir", default="results", help=f"{what} (default: results)")


def existing_root(args: argparse.Namespace) -> Path:
    """``--results-dir``, which a command that reads the folders under it needs to exist."""
    root = Path(args.results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"--results-dir {root}: no such folder")
    return root
