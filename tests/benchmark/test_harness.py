"""The harness: a CLI run on the tiny preset, resume, force, config files, seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.__main__ import main
from benchmark.measurement import metrics
from datasets.common.atomic import atomic_write_json
from methods import available_methods

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = f"{REPO}/docs/examples/coarse_mean.py:CoarseMean"


@pytest.fixture(autouse=True)
def data_cache(tmp_path_factory, monkeypatch):
    """Synthetic stores of these tests go to one temporary cache, not the repository."""
    monkeypatch.setenv("LITEEVAL_DATA", str(tmp_path_factory.getbasetemp() / "data-cache"))


def run(tmp_path: Path, *extra: str, name: str = "t") -> int:
    return main(["-q", "run", "--dataset", "tiny", "--steps", "2", "--seeds", "0", "--results-dir", str(tmp_path),
                 "--name", name, *extra])


def stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.glob("runs/*/seed*/record.json")}


def test_run_writes_the_table_and_everything_behind_it(tmp_path, capsys):
    assert run(tmp_path) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "t"
    for name in ("table.md", "table.csv", "table.tex", "metrics.json", "provenance.json"):
        assert (out / name).is_file(), name
    table = (out / "table.md").read_text()
    assert f"its caption and marks: {out / 'table.md'}" in printed  # the terminal gets the main columns
    assert table.index("| Uniform") < table.index("| LSTM")  # the paper's row order
    assert "GMACs" in table and "Online" in table
    assert "\\toprule" in (out / "table.tex").read_text()
    assert (out / "table.csv").read_text().startswith("method,display_name,online,seeds,map_percent_mean")

    record = json.loads((out / "metrics.json").read_text())["per_seed"]
    for method in ("uniform", "lstm"):
        m = record[method]["0"]
        for key in ("map", "map_interpolated", "top1", "gflops", "frames_read", "params", "train_seconds",
                    "eval_videos_per_second", "classes_without_positives"):
            assert key in m, key
        assert m["gflops"]["mean"] > 0 and m["gflops"]["p95"] >= m["gflops"]["p5"]
        # The per-video scores are saved, and re-scoring them gives the reported numbers.
        saved = np.load(out / "runs" / method / "seed0" / "scores.npz")
        assert metrics.score(saved["scores"], saved["labels"]).map == pytest.approx(m["map"])
        assert saved["gmacs"].mean() == pytest.approx(m["gflops"]["mean"])
        assert len(saved["video_ids"]) == m["num_eval_videos"] == 64

    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seeds"] == [0] and prov["config"]["budget"]["steps"] == 2 and prov["budget"]["total_steps"] == 2
    assert len(prov["validation"]["video_ids"]) == prov["validation"]["num_videos"] > 0
    assert prov["device"]["cpu"] and prov["device"]["cpu_isa"] and "deterministic" in prov["device"]
    assert prov["versions"]["torch"] and "commit" in prov["git"]
    assert prov["device"]["device"] == "cpu"
    assert prov["dataset"]["provenance"]["preset"] == "tiny"
    assert record["lstm"]["0"]["train_steps"] == 2 and record["lstm"]["0"]["selection"]["best_step"] in (1, 2)
    computed = record["lstm"]["0"]["computed"]
    assert computed["device"]["device"] == "cpu" and computed["versions"]["ptflops"] and computed["at"]


def test_results_are_reused_from_another_checkout_of_the_same_data(tmp_path, monkeypatch):
    """Committed results stay valid when the store is regenerated elsewhere (same content)."""
    assert run(tmp_path, "--methods", "uniform") == 0
    before = stamps(tmp_path / "t")
    monkeypatch.setenv("LITEEVAL_DATA", str(tmp_path / "elsewhere"))  # the store is generated anew there
    assert run(tmp_path, "--methods", "uniform") == 0
    assert stamps(tmp_path / "t") == before


def test_rerun_resumes_and_force_recomputes(tmp_path):
    assert run(tmp_path) == 0
    out = tmp_path / "t"
    first = stamps(out)
    assert len(first) == sum(c.suite == "paper" for c in available_methods().values())  # Table 1's methods ran
    assert run(tmp_path) == 0
    assert stamps(out) == first  # nothing recomputed

    # An interrupted run: one pair never finished (its metrics.json is written last).
    (out / "runs" / "lstm" / "seed0" / "record.json").unlink()
    assert run(tmp_path) == 0
    after = stamps(out)
    assert after["runs/uniform/seed0/record.json"] == first["runs/uniform/seed0/record.json"]
    assert "runs/lstm/seed0/record.json" in after

    assert run(tmp_path, "--force") == 0
    forced = stamps(out)
    assert all(forced[k] != after[k] for k in after)


def test_the_extended_suite_adds_its_rows_below_table_1(tmp_path):
    assert run(tmp_path, "--methods", "uniform", "liteeval") == 0
    before = stamps(tmp_path / "t")
    extended = [n for n, c in available_methods().items() if c.suite == "extended"]
    assert extended
    # Two of Table 1's methods (to keep it short) plus the extended ones, into the same folder.
    assert main(["-q", "run", "--dataset", "tiny", "--steps", "2", "--seeds", "0", "--results-dir", str(tmp_path),
                 "--name", "t", "--methods", "uniform", "liteeval", *extended]) == 0
    assert all(stamps(tmp_path / "t")[k] == v for k, v in before.items())  # Table 1's pairs were kept
    table = (tmp_path / "t" / "table.md").read_text()
    assert table.index("| LiteEval ") < table.index("| SCSampler")


def test_suite_extended_runs_every_registered_method():
    from benchmark.config import RunConfig
    from benchmark.plans import plan_methods

    paper = {p.name for p in plan_methods(RunConfig(), "tiny")}
    everything = {p.name for p in plan_methods(RunConfig(suite="extended"), "tiny")}
    assert paper == {n for n, c in available_methods().items() if c.suite == "paper"}
    assert everything == set(available_methods()) and paper < everything


def test_changed_settings_are_not_mixed_with_old_results(tmp_path, capsys):
    assert run(tmp_path) == 0
    assert main(["-q", "run", "--dataset", "tiny", "--steps", "3", "--seeds", "0", "--results-dir", str(tmp_path),
                 "--name", "t"]) == 2
    err = capsys.readouterr().err
    assert "different configuration (budget.steps: this command 3, the pair 2)" in err  # names the field


def test_config_file_sets_hyper_parameters(tmp_path, capsys):
    config = tmp_path / "methods.json"
    config.write_text(json.dumps({"lstm": {"hidden": 16, "train": {"lr": 0.01}}}))
    assert run(tmp_path, "--methods", "lstm", "--config", str(config)) == 0
    m = json.loads((tmp_path / "t" / "metrics.json").read_text())["per_seed"]["lstm"]["0"]
    assert m["hparams"]["hidden"] == 16 and m["train"]["lr"] == 0.01 and m["train_steps"] == 2
    for bad, message in [({"lstm": {"hiden": 3}}, "unknown hyper-parameter"),
                         ({"lstm": {"train": {"epoch": 3}}}, "unknown training setting"),
                         ({"lstm": {"train": {"epochs": 3}}}, "the run's training budget"),
                         ({"lstmm": {}}, "unknown method")]:
        config.write_text(json.dumps(bad))
        assert run(tmp_path, "--methods", "lstm", "--config", str(config), name="bad") == 2
        assert message in capsys.readouterr().err


def test_seeds_give_mean_and_std_and_a_seed_is_deterministic(tmp_path):
    assert run(tmp_path, "--methods", "uniform", "--seeds", "0", "1") == 0
    table = (tmp_path / "t" / "table.md").read_text()
    assert "±" in table
    assert run(tmp_path, "--methods", "uniform", "--seeds", "1", name="again") == 0
    a = np.load(tmp_path / "t" / "runs" / "uniform" / "seed1" / "scores.npz")["scores"]
    b = np.load(tmp_path / "again" / "runs" / "uniform" / "seed1" / "scores.npz")["scores"]
    c = np.load(tmp_path / "t" / "runs" / "uniform" / "seed0" / "scores.npz")["scores"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_plugin_method_gets_a_row(tmp_path):
    assert run(tmp_path, "--methods", "uniform", EXAMPLE) == 0
    table = (tmp_path / "t" / "table.md").read_text()
    assert "| Coarse mean" in table  # the plug-in names its own row
    m = json.loads((tmp_path / "t" / "metrics.json").read_text())["per_seed"]["coarse_mean"]["0"]
    assert m["frames_read"] == {"coarse": m["frames_read"]["coarse"]} and m["gflops"]["mean"] < 5
    source = json.loads((tmp_path / "t" / "provenance.json").read_text())["methods"]["coarse_mean"]["source"]
    assert source["file"].endswith("docs/examples/coarse_mean.py") and len(source["sha256"]) == 16


def test_atomic_json_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"old": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"new": object()})
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left behind


def test_cli_in_a_subprocess(tmp_path):
    env = {**os.environ, "LITEEVAL_DATA": str(tmp_path / "data")}
    env.pop("LITEEVAL_PROGRESS", None)  # let the harness decide from the (non-)terminal
    listing = subprocess.run([sys.executable, "-m", "benchmark", "methods"], cwd=REPO, capture_output=True,
                             text=True, env=env)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    rows = [line for line in lines if not line.startswith(" ")]  # indented lines: each method's reference
    assert rows[0].startswith("uniform") and "offline" in rows[0] and rows[1].startswith("lstm")
    assert "Uniform" in rows[0] and "NeurIPS 2019" in lines[1]
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--dataset", "tiny", "--steps", "2", "--seeds", "0", "--methods",
         "uniform",
         "--results-dir", str(tmp_path / "results")],
        cwd=REPO, capture_output=True, text=True, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "\nUniform " in done.stdout and (tmp_path / "results" / "tiny" / "table.md").is_file()
    assert "\r" not in done.stderr  # no progress bars when stderr is not a terminal


@pytest.mark.parametrize("kind, rows", [("sync", ["w/o sync", "LiteEval (sync)"]),
                                        ("units", ["4 coarse units (fine 128)", "32 coarse units (fine 128)"])])
def test_ablation_tables(tmp_path, kind, rows):
    assert main(["-q", "ablate", kind, "--dataset", "tiny", "--steps", "2", "--seeds", "0",
                 "--results-dir", str(tmp_path)]) == 0
    out = tmp_path / f"tiny-ablate-{kind}"
    table = (out / "table.md").read_text()
    for row in rows:
        assert f"| {row}" in table
    assert table.index(rows[0]) < table.index(rows[-1])
    record = json.loads((out / "metrics.json").read_text())["per_seed"]
    hparams = {name: pairs["0"]["hparams"] for name, pairs in record.items()}
    if kind == "sync":
        assert hparams["liteeval-nosync"]["sync"] is False and hparams["liteeval-sync"]["sync"] is True
    else:
        assert {h["coarse_hidden"] for h in hparams.values()} == {4, 8, 16, 32}  # 1/8 .. 1 x the default's 32
        assert {h["fine_hidden"] for h in hparams.values()} == {128}  # one fine size, 4 x the largest coarse


def test_paper_presets_apply_by_dataset_name_and_the_config_file_wins(tmp_path):
    from benchmark.config import RunConfig
    from benchmark.plans import plan_methods

    cfg = RunConfig(methods=["liteeval", "lstm"])
    fcvid = {p.name: p for p in plan_methods(cfg, "fcvid")}
    le = fcvid["liteeval"].full_hparams()
    assert (le["coarse_hidden"], le["fine_hidden"], le["coarse_embed"]) == (512, 2048, 512)
    assert (le["lam"], le["gamma"]) == (2.0, 0.05)
    assert fcvid["liteeval"].train.lr == 1e-4
    anet = plan_methods(cfg, "activitynet")[0]
    assert (anet.full_hparams()["coarse_hidden"], anet.full_hparams()["fine_hidden"]) == (64, 512)
    assert anet.train.lr == 1e-4
    assert plan_methods(cfg, "paper")[1].full_hparams()["hidden"] == 2048  # LSTM on FCVID's shapes
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"liteeval": {"gamma": 0.1, "train": {"lr": 5e-4}}}))
    mine = plan_methods(RunConfig(methods=["liteeval"], config_file=str(config)), "fcvid")[0]
    assert mine.full_hparams()["gamma"] == 0.1 and mine.full_hparams()["fine_hidden"] == 2048
    assert mine.train.lr == 5e-4


def test_set_overrides_settings_without_a_file_and_is_recorded(tmp_path, capsys):
    """--set method.key=value, as mmaction2's --cfg-options: over the config file, recorded in provenance."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"lstm": {"hidden": 16, "train": {"lr": 0.01}}}))
    assert run(tmp_path, "--methods", "lstm", "--config", str(config), "--set", "lstm.hidden=24",
               "lstm.train.weight_decay=0", "lstm.dropout=0.1") == 0
    pair_config = json.loads((tmp_path / "t" / "runs" / "lstm" / "seed0" / "config.json").read_text())
    assert pair_config["hparams"]["hidden"] == 24 and pair_config["hparams"]["dropout"] == 0.1
    assert pair_config["train"]["lr"] == 0.01 and pair_config["train"]["weight_decay"] == 0  # merged, not replaced
    recorded = json.loads((tmp_path / "t" / "provenance.json").read_text())["config"]["overrides"]
    assert recorded == ["lstm.hidden=24", "lstm.train.weight_decay=0", "lstm.dropout=0.1"]
    capsys.readouterr()
    for bad, says in (("lstm.hidden", "write method.setting=value"), ("nope.hidden=3", "unknown method(s) ['nope']"),
                      ("lstm.size=3", "unknown hyper-parameter(s) ['size']")):
        assert run(tmp_path, "--methods", "lstm", "--set", bad, name="bad") == 2
        assert says in capsys.readouterr().err


