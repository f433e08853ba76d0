"""LiteEval's gated fine recurrence in training, with its backward pass written out.

In training LiteEval computes, at every step t and for every video (methods/liteeval.py):

    logits_t = gate_in_t + W_gh h_{t-1} + W_gc c_{t-1}                 (eq. 2; gate_in_t = W_gx x_t + b_g)
    B_t      = decision(logits_t, noise_t) * valid_t                    (straight-through Gumbel or Bernoulli)
    h', c'   = LSTM(fine_in_t + W_hh h_{t-1}, c_{t-1})                  (eq. 3; fine_in_t = W_ih [x_t, v_t] + b)
    h_t, c_t = B_t (h', c') + (1 - B_t) sync(hc_t, cc_t, h_{t-1}, c_{t-1})   (eq. 4 and section 2.1)

Left to autograd, each step is some thirty small operators, each with a graph node to record
and to walk back, for a few hundred steps per batch: most of a training step's time went to
that bookkeeping, not to arithmetic (docs/performance.md). ``GatedRecurrence`` runs the loop
without a graph and its backward by hand, and moves out of the loop everything that does not
depend on the step before:

* every decision rule is "fire where margin_t + offset_t > 0", margin_t = logit_1 - logit_0
  (softmax(logits)_1 = sigmoid(margin)): the offset is the scaled Gumbel difference (straight
  through: sigmoid((margin + noise) / tau) > 1/2), -logit(u) for a uniform draw u (Bernoulli:
  u < sigmoid(margin)) or +-inf for decisions given in advance, and -inf at padded steps;
* per step, one product gives the LSTM's recurrent part and the margin's h part
  (``[W_hh; w_1 - w_0]``), one more the margin's c part; the gate's two logits, the soft
  sample, the LSTM's derivative factors and the state differences the straight-through
  gradient needs are computed for all steps at once, before or after the loop;
* in the backward pass, the weight gradients are one product each over all steps, restricted
  to the rows that carry one (the fine LSTM's rows where the gate fired), and what the incoming
  gradient of the gate's logits sends back into the states is one product over all steps.

Where B_t = 1 the new state is the LSTM's exactly (``torch.where``), as evaluation computes it.
tests/methods/test_recurrent.py checks outputs and every gradient against ``nn.LSTMCell`` stepped by
autograd, for both decision rules, with and without synchronisation and detached gate inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

#: The decision rules: a straight-through Gumbel-softmax sample (LiteEval: hard forward, the soft
#: sample's gradient backward), a Bernoulli sample of the gate's probability (LiteEval-RL: no
#: gradient through the decision; the policy gradient reaches the gate through its logits), or
#: decisions given in advance as the noise (0/1; an oracle, or a test that forces a pattern).
RULES = ("straight_through", "bernoulli", "given")


@dataclass(frozen=True)
class Recurrence:
    """What does not change within a batch: the rule, its temperature, the coarse state's width
    (synchronisation copies it; 0: none) and whether the gate's state inputs are detached (their
    gradient does not flow back into the recurrence)."""

    rule: str
    tau: float = 1.0
    sync_units: int = 0
    gate_detached: bool = False

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown decision rule {self.rule!r}; one of {RULES}")


def decision_offsets(spec: Recurrence, noise: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(T, B): the step fires where margin + offset > 0 (see the module docstring)."""
    if spec.rule == "straight_through":
        offset = noise.clone()
    elif spec.rule == "bernoulli":
        offset = -torch.logit(noise.double()).float()  # u < sigmoid(m)  <=>  m - logit(u) > 0
    else:
        offset = torch.where(noise > 0, torch.inf, -torch.inf).to(noise.dtype)
    return offset.masked_fill(valid <= 0, -torch.inf)


