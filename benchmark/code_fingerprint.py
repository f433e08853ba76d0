"""Which code produced a pair's numbers, hashed file by file, so that a later change is seen.

Every pair's record keeps ``code`` (``code_fingerprint``): the SHA-256 (16 hex digits) of what
Python executes of each source file its numbers depend on (``file_hash``: comments, docstrings and
blank lines do not count, every statement does), and, for a method from an installed
distribution (an entry-point plug-in), that distribution's name and version. The files are

* the method's own module (for a file plug-in, that file) and every module of the suite it
  imports, followed transitively;
* ``HARNESS``: the modules that decide how a pair is trained, selected and measured (the
  training loop, the selection rule, the budget, the held-out carve, the cost model, the
  metrics, the evidence statistics), with what they import; and benchmark/pair.py, which
  composes them for one pair (its imports, the run's context and results folder, are not
  followed).

Imports are read from the source (module level only: an import inside a function, such as the
registry's lazy ``import methods``, does not tie every method to every other). A pair is
*stale* (``stale_reason``) when one of its files changed since, or is gone, or its package has
another version now; a record without ``code`` was written before fingerprints existed and is
stale, since the code that made it is unknown. ``python -m benchmark run`` says which kept
pairs are stale and marks their rows; ``python -m benchmark report`` marks them on the pages.
The scheduler (benchmark/runner.py, parallel.py: which pairs run where) and the presentation
modules are deliberately left out: changing a table's layout does not change a number. So are
the declarations of the methods' presets and of where they were chosen (``file_hash``): those
are settings, which every pair records and compares on their own.
"""

from __future__ import annotations

import ast
import hashlib
import io
import sys
import tokenize
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from datasets.common.errors import UsageError
from datasets.common.gitinfo import REPO

#: The suite's own packages: imports of these are followed (any other import is a dependency
#: whose version the provenance records).
PACKAGES = ("benchmark", "datasets", "methods")
#: The harness modules behind every pair's numbers (see the module docstring).
HARNESS = ("benchmark.training", "benchmark.protocol.selection", "benchmark.protocol.budget",
           "benchmark.protocol.splits", "benchmark.measurement.costs", "benchmark.measurement.metrics",
           "benchmark.measurement.evidence")
#: Hashed, but their imports not followed: the pair's own steps, not the run's context and
#: results folder that it also imports (benchmark/pair.py).
HARNESS_FILES = ("benchmark.pair",)
#: How the file hashes of a record are computed (``code["scheme"]``): see ``file_hash``. A record of
#: another scheme (scheme 1, before 2026-12-02; no committed folder holds one) is stale.
SCHEME = 2
#: What ``stale_reason`` says of a record written before code fingerprints.
UNKNOWN_CODE = "computed before code fingerprints were recorded (the code that made it is unknown)"


