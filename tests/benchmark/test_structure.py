"""The harness's structure: one module spells the results folder's layout; no import circle; three
layers that import only downward, and rooms (sub-packages and top-level modules) without a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from benchmark import results

REPO = Path(__file__).resolve().parents[2]
LAYOUT_NAMES = {results.SUMMARY, results.PROVENANCE, results.TABLE_MD, results.TABLE_CSV, results.TABLE_TEX,
                results.NOTES, results.FIGURES, results.ONLINE_CSV, results.ONLINE_JSON, results.LATENCY_JSON,
                results.LATENCY_MD, results.TUNE_MD, results.TUNE_JSON, results.TUNED_JSON, results.EARLIER,
                results.CROSSCHECK, results.STREAM_RECORDS, results.RUNS, results.RECORD, results.CONFIG,
                results.SCORES, results.WEIGHTS, results.DIAGNOSTICS}


def code_strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module's code (docstrings left out: prose may name the files)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    found = [(node.lineno, node.value) for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]
    # f"seed{seed}": a pair folder's name spelled out
    found += [(node.lineno, "seed{...}") for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
              and len(node.values) >= 2 and isinstance(node.values[0], ast.Constant) and node.values[0].value == "seed"
              and isinstance(node.values[1], ast.FormattedValue)]
    return found


def test_only_the_results_module_spells_the_folder_layout():
    found = []
    for path in sorted((REPO / "benchmark").rglob("*.py")):
        if path.name == "results.py":
            continue
        found += [f"{path.relative_to(REPO)}:{line}: {text!r}" for line, text in code_strings(path)
                  if text in LAYOUT_NAMES or text.startswith("runs/") or text == "seed{...}"]
    assert not found, "spell these through benchmark/results.py:\n" + "\n".join(found)


def imports_of(path: Path, module: str) -> set[str]:
    """The suite modules ``module`` (at ``path``) imports anywhere in its code, function bodies included."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def benchmark_modules() -> dict[str, Path]:
    modules = {}
    for path in (REPO / "benchmark").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def test_the_harness_has_no_import_circle():
    """benchmark/'s modules import each other without a circle, counting imports inside functions
    (a circle hidden that way once joined the runner, parallel and latency)."""
    modules = benchmark_modules()
    graph = {name: sorted(m for m in imports_of(path, name) if m in modules and m != name)
             for name, path in modules.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in graph[name]:
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


#: The layers (issue 47), lowest first; a module is in the first of these whose prefix it has, else
#: in the core (layout, records, rules, measurement, training, a pair, the runner, the table format).
COMMANDS = ("benchmark.commands", "benchmark.curves", "benchmark.reproduce", "benchmark.select_first",
            "benchmark.followup")
PRESENTATION = ("benchmark.presentation",)
ENTRY = ("benchmark.__main__", "benchmark.cli", "benchmark.api")  # the command line and the Python API: they call
# every layer
LAYERS = {0: "core", 1: "commands", 2: "presentation", 3: "entry"}


def layer_of(module: str) -> int:
    def within(prefixes: tuple[str, ...]) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    return 3 if within(ENTRY) else 2 if within(PRESENTATION) else 1 if within(COMMANDS) else 0


def test_the_layers_import_only_downward():
    """Core imports nothing above it; commands import the core; presentation reads the core and
    the commands' results; only the command line and the API see everything. Imports inside
    functions count (one hid latency's command inside measurement/)."""
    modules = benchmark_modules()
    upward = [f"{name} ({LAYERS[layer_of(name)]}) imports {target} ({LAYERS[layer_of(target)]})"
              for name, path in sorted(modules.items()) for target in sorted(imports_of(path, name))
              if target in modules and layer_of(target) > layer_of(name)]
    assert not upward, "\n".join(upward)


def room_of(module: str) -> str:
    """A module's room: its sub-package of benchmark/, or the top-level module itself."""
    return ".".join(module.split(".")[:2])


def test_no_rooms_form_a_circle():
    """Found (issue 47): 17 of 19 rooms formed one strongly connected component, commands hiding
    inside topic packages (tune inside protocol/, latency inside measurement/)."""
    modules = benchmark_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        for target in imports_of(path, name):
            if target in modules and room_of(target) != room_of(name):
                graph.setdefault(room_of(name), set()).add(room_of(target))

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    circles = sorted({f"{a} <-> {b}" for a in graph for b in graph[a] if a < b and reaches(b, a)}
                     | {f"{b} <-> {a}" for a in graph for b in graph[a] if b < a and reaches(b, a)})
    assert not circles, "rooms that reach each other: " + "; ".join(circles)


def test_parallel_never_imports_the_runner_and_no_class_is_over_250_lines():
    modules = benchmark_modules()
    assert "benchmark.runner" not in imports_of(modules["benchmark.parallel"], "benchmark.parallel")
    for path in modules.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 250, f"{path.relative_to(REPO)}: class {node.name} is {length} lines"


def test_the_command_lines_help_starts_without_torch():
    """Found: `python -m benchmark --help` took 15 s on a cold machine, importing torch to print
    its options. The parser's names and defaults come from torch-free modules."""
    probe = ("import sys; from benchmark.__main__ import build_parser; build_parser(); "
             "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _ignored(paths: list[str]) -> set[str] | None:
    """Which of ``paths`` git ignores (None outside a git checkout)."""
    done = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--no-index", *paths],
                          capture_output=True, text=True)
    if done.returncode not in (0, 1):
        return None
    return set(done.stdout.split())


def test_a_scratch_run_is_ignored_and_every_published_folder_is_not():
    """Found: a newcomer's `run --dataset tiny` showed as `?? results/tiny/`. results/.gitignore
    ignores every run it does not list; a published folder must be listed, or a new file in it
    (a note, a figure) would silently stay out of git."""
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "results"], capture_output=True, text=True)
    if tracked.returncode != 0 or not tracked.stdout:
        import pytest
        pytest.skip("not a git checkout")
    tops = sorted({line.split("/")[1] for line in tracked.stdout.split()})
    probes = [f"results/{top}" + ("" if "." in top else "/notes.md") for top in tops]
    scratch = ["results/tiny/notes.md", "results/mine/runs/lstm/seed0/record.json", "results/tiny.settings.json"]
    ignored = _ignored(probes + scratch)
    assert ignored is not None
    assert ignored == set(scratch), (f"published but ignored: {sorted(ignored - set(scratch))}; "
                                     f"scratch but not ignored: {sorted(set(scratch) - ignored)}")


def test_a_test_that_runs_a_command_line_is_marked_e2e_and_a_unit_test_is_not():
    """`-m 'not e2e'` is the quick loop only if the marker finds the command-line tests, through a
    helper of their module or an import inside the test (tests/conftest.py)."""
    from tests import conftest
    from tests.benchmark import test_curves, test_select_first

    entries = conftest._entry_points()  # noqa: SLF001
    through_helper = test_select_first.test_a_store_without_settings_has_them_chosen_first_then_found_by_its_fingerprint
    imported_inside = test_curves.test_a_sweep_without_the_reference_is_refused_before_it_trains
    unit = test_curves.test_the_front_holds_the_points_nothing_beats_at_their_cost
    for func, expected in ((through_helper, True), (imported_inside, True), (unit, False)):
        assert conftest._runs_a_command(func, func.__globals__, entries, set()) is expected, func.__name__  # noqa: SLF001
