"""The method interface, the built-in methods, and the registry with its plug-in paths."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from datasets.loading.bank import FeatureBank
from methods import VideoMethod, available_methods, register_method, resolve_method
from methods.registry import ENTRY_POINT_GROUP

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = f"{REPO}/docs/examples/coarse_mean.py:CoarseMean"


@pytest.fixture(scope="module")
def bank(tiny_store):
    return FeatureBank(tiny_store, "train", device="cpu", show_progress=False)


def test_builtins_are_registered():
    known = available_methods()
    assert {"uniform", "lstm"} <= set(known)
    for name, cls in known.items():
        assert cls.name == name and cls.summary and cls.streams


@pytest.mark.parametrize("spec", ["uniform", "lstm", EXAMPLE])
def test_methods_follow_the_interface(bank, spec):
    cls = resolve_method(spec)
    torch.manual_seed(0)
    method = cls(bank.num_classes, {s: bank.dim(s) for s in bank.streams})
    meter = bank.new_meter()
    batch = next(bank.batches(16, method.sampler(train=False), meter=meter))
    method.eval()
    out = method(batch)
    assert out.scores.shape == (16, bank.num_classes)
    assert torch.allclose(out.scores.sum(1), torch.ones(16), atol=1e-5)
    assert set(out.step_counts) <= set(method.cost_modules())
    assert all(v.shape == (16,) for v in out.step_counts.values())
    read = {s: int(meter.frames_read(s).sum()) for s in bank.streams}
    for stream in bank.streams:
        assert (read[stream] > 0) == (stream in cls.streams), read  # reads only what it declares
    method.train()
    training = next(bank.batches(16, method.sampler(train=True), train=True, seed=0))
    loss, logs = method.loss(method(training), training)
    assert loss.dim() == 0 and torch.isfinite(loss) and all(isinstance(v, float) for v in logs.values())


@pytest.mark.parametrize("spec", ["uniform", "lstm"])
def test_methods_can_fit_one_batch(bank, spec):
    torch.manual_seed(0)
    method = resolve_method(spec)(bank.num_classes, {s: bank.dim(s) for s in bank.streams}, dropout=0.0)
    batch = next(bank.batches(32, method.sampler(train=False), labels=True))  # fitted and checked on its labels
    optimiser = torch.optim.Adam(method.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss, _ = method.loss(method(batch), batch)
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    # Uniform's per-frame loss keeps a floor (frames without evidence are noise), so the
    # check is on the video-level predictions: the batch is fitted.
    assert loss.item() < 0.5 * first
    predicted = method.eval()(batch).scores.argmax(1)
    assert (batch.labels[torch.arange(32), predicted] == 1).float().mean() >= 0.9  # chance: 1/8


def test_uniform_averages_frame_probabilities(bank):
    method = resolve_method("uniform")(bank.num_classes, {"fine": bank.dim("fine")}).eval()
    batch = next(bank.batches(4, method.sampler(train=False)))
    out = method(batch)
    manual = method.classifier(batch.read("fine")).softmax(-1).mean(1)
    assert torch.allclose(out.scores, manual, atol=1e-6)
    assert out.step_counts["classifier"].tolist() == [25] * 4


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ValueError, match="bad hyper-parameters.*known: \\['frames', 'hidden', 'dropout'\\]"):
        resolve_method("lstm")(5, {"fine": 8}, hiden=3)
    with pytest.raises(ValueError, match="needs streams \\['fine'\\]"):
        resolve_method("uniform")(5, {"coarse": 8})


def test_register_method_refuses_clashes_and_non_methods():
    with pytest.raises(TypeError):
        register_method("x")(object)
    with pytest.raises(ValueError, match="already registered"):

        @register_method("uniform")
        class Impostor(resolve_method("uniform")):
            pass


def test_dotted_and_file_plugins(tmp_path, monkeypatch):
    (tmp_path / "my_plugins").mkdir()
    (tmp_path / "my_plugins" / "__init__.py").write_text("")
    (tmp_path / "my_plugins" / "mine.py").write_text(
        (REPO / "docs/examples/coarse_mean.py").read_text().replace("coarse_mean", "mine")
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_method("my_plugins.mine:CoarseMean").name == "mine"
    assert resolve_method(EXAMPLE).name == "coarse_mean"
    for spec, match in [("nope.module:X", "cannot import"), ("my_plugins.mine:Nope", "no attribute"),
                        ("my_plugins.mine:nn", "not a VideoMethod"), ("missing.py:X", "does not exist"),
                        ("no_such_method", "unknown method")]:
        with pytest.raises(ValueError, match=match):
            resolve_method(spec)


def test_entry_point_plugins(tmp_path, monkeypatch):
    """A package that declares the entry point is found without any edit to the suite."""
    package = tmp_path / "site"
    (package / "ep_plugin").mkdir(parents=True)
    (package / "ep_plugin" / "__init__.py").write_text((REPO / "docs/examples/coarse_mean.py").read_text())
    dist = package / "ep_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(f"""
        [{ENTRY_POINT_GROUP}]
        from_entry_point = ep_plugin:CoarseMean
    """))
    monkeypatch.syspath_prepend(str(package))
    known = available_methods()
    assert "from_entry_point" in known
    assert issubclass(known["from_entry_point"], VideoMethod)
    sys.modules.pop("ep_plugin", None)
    # As a user's installed package is found: by another process, through importlib.metadata.
    listed = subprocess.run([sys.executable, "-m", "benchmark", "methods"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(package), str(REPO)])}, check=False)
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("from_entry_point") and "Coarse mean" in line for line in listed.stdout.splitlines())