class GatedRecurrence(torch.autograd.Function):
    """(states, decisions, gate logits), each (T, B, ...), from zero initial states.

    Inputs, time-major: ``fine_in`` (T, B, 4H), ``gate_in`` (T, B, 2), the coarse LSTM's ``hc``
    and ``cc`` (T, B, Dc), ``valid`` (T, B) 0/1, ``noise`` (T, B) (for the straight-through rule
    the scaled difference of the two Gumbel draws, class 1 minus class 0; for Bernoulli a
    uniform draw; for given decisions, the decisions), the weights ``w_hh`` (4H, H), ``w_gh``
    and ``w_gc`` (2, H), and the ``Recurrence``."""

    @staticmethod
    def forward(ctx: Any, fine_in: torch.Tensor, gate_in: torch.Tensor, hc: torch.Tensor, cc: torch.Tensor,
                valid: torch.Tensor, noise: torch.Tensor, w_hh: torch.Tensor, w_gh: torch.Tensor,
                w_gc: torch.Tensor, spec: Recurrence) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        steps, b, four_h = fine_in.shape
        h = four_h // 4
        units = spec.sync_units
        w_dh, w_dc = w_gh[1] - w_gh[0], w_gc[1] - w_gc[0]  # the margin's weights
        w_t = torch.cat([w_hh, w_dh.unsqueeze(0)], dim=0).t().contiguous()  # (H, 4H + 1)
        pre_in = torch.cat([fine_in, (gate_in[..., 1] - gate_in[..., 0]).unsqueeze(2)], dim=2)  # (T, B, 4H + 1)
        offsets = decision_offsets(spec, noise, valid)
        states, cells = fine_in.new_empty(steps, b, h), fine_in.new_empty(steps, b, h)
        acts = fine_in.new_empty(steps, b, four_h)  # sigmoid(i, f, o) and tanh(g), in PyTorch's gate order
        new_h, new_c = fine_in.new_empty(steps, b, h), fine_in.new_empty(steps, b, h)
        margins = fine_in.new_empty(steps, b)
        fired = torch.empty(steps, b, 1, dtype=torch.bool, device=fine_in.device)
        hf, cf = fine_in.new_zeros(b, h), fine_in.new_zeros(b, h)
        for t in range(steps):
            pre = torch.addmm(pre_in[t], hf, w_t)
            torch.addmv(pre[:, four_h], cf, w_dc, out=margins[t])
            torch.gt(margins[t] + offsets[t], 0, out=fired[t, :, 0])
            act = acts[t]
            torch.sigmoid(pre[:, :four_h], out=act)
            torch.tanh(pre[:, 2 * h:3 * h], out=act[:, 2 * h:3 * h])
            i, f, g, o = act.chunk(4, dim=1)
            c_new = torch.addcmul(f * cf, i, g, out=new_c[t])
            h_new = torch.mul(o, torch.tanh(c_new), out=new_h[t])
            fire = fired[t]
            hf = torch.where(fire, h_new, hf, out=states[t])
            cf = torch.where(fire, c_new, cf, out=cells[t])
            if units:  # where the gate did not fire, the first units come from the coarse LSTM
                torch.where(fire, h_new[:, :units], hc[t], out=hf[:, :units])
                torch.where(fire, c_new[:, :units], cc[t], out=cf[:, :units])
        # The gate's two logits, for all steps at once from the states each step read.
        previous_h = torch.cat([hf.new_zeros(1, b, h), states[:-1]], dim=0)
        previous_c = torch.cat([cf.new_zeros(1, b, h), cells[:-1]], dim=0)
        logits = gate_in + previous_h @ w_gh.t() + previous_c @ w_gc.t()
        decisions = fired.squeeze(2).to(fine_in.dtype)
        ctx.spec = spec
        ctx.save_for_backward(hc, cc, valid, noise, w_hh, w_gh, w_gc, previous_h, previous_c, acts, new_h, new_c,
                              margins, decisions)
        if spec.rule != "straight_through":
            ctx.mark_non_differentiable(decisions)  # a sample: the policy gradient goes through the logits
        return states, decisions, logits

    @staticmethod
    def backward(ctx: Any, d_states: torch.Tensor, d_decisions: torch.Tensor | None, d_logits: torch.Tensor | None):
        spec: Recurrence = ctx.spec
        (hc, cc, valid, noise, w_hh, w_gh, w_gc, previous_h, previous_c, acts, new_h, new_c, margins,
         decisions) = ctx.saved_tensors
        steps, b, h = new_h.shape
        four_h, units = 4 * h, spec.sync_units
        straight = spec.rule == "straight_through"
        # Everything that does not depend on the gradient coming back from later steps, at once.
        i, f, g, o = acts.chunk(4, dim=2)
        tanh_c = torch.tanh(new_c)
        through_h = o * (1 - tanh_c * tanh_c)  # d c' / d h' path: dc_total = dc' + dh' * through_h
        cell_factors = torch.cat([g * i * (1 - i), previous_c * f * (1 - f), i * (1 - g * g)], dim=2)
        out_factor = tanh_c * o * (1 - o)
        fire = decisions.unsqueeze(2)
        w_dh, w_dc = w_gh[1] - w_gh[0], w_gc[1] - w_gc[0]
        w_back = torch.cat([w_hh, w_dh.unsqueeze(0)], dim=0)  # (4H + 1, H)
        if straight:
            # The straight-through decision: d B_t / d margin = valid * s (1 - s) / tau, s the soft sample.
            soft = torch.sigmoid((margins + noise) / spec.tau)
            slope = valid * soft * (1 - soft) / spec.tau
            skip_h = torch.cat([hc, previous_h[..., units:]], dim=2) if units else previous_h
            skip_c = torch.cat([cc, previous_c[..., units:]], dim=2) if units else previous_c
            delta_h, delta_c = new_h - skip_h, new_c - skip_c  # what switching to the LSTM's state changes
            direct = (d_decisions if d_decisions is not None else torch.zeros_like(margins)) * slope
        # What the gate's logits' incoming gradient sends into the states it read, for every step.
        from_logits_h = from_logits_c = None
        if d_logits is not None and not spec.gate_detached:
            from_logits_h, from_logits_c = d_logits @ w_gh, d_logits @ w_gc
        d_pre = new_h.new_zeros(steps, b, four_h + 1)  # d(fine_in) and d(margin) side by side
        d_hc, d_cc = torch.zeros_like(hc), torch.zeros_like(cc)
        dh, dc = new_h.new_zeros(b, h), new_h.new_zeros(b, h)
        for t in range(steps - 1, -1, -1):
            dh = dh + d_states[t]
            row = d_pre[t]
            if straight:
                choice = torch.addcmul(delta_h[t] * dh, delta_c[t], dc).sum(1)
                torch.addcmul(direct[t], choice, slope[t], out=row[:, four_h])
            dh_new, dc_new = dh * fire[t], dc * fire[t]
            dc_total = torch.addcmul(dc_new, dh_new, through_h[t])
            torch.mul(dc_total.unsqueeze(1), cell_factors[t].view(b, 3, h), out=row[:, :3 * h].view(b, 3, h))
            torch.mul(dh_new, out_factor[t], out=row[:, 3 * h:four_h])
            dc_prev = dc_total * f[t]
            if spec.gate_detached:
                dh_prev = row[:, :four_h] @ w_hh
            else:
                dh_prev = row @ w_back
                dc_prev = torch.addcmul(dc_prev, row[:, four_h:], w_dc)
                if from_logits_h is not None and from_logits_c is not None:
                    dh_prev += from_logits_h[t]
                    dc_prev += from_logits_c[t]
            # Where the gate did not fire, the state came from the coarse LSTM (its first units)
            # and from the previous fine state (the rest).
            dh_skip, dc_skip = dh - dh_new, dc - dc_new
            if units:
                d_hc[t] = dh_skip[:, :units]
                d_cc[t] = dc_skip[:, :units]
                dh_prev[:, units:] += dh_skip[:, units:]
                dc_prev[:, units:] += dc_skip[:, units:]
            else:
                dh_prev += dh_skip
                dc_prev += dc_skip
            dh, dc = dh_prev, dc_prev
        # The gate's logits: the margin's gradient is +1 on logit 1, -1 on logit 0.
        d_margin = d_pre[..., four_h]
        d_gate = torch.stack([-d_margin, d_margin], dim=2)
        if d_logits is not None:
            d_gate = d_gate + d_logits
        # The weights' gradients: one product each over every step, on the rows that carry one.
        flat_h, flat_c = previous_h.reshape(-1, h), previous_c.reshape(-1, h)
        flat_gate = d_gate.reshape(-1, 2)
        live = torch.nonzero(decisions.reshape(-1) > 0).squeeze(1)
        d_w_hh = (d_pre.reshape(-1, four_h + 1)[live, :four_h].t() @ flat_h[live]
                  if ctx.needs_input_grad[6] else None)
        d_w_gh = flat_gate.t() @ flat_h if ctx.needs_input_grad[7] else None
        d_w_gc = flat_gate.t() @ flat_c if ctx.needs_input_grad[8] else None
        return d_pre[..., :four_h], d_gate, d_hc, d_cc, None, None, d_w_hh, d_w_gh, d_w_gc, None


def gated_recurrence(fine_in: torch.Tensor, gate_in: torch.Tensor, hc: torch.Tensor, cc: torch.Tensor,
                     valid: torch.Tensor, noise: torch.Tensor, w_hh: torch.Tensor, w_gh: torch.Tensor,
                     w_gc: torch.Tensor, spec: Recurrence) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``GatedRecurrence.apply``; see its docstring. Returns (states (T, B, H), decisions (T, B),
    gate logits (T, B, 2)); straight-through decisions pass their gradient to the gate's logits
    (the soft sample's), Bernoulli ones carry none."""
    # Always float32, also under autocast (benchmark/precision.py): small products, a long-carried state.
    with torch.autocast(device_type=fine_in.device.type, enabled=False):
        inputs = [t.float() for t in (fine_in, gate_in, hc, cc, valid, noise, w_hh, w_gh, w_gc)]
        return GatedRecurrence.apply(*inputs, spec)
