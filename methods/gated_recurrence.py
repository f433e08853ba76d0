"""LiteEval's gated fine recurrence in training, with its backward pass written out.

In training LiteEval computes, at every step t and for every video (methods/liteeval.py):

    logits_t = gate_in_t + W_gh h_{t-1} + W_gc c_{t-1}                 (eq. 2; gate_in_t = W_gx x_t + b_g)
    B_t      = decision(logits_t, noise_t) * valid_t                    (straight-through Gumbel or Bernoulli)
    h', c'   = LSTM(fine_in_t + W_hh h_{t-1}, c_{t-1})                  (eq. 3; fine_in_t = W_ih [x_t, v_t] + b)
    h_t, c_t = B_t (h', c') + (1 - B_t) sync(hc_t, cc_t, h_{t-1}, c_{t-1})   (eq. 4 and section 2.1)

Left to autograd, each step is some thirty small operators, each with a graph node to record
and to walk back, for a few hundred steps per batch: most of a training step's time went to
that bookkeeping, not to arithmetic (docs/performance.md). ``GatedRecurrence`` runs the loop
without a graph and its backward by hand: per step one product for the recurrent and the gate's
state part together (``[W_hh; W_gh]``), the elementwise work, and the three weight gradients as
one product each over all steps at the end, restricted to the rows that carry a gradient (the
fine LSTM's rows where the gate fired). It computes what the step-by-step equations compute:
tests/test_recurrent.py checks outputs and every gradient against ``nn.LSTMCell`` stepped by
autograd, for both decision rules, with and without synchronisation and detached gate inputs.

Where B_t = 1 the new state is the LSTM's exactly (``torch.where``), as evaluation computes it.
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
    """What does not change within a batch: the rule, its temperature and noise scale, the
    coarse state's width (synchronisation copies it; 0: none) and whether the gate's state
    inputs are detached (their gradient does not flow back into the recurrence)."""

    rule: str
    tau: float = 1.0
    noise_scale: float = 1.0
    sync_units: int = 0
    gate_detached: bool = False

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown decision rule {self.rule!r}; one of {RULES}")


def _skip(coarse: torch.Tensor, fine: torch.Tensor, units: int) -> torch.Tensor:
    """The state where the gate did not fire: its first ``units`` from the coarse LSTM."""
    return torch.cat([coarse, fine[:, units:]], dim=1) if units else fine


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
        # One product per step gives the LSTM's recurrent part and the gate's h part together.
        w_cat_t = torch.cat([w_hh, w_gh], dim=0).t()  # (H, 4H + 2)
        w_gc_t = w_gc.t()
        pre_in = torch.cat([fine_in, gate_in], dim=2)  # (T, B, 4H + 2)
        hf, cf = fine_in.new_zeros(b, h), fine_in.new_zeros(b, h)
        states = fine_in.new_empty(steps, b, h)
        cells = fine_in.new_empty(steps, b, h)
        acts = fine_in.new_empty(steps, b, four_h)  # sigmoid(i, f, o) and tanh(g), in PyTorch's gate order
        c_new_all = fine_in.new_empty(steps, b, h)
        logits_all = fine_in.new_empty(steps, b, 2)
        soft_all = fine_in.new_empty(steps, b)
        fire_all = fine_in.new_empty(steps, b)
        for t in range(steps):
            pre = torch.addmm(pre_in[t], hf, w_cat_t)
            logits = torch.addmm(pre[:, four_h:], cf, w_gc_t)
            logits_all[t] = logits
            margin = logits[:, 1] - logits[:, 0]  # softmax(logits)[1] = sigmoid(margin)
            if spec.rule == "straight_through":
                soft = torch.sigmoid((margin + noise[t]) / spec.tau)
                fire = (soft > 0.5).to(soft.dtype) * valid[t]
                soft_all[t] = soft
            elif spec.rule == "bernoulli":
                fire = (noise[t] < torch.sigmoid(margin)).to(margin.dtype) * valid[t]
            else:
                fire = noise[t].to(margin.dtype) * valid[t]
            fire_all[t] = fire
            act = acts[t]
            torch.sigmoid(pre[:, :four_h], out=act)
            torch.tanh(pre[:, 2 * h:3 * h], out=act[:, 2 * h:3 * h])
            i, f, g, o = act.chunk(4, dim=1)
            c_new = torch.addcmul(f * cf, i, g)
            h_new = o * torch.tanh(c_new)
            c_new_all[t] = c_new
            fired = fire.unsqueeze(1) > 0
            hf = torch.where(fired, h_new, _skip(hc[t], hf, units))
            cf = torch.where(fired, c_new, _skip(cc[t], cf, units))
            states[t] = hf
            cells[t] = cf
        ctx.spec = spec
        ctx.save_for_backward(hc, cc, valid, w_hh, w_gh, w_gc, states, cells, acts, c_new_all, soft_all, fire_all)
        if spec.rule != "straight_through":
            ctx.mark_non_differentiable(fire_all)  # a sample: the policy gradient goes through the logits
        return states, fire_all, logits_all

    @staticmethod
    def backward(ctx: Any, d_states: torch.Tensor, d_fire: torch.Tensor | None, d_logits: torch.Tensor | None):
        spec: Recurrence = ctx.spec
        hc, cc, valid, w_hh, w_gh, w_gc, states, cells, acts, c_new_all, soft_all, fire_all = ctx.saved_tensors
        steps, b, h = states.shape
        four_h, units = 4 * h, spec.sync_units
        zeros = states.new_zeros(b, h)
        w_cat = torch.cat([w_hh, w_gh], dim=0)  # (4H + 2, H)
        d_pre = states.new_zeros(steps, b, four_h + 2)  # d(fine_in), d(gate_in) side by side
        d_hc, d_cc = torch.zeros_like(hc), torch.zeros_like(cc)
        dh, dc = zeros, zeros.clone()
        straight = spec.rule == "straight_through"
        for t in range(steps - 1, -1, -1):
            dh = dh + d_states[t]
            h_prev = states[t - 1] if t else zeros
            c_prev = cells[t - 1] if t else zeros
            fire = fire_all[t].unsqueeze(1)
            act = acts[t]
            i, f, g, o = act.chunk(4, dim=1)
            c_new = c_new_all[t]
            tanh_c = torch.tanh(c_new)
            h_new = o * tanh_c
            h_skip, c_skip = _skip(hc[t], h_prev, units), _skip(cc[t], c_prev, units)
            # The decision's gradient (straight-through): what switching to the LSTM's state changes.
            dlog = d_pre[t, :, four_h:]
            if d_logits is not None:
                dlog.copy_(d_logits[t])
            if straight:
                d_choice = ((h_new - h_skip) * dh).sum(1) + ((c_new - c_skip) * dc).sum(1)
                if d_fire is not None:
                    d_choice = d_choice + d_fire[t]
                soft = soft_all[t]
                d_margin = d_choice * valid[t] * soft * (1 - soft) / spec.tau
                dlog[:, 1] += d_margin
                dlog[:, 0] -= d_margin
            dh_new, dc_new = fire * dh, fire * dc
            dh_skip, dc_skip = dh - dh_new, dc - dc_new
            # The LSTM cell, by hand.
            dc_tot = torch.addcmul(dc_new, dh_new * o, 1 - tanh_c * tanh_c)
            dgates = d_pre[t, :, :four_h]
            dgates[:, :h] = dc_tot * g * i * (1 - i)
            dgates[:, h:2 * h] = dc_tot * c_prev * f * (1 - f)
            dgates[:, 2 * h:3 * h] = dc_tot * i * (1 - g * g)
            dgates[:, 3 * h:] = dh_new * tanh_c * o * (1 - o)
            dc_prev = dc_tot * f
            if spec.gate_detached:
                dh_prev = dgates @ w_hh
            else:
                dh_prev = d_pre[t] @ w_cat
                dc_prev = torch.addmm(dc_prev, dlog, w_gc)
            # Where the gate did not fire the state came from the coarse LSTM (its first units) and
            # the previous fine state (the rest).
            if units:
                d_hc[t] = dh_skip[:, :units]
                d_cc[t] = dc_skip[:, :units]
                dh_prev[:, units:] += dh_skip[:, units:]
                dc_prev[:, units:] += dc_skip[:, units:]
            else:
                dh_prev = dh_prev + dh_skip
                dc_prev = dc_prev + dc_skip
            dh, dc = dh_prev, dc_prev
        # The weights' gradients: one product each over every step, on the rows that carry one.
        previous_h = torch.cat([zeros.unsqueeze(0), states[:-1]], dim=0).reshape(-1, h)
        previous_c = torch.cat([zeros.unsqueeze(0), cells[:-1]], dim=0).reshape(-1, h)
        flat = d_pre.reshape(-1, four_h + 2)
        live = torch.nonzero(fire_all.reshape(-1) > 0).squeeze(1)
        d_w_hh = flat[live, :four_h].t() @ previous_h[live] if ctx.needs_input_grad[6] else None
        d_w_gh = flat[:, four_h:].t() @ previous_h if ctx.needs_input_grad[7] else None
        d_w_gc = flat[:, four_h:].t() @ previous_c if ctx.needs_input_grad[8] else None
        return (d_pre[:, :, :four_h], d_pre[:, :, four_h:], d_hc, d_cc, None, None, d_w_hh, d_w_gh, d_w_gc, None)


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
