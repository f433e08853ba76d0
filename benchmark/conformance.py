"""The conformance check of a method, as scikit-learn's ``check_estimator``: one set of checks that
every method must pass before its row means anything, run on the tiny synthetic store.

The table's numbers are only as honest as the method's use of the interface: a method that
reads a feature around the meter gets a cost it did not pay, one that scores with a frame it
never read gets accuracy it did not earn. The checks train each method for a few steps and
then test what the harness cannot see during a run:

* ``builds``: the constructor takes (num_classes, dims) and asks only for declared streams;
* ``trains``: ``loss`` returns a finite scalar that has a gradient, and a dict of numbers;
* ``output``: evaluation scores are per-video probabilities, every counted module is declared;
* ``unread_frames``: every frame the meter did not record is replaced by NaN and the scores
  must not change by a bit (this catches any read around the meter);
* ``counted``: what the method computes on a video (torch's FLOP counter) is what its step counts
  charge, so a module left out of ``cost_modules()`` cannot make its row cheaper;
* ``online``: an online method shown the first k frames reads nothing after them;
* ``causal``: an online method's reads and per-step predictions up to a step do not change when
  every later frame changes (a method that reads all of a video and then picks frames by what
  comes later is not online, however it reads);
* ``deterministic`` (slow): two trainings with one seed give the same weights and scores;
* ``gradients`` (slow): every trained parameter gets a gradient, in every training stage;
* ``cost_knob`` (slow): a declared cost knob (methods/base.py ``CostKnob``) names one of the
  method's settings with valid points, and an evaluation-time knob moves what the method reads.

A check that does not apply is skipped, and says why (the online checks of an offline method;
the checks that need a trained model's output when ``output`` failed), rather than pass or fail.
``python -m benchmark check SPEC`` runs them all on any method spec (registered, dotted,
file, entry point) and prints what each check found and what to change; ``run`` runs the fast
ones on every plug-in before training it (benchmark/runner.py), and tests/benchmark/test_conformance.py
runs them all on every registered method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark.protocol.knobs import at_point, knob_of
from benchmark.stores import TRAIN_SPLITS, pick_split, resolve_store
from datasets.common.errors import UsageError, UserError
from datasets.loading.bank import FeatureBank
from datasets.store.reader import FeatureStore
from methods.base import MethodOutput, StreamDims, VideoMethod, method_failure, output_problem
from methods.registry import is_builtin

log = logging.getLogger(__name__)

#: Batches of the checks: small, so that every check takes a second or two on a CPU.
BATCH = 16
#: Training steps before a check (enough to move every part away from its initialisation).
TRAIN_STEPS = 3


class Nonconformance(Exception):  # noqa: N818 - a finding, not a crash of the checker
    """What a method did wrong, and what to change."""


class Skipped(Exception):  # noqa: N818 - a finding: the check does not apply
    """Why a check does not apply to the method."""


@dataclass(frozen=True)
class Finding:
    """One check's answer: ``problem`` is empty when the method passed or the check was
    ``skipped`` (why it did not apply)."""

    check: str
    problem: str = ""
    skipped: str = ""

    @property
    def passed(self) -> bool:
        return not self.problem


class Probe:
    """A method class with the tiny store's banks, and the helpers every check uses."""

    def __init__(self, cls: type[VideoMethod], store: Path) -> None:
        self.cls, self.store = cls, store
        opened = FeatureStore.open(store)
        missing = [s for s in cls.streams if s not in opened.manifest.streams]
        if missing:
            raise UsageError(f"method {cls.name!r} declares streams {missing}, which the check store {store} lacks; "
                             "pass a store that has them (check --dataset DIR)")
        # Only the training split, for training and for the checks' evaluations alike: the checks
        # are about the interface, not accuracy, and so they may run anywhere, a selection run included.
        self.split = pick_split(opened, None, TRAIN_SPLITS, "train")
        self.train = FeatureBank(opened, self.split, device="cpu", show_progress=False)
        self.test = self.train  # read-only here; the poisoned check loads its own copy

    def dims(self, bank: FeatureBank) -> StreamDims:
        return StreamDims({s: bank.dim(s) for s in bank.streams}, method=self.cls.name, declared=self.cls.streams)

    def build(self, seed: int = 0) -> VideoMethod:
        torch.manual_seed(seed)
        return self.cls(self.train.num_classes, self.dims(self.train))

    def batches(self, bank: FeatureBank, method: VideoMethod, *, train: bool, size: int = BATCH, **kwargs):
        return bank.batches(size, method.sampler(train=train), train=train, streams=self.cls.streams,
                            reader=self.cls.name, **kwargs)

    def trained(self, seed: int = 0, steps: int = TRAIN_STEPS) -> VideoMethod:
        """The method after ``steps`` optimizer steps on the training bank."""
        method = self.build(seed)
        optimiser = torch.optim.Adam(method.parameters(), lr=1e-2)
        generator = torch.Generator().manual_seed(seed)
        method.train()
        for step, batch in zip(range(steps), self.batches(self.train, method, train=True, generator=generator)):
            method.on_step(step, steps)
            loss, _ = method.loss(method(batch), batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return method.eval()


def check_builds(probe: Probe) -> None:
    probe.build()


def check_trains(probe: Probe) -> None:
    method = probe.build().train()
    batch = next(probe.batches(probe.train, method, train=True, seed=0))
    out = method(batch)
    if not isinstance(out, MethodOutput):
        raise Nonconformance(f"forward returned a {type(out).__name__} in training; return a MethodOutput")
    result = method.loss(out, batch)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise Nonconformance("loss(output, batch) must return (loss, logs): a scalar tensor and a dict of numbers")
    loss, logs = result
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise Nonconformance(f"the loss must be a scalar tensor, got {getattr(loss, 'shape', type(loss).__name__)}")
    if not torch.isfinite(loss):
        raise Nonconformance(f"the loss of the first training batch is {loss.item()}; it must be finite")
    if not loss.requires_grad:
        raise Nonconformance("the loss has no gradient: compute it from the method's parameters (not under no_grad, "
                             "not through .item() or .detach())")
    bad = {k: v for k, v in logs.items() if not isinstance(v, (int, float))} if isinstance(logs, dict) else logs
    if not isinstance(logs, dict) or bad:
        raise Nonconformance(f"the logs must be a dict of plain numbers (use .item()), got {bad!r}")


def check_output(probe: Probe) -> None:
    method = probe.trained()
    meter = probe.test.new_meter()
    batch = next(probe.batches(probe.test, method, train=False, meter=meter))
    with torch.no_grad():
        out = method(batch)
    problem = output_problem(out, batch.size, probe.test.num_classes, set(method.cost_modules()))
    if problem:
        raise Nonconformance(problem)
    if not torch.isfinite(out.scores).all():
        raise Nonconformance("the evaluation scores hold NaN or Inf")
    if not torch.allclose(out.scores.sum(1), torch.ones(batch.size), atol=1e-4):
        raise Nonconformance("the scores of a video must be probabilities that sum to 1 (average precision compares "
                             "them across videos): end forward with .softmax(-1)")


def check_unread_frames(probe: Probe) -> None:
    method = probe.trained()
    poisoned = FeatureBank(probe.store, probe.split, device="cpu", show_progress=False)  # its own copy
    meter = poisoned.new_meter()
    with torch.no_grad():
        clean = [method(b).scores for b in probe.batches(poisoned, method, train=False, size=32, meter=meter)]
        for stream in poisoned.streams:
            poisoned.features[stream][:-1][~meter.read_mask(stream)] = float("nan")
        again = [method(b).scores for b in probe.batches(poisoned, method, train=False, size=32)]
    changed = sum(int((~torch.eq(a, b)).any(1).sum()) for a, b in zip(clean, again))
    if changed:
        raise Nonconformance(
            f"the scores of {changed} of {poisoned.num_videos} videos changed when every frame the meter did not "
            "record was replaced by NaN: the method used features it never read through batch.read / read_step / "
            "read_frames "
            "(a cached tensor, a private attribute, another batch's features), so its cost would not be charged. "
            "Read every feature through those accessors")


#: Videos ``check_counted`` measures, one at a time (a batch of one has no padding to compute on).
COUNTED_VIDEOS = 8
#: How far a video's measured multiply-accumulates may exceed what its step counts charge: the
#: counts of ptflops and of torch's counter differ by the odd bias or elementwise term (built-in
#: methods: 0.3% over at most).
COUNTED_TOLERANCE = 0.05


def check_counted(probe: Probe) -> None:
    """What a method computes is what its step counts charge: each of a few videos, evaluated alone,
    under torch's FLOP counter (matrix products and convolutions), against ``step_counts`` x the
    per-run cost of each of ``cost_modules()``. A module left out of ``cost_modules()``, or run more
    often than counted, would make its row cheaper than it is; the meter sees only feature reads.
    (Kernels the counter does not see, such as nn.LSTM's, are not checked here.)"""
    from torch.utils.flop_counter import FlopCounterMode

    from benchmark.measurement.costs import step_costs

    method = probe.trained()
    per_run = step_costs(method)
    videos = probe.batches(probe.test, method, train=False, size=1, meter=probe.test.new_meter())
    for _, batch in zip(range(COUNTED_VIDEOS), videos):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = method(batch)
        ran = counter.get_total_flops() / 2  # a multiply-accumulate is two FLOPs
        charged = 1e9 * sum(float(runs.sum()) * per_run[name] for name, runs in out.step_counts.items())
        if ran > charged * (1 + COUNTED_TOLERANCE) + 1:
            raise Nonconformance(
                f"evaluating one video, its forward ran {ran:,.0f} multiply-accumulates (torch's FLOP counter) but its "
                f"step_counts x cost_modules() charge {charged:,.0f}: a module it runs is missing from cost_modules(), "
                "or runs more often than step_counts says, so its row would be cheaper than it is. Declare every "
                "module in cost_modules() and count each of its runs")


def _offline(probe: Probe) -> None:
    if not probe.cls.online:
        raise Skipped("an offline method (online = False) may use the whole video")


def check_online(probe: Probe) -> None:
    _offline(probe)
    method = probe.trained()
    for k in (1, 3, 6):
        meter = probe.test.new_meter()
        batch = next(probe.batches(probe.test, method, train=False, meter=meter)).first_steps(k)
        with torch.no_grad():
            method(batch)
        seen = int(batch.frames[:, :k].max()) + 1
        if int(meter.horizon().max()) > seen:
            raise Nonconformance(
                f"shown the first {k} step(s) of its grid (frames up to {seen - 1}), it read frame "
                f"{int(meter.horizon().max()) - 1}, which has not arrived yet: an online method (online = True) may "
                "read only the frames of the steps it was given; set online = False if it needs the whole video")


#: The grid step after which ``check_causal`` changes every frame.
CAUSAL_STEP = 2


def check_causal(probe: Probe) -> None:
    """Every frame after a video's step ``CAUSAL_STEP`` of the grid is changed (negated, in every
    stream); what the method read up to that step, and its per-step scores up to it, must not change."""
    _offline(probe)
    method = probe.trained()
    bank = FeatureBank(probe.store, probe.split, device="cpu", show_progress=False)  # its own copy, changed below
    t = CAUSAL_STEP

    def seen() -> tuple[Any, Any, Any]:
        meter = bank.new_meter()
        batch = next(probe.batches(bank, method, train=False, size=32, meter=meter))
        with torch.no_grad():
            out = method(batch)
        return batch, out, meter

    batch, before, meter = seen()
    long = batch.mask[:, t]  # the videos with a step t
    if not bool(long.any()):
        raise Skipped(f"no video of the check store has {t + 1} steps on the method's grid")
    starts = bank.offsets[batch.index]
    cut = starts + batch.frames[:, t] + 1  # the first bank row after step t's frame, per video
    ends = bank.offsets[batch.index + 1]
    later = torch.zeros(int(bank.offsets[-1]), dtype=torch.bool)
    for lo, hi, keep in zip(cut.tolist(), ends.tolist(), long.tolist()):
        if keep:
            later[lo:hi] = True
    earlier = torch.zeros_like(later)
    for lo, hi, keep in zip(starts.tolist(), cut.tolist(), long.tolist()):
        if keep:
            earlier[lo:hi] = True
    reads = {s: meter.read_mask(s)[earlier].clone() for s in bank.streams}
    for stream in bank.streams:
        bank.features[stream][:-1][later] *= -1
    _, after, meter = seen()
    moved = [s for s in bank.streams if not torch.equal(meter.read_mask(s)[earlier], reads[s])]
    if moved:
        raise Nonconformance(
            f"what it read of the {', '.join(moved)} stream up to step {t} changed when only frames after that step "
            "changed: its decisions use frames that have not arrived yet. Decide each step from the frames up to it, "
            "or set online = False")
    if before.step_scores is not None and after.step_scores is not None:
        a, b = before.step_scores[long, : t + 1], after.step_scores[long, : t + 1]
        if not torch.allclose(a, b, rtol=0, atol=1e-6):
            raise Nonconformance(
                f"its per-step scores up to step {t} changed when only frames after that step changed: they use frames "
                "that have not arrived yet. Score each step from the frames up to it, or set online = False")


def check_deterministic(probe: Probe) -> None:
    first, second = probe.trained(), probe.trained()
    differ = [k for (k, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items())
              if not torch.equal(a, b)]
    if differ:
        raise Nonconformance(
            f"two trainings from the same seed gave different {differ[:3]}: draw random numbers only from torch's "
            "seeded generators (torch.rand*, nn.Dropout), not from Python's random, NumPy's global state or the clock")
    batch = next(probe.batches(probe.test, first, train=False))
    with torch.no_grad():
        if not torch.equal(first(batch).scores, first(batch).scores):
            raise Nonconformance("evaluating one batch twice gave different scores: evaluation must not draw random "
                                 "numbers (use self.training to switch sampling off)")


def check_gradients(probe: Probe) -> None:
    method = probe.build().train()
    reached: set[str] = set()
    generator = torch.Generator().manual_seed(0)
    for start in (0, *method.phase_starts(100)):  # every stage of a method trained in stages
        batches = probe.batches(probe.train, method, train=True, size=32, generator=generator)
        for step, batch in zip(range(start, start + TRAIN_STEPS), batches):
            method.train()
            method.on_step(step, 100)
            method.zero_grad()
            loss, _ = method.loss(method(batch), batch)
            loss.backward()
            reached |= {n for n, p in method.named_parameters() if p.grad is not None and p.grad.any()}
    trained = {n for n, p in method.named_parameters() if p.requires_grad}
    idle = sorted(trained - reached - set(getattr(method, "idle_parameters", ())))
    if idle:
        raise Nonconformance(
            f"{len(idle)} trained parameter(s) got no gradient in {TRAIN_STEPS} batches of each training stage, e.g. "
            f"{idle[:3]}: remove what the loss does not use, freeze it (requires_grad_(False)), or list it in the "
            "class's idle_parameters if it is trained some other way")


def check_cost_knob(probe: Probe) -> None:
    knob = knob_of(probe.cls)  # a setting it has, and points it accepts
    if knob is None:
        return
    if knob.at == "training":
        for point in knob.points:
            probe.cls(probe.train.num_classes, probe.dims(probe.train), **{knob.setting: point})
        return
    method = probe.trained()
    reads = []
    for point in knob.points:
        at_point(method, knob.setting, point)
        meter = probe.test.new_meter()
        batch = next(probe.batches(probe.test, method, train=False, meter=meter))
        with torch.no_grad():
            out = method(batch)
        problem = output_problem(out, batch.size, probe.test.num_classes, set(method.cost_modules()))
        if problem:
            raise Nonconformance(f"at {knob.setting} = {point!r}: {problem}")
        reads.append(sum(int(meter.frames_read(s).sum()) for s in method.streams))
    if len(set(reads)) == 1:
        raise Nonconformance(
            f"its evaluation-time cost knob {knob.setting!r} read {reads[0]} frames at every point {knob.points}: the "
            "setting must be read when the method evaluates (at = 'evaluation'), or declare at = 'training'")


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Probe], None]
    fast: bool
    what: str
    needs: tuple[str, ...] = ()  # checks that must pass first (skipped otherwise: they would fail for their reason)


