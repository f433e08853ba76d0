"""The fused recurrences compute what stepping nn.LSTMCell computes: outputs and gradients.

The fast paths (methods/recurrent.py, LiteEval's training forward, the LSTM baseline) are each
compared with a plain step-by-step reference on the same weights and inputs, within 1e-5; and
the costs the harness counts are still those of the cells (ptflops on nn.LSTMCell).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.measurement.costs import step_costs
from datasets.loading.bank import FeatureBank
from methods import resolve_method
from methods.liteeval import embed_frames
from methods.recurrent import cell_states, fused_lstm, input_projection, lstm_update, product

TOL = {"atol": 1e-5, "rtol": 1e-5}


def stepped(cell: nn.LSTMCell, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: the cell called once per step from zeros; (h, c) of every step."""
    h = c = x.new_zeros(x.shape[0], cell.hidden_size)
    hs, cs = [], []
    for t in range(x.shape[1]):
        h, c = cell(x[:, t], (h, c))
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, 1), torch.stack(cs, 1)


def grads(loss: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, tensors, allow_unused=True, materialize_grads=True))


def test_fused_sequence_and_its_cell_states_equal_the_stepped_cell():
    torch.manual_seed(0)
    cell = nn.LSTMCell(12, 8)
    x = torch.randn(5, 9, 12, requires_grad=True)
    weight = torch.randn(5, 9, 8)
    h_ref, c_ref = stepped(cell, x)
    h = fused_lstm(cell, x)
    c = cell_states(cell, x, h)
    torch.testing.assert_close(h, h_ref, **TOL)
    torch.testing.assert_close(c, c_ref, **TOL)
    params = (x, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    # A loss on both h and c: gradients through the fused kernel and through the recomputed cells.
    expected = grads(((h_ref + c_ref) * weight).sum(), *params)
    got = grads(((h + c) * weight).sum(), *params)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, **TOL)


