"""The one interface every method implements.

A method is a ``torch.nn.Module`` that declares what it needs (which feature streams, how
frames are sampled, whether it can run online) and turns a ``Batch`` into a
``MethodOutput``. It reads features only through the batch's metered accessor, so the
frames it reads are recorded by the harness, not reported by the method. What a method
does report are the *steps* it ran of each of its own modules (``step_counts``), whose
per-step cost the harness counts with ptflops on ``cost_modules()``.

Hyper-parameters are a dataclass per method (``Hparams``), so an unknown or misspelt key in
a config file is an error, and training settings (``TrainConfig``) have per-method
defaults that the config file can override. See README "Adding a method".
"""

from __future__ import annotations

import functools
import math
import traceback
import types
import typing
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

import torch
from torch import nn

from datasets.common.errors import UsageError, UserError
from datasets.loading.access import UndeclaredStreamError
from datasets.loading.bank import Batch
from datasets.loading.sampling import FrameSampler
from methods.suites import SUITES  # noqa: F401  (re-exported: methods.base.SUITES)

#: Training settings that belong to the run's budget (benchmark/protocol/budget.py), not to a method.
BUDGET_SETTINGS = {"epochs": "--epochs", "batch_size": "--batch-size", "steps": "--steps"}


def _accepts(kind: Any, value: Any) -> bool:
    """Whether ``value`` fits the annotated ``kind`` (the simple types settings use)."""
    if kind is Any:
        return True
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if origin is typing.Literal:
        return value in typing.get_args(kind)
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if origin in (tuple, list) or kind in (tuple, list):
        return isinstance(value, (tuple, list))
    return True  # a type the settings do not use: left to the method


@dataclass(frozen=True)
class Bounds:
    """The values a numeric setting may take (each number of a tuple setting, e.g. jumps)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: Any) -> str:
        """Why ``value`` is out of bounds ("" when it is not)."""
        for number in value if isinstance(value, tuple | list) else (value,):
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            if not math.isfinite(number):
                return "it must be a finite number"
            for bound, ok, text in ((self.ge, lambda b: number >= b, ">="), (self.gt, lambda b: number > b, ">"),
                                    (self.le, lambda b: number <= b, "<="), (self.lt, lambda b: number < b, "<")):
                if bound is not None and not ok(bound):
                    return f"it must be {self.describe()}"
        return ""

    def describe(self) -> str:
        parts = [f"{op} {bound:g}" for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if bound is not None]
        return " and ".join(parts) or "a finite number"


def bounded(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None) -> Any:
    """A setting's dataclass field with the values it may take (checked with its type where a
    config file or a command line sets it: a negative ``grad_clip`` or a ``hidden`` of 0 is
    refused, naming the key, instead of training something else)."""
    return field(default=default, metadata={"bounds": Bounds(ge, gt, le, lt)})


#: ``choice`` without ``before``: a setting that results computed earlier already had.
_ALWAYS = object()


def added(default: Any, *, before: Any) -> Any:
    """A setting added to a method after results were computed, whose default changes what the
    method does: ``before`` is the value those results were computed with (a record that lacks
    the setting is read as having it; benchmark/context.py ``identity_difference``)."""
    return field(default=default, metadata={"before": before})


def choice(default: str, options: tuple[str, ...], *, before: Any = _ALWAYS) -> Any:
    """A setting that names one of a few ``options`` (a reading of a paper, a schedule): any other
    value is refused where it is set, naming the options (``check_setting_types``). ``before`` as
    for ``added``, when the setting came after results that lack it."""
    metadata: dict[str, Any] = {"choices": tuple(options)}
    if before is not _ALWAYS:
        metadata["before"] = before
    return field(default=default, metadata=metadata)


def check_setting_types(settings_cls: type, values: dict[str, Any], *, where: str) -> None:
    """Refuse a value of the wrong type (``{"hidden": "big"}``), out of the setting's bounds
    (``bounded``; every float must be finite) or not among its options (``choice``), with one
    line that names the setting, the value and what it must be, before anything is built or
    trained."""
    hints = typing.get_type_hints(settings_cls)
    bounds = {f.name: f.metadata.get("bounds", Bounds()) for f in fields(settings_cls)}
    choices = {f.name: f.metadata["choices"] for f in fields(settings_cls) if "choices" in f.metadata}
    for key, value in values.items():
        kind = hints.get(key)
        if kind is not None and not _accepts(kind, value):
            shown = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
            raise UsageError(f"{where}: {key} = {value!r} is a {type(value).__name__}; it must be {shown}")
        if key in choices and value not in choices[key]:
            raise UsageError(f"{where}: {key} = {value!r}; choose one of {list(choices[key])}")
        problem = bounds.get(key, Bounds()).problem(value)
        if problem:
            raise UsageError(f"{where}: {key} = {value!r} is out of range: {problem}")


#: The optimiser's settings every method may tune (``VideoMethod.search_space``).
OPTIMISER_SEARCH_SPACE: dict[str, tuple[Any, ...]] = {"train.lr": (3e-4, 1e-3, 3e-3), "train.weight_decay": (0.0, 1e-4)}
#: What the built-in methods search: the optimiser and their dropout (each has one), 18 settings.
STANDARD_SEARCH_SPACE: dict[str, tuple[Any, ...]] = {**OPTIMISER_SEARCH_SPACE, "dropout": (0.0, 0.2, 0.5)}


@dataclass(frozen=True)
class TrainConfig:
    """How the harness optimises a method (Adam, like the paper).

    How long it trains, and on batches of which size, is the run's budget, the same for
    every method (benchmark/protocol/budget.py); a method only sets its optimiser's settings."""

    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(0.0, ge=0)
    grad_clip: float | None = bounded(5.0, gt=0)  # max gradient norm; None: no clipping
    eval_batch_size: int = bounded(256, ge=1)

    def updated(self, overrides: dict[str, Any], *, where: str) -> TrainConfig:
        budget = sorted(set(overrides) & set(BUDGET_SETTINGS))
        if budget:
            flags = ", ".join(BUDGET_SETTINGS[k] for k in budget)
            raise UsageError(f"{where}: {budget} is the run's training budget, the same for every method; "
                             f"remove it there and pass {flags} to the command instead")
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UsageError(f"{where}: unknown training setting(s) {unknown}; known: {sorted(known)}")
        check_setting_types(TrainConfig, overrides, where=where)
        return replace(self, **overrides)


