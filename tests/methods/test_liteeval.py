"""LiteEval and LiteEval-RL: the gate, synchronisation, the penalty, conditional reads."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.protocol.budget import Budget
from benchmark.training import evaluate, fit, seed_everything
from datasets.loading.bank import FeatureBank
from methods import TrainConfig, resolve_method
from methods.liteeval import straight_through_gumbel, usage_penalty


@pytest.fixture(scope="module")
def banks(tiny_store):
    return (FeatureBank(tiny_store, "train", device="cpu", show_progress=False),
            FeatureBank(tiny_store, "test", device="cpu", show_progress=False))


def make(name: str, bank: FeatureBank, **hparams):
    return resolve_method(name)(bank.num_classes, {s: bank.dim(s) for s in bank.streams}, **hparams)


@pytest.fixture(scope="module")
def trained(banks):
    """LiteEval trained briefly on tiny (a few seconds)."""
    train, _ = banks
    seed_everything(0)
    method = make("liteeval", train, coarse_hidden=16, fine_hidden=32, gamma=0.2)
    fit(method, train, TrainConfig(lr=3e-3), Budget(steps=24, batch_size=32), seed=0, show_progress=False)
    return method


def test_straight_through_gate_is_hard_forward_and_soft_backward():
    torch.manual_seed(0)
    logits = torch.randn(64, 2, requires_grad=True)
    fire = straight_through_gumbel(logits, tau=1.0)
    assert fire.shape == (64,) and set(fire.detach().unique().tolist()) <= {0.0, 1.0}
    (fire * torch.arange(64.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert torch.allclose(logits.grad[:, 0], -logits.grad[:, 1])  # softmax over two logits


def test_gradients_reach_every_part_through_the_gate(banks):
    train, _ = banks
    torch.manual_seed(0)
    method = make("liteeval", train, coarse_hidden=8, fine_hidden=16)
    method.train()
    method.on_epoch_start(0, 10)
    batch = next(train.batches(8, method.sampler(train=True), train=True, seed=0))
    out = method(batch)
    steps = batch.mask.shape[1]
    assert out.scores.shape == (8, train.num_classes)
    assert out.extras["decisions"].shape == (8, steps) and out.extras["gate_logits"].shape == (8, steps, 2)
    loss, logs = method.loss(out, batch)
    loss.backward()
    for name in ("gate", "coarse_cell", "fine_cell", "classifier"):
        grads = [p.grad for p in getattr(method, name).parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name
    assert {"ce", "penalty", "fine_usage", "tau"} <= set(logs)


def test_synchronisation_rule_by_hand(banks):
    train, _ = banks
    method = make("liteeval", train, coarse_hidden=2, fine_hidden=4)
    h_coarse = torch.tensor([[1.0, 2.0]])
    h_fine = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    # Skipped step: the first D_c fine units come from the coarse LSTM, the rest are kept.
    assert method._skip_state(h_coarse, h_fine).tolist() == [[1.0, 2.0, 30.0, 40.0]]
    no_sync = make("liteeval", train, coarse_hidden=2, fine_hidden=4, sync=False)
    assert no_sync._skip_state(h_coarse, h_fine).tolist() == [[10.0, 20.0, 30.0, 40.0]]
    with pytest.raises(ValueError, match="fine_hidden .* must be >= coarse_hidden"):
        make("liteeval", train, coarse_hidden=8, fine_hidden=4)


def test_usage_penalty_by_hand():
    decisions = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    valid = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])  # video 2 has 2 frames
    penalty = usage_penalty(decisions, valid, gamma=0.25)
    assert penalty.tolist() == pytest.approx([(0.5 - 0.25) ** 2, (1.0 - 0.25) ** 2])


def test_temperature_is_annealed_from_high_to_small(banks):
    method = make("liteeval", banks[0], tau_schedule="epoch")
    method.on_epoch_start(0, 30)
    assert method.tau == pytest.approx(5.0)
    method.on_epoch_start(29, 30)
    assert method.tau == pytest.approx(0.5)
    method.on_epoch_start(15, 30)
    assert 0.5 < method.tau < 5.0


def test_evaluation_reads_fine_features_only_where_the_gate_fires(trained, banks):
    _, test = banks
    result = evaluate(trained, test, 64, show_progress=False)
    fine_steps = result.diagnostics["fine_steps"]
    for row in range(test.num_videos):
        fired = sum(fine_steps[row][: test.lengths_host[row]])
        assert result.frames_read["fine"][row] == fired == result.step_counts["fine_cell"][row]
    assert (result.frames_read["coarse"] == test.lengths_host).all()  # every frame, coarse
    assert 0 < result.frames_read["fine"].sum() < test.num_frames  # really conditional


def test_unselected_fine_features_are_never_used(tiny_store, trained):
    """Poison every fine feature the gate does not select: outputs are unchanged and finite."""
    test = FeatureBank(tiny_store, "test", device="cpu", show_progress=False)
    meter = test.new_meter()
    clean = [trained(b) for b in test.batches(64, trained.sampler(train=False), meter=meter)]
    read = meter.read_mask("fine")
    assert (~read).sum() > 0
    test.features["fine"][:-1][~read] = float("nan")  # the last row is the shared zero row
    poisoned = [trained(b) for b in test.batches(64, trained.sampler(train=False))]
    for a, b in zip(clean, poisoned):
        assert torch.isfinite(b.scores).all() and torch.isfinite(b.step_scores).all()
        assert torch.equal(a.scores, b.scores) and torch.equal(a.step_scores, b.step_scores)


def test_online_scores_per_step(trained, banks):
    _, test = banks
    batch = next(test.batches(16, trained.sampler(train=False)))
    out = trained.eval()(batch)
    assert out.step_scores.shape == (16, batch.mask.shape[1], test.num_classes)
    last = batch.steps - 1
    assert torch.equal(out.scores, out.step_scores[torch.arange(16), last])


@pytest.mark.parametrize("name", ["liteeval", "liteeval_rl"])
def test_a_seed_determines_the_result(banks, name):
    train, test = banks
    results = []
    for _ in range(2):
        seed_everything(3)
        method = make(name, train, coarse_hidden=8, fine_hidden=16)
        fit(method, train, TrainConfig(), Budget(steps=6, batch_size=32), seed=3, show_progress=False)
        results.append(evaluate(method, test, 64, show_progress=False))
    assert (results[0].scores == results[1].scores).all()
    assert (results[0].frames_read["fine"] == results[1].frames_read["fine"]).all()


def test_reinforce_trains_the_gate_from_the_reward(banks):
    train, _ = banks
    torch.manual_seed(0)
    method = make("liteeval_rl", train, coarse_hidden=8, fine_hidden=16)
    method.train()
    batch = next(train.batches(32, method.sampler(train=True), train=True, seed=0))
    out = method(batch)
    assert set(out.extras["decisions"].unique().tolist()) <= {0.0, 1.0}
    assert not out.extras["decisions"].requires_grad  # sampled, no reparameterisation
    loss, logs = method.loss(out, batch)
    loss.backward()
    assert method.gate.weight.grad.abs().sum() > 0  # only the policy-gradient term reaches the gate
    assert {"policy", "reward", "fine_usage"} <= set(logs)
    assert torch.isfinite(method.baseline)


def test_diagnostics_round_trip_and_name_the_fine_frames(tmp_path, trained, banks):
    from benchmark.results import pack_diagnostics, unpack_diagnostics

    _, test = banks
    result = evaluate(trained, test, 64, show_progress=False)
    steps = result.diagnostics["fine_steps"]
    assert [len(s) for s in steps] == test.lengths_host.tolist()  # padding cut off
    (tmp_path / "d.npz").write_bytes(pack_diagnostics(result.video_ids, result.diagnostics))
    ids, back = unpack_diagnostics(tmp_path / "d.npz")
    assert ids == result.video_ids
    assert all((a == b).all() for a, b in zip(back["fine_steps"], steps))
    assert [int(s.sum()) for s in back["fine_steps"]] == result.frames_read["fine"].tolist()


# ---------------------------------------------------------------------------- the recurrence itself
class ScriptedGate(torch.nn.Module):
    """Stands in for the gate of the evaluation path: fires where ``pattern[:, t]`` says."""

    def __init__(self, pattern: torch.Tensor) -> None:
        super().__init__()
        self.pattern, self.t = pattern, 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        fire = self.pattern[:, self.t].float()
        self.t += 1
        return torch.stack([1 - fire, fire], 1)


def forced(method, pattern: torch.Tensor):
    """Make the next pass take ``pattern`` (B, T) as its decisions: the training path through
    its recurrence's rule (it uses the gate's weights directly), the evaluation path through its
    gate."""
    if method.training:
        from methods.gated_recurrence import Recurrence

        units = method.hp.coarse_hidden if method.hp.sync else 0
        method.recurrence = lambda noise: (Recurrence("given", sync_units=units), pattern.t().float())
    else:
        method.real_gate = getattr(method, "real_gate", method.gate)
        method.gate = ScriptedGate(pattern)


@pytest.mark.parametrize("hparams", [{}, {"sync": False}, {"coarse_embed": 8, "fine_embed": 12}])
def test_training_and_evaluation_paths_give_the_same_states_for_the_same_decisions(banks, hparams):
    train, _ = banks
    torch.manual_seed(4)
    method = make("liteeval", train, coarse_hidden=6, fine_hidden=10, dropout=0.0, **hparams)
    batch = next(train.batches(16, method.sampler(train=False), seed=0, labels=True))
    pattern = torch.rand(batch.mask.shape) < 0.4
    method.eval()  # batch-norm with running statistics in both passes
    forced(method, pattern)
    evaluated = method(batch)
    method.gate = method.real_gate
    method.train()
    for module in method.modules():  # the training path, without batch statistics or dropout
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.Dropout)):
            module.eval()
    forced(method, pattern)
    trained = method(batch)
    torch.testing.assert_close(trained.scores, evaluated.scores, rtol=1e-5, atol=1e-6)
    fired = (pattern & batch.mask).sum(1)
    assert torch.equal(evaluated.step_counts["fine_cell"], fired)


def test_a_skipped_step_copies_both_h_and_c_from_the_coarse_lstm(banks):
    """Skip every frame but the last: the last fine update starts from [h^c, 0] and [c^c, 0]."""
    train, _ = banks
    torch.manual_seed(5)
    method = make("liteeval", train, coarse_hidden=6, fine_hidden=10, dropout=0.0).eval()
    batch = next(train.batches(8, method.sampler(train=False), seed=0, labels=True))
    last = batch.steps - 1
    pattern = torch.zeros(batch.mask.shape, dtype=torch.bool)
    pattern[torch.arange(batch.size), last] = True
    forced(method, pattern)
    scores = method(batch).scores
    coarse = torch.stack([method.embed(v) for v in batch.read("coarse")])  # embedded per frame (eval mode)
    fine = torch.stack([method.fine_embedding(v) for v in batch.read("fine")])
    for i in range(batch.size):
        h = c = torch.zeros(1, 6)
        for t in range(int(last[i])):  # the coarse LSTM up to the frame before the last
            h, c = method.coarse_cell(coarse[i : i + 1, t], (h, c))
        hf, cf = torch.cat([h, torch.zeros(1, 4)], 1), torch.cat([c, torch.zeros(1, 4)], 1)
        x = coarse[i : i + 1, int(last[i])]
        hf, _ = method.fine_cell(torch.cat([x, fine[i : i + 1, int(last[i])]], 1), (hf, cf))
        torch.testing.assert_close(scores[i], method.classifier(hf)[0].softmax(-1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma, direction", [(1.0, 1), (0.0, -1)])
def test_policy_gradient_alone_moves_the_gate_towards_the_reward(banks, gamma, direction):
    """Everything but the gate frozen: only the policy can raise the reward, here through the
    usage term (gamma 1: fire always; gamma 0: never), so usage must move that way."""
    train, _ = banks
    torch.manual_seed(6)
    # Per-video penalty: with the batch-mean one every video of a batch shares the usage term,
    # which REINFORCE sees only across batches (a weak signal; see methods/liteeval.py).
    method = make("liteeval_rl", train, coarse_hidden=8, fine_hidden=16, dropout=0.0, lam=20.0, gamma=gamma,
                  penalty="video")
    for name, param in method.named_parameters():
        param.requires_grad_(name.startswith("gate."))
    optimiser = torch.optim.Adam(method.gate.parameters(), lr=0.05)
    batch = next(train.batches(32, method.sampler(train=True), train=True, seed=0))
    usage = []
    for _ in range(40):
        method.train()
        loss, logs = method.loss(method(batch), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        usage.append(logs["fine_usage"])
    change = sum(usage[-5:]) / 5 - usage[0]  # from the untrained gate (about half the frames) to the end
    assert direction * change > 0.25, usage


def test_penalty_on_the_batch_mean_leaves_videos_free():
    decisions = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    valid = torch.ones(2, 4)
    assert usage_penalty(decisions, valid, 0.5, "batch").tolist() == [0.0, 0.0]  # mean usage is on target
    assert usage_penalty(decisions, valid, 0.5, "video").tolist() == [0.25, 0.25]
    with pytest.raises(ValueError, match="penalty = 'both'"):
        resolve_method("liteeval")(3, {"coarse": 4, "fine": 6}, penalty="both")


def test_temperature_can_follow_the_optimizer_steps(banks):
    train, _ = banks
    method = make("liteeval", train, coarse_hidden=4, fine_hidden=8)  # "step" is the default
    method.on_epoch_start(0, 3)
    taus = []
    for step in range(10):
        method.on_step(step, 10)
        taus.append(method.tau)
    assert taus[0] == pytest.approx(5.0) and taus[-1] == pytest.approx(0.5)
    assert all(a > b for a, b in zip(taus, taus[1:]))
    fit(method, train, TrainConfig(), Budget(steps=4, batch_size=32), seed=0, show_progress=False)
    assert method.tau == pytest.approx(0.5)  # the last step of the budget ran at tau_end


def test_a_live_stream_decides_as_evaluation_does_frame_by_frame(trained, banks):
    """start_stream fed one video's stored features frame by frame gives evaluation's step scores,
    and asks for a fine feature exactly at the frames where evaluation's gate fired."""
    _, test = banks
    trained.eval()
    batch = next(test.batches(8, trained.sampler(train=False)))
    out = trained(batch)
    coarse, fine = batch.read("coarse"), batch.read("fine")
    fired_somewhere = False
    for row in range(batch.size):
        stream = trained.start_stream()
        asked: list[int] = []
        for t in range(int(batch.steps[row])):
            def fine_source(row=row, t=t):
                asked.append(t)
                return fine[row, t]

            scores = stream.step({"coarse": lambda row=row, t=t: coarse[row, t], "fine": fine_source})
            assert torch.allclose(scores, out.step_scores[row, t], atol=1e-5)
        assert asked == torch.nonzero(out.diagnostics["fine_steps"][row]).flatten().tolist()
        assert stream.fired == [t in asked for t in range(int(batch.steps[row]))]
        fired_somewhere = fired_somewhere or bool(asked)
    assert fired_somewhere


