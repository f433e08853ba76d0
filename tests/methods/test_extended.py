"""The extended suite's mechanisms, beyond the conformance check every method gets."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from datasets.loading.bank import FeatureBank
from methods import resolve_method
from methods.frameexit import ORDER, ExitGate
from methods.losses import masked_cross_entropy


@pytest.fixture(scope="module")
def bank(tiny_store):
    return FeatureBank(tiny_store, "test", device="cpu", show_progress=False)


def test_frameexit_official_exits_on_confidence_first_then_on_gates_over_two_steps(bank):
    """The released model: an MLP per frame, max-pooled; step 0 exits on its classifier's confidence
    (no gate), step t >= 1 on a gate over [z_t, z_{t-1}]; only step 0's and the exit step's
    classifiers run. Fails on the first, linear reading (no MLP, a linear gate on z_t at every step)."""
    torch.manual_seed(0)
    method = resolve_method("frameexit")(bank.num_classes, {"fine": bank.dim("fine")}).eval()
    assert method.hp.architecture == "official" and len(method.gates) == len(ORDER) - 2
    with torch.no_grad():
        method.classifiers[0].weight.zero_()
        method.classifiers[0].bias.zero_()  # uniform probabilities: not confident at step 0
        for gate in method.gates:
            gate.linear.weight.zero_()
            gate.linear.bias.fill_(-10.0)  # never exit...
        method.gates[1].linear.bias.fill_(10.0)  # ...except at step 2 (the gates start at step 1)
    meter = bank.new_meter()
    batch = next(bank.batches(16, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        out = method(batch)
        assert out.step_counts["mlp"].tolist() == [3] * 16 and out.step_counts["gate"].tolist() == [2] * 16
        assert out.step_counts["classifier"].tolist() == [2] * 16  # step 0's and the exit step's
        for row in range(16):
            read = set(meter.frames_of("fine", int(batch.index[row])).tolist())
            assert read == {int(batch.frames[row, p]) for p in ORDER[:3]}
        pooled = torch.stack([method.mlp(batch.read("fine")[:, p]) for p in ORDER[:3]], 1).amax(1)
        assert torch.allclose(out.scores, method.classifiers[2](pooled).softmax(-1), atol=1e-5)
        # The gate reads the previous pooled state too.
        gate, z = ExitGate(8).eval(), torch.randn(4, 8)
        assert not torch.allclose(gate(z, z), gate(z, torch.randn(4, 8)))
        # A confident first frame exits at once, with no gate run.
        method.classifiers[0].bias.fill_(-20.0)
        method.classifiers[0].bias[0] = 20.0
        out = method(next(bank.batches(16, method.sampler(train=False))))
        assert out.step_counts["mlp"].tolist() == [1] * 16 and out.step_counts["gate"].tolist() == [0] * 16
        assert out.step_counts["classifier"].tolist() == [1] * 16


def test_frameexit_linear_reading_visits_the_paper_order_and_stops_at_the_first_exit(bank):
    torch.manual_seed(0)
    method = resolve_method("frameexit")(bank.num_classes, {"fine": bank.dim("fine")}, architecture="linear").eval()
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


def test_scsampler_suite_reading_reads_the_k_most_salient_of_every_frame(bank):
    torch.manual_seed(0)
    dims = {s: bank.dim(s) for s in bank.streams}
    method = resolve_method("scsampler")(bank.num_classes, dims, frames=4, reading="suite").eval()
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        method(batch)
        salience = method.scorer(batch.read("coarse")).softmax(-1).amax(-1).masked_fill(~batch.mask, -1.0)
    for row in range(8):
        length = int(batch.lengths[row])
        expected = set(salience[row, :length].topk(min(4, length)).indices.tolist())
        assert set(meter.frames_of("fine", int(batch.index[row])).tolist()) == expected


def test_scsampler_official_takes_the_top_k_of_16_uniform_candidates_by_largest_logit(bank):
    """AR-Net's re-implementation: 16 uniform candidates, the K with the largest scorer logit, the
    chosen frames' logits averaged. Fails on the first reading (every frame a candidate, largest
    probability, probabilities averaged)."""
    torch.manual_seed(0)
    dims = {s: bank.dim(s) for s in bank.streams}
    method = resolve_method("scsampler")(bank.num_classes, dims, frames=4).eval()
    assert method.hp.reading == "official" and method.hp.candidates == 16
    assert method.sampler(train=False).num_steps(1000) == 16
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        out = method(batch)
        salience = method.scorer(batch.read("coarse")).amax(-1)  # (B, 16) largest logit
    assert out.step_counts["scorer"].tolist() == [16] * 8 and out.step_counts["classifier"].tolist() == [4] * 8
    tops = salience.topk(4, dim=1).indices
    for row in range(8):
        expected = {int(batch.frames[row, p]) for p in tops[row]}
        assert set(meter.frames_of("fine", int(batch.index[row])).tolist()) == expected
    every = batch.read("fine")  # (after the meter's check: the test reads every candidate)
    for row in range(8):
        with torch.no_grad():
            averaged = method.classifier(every[row, tops[row]]).mean(0).softmax(-1)
        assert torch.allclose(out.scores[row], averaged, atol=1e-6)


def test_scsampler_official_classifier_learns_on_every_candidate_not_the_picks(bank):
    """Trained separately, as in the paper: the classifier's loss covers all 16 candidates, so the
    scorer's choice cannot change what the classifier learns."""
    torch.manual_seed(0)
    dims = {s: bank.dim(s) for s in bank.streams}
    method = resolve_method("scsampler")(bank.num_classes, dims, frames=4).train()
    batch = next(bank.batches(8, method.sampler(train=True), train=True, generator=torch.Generator().manual_seed(0)))
    out = method(batch)
    assert out.extras["logits"].shape[1] == 16 and bool(out.extras["valid"].all())
    classifier_ce = masked_cross_entropy(out.extras["logits"], batch.labels, out.extras["valid"])
    # No gradient path joins the two networks: the classifier's loss never reaches the scorer.
    grads = torch.autograd.grad(classifier_ce, list(method.scorer.parameters()), allow_unused=True)
    assert all(g is None for g in grads)