@dataclass(frozen=True)
class Origin:
    """Where some of a preset's settings were chosen: a tuning run's committed record.

    The provenance is data, not a comment, so that ``python -m benchmark methods --verbose`` and
    the results page print it and a test checks it against the record itself (its chosen
    values, and the split its trials say they were scored on)."""

    record: str  # the tune's results folder, results/<record>, whose tuned.json holds the choice
    keys: tuple[str, ...]  # the settings it chose, as a config file names them ("dropout", "train.lr")
    scored_on: str  # the split the tune's trials were scored on, as their records say
    date: str  # when it was chosen (YYYY-MM-DD)

    def describe(self) -> str:
        return (f"{', '.join(self.keys)}: chosen by results/{self.record} on {self.date}, trials scored on "
                f"{self.scored_on}")


#: When a cost knob's setting is read: evaluating (one trained model serves every point) or training
#: (one training per point).
KNOB_TIMES = ("evaluation", "training")


@dataclass(frozen=True)
class CostKnob:
    """How a method's cost moves: the one setting that moves it, and the operating points an
    accuracy-cost curve sweeps by default (``python -m benchmark curves``).

    ``setting`` is an ``Hparams`` field. ``at = "evaluation"``: the setting is read when the
    method evaluates (a frame count, an exit threshold), so one trained model serves every point;
    ``"training"``: it shapes training (a usage target, a cost weight), one training per point.
    The default ``points`` span about 10% to 100% of Uniform-25's cost on the default store; the
    order they are given in is the order they are drawn."""

    setting: str
    points: tuple[Any, ...]
    at: str = "evaluation"
    what: str = ""  # the axis label's words for the setting ("frames read", "usage target gamma")

    def __post_init__(self) -> None:
        if self.at not in KNOB_TIMES:
            raise ValueError(f"CostKnob.at must be one of {KNOB_TIMES}, got {self.at!r}")
        if len(self.points) < 2:
            raise ValueError(f"a cost knob needs at least two points, got {self.points!r}")


@dataclass(frozen=True)
class Preset:
    """A method's settings for one dataset (hyper-parameters; training settings under "train"),
    with where they were chosen (``origins``; none: set by hand, e.g. a paper's settings)."""

    settings: dict[str, Any]
    origins: tuple[Origin, ...] = ()
    note: str = ""  # where settings set by hand come from (a paper's section, the official code)