#: Every check, in the order they run (the fast ones first: ``run`` runs only those).
CHECKS = (
    Check("builds", check_builds, True, "the constructor takes (num_classes, dims) and asks only for declared streams"),
    Check("trains", check_trains, True, "loss() returns a finite scalar with a gradient, and a dict of numbers"),
    Check("output", check_output, True, "evaluation scores are per-video probabilities; counted modules declared",
          ("trains",)),
    Check("unread_frames", check_unread_frames, True, "frames the meter did not record are never used", ("output",)),
    Check("counted", check_counted, True, "every multiply-accumulate it runs is charged by its step counts",
          ("output",)),
    Check("online", check_online, True, "an online method reads only the frames that have arrived", ("output",)),
    Check("causal", check_causal, True, "an online method's reads and step scores ignore the frames still to come",
          ("output",)),
    Check("deterministic", check_deterministic, False, "one seed, one result", ("output",)),
    Check("gradients", check_gradients, False, "every trained parameter gets a gradient", ("trains",)),
    Check("cost_knob", check_cost_knob, False, "a declared cost knob names a setting, and moves the cost",
          ("output",)),
)


def check_method(cls: type[VideoMethod], store: Path, *, fast: bool = False) -> list[Finding]:
    """Run the checks (``fast``: only the fast ones) on ``cls``; one finding per check run.

    A check stops at the first problem it finds; an exception the method raises is reported as
    the check's problem, with where it was raised (a plug-in's bug, not the checker's)."""
    probe = Probe(cls, store)
    findings: list[Finding] = []
    for check in CHECKS:
        if fast and not check.fast:
            continue
        failed = [f.check for f in findings if f.check in check.needs and (f.problem or f.skipped)]
        if failed:
            findings.append(Finding(check.name, skipped=f"needs {', '.join(failed)}, which did not pass"))
            continue
        problem, skipped = "", ""
        try:
            check.run(probe)
        except Nonconformance as found:
            problem = str(found)
        except Skipped as why:
            skipped = str(why)
        except UserError as exc:
            problem = str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever the method's code raised, reported as its finding
            if _in_the_checker(exc):
                raise  # the harness's own error, with its traceback: not the method's to fix
            problem = str(method_failure(cls.name, None, exc))
        findings.append(Finding(check.name, problem, skipped))
        if check.name == "builds" and problem:
            break  # nothing else can run on a method that does not build
    return findings


