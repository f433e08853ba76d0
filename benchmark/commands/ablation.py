"""The ablations of the paper's Tables 2 to 4, as variants of LiteEval run by the harness.

``python -m benchmark ablate {sync,gamma,units}`` trains one LiteEval variant per row and
writes ``results/<dataset>-ablate-<kind>/`` exactly like a main run (resumable, with
metrics.json, scores and provenance), with a table shaped like the paper's:

* sync  (Table 2): without and with synchronisation of the fine LSTM to the coarse LSTM;
* gamma (Table 3): the usage target gamma in {0.01, 0.03, 0.05, 0.10}: mAP and GFLOPs;
* units (Table 4): the coarse LSTM at 1/8, 1/4, 1/2 and 1 times LiteEval's coarse size for
  the dataset, the fine LSTM at LiteEval's fine size in every row: the paper's rows (64 to 512
  coarse units, fine 2048 = 4 x the largest) on the ``paper`` preset, and the same proportions
  at the default's scale (4 to 32 coarse units, fine 128). Row names say both sizes.

Variants start from LiteEval's settings for the dataset (preset, then the config file's
``[liteeval]`` table, then ``--epochs``) and change one hyper-parameter.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from benchmark.commands.defaults import ABLATION_COLUMNS, ABLATION_KINDS
from benchmark.config import RunConfig
from benchmark.context import RunContext
from benchmark.plans import MethodPlan, plan_methods
from benchmark.runner import Runner
from benchmark.stores import dataset_label, resolve_store
from datasets.common.errors import UsageError
from datasets.store.reader import FeatureStore

COLUMNS, KINDS = ABLATION_COLUMNS, ABLATION_KINDS


def variants(kind: str, base: MethodPlan) -> list[tuple[str, str, dict[str, Any]]]:
    """(result label, row name, hyper-parameter overrides) of each row of ``kind``."""
    if kind == "sync":
        return [("liteeval-nosync", "w/o sync", {"sync": False}), ("liteeval-sync", "LiteEval (sync)", {"sync": True})]
    if kind == "gamma":
        return [(f"liteeval-gamma{g:.2f}", f"gamma = {g:.2f}", {"gamma": g}) for g in (0.01, 0.03, 0.05, 0.10)]
    if kind == "units":
        coarse, fine = base.full_hparams()["coarse_hidden"], base.full_hparams()["fine_hidden"]
        sizes = sorted({max(1, coarse // d) for d in (8, 4, 2, 1)})
        return [(f"liteeval-coarse{u}", f"{u} coarse units (fine {fine})", {"coarse_hidden": u}) for u in sizes]
    raise UsageError(f"unknown ablation {kind!r}; choose one of {KINDS}")


def ablate(kind: str, cfg: RunConfig) -> dict[str, str]:
    """Run the ``kind`` ablation; return the written tables' texts."""
    if kind not in KINDS:
        raise UsageError(f"unknown ablation {kind!r}; choose one of {KINDS}")
    store = FeatureStore.open(resolve_store(cfg.dataset, cfg.data_seed, show_progress=cfg.show_progress))
    (base,) = plan_methods(replace(cfg, methods=["liteeval"]), store.manifest.name)
    plans = [
        MethodPlan(base.spec, base.cls, {**base.hparams, **overrides}, base.train, label=label, display=display)
        for label, display, overrides in variants(kind, base)
    ]
    dataset = dataset_label(cfg.dataset, store)
    cfg = replace(cfg, methods=None, name=cfg.name or f"{dataset}-ablate-{kind}")
    return Runner(cfg, context=RunContext.create(cfg, plans, store=store)).run(columns=COLUMNS[kind])