def test_projected_update_equals_one_cell_step():
    torch.manual_seed(1)
    cell = nn.LSTMCell(10, 6)
    coarse, fine = torch.randn(4, 3, requires_grad=True), torch.randn(4, 7)  # the cell's input = [coarse, fine]
    h, c = torch.randn(4, 6, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    h_ref, c_ref = cell(torch.cat([coarse, fine], 1), (h, c))
    h_new, c_new = lstm_update(cell, input_projection(cell, coarse, fine), h, c)
    torch.testing.assert_close(h_new, h_ref, **TOL)
    torch.testing.assert_close(c_new, c_ref, **TOL)
    params = (coarse, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih)
    for a, b in zip(grads((h_new * 2 + c_new).sum(), *params), grads((h_ref * 2 + c_ref).sum(), *params)):
        torch.testing.assert_close(a, b, **TOL)
    with pytest.raises(ValueError, match="add up to 3 features, the cell takes 10"):
        input_projection(cell, coarse)


def reference_train_forward(method, batch, noise):
    """LiteEval's training forward as the equations read, one nn.LSTMCell call per step (the
    code before the fused path), with the given decision noise. Returns (logits, decisions,
    gate logits)."""
    coarse = embed_frames(method.embed, batch.read("coarse"), batch.mask)
    fine = embed_frames(method.fine_embedding, batch.read("fine"), batch.mask)
    b, steps = batch.mask.shape
    valid = batch.mask.to(coarse.dtype)
    hc, cc, hf, cf = method._init_state(b, coarse.device)
    decisions, gate_logits = [], []
    for t in range(steps):
        x, keep = coarse[:, t], valid[:, t : t + 1]
        gate_in = torch.cat([x, hf, cf], dim=1)
        logits = method.gate(gate_in.detach() if method.gate_inputs_detached() else gate_in)
        fire = method.decide(logits, noise[t]) * valid[:, t]
        hc_new, cc_new = method.coarse_cell(x, (hc, cc))
        hc, cc = keep * hc_new + (1 - keep) * hc, keep * cc_new + (1 - keep) * cc
        hf_new, cf_new = method.fine_cell(torch.cat([x, fine[:, t]], dim=1), (hf, cf))
        hf_skip, cf_skip = method._skip_state(hc, hf), method._skip_state(cc, cf)
        f = fire.unsqueeze(1)
        hf_next, cf_next = f * hf_new + (1 - f) * hf_skip, f * cf_new + (1 - f) * cf_skip
        hf, cf = keep * hf_next + (1 - keep) * hf, keep * cf_next + (1 - keep) * cf
        decisions.append(fire)
        gate_logits.append(logits)
    return method.classifier(hf), torch.stack(decisions, 1), torch.stack(gate_logits, 1)


SHARED_SETTINGS = [{}, {"coarse_embed": 12}, {"coarse_embed": 12, "fine_embed": 10},
                   {"coarse_embed": 12, "embed_style": "linear"}, {"sync": False}, {"penalty": "batch"}]


@pytest.mark.parametrize("name, hparams", [(name, hp) for name in ("liteeval", "liteeval_rl") for hp in SHARED_SETTINGS]
                         + [("liteeval_rl", {"policy_through": "network"})])
def test_liteeval_training_forward_equals_the_stepped_equations(tiny_store, name, hparams):
    bank = FeatureBank(tiny_store, "train", device="cpu", show_progress=False)
    torch.manual_seed(2)
    method = resolve_method(name)(bank.num_classes, {s: bank.dim(s) for s in bank.streams}, coarse_hidden=8,
                                  fine_hidden=16, dropout=0.0, **hparams)
    method.train()
    method.on_epoch_start(3, 10)
    batch = next(bank.batches(16, method.sampler(train=True), train=True, seed=0))
    assert not batch.mask.all()  # videos of several lengths: padded steps are part of the check
    steps = batch.mask.shape[1]

    torch.manual_seed(5)
    noise = method.decision_noise(steps, batch.size, torch.device("cpu"))
    torch.manual_seed(5)
    out = method(batch)  # draws the same noise first
    logits_ref, decisions_ref, gates_ref = reference_train_forward(method, batch, noise)
    torch.testing.assert_close(out.extras["logits"], logits_ref, **TOL)
    assert torch.equal(out.extras["decisions"].detach(), decisions_ref.detach())
    assert 0 < decisions_ref.sum() < batch.mask.sum()  # both kinds of steps occur
    # Gate logits of padded steps (after a video's end) are never used, and may differ.
    torch.testing.assert_close(out.extras["gate_logits"][batch.mask], gates_ref[batch.mask], **TOL)

    params = [p for p in method.parameters() if p.requires_grad]
    loss, _ = method.loss(out, batch)
    got = grads(loss, *params)
    if name == "liteeval_rl":  # its loss updates a moving-average baseline: give the reference the same one
        method.baseline.fill_(float("nan"))
    ref_out = type(out)(scores=logits_ref.softmax(-1), step_counts={}, extras={
        "logits": logits_ref, "decisions": decisions_ref, "gate_logits": gates_ref,
        "valid": batch.mask.float()})
    loss_ref, _ = method.loss(ref_out, batch)
    # LiteEval-RL's policy term sums each video's T log-probabilities (about -100 here) times
    # advantages of unit spread, which nearly cancel: the gate's products summed in another order
    # (one product for [W_hh; W_gh]) move it by a few 1e-5 in absolute terms.
    torch.testing.assert_close(loss, loss_ref, rtol=TOL["rtol"], atol=1e-4)
    for param, a, b in zip(params, got, grads(loss_ref, *params)):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, p=param: f"{p.shape}: {m}")


def test_lstm_baseline_equals_the_stepped_cell(tiny_store):
    bank = FeatureBank(tiny_store, "train", device="cpu", show_progress=False)
    torch.manual_seed(3)
    method = resolve_method("lstm")(bank.num_classes, {"fine": bank.dim("fine")}, hidden=12, dropout=0.0)
    batch = next(bank.batches(16, method.sampler(train=True), train=True, seed=0))
    out = method(batch)
    h_ref, _ = stepped(method.cell, batch.read("fine"))
    logits_ref = method.classifier(h_ref[:, -1])  # 25 uniform frames: every video has every step
    torch.testing.assert_close(out.extras["logits"], logits_ref, **TOL)
    params = list(method.parameters())
    for a, b in zip(grads(out.extras["logits"].logsumexp(1).sum(), *params),
                    grads(logits_ref.logsumexp(1).sum(), *params)):
        torch.testing.assert_close(a, b, **TOL)


