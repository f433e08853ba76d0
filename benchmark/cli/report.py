"""``report``: the published page and the README's generated blocks, or (``--check``) their audit."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_results_dir, existing_root
from benchmark.results import is_published_root
from datasets.common.errors import UsageError

#: What ``report`` writes unless told otherwise: the repository's own published page and README.
DEFAULT_PAGE, DEFAULT_README = "docs/results.md", "README.md"


class Report(SubCommand):
    name = "report"
    help = ("write docs/results.md and the README's generated blocks (headline table, curves summary, streaming run) "
            "from results/; --check audits them")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add_results_dir(parser)
        add("--out", help="the results page to write (default: docs/results.md, only from this repository's "
                          "results/)")
        add("--readme", help="the README whose generated blocks are replaced (default: README.md, only from this "
                             "repository's results/)")
        add("--name", nargs="+", help="the results folders to publish (default: those committed to git, so that "
                                      "scratch experiments stay off the page)")
        add("--check", action="store_true",
            help="write nothing; exit 1, naming each problem, when a published folder has stale pairs, pairs from "
                 "several kinds of machine, a selection on the test split, or pairs its table does not match")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.presentation.report import write

        if args.check:
            return _check(existing_root(args), args.name)
        results = Path(args.results_dir)
        # A report to --out writes only there (and to --readme, where named): the repository's page and
        # README change only when the committed folders are published (issue 46).
        page = Path(args.out or DEFAULT_PAGE)
        readme = Path(args.readme) if args.readme else (None if args.out else Path(DEFAULT_README))
        if args.out is None and args.name:
            raise UsageError(f"--name {' '.join(args.name)}: the repository's {DEFAULT_PAGE} and {DEFAULT_README} "
                             "publish the committed folders, not a choice of them; pass --out PAGE to write a report "
                             "of these")
        _refuse_foreign_publication(results, page if args.out is None else None,
                                    readme if args.readme is None and readme is not None else None)
        write(results, page, readme, args.name)
        print(f"written: {page}" + (f" and the generated blocks of {readme} (headline table, curves summary, 'In "
                                    "short', streaming run)" if readme is not None else ""))
        return 0


def _check(results: Path, names: list[str] | None) -> int:
    """``report --check``: every problem of the published folders, one line each; exit 1 on any."""
    from benchmark.presentation.audit import check, not_learnt, unequal_effort
    from benchmark.presentation.report import published

    folders = sorted(published(results, names))
    problems = check(results, folders)
    for problem in problems:
        print(problem.line())
    for line in not_learnt(results, folders) + unequal_effort(results):
        print(line)
    hit = len({p.folder for p in problems})
    print(f"report --check: {len(folders)} published folders, "
          + (f"{len(problems)} problem(s) in {hit}" if problems else "every one passes"))
    return 1 if problems else 0


def _refuse_foreign_publication(results: Path, *defaults: Path | None) -> None:
    """The repository's page and README are rewritten only from the repository's own results/:
    ``report --results-dir elsewhere`` would otherwise replace the published tables with a
    scratch folder's (or with none). Naming --out and --readme is the deliberate way."""
    from datasets.common.gitinfo import REPO

    if is_published_root(results):
        return
    published = [REPO / DEFAULT_PAGE, REPO / DEFAULT_README]
    hit = [path for path in defaults if path is not None and path.resolve() in {p.resolve() for p in published}]
    if hit:
        raise UsageError(f"--results-dir {results} is not this repository's results/, and `report` would replace the "
                         f"published {' and '.join(str(p) for p in hit)} with what it holds; pass --out and --readme "
                         "to write the page and README elsewhere (or --check to audit it)")
