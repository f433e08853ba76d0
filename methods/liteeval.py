"""LiteEval (Wu et al., NeurIPS 2019, section 2) and LiteEval-RL.

At every frame t (1 fps), with coarse features v_t^c and fine features v_t^f:

* coarse LSTM (eq. 1):   h_t^c, c_t^c = cLSTM(x_t, h_{t-1}^c, c_{t-1}^c), where x_t = v_t^c or,
  as in the official code, an embedding of it (``coarse_embed`` > 0: BatchNorm + Linear +
  BatchNorm + ReLU, ``embed_style = "official"``; or Linear + ReLU, ``"linear"``); the fine
  features may be embedded the same way before the fine LSTM (``fine_embed`` > 0), as the
  official code does. Batch statistics are taken over real frames only (padding is masked);
* gate (eq. 2):          b_t = W_g [x_t, h_{t-1}^f, c_{t-1}^f] in R^2 (one linear layer);
* decision B_t:          training: straight-through Gumbel-softmax (eqs. 6-7; hard 0/1 forward,
                         the soft sample's gradient backward) at temperature tau, the Gumbel noise
                         scaled by ``gumbel_scale`` (1: softmax(b_t) is sampled, as eq. 6 reads; the
                         official code adds 0.5 x the noise, sampling a sharper distribution);
                         evaluation: argmax;
* fine LSTM (eqs. 3-4):  where B_t = 1, h_t^f, c_t^f = fLSTM([x_t, v_t^f], h_{t-1}^f, c_{t-1}^f);
* synchronisation:       where B_t = 0, h_t^f = [h_t^c, h_{t-1}^f(D_c+1 : D_f)] (the first D_c units
                         copied from the coarse LSTM, the rest kept), and likewise c_t^f; with
                         ``sync=False`` (Table 2's ablation) h_t^f = h_{t-1}^f as in eq. 4;
* classifier:            p_t = softmax(W_p h_t^f) at every step (the online predictions).

Live (``python -m benchmark stream``): ``start_stream()`` runs the same evaluation step on a
video as it plays, one frame at a time, asking for a frame's fine feature (so running the fine
backbone on it) only where the gate fires.

Online (section 3.3, LiteEval-K): ``forward_budget(batch, K)`` stops each video right after
its K-th fine read (or at its end), reading and running nothing more, and predicts from that
step; ``python -m benchmark online`` sweeps K.

Training loss (eq. 5): cross-entropy of the last step's prediction plus
lambda * (mean_t B_t - gamma)^2. ``penalty = "video"`` applies it to each video's usage, as eq. 5
reads; ``"batch"`` to the batch-mean usage, as the official code does, which leaves each video
free to use more or less of the fine stream. The paper's lambda 2 and gamma 0.05 are the
defaults; the official code instead targets a usage of 0.1 (it penalises the share of skipped
frames against 0.9) with a weight that grows within each epoch, 2 - exp(-s / 500) for the s-th
step of the epoch (500 being its number of epochs): ``lam_schedule = "official"`` with lam 1
and gamma 0.1 is that reading (docs/examples/liteeval-official.json).

The temperature is annealed geometrically from ``tau_start`` to ``tau_end`` over the run's
budget, per epoch (``tau_schedule = "epoch"``: tau_e = tau_start * (tau_end / tau_start)^(e /
(E - 1))) or per optimizer step (``"step"``). The official code computes max(0.5, exp(-1e-4 s))
with a step counter s that restarts at every epoch (its training function increments a local
copy), so in practice its tau stays in about [0.98, 1] over an epoch of under 200 batches and
never anneals; ``"official"`` is that schedule, with s the step within the epoch.

Dropout (``dropout``, where ``dropout_at`` says): ``"everywhere"`` drops the (embedded) coarse
input, which feeds the coarse LSTM, the gate and the fine LSTM, the (embedded) fine input, and
the classifier's input; ``"classifier"`` only the classifier's input. The official code uses none
(dropout 0).

Really conditional at evaluation: the fine branch reads fine features through the metered
accessor only for the videos whose gate fired at that step, and runs the fine LSTM only on
those rows. (Training runs the fine LSTM on every row, because the straight-through gradient
of B_t needs the fine candidate state of rows whose gate did not fire; training is not what
the cost measures.)

LiteEval-RL trains the same network's gate with REINFORCE: B_t ~ Bernoulli(p_t), p_t the gate's
probability of firing; the rest of the network sees the hard samples and is trained by the
cross-entropy. The reward of a video is the negative of its eq. 5 loss,
R = log p_T(y) - lambda * (mean_t B_t - gamma)^2, so the policy gradient estimates the same
objective that LiteEval differentiates through Gumbel-softmax. The baseline (``reward_baseline``) is
``"moving"``, an exponential moving average of the batch-mean reward (momentum
``baseline_momentum``), which removes the reward's large offset, costs no extra forward pass and
adds no parameters that could themselves need tuning; or ``"value"``, a learned estimate of each
video's reward (a linear layer on the coarse LSTM's state at the video's last frame, fitted by
squared error; used in training only), which also removes how hard the video is: the cross-entropy
differs far more between videos than the usage term does, so with one baseline for the batch the
usage term's per-video signal is small beside that spread. The coarse LSTM does not read the fine
stream, so the estimate depends on no decision and leaves the gradient unbiased. Advantages are
normalised by their batch standard deviation. LiteEval-RL's usage
term is each video's (``penalty = "video"``, eq. 5 as written; its default): with the batch's
(``"batch"``, LiteEval's official default), the term is the same for every video of a batch, so
REINFORCE gets no credit for a video that read less, while the cross-entropy rewards reading more
(tests/methods/test_liteeval.py: with a reward that says "never fire", the per-video term drives usage to
zero on every seed, the batch term does not). ``policy_through`` says where the policy gradient
goes: ``"network"`` through the gate into everything its inputs come from (the LSTMs the
classifier also uses), ``"gate"`` into the gate alone (its inputs detached), so that the policy
term cannot pull the shared network away from classifying; ``entropy_weight`` adds an entropy
bonus on the decisions, the usual guard against a policy that saturates (always or never
firing) before the reward has shown where reads pay. The paper says only that LiteEval-RL trains
the gate "by policy search" (the official code has none); this reward is our reading,
stated so that it can be checked.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datasets.common.errors import UsageError
from datasets.loading.bank import Batch
from datasets.loading.sampling import AllFrames, FrameSampler
from methods.base import (
    STANDARD_SEARCH_SPACE,
    CostKnob,
    FeatureSource,
    FrameStream,
    MethodOutput,
    Preset,
    StepModule,
    TrainConfig,
    VideoMethod,
    bounded,
    choice,
)
from methods.dropout import Dropout
from methods.gated_recurrence import Recurrence, gated_recurrence
from methods.losses import label_distribution, soft_cross_entropy
from methods.presets import (
    DROPOUT_TUNE,
    RL_BASELINE_TUNE,  # noqa: F401  (retired: methods/presets.py says why the import stays)
    RL_DROPOUT_TUNE,  # noqa: F401
    RL_LAM_TUNE,  # noqa: F401
    RL_TUNE,
    SMALL_RL_TUNE,
    TABLE1_TUNE,
)
from methods.recurrent import cell_states, fused_lstm, input_projection
from methods.registry import register_method


def gumbel_noise(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Standard Gumbel samples, drawn as ``F.gumbel_softmax`` draws them."""
    return -torch.empty(shape, device=device).exponential_().log()


