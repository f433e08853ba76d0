"""The extended suite's mechanisms, beyond the conformance check every method gets."""

from __future__ import annotations

import pytest
import torch

from datasets.bank import FeatureBank
from methods import resolve_method
from methods.frameexit import ORDER


@pytest.fixture(scope="module")
def bank(tiny_store):
    return FeatureBank(tiny_store, "test", device="cpu", show_progress=False)


def test_frameexit_visits_the_paper_order_and_stops_at_the_first_exit(bank):
    torch.manual_seed(0)
    method = resolve_method("frameexit")(bank.num_classes, {"fine": bank.dim("fine")}).eval()
    with torch.no_grad():
        for gate in method.gates:
            gate.weight.zero_()
            gate.bias.fill_(-10.0)  # never exit...
        method.gates[2].bias.fill_(10.0)  # ...except after the third frame
    meter = bank.new_meter()
    batch = next(bank.batches(16, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        out = method(batch)
    assert out.step_counts["classifier"].tolist() == [3] * 16
    for row in range(16):
        read = set(meter.frames_of("fine", int(batch.index[row])).tolist())
        assert read == {int(batch.frames[row, p]) for p in ORDER[:3]}
    # The scores are the third step's classifier on the max-pooled features of those frames.
    pooled = torch.stack([batch.read("fine")[:, p] for p in ORDER[:3]], 1).amax(1)
    assert torch.allclose(out.scores, method.classifiers[2](pooled).softmax(-1), atol=1e-6)


def test_scsampler_reads_the_k_most_salient_frames(bank):
    torch.manual_seed(0)
    method = resolve_method("scsampler")(bank.num_classes, {s: bank.dim(s) for s in bank.streams}, frames=4).eval()
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        method(batch)
        salience = method.scorer(batch.read("coarse")).softmax(-1).amax(-1).masked_fill(~batch.mask, -1.0)
    for row in range(8):
        length = int(batch.lengths[row])
        expected = set(salience[row, :length].topk(min(4, length)).indices.tolist())
        assert set(meter.frames_of("fine", int(batch.index[row])).tolist()) == expected
