"""Video recognition methods behind one interface (methods/base.py).

Importing this package registers the built-in methods. A new method is one file with a
``VideoMethod`` subclass and one ``@register_method("name")`` (or an entry point, or a
``module:Class`` path on the command line): see methods/registry.py.
"""

from methods.base import MethodOutput, StepModule, TrainConfig, VideoMethod
from methods.registry import available_methods, register_method, resolve_method

# Built-in methods: importing them registers them.
from methods import adaframe, arnet, fastforward, frameexit, frameglimpse, liteeval, lstm, ocsampler, scsampler, uniform  # noqa: E402,F401  isort:skip

__all__ = [
    "MethodOutput",
    "StepModule",
    "TrainConfig",
    "VideoMethod",
    "available_methods",
    "register_method",
    "resolve_method",
]
