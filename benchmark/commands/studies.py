"""The repository's studies: the questions beyond the main tune whose answers the shipped presets
carry, and the checks its pages show, as data that ``python -m benchmark reproduce`` runs.

A *study* decides some settings of one method on validation: the readings of a paper against
its authors' code, how a policy gradient flows, where dropout sits. It is a ``tune`` over its
``space`` (none: the method's own search space), run after the main tune and on top of its
choices (and of the studies before it),
so each study's trials start from the settings every later stage uses; what it chose is
merged into those settings (benchmark/reproduce.py ``settings``). A preset's ``Origin``
(methods/presets.py) names the study that chose a setting; tests/benchmark/test_reproduce.py checks that
every origin other than the main tune is a study here, with the keys it searches.

Every study's trainings are selection trainings of its method (benchmark/store_settings.py
``effort``), and the main tune evens them out (benchmark/reproduce.py ``evened_trials``): each
method of a table ends with the same count. So a study is kept only where its answer is carried:
LiteEval-RL's usage weight, reward baseline and dropout studies confirmed what it already had
(lambda 2 as in the paper, the moving average, the tune's dropout 0.5) at 12 trainings no other
method could be matched with, and were retired on 2026-12-07 (their folders are in git history).
On a store without a main tune (``small``) each method of its check gets a study of the same size.

A *check* decides nothing: a run that a page shows beside the main table (the same rows in
bfloat16, the RL variant on another store), rerun with the settings of its dataset.

The *other* published runs (``OTHERS``) are not on the main store's path: the stores the shipped
defaults were chosen across and that choice, the stores nobody tuned on (each run by the path for
a user's own data, which chooses its settings first), the small-data studies, the real clips.
Each is its folder's own commands, as its notes give them, run with ``--refresh`` (what is current
is kept; ``run --refresh`` chooses a store's settings again where it chose them), after the
stores they read are made (``python -m datasets ...``: a synthetic store is made again only
where it is missing or other; ``creates`` names what a command makes, and it is skipped where
that is there). ``NOT_REPRODUCED`` are the published folders no command on this machine can
make, and why.

The order is the order they run in, and it matters where a study reads what an earlier one chose
of the same method.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from benchmark.results import GROUP


@dataclass(frozen=True)
class Study:
    name: str  # results/<name>: the tuning record
    method: str
    space: dict[str, list[Any]] | None  # each setting and the values its trials take; None: the method's own
    trials: int
    question: str
    seeds: tuple[int, ...] = (0,)
    dataset: str = "default"  # a study on another store reads its own presets, not the main settings

    def argv(self) -> list[str]:
        """The ``tune`` command, less the data, settings and compute options reproduce adds."""
        space = ["--space", json.dumps(self.space)] if self.space is not None else []
        return ["tune", "--methods", self.method, "--trials", str(self.trials), "--seeds", *map(str, self.seeds),
                *space, "--name", self.name]

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


#: Each method's design settings (a reading of its authors' code, an architecture, where a gradient or
#: dropout goes) and the values its design study tries: every value, so a study's trials are its grid.
DESIGN: dict[str, dict[str, list[Any]]] = {
    "liteeval_rl": {"policy_through": ["gate", "network"], "entropy_weight": [0.0, 0.001, 0.01]},
    "liteeval": {"dropout": [0.5, 0.0], "dropout_at": ["everywhere", "classifier"]},
    "ocsampler": {"reading": ["official", "suite"], "frames": [6, 10]},
    "scsampler": {"reading": ["official", "suite"]},
    "frameexit": {"architecture": ["official", "linear"]},
    "arnet": {"reading": ["official", "suite"]},
}


def _design_study(name: str, method: str, question: str) -> Study:
    return Study(name, method, DESIGN[method], grid_size(DESIGN[method]), question)


def grid_size(space: dict[str, list[Any]]) -> int:
    return math.prod(len(values) for values in space.values())


STUDIES: tuple[Study, ...] = (
    _design_study("default-liteeval-rl-tune", "liteeval_rl",
                  "where LiteEval-RL's policy gradient flows, and its entropy bonus"),
    _design_study("default-liteeval-dropout-tune", "liteeval",
                  "where LiteEval's dropout sits and how strong it is (the official code has none)"),
    _design_study("default-ocsampler-readings", "ocsampler",
                  "OCSampler: its authors' code against the suite's first reading, and its frame count"),
    _design_study("default-scsampler-readings", "scsampler",
                  "SCSampler: its authors' code against the suite's first reading"),
    _design_study("default-frameexit-architectures", "frameexit",
                  "FrameExit's exit and pooling modules: the original's or linear ones"),
    _design_study("default-arnet-readings", "arnet", "AR-Net: its authors' code against the suite's first reading"),
    Study("small-liteeval-rl-tune", "liteeval_rl", DESIGN["liteeval_rl"], grid_size(DESIGN["liteeval_rl"]),
          "LiteEval-RL's policy path and bonus on the short videos of the `small` store", dataset="small"),
    # The small check's other rows, with as many selection trainings as LiteEval-RL's study above.
    Study("small-uniform-tune", "uniform", None, 6, "Uniform's optimiser and dropout on the `small` store",
          dataset="small"),
    Study("small-liteeval-tune", "liteeval", None, 6, "LiteEval's optimiser and dropout on the `small` store",
          dataset="small"),
)

CHECKS: tuple[Check, ...] = (
    Check("default-bf16", ("uniform", "liteeval", "liteeval_rl"),
          "the same rows trained and evaluated in bfloat16 autocast", options=("--precision", "bf16")),
    Check("small-liteeval-rl", ("uniform", "liteeval", "liteeval_rl"),
          "LiteEval against LiteEval-RL on the short videos of the `small` store", dataset="small"),
)


@dataclass(frozen=True)
class Other:
    """A published run beyond the main store's: its commands, each ``benchmark ...`` or ``datasets ...``
    as ``python -m`` takes them, and the results folders they write."""

    folders: tuple[str, ...]
    commands: tuple[tuple[str, ...], ...]
    creates: str | None = None  # a path the commands make: they are skipped where it is there

    def argvs(self, compute: list[str]) -> list[list[str]]:
        """The commands, with ``compute`` (--jobs, --device...) added to the benchmark runs that train."""
        return [[*c, *compute] if c[0] == "benchmark" and c[1] in TRAINS else list(c) for c in self.commands]


#: The benchmark commands that train pairs (and take --refresh and the compute options).
TRAINS = ("run", "tune")
_EXTENDED = ("--suite", "extended")
_FLOOR = ("--methods", *(f"docs/examples/exploration_floor.py:{c}" for c in
                         ("FrameGlimpseFloor", "FastForwardFloor", "LiteEvalRLFloor")),
          "--config", "docs/examples/exploration-floor.json", "--no-presets", "--space",
          '{"explore": [0, 0.05, 0.1, 0.2]}', "--trials", "4", "--seeds", "0", "1", "2")


def _store(name: str, preset: str, seed: int, *knobs: str) -> tuple[str, ...]:
    return ("datasets", "synth", "--preset", preset, "--seed", str(seed), "--name", name, "--out", f"data/{name}",
            *(("--set", *knobs) if knobs else ()))


def _own_path(store: str, *flags: str) -> tuple[str, ...]:
    """A store's table by the path for a user's own data: its settings chosen first (benchmark/select_first.py)."""
    return ("benchmark", "run", "--dataset", store, *_EXTENDED, *flags, "--refresh")


def _design_on(dataset: str, name: str) -> tuple[str, ...]:
    """The default store's design studies on another store, in one tune on top of its tune's choices
    (LiteEval's dropout at the default store's 0.5, so its study tries the same four candidates)."""
    return ("benchmark", "tune", "--dataset", dataset, "--methods", *DESIGN, "--no-presets", "--config",
            f"results/{name}-tune/tuned.json", "--set", "liteeval.dropout=0.5", "--space", json.dumps(DESIGN),
            "--trials", str(max(map(grid_size, DESIGN.values()))),
            *(f"{m}={grid_size(space)}" for m, space in DESIGN.items()), "--seeds", "0",
            "--name", f"{name}-design-study", "--refresh")


OTHERS: tuple[Other, ...] = (
    Other(("few-classes-tune",), (
        _store("few-classes", "default", 23, "num_classes=12", "num_videos=420", "mean_frames=80", "std_frames=30",
               "min_frames=30", "max_frames=160", "coarse_dim=512", "fine_dim=1536", "static_burst=6.0",
               "action_burst=2.0"),
        ("benchmark", "tune", "--dataset", "data/few-classes", *_EXTENDED, "--trials", "4", "--seeds", "0",
         "--no-presets", "--name", "few-classes-tune", "--refresh"))),
    Other(("small-tune",), (("benchmark", "tune", "--dataset", "small", *_EXTENDED, "--trials", "4", "--seeds", "0",
                             "--no-presets", "--name", "small-tune", "--refresh"),)),
    Other(("shipped-defaults",), (("benchmark", "transfer", "default-tune", "small-tune", "few-classes-tune",
                                   "--force"),)),
    # The design settings the shipped defaults carry: the default store's studies, repeated on the same two stores.
    Other(("small-design-study",), (_design_on("small", "small"),)),
    Other(("few-classes-design-study",), (_design_on("data/few-classes", "few-classes"),)),
    Other(("shipped-design",), (("benchmark", "transfer",
                                 GROUP.join(s.name for s in STUDIES if s.dataset == "default" and s.method in DESIGN),
                                 "small-design-study", "few-classes-design-study", "--name", "shipped-design",
                                 "--force"),)),
    Other(("unseen-a", "unseen-a-tune"), (_store("unseen-a", "small", 11, "num_videos=800"),
                                          _own_path("data/unseen-a"))),
    Other(("unseen-b", "unseen-b-tune"), (
        _store("unseen-b", "default", 41, "num_classes=24", "num_videos=480", "mean_frames=60", "std_frames=20",
               "min_frames=20", "max_frames=120", "coarse_dim=256", "fine_dim=1024"),
        _own_path("data/unseen-b"))),
    Other(("unseen-c", "unseen-c-tune"), (
        _store("unseen-c", "default", 57, "num_classes=30", "num_videos=450", "mean_frames=70", "std_frames=25",
               "min_frames=30", "max_frames=140", "coarse_dim=640", "fine_dim=1280", "static_burst=16.0",
               "action_burst=5.0"),
        _own_path("data/unseen-c"))),
    # The main store's shape and generator, another draw (its seed): does the main table survive it?
    Other(("default-seed1", "default-seed1-tune"), (_store("default-seed1", "default", 1),
                                                    _own_path("data/default-seed1"))),
    # The default store's reading studies, repeated on that draw: does the path for your own data miss them?
    Other(("default-seed1-readings",), (("benchmark", "tune", "--dataset", "data/default-seed1", "--methods",
                                         "ocsampler", "scsampler", "--config", "results/default-seed1.settings.json",
                                         "--space", json.dumps(DESIGN["ocsampler"]),  # SCSampler's frames too
                                         "--trials", "4", "--seeds", "0", "1", "2", "--name",
                                         "default-seed1-readings", "--refresh"),)),
    Other(("unseen-b-hidden-study",), (("benchmark", "tune", "--dataset", "data/unseen-b", "--methods", "lstm",
                                        "frameglimpse", "fastforward", "--config", "results/unseen-b.settings.json",
                                        "--space", '{"hidden": [16, 32, 64, 128]}', "--trials", "4", "--seeds", "0",
                                        "1", "2", "--name", "unseen-b-hidden-study", "--refresh"),)),
    Other(("small-explore-study",), (("benchmark", "tune", "--dataset", "small", *_FLOOR, "--name",
                                      "small-explore-study", "--refresh"),)),
    Other(("few-classes-explore-study",), (("benchmark", "tune", "--dataset", "data/few-classes", *_FLOOR, "--name",
                                            "few-classes-explore-study", "--refresh"),)),
    Other((), (("datasets", "sample-clips", "--out", "data/real-clips"),
               ("datasets", "extract", "--videos", "data/real-clips/videos", "--list", "data/real-clips/list.csv",
                "--out", "data/real-clips/store", "--name", "real-clips", "--coarse-backbone",
                "efficientnet_lite0@112", "--fine-backbone", "efficientnet_lite2@260")),
          creates="data/real-clips/store"),
    Other(("real-clips",), (
        # The class defaults it was made with (its 3 validation videos are too few to choose on).
        ("benchmark", "run", "--dataset", "data/real-clips/store", "--methods", "uniform", "liteeval",
         "--val-fraction", "0.34", "--no-presets", "--refresh", "--restore-weights"),  # the stream loads them
        ("benchmark", "stream", "data/real-clips/videos/bikes_test1.mp4", "--run", "results/real-clips", "--out",
         "results/real-clips/stream-bikes.json", "--overwrite"))),
    # Each part of the study in a results root of its own, so that no settings record is shared.
    Other(("validation-size-study",), tuple(
        _own_path(store, "--results-dir", f"results/validation-size-study/{root}", "--val-fraction", fraction,
                  "--name", name)
        for root, store, fraction, name in (("small-15", "small", "0.15", "small-val015"),
                                            ("small-30", "small", "0.3", "small-val03"),
                                            ("unseen-b-30", "data/unseen-b", "0.3", "unseen-b")))),
)

#: Published folders that no command on this machine makes, and why.
NOT_REPRODUCED = {"default-xeon": "the main job's rows on another kind of machine (an Intel Xeon VM): run "
                                  "`python -m benchmark run --name default-xeon` there"}