def test_only_methods_that_decide_per_frame_can_stream(trained, banks):
    train, _ = banks
    assert resolve_method("liteeval").can_stream() and resolve_method("liteeval_rl").can_stream()
    uniform = make("uniform", train)
    assert not uniform.can_stream()
    with pytest.raises(TypeError, match="frame by frame"):
        uniform.start_stream()
    with pytest.raises(RuntimeError, match="eval"):
        make("liteeval", train).start_stream()  # a fresh module is in training mode


# ---------------------------------------------------------------------------- the official code's readings
def test_the_official_gumbel_noise_is_half_scaled():
    """The official code samples softmax((log p + 0.5 G) / tau); the suite's default, (log p + G) / tau."""
    logits = torch.tensor([[0.0, 0.3], [0.0, -0.3]])
    noise = torch.tensor([[0.0, 0.5], [0.0, 0.5]])
    # With the whole noise the second row fires (-0.3 + 0.5 > 0); with half of it, it does not.
    assert straight_through_gumbel(logits, 1.0, noise).tolist() == [1.0, 1.0]
    assert straight_through_gumbel(logits, 1.0, noise, scale=0.5).tolist() == [1.0, 0.0]


def test_the_official_temperature_restarts_every_epoch_and_barely_moves(banks):
    """Its step counter restarts every epoch (a local copy is incremented), so tau stays near 1."""
    train, _ = banks
    method = make("liteeval", train, coarse_hidden=4, fine_hidden=8, tau_schedule="official")
    taus, step = [], 0
    for epoch in range(3):
        method.on_epoch_start(epoch, 3)
        for _ in range(150):
            method.on_step(step, 450)
            taus.append(method.tau)
            step += 1
    assert taus[0] == taus[150] == taus[300] == 1.0  # back to 1 at every epoch's first step
    assert min(taus) == pytest.approx(math.exp(-1e-4 * 149)) and min(taus) > 0.98