def test_stores_lists_the_presets_the_stores_and_the_preset_names(tmp_path, hand_store, capsys):
    import shutil

    shutil.copytree(hand_store, tmp_path / "mine" / "store")
    assert main(["stores", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for preset in ("tiny", "default", "small", "paper"):
        assert f"  {preset} " in out
    assert "seed 0 not generated yet" in out and str(tmp_path / "mine" / "store") in out
    assert "fcvid        LiteEval, LiteEval-RL" in out


def test_library_chatter_is_kept_out_of_the_log():
    """Found (issue 46): about 30 fontTools.subset INFO lines in the log of `curves` (one per PDF figure's font)."""
    import logging

    from datasets.common.cli import configure_logging

    configure_logging()
    assert not logging.getLogger("fontTools.subset").isEnabledFor(logging.INFO)
    assert logging.getLogger("fontTools.subset").isEnabledFor(logging.WARNING)


def test_a_labelled_split_the_table_does_not_use_is_said_not_dropped(tmp_path, caplog):
    """A user's store with train, val and test: the table trains on train (its validation part carved
    from it, as on every store) and evaluates on test; found: the val split's videos were left out
    without a word. The run warns and the caption names them."""
    import logging

    from datasets.sources.ingest import ingest

    rng = np.random.default_rng(0)
    lines = ["video_id,split,labels"]
    for stream, dim in (("coarse", 6), ("fine", 10)):
        (tmp_path / stream).mkdir()
    for i in range(36):
        split = "train" if i < 20 else "val" if i < 28 else "test"
        lines.append(f"v{i},{split},c{i % 2}")
        for stream, dim in (("coarse", 6), ("fine", 10)):
            np.save(tmp_path / stream / f"v{i}.npy", rng.standard_normal((4, dim)).astype(np.float32))
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    ingest(tmp_path / "labels.csv", "csv", tmp_path / "coarse", tmp_path / "fine", tmp_path / "store",
           show_progress=False)
    args = ["-q", "run", "--dataset", str(tmp_path / "store"), "--methods", "uniform", "--steps", "2", "--seeds", "0",
            "--no-presets", "--results-dir", str(tmp_path / "results")]
    with caplog.at_level(logging.WARNING, logger="benchmark.runner"):
        assert main(args) == 0
    said = "Not used: the store's labelled split val (8 videos)"
    assert any(said in r.getMessage() for r in caplog.records)
    assert said in (tmp_path / "results" / "store" / "table.md").read_text()
    assert main([*args, "--eval-split", "val", "--name", "on-val"]) == 0  # evaluated on val: test is the one left
    assert "labelled split test (8 videos)" in (tmp_path / "results" / "on-val" / "table.md").read_text()
