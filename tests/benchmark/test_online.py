"""Online evaluation (LiteEval-K, Uniform-K, Seq-K, the budget hook) and the figures."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.__main__ import main
from benchmark.commands import online as online_module
from benchmark.commands.online import OnlineOptions, TrainedModels, evaluate_online
from benchmark.config import RunConfig
from benchmark.context import RunContext
from benchmark.presentation.plots import FIGURES, plot_all
from benchmark.protocol.budget import Budget
from benchmark.runner import Runner
from datasets.loading.bank import FeatureBank
from datasets.loading.sampling import AllFrames, ConsecutiveFrames, UniformFrames
from methods.base import MethodOutput, StepModule, VideoMethod
from methods.liteeval import LiteEval
from methods.losses import soft_cross_entropy
from methods.uniform import Uniform
from tests.helpers import DIMS, decode, write_store

LENGTHS = (3, 5, 2, 4, 6)
# Hand-made gate decisions per video (1: read fine features at this frame).
SCRIPT = [
    [1, 0, 1],
    [0, 1, 0, 1, 1],
    [0, 0],
    [1, 1, 1, 1],
    [0, 0, 0, 1, 0, 1],
]


class ScriptedGate(nn.Module):
    """Stands in for LiteEval's gate: at its t-th call it fires where SCRIPT says so."""

    def __init__(self, rows: list[int]) -> None:
        super().__init__()
        width = max(LENGTHS)
        table = torch.zeros(len(rows), width, dtype=torch.bool)
        for i, video in enumerate(rows):
            table[i, : LENGTHS[video]] = torch.tensor(SCRIPT[video], dtype=torch.bool)
        self.table, self.t = table, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fire = self.table[:, self.t]
        self.t += 1
        return torch.stack([(~fire).float(), fire.float()], dim=1)


@pytest.fixture
def one_split(tmp_path: Path) -> FeatureBank:
    """The five hand-made videos, all in one split, with known frame values."""
    write_store(tmp_path / "s", lengths=LENGTHS, splits=["test"] * len(LENGTHS))
    return FeatureBank(tmp_path / "s", "test", device="cpu", show_progress=False)


def _batch(bank: FeatureBank, sampler, meter=None, **kwargs):
    return next(bank.batches(len(LENGTHS), sampler, meter=meter, bucket=False, **kwargs))


def _scripted_liteeval(bank: FeatureBank) -> LiteEval:
    torch.manual_seed(0)
    method = LiteEval(3, DIMS, coarse_hidden=4, fine_hidden=8).eval()
    method.gate = ScriptedGate(list(range(len(LENGTHS))))
    return method


@pytest.mark.parametrize("k, stop, fine_at", [
    # stop: the step after which the prediction is forced (the K-th fine read, or the last frame)
    (1, [0, 1, 1, 0, 3], [[0], [1], [], [0], [3]]),
    (2, [2, 3, 1, 1, 5], [[0, 2], [1, 3], [], [0, 1], [3, 5]]),
    (3, [2, 4, 1, 2, 5], [[0, 2], [1, 3, 4], [], [0, 1, 2], [3, 5]]),
])
def test_liteeval_k_stops_right_after_the_kth_fine_read(one_split, k, stop, fine_at):
    method = _scripted_liteeval(one_split)
    meter = one_split.new_meter()
    budgeted = method.forward_budget(_batch(one_split, AllFrames(), meter), k)
    for v in range(len(LENGTHS)):
        assert meter.frames_of("fine", v).tolist() == fine_at[v]
        assert meter.frames_of("coarse", v).tolist() == list(range(stop[v] + 1))  # nothing after the stop
    assert meter.horizon().tolist() == [s + 1 for s in stop]
    assert budgeted.step_counts["fine_cell"].tolist() == [len(f) for f in fine_at]
    assert budgeted.step_counts["coarse_cell"].tolist() == [s + 1 for s in stop]
    # The forced prediction is the one the unbudgeted model gives at that step (it is causal).
    method.gate = ScriptedGate(list(range(len(LENGTHS))))
    full = method(_batch(one_split, AllFrames()))
    expected = full.step_scores[torch.arange(len(LENGTHS)), torch.tensor(stop)]
    torch.testing.assert_close(budgeted.scores, expected)