def test_counted_costs_are_the_cells():
    """The fused paths changed nothing the cost model sees: ptflops counts the nn.LSTMCells."""
    liteeval = resolve_method("liteeval")(40, {"coarse": 128, "fine": 512}, coarse_hidden=64, fine_hidden=512,
                                          coarse_embed=512, fine_embed=0)
    costs = step_costs(liteeval)
    assert costs["coarse_embed"] == pytest.approx(128 * 512 / 1e9, rel=0.05)  # the Linear, plus two small BNs
    assert "fine_embed" not in costs
    embedded = step_costs(resolve_method("liteeval")(40, {"coarse": 128, "fine": 512}, fine_embed=256))
    assert embedded["fine_embed"] == pytest.approx(512 * 256 / 1e9, rel=0.05)
    assert costs["coarse_cell"] == pytest.approx(4 * (512 * 64 + 64 * 64) / 1e9, rel=0.01)
    assert costs["fine_cell"] == pytest.approx(4 * ((512 + 512) * 512 + 512 * 512) / 1e9, rel=0.01)
    assert costs["gate"] == pytest.approx((512 + 2 * 512) * 2 / 1e9, rel=0.01)
    lstm = resolve_method("lstm")(40, {"fine": 512}, hidden=512)
    assert step_costs(lstm)["lstm_cell"] == pytest.approx(4 * (512 * 512 + 512 * 512) / 1e9, rel=0.01)


def test_row_sparse_backward_skips_only_exact_zero_rows():
    torch.manual_seed(4)
    x = torch.randn(3, 4, 5, requires_grad=True)
    weight = torch.randn(6, 5, requires_grad=True)
    upstream = torch.randn(3, 4, 6)
    upstream[:, 1:] = 0  # 3 of 12 rows carry a gradient: the sparse path is taken
    dense = grads((product(x, weight) * upstream).sum(), x, weight)
    sparse = grads((product(x, weight, row_sparse=True) * upstream).sum(), x, weight)
    for a, b in zip(sparse, dense):
        torch.testing.assert_close(a, b, **TOL)
    assert sparse[0][:, 1:].abs().sum() == 0 and sparse[0][:, 0].abs().sum() > 0


def test_the_faster_dropout_draws_the_same_random_variable_as_nn_dropout():
    """methods/dropout.py: each unit kept with probability 1 - p and scaled by 1 / (1 - p), the
    gradient through the same mask, the identity in evaluation, deterministic under a seed."""
    from methods.dropout import Dropout

    layer = Dropout(0.3).train()
    x = torch.randn(64, 100, 128, requires_grad=True)
    torch.manual_seed(0)
    y = layer(x)
    kept = y.detach() != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # 819,200 draws: the standard error is 0.0005
    assert torch.allclose(y[kept], x[kept] / 0.7)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.7)
    torch.manual_seed(0)
    assert torch.equal(layer(x), y)
    assert torch.equal(layer.eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)


@pytest.mark.filterwarnings("ignore:Warning. Profiler clears events")  # torch's note on a second profile
@pytest.mark.parametrize("name", ["liteeval", "liteeval_rl"])
def test_the_fusion_ceiling_times_exactly_the_recurrences_products(tiny_store, name):
    """tests/perf/fusion_ceiling.py says what a fused loop kernel could save by timing the
    recurrence's matrix products alone; if GatedRecurrence's products change and that mirror
    does not follow, its figure would be wrong. Same operators, calls and FLOPs, forward and
    backward, on a captured training step."""
    from torch.profiler import ProfilerActivity, profile

    from tests.perf.fusion_ceiling import capture, loop_seconds, products_seconds

    _, calls, _, _ = capture(name, str(tiny_store), 1)

    def products(function) -> dict[str, tuple[int, int]]:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
            function(calls[0])
        return {e.key: (e.count, e.flops) for e in prof.key_averages()
                if e.key in ("aten::mm", "aten::addmm", "aten::addmv")}

    recurrence = products(loop_seconds)
    assert recurrence["aten::addmm"][0] == calls[0]["args"][0].shape[0] > 1  # one recurrent product per step
    assert products(products_seconds) == recurrence