def _in_the_checker(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by this module's own code (its innermost frame here), not by
    the method's code that it called."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename == __file__


def finding_lines(cls: type[VideoMethod], findings: list[Finding]) -> list[str]:
    """What ``check`` prints: one line per check, the problem and the fix where one failed."""
    lines = []
    said: dict[str, str] = {}  # a problem already printed -> the check that printed it
    for finding in findings:
        what = next(c.what for c in CHECKS if c.name == finding.check)
        mark = "skip" if finding.skipped else "ok  " if finding.passed else "FAIL"
        lines.append(f"{mark} {finding.check:<14} {what}")
        if finding.skipped:
            lines.append(f"     skipped: {finding.skipped}")
        elif not finding.passed:
            told = said.get(finding.problem)
            lines.append(f"     same as {told}" if told else f"     {finding.problem}")
            said.setdefault(finding.problem, finding.check)
    failed = sum(not f.passed for f in findings)
    skipped = sum(bool(f.skipped) for f in findings)
    lines.append(f"{cls.shown_name()}: {len(findings) - failed - skipped} of {len(findings)} checks passed"
                 + (f", {skipped} skipped" if skipped else "")
                 + ("" if not failed else f"; {failed} failed (a row from it would not be trustworthy)"))
    return lines


def format_failures(cls: type[VideoMethod], findings: list[Finding]) -> str:
    """One line naming the failed checks of a plug-in, for ``run``'s refusal."""
    failed = [f for f in findings if not f.passed]
    first = {f.problem: f.check for f in reversed(failed)}
    return "; ".join(f"{f.check}: {f.problem}" if first[f.problem] == f.check
                     else f"{f.check}: same as {first[f.problem]}" for f in failed)


def check_store(cls: type[VideoMethod], run_store: Path) -> Path:
    """Where a plug-in is checked: the tiny synthetic store when it has the plug-in's streams (small,
    so the check takes seconds), else the run's own store (its training split)."""
    tiny = resolve_store("tiny", 0, show_progress=False)
    if set(cls.streams) <= set(FeatureStore.open(tiny).manifest.streams):
        return tiny
    return run_store


def vet_plugins(classes: list[type[VideoMethod]], run_store: Path, *, unchecked: bool) -> dict[str, str]:
    """Run the fast checks on every plug-in among ``classes`` before a run trains it.

    A plug-in that fails is refused (one line naming each failed check and the fix) unless
    ``unchecked``; then it is trained with a warning, and the returned ``{name: problem}`` marks its
    row. Built-in methods are checked by the test suite, not here. A class is checked once, however
    many of the run's plans (a tune's trials) train it."""
    failed = {}
    for cls in dict.fromkeys(c for c in classes if not is_builtin(c)):
        problems = format_failures(cls, check_method(cls, check_store(cls, run_store), fast=True))
        if not problems:
            log.info("plug-in %s passed the conformance check", cls.name)
            continue
        if not unchecked:
            raise UsageError(f"plug-in {cls.name!r} failed the conformance check, so its row would not be "
                             f"trustworthy: {problems}. Fix it (`python -m benchmark check SPEC` says more), or pass "
                             "--unchecked to train it anyway with its row marked")
        log.warning("plug-in %s failed the conformance check (%s); trained anyway (--unchecked), its row is marked",
                    cls.name, problems)
        failed[cls.name] = problems
    return failed
