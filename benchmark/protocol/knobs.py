"""Moving a method along its cost knob (methods/base.py ``CostKnob``)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from datasets.common.errors import UsageError
from methods.base import CostKnob, VideoMethod, check_setting_types


def knob_of(cls: type[VideoMethod]) -> CostKnob | None:
    """The class's knob, checked: its setting must be one of its ``Hparams``, every point a valid value."""
    knob = cls.cost_knob
    if knob is None:
        return None
    names = {f.name for f in fields(cls.Hparams)}
    if knob.setting not in names:
        raise UsageError(f"method {cls.name!r}: cost_knob names {knob.setting!r}, which is not one of its "
                         f"hyper-parameters {sorted(names)}")
    for point in knob.points:
        check_setting_types(cls.Hparams, {knob.setting: point}, where=f"method {cls.name!r}'s cost_knob point")
    return knob


def at_point(method: VideoMethod, setting: str, value: Any) -> VideoMethod:
    """A trained ``method`` moved to ``value`` of an evaluation-time knob, in place (its weights
    unchanged); the hyper-parameters it reports say the point, so a record of it says it too."""
    method.hp = replace(method.hp, **{setting: value})
    return method