def test_liteeval_budget_must_be_positive(one_split):
    with pytest.raises(ValueError, match="fine-feature reads"):
        _scripted_liteeval(one_split).forward_budget(_batch(one_split, AllFrames()), 0)


def test_horizons_hide_frames_that_have_not_arrived(one_split):
    horizons = np.array([2, 5, 2, 3, 4])  # Uniform-K's K' per video
    meter = one_split.new_meter()
    batch = _batch(one_split, UniformFrames(2), meter, horizons=horizons)
    # K = 2 frames, one per half of the first K' frames (segment centres).
    assert batch.frames.tolist() == [[0, 1], [1, 3], [0, 1], [0, 2], [1, 3]]
    video, frame = decode(batch.read("fine").numpy())
    assert (video == np.arange(5)[:, None]).all() and frame.tolist() == batch.frames.tolist()
    assert (meter.horizon().numpy() <= horizons).all()
    with pytest.raises(IndexError, match="has 4 frames"):  # video v4 shows 4 of its 6 frames
        batch.features.read_frames("fine", torch.tensor([0, 0, 0, 0, 5]))


@pytest.mark.parametrize("bad, match", [(np.array([1, 2]), "5 integers"), (np.array([1, 2, 0, 1, 1]), "'v2'"),
                                        (np.ones(5) * 2.0, "integers")])
def test_bad_horizons_are_refused(one_split, bad, match):
    with pytest.raises(ValueError, match=match):
        _batch(one_split, UniformFrames(2), horizons=bad)


def test_seq_k_averages_the_first_k_frames(one_split):
    torch.manual_seed(0)
    classifier = Uniform(3, DIMS).eval()
    meter = one_split.new_meter()
    batch = _batch(one_split, ConsecutiveFrames(3), meter)
    scores = classifier(batch).scores
    features = one_split.features["fine"].float()
    for v, length in enumerate(LENGTHS):
        seen = min(3, length)
        assert meter.frames_of("fine", v).tolist() == list(range(seen))
        start = int(one_split.offsets[v])
        by_hand = classifier.classifier(features[start : start + seen]).softmax(-1).mean(0)
        torch.testing.assert_close(scores[v], by_hand)


@dataclass(frozen=True)
class _NoHparams:
    pass


class RunningMean(VideoMethod):
    """A plug-in online method that keeps the default budget hook (K = frames seen)."""

    name = "running_mean"
    streams = ("coarse",)
    online = True
    Hparams = _NoHparams

    def __init__(self, num_classes, dims, **hparams):
        super().__init__(num_classes, dims, **hparams)
        self.head = nn.Linear(dims["coarse"], num_classes)

    def sampler(self, train):
        return AllFrames()

    def forward(self, batch):
        x = batch.read("coarse")
        logits = self.head(x.sum(1) / batch.steps.clamp_min(1)[:, None])
        return MethodOutput(scores=logits.softmax(-1), step_counts={"head": torch.ones_like(batch.steps)},
                            extras={"logits": logits})

    def loss(self, output, batch):
        loss = soft_cross_entropy(output.extras["logits"], batch.labels)
        return loss, {"ce": loss.item()}

    def cost_modules(self):
        return {"head": StepModule(self.head, lambda: (torch.zeros(1, self.dims["coarse"]),))}


def test_default_budget_hook_shows_an_online_method_its_first_k_frames(one_split):
    method = RunningMean(3, DIMS).eval()
    meter = one_split.new_meter()
    method.forward_budget(_batch(one_split, AllFrames(), meter), 3)
    assert meter.horizon().tolist() == [min(3, n) for n in LENGTHS]
    assert meter.frames_read("coarse").tolist() == [min(3, n) for n in LENGTHS]
    with pytest.raises(TypeError, match="offline"):
        Uniform(3, DIMS).forward_budget(_batch(one_split, UniformFrames(2)), 3)