def preset_settings(preset: Preset | Mapping[str, Any]) -> dict[str, Any]:
    """A preset's settings, whether given as a ``Preset`` or (plug-ins) as a plain mapping."""
    return dict(preset.settings if isinstance(preset, Preset) else preset)


@dataclass
class MethodOutput:
    """What a forward pass returns for B videos.

    ``scores`` are the per-video class scores that are evaluated (probabilities, so they
    are comparable across videos for average precision). ``step_scores`` (B, T, C) are the
    per-step scores of an online method (the prediction it would give if stopped after each
    step); ``step_counts`` maps each entry of ``cost_modules()`` to how many times it ran
    per video (B,); ``diagnostics`` holds per-video extras (e.g. chosen frames) for
    analysis; ``extras`` anything the loss needs (logits, log-probabilities...).
    """

    scores: torch.Tensor
    step_counts: dict[str, torch.Tensor]
    step_scores: torch.Tensor | None = None
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class MethodError(UserError):
    """A method's own code raised while the harness ran it (a plug-in's bug, usually)."""


def method_failure(name: str, stage: str | None, exc: BaseException) -> MethodError:
    """``exc``, raised in method ``name``'s ``stage`` (forward, loss...; None: the function it was
    raised in), as one line that names the method, what it raised and where (the innermost frame
    outside torch and the harness)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "site-packages" not in f.filename and "/torch/" not in f.filename
           and not f.filename.endswith(("benchmark/training.py", "benchmark/conformance.py",
                                        "datasets/loading/access.py"))]
    found = own or frames
    at = f" at {found[-1].filename}:{found[-1].lineno}" if found else ""
    stage = stage or (found[-1].name if found else "its code")
    return MethodError(f"method {name!r} raised {type(exc).__name__} in {stage}(){at}: {exc} (set LITEEVAL_DEBUG=1 "
                       "for the traceback)")


class MethodOutputError(UsageError):
    """A method's output breaks the interface (shapes, types, signs, completeness)."""


def output_problem(output: Any, batch_size: int, num_classes: int, modules: set[str]) -> str:
    """What is wrong with a forward pass's ``output`` for a batch of ``batch_size`` videos, ""
    when nothing is. Costs and accuracy are computed from it, so it is checked where it
    leaves the method: per-video class scores (B, C) of a float type (a scalar would be
    broadcast to every video), one run count per video for every module of ``cost_modules()``
    (a module left out would be charged nothing) and none other, counts whole and
    non-negative (a negative one would subtract cost), and per-step scores, if any, (B, T, C)."""
    if not isinstance(output, MethodOutput):
        return f"forward returned a {type(output).__name__}, not a MethodOutput"
    scores = output.scores
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point():
        return f"scores must be a float tensor, got {type(scores).__name__} {getattr(scores, 'dtype', '')}".rstrip()
    if tuple(scores.shape) != (batch_size, num_classes):
        return f"scores have shape {tuple(scores.shape)}; one row per video and one column per class is " \
               f"({batch_size}, {num_classes})"
    counts = output.step_counts
    if not isinstance(counts, dict):
        return f"step_counts must be a dict of module -> (B,) run counts, got {type(counts).__name__}"
    missing, unknown = sorted(modules - set(counts)), sorted(set(counts) - modules)
    if missing:
        return f"step_counts lacks {missing}, declared by cost_modules(): every declared module's runs must be counted"
    if unknown:
        return f"step_counts names {unknown}, which cost_modules() does not declare (declared: {sorted(modules)})"
    for name, runs in counts.items():
        if not isinstance(runs, torch.Tensor) or tuple(runs.shape) != (batch_size,):
            shape = tuple(runs.shape) if isinstance(runs, torch.Tensor) else type(runs).__name__
            return f"step_counts[{name!r}] must be a ({batch_size},) tensor of runs per video, got {shape}"
        values = runs.detach().double()
        if not bool(torch.isfinite(values).all()) or bool((values < 0).any()) or bool((values != values.round()).any()):
            return f"step_counts[{name!r}] must be whole, non-negative run counts, got values such as " \
                   f"{values[(values < 0) | (values != values.round()) | ~torch.isfinite(values)][:3].tolist()}"
    steps = output.step_scores
    if steps is not None and (not isinstance(steps, torch.Tensor) or steps.dim() != 3
                              or steps.shape[0] != batch_size or steps.shape[2] != num_classes):
        shape = tuple(steps.shape) if isinstance(steps, torch.Tensor) else type(steps).__name__
        return f"step_scores must be (B, T, C) = ({batch_size}, T, {num_classes}), got {shape}"
    return ""