def _file_of(module: str) -> Path | None:
    """The source file of one of the suite's modules (None: not one of its files)."""
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _shown(path: Path) -> str:
    """A file as records name it: relative to the repository where it lies inside it."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path.resolve())


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """The statements that run when the module is imported (not function bodies, and not
    ``if TYPE_CHECKING:`` blocks, which never run)."""
    out: list[ast.stmt] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        out.append(node)
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if "TYPE_CHECKING" not in test:
                pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody
        elif isinstance(node, ast.ClassDef | ast.With):
            pending += node.body
    return out


def _imports(path: Path, module: str | None) -> set[str]:
    """The suite's modules that ``path`` (named ``module``, if it is one of the suite's) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = module.rsplit(".", 1)[0] if module and path.name != "__init__.py" else module
    for node in _module_level(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if package is None:
                    continue
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return {name for name in found if name.split(".")[0] in PACKAGES and _file_of(name) is not None}


@cache
def _closure(roots: tuple[tuple[str, str | None], ...]) -> dict[str, str]:
    """Hashes of the files ``roots`` ((path, module name or None) pairs) import, and their own."""
    files: dict[str, str] = {}
    pending = [(Path(path), module) for path, module in roots]
    while pending:
        path, module = pending.pop()
        shown = _shown(path)
        if shown in files:
            continue
        files[shown] = file_hash(path)
        for name in _imports(path, module):
            target = _file_of(name)
            if target is not None:
                pending.append((target, name))
    return dict(sorted(files.items()))


def _declarations(tree: ast.Module) -> list[ast.stmt]:
    """The statements of a module that declare settings rather than compute: a class's
    ``presets`` and a module-level ``Origin(...)`` (methods/presets.py). See ``file_hash``."""
    found: list[ast.stmt] = []
    for node in _module_level(tree):
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        value = node.value
        origin = (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "Origin"
                  and node.col_offset == 0)
        if (names == ["presets"] and node.col_offset > 0) or origin:
            found.append(node)
    return found


def file_hash(path: Path) -> str:
    """The file's hash (SHA-256, 16 hex digits), of what Python executes of it.

    It leaves out a method's settings declarations (its ``presets`` attribute and the origins they
    cite): those are the defaults of a pair's configuration, not code; every pair records the
    settings it ran with and a kept pair of another configuration is recomputed (``--refresh``) or
    refused on that ground, so adopting the values a new tune chose, or citing the new record, does
    not make every pair stale. It also leaves out what Python never executes (comments, docstrings
    and other statements that are only a string, blank lines, trailing spaces; but not inside a
    string literal, whose lines are its value), so that mending a comment does not stale hours of
    results; every other change counts, however small. Line endings do not count either (a Windows
    checkout's CRLF hashes as LF).
    """
    return _executed_hash(path.read_bytes())


def _whole_lines(lines: list[bytes], node: ast.stmt) -> range | None:
    """The lines ``node`` takes (0-based), when it takes them alone: nothing but indentation
    before it and nothing but a comment after it; None when it shares a line with other code."""
    start, end = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    before = lines[start][: node.col_offset]
    after = lines[end][node.end_col_offset:] if node.end_col_offset is not None else b""
    if before.strip() or (after.strip() and not after.lstrip().startswith(b"#")):
        return None
    return range(start, end + 1)


@cache
def _executed_hash(data: bytes) -> str:
    """``file_hash`` of a file's bytes (cached: a report judges every pair of every folder, and the
    same few dozen files, against the current code)."""
    try:
        tree = ast.parse(data)
        tokens = list(tokenize.tokenize(io.BytesIO(data).readline))
        text = data.decode("utf-8").splitlines()
    except (SyntaxError, ValueError, tokenize.TokenError, UnicodeDecodeError):
        return hashlib.sha256(data).hexdigest()[:16]
    raw = [line.encode("utf-8") for line in text]  # ast's columns count bytes, tokenize's characters
    strings = [node for node in ast.walk(tree) if isinstance(node, ast.Expr)
               and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]
    dropped: set[int] = set()
    for node in [*_declarations(tree), *strings]:
        dropped.update(_whole_lines(raw, node) or ())
    # A string literal over several lines is a value, blank lines and trailing spaces included:
    # each line it spans is kept as written up to where the literal ends on it (``verbatim``).
    verbatim: dict[int, int] = {}
    for token in tokens:
        if token.type == tokenize.COMMENT:
            row, column = token.start
            text[row - 1] = text[row - 1][:column]
        elif token.start[0] < token.end[0] and token.type not in (tokenize.NEWLINE, tokenize.NL):
            for row in range(token.start[0], token.end[0]):
                verbatim[row - 1] = len(text[row - 1])
            verbatim[token.end[0] - 1] = max(verbatim.get(token.end[0] - 1, 0), token.end[1])
    kept = [line[: verbatim[i]] + line[verbatim[i]:].rstrip() if i in verbatim else line.rstrip()
            for i, line in enumerate(text) if i not in dropped and (i in verbatim or line.strip())]
    return hashlib.sha256("\n".join(kept).encode("utf-8")).hexdigest()[:16]


def _package(module: str) -> dict[str, str] | None:
    """The installed distribution a module comes from (entry-point plug-ins), with its version."""
    top = module.split(".")[0]
    if top in PACKAGES or top.startswith("_liteeval_plugin_"):
        return None
    names = metadata.packages_distributions().get(top) or []
    if not names:
        return None
    try:
        return {"name": names[0], "version": metadata.version(names[0])}
    except metadata.PackageNotFoundError:
        return None


def code_fingerprint(cls: type) -> dict[str, Any]:
    """What a pair of method ``cls`` is computed with (see the module docstring)."""
    source = sys.modules[cls.__module__].__file__
    if source is None:
        raise UsageError(f"{cls.__module__}:{cls.__qualname__} has no source file to fingerprint")
    own = cls.__module__ if cls.__module__.split(".")[0] in PACKAGES else None
    roots = ((source, own), *((str(_file_of(m)), m) for m in HARNESS))
    files = dict(sorted({**_closure(roots), **{_shown(path): file_hash(path) for path in
                                                 filter(None, map(_file_of, HARNESS_FILES))}}.items()))
    record: dict[str, Any] = {"method_file": _shown(Path(source)), "files": files, "digest": _digest(files),
                              "scheme": SCHEME}
    package = _package(cls.__module__)
    if package is not None:
        record["package"] = package
    return record


def suite_digest() -> str:
    """One hash of every Python file of the suite's packages (``PACKAGES``), each as ``file_hash``
    hashes it: what a `reproduce` stage's result depends on beside its command and inputs. A
    comment or a docstring changes none of them, as it changes no pair's fingerprint."""
    return _digest({_shown(path): file_hash(path) for package in PACKAGES
                    for path in sorted((REPO / package).rglob("*.py"))})


def _digest(files: dict[str, str]) -> str:
    """One hash of a record's file hashes."""
    return hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()[:16]


def _path(name: str) -> Path:
    """A file as a record names it (relative to the repository, or absolute for a file plug-in)."""
    return Path(name) if Path(name).is_absolute() else REPO / name


def stale_reason(recorded: dict[str, Any] | None) -> str:
    """Why a pair with this ``code`` record is stale now; "" when its code is unchanged."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("files"), dict):
        return UNKNOWN_CODE
    if recorded.get("scheme", 1) != SCHEME:
        return f"its code was hashed under scheme {recorded.get('scheme', 1)}, which this version no longer reads"
    changed, gone = [], []
    for name, digest in recorded["files"].items():
        path = _path(name)
        if not path.is_file():
            gone.append(name)
        elif file_hash(path) != digest:
            changed.append(name)
    reasons = []
    if changed:
        reasons.append(f"changed since: {', '.join(changed)}")
    if gone:
        reasons.append(f"gone: {', '.join(gone)}")
    package = recorded.get("package")
    if isinstance(package, dict):
        try:
            now = metadata.version(package["name"])
        except metadata.PackageNotFoundError:
            now = None
        if now != package.get("version"):
            reasons.append(f"package {package['name']} {package.get('version')} is {now or 'not installed'} now")
    return "; ".join(reasons)
