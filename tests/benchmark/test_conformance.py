"""One conformance check, run on every registered method (as scikit-learn's check_estimator):
benchmark/conformance.py, the same checks ``python -m benchmark check`` runs on a plug-in. A new
registered method is checked without writing a test for it; the plug-ins below show that each
check catches what it is for, with a message that says what to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark.conformance import CHECKS, check_method, finding_lines
from methods import available_methods
from methods.base import SUITES
from methods.registry import resolve_method

METHODS = sorted(available_methods())


def test_every_method_belongs_to_a_suite():
    for name, cls in available_methods().items():
        assert cls.suite in {s for members in SUITES.values() for s in members}, name


@pytest.mark.parametrize("name", METHODS)
def test_every_registered_method_conforms(tiny_store, name):
    cls = available_methods()[name]
    findings = check_method(cls, tiny_store)
    assert [f.check for f in findings] == [c.name for c in CHECKS]
    assert all(f.passed for f in findings), "\n".join(finding_lines(cls, findings))


#: A plug-in template: the example's coarse mean, with one line changed per defect below.
PLUGIN = '''
import torch
from torch import nn
from datasets import AllFrames
from methods.base import MethodOutput, StepModule, VideoMethod
from methods.losses import soft_cross_entropy


class Plugin(VideoMethod):
    name = "plugin"
    streams = ("coarse",)

    def __init__(self, num_classes, dims, **hparams):
        super().__init__(num_classes, dims, **hparams)
        self.classifier = nn.Linear(dims[WIDTH], num_classes)

    def sampler(self, train):
        return AllFrames()

    def forward(self, batch):
        features = READ
        logits = self.classifier(features.sum(1) / batch.steps.unsqueeze(1))
        ones = torch.ones(batch.size, dtype=torch.long)
        return MethodOutput(scores=logits.softmax(-1), step_counts={"classifier": ones}, extras={"logits": logits})

    def loss(self, output, batch):
        loss = soft_cross_entropy(output.extras["logits"], batch.labels)
        return loss, {"ce": loss.item()}

    def cost_modules(self):
        return {"classifier": StepModule(self.classifier, lambda: (torch.zeros(1, self.classifier.in_features),))}
'''


#: Reads nothing through the meter, and takes the mean of every frame from the metering closure's arrays.
SNEAK = ('batch.read("coarse", where=torch.zeros_like(batch.mask)) + [c.cell_contents for c in '
         'batch.features._gather.__closure__ if isinstance(c.cell_contents, dict)][0]["coarse"][:-1].float().mean(0)')


def plugin(tmp_path: Path, *, width: str = '"coarse"', read: str = 'batch.read("coarse")') -> type:
    path = tmp_path / f"plugin_{abs(hash((width, read)))}.py"
    path.write_text(PLUGIN.replace("WIDTH", width).replace("READ", read))
    return resolve_method(f"{path}:Plugin")


def test_a_conforming_plugin_passes(tiny_store, tmp_path):
    findings = check_method(plugin(tmp_path), tiny_store, fast=True)
    assert findings and all(f.passed for f in findings)


def test_no_attribute_of_a_batch_leads_to_unmetered_features(tiny_store):
    """The defect a user found: a plug-in took every fine frame from the batch's private storage
    and got a row of 0.6 GFLOPs and no fine frames. The arrays now live only in the metering
    closure: nothing reachable by attribute holds a frame."""
    from datasets import AllFrames
    from datasets.loading.bank import FeatureBank

    bank = FeatureBank(tiny_store, "test", device="cpu", show_progress=False)
    batch = next(bank.batches(4, AllFrames()))
    held = [v for obj in (batch, batch.features) for v in vars(obj).values()]
    held += [x for v in held if isinstance(v, (dict, list, tuple)) for x in (v.values() if isinstance(v, dict) else v)]
    assert not any(isinstance(v, torch.Tensor) and v.dim() == 2 and v.shape[1] in {bank.dim(s) for s in bank.streams}
                   for v in held)


def test_a_plugin_that_reads_around_the_meter_is_caught(tiny_store, tmp_path):
    """Even unpicking the metering closure to reach the arrays is caught: the frames it used
    without reading are poisoned."""
    findings = {f.check: f for f in check_method(plugin(tmp_path, read=SNEAK), tiny_store, fast=True)}
    assert findings["output"].passed and not findings["unread_frames"].passed
    assert "never read through batch.read" in findings["unread_frames"].problem


def test_a_plugin_that_uses_an_undeclared_stream_gets_the_undeclared_stream_line(tiny_store, tmp_path):
    findings = check_method(plugin(tmp_path, width='"fine"'), tiny_store)
    assert [f.check for f in findings] == ["builds"] and not findings[0].passed
    assert "declares streams = ('coarse',)" in findings[0].problem and "add 'fine'" in findings[0].problem
    read = check_method(plugin(tmp_path, read='batch.read("fine")'), tiny_store, fast=True)
    assert any("add 'fine' to its `streams`" in f.problem for f in read if not f.passed)


def test_a_plugin_whose_scores_are_not_probabilities_is_told_how_to_fix_it(tiny_store, tmp_path):
    text = PLUGIN.replace("scores=logits.softmax(-1)", "scores=logits")
    path = tmp_path / "raw_scores.py"
    path.write_text(text.replace("WIDTH", '"coarse"').replace("READ", 'batch.read("coarse")'))
    findings = {f.check: f for f in check_method(resolve_method(f"{path}:Plugin"), tiny_store, fast=True)}
    assert "softmax" in findings["output"].problem


def test_check_prints_each_check_and_exits_by_the_outcome(tmp_path, capsys):
    from benchmark.__main__ import main

    assert main(["-q", "check", "docs/examples/coarse_mean.py:CoarseMean"]) == 0
    out = capsys.readouterr().out
    # An offline method: the online checks do not apply, and say so (issue 46: they said "ok").
    assert f"Coarse mean: {len(CHECKS) - 2} of {len(CHECKS)} checks passed, 2 skipped" in out
    assert "skip online" in out and "skip causal" in out and "skipped: an offline method (online = False)" in out
    plugin(tmp_path, read=SNEAK)
    path = next(tmp_path.glob("plugin_*.py"))
    assert main(["-q", "check", "--fast", f"{path}:Plugin"]) == 1
    out = capsys.readouterr().out
    assert "FAIL unread_frames" in out and "Read every feature through those accessors" in out


def test_run_refuses_a_plugin_that_fails_unless_told_and_then_marks_its_row(tmp_path, capsys):
    from benchmark.__main__ import main

    plugin(tmp_path, read=SNEAK)
    spec = f"{next(tmp_path.glob('plugin_*.py'))}:Plugin"
    args = ["-q", "run", "--dataset", "tiny", "--steps", "2", "--seeds", "0", "--results-dir", str(tmp_path / "r"),
            "--methods", "uniform", spec]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "plug-in 'plugin' failed the conformance check" in err and "--unchecked" in err
    assert not (tmp_path / "r" / "tiny" / "runs" / "plugin").exists()  # refused before anything trained
    assert main([*args, "--unchecked"]) == 0
    table = (tmp_path / "r" / "tiny" / "table.md").read_text()
    assert "Not checked: plugin is a plug-in that failed the conformance check (unread_frames:" in table
    provenance = json.loads((tmp_path / "r" / "tiny" / "provenance.json").read_text())
    assert "unread_frames" in provenance["unchecked_plugins"]["plugin"]


@pytest.mark.parametrize("defect, expected", [
    ({"scores": "torch.full_like(logits, float('nan'))"}, "output: the evaluation scores hold NaN"),
    ({"scores": "batch.labels"}, "labels are for the loss"),
    ({"extra": "feature = feature * float('nan')"}, "the loss of the first training batch is nan"),
    ({"extra": "feature = feature.reshape(7, -1, 3)"}, "raised RuntimeError in forward() at "),
    ({"extra": 'batch.read("fine")'}, "add 'fine' to its `streams`"),
])
def test_run_stops_a_defective_plugin_before_training_it_and_says_why(tmp_path, capsys, defect, expected):
    """The defects the run's own guards catch mid-training (tests/benchmark/test_guarantees.py, test_safety.py,
    there with --unchecked) stop the run before anything trains, with the check's explanation."""
    from tests.benchmark.test_guarantees import error_line, pair
    from tests.benchmark.test_guarantees import plugin as guarded_plugin
    from tests.benchmark.test_guarantees import run as run_tiny

    spec = guarded_plugin(tmp_path, "defective", **defect)
    assert run_tiny(tmp_path, "--methods", "uniform", spec) == 2
    line = error_line(capsys)
    assert "plug-in 'defective' failed the conformance check" in line and expected in line
    assert not pair(tmp_path, "uniform").exists()  # refused before any pair trained