# ---------------------------------------------------------------------------- the harness
@pytest.fixture(scope="module")
def trained(tiny_store, tmp_path_factory) -> RunConfig:
    """A small saved main-job result: Uniform, LiteEval and a plug-in online method, one epoch."""
    root = tmp_path_factory.mktemp("online-results")
    cfg = RunConfig(dataset=str(tiny_store), methods=["uniform", "liteeval", "tests.benchmark.test_online:RunningMean"],
                    seeds=[0], budget=Budget(steps=2), results_root=str(root), show_progress=False)
    Runner(cfg).run()
    return cfg


def test_uniform_k_uses_where_liteeval_k_stopped_on_each_video(trained, monkeypatch):
    calls, real = [], online_module.evaluate

    def spy(method, bank, batch_size, **kwargs):
        result = real(method, bank, batch_size, **kwargs)
        calls.append((kwargs.get("desc"), kwargs.get("horizons"), result.frames_seen))
        return result

    monkeypatch.setattr(online_module, "evaluate", spy)
    table = evaluate_online(TrainedModels.of(RunContext.create(trained)), OnlineOptions(ks=(1, 2, 3)))
    seen = {desc: (horizons, frames) for desc, horizons, frames in calls}
    for k in (1, 2, 3):
        reference = seen[f"LiteEval-{k}"][1]
        horizons, frames = seen[f"Uniform-{k}"]
        assert (horizons == np.maximum(reference, 1)).all()
        assert (frames <= horizons).all()
        assert (seen[f"Seq-{k}"][1] <= k).all()
    assert set(table.display_name) == {"LiteEval-K", "running_mean-K", "Uniform-K", "Seq-K"}
    assert len(table) == 4 * 3 and table.top1_percent.between(0, 100).all() and (table.mean_gflops > 0).all()
    # Costs come from the meter: Seq-K reads K fine frames at most, the plug-in K coarse frames.
    seq = table[table.method == online_module.SEQ_K].set_index("K")
    assert (seq.mean_fine_frames <= seq.index).all() and seq.mean_gflops.is_monotonic_increasing
    plug = table[table.method == "running_mean"].set_index("K")
    assert (plug.mean_frames_seen <= plug.index).all() and (plug.mean_fine_frames == 0).all()


def test_online_and_plot_commands_on_a_saved_result(trained, tmp_path, capsys):
    shutil.copytree(Path(trained.results_root) / "tiny", tmp_path / "tiny")
    args = ["--dataset", trained.dataset, "--methods", *trained.methods, "--steps", "2", "--seeds", "0",
            "--results-dir", str(tmp_path)]
    assert main(["-q", "online", *args, "--max-k", "2"]) == 0
    out = tmp_path / "tiny"
    table = pd.read_csv(out / "online.csv")
    assert list(table.columns) == list(online_module.COLUMNS) and sorted(table.K.unique()) == [1, 2]
    assert "LiteEval-K" in capsys.readouterr().out
    # Plotting reads saved results only: it works with every trained model gone.
    for model in out.glob("runs/*/seed*/model.pt"):
        model.unlink()
    written = plot_all(out)
    assert sorted(p.name for p in written) == sorted(f"{n}.{e}" for n in FIGURES for e in ("png", "pdf"))
    for path in written:
        head = path.read_bytes()[:8]
        assert head.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF")
        assert path.stat().st_size > 5000
    # ...and the online command says how to get the models back.
    capsys.readouterr()
    assert main(["-q", "online", *args]) == 2
    err = capsys.readouterr().err
    assert "trained weights are not here" in err and f"--results-dir {tmp_path}" in err and "predates" not in err


def test_plot_skips_a_figure_whose_input_is_missing(trained, tmp_path, caplog):
    copy = tmp_path / "copy"
    shutil.copytree(Path(trained.results_root) / "tiny", copy)
    assert not (copy / "online.csv").exists()  # the main job alone writes no online curves
    written = plot_all(copy, ["online_curve", "offline_scatter"])
    assert [p.name for p in written] == ["offline_scatter.png", "offline_scatter.pdf"]
    assert "python -m benchmark online" in caplog.text
    with pytest.raises(FileNotFoundError, match="nothing to plot"):
        plot_all(copy, ["online_curve"])
    # Found (issue 14): a missing scores.npz was reported as a missing diagnostics.npz.
    caplog.clear()
    (copy / "runs" / "liteeval" / "seed0" / "scores.npz").unlink()
    plot_all(copy, ["offline_scatter", "fine_usage_per_class"])
    assert "scores.npz is missing" in caplog.text and "diagnostics.npz is missing" not in caplog.text


