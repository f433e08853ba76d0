"""The main job: decide which method/seed pairs a run still needs, have them computed, write the table.

The layout of ``results/<run name>/`` is described in benchmark/results.py.

A run holds the folder's lock (benchmark/results.py). An interrupted run started again keeps
every complete pair computed with the same config on the same kind of machine (results from
another machine are recomputed and compared, never silently reused; a kept pair whose code
changed since is named and marked stale) and computes the rest; ``force`` redoes every pair.
The pending pairs are computed here, in ``--jobs`` worker processes or on torchrun's ranks
(benchmark/parallel.py), each by benchmark/pair.py; the summary and tables are then written
from every pair's record (benchmark/folder_summary.py). Every file is written atomically;
docs/guarantees.md lists what a run promises and the tests that check it.

Model selection never reads the evaluation split: each method trains on the training split
minus a held-out validation part, keeps the checkpoint the selection rule chooses on it, and is
evaluated once, at the end (benchmark/pair.py). A *selection run* (``benchmark tune``) scores
its trials on that validation part instead, and cannot load the evaluation split at all
(benchmark/context.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from benchmark import conformance, crosscheck, folder_summary, pair, parallel, results
from benchmark import store_settings as settings
from benchmark.config import RunConfig
from benchmark.context import RunContext
from benchmark.eta import machine_here, pair_seconds, timed_here
from benchmark.plans import MethodPlan
from benchmark.record import PairRecord
from datasets.common.atomic import atomic_write_json
from datasets.common.distributed import barrier, distributed_rank, rank_device
from datasets.common.errors import UsageError, UserError

log = logging.getLogger(__name__)


class PairsFailedError(UserError):
    """Some pairs failed (a method's own error); the others are done and in the table."""


class Runner:
    """Runs one configuration end to end; see the module docstring for what it writes."""

    def __init__(self, cfg: RunConfig, plans: list[MethodPlan] | None = None, *,
                 context: RunContext | None = None) -> None:
        self.ctx = context if context is not None else RunContext.create(cfg, plans)
        self.execution: dict[str, Any] = {}  # how the last run() computed its pairs (benchmark/parallel.py)
        self._lock_depth = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the results folder's lock (benchmark/results.py); re-entrant within a Runner."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        with results.folder_lock(self.ctx.out):
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0

    def verdict(self, plan: MethodPlan, seed: int) -> tuple[bool, str]:
        """(done, what ``not_current`` found). Done: complete (every file there and consistent),
        computed with this configuration on this kind of machine, and no --force; anything else
        is computed again, and the log says why. "elsewhere": another kind of machine computed
        it, so the run recomputes it here and then compares (benchmark/crosscheck.py)."""
        ctx = self.ctx
        folder = ctx.pair_dir(plan, seed)
        kind, detail = not_current(ctx, plan, seed, folder)
        return self._keeps(plan, seed, folder, kind, detail), kind

    def _keeps(self, plan: MethodPlan, seed: int, folder: Path, kind: str, detail: str) -> bool:
        """Whether the pair ``not_current`` judged (kind, detail) is kept, under --force and --refresh."""
        ctx = self.ctx
        if kind == "incomplete":
            if detail != "not computed":
                log.warning("%s seed %d: %s in %s; computing it again", plan.name, seed, detail, folder)
            return False
        if kind == "elsewhere":
            # Nothing computed elsewhere is reused, whatever its settings; the cross-machine check
            # compares only what was computed with the same ones (benchmark/crosscheck.py). The
            # run says so once for all such pairs (``_say_elsewhere``).
            return False
        if kind == "identity":
            if ctx.cfg.force or ctx.cfg.refresh:
                if ctx.cfg.refresh:
                    log.info("%s seed %d: computed with another configuration (%s); recomputing it (--refresh)",
                             plan.name, seed, detail)
                return False
            raise UsageError(f"{folder} holds a result computed with a different configuration ({detail}). "
                             "Re-run with --force (or --refresh) to replace it, or choose another --name")
        if ctx.cfg.force:
            return False
        if ctx.cfg.restore_weights and not results.has_weights(folder):
            log.info("%s seed %d: its trained weights are not here (not committed to git); computing it again "
                     "(--restore-weights)", plan.name, seed)
            return False
        if kind == "stale" and ctx.cfg.refresh:
            log.info("%s seed %d: STALE (%s); recomputing it (--refresh)", plan.name, seed, detail)
            return False
        if kind == "stale":
            log.warning("%s seed %d: kept, but STALE: %s. Its row is marked stale; recompute it with --refresh",
                        plan.name, seed, detail)
        return True

    def run(self, columns: list[str] | None = None) -> dict[str, str]:
        """Compute what is missing, then write the summary, the provenance and the table.

        Pending pairs run here, in ``--jobs`` worker processes, or spread over torchrun's
        ranks (benchmark/parallel.py); rank 0 writes the table once all are done, and the
        other ranks return an empty dict. Where results were already here, the texts also
        hold "crosscheck": how the recomputed ones compare (benchmark/crosscheck.py)."""
        rank, world, local_rank = distributed_rank()
        with self.ctx.guard():
            if rank != 0:
                self._vet()
                return self._run(columns, rank, world, local_rank)
            # One writer per results folder, taken first: the plug-in check can take a while, and a
            # command that took the folder meanwhile would stop this run after it (issue 45).
            with self.locked():
                self._vet()
                return self._run(columns, rank, world, local_rank)

    def _vet(self) -> None:
        """Plug-ins are checked before anything trains; one that fails stops the run here (or,
        under --unchecked, is trained with its row marked). Built-ins are checked by the tests."""
        self.ctx.unchecked = conformance.vet_plugins([p.cls for p in self.ctx.plans], self.ctx.store.path,
                                                     unchecked=self.ctx.cfg.unchecked)

    def _run(self, columns: list[str] | None, rank: int, world: int, local_rank: int) -> dict[str, str]:
        ctx = self.ctx
        if world > 1:
            ctx.use_device(rank_device(ctx.cfg.device, local_rank))
        if rank == 0 and ctx.unused_splits:
            log.warning("%s:%s", ctx.store.manifest.name, folder_summary.unused_words(ctx))
        pending, elsewhere = [], []
        # Nothing writes a pair before the barrier: each pair's files and numbers are checked
        # once for the pending pairs and the earlier times alike, and every rank reads the same.
        with results.remembering_pair_states():
            for index, plan in enumerate(ctx.plans):
                for seed in ctx.cfg.seeds:
                    done, kind = self.verdict(plan, seed)
                    if done:
                        log.info("%s seed %d: done already (%s), kept", plan.name, seed, ctx.pair_dir(plan, seed))
                    else:
                        pending.append((index, seed))
                        if kind == "elsewhere":
                            elsewhere.append((plan, seed))
            self._say_elsewhere(elsewhere)
            here, anywhere = self.earlier_seconds()  # before the barrier: every rank orders the pairs alike
        foreign = bool(elsewhere)
        earlier = (crosscheck.load(ctx.out, replacing=foreign) if pending and rank == 0 and not ctx.selection
                   else None)
        if earlier is not None and foreign:
            crosscheck.keep(ctx.out, earlier)  # a resumed run still compares with the same earlier results
        before = {key: self._written(*key) for key in pending}  # what this run has to replace
        if world > 1:
            barrier()  # every rank has seen the same pending pairs before any is written
        try:
            self.execution = parallel.schedule(ctx, pending, jobs=ctx.cfg.jobs, threads=ctx.cfg.threads,
                                               rank=rank, world=world, earlier=here, costs=anywhere)
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM (datasets/common/cli.py): say what is kept, then stop
            left = len(self.failed(pending, before))
            log.warning("stopped: %d of the %d pairs this run computes are done and kept, %d are not; run the "
                        "same command again to compute them", len(pending) - left, len(pending), left)
            raise
        if world > 1:
            barrier()
            if rank != 0:
                return {}
        failed = self.failed(pending, before)
        if ctx.cfg.reread_evidence:
            self.reread_evidence()
        texts = folder_summary.write(ctx, columns, execution=self.execution, failed=failed)
        if failed:
            raise PairsFailedError(
                f"{len(failed)} of {len(pending)} pair(s) failed: "
                + "; ".join(f"{key}: {why}" for key, why in failed.items())
                + f". Every other pair is done and {ctx.out / results.TABLE_MD} shows them, the failed methods "
                "named in its marks; fix the method and run the same command again (done pairs are kept)")
        if earlier is not None:
            check = crosscheck.compare(earlier, json.loads((ctx.out / results.SUMMARY).read_text()),
                                      ctx.fingerprint)
            if foreign:
                atomic_write_json(ctx.out / results.CROSSCHECK, check)
            texts["crosscheck"] = crosscheck.describe(check)
        return texts

    def failed(self, pending: list[tuple[int, int]], before: dict[tuple[int, int], Any]) -> dict[str, str]:
        """The pending pairs this run did not complete, each with why: this process's failures as
        they were raised (``parallel.PAIR_FAILURES``), another rank's as such (its log says why).
        A pair is completed by this run when it is done and its record is not the one that was
        there before (``before``): a stale pair, or one under --force, is complete on disk before
        it is recomputed, and must not count as computed when its recomputation failed."""
        said = (self.execution or {}).get("failed") or {}
        found = {}
        for index, seed in pending:
            plan = self.ctx.plans[index]
            if not results.pair_state(self.ctx.pair_dir(plan, seed)).done or \
                    self._written(index, seed) == before[(index, seed)]:
                key = f"{plan.name} seed {seed}"
                found[key] = said.get(key, "failed on another torchrun rank (that rank's log says why)")
        return found

    def _written(self, index: int, seed: int) -> tuple[int, int] | None:
        """Which record a pair has on disk (its inode and modification time; None: none). A record
        is replaced, never rewritten in place (``atomic_write``), so a new one differs."""
        try:
            info = results.record_path(self.ctx.pair_dir(self.ctx.plans[index], seed)).stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns

    def _say_elsewhere(self, pairs: list[tuple[MethodPlan, int]]) -> None:
        """One warning for every kept pair computed on another kind of machine: which pairs, which
        machines, and that they are recomputed here and then compared (not one line per pair)."""
        if not pairs:
            return
        here = self.ctx.platform
        seeds: dict[str, list[int]] = {}
        theirs: set[str] = set()
        ours: set[str] = set()
        for plan, seed in pairs:
            seeds.setdefault(plan.name, []).append(seed)
            record = PairRecord.found(self.ctx.pair_dir(plan, seed))
            platform = record.platform if record else {}
            differ = sorted(k for k in {*platform, *here} if platform.get(k) != here.get(k))
            theirs.add(", ".join(f"{k} {platform.get(k)}" for k in differ))
            ours.add(", ".join(f"{k} {here.get(k)}" for k in differ))
        which = "; ".join(f"{name} seed{'s' if len(s) > 1 else ''} {' '.join(map(str, s))}"
                          for name, s in seeds.items())
        log.warning("%d pair(s) in %s were computed on another kind of machine (%s; here: %s): each is recomputed "
                    "here, then the run compares the two (%s): %s", len(pairs), self.ctx.out, "; ".join(sorted(theirs)),
                    "; ".join(sorted(ours)), results.CROSSCHECK, which)

    def earlier_seconds(self) -> tuple[dict[str, float], dict[str, float]]:
        """Seconds a complete pair of each method took in this folder (training and evaluation):
        on this kind of machine, for the estimate of the time a run has left (benchmark/eta.py),
        and on whatever machine computed it, for the order pairs start in (parallel.py)."""
        machine = machine_here(str(self.ctx.device))
        here: dict[str, float] = {}
        anywhere: dict[str, float] = {}
        for plan in self.ctx.plans:
            for seed in self.ctx.cfg.seeds:
                folder = self.ctx.pair_dir(plan, seed)
                if plan.name in here or not results.pair_state(folder).done:
                    continue
                record = PairRecord.found(folder)
                if record is None:  # a done pair's record that does not parse says nothing of time
                    continue
                took = timed_here(record, machine)
                if took is not None:
                    here[plan.name] = took
                if plan.name not in anywhere and (took := record.seconds) is not None:
                    anywhere[plan.name] = took
        for name, took in self.selection_seconds(machine).items():  # a first table after its selection
            here.setdefault(name, took)
            anywhere.setdefault(name, took)
        return here, anywhere

    def selection_seconds(self, machine: str) -> dict[str, float]:
        """Seconds a pair of each method took in the selection runs that chose this run's settings on
        this store (benchmark/select_first.py), on this kind of machine: the same store and budget,
        so the table after a selection has an ETA from its first pair on (the median of the trials)."""
        origin = settings.Origin.from_dict(self.ctx.cfg.settings_origin)
        if origin is None or origin.kind != "own":
            return {}
        found = pair_seconds(Path(origin.record).parent, origin.chosen_by, machine)
        return {p.name: found[p.cls.name] for p in self.ctx.plans if p.cls.name in found}

    def reread_evidence(self) -> None:
        """Every pair's evidence statistics recomputed from its saved model (``--reread-evidence``;
        benchmark/pair.py ``reread_evidence``)."""
        for plan in self.ctx.plans:
            if "fine" not in plan.cls.streams:
                continue
            for seed in self.ctx.cfg.seeds:
                lift = pair.reread_evidence(self.ctx, plan, seed).evidence_lift
                log.info("%s seed %d: evidence statistics recomputed (lift %.2f)", plan.name, seed,
                         float("nan") if lift is None else lift)


def not_current(ctx: RunContext, plan: MethodPlan, seed: int, folder: Path) -> tuple[str, str]:
    """Why the pair in ``folder`` is not one a run keeps as it is, as (kind, detail): "incomplete"
    (``pair_state``'s reason), "elsewhere" (computed on another kind of machine), "identity" (the
    first setting that differs) or "stale" (what changed in the code); ("", "") when it is current.
    ``Runner.verdict`` decides (and logs) from it; a sweep reusing a table's pairs asks it too."""
    state = results.pair_state(folder)
    if not state.done:
        return "incomplete", state.reason
    if crosscheck.computed_elsewhere(folder, ctx.platform):
        return "elsewhere", ""
    difference = ctx.identity_difference(plan, seed, state.config)
    if difference:
        return "identity", difference
    stale = PairRecord.load(results.record_path(folder)).stale
    return ("stale", stale) if stale else ("", "")


def is_current(ctx: RunContext, plan: MethodPlan, seed: int, folder: Path) -> bool:
    """Whether the pair in ``folder`` is one a run keeps as it is (complete, computed on this kind
    of machine, with this plan's identity, by code whose fingerprint still matches)."""
    return not_current(ctx, plan, seed, folder)[0] == ""


def run(cfg: RunConfig) -> dict[str, str]:
    """Run ``cfg``; return the written tables' texts (table.md, table.csv, table.tex)."""
    torch.backends.cudnn.benchmark = False
    return Runner(cfg).run()
