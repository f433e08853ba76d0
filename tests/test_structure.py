"""The harness's structure: one module spells the results folder's layout; no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

from benchmark import results

REPO = Path(__file__).resolve().parents[1]
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
