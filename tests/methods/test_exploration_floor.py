"""The exploration-floor plug-ins (docs/examples/exploration_floor.py, issue 43's study): a floor of
zero is the built-in method bit for bit, a positive floor draws every training decision from the
mixture with the uniform policy and scores it by the mixture's log-probability, and evaluation
keeps the method's own rule."""

from __future__ import annotations

import sys

import pytest
import torch

from benchmark.protocol.budget import Budget
from benchmark.training import evaluate, fit, seed_everything
from datasets.common.errors import UsageError
from datasets.loading.bank import FeatureBank
from methods import TrainConfig, resolve_method

EXAMPLE = "docs/examples/exploration_floor.py"
PAIRS = [("frameglimpse", "FrameGlimpseFloor"), ("fastforward", "FastForwardFloor"),
         ("liteeval_rl", "LiteEvalRLFloor")]


@pytest.fixture(scope="module")
def banks(tiny_store):
    return (FeatureBank(tiny_store, "train", device="cpu", show_progress=False),
            FeatureBank(tiny_store, "test", device="cpu", show_progress=False))


def trained(cls, bank, test, **hparams):
    seed_everything(0)
    method = cls(bank.num_classes, {s: bank.dim(s) for s in cls.streams}, **hparams)
    stats = fit(method, bank, TrainConfig(lr=3e-3), Budget(steps=12, batch_size=32), seed=0, show_progress=False)
    return stats, evaluate(method, test, 32, show_progress=False)


@pytest.mark.parametrize("builtin, plugin", PAIRS)
def test_a_floor_of_zero_is_the_built_in_method_bit_for_bit(banks, builtin, plugin):
    train, test = banks
    floored = resolve_method(f"{EXAMPLE}:{plugin}")
    assert floored.name != builtin and floored.shown_name() != resolve_method(builtin).shown_name()
    base_stats, base = trained(resolve_method(builtin), train, test)
    stats, same = trained(floored, train, test, explore=0.0)
    assert torch.equal(torch.as_tensor(base.scores), torch.as_tensor(same.scores))
    assert base_stats.final_loss == stats.final_loss
    _, other = trained(floored, train, test, explore=0.5)
    assert not torch.equal(torch.as_tensor(base.scores), torch.as_tensor(other.scores))  # the floor does act


@pytest.mark.parametrize("binary", [False, True])
def test_a_floored_head_trains_on_the_mixture_and_evaluates_as_the_head(binary):
    FlooredHead = sys.modules[resolve_method(f"{EXAMPLE}:FastForwardFloor").__module__].FlooredHead

    torch.manual_seed(0)
    head = torch.nn.Linear(4, 1 if binary else 5)
    head.bias.data += 6.0 if binary else torch.tensor([9.0, 0, 0, 0, 0])  # a nearly saturated policy
    state = torch.randn(8, 4)
    floored = FlooredHead(head, 0.2, binary)
    raw = head(state)
    if binary:
        assert torch.allclose(torch.sigmoid(floored(state)), 0.1 + 0.8 * torch.sigmoid(raw))
    else:
        assert torch.allclose(floored(state).softmax(-1), 0.8 * raw.softmax(-1) + 0.2 / 5)
        assert torch.allclose(floored(state).logsumexp(-1), torch.zeros(8), atol=1e-6)  # log-probabilities
    floored.eval()
    assert torch.equal(floored(state), raw)


def test_liteeval_rl_with_a_floor_fires_where_its_gate_never_would(banks):
    train, _ = banks
    cls = resolve_method(f"{EXAMPLE}:LiteEvalRLFloor")
    rates = {}
    for explore in (0.0, 0.4):
        seed_everything(0)
        method = cls(train.num_classes, {s: train.dim(s) for s in cls.streams}, explore=explore).train()
        with torch.no_grad():
            method.gate.bias.copy_(torch.tensor([30.0, -30.0]))  # P(fire) = e^-60: never, unfloored
        batch = next(iter(train.batches(32, method.sampler(train=True), train=True, streams=cls.streams,
                                        reader=cls.name, generator=torch.Generator().manual_seed(0))))
        output = method(batch)
        valid = output.extras["valid"]
        rates[explore] = float((output.extras["decisions"] * valid).sum() / valid.sum())
        loss, logs = method.loss(output, batch)
        assert torch.isfinite(loss)
    assert rates[0.0] == 0.0
    assert 0.1 < rates[0.4] < 0.3  # e / 2 = 0.2 of the decisions, drawn uniformly


def test_a_plug_in_that_would_pass_for_a_built_in_is_refused(tmp_path):
    from benchmark.__main__ import main
    from benchmark.plans import refuse_impostor

    path = tmp_path / "variant.py"
    path.write_text("from methods.fastforward import FastForward\n\n\nclass Variant(FastForward):\n    pass\n"
                    "\n\nclass Named(FastForward):\n    name = 'variant'\n")
    with pytest.raises(UsageError, match="would pass for the method 'fastforward'.*its name 'fastforward'"):
        refuse_impostor("variant.py:Variant", resolve_method(f"{path}:Variant"))
    with pytest.raises(UsageError, match="its display name 'FastForward'"):
        refuse_impostor("variant.py:Named", resolve_method(f"{path}:Named"))
    refuse_impostor("fastforward", resolve_method("fastforward"))  # the built-in itself is itself
    assert main(["-q", "check", "--fast", f"{path}:Variant"]) == 2