def straight_through_gumbel(logits: torch.Tensor, tau: float, noise: torch.Tensor | None = None,
                            scale: float = 1.0) -> torch.Tensor:
    """P(fire) sample of a 2-way Gumbel-softmax: hard 0/1 forward, soft gradient (B,).

    ``noise`` (B, 2) is the Gumbel sample (drawn here when None): training draws it for every
    step at once, before the recurrence. ``scale`` multiplies it (the official code: 0.5)."""
    if noise is None:
        noise = gumbel_noise(tuple(logits.shape), logits.device)
    soft = ((logits + scale * noise) / tau).softmax(-1)[:, 1]
    hard = (soft > 0.5).to(soft.dtype)
    return hard + (soft - soft.detach())  # exactly hard in the forward pass (x - x == 0)


#: The official code's constants: its temperature's decay rate and floor, and its number of epochs
#: (which sets how fast its penalty weight grows within an epoch).
OFFICIAL_TAU_RATE, OFFICIAL_TAU_FLOOR, OFFICIAL_EPOCHS = 1e-4, 0.5, 500


def usage_penalty(decisions: torch.Tensor, valid: torch.Tensor, gamma: float, mode: str = "video") -> torch.Tensor:
    """The second term of eq. 5 for each video (B,): (its usage - gamma)^2 (``"video"``), or
    (the batch-mean usage - gamma)^2 for every video (``"batch"``, the official code)."""
    usage = (decisions * valid).sum(1) / valid.sum(1).clamp_min(1)
    if mode == "batch":
        return ((usage.mean() - gamma) ** 2).expand_as(usage)
    return (usage - gamma) ** 2


