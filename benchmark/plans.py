"""A run's methods with their settings resolved: class defaults, then the shipped defaults (chosen
across stores: methods/shipped.py; where neither a config file nor a preset gives a method's
settings), then the method's preset for the dataset, then the user's config file
(benchmark/config.py). A ``MethodPlan`` is what the
runner trains; ablations and tuning trials are plans with a label and changed settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from benchmark import tables
from benchmark.config import RunConfig, merged_config
from datasets.common.errors import UsageError
from methods import shipped
from methods.base import SUITES, Preset, TrainConfig, VideoMethod, check_setting_types, preset_settings
from methods.registry import available_methods, is_builtin, resolve_method


@dataclass
class MethodPlan:
    """One method with its resolved hyper-parameters and training settings."""

    spec: str
    cls: type[VideoMethod]
    hparams: dict[str, Any]
    train: TrainConfig
    label: str | None = None  # result name of a variant (ablations); default: the method's name
    display: str | None = None  # row name in the table; default: the method's display name

    @property
    def name(self) -> str:
        return self.label or self.cls.name

    def __reduce__(self):
        # Worker processes (--jobs) re-resolve the class from its spec: a plug-in loaded from a
        # file lives in a module that only exists in the process that loaded it.
        return _rebuild_plan, (self.spec, self.hparams, self.train, self.label, self.display)

    def full_hparams(self) -> dict[str, Any]:
        """Every hyper-parameter, defaults included (a changed default changes identity)."""
        return asdict(self.cls.Hparams(**self.hparams))


def _rebuild_plan(spec: str, hparams: dict[str, Any], train: TrainConfig, label: str | None,
                  display: str | None) -> MethodPlan:
    return MethodPlan(spec, resolve_method(spec), hparams, train, label, display)


def refuse_impostor(spec: str, cls: type[VideoMethod]) -> None:
    """Refuse a plug-in that would pass for another method: a subclass of a built-in (the natural
    way to try a variant of one) inherits its ``name`` and ``display_name``, and its results would
    be filed, configured and shown as the built-in's."""
    if is_builtin(cls):
        return
    for name, other in available_methods().items():
        if other is cls:
            continue
        same = ("name", cls.name) if cls.name == name else (
            ("display name", cls.shown_name()) if cls.shown_name() == other.shown_name() else None)
        if same is not None:
            raise UsageError(f"plug-in {spec!r} would pass for the method {name!r}: it has its {same[0]} "
                             f"{same[1]!r} (a subclass inherits it); give the class its own `name = ...` and "
                             "`display_name = ...`")


def plan_methods(cfg: RunConfig, dataset_name: str) -> list[MethodPlan]:
    """Resolve methods and their settings: class defaults, then (unless ``cfg.presets`` is off)
    the shipped defaults (only where neither a config file nor a preset applies) and the method's preset for
    ``dataset_name`` (one chosen on a store only with ``cfg.named_choices``), then the config
    file."""
    suites = SUITES[cfg.suite]
    specs = cfg.methods or tables.order_methods([n for n, c in available_methods().items() if c.suite in suites])
    file_config = merged_config(cfg.config_file, cfg.overrides)
    plans, names = [], set()
    for spec in specs:
        cls = resolve_method(spec)
        refuse_impostor(spec, cls)
        if cls.name in names:
            raise UsageError(f"method {cls.name!r} is listed twice")
        names.add(cls.name)
        section: dict[str, Any] = {}
        train_overrides: dict[str, Any] = {}
        found = cls.presets.get(dataset_name, {}) if cfg.presets else {}
        chosen = isinstance(found, Preset) and bool(found.origins)
        preset = preset_settings(found) if cfg.named_choices or not chosen else {}
        # The shipped defaults are where a method starts when nothing else gives its settings (a
        # new store's selection, a try-out store). A settings file or a dataset's preset holds
        # choices made against the class defaults (reproduce's tune and studies run with
        # --no-presets), so either replaces them.
        across = shipped.settings(cls.name) if cfg.presets and cfg.config_file is None and not preset else {}
        for source in (across, preset, file_config.get(cls.name, {})):
            source = dict(source)
            train_overrides.update(source.pop("train", {}))
            section.update(source)
        train = cls.train_defaults.updated(train_overrides, where=f"settings of {cls.name!r} (train)")
        unknown_keys = sorted(set(section) - {f.name for f in fields(cls.Hparams)})
        if unknown_keys:
            raise UsageError(f"settings of {cls.name!r}: unknown hyper-parameter(s) {unknown_keys}; known: "
                             f"{[f.name for f in fields(cls.Hparams)]}")
        check_setting_types(cls.Hparams, section, where=f"settings of {cls.name!r}")
        plans.append(MethodPlan(spec, cls, section, train))
    unknown = sorted(set(file_config) - names - set(available_methods()))
    if unknown:
        sources = [f"config file {cfg.config_file}" if cfg.config_file else "", "--set" if cfg.overrides else ""]
        where = " and ".join(s for s in sources if s)
        raise UsageError(f"{where}: unknown method(s) {unknown}; registered: {sorted(available_methods())}")
    return plans
