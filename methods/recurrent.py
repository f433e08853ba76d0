"""Fast LSTM computations on the weights of ``nn.LSTMCell`` modules.

Every recurrent method keeps its LSTMs as ``nn.LSTMCell`` modules: they own the weights (so
checkpoints keep their keys) and they are what the cost model counts with ptflops, whose aten
backend counts a fused ``nn.LSTM`` as zero. Running a cell step by step from Python is slow,
though: each step is a dozen small operators, each with its own dispatch and autograd node.
The helpers here compute exactly what the cells compute, faster:

* ``fused_lstm``: a whole sequence in one call of PyTorch's fused LSTM kernel (the operator
  behind ``nn.LSTM``: oneDNN on CPU, cuDNN on GPU) with the cell's own parameters, so
  gradients reach the cell's weights;
* ``cell_states``: the memory cells c_t of every step of such a sequence (the fused kernel only
  returns the hidden states), recomputed from the hidden states with two matrix products and a
  one-operator-per-step scan;
* ``input_projection`` and ``lstm_update``: the input part of a cell's pre-activations for all
  steps as one matrix product, so that a loop that must stay in Python (the input at t depends
  on a decision at t) keeps only the recurrent product and the gate nonlinearity;
* ``row_sparse=True`` for both, on a CPU: their matrix products skip, in the backward pass, the
  rows whose incoming gradient is exactly zero. LiteEval's fine LSTM is computed for every video
  at every step in training, but only the rows where the gate fired receive a gradient (the
  others enter the state multiplied by a hard 0), so most of its backward products multiply
  zeros. Skipping exact zeros changes no result.

tests/methods/test_recurrent.py checks each against ``nn.LSTMCell`` stepped in Python (outputs and
gradients within 1e-5).
"""

from __future__ import annotations

import torch
from torch import nn

from datasets.common.errors import UsageError


def fused_lstm(cell: nn.LSTMCell, inputs: torch.Tensor) -> torch.Tensor:
    """Hidden states (B, T, H) of ``cell`` run over ``inputs`` (B, T, D) from zero states, in
    one fused kernel call."""
    zeros = inputs.new_zeros(1, inputs.shape[0], cell.hidden_size)
    hx = (zeros, zeros)
    weights = [cell.weight_ih, cell.weight_hh] + ([cell.bias_ih, cell.bias_hh] if cell.bias else [])
    # The operator nn.LSTM.forward calls (num_layers=1, no dropout, unidirectional, batch first).
    outputs, _, _ = torch._VF.lstm(inputs, hx, weights, cell.bias, 1, 0.0, cell.training, False, True)
    return outputs


def cell_states(cell: nn.LSTMCell, inputs: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Memory cells c_t (B, T, H) of the sequence whose hidden states ``fused_lstm`` returned
    (from zero states).

    c_t = f_t * c_{t-1} + i_t * g_t, where the gates depend only on x_t and h_{t-1}, both known
    for every step once the hidden states are: one batched product gives all gates, and the
    scan over t is one fused multiply-add per step. Gradients flow through ``hidden`` too, so
    this is the cell's c_t as a function of its weights, exactly.
    """
    b, t, h = hidden.shape
    previous = torch.cat([hidden.new_zeros(b, 1, h), hidden[:, :-1]], dim=1)  # h_{t-1}
    pre = input_projection(cell, inputs) + previous @ cell.weight_hh.t()  # every step's gates at once
    i, f, g, _ = pre.chunk(4, dim=2)
    update = (torch.sigmoid(i) * torch.tanh(g)).unbind(1)
    forget = torch.sigmoid(f).unbind(1)
    c = hidden.new_zeros(b, h)
    out = []
    for step in range(t):
        c = torch.addcmul(update[step], forget[step], c)
        out.append(c)
    return torch.stack(out, dim=1)


#: Below this fraction of non-zero gradient rows the row-sparse backward gathers the rows.
SPARSE_BELOW = 0.6


class _RowSparseProduct(torch.autograd.Function):
    """``x @ weight.T`` whose backward multiplies only the rows of the incoming gradient that
    are not all zero (on a CPU, when those are fewer than ``SPARSE_BELOW`` of them): the
    skipped rows would contribute exact zeros to both gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        # Under autocast (benchmark/precision.py) the product ran in its type: so do the backward's.
        device = x.device.type
        ctx.product_dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        return x @ weight.t()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        out_x, out_weight = x.dtype, weight.dtype
        if ctx.product_dtype is not None:
            x, weight, grad = x.to(ctx.product_dtype), weight.to(ctx.product_dtype), grad.to(ctx.product_dtype)
        else:
            grad = grad.to(x.dtype)
        flat_grad, flat_x = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        rows = None
        if not grad.is_cuda:  # on a GPU finding the rows would synchronise every step
            live = torch.nonzero(flat_grad.any(dim=1)).squeeze(1)
            if len(live) < SPARSE_BELOW * len(flat_grad):
                rows = live
        if rows is not None:
            flat_grad, kept_x = flat_grad.index_select(0, rows), flat_x.index_select(0, rows)
        else:
            kept_x = flat_x
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            part = flat_grad @ weight
            if rows is not None:
                part = part.new_zeros(flat_x.shape).index_copy_(0, rows, part)
            grad_x = part.view(x.shape).to(out_x)
        if ctx.needs_input_grad[1]:
            grad_weight = (flat_grad.t() @ kept_x).to(out_weight)
        return grad_x, grad_weight


def product(x: torch.Tensor, weight: torch.Tensor, row_sparse: bool = False) -> torch.Tensor:
    """``x @ weight.T``, with the row-sparse backward when asked for."""
    return _RowSparseProduct.apply(x, weight) if row_sparse else x @ weight.t()


def input_projection(cell: nn.LSTMCell, *parts: torch.Tensor, row_sparse: bool = False) -> torch.Tensor:
    """W_ih [parts...] + b_ih + b_hh for inputs of any leading shape (..., D_1), (..., D_2)...

    The parts are the pieces of the cell's input, concatenated in this order; each is
    multiplied by its own block of W_ih instead of concatenating them, so no gradient is
    computed for a part that needs none (stored features).
    """
    out = None
    start = 0
    for part in parts:
        block = cell.weight_ih[:, start : start + part.shape[-1]]
        start += part.shape[-1]
        projected = product(part, block, row_sparse)
        out = projected if out is None else out + projected
    if start != cell.input_size:
        raise UsageError(f"input parts add up to {start} features, the cell takes {cell.input_size}")
    if out is None:
        raise UsageError("no input parts were given")
    if cell.bias:
        out = out + (cell.bias_ih + cell.bias_hh)
    return out


def lstm_update(
    cell: nn.LSTMCell, projected: torch.Tensor, h: torch.Tensor, c: torch.Tensor, row_sparse: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``cell`` given its projected input (``input_projection`` at this step):
    the same (h', c') as ``cell(x, (h, c))``."""
    if row_sparse:
        pre = projected + product(h, cell.weight_hh, row_sparse=True)
    else:
        pre = torch.addmm(projected, h, cell.weight_hh.t())
    sig = torch.sigmoid(pre)  # i, f, (unused), o in PyTorch's gate order i, f, g, o
    i, f, _, o = sig.chunk(4, dim=1)
    g = torch.tanh(pre[:, 2 * cell.hidden_size : 3 * cell.hidden_size])
    c_new = torch.addcmul(f * c, i, g)
    return o * torch.tanh(c_new), c_new