def test_the_official_penalty_weight_grows_within_each_epoch(banks):
    train, _ = banks
    method = make("liteeval", train, coarse_hidden=4, fine_hidden=8, lam=1.0, gamma=0.1, lam_schedule="official")
    method.on_epoch_start(0, 2)
    method.on_step(0, 400)
    assert method.lam == pytest.approx(1.0)
    method.on_step(199, 400)
    assert method.lam == pytest.approx(2 - math.exp(-199 / 500))  # about 1.33 after 200 steps
    method.on_epoch_start(1, 2)
    method.on_step(200, 400)
    assert method.lam == pytest.approx(1.0)
    assert make("liteeval", train, coarse_hidden=4, fine_hidden=8).lam == 2.0  # the paper's lambda, constant


def test_dropout_can_sit_on_the_classifier_alone(banks):
    """`everywhere` drops the coarse and fine inputs too (they feed the gate and both LSTMs)."""
    train, _ = banks
    batch = next(train.batches(8, make("liteeval", train, coarse_hidden=4, fine_hidden=8).sampler(True), train=True,
                               seed=0))
    gates = {}
    for place in ("everywhere", "classifier"):
        torch.manual_seed(0)
        method = make("liteeval", train, coarse_hidden=4, fine_hidden=8, dropout=0.9, dropout_at=place)
        method.train()
        torch.manual_seed(1)
        gates[place] = [method(batch).extras["gate_logits"][:, 0] for _ in range(2)]
    # The gate's first step reads only the coarse input (the fine state starts at zero, and later
    # steps follow random decisions): with input dropout two passes differ there already.
    assert not torch.allclose(gates["everywhere"][0], gates["everywhere"][1])
    assert torch.allclose(gates["classifier"][0], gates["classifier"][1])