def test_follow_up_commands_read_the_run_from_its_folder(trained, tmp_path, capsys):
    """Found: online and latency needed the run's budget flags again (here --steps 2) and, given
    another, said only "trained with a different configuration". --name alone now suffices, and a
    flag that differs names the field, both values and the fix."""
    shutil.copytree(Path(trained.results_root) / "tiny", tmp_path / "tiny")
    where = ["--name", "tiny", "--results-dir", str(tmp_path)]
    assert main(["-q", "online", *where, "--max-k", "2"]) == 0
    table = pd.read_csv(tmp_path / "tiny" / "online.csv")
    assert {"liteeval", "running_mean"} <= set(table.method)  # the folder's online methods, the plug-in too
    assert main(["-q", "latency", *where, "--latency-batch", "2", "--repeats", "1", "--warmup", "0"]) == 0
    capsys.readouterr()
    assert main(["-q", "online", *where, "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "--steps 3:" in err and "budget.steps = 2" in err and "Leave --steps out" in err
    assert main(["-q", "online", *where, "--methods", "lstm"]) == 2
    assert "has no trained pairs of ['lstm']" in capsys.readouterr().err


def test_an_online_plot_at_100_percent_has_no_axis_above_it(tmp_path, monkeypatch):
    """Found on a small store of one's own where every curve read 100%: matplotlib's autoscale drew
    the accuracy axis up to 105%."""
    from benchmark.presentation import plots

    rows = [{"method": m, "display_name": n, "K": k, "budget_unit": "frames", "seed": 0, "top1_percent": 100.0,
             "mean_gflops": 8.0 * k, "mean_frames_seen": k, "mean_fine_frames": k, "videos": 16}
            for m, n in (("liteeval", "LiteEval-K"), ("uniform_k", "Uniform-K")) for k in (1, 2, 3)]
    pd.DataFrame(rows, columns=list(online_module.COLUMNS)).to_csv(tmp_path / "online.csv", index=False)
    tops = []
    monkeypatch.setattr(plots, "_save", lambda fig, out_dir, name: tops.append(fig.axes[0].get_ylim()[1]) or [])
    plots.plot_online(tmp_path, tmp_path / "figures")
    assert tops == [100.5]


def test_the_tables_figure_prints_no_label_over_another_and_ties_a_displaced_one_to_its_point(monkeypatch):
    """Found in the committed default figure: FrameExit's label printed over AR-Net's (two close
    points by the frame's left edge, where no place beside FrameExit was free)."""
    from benchmark.presentation import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, out_dir, name: figures.append(fig) or [])
    plots.plot_offline(Path(__file__).resolve().parents[2] / "results" / "default", Path("unused"))
    [fig] = figures
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) == len(pd.read_csv(Path(__file__).resolve().parents[2] / "results/default/table.csv"))
    boxes = [t.get_window_extent(renderer) for t in labels]
    overlapping = [(a.get_text(), b.get_text()) for i, (a, p) in enumerate(zip(labels, boxes))
                   for b, q in zip(labels[i + 1:], boxes[i + 1:]) if p.overlaps(q)]
    assert overlapping == []
    frame = ax.get_window_extent(renderer)
    assert all(frame.contains(b.x0, b.y0) and frame.contains(b.x1, b.y1) for b in boxes)
    # A label is nearer its own point than any other's, or tied to its point by a line.
    points = [ax.transData.transform(t.xy) for t in labels]
    for text, box, own in zip(labels, boxes, points):
        if text.arrow_patch is None:
            assert all(plots._box_distance(box, own) <= plots._box_distance(box, p) + 1e-6 for p in points), text