def test_ocsampler_plackett_luce_probabilities_sum_to_one_over_ordered_draws():
    import itertools

    from methods.ocsampler import plackett_luce_log_prob

    logits = torch.tensor([[0.3, -1.0, 2.0, 0.5, 0.0]])
    candidates = torch.tensor([[True, True, True, True, False]])  # the last frame is padding
    total = 0.0
    for pair in itertools.permutations(range(4), 2):
        chosen = torch.tensor([pair])
        total += float(plackett_luce_log_prob(logits, chosen, torch.ones(1, 2, dtype=torch.bool), candidates).exp())
    assert total == pytest.approx(1.0, abs=1e-6)


def test_ocsampler_suite_reading_takes_the_n_most_probable_frames_at_evaluation(bank):
    torch.manual_seed(0)
    dims = {s: bank.dim(s) for s in bank.streams}
    method = resolve_method("ocsampler")(bank.num_classes, dims, frames=3, reading="suite").eval()
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        out = method(batch)
        logits = method.skim(batch.read("coarse")).squeeze(-1)
    assert out.step_counts["classifier"].tolist() == [min(3, int(n)) for n in batch.lengths]
    for row in range(8):
        length = int(batch.lengths[row])
        expected = set(logits[row, :length].topk(min(3, length)).indices.tolist())
        assert set(meter.frames_of("fine", int(batch.index[row])).tolist()) == expected


@pytest.mark.parametrize("n, k", [(5, 2), (6, 3), (4, 4)])
def test_ocsampler_set_probabilities_sum_to_one_over_every_subset(n, k):
    import itertools

    from methods.ocsampler import set_log_prob

    probs = torch.tensor([[0.05, 0.3, 0.15, 0.2, 0.1, 0.2][:n]], dtype=torch.float64)
    probs = probs / probs.sum()
    total = sum(float(set_log_prob(probs, torch.tensor([subset])).exp())
                for subset in itertools.combinations(range(n), k))
    assert total == pytest.approx(1.0, abs=1e-6)


def test_ocsampler_tsn_baseline_is_one_candidate_per_segment():
    from methods.ocsampler import tsn_clip

    clip = tsn_clip(10, 6, 3, torch.Generator().manual_seed(0))
    assert clip.tolist() == [[0, 1, 3, 5, 7, 9]] * 3  # the release's 10-to-6: segments of one candidate
    wide = tsn_clip(10, 2, 50, torch.Generator().manual_seed(0))
    assert set(wide[:, 0].tolist()) == set(range(5)) and set(wide[:, 1].tolist()) == set(range(5, 10))


