"""Video recognition methods behind one interface (methods/base.py).

The built-in methods register themselves when their modules are imported, which
``available_methods()`` (methods/registry.py) does on first use; importing this package alone
imports nothing heavy, so that the command line's help starts without torch. A new method is one
file with a ``VideoMethod`` subclass and one ``@register_method("name")`` (or an entry point, or a
``module:Class`` path on the command line): see methods/registry.py.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The built-in methods' modules: importing one registers its methods.
BUILTIN_MODULES = ("adaframe", "arnet", "fastforward", "frameexit", "frameglimpse", "liteeval", "lstm", "ocsampler",
                   "scsampler", "uniform")

#: What ``from methods import X`` gives, and the module that defines it.
_EXPORTS = {"MethodOutput": "methods.base", "StepModule": "methods.base", "TrainConfig": "methods.base",
            "VideoMethod": "methods.base", "available_methods": "methods.registry",
            "register_method": "methods.registry", "resolve_method": "methods.registry"}


def load_builtins() -> None:
    """Import (and so register) every built-in method."""
    for name in BUILTIN_MODULES:
        importlib.import_module(f"methods.{name}")


def __getattr__(name: str) -> Any:  # PEP 562: the interface is imported when first asked for
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'methods' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
