"""The cost model: counted backbone costs, counted module costs, and per-video totals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.measurement.costs import count_module_gmacs, distribution, frame_costs, step_costs, video_gmacs
from datasets.extraction.backbones import count_gmacs_per_frame
from datasets.store.reader import FeatureStore
from methods import StepModule, resolve_method
from methods.base import preset_settings


def test_backbone_costs_match_the_paper_within_two_percent():
    assert count_gmacs_per_frame("mobilenet_v2", 112) == pytest.approx(0.08, rel=0.02)
    assert count_gmacs_per_frame("resnet101", 224) == pytest.approx(7.82, rel=0.02)


@pytest.mark.parametrize("inputs, hidden", [(2048, 2048), (512, 64), (1280, 512)])
def test_lstm_cell_is_counted_as_four_gates(inputs, hidden):
    cell = nn.LSTMCell(inputs, hidden)
    step = StepModule(cell, lambda: (torch.zeros(1, inputs), (torch.zeros(1, hidden), torch.zeros(1, hidden))))
    expected = 4 * (inputs * hidden + hidden * hidden) / 1e9
    assert count_module_gmacs(step) == pytest.approx(expected, rel=0.01)


def test_linear_layer_is_counted():
    step = StepModule(nn.Linear(300, 7), lambda: (torch.zeros(1, 300),))
    assert count_module_gmacs(step) == pytest.approx(300 * 7 / 1e9, rel=0.01)


def test_paper_setup_uniform_195_and_lstm_196():
    """On FCVID's shapes (2048-d fine features, 239 classes, 25 frames read per video)."""
    fine = count_gmacs_per_frame("resnet101", 224)
    uniform = resolve_method("uniform")(239, {"fine": 2048})
    lstm_cls = resolve_method("lstm")
    lstm = lstm_cls(239, {"fine": 2048}, hidden=preset_settings(lstm_cls.presets["paper"])["hidden"])
    frames = {"fine": np.array([25])}
    uniform_cost = video_gmacs(frames, {"classifier": np.array([25])}, {"fine": fine}, step_costs(uniform))[0]
    lstm_cost = video_gmacs(frames, {"lstm_cell": np.array([25]), "classifier": np.array([1])}, {"fine": fine},
                            step_costs(lstm))[0]
    assert uniform_cost == pytest.approx(195.5, abs=1.0)
    assert lstm_cost == pytest.approx(196.0, abs=1.0)
    assert lstm_cost > uniform_cost


def test_video_cost_formula_on_hand_numbers():
    got = video_gmacs(
        {"coarse": np.array([10, 4]), "fine": np.array([2, 0])},
        {"gate": np.array([10, 4])},
        {"coarse": 0.1, "fine": 8.0},
        {"gate": 0.5},
    )
    assert got.tolist() == pytest.approx([10 * 0.1 + 2 * 8 + 10 * 0.5, 4 * 0.1 + 4 * 0.5])
    with pytest.raises(ValueError, match="does not declare"):
        video_gmacs({"fine": np.array([1])}, {"mystery": np.array([1])}, {"fine": 1.0}, {})


def test_distribution():
    d = distribution(np.arange(101))
    assert d["mean"] == 50 and d["min"] == 0 and d["max"] == 100 and d["p50"] == 50 and d["p95"] == 95


def test_frame_costs_come_from_counting_not_the_manifest(tiny_store, hand_store):
    manifest = FeatureStore.open(tiny_store).manifest
    assert frame_costs(manifest)["fine"] == count_gmacs_per_frame("resnet101", 224)
    # Hand-made test stores name no torchvision backbone: their typed-in value is used.
    assert frame_costs(FeatureStore.open(hand_store).manifest) == {"coarse": 0.1, "fine": 1.0}