def test_ocsampler_official_reads_the_6_most_probable_of_10_uniform_candidates(bank):
    """The release's 10-to-6 at evaluation: the skim scores 10 uniform candidates, the 6 most
    probable are read and max-pooled by the frozen head. Fails on the first reading (every frame
    a candidate, 10 kept, probabilities averaged)."""
    torch.manual_seed(0)
    dims = {s: bank.dim(s) for s in bank.streams}
    method = resolve_method("ocsampler")(bank.num_classes, dims).eval()
    assert (method.hp.reading, method.hp.candidates, method.hp.frames) == ("official", 10, 6)
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
    assert batch.mask.shape[1] == 10
    with torch.no_grad():
        out = method(batch)
        logits = method.skim(batch.read("coarse"))
    assert out.step_counts["skim"].tolist() == [10] * 8 and out.step_counts["mlp"].tolist() == [6] * 8
    assert out.step_counts["classifier"].tolist() == [1] * 8
    tops = logits.topk(6, dim=1).indices.sort(dim=1).values
    for row in range(8):
        assert set(meter.frames_of("fine", int(batch.index[row])).tolist()) == {
            int(batch.frames[row, p]) for p in tops[row]}
    every = batch.read("fine")
    with torch.no_grad():
        for row in range(8):
            expected = method.classifier(every[row:row + 1, tops[row]]).softmax(-1)[0]
            assert torch.allclose(out.scores[row], expected, atol=1e-5)


def test_ocsampler_official_skim_sees_its_neighbours(bank):
    """Temporal context: changing one candidate's coarse feature moves its neighbours' logits
    (the temporal shift), but not a candidate two places away. A per-frame skim fails this."""
    torch.manual_seed(0)
    dims = {s: bank.dim(s) for s in bank.streams}
    skim = resolve_method("ocsampler")(bank.num_classes, dims).eval().skim
    features = torch.randn(1, 10, dims["coarse"])
    changed = features.clone()
    changed[0, 4] += 3.0
    with torch.no_grad():
        moved = (skim(changed) - skim(features)).abs()[0]
    assert moved[3] > 1e-6 and moved[5] > 1e-6 and moved[4] > 1e-6
    assert moved[[0, 1, 2, 6, 7, 8, 9]].max() < 1e-6


def test_ocsampler_official_pretrains_the_classifier_then_trains_the_sampler_against_it_frozen(bank):
    """Two stages: first the classifier alone (the skim idle), then the skim alone with a label-free
    reward, the classifier frozen (no gradient, BatchNorm statistics unchanged)."""
    torch.manual_seed(0)
    dims = {s: bank.dim(s) for s in bank.streams}
    method = resolve_method("ocsampler")(bank.num_classes, dims).train()
    assert method.phase_starts(100) == (50,)
    batch = next(bank.batches(8, method.sampler(train=True), train=True, generator=torch.Generator().manual_seed(0)))

    def gradients(step):
        method.train()
        method.zero_grad(set_to_none=True)
        method.on_step(step, 100)
        output = method(batch)
        loss, logs = method.loss(output, batch)
        loss.backward()
        return ({name: p.grad is not None for name, p in method.named_parameters()}, output, logs)

    first, _, logs = gradients(0)
    assert "pretrain_ce" in logs
    assert all(has for name, has in first.items() if name.startswith("classifier."))
    assert not any(has for name, has in first.items() if name.startswith("skim."))
    statistics = {k: v.clone() for k, v in method.classifier.state_dict().items()}
    second, output, logs = gradients(50)
    assert not any(has for name, has in second.items() if name.startswith("classifier."))
    assert all(has for name, has in second.items() if name.startswith("skim."))
    for key, value in method.classifier.state_dict().items():
        assert torch.equal(value, statistics[key]), key  # frozen, BatchNorm included
    assert output.extras["log_prob"].shape == (8,) and "entropy" in logs
    # Label-free: the reward is the top-class confidence's gain over the TSN clip, whatever the labels.
    rewards = []
    for targets in (batch.targets, batch.targets.roll(1, dims=1)):
        method._generator = torch.Generator().manual_seed(1)
        torch.manual_seed(1)  # the skim's dropout
        with torch.no_grad():
            rewards.append(method(dataclasses.replace(batch, targets=targets)).extras["reward"])
    assert torch.equal(rewards[0], rewards[1]) and bool((rewards[0] != 0).any())


@pytest.mark.parametrize("action, visits, fine", [("fine", list(range(16)), True),
                                                   ("skip2", list(range(0, 16, 2)), False),
                                                   ("skip4", list(range(0, 16, 4)), False),
                                                   ("coarse", list(range(16)), False)])
