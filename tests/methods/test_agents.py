"""FrameGlimpse and FastForward: they read only what they visit, keep their budget, are
deterministic at evaluation, and their policies learn (gradients flow, one batch is fitted)."""

from __future__ import annotations

import pytest
import torch

from benchmark.protocol.budget import Budget
from benchmark.training import evaluate, fit, seed_everything
from datasets.loading.bank import FeatureBank
from methods import TrainConfig, resolve_method

BUDGET = {"frameglimpse": "max_glimpses", "fastforward": "max_steps"}
VISITS = {"frameglimpse": "glimpsed_frames", "fastforward": "visited_frames"}


@pytest.fixture(scope="module")
def banks(tiny_store):
    return (FeatureBank(tiny_store, "train", device="cpu", show_progress=False),
            FeatureBank(tiny_store, "test", device="cpu", show_progress=False))


def make(name, bank, **hparams):
    return resolve_method(name)(bank.num_classes, {s: bank.dim(s) for s in bank.streams}, **hparams)


@pytest.fixture(scope="module", params=["frameglimpse", "fastforward"])
def trained(request, banks):
    train, _ = banks
    seed_everything(0)
    method = make(request.param, train, hidden=32, **{BUDGET[request.param]: 5})
    fit(method, train, TrainConfig(), Budget(steps=9, batch_size=32), seed=0, show_progress=False)
    return method


def test_agents_are_offline_and_read_only_fine_features():
    for name in ("frameglimpse", "fastforward"):
        cls = resolve_method(name)
        assert cls.online is False and cls.streams == ("fine",)


def test_reads_match_the_visited_frames_and_respect_the_budget(trained, banks):
    _, test = banks
    result = evaluate(trained, test, 32, show_progress=False)
    visits = result.diagnostics[VISITS[trained.name]]
    for row in range(test.num_videos):
        visited = {int(p) for p in visits[row] if p >= 0}
        assert len(visited) >= 1
        assert max(visited) < test.lengths_host[row]
        assert result.frames_read["fine"][row] == len(visited)  # the meter saw exactly these
    budget = getattr(trained.hp, BUDGET[trained.name])
    assert result.frames_read["fine"].max() <= budget
    assert result.frames_read.get("coarse") is None or result.frames_read["coarse"].sum() == 0


def test_unvisited_frames_are_never_used(tiny_store, trained):
    test = FeatureBank(tiny_store, "test", device="cpu", show_progress=False)
    meter = test.new_meter()
    trained.eval()
    with torch.no_grad():
        clean = [trained(b).scores for b in test.batches(32, trained.sampler(False), meter=meter)]
        test.features["fine"][:-1][~meter.read_mask("fine")] = float("nan")
        poisoned = [trained(b).scores for b in test.batches(32, trained.sampler(False))]
    for a, b in zip(clean, poisoned):
        assert torch.isfinite(b).all() and torch.equal(a, b)


def test_evaluation_is_deterministic(trained, banks):
    _, test = banks
    a = evaluate(trained, test, 32, show_progress=False)
    b = evaluate(trained, test, 32, show_progress=False)
    assert (a.scores == b.scores).all() and (a.frames_read["fine"] == b.frames_read["fine"]).all()


def test_a_seed_determines_training(banks):
    train, test = banks
    runs = []
    for _ in range(2):
        seed_everything(5)
        method = make("fastforward", train, hidden=16)
        fit(method, train, TrainConfig(), Budget(steps=3, batch_size=32), seed=5, show_progress=False)
        runs.append(evaluate(method, test, 32, show_progress=False).scores)
    assert (runs[0] == runs[1]).all()


@pytest.mark.parametrize("name, head", [("frameglimpse", "locator"), ("frameglimpse", "stopper"),
                                        ("fastforward", "policy")])
def test_policy_gradients_flow(banks, name, head):
    train, _ = banks
    torch.manual_seed(0)
    method = make(name, train, hidden=16).train()
    batch = next(train.batches(32, method.sampler(True), train=True, seed=0))
    loss, logs = method.loss(method(batch), batch)
    loss.backward()
    assert getattr(method, head).weight.grad.abs().sum() > 0
    assert method.baseline.head.weight.grad.abs().sum() > 0
    assert {"policy", "baseline", "reward"} <= set(logs)


@pytest.mark.parametrize("name", ["frameglimpse", "fastforward"])
def test_one_batch_overfit(banks, name):
    """Trained on one batch, the agent's reward rises: the classifier fits and the policy adapts."""
    train, _ = banks
    torch.manual_seed(0)
    method = make(name, train, hidden=64, dropout=0.0)
    batch = next(train.batches(32, method.sampler(True), train=True, seed=0))
    optimiser = torch.optim.Adam(method.parameters(), lr=1e-2)
    rewards = []
    for _ in range(80):
        method.train()
        loss, logs = method.loss(method(batch), batch)
        rewards.append(logs["reward"])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert sum(rewards[-10:]) / 10 > sum(rewards[:10]) / 10 + 0.3


def test_frameglimpse_learns_its_first_location(banks):
    """The start is a Gaussian decision with its own log-probability: REINFORCE reaches it."""
    train, _ = banks
    torch.manual_seed(0)
    method = make("frameglimpse", train, hidden=16).train()
    batch = next(train.batches(32, method.sampler(True), train=True, seed=0))
    output = method(batch)
    assert output.extras["log_probs"].shape[1] == method.hp.max_glimpses  # start + 9 moves/stops
    method.loss(output, batch)[0].backward()
    assert method.start.grad is not None and float(method.start.grad.abs()) > 0
    method.eval()
    first = method(batch).diagnostics["glimpsed_frames"][:, 0]
    expected = (torch.sigmoid(method.start).clamp(max=1 - 1e-6) * batch.lengths).long()
    assert torch.equal(first, torch.minimum(expected, batch.lengths - 1))  # evaluation starts at the mean