class StreamDims(dict):
    """The feature width of each stream a method declares, as its constructor receives it.

    A plain dict would answer a stream the method did not declare with a bare ``KeyError`` (or,
    when another method of the run loaded that stream, with its width, and then the method reads a
    stream it is never charged for); this one refuses it with the same line as an undeclared read."""

    def __init__(self, dims: Mapping[str, int], *, method: str, declared: tuple[str, ...]) -> None:
        super().__init__({s: dims[s] for s in declared if s in dims})
        self.method, self.declared = method, tuple(declared)

    def __missing__(self, stream: str) -> int:
        raise UndeclaredStreamError(
            f"method {self.method!r} asked for the width of the {stream!r} stream but declares streams = "
            f"{self.declared}; add {stream!r} to its `streams` so that the run loads that stream and charges its reads")

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (worker processes) with its declaration
        return functools.partial(StreamDims, method=self.method, declared=self.declared), (dict(self),)


@dataclass(frozen=True)
class StepModule:
    """A module a method runs a counted number of times per video, with an example input.

    ``example_args()`` returns the positional arguments for one call with batch size 1;
    the harness counts the module's multiply-accumulates per call with ptflops.
    """

    module: nn.Module
    example_args: Callable[[], tuple[Any, ...]]


#: A live frame's feature of one stream, (D,) on the method's device, computed when called: the
#: stream command runs that stream's backbone on the frame only when a method asks for it.
FeatureSource = Callable[[], torch.Tensor]


class FrameStream(ABC):
    """One live video, frame by frame, for an online method (``VideoMethod.start_stream``).

    The harness evaluates methods on stored features (``forward``); ``python -m benchmark
    stream`` runs one on a video as it plays, where a feature exists only once its backbone has
    run on the frame. So ``step`` receives, per stream, a source it calls only for the features
    it needs, and the caller counts the backbones that ran, as the meter counts reads."""

    @abstractmethod
    def step(self, features: Mapping[str, FeatureSource]) -> torch.Tensor:
        """Take the next frame; return the (C,) class probabilities after it (the prediction
        if the video stopped here)."""