def test_arnet_actions_decide_what_is_read_and_run(bank, action, visits, fine):
    """The first reading: nothing read or run at skipped frames."""
    from methods.arnet import ACTIONS

    torch.manual_seed(0)
    method = resolve_method("arnet")(bank.num_classes, {s: bank.dim(s) for s in bank.streams}, reading="suite").eval()
    with torch.no_grad():
        method.policy.weight.zero_()
        method.policy.bias.fill_(-10.0)
        method.policy.bias[ACTIONS.index(action)] = 10.0  # always this action
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        out = method(batch)
    assert out.step_counts["policy"].tolist() == [len(visits)] * 8
    assert out.step_counts["fine_classifier"].tolist() == [len(visits) if fine else 0] * 8
    for row in range(8):
        video = int(batch.index[row])
        expected = {int(batch.frames[row, t]) for t in visits}
        assert set(meter.frames_of("coarse", video).tolist()) == expected
        assert set(meter.frames_of("fine", video).tolist()) == (expected if fine else set())
    if action.startswith("skip"):  # nothing processed: no prediction, uniform scores
        assert torch.allclose(out.scores, torch.full_like(out.scores, 1 / bank.num_classes))


@pytest.mark.parametrize("action", ["skip2", "coarse"])
def test_arnet_official_policy_runs_on_every_frame_and_repeats_skips(bank, action):
    """The authors' code: the coarse classifier reads the policy's state (lite_fc on h); the
    policy (and its MobileNetV2) runs on all 16 frames; a skipped frame repeats the skip action, so
    the balance term counts it; skipping saves only the fine backbone. Fails on the first reading."""
    from methods.arnet import ACTIONS

    torch.manual_seed(0)
    method = resolve_method("arnet")(bank.num_classes, {s: bank.dim(s) for s in bank.streams}).eval()
    assert method.hp.reading == "official" and method.coarse_classifier.in_features == method.hp.hidden
    with torch.no_grad():
        method.policy.weight.zero_()
        method.policy.bias.fill_(-10.0)
        method.policy.bias[ACTIONS.index(action)] = 10.0  # always this action (where it decides)
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        out = method(batch)
    frames = method.hp.frames
    assert out.step_counts["policy"].tolist() == [frames] * 8  # every frame, skipped ones included
    assert out.step_counts["fine_classifier"].tolist() == [0] * 8
    for row in range(8):
        assert set(meter.frames_of("coarse", int(batch.index[row])).tolist()) == set(batch.frames[row].tolist())
    usage = out.extras["usage"]
    assert usage.sum().item() == 8 * frames and usage[ACTIONS.index(action)].item() == 8 * frames
    if action == "coarse":  # the prediction is lite_fc on the last state, averaged over the frames
        assert out.step_counts["coarse_classifier"].tolist() == [frames] * 8


def test_arnet_training_reads_every_visited_fine_frame_evaluation_only_the_chosen(bank):
    """The straight-through gradient of "fine" needs the fine answer where "coarse" was chosen."""
    from methods.arnet import ACTIONS

    torch.manual_seed(0)
    method = resolve_method("arnet")(bank.num_classes, {s: bank.dim(s) for s in bank.streams})
    with torch.no_grad():
        method.policy.weight.zero_()
        method.policy.bias.fill_(-30.0)
        method.policy.bias[ACTIONS.index("coarse")] = 30.0  # never "fine"
    for training, expected in ((True, "every visited"), (False, "none")):
        method.train(training)
        meter = bank.new_meter()
        batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
        method(batch)
        for row in range(8):
            video = int(batch.index[row])
            read = set(meter.frames_of("fine", video).tolist())
            assert read == (set(meter.frames_of("coarse", video).tolist()) if expected == "every visited" else set())