@pytest.mark.parametrize("knob, expected", [
    ('CostKnob("frames", (2, 4), "evaluation")', ""),  # read in forward: the cost moves
    ('CostKnob("unused", (2, 4), "evaluation")', "frames at every point (2, 4)"),
    ('CostKnob("nope", (2, 4), "evaluation")', "cost_knob names 'nope', which is not one of its hyper-parameters"),
    ('CostKnob("frames", (2, -4), "training")', "frames = -4 is out of range"),
])
def test_a_declared_cost_knob_is_checked(tiny_store, tmp_path, knob, expected):
    text = PLUGIN.replace("from methods.base import MethodOutput, StepModule, VideoMethod",
                          "from dataclasses import dataclass\n"
                          "from datasets import UniformFrames\n"
                          "from methods.base import CostKnob, MethodOutput, StepModule, VideoMethod, bounded")
    text = text.replace('    streams = ("coarse",)\n', f'    streams = ("coarse",)\n    cost_knob = {knob}\n\n'
                        "    @dataclass(frozen=True)\n    class Hparams:\n        frames: int = bounded(3, ge=1)\n"
                        "        unused: int = bounded(3, ge=1)\n")
    text = text.replace("return AllFrames()", "return UniformFrames(self.hp.frames)")
    path = tmp_path / "knob_plugin.py"
    path.write_text(text.replace("WIDTH", '"coarse"').replace("READ", 'batch.read("coarse")'))
    found = {f.check: f for f in check_method(resolve_method(f"{path}:Plugin"), tiny_store)}["cost_knob"]
    assert (found.problem == "") if not expected else (expected in found.problem), found.problem


