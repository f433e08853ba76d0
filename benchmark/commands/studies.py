"""The repository's studies: the questions beyond the main tune whose answers the shipped presets
carry, and the checks its pages show, as data that ``python -m benchmark reproduce`` runs.

A *study* decides some settings of one method on validation: the readings of a paper against
its authors' code, how a policy gradient flows, where dropout sits. It is a ``tune`` over its
``space``, run after the main tune and on top of its choices (and of the studies before it),
so each study's trials start from the settings every later stage uses; what it chose is
merged into those settings (benchmark/reproduce.py ``settings``). A preset's ``Origin``
(methods/presets.py) names the study that chose a setting; tests/benchmark/test_reproduce.py checks that
every origin other than the main tune is a study here, with the keys it searches.

A *check* decides nothing: a run that a page shows beside the main table (the same rows in
bfloat16, the RL variant on another store), rerun with the settings of its dataset.

The order is the order they run in, and it matters where a study reads what an earlier one chose
(LiteEval-RL: the policy's path, then its usage weight, its baseline, its dropout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Study:
    name: str  # results/<name>: the tuning record
    method: str
    space: dict[str, list[Any]]  # each setting and the values its trials take
    trials: int
    question: str
    seeds: tuple[int, ...] = (0,)
    dataset: str = "default"  # a study on another store reads its own presets, not the main settings

    def argv(self) -> list[str]:
        """The ``tune`` command, less the data, settings and compute options reproduce adds."""
        return ["tune", "--methods", self.method, "--trials", str(self.trials), "--seeds", *map(str, self.seeds),
                "--space", json.dumps(self.space), "--name", self.name]

    @property
    def pairs(self) -> int:
        return self.trials * len(self.seeds)


@dataclass(frozen=True)
class Check:
    name: str  # results/<name>: its table
    methods: tuple[str, ...]
    question: str
    options: tuple[str, ...] = ()  # the run's own options (--precision bf16)
    seeds: tuple[int, ...] = (0, 1, 2)
    dataset: str = "default"

    def argv(self) -> list[str]:
        return ["run", "--methods", *self.methods, "--seeds", *map(str, self.seeds), *self.options,
                "--name", self.name]


RL_POLICY: dict[str, list[Any]] = {"policy_through": ["gate", "network"], "entropy_weight": [0.0, 0.001, 0.01]}

STUDIES: tuple[Study, ...] = (
    Study("default-liteeval-rl-tune", "liteeval_rl", RL_POLICY, 6,
          "where LiteEval-RL's policy gradient flows, and its entropy bonus"),
    Study("default-liteeval-rl-lam-tune", "liteeval_rl", {"lam": [2.0, 5.0, 10.0, 20.0]}, 4,
          "LiteEval-RL's usage weight at that bonus"),
    Study("default-liteeval-rl-baseline-tune", "liteeval_rl", {"reward_baseline": ["moving", "value"]}, 2,
          "LiteEval-RL's reward baseline: a moving average or a learned value", seeds=(0, 1)),
    Study("default-liteeval-rl-dropout-tune", "liteeval_rl", {"dropout": [0.2, 0.5]}, 2,
          "LiteEval-RL's dropout", seeds=(0, 1)),
    Study("default-liteeval-dropout-tune", "liteeval",
          {"dropout": [0.5, 0.0], "dropout_at": ["everywhere", "classifier"]}, 4,
          "where LiteEval's dropout sits and how strong it is (the official code has none)"),
    Study("default-ocsampler-readings", "ocsampler", {"reading": ["official", "suite"], "frames": [6, 10]}, 4,
          "OCSampler: its authors' code against the suite's first reading, and its frame count"),
    Study("default-scsampler-readings", "scsampler", {"reading": ["official", "suite"]}, 2,
          "SCSampler: its authors' code against the suite's first reading"),
    Study("default-frameexit-architectures", "frameexit", {"architecture": ["official", "linear"]}, 2,
          "FrameExit's exit and pooling modules: the original's or linear ones"),
    Study("default-arnet-readings", "arnet", {"reading": ["official", "suite"]}, 2,
          "AR-Net: its authors' code against the suite's first reading"),
    Study("small-liteeval-rl-tune", "liteeval_rl", RL_POLICY, 6,
          "LiteEval-RL's policy path and bonus on the short videos of the `small` store", dataset="small"),
)

CHECKS: tuple[Check, ...] = (
    Check("default-bf16", ("uniform", "liteeval", "liteeval_rl"),
          "the same rows trained and evaluated in bfloat16 autocast", options=("--precision", "bf16")),
    Check("small-liteeval-rl", ("uniform", "liteeval", "liteeval_rl"),
          "LiteEval against LiteEval-RL on the short videos of the `small` store", dataset="small"),
)
