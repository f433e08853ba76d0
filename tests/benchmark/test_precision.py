"""--precision: bfloat16 products as an option, part of every pair's identity and record
(benchmark/precision.py)."""

from __future__ import annotations

import json

import pytest
import torch

from benchmark.__main__ import main
from benchmark.precision import computing_in
from datasets.loading.bank import FeatureBank
from methods import resolve_method


def quick(root, *extra, name="p", method="liteeval"):
    return ["-q", "run", "--dataset", "tiny", "--methods", method, "--seeds", "0", "--steps", "2", "--jobs", "1",
            "--validations", "1", "--results-dir", str(root), "--name", name, *extra]


def test_a_bf16_pair_says_so_and_is_never_reused_for_fp32(tmp_path, capsys):
    assert main(quick(tmp_path, "--precision", "bf16")) == 0
    pair = tmp_path / "p" / "runs" / "liteeval" / "seed0"
    assert json.loads((pair / "config.json").read_text())["precision"] == "bf16"
    assert json.loads((pair / "record.json").read_text())["computed"]["precision"] == "bf16"
    capsys.readouterr()
    assert main(quick(tmp_path)) == 2  # the same folder in fp32: another configuration
    assert "different configuration (precision: this command 'fp32', the pair 'bf16')" in capsys.readouterr().err


def test_a_pair_from_before_precisions_were_recorded_counts_as_fp32(tmp_path):
    assert main(quick(tmp_path, method="uniform")) == 0
    config = tmp_path / "p" / "runs" / "uniform" / "seed0" / "config.json"
    stored = json.loads(config.read_text())
    assert stored.pop("precision") == "fp32"
    config.write_text(json.dumps(stored))
    # Kept, not refused: it was computed in float32 (it may be reported stale, not recomputed).
    assert main(quick(tmp_path, method="uniform")) == 0


def test_an_unknown_precision_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(quick(tmp_path, "--precision", "fp8"))
    assert exit_info.value.code == 2 and "--precision" in capsys.readouterr().err


def test_bf16_runs_products_in_bf16_and_keeps_liteevals_recurrence_in_fp32(tiny_store):
    bank = FeatureBank(tiny_store, "train", device="cpu", show_progress=False)
    torch.manual_seed(0)
    method = resolve_method("liteeval")(bank.num_classes, {s: bank.dim(s) for s in bank.streams},
                                        coarse_hidden=8, fine_hidden=16).train()
    batch = next(bank.batches(8, method.sampler(train=True), train=True, seed=0))
    with computing_in("bf16", bank.device):
        assert method.classifier(torch.zeros(2, 16)).dtype == torch.bfloat16  # a product: bf16
        out = method(batch)
        loss, _ = method.loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss) and method.fine_cell.weight_hh.grad is not None
    assert out.extras["decisions"].dtype == torch.float32  # the recurrence ran in fp32
    with computing_in("fp32", bank.device):
        assert method.classifier(torch.zeros(2, 16)).dtype == torch.float32