#: Online by its word, yet it reads every coarse frame and then picks the two fine frames after the largest
#: coarse changes over the whole video: each step's reads depend on frames still to come.
PEEK = '''
import torch
from torch import nn
from datasets import AllFrames
from methods.base import MethodOutput, StepModule, VideoMethod
from methods.losses import soft_cross_entropy


class Peek(VideoMethod):
    name = "peek"
    streams = ("coarse", "fine")
    online = True

    def __init__(self, num_classes, dims, **hparams):
        super().__init__(num_classes, dims, **hparams)
        self.classifier = nn.Linear(dims["fine"], num_classes)

    def sampler(self, train):
        return AllFrames()

    def forward(self, batch):
        coarse = batch.read("coarse")
        change = (coarse[:, 1:] - coarse[:, :-1]).norm(dim=-1) * batch.mask[:, 1:]
        top = change.topk(min(2, change.shape[1]), dim=1).indices + 1
        where = torch.zeros_like(batch.mask).scatter(1, top, True) & batch.mask
        fine = batch.read("fine", where=where)
        logits = self.classifier(fine.sum(1) / where.sum(1, keepdim=True).clamp(min=1))
        ones = torch.ones(batch.size, dtype=torch.long)
        return MethodOutput(scores=logits.softmax(-1), step_counts={"classifier": ones}, extras={"logits": logits})

    def loss(self, output, batch):
        loss = soft_cross_entropy(output.extras["logits"], batch.labels)
        return loss, {"ce": loss.item()}

    def cost_modules(self):
        return {"classifier": StepModule(self.classifier, lambda: (torch.zeros(1, self.classifier.in_features),))}
'''


def test_an_online_method_that_decides_by_frames_to_come_fails_the_causal_check(tiny_store, tmp_path):
    """Found (issue 46): an `online = True` plug-in that picked its fine frames by the change over the whole
    video passed every check (shown the first k steps, it read only those)."""
    path = tmp_path / "peek.py"
    path.write_text(PEEK)
    findings = {f.check: f for f in check_method(resolve_method(f"{path}:Peek"), tiny_store, fast=True)}
    assert findings["online"].passed and not findings["online"].skipped  # the earlier check could not see it
    assert not findings["causal"].passed and "frames that have not arrived yet" in findings["causal"].problem


def test_checks_that_need_a_failed_one_are_skipped_and_a_problem_is_said_once(tiny_store, tmp_path):
    """Found (issue 46): a wrong output shape failed `output`, then `unread_frames` blamed the method for an
    IndexError in the checker; one undeclared stream gave six identical FAIL lines."""
    cls = plugin(tmp_path, read='batch.read("coarse")[:, :, :1].expand(-1, -1, 3)')  # (B, 3) logits: wrong width
    findings = {f.check: f for f in check_method(cls, tiny_store, fast=True)}
    assert findings["trains"].problem or findings["output"].problem
    assert all(findings[c].skipped.startswith("needs ") for c in ("unread_frames", "online", "causal"))
    undeclared = plugin(tmp_path, read='batch.read("fine")', width='"coarse"')
    lines = finding_lines(undeclared, check_method(undeclared, tiny_store))
    problems = [line for line in lines if line.startswith("     ") and "same as" not in line and "skipped" not in line]
    assert len(problems) == len(set(problems))  # each problem printed once; the rest say "same as <check>"


def test_a_plugin_trained_by_many_plans_is_checked_once(tiny_store, tmp_path, monkeypatch):
    # A tune trains one class under several trials' plans: the check is of the class.
    import benchmark.conformance as conformance

    cls = plugin(tmp_path)
    checked = []
    monkeypatch.setattr(conformance, "check_method", lambda c, store, fast: checked.append(c) or [])
    assert conformance.vet_plugins([cls, resolve_method("lstm"), cls], tiny_store, unchecked=False) == {}
    assert checked == [cls]


def test_a_plugin_that_runs_more_than_it_charges_is_caught(tiny_store, tmp_path):
    """The meter sees feature reads only: a module left out of the count would make a row cheaper
    than it is. Found on a plug-in whose step counts said its classifier ran no time at all."""
    text = PLUGIN.replace("ones = torch.ones(batch.size", "ones = torch.zeros(batch.size")
    path = tmp_path / "uncounted.py"
    path.write_text(text.replace("WIDTH", '"coarse"').replace("READ", 'batch.read("coarse")'))
    findings = {f.check: f for f in check_method(resolve_method(f"{path}:Plugin"), tiny_store, fast=True)}
    assert findings["output"].passed and not findings["counted"].passed
    assert "charge 0: a module it runs is missing from cost_modules()" in findings["counted"].problem
