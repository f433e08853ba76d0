"""A method that did not learn is never a silent row (benchmark/protocol/learned.py, issue 43)."""

from __future__ import annotations

import copy
import json

import pytest

from benchmark.__main__ import main
from benchmark.protocol import learned
from benchmark.record import PairRecord
from benchmark.results import SUMMARY, TABLE_CSV, TABLE_MD
from datasets.common.gitinfo import REPO

#: A plug-in built to collapse: it reads the coarse stream, as a method must, and ignores it, so
#: its scores are the same for every video and its validation mAP is chance.
BLIND = '''
from dataclasses import dataclass

import torch
from torch import nn

from datasets import AllFrames
from methods.base import MethodOutput, StepModule, VideoMethod
from methods.losses import soft_cross_entropy


class Blind(VideoMethod):
    name = "blind"
    summary = "one learned score per class, whatever the video shows"
    display_name = "Blind"
    streams = ("coarse",)

    @dataclass(frozen=True)
    class Hparams:
        pass

    def __init__(self, num_classes, dims, **hparams):
        super().__init__(num_classes, dims, **hparams)
        self.bias = nn.Linear(1, num_classes)

    def sampler(self, train):
        return AllFrames()

    def forward(self, batch):
        coarse = batch.read("coarse")
        logits = self.bias(torch.ones(batch.size, 1, device=coarse.device)) + 0 * coarse.sum((1, 2)).unsqueeze(1)
        ones = torch.ones(batch.size, dtype=torch.long, device=logits.device)
        return MethodOutput(scores=logits.softmax(-1), step_counts={"bias": ones}, extras={"logits": logits})

    def loss(self, output, batch):
        loss = soft_cross_entropy(output.extras["logits"], batch.labels)
        return loss, {"ce": loss.item()}

    def cost_modules(self):
        return {"bias": StepModule(self.bias, lambda: (torch.zeros(1, 1),))}
'''


def _record(**changes) -> PairRecord:
    """A committed record of the default store's Uniform (which learned), with ``changes``."""
    data = json.loads((REPO / "results/default/runs/uniform/seed0/record.json").read_text())
    data = copy.deepcopy(data)
    for key, value in changes.items():
        data[key] = value
    return PairRecord.from_json(data)


def test_a_record_that_learned_has_no_verdict():
    assert learned.verdict(_record()) == ""


def test_chance_is_one_over_the_classes_and_twice_it_is_near_chance():
    record = _record()
    classes = len(record.per_class_ap)
    assert learned.chance_map(record) == pytest.approx(1 / classes)
    low = [{**v, "map": 1.9 / classes} for v in record.selection["validations"]]
    why = learned.verdict(_record(selection={**record.selection, "validations": low}))
    assert why.startswith("best validation mAP") and f"chance {100 / classes:.1f}" in why


def test_a_policy_that_reads_no_fine_frame_at_any_validation_did_not_learn():
    record = _record()
    fine = record.per_frame_gmacs["fine"]
    cheap = [{**v, "gflops": 0.5 * fine} for v in record.selection["validations"]]
    assert "fewer than one fine frame" in learned.verdict(_record(selection={**record.selection, "validations": cheap}))
    once = [dict(v) for v in cheap]
    once[-1]["gflops"] = 3 * fine  # it read some at one validation: a policy that moved
    assert learned.verdict(_record(selection={**record.selection, "validations": once})) == ""


def test_a_memorised_training_set_did_not_learn():
    record = _record()
    history = [{"ce": 2.8, "loss": 2.8}, {"ce": 0.006, "loss": 0.006}]
    low = [{**v, "map": 0.37} for v in record.selection["validations"]]
    assert learned.verdict(_record(train_history=history)) == ""  # fitted, and validation is high: learned
    why = learned.verdict(_record(train_history=history, selection={**record.selection, "validations": low}))
    assert why.startswith("memorised") and "best validation mAP 37.0" in why


def test_a_row_names_its_seeds():
    good, bad = _record(), _record(selection={**_record().selection, "validations": [
        {**v, "map": 0.01} for v in _record().selection["validations"]]})
    assert learned.row_verdict({"0": good, "1": good}) == ""
    assert learned.row_verdict({"0": good, "1": bad}).startswith("seed 1: best validation mAP 1.0")
    assert learned.row_verdict({"0": bad, "1": bad}).startswith("every seed: ")


def test_a_method_built_to_collapse_is_marked_in_the_table_and_by_report_check(tiny_store, tmp_path, capsys):
    plugin = tmp_path / "blind.py"
    plugin.write_text(BLIND)
    root = tmp_path / "results"
    assert main(["-q", "run", "--dataset", str(tiny_store), "--methods", "uniform", f"{plugin}:Blind", "--seeds", "0",
                 "--steps", "40", "--results-dir", str(root), "--name", "collapse", "--no-presets"]) == 0
    folder = root / "collapse"
    table = (folder / TABLE_MD).read_text()
    assert f"| Blind {learned.MARK}" in table and f"| Uniform {learned.MARK}" not in table
    assert "Did not learn, as the validations show" in table and "Blind: every seed: best validation mAP" in table
    summary = json.loads((folder / SUMMARY).read_text())["summary"]
    assert summary["blind"]["did_not_learn"].startswith("every seed") and "did_not_learn" not in summary["uniform"]
    assert "did_not_learn" in (folder / TABLE_CSV).read_text().splitlines()[0]
    capsys.readouterr()
    assert main(["report", "--check", "--results-dir", str(root), "--name", "collapse"]) == 0  # marked, not a fault
    out = capsys.readouterr().out
    assert "results/collapse: did not learn (marked in its tables): blind: every seed: best validation mAP" in out
