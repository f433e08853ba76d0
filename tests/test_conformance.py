"""One conformance check, run on every registered method (as scikit-learn's check_estimator):
the interface, reads only through the meter and only of declared streams, unread frames never
used, determinism, gradients to every trained part, the counted modules, and the online flag.
A new registered method is checked without writing a test for it."""

from __future__ import annotations

import pytest
import torch

from datasets.loading.bank import FeatureBank
from methods import available_methods
from methods.base import SUITES


@pytest.fixture(scope="module")
def banks(tiny_store):
    return (FeatureBank(tiny_store, "train", device="cpu", show_progress=False),
            FeatureBank(tiny_store, "test", device="cpu", show_progress=False))


def build(cls, bank, seed=0):
    torch.manual_seed(seed)
    return cls(bank.num_classes, {s: bank.dim(s) for s in bank.streams})


def train_steps(method, bank, steps=3, seed=0):
    optimiser = torch.optim.Adam(method.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    method.train()
    for _, batch in zip(range(steps), bank.batches(16, method.sampler(train=True), train=True, generator=generator,
                                                   streams=method.streams, reader=method.name)):
        method.on_step(0, steps)
        loss, _ = method.loss(method(batch), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return method.eval()


METHODS = sorted(available_methods())


def test_every_method_belongs_to_a_suite():
    for name, cls in available_methods().items():
        assert cls.suite in {s for members in SUITES.values() for s in members}, name


@pytest.mark.parametrize("name", METHODS)
def test_interface_and_declared_reads(banks, name):
    train, test = banks
    cls = available_methods()[name]
    method = train_steps(build(cls, train), train)
    meter = test.new_meter()
    batch = next(test.batches(16, method.sampler(train=False), meter=meter, streams=cls.streams, reader=name))
    with torch.no_grad():
        out = method(batch)
    assert out.scores.shape == (16, test.num_classes) and torch.isfinite(out.scores).all()
    assert torch.allclose(out.scores.sum(1), torch.ones(16), atol=1e-4)  # probabilities per video
    assert set(out.step_counts) <= set(method.cost_modules())
    assert all(v.shape == (16,) and (v >= 0).all() for v in out.step_counts.values())
    for stream in test.streams:
        if stream not in cls.streams:
            assert int(meter.frames_read(stream).sum()) == 0, stream


@pytest.mark.parametrize("name", METHODS)
def test_unread_frames_are_never_used(tiny_store, banks, name):
    """NaN in every frame the meter did not record leaves the scores bit-identical."""
    train, _ = banks
    cls = available_methods()[name]
    method = train_steps(build(cls, train), train)
    test = FeatureBank(tiny_store, "test", device="cpu", show_progress=False)  # its own copy, poisoned below
    meter = test.new_meter()
    with torch.no_grad():
        clean = [method(b).scores for b in test.batches(32, method.sampler(False), meter=meter)]
        for stream in test.streams:
            test.features[stream][:-1][~meter.read_mask(stream)] = float("nan")
        poisoned = [method(b).scores for b in test.batches(32, method.sampler(False))]
    for a, b in zip(clean, poisoned):
        assert torch.isfinite(b).all() and torch.equal(a, b)


@pytest.mark.parametrize("name", METHODS)
def test_training_and_evaluation_are_deterministic(banks, name):
    train, test = banks
    cls = available_methods()[name]
    first, second = (train_steps(build(cls, train), train) for _ in range(2))
    for (key, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), key
    batch = next(test.batches(16, first.sampler(False)))
    with torch.no_grad():
        assert torch.equal(first(batch).scores, first(batch).scores)


@pytest.mark.parametrize("name", METHODS)
def test_gradients_reach_every_trained_part(banks, name):
    train, _ = banks
    cls = available_methods()[name]
    method = build(cls, train).train()
    reached = set()
    generator = torch.Generator().manual_seed(0)
    for start in (0, *method.phase_starts(100)):  # every stage of a method trained in stages
        batches = train.batches(32, method.sampler(train=True), train=True, generator=generator)
        for step, batch in zip(range(start, start + 3), batches):
            method.train()
            method.on_step(step, 100)
            method.zero_grad()
            loss, _ = method.loss(method(batch), batch)
            loss.backward()
            reached |= {n for n, p in method.named_parameters() if p.grad is not None and p.grad.any()}
    # A head may not act in one batch; over three batches every trained parameter gets a gradient.
    trained = {n for n, p in method.named_parameters() if p.requires_grad}
    assert trained - reached - _allowed_idle(method) == set()


def _allowed_idle(method) -> set[str]:
    """Parameters a method declares may stay without gradient (none of the built-ins)."""
    return set(getattr(method, "idle_parameters", ()))


@pytest.mark.parametrize("name", [n for n in METHODS if available_methods()[n].online])
def test_online_methods_only_read_frames_that_have_arrived(banks, name):
    """An online method shown the first k frames reads nothing after them."""
    train, test = banks
    cls = available_methods()[name]
    method = train_steps(build(cls, train), train)
    for k in (1, 3, 6):
        meter = test.new_meter()
        batch = next(test.batches(16, method.sampler(False), meter=meter)).first_steps(k)
        with torch.no_grad():
            method(batch)
        assert int(meter.horizon().max()) <= int(batch.frames[:, :k].max()) + 1