def test_arnet_loss_is_the_official_accuracy_cost_and_balance_terms(bank):
    """0.95 x CE + 0.05 x (fine GMACs per sampled position + 3 x |usage - uniform usage|), as the
    authors' training script has it; the balance term is what keeps the fine action in use."""
    from methods.arnet import ACTIONS

    torch.manual_seed(0)
    method = resolve_method("arnet")(bank.num_classes, {s: bank.dim(s) for s in bank.streams})
    method.frame_gmacs = {"coarse": 0.1, "fine": 8.0}
    with torch.no_grad():
        method.policy.weight.zero_()
        method.policy.bias.fill_(-30.0)
        method.policy.bias[ACTIONS.index("coarse")] = 30.0  # every decision: coarse only
    batch = next(bank.batches(8, method.sampler(train=True), labels=True))
    out = method.train()(batch)
    loss, logged = method.loss(out, batch)
    assert logged["gmacs_per_position"] == pytest.approx(0.0, abs=1e-4)  # no fine frame chosen
    collapsed = torch.linalg.vector_norm(torch.tensor([0.0, 1, 0, 0, 0]) - 0.2).item()
    assert logged["balance"] == pytest.approx(collapsed, rel=1e-3)
    assert float(loss.detach()) == pytest.approx(0.95 * logged["ce"] + 0.05 * 3.0 * collapsed, rel=1e-4)

    with torch.no_grad():  # every decision fine: the cost is the fine stream's per-frame GMACs
        method.policy.bias.fill_(-30.0)
        method.policy.bias[ACTIONS.index("fine")] = 30.0
    _, logged = method.loss(method(batch), batch)
    assert logged["gmacs_per_position"] == pytest.approx(8.0, rel=1e-3)

    # The balance term's gradient pushes the policy away from its favourite action towards the
    # ones it does not use (cross-entropy left out, so only the efficiency terms act).
    balance_only = resolve_method("arnet")(bank.num_classes, {s: bank.dim(s) for s in bank.streams}, accuracy=0.0)
    balance_only.frame_gmacs, balance_only.tau = method.frame_gmacs, 1.0
    with torch.no_grad():
        balance_only.policy.bias.zero_()
        balance_only.policy.bias[ACTIONS.index("coarse")] = 3.0
    loss, _ = balance_only.loss(balance_only.train()(batch), batch)
    loss.backward()
    grad = balance_only.policy.bias.grad
    assert float(grad[ACTIONS.index("coarse")]) > 0 > float(grad[ACTIONS.index("skip1")])


@pytest.mark.parametrize("reading", ["official", "suite"])
def test_arnet_warms_up_its_classifiers_on_every_frame_before_the_policy_trains(bank, reading):
    """As the original trains its base models before the policy: no policy in the first share (and,
    officially, no coarse classifier either: lite_fc is part of the policy network)."""
    torch.manual_seed(0)
    method = resolve_method("arnet")(bank.num_classes, {s: bank.dim(s) for s in bank.streams},
                                     reading=reading).train()
    method.on_step(0, 60)  # 1/6 of 60 steps = 10 warm-up steps
    assert method.warming_up and method.tau == pytest.approx(5.0)
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=True), meter=meter, labels=True))
    out = method(batch)
    assert out.step_counts["fine_classifier"].tolist() == batch.mask.sum(1).tolist()  # every sampled frame
    loss, _ = method.loss(out, batch)
    loss.backward()
    assert method.policy.weight.grad is None and method.cell.weight_ih.grad is None
    assert method.fine_classifier.weight.grad.any()
    assert (method.coarse_classifier.weight.grad is None) == (reading == "official")
    method.on_step(10, 60)  # the joint phase: the policy decides, the temperature starts annealing
    assert not method.warming_up and method.tau == pytest.approx(5.0)
    method.on_step(59, 60)
    assert method.tau == pytest.approx(0.5)
    method.eval()
    method.on_step(0, 60)
    with torch.no_grad():
        assert "warmup_fine_logits" not in method(batch).extras  # evaluation always runs the policy


@pytest.mark.parametrize("bias, steps", [(-10.0, 1), (10.0, 10)])
def test_adaframe_stops_on_its_utility_and_reads_only_what_it_visits(bank, bias, steps):
    torch.manual_seed(0)
    method = resolve_method("adaframe")(bank.num_classes, {s: bank.dim(s) for s in bank.streams}).eval()
    with torch.no_grad():
        method.utility.weight.zero_()
        method.utility.bias.fill_(bias)  # utility below the threshold: stop after one read
    meter = bank.new_meter()
    batch = next(bank.batches(8, method.sampler(train=False), meter=meter))
    with torch.no_grad():
        out = method(batch)
    assert out.step_counts["cell"].tolist() == [steps] * 8
    # The readout and the locator also run once before the first read, to place it (counted, and so charged).
    assert out.step_counts["readout"].tolist() == out.step_counts["locator"].tolist() == [steps + 1] * 8
    visited = out.diagnostics["visited_frames"]
    for row in range(8):
        video = int(batch.index[row])
        assert set(meter.frames_of("fine", video).tolist()) == {int(p) for p in visited[row] if p >= 0}
        assert set(meter.frames_of("coarse", video).tolist()) == set(batch.frames[row].tolist())  # the memory