class VideoMethod(nn.Module, ABC):
    """Base class of every method. Subclasses set the class attributes and implement
    ``sampler``, ``forward``, ``loss`` and ``cost_modules``."""

    #: Registry name, set by ``@register_method``.
    name: ClassVar[str] = ""
    #: One line for ``python -m benchmark methods``.
    summary: ClassVar[str] = ""
    #: The row name in tables and figures (default: the registry name).
    display_name: ClassVar[str] = ""
    #: The paper the method comes from (authors, venue, year), shown by ``benchmark methods``.
    citation: ClassVar[str] = ""
    #: Position of the method's row within its suite's rows: the paper's Table 1 order for
    #: "paper", publication order for "extended". Plug-ins that leave it follow the built-ins
    #: in the order they were given.
    row: ClassVar[int] = 1000
    #: Feature streams the method reads (the bank loads only these).
    streams: ClassVar[tuple[str, ...]] = ("fine",)
    #: True if the method uses only past frames (can run on a live stream); online methods
    #: get a budget curve from ``python -m benchmark online`` through ``forward_budget``.
    online: ClassVar[bool] = False
    #: Which table the method belongs to by default: "paper" (the paper's Table 1, the main
    #: job) or "extended" (later methods, added by ``run --suite extended``; see SUITES).
    suite: ClassVar[str] = "extended"
    #: What the budget K of ``forward_budget`` counts (the x of "K" in the online table).
    budget_unit: ClassVar[str] = "frames"
    #: How the method's cost moves (an accuracy-cost curve's operating points); None: the
    #: method is one point. See ``CostKnob``.
    cost_knob: ClassVar[CostKnob | None] = None
    #: Hyper-parameters of the model (a dataclass; instances are built from config dicts).
    Hparams: ClassVar[type] = dataclass(type("NoHparams", (), {}))
    #: Default training settings; a config file may override them per method.
    train_defaults: ClassVar[TrainConfig] = TrainConfig()
    #: Per-dataset settings, keyed by the store's manifest name (e.g. "paper", "fcvid"):
    #: hyper-parameter overrides, plus training overrides under "train". Applied before
    #: the config file, so a user's file always wins.
    presets: ClassVar[dict[str, Preset | dict[str, Any]]] = {}
    #: What ``python -m benchmark tune`` may change: setting -> candidate values. Keys are
    #: ``Hparams`` fields or ``train.<TrainConfig field>``; every built-in method searches
    #: the same number of settings, so each gets the same tuning effort. Keep cost knobs
    #: (a usage target, a per-frame penalty) out: tuning selects on validation mAP alone.
    search_space: ClassVar[dict[str, tuple[Any, ...]]] = OPTIMISER_SEARCH_SPACE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Plug-ins written before ``citation`` had its name called it ``reference`` (a word that
        # also named other things); they are read as before, with a note to rename it.
        super().__init_subclass__(**kwargs)
        old = cls.__dict__.get("reference")
        if isinstance(old, str) and "citation" not in cls.__dict__:
            warnings.warn(f"{cls.__qualname__}.reference is now called citation; rename it", DeprecationWarning,
                          stacklevel=2)
            cls.citation = old

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams: Any) -> None:
        super().__init__()
        try:
            check_setting_types(self.Hparams, hparams, where=f"method {self.name!r}")
            self.hp = self.Hparams(**hparams)
        except TypeError as exc:
            known = [f.name for f in fields(self.Hparams)]
            raise UsageError(f"method {self.name!r}: bad hyper-parameters {hparams} ({exc}); known: {known}") from None
        missing = [s for s in self.streams if s not in dims]
        if missing:
            raise UsageError(f"method {self.name!r} needs streams {missing}, the dataset has {sorted(dims)}")
        self.num_classes = num_classes
        self.dims = dims if isinstance(dims, StreamDims) else StreamDims(dims, method=self.name,
                                                                          declared=tuple(self.streams))
        # GMACs per frame of each stream, as the harness counted them (benchmark/measurement/costs.py); set
        # by the runner after building, for methods whose loss weighs costs (AR-Net). Empty
        # where a method is built outside a run.
        self.frame_gmacs: dict[str, float] = {}

    @classmethod
    def shown_name(cls) -> str:
        """The method's row name: ``display_name``, else its registry name."""
        return cls.display_name or cls.name

    def hparams(self) -> dict[str, Any]:
        return asdict(self.hp)

    @abstractmethod
    def sampler(self, train: bool) -> FrameSampler:
        """How the shared layer samples frames for this method."""

    @abstractmethod
    def forward(self, batch: Batch) -> MethodOutput:
        """Scores for the batch, reading features only through ``batch.features``."""

    @abstractmethod
    def loss(self, output: MethodOutput, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss (a scalar) and numbers worth logging."""

    @abstractmethod
    def cost_modules(self) -> dict[str, StepModule]:
        """The method's own modules whose runs are counted in ``MethodOutput.step_counts``."""

    def forward_budget(self, batch: Batch, budget: int) -> MethodOutput:
        """Online evaluation under a budget: the scores the method gives when it is forced to
        predict once it has spent ``budget`` units of ``budget_unit`` (or the video ended).

        Frames arrive one by one, so the default, for a method that consumes its sampled
        grid in order, is the method run on the first ``budget`` steps of its grid. Override
        it where the budget counts something else (LiteEval counts fine-feature reads). The
        harness measures the cost of the result with the meter, as for ``forward``.
        """
        if not self.online:
            raise TypeError(f"method {self.name!r} is offline (online = False): it has no online budget")
        return self.forward(batch.first_steps(budget))

    def start_stream(self) -> FrameStream:
        """A new live video for this (trained, evaluation-mode) model, frame by frame; only
        methods that decide per arriving frame implement it (``python -m benchmark stream``)."""
        raise TypeError(f"method {self.name!r} does not process a live video frame by frame (no start_stream); "
                        "stream an online method that implements it, e.g. liteeval")

    @classmethod
    def can_stream(cls) -> bool:
        return cls.start_stream is not VideoMethod.start_stream

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Hook for schedules (e.g. a Gumbel-softmax temperature); default: nothing. ``epochs``
        is how many passes over the training videos the run's step budget amounts to."""

    def on_step(self, step: int, steps: int) -> None:
        """Hook for per-step schedules, called before optimizer step ``step`` (0-based) of
        ``steps`` (the run's budget); default: nothing."""

    def phase_starts(self, steps: int) -> tuple[int, ...]:
        """The steps (0-based, of a budget of ``steps``) at which a new stage of training begins,
        for a method trained in stages (a classifier pretrained, then a policy with it frozen);
        default: none. The early stop counts validations without gain from the latest stage begun,
        so a first stage's plateau cannot end the run before the next stage has trained."""
        return ()
