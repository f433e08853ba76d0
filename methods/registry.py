"""The method registry: built-in methods, entry points, and dotted-path plug-ins.

* In this repository: decorate the class with ``@register_method("name")``.
* From another package: expose the class under the entry-point group
  ``liteeval_bench.methods`` (``name = "my_pkg.my_module:MyMethod"`` in its pyproject).
* Ad hoc: pass ``module.path:ClassName`` or ``path/to/file.py:ClassName`` wherever a method
  name is accepted (``--methods``).

A new method is therefore one file and one registration; the harness never changes.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path

from datasets.common.errors import UsageError
from methods.base import SUITES, VideoMethod

ENTRY_POINT_GROUP = "liteeval_bench.methods"
_REGISTRY: dict[str, type[VideoMethod]] = {}


def register_method(name: str):
    """Class decorator: make ``cls`` available as ``name``."""

    def decorate(cls: type[VideoMethod]) -> type[VideoMethod]:
        if not (isinstance(cls, type) and issubclass(cls, VideoMethod)):
            raise TypeError(f"@register_method({name!r}) must decorate a VideoMethod subclass, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise UsageError(f"method name {name!r} is already registered by {_REGISTRY[name].__module__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _entry_point_methods() -> dict[str, type[VideoMethod]]:
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, VideoMethod)):
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a VideoMethod subclass")
        cls.name = cls.name or ep.name
        found[ep.name] = cls
    return found


def available_methods() -> dict[str, type[VideoMethod]]:
    """Registered built-in methods plus installed entry-point plug-ins, by name."""
    from methods import load_builtins

    load_builtins()  # importing them registers them

    return {**_REGISTRY, **_entry_point_methods()}


def ordered(names: list[str]) -> list[str]:
    """``names`` in table order: by suite (SUITES' order), then each method's ``row``; names
    that are not registered methods (plug-ins given by path, ablation variants, tuning
    trials) follow in the order given."""
    known = available_methods()
    suites = list(SUITES)

    def key(item: tuple[int, str]) -> tuple[int, int, int]:
        position, name = item
        cls = known.get(name)
        if cls is None:
            return (len(suites), 0, position)
        return (suites.index(cls.suite) if cls.suite in suites else len(suites), cls.row, position)

    return [name for _, name in sorted(enumerate(names), key=key)]


def display_name(name: str) -> str:
    """The row name of registered method ``name`` (its ``display_name``), else ``name``."""
    cls = available_methods().get(name)
    return cls.shown_name() if cls is not None else name


def _load_dotted(spec: str) -> type[VideoMethod]:
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise UsageError(f"plug-in {spec!r} must look like 'package.module:ClassName' or 'path/file.py:ClassName'")
    if target.endswith(".py"):
        path = Path(target).resolve()
        if not path.is_file():
            raise UsageError(f"plug-in file {path} does not exist")
        module_name = f"_liteeval_plugin_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise UsageError(f"plug-in file {path} cannot be imported as a Python module")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - a syntax or import error in the user's file, whatever it is
            del sys.modules[module_name]
            raise UsageError(f"plug-in file {path} could not be imported: {_where(exc, path)}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:  # noqa: BLE001 - ImportError, or anything the module raises as it loads
            raise UsageError(f"plug-in {spec!r}: cannot import {target!r}: {_where(exc, None)}") from exc
    try:
        cls = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"plug-in {spec!r}: {target} has no attribute {attr!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, VideoMethod)):
        raise UsageError(f"plug-in {spec!r} is not a VideoMethod subclass")
    if not cls.name:
        cls.name = attr.lower()
    return cls


def _where(exc: BaseException, path: Path | None) -> str:
    """What a plug-in raised while loading, and at which line of its file."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError at line {exc.lineno}: {exc.msg}"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if path is not None and Path(f.filename) == path]
    return f"{type(exc).__name__}{f' at line {lines[-1]}' if lines else ''}: {exc}"


def is_builtin(cls: type[VideoMethod]) -> bool:
    """Whether ``cls`` is one of the suite's own registered methods (checked by its tests), not a
    plug-in (a file, a dotted path or an entry point), which ``run`` checks before training."""
    return _REGISTRY.get(cls.name) is cls and cls.__module__.split(".")[0] == "methods"


def resolve_method(spec: str) -> type[VideoMethod]:
    """A method class from a registered name or a dotted / file path plug-in spec."""
    if ":" in spec:
        return _load_dotted(spec)
    known = available_methods()
    if spec not in known:
        if spec.endswith(".py") or "/" in spec:
            raise UsageError(f"plug-in {spec!r} names a file but no class: pass it as {spec}:ClassName")
        raise UsageError(f"unknown method {spec!r}; registered: {sorted(known)} (or pass module:Class)")
    return known[spec]