# ---------------------------------------------------------------------------- LiteEval-RL's reward
def gate_only_usage(train, seed: int, penalty: str, steps: int = 40) -> float:
    """Everything but the gate frozen, lambda 20 and gamma 0 (the reward says: never fire)."""
    torch.manual_seed(seed)
    method = make("liteeval_rl", train, coarse_hidden=8, fine_hidden=16, dropout=0.0, lam=20.0, gamma=0.0,
                  penalty=penalty)
    for name, param in method.named_parameters():
        param.requires_grad_(name.startswith("gate."))
    optimiser = torch.optim.Adam(method.gate.parameters(), lr=0.05)
    batch = next(train.batches(32, method.sampler(train=True), train=True, seed=seed))
    usage = []
    for _ in range(steps):
        method.train()
        loss, logs = method.loss(method(batch), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        usage.append(logs["fine_usage"])
    return sum(usage[-5:]) / 5


def test_a_per_video_reward_teaches_the_gate_and_a_batch_one_does_not(banks):
    """Found: with the batch-mean usage term every video of a batch shares it, so REINFORCE gets no
    per-video credit for reading less; the per-video term (eq. 5 as written, now the default)
    does. Four seeds each."""
    train, _ = banks
    assert resolve_method("liteeval_rl").Hparams().penalty == "video"
    per_video = [gate_only_usage(train, seed, "video") for seed in range(4)]
    batch = [gate_only_usage(train, seed, "batch") for seed in range(4)]
    assert max(per_video) < 0.05, per_video
    assert max(batch) > 0.25 and sum(batch) > 4 * sum(per_video), (batch, per_video)


def test_the_policy_gradient_can_train_the_gate_alone(banks):
    """policy_through = "gate": the REINFORCE term reaches the gate and nothing the gate reads."""
    train, _ = banks
    batch = next(train.batches(16, resolve_method("liteeval_rl").sampler(None, True), train=True, seed=0))
    grads = {}
    for through in ("network", "gate"):
        torch.manual_seed(0)
        method = make("liteeval_rl", train, coarse_hidden=8, fine_hidden=16, policy_through=through,
                      entropy_weight=0.1)
        method.train()
        out = method(batch)
        _, logs = method.loss(out, batch)
        gate_logits = out.extras["gate_logits"]
        (gate_logits.sum()).backward()  # what the policy term's gradient can reach
        grads[through] = method.coarse_cell.weight_ih.grad
        assert method.gate.weight.grad.abs().sum() > 0 and "entropy" in logs
    assert grads["network"] is not None and grads["network"].abs().sum() > 0
    assert grads["gate"] is None or not grads["gate"].any()  # the coarse LSTM is out of the policy's reach


def test_a_value_baseline_learns_each_videos_reward_from_the_coarse_stream_alone(banks):
    """reward_baseline = "value": the estimate is fitted to the reward, the decisions cannot reach
    it (it reads the coarse LSTM, which never sees the fine stream), and evaluation has no use for it."""
    train, _ = banks
    torch.manual_seed(0)
    method = make("liteeval_rl", train, coarse_hidden=8, fine_hidden=16, reward_baseline="value")
    assert make("liteeval_rl", train, coarse_hidden=8, fine_hidden=16).value is None  # the default: moving
    batch = next(train.batches(32, method.sampler(train=True), train=True, seed=0))
    optimiser = torch.optim.Adam(method.value.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        method.train()
        out = method(batch)
        # The estimate's input carries no gradient path back to the gate or the fine LSTM.
        grad = torch.autograd.grad(out.extras["coarse_last"].sum(), method.fine_cell.weight_hh, allow_unused=True)[0]
        assert grad is None or not grad.any()
        loss, logs = method.loss(out, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(logs["value_loss"])
    assert losses[-1] < 0.2 * losses[0], losses
    assert "value" not in method.cost_modules()