def embedding(dim_in: int, dim_out: int, style: str) -> nn.Module:
    """The official code's projection (BN + Linear + BN + ReLU), or Linear + ReLU."""
    if style == "official":
        return nn.Sequential(nn.BatchNorm1d(dim_in), nn.Linear(dim_in, dim_out), nn.BatchNorm1d(dim_out), nn.ReLU())
    return nn.Sequential(nn.Linear(dim_in, dim_out), nn.ReLU())


def embed_frames(module: nn.Module, frames: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``module`` on every frame of (B, T, D) ``frames``; in training only on the real frames
    (``mask``), so that padding does not enter batch-norm statistics (zeros elsewhere)."""
    if isinstance(module, nn.Identity):
        return frames
    if mask is None or not module.training:
        return module(frames.reshape(-1, frames.shape[-1])).reshape(*frames.shape[:-1], -1)
    inside = module(frames[mask])
    out = inside.new_zeros(*frames.shape[:-1], inside.shape[-1])
    out[mask] = inside
    return out


class _LiteEvalNet(VideoMethod):
    """The network of section 2.1; subclasses choose how the gate is trained."""

    streams = ("coarse", "fine")
    online = True
    suite = "paper"  # a row of the paper's Table 1
    budget_unit = "fine-feature reads"

    # Defaults are the synthetic default's, at the paper's proportion (fine LSTM 4 times the
    # coarse one, as on FCVID: 512/2048) but small, so that the whole comparison trains in
    # minutes on 2 CPU cores (dense training runs the fine LSTM at every frame). The readings
    # (embeddings, penalty, temperature schedule) are set by rule, not by data: the official
    # code's where it is not a slip (both streams embedded, the batch's usage penalised) and the
    # paper's annealing from a high to a small temperature, per training step as its reference
    # [17] anneals, where the official code's never anneals (DEFAULT_READINGS). The paper's settings are the
    # presets below (its batch of 256: pass --batch-size 256, the budget being the run's). The
    # `default` preset of each subclass holds the optimiser and dropout `tune` chose, with where.
    @dataclass(frozen=True)
    class Hparams:
        coarse_hidden: int = bounded(32, ge=1)
        fine_hidden: int = bounded(128, ge=1)
        coarse_embed: int = bounded(128, ge=0)  # 0: feed v^c directly; > 0: embed it to this size (official code: 512)
        fine_embed: int = bounded(128, ge=0)  # 0: feed v^f directly; > 0: embed it to this size (official code: 2048)
        # "official": BN + Linear + BN + ReLU; "linear": Linear + ReLU
        embed_style: str = choice("official", ("official", "linear"))
        # "video": eq. 5 per video; "batch": on the batch-mean usage (official code)
        penalty: str = choice("batch", ("video", "batch"))
        # geometric tau_start -> tau_end per "epoch" or per optimizer "step"; "official": the module docstring
        tau_schedule: str = choice("step", ("epoch", "step", "official"))
        sync: bool = True
        lam: float = bounded(2.0, ge=0)
        gamma: float = bounded(0.05, ge=0, le=1)
        tau_start: float = bounded(5.0, gt=0)
        tau_end: float = bounded(0.5, gt=0)
        dropout: float = bounded(0.2, ge=0, lt=1)
        baseline_momentum: float = bounded(0.9, ge=0, lt=1)  # LiteEval-RL only
        # Readings of the official code (the module docstring); the defaults keep the suite's.
        gumbel_scale: float = bounded(1.0, gt=0)  # the official code: 0.5
        # "official": lam x (2 - exp(-s / 500)), s the step within the epoch
        lam_schedule: str = choice("constant", ("constant", "official"))
        dropout_at: str = choice("everywhere", ("everywhere", "classifier"))

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # The paper's settings (section 3.1): Adam 1e-4, lambda 2, gamma 0.05 for both datasets; the
    # official code's projections: coarse 1280 -> 512 and fine 2048 -> 2048 (docs/methods.md).
    presets = {
        name: Preset({"coarse_hidden": coarse, "fine_hidden": fine, "coarse_embed": 512, "fine_embed": 2048,
                      "train": {"lr": 1e-4}}, note="the paper's section 3.1 and the official code's projections")
        for name, (coarse, fine) in {"paper": (512, 2048), "fcvid": (512, 2048), "activitynet": (64, 512)}.items()
    }

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        hp = self.hp
        if hp.sync and hp.fine_hidden < hp.coarse_hidden:
            raise UsageError(
                f"{self.name}: synchronisation copies the coarse state into the first units of the fine state, "
                f"so fine_hidden ({hp.fine_hidden}) must be >= coarse_hidden ({hp.coarse_hidden})"
            )
        coarse_in = hp.coarse_embed or dims["coarse"]
        fine_in = hp.fine_embed or dims["fine"]
        self.embed = embedding(dims["coarse"], hp.coarse_embed, hp.embed_style) if hp.coarse_embed else nn.Identity()
        self.fine_embedding = embedding(dims["fine"], hp.fine_embed, hp.embed_style) if hp.fine_embed else nn.Identity()
        self.coarse_cell = nn.LSTMCell(coarse_in, hp.coarse_hidden)
        self.gate = nn.Linear(coarse_in + 2 * hp.fine_hidden, 2)
        self.fine_cell = nn.LSTMCell(coarse_in + fine_in, hp.fine_hidden)
        self.dropout = Dropout(hp.dropout)  # nn.Dropout with a faster CPU mask (methods/dropout.py)
        self.input_dropout = self.dropout if hp.dropout_at == "everywhere" else nn.Identity()
        self.classifier = nn.Linear(hp.fine_hidden, num_classes)
        self.tau = hp.tau_start
        self.lam = hp.lam  # the penalty's weight now (lam_schedule)
        self._epoch_start_step = 0  # the first optimizer step of the current epoch
        self._next_step = 0  # the step after the last one seen
        self.coarse_in = coarse_in
        self.fine_in = fine_in

    # ------------------------------------------------------------------ interface
    def sampler(self, train: bool) -> FrameSampler:
        return AllFrames()

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self._epoch_start_step = self._next_step
        if self.hp.tau_schedule == "epoch":
            self._anneal(epoch / max(epochs - 1, 1))

    def on_step(self, step: int, steps: int) -> None:
        self._next_step = step + 1
        within = step - self._epoch_start_step  # the official code's counter, which restarts every epoch
        if self.hp.tau_schedule == "step":
            self._anneal(step / max(steps - 1, 1))
        elif self.hp.tau_schedule == "official":
            self.tau = max(OFFICIAL_TAU_FLOOR, math.exp(-OFFICIAL_TAU_RATE * within))
        if self.hp.lam_schedule == "official":
            self.lam = self.hp.lam * (2 - math.exp(-within / OFFICIAL_EPOCHS))

    def _anneal(self, progress: float) -> None:
        self.tau = self.hp.tau_start * (self.hp.tau_end / self.hp.tau_start) ** progress

    def cost_modules(self) -> dict[str, StepModule]:
        hp, dc, df = self.hp, self.dims["coarse"], self.dims["fine"]

        def state(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros(1, n), torch.zeros(1, n)

        modules = {
            "coarse_cell": StepModule(self.coarse_cell,
                                      lambda: (torch.zeros(1, self.coarse_in), state(hp.coarse_hidden))),
            "gate": StepModule(self.gate, lambda: (torch.zeros(1, self.coarse_in + 2 * hp.fine_hidden),)),
            "fine_cell": StepModule(self.fine_cell,
                                    lambda: (torch.zeros(1, self.coarse_in + self.fine_in), state(hp.fine_hidden))),
            "classifier": StepModule(self.classifier, lambda: (torch.zeros(1, hp.fine_hidden),)),
        }
        if hp.coarse_embed:
            modules["coarse_embed"] = StepModule(self.embed, lambda: (torch.zeros(1, dc),))
        if hp.fine_embed:
            modules["fine_embed"] = StepModule(self.fine_embedding, lambda: (torch.zeros(1, df),))
        return modules

    # ------------------------------------------------------------------ the recurrence
    def _skip_state(self, h_coarse: torch.Tensor, h_fine: torch.Tensor) -> torch.Tensor:
        """Fine state where the gate did not fire: synchronised (section 2.1) or kept (eq. 4)."""
        if not self.hp.sync:
            return h_fine
        return torch.cat([h_coarse, h_fine[:, self.hp.coarse_hidden :]], dim=1)

    def decision_noise(self, steps: int, batch_size: int, device: torch.device) -> torch.Tensor:
        """The random draws of a training batch's decisions, (T, B, ...), drawn at once."""
        raise NotImplementedError

    def decide(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """B_t during training (B,) from the gate's logits and this step's ``decision_noise``,
        with whatever gradient the training scheme uses."""
        raise NotImplementedError

    def gate_inputs_detached(self) -> bool:
        """Whether the gate reads detached inputs in training (no gradient through them)."""
        return False

    def forward(self, batch: Batch) -> MethodOutput:
        return self._forward_train(batch) if self.training else self._forward_eval(batch)

    def forward_budget(self, batch: Batch, budget: int) -> MethodOutput:
        """LiteEval-K (section 3.3): the prediction is forced right after the K-th fine read."""
        if budget < 1:
            raise UsageError(f"{self.name}: the budget counts fine-feature reads and must be >= 1, got {budget}")
        return self._forward_eval(batch, budget)

    def _init_state(self, b: int, device: torch.device):
        hp = self.hp
        zeros = lambda n: torch.zeros(b, n, device=device)
        return zeros(hp.coarse_hidden), zeros(hp.coarse_hidden), zeros(hp.fine_hidden), zeros(hp.fine_hidden)

    def _coarse_sequence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 1 for every step at once: the coarse LSTM's (h_t, c_t), each (B, T, D_c).

        The coarse LSTM does not depend on the gate, so it runs in one fused kernel call. Grids
        are padded at their end only (every sampler's mask is a prefix), so the states of
        padded steps, which continue past a video's end, are never used."""
        h = fused_lstm(self.coarse_cell, x)
        return h, cell_states(self.coarse_cell, x, h)

    def _forward_train(self, batch: Batch) -> MethodOutput:
        """Dense: every row's fine candidate is computed (the straight-through gradient needs it).

        What does not depend on the gate is computed for all steps before the loop: the coarse
        LSTM (fused), the fine LSTM's input projection W_ih [x_t, v_t^f] and the gate's
        x_t part. The loop keeps what depends on the previous fine state: the gate's state
        part, the decision, the fine LSTM's recurrent product and nonlinearity, and the
        synchronised update. It computes what eqs. 1-4 and the straight-through decision
        compute, step by step (tests/methods/test_recurrent.py checks it against nn.LSTMCell steps)."""
        coarse = self.input_dropout(embed_frames(self.embed, batch.read("coarse"), batch.mask))  # (B, T, Dc_in)
        fine = self.input_dropout(embed_frames(self.fine_embedding, batch.read("fine"), batch.mask))
        b, steps = batch.mask.shape
        valid = batch.mask.to(coarse.dtype)
        hc_all, cc_all = self._coarse_sequence(coarse)
        x_time = coarse.transpose(0, 1)  # time-major, so that step t is one contiguous block
        # A gate trained by REINFORCE alone may see its inputs detached: then the policy gradient
        # trains the gate and nothing it reads (LiteEvalRL, policy_through = "gate").
        held = self.gate_inputs_detached()
        keep: Callable[[torch.Tensor], torch.Tensor] = torch.Tensor.detach if held else (lambda t: t)
        # Only rows where the gate fired get a gradient through the fine LSTM: the backward skips
        # the others' exact zeros (methods/recurrent.py).
        fine_in = input_projection(self.fine_cell, x_time, fine.transpose(0, 1), row_sparse=True)  # (T, B, 4H)
        dx, df = self.coarse_in, self.hp.fine_hidden
        w_gate = self.gate.weight  # acts on [x_t, h^f_{t-1}, c^f_{t-1}] (eq. 2)
        gate_in = keep(x_time) @ w_gate[:, :dx].t() + self.gate.bias  # (T, B, 2)
        rule, draws = self.recurrence(self.decision_noise(steps, b, coarse.device))
        states, decisions, gate_logits = gated_recurrence(
            fine_in, gate_in, hc_all.transpose(0, 1), cc_all.transpose(0, 1), valid.t(), draws,
            self.fine_cell.weight_hh, w_gate[:, dx : dx + df], w_gate[:, dx + df :], rule)
        # The prediction comes from each video's last frame (padded steps after it are not used).
        last = states[(batch.steps - 1).clamp_min(0), torch.arange(b, device=coarse.device)]
        logits = self.classifier(self.dropout(last))
        decisions_t = decisions.t()
        return MethodOutput(
            scores=logits.softmax(-1),
            step_counts={"fine_cell": decisions_t.detach().sum(1).long()},
            extras={"logits": logits, "decisions": decisions_t, "gate_logits": gate_logits.transpose(0, 1),
                    "valid": valid, "coarse_last": hc_all[torch.arange(b, device=coarse.device),
                                                          (batch.steps - 1).clamp_min(0)]},
        )

    def recurrence(self, noise: torch.Tensor) -> tuple[Recurrence, torch.Tensor]:
        """The training recurrence's fixed settings for this batch (methods/gated_recurrence.py),
        and this batch's ``decision_noise`` in the form it takes."""
        raise NotImplementedError

    def _gated_step(self, x: torch.Tensor, hc: torch.Tensor, cc: torch.Tensor, hf: torch.Tensor, cf: torch.Tensor,
                    valid: torch.Tensor, read_fine: Callable[[torch.Tensor], torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eqs. 2-4 at one evaluation step for B rows: the gate's decision from [x_t, h^f, c^f],
        then the fine LSTM on the rows where it fired, whose fine features ``read_fine(rows)``
        gives (read only for them), and the synchronised state elsewhere. Rows not ``valid``
        keep their state. Returns the new (h^f, c^f) and the decisions (B,) bool."""
        fire = (self.gate(torch.cat([x, hf, cf], dim=1)).argmax(1) == 1) & valid
        hf_next, cf_next = self._skip_state(hc, hf), self._skip_state(cc, cf)
        rows = torch.nonzero(fire).flatten()
        if len(rows):
            vf = self.fine_embedding(read_fine(rows))
            h_new, c_new = self.fine_cell(torch.cat([x[rows], vf], dim=1), (hf[rows], cf[rows]))
            hf_next, cf_next = hf_next.index_copy(0, rows, h_new), cf_next.index_copy(0, rows, c_new)
        keep = valid.unsqueeze(1)
        return torch.where(keep, hf_next, hf), torch.where(keep, cf_next, cf), fire

    def start_stream(self) -> FrameStream:
        if self.training:
            raise RuntimeError(f"{self.name}: call .eval() before streaming (the gate decides by argmax there)")
        return LiteEvalStream(self)

    @torch.no_grad()
    def _forward_eval(self, batch: Batch, budget: int | None = None) -> MethodOutput:
        """Conditional: fine features are read, and the fine LSTM run, only where the gate fires.

        With a ``budget`` a video stops (reads nothing more, runs nothing more) after the
        step of its ``budget``-th fine read; its prediction is that step's. Without one, every
        frame's coarse feature is read anyway, so they are read at once and the coarse LSTM runs
        fused; with one, coarse features are read step by step, only for videos still running.
        """
        features = batch.features
        b, steps = batch.mask.shape
        device = batch.mask.device
        hc, cc, hf, cf = self._init_state(b, device)
        coarse_steps = None
        if budget is None:
            x_all = embed_frames(self.embed, batch.read("coarse"))
            hc_all, cc_all = self._coarse_sequence(x_all)
            coarse_steps = list(zip(x_all.unbind(1), hc_all.unbind(1), cc_all.unbind(1)))
        states = []
        decisions = torch.zeros(b, steps, dtype=torch.bool, device=device)
        fine_reads = torch.zeros(b, dtype=torch.long, device=device)
        live_steps = torch.zeros(b, dtype=torch.long, device=device)
        for t in range(steps):
            valid = batch.mask[:, t] if budget is None else batch.mask[:, t] & (fine_reads < budget)
            if coarse_steps is not None:
                x, hc, cc = coarse_steps[t]
            else:
                x = self.embed(features.read_step("coarse", t, where=valid))
                hc_new, cc_new = self.coarse_cell(x, (hc, cc))
                keep = valid.unsqueeze(1)
                hc, cc = torch.where(keep, hc_new, hc), torch.where(keep, cc_new, cc)
            hf, cf, fire = self._gated_step(x, hc, cc, hf, cf, valid, functools.partial(features.read_step, "fine", t))
            states.append(hf)
            decisions[:, t] = fire
            fine_reads += fire
            live_steps += valid
            if budget is not None and bool((fine_reads >= budget).all()):
                break  # every video has spent its budget (the rest of the grid stays unread)
        step_scores = torch.zeros(b, steps, self.num_classes, device=device)
        step_scores[:, : len(states)] = self.classifier(torch.stack(states, 1)).softmax(-1)
        steps_run = live_steps  # a prefix of the grid: the video's steps, or up to its budget
        scores = step_scores[torch.arange(b, device=device), (steps_run - 1).clamp_min(0)]
        return MethodOutput(
            scores=scores,
            step_scores=step_scores,
            step_counts={
                "coarse_cell": steps_run,
                "gate": steps_run,
                "fine_cell": decisions.sum(1),
                "classifier": steps_run,
                **({"coarse_embed": steps_run} if self.hp.coarse_embed else {}),
                **({"fine_embed": decisions.sum(1)} if self.hp.fine_embed else {}),
            },
            diagnostics={"fine_steps": decisions},
        )


class LiteEvalStream(FrameStream):
    """LiteEval on a live video (``python -m benchmark stream``): per arriving frame, the coarse
    feature and LSTM, the gate, and the fine feature only where the gate fires. It runs the same
    step as evaluation on stored features (``_gated_step``), one video at a time, so the two
    make the same decisions on the same features (tests/methods/test_liteeval.py checks it)."""

    def __init__(self, net: _LiteEvalNet) -> None:
        self.net = net
        self.device = next(net.parameters()).device
        self.state = net._init_state(1, self.device)
        self.fired: list[bool] = []  # the gate's decision at each frame so far

    @torch.no_grad()
    def step(self, features: Mapping[str, FeatureSource]) -> torch.Tensor:
        net = self.net
        hc, cc, hf, cf = self.state
        x = net.embed(features["coarse"]().reshape(1, -1).to(self.device, torch.float32))
        hc, cc = net.coarse_cell(x, (hc, cc))
        valid = torch.ones(1, dtype=torch.bool, device=self.device)
        hf, cf, fire = net._gated_step(
            x, hc, cc, hf, cf, valid, lambda rows: features["fine"]().reshape(1, -1).to(self.device, torch.float32))
        self.state = (hc, cc, hf, cf)
        self.fired.append(bool(fire[0]))
        return net.classifier(hf)[0].softmax(-1)


#: The readings LiteEval's default preset states, the class defaults, set by rule (faithful first,
#: see Hparams): no tune chose them. A 16-combination study on the earlier 60-frame store
#: (results/default-liteeval-readings) agreed, but its trials were scored on the test split (issue
#: 24), so it decides nothing.
DEFAULT_READINGS = {"coarse_embed": 128, "fine_embed": 128, "penalty": "batch", "tau_schedule": "step"}


@register_method("liteeval")
class LiteEval(_LiteEvalNet):
    summary = "coarse LSTM on every frame, gated fine LSTM (Gumbel-softmax gate), synchronised states"
    display_name = "LiteEval"
    citation = "Wu et al.: LiteEval: A coarse-to-fine framework for resource efficient video recognition, NeurIPS 2019"
    row = 5
    presets = {**_LiteEvalNet.presets, "default": Preset(
        {"dropout": 0.5, "dropout_at": "classifier", "train": {"lr": 3e-3, "weight_decay": 1e-4}, **DEFAULT_READINGS},
        (TABLE1_TUNE, DROPOUT_TUNE), note="readings by rule: the official code's embeddings and batch penalty, "
        "the paper's annealing per step (DEFAULT_READINGS)")}
    cost_knob = CostKnob("gamma", (0.001, 0.01, 0.05, 0.1, 0.2), "training", "usage target gamma")

    def decision_noise(self, steps: int, batch_size: int, device: torch.device) -> torch.Tensor:
        return gumbel_noise((steps, batch_size, 2), device)

    def decide(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return straight_through_gumbel(logits, self.tau, noise, self.hp.gumbel_scale)

    def recurrence(self, noise: torch.Tensor) -> tuple[Recurrence, torch.Tensor]:
        rule = Recurrence("straight_through", tau=self.tau, sync_units=self.hp.coarse_hidden if self.hp.sync else 0,
                          gate_detached=self.gate_inputs_detached())
        return rule, self.hp.gumbel_scale * (noise[..., 1] - noise[..., 0])

    def loss(self, output: MethodOutput, batch: Batch):
        ce = soft_cross_entropy(output.extras["logits"], batch.labels)
        penalty = usage_penalty(output.extras["decisions"], output.extras["valid"], self.hp.gamma,
                                self.hp.penalty).mean()
        loss = ce + self.lam * penalty
        usage = (output.extras["decisions"].detach().sum(1) / output.extras["valid"].sum(1)).mean()
        return loss, {"ce": ce.item(), "penalty": penalty.item(), "fine_usage": usage.item(), "tau": self.tau}


@register_method("liteeval_rl")
class LiteEvalRL(_LiteEvalNet):
    summary = "LiteEval with its gate trained by REINFORCE (Bernoulli decisions, per-video reward, moving baseline)"
    display_name = "LiteEval-RL"
    baseline: torch.Tensor  # a buffer: the moving average of the reward
    citation = "Wu et al.: LiteEval, NeurIPS 2019 (its REINFORCE variant, section 4)"
    row = 4
    cost_knob = CostKnob("gamma", (0.001, 0.01, 0.05, 0.1, 0.2), "training", "usage target gamma")

    @dataclass(frozen=True)
    class Hparams(_LiteEvalNet.Hparams):
        # Eq. 5 per video: REINFORCE credits each video with its own reads (the batch term is the
        # same for every video of a batch, which gives the policy no per-video credit at all).
        penalty: str = choice("video", ("video", "batch"))
        # What the policy gradient trains: "gate", the gate alone (its inputs detached), or "network",
        # the gate and everything its inputs come from (the coarse and fine LSTMs, the embeddings).
        # "gate" since a validation tune (results/default-liteeval-rl-tune, with the entropy bonus
        # below); "network" before.
        policy_through: str = choice("gate", ("gate", "network"), before="network")
        entropy_weight: float = bounded(0.0, ge=0)  # an entropy bonus on the gate's decisions (each preset sets it)
        # What the reward is compared with: "moving", a moving average of the batch-mean reward;
        # "value", a learned per-video estimate from the coarse LSTM's last state (the module docstring).
        reward_baseline: str = choice("moving", ("moving", "value"))

    presets = {**_LiteEvalNet.presets,
               "default": Preset({"dropout": 0.5, "train": {"lr": 1e-3, "weight_decay": 1e-4},
                                  "policy_through": "gate", "entropy_weight": 0.0},
                                 (TABLE1_TUNE, RL_TUNE)),
               # Short videos, one burst of evidence: here the gate-only trials read about one fine
               # frame a video and scored 58-62 validation mAP, the network ones 91-99.
               "small": Preset({"policy_through": "network", "entropy_weight": 0.001}, (SMALL_RL_TUNE,))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        self.register_buffer("baseline", torch.tensor(float("nan")))
        # Training only (never at evaluation, so not among cost_modules): the reward expected of a
        # video before any decision, read from the coarse stream alone, so it cannot bias the gradient.
        self.value = nn.Linear(self.hp.coarse_hidden, 1) if self.hp.reward_baseline == "value" else None

    def decision_noise(self, steps: int, batch_size: int, device: torch.device) -> torch.Tensor:
        return torch.rand(steps, batch_size, device=device)

    def decide(self, logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        # Bernoulli(p): fire where a uniform draw falls below p (no gradient: REINFORCE).
        return (noise < logits.softmax(-1)[:, 1].detach()).to(logits.dtype)

    def recurrence(self, noise: torch.Tensor) -> tuple[Recurrence, torch.Tensor]:
        rule = Recurrence("bernoulli", sync_units=self.hp.coarse_hidden if self.hp.sync else 0,
                          gate_detached=self.gate_inputs_detached())
        return rule, noise

    def gate_inputs_detached(self) -> bool:
        return self.hp.policy_through == "gate"

    def loss(self, output: MethodOutput, batch: Batch):
        extras = output.extras
        decisions, valid = extras["decisions"], extras["valid"]
        log_probs = F.log_softmax(extras["logits"], dim=-1)
        ce_per_video = -(label_distribution(batch.labels) * log_probs).sum(-1)
        penalty = usage_penalty(decisions, valid, self.hp.gamma, self.hp.penalty)
        with torch.no_grad():
            reward = -(ce_per_video + self.lam * penalty)
            mean = reward.mean()
            if torch.isnan(self.baseline):
                self.baseline.copy_(mean)
            expected = self.baseline
        value_loss = reward.new_zeros(())
        if self.value is not None:
            # The coarse LSTM's state at each video's last frame: the decisions do not reach it.
            estimate = self.value(extras["coarse_last"].detach()).squeeze(-1)
            value_loss = F.mse_loss(estimate, reward)
            expected = estimate.detach()
        with torch.no_grad():
            advantage = reward - expected
            advantage = advantage / advantage.std().clamp_min(1e-6) if len(advantage) > 1 else advantage
            self.baseline.mul_(self.hp.baseline_momentum).add_((1 - self.hp.baseline_momentum) * mean)
        gate_log_probs = F.log_softmax(extras["gate_logits"], dim=-1)  # (B, T, 2)
        chosen = gate_log_probs.gather(2, decisions.long().unsqueeze(-1)).squeeze(-1) * valid
        policy = -(advantage * chosen.sum(1)).mean()
        # Entropy of each decision, averaged over a video's steps: the bonus keeps the gate from
        # saturating (always or never firing) before the reward has told it where reads pay.
        entropy = (-(gate_log_probs.exp() * gate_log_probs).sum(-1) * valid).sum(1) / valid.sum(1).clamp_min(1)
        bonus = self.hp.entropy_weight * entropy.mean()
        ce = ce_per_video.mean()
        usage = (decisions.sum(1) / valid.sum(1)).mean()
        logs = {"ce": ce.item(), "policy": policy.item(), "reward": reward.mean().item(),
                "entropy": entropy.mean().item(), "fine_usage": usage.item()}
        if self.value is not None:
            logs["value_loss"] = value_loss.item()
        return ce + policy - bonus + value_loss, logs
