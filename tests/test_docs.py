"""The documentation's runnable examples run and produce valid stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from datasets.store.validate import validate_store

REPO = Path(__file__).resolve().parents[1]


def test_hand_written_store_example_is_valid(tmp_path):
    out = tmp_path / "by-hand"
    subprocess.run([sys.executable, "docs/examples/write_store_by_hand.py", str(out)], cwd=REPO, check=True)
    assert validate_store(out, show_progress=False) == []


def test_per_frame_costs_in_the_example_match_the_counted_ones():
    """The example types costs in (users may); they must be what ptflops counts."""
    import re

    from datasets.extraction.backbones import count_gmacs_per_frame

    text = (REPO / "docs/examples/write_store_by_hand.py").read_text()
    typed = dict(re.findall(r'"backbone": "(\w+)".*?"gmacs_per_frame": ([\d.]+)', text, re.S))
    assert abs(float(typed["mobilenet_v2"]) - count_gmacs_per_frame("mobilenet_v2", 112)) < 1e-3
    assert abs(float(typed["resnet101"]) - count_gmacs_per_frame("resnet101", 224)) < 1e-3


def test_the_plugin_guide_shows_the_example_verbatim():
    guide = (REPO / "docs/adding-a-method.md").read_text()
    example = (REPO / "docs/examples/coarse_mean.py").read_text()
    assert f"```python\n{example}```" in guide


def test_every_relative_link_in_the_docs_resolves():
    """README, docs/ and the results notes link to files that exist (issue 15 found broken ones)."""
    import re

    pages = [REPO / "README.md", REPO / "results/README.md", *sorted((REPO / "docs").glob("*.md")),
             *sorted((REPO / "results").glob("*/notes.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []


def test_ci_runs_exactly_the_readmes_test_command_and_it_needs_no_system_pip():
    """`.ci/run` runs the README's test command verbatim, and that command installs nothing into the
    system Python (PEP 668 distributions refuse it: issue 46)."""
    import re

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**Tests**"):]
    command = re.search(r"```\n(.+?)\n```", section, re.S).group(1).strip()
    ci = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith(("#", "set "))]
    assert ci[-1] == command
    assert "python3 -m venv" in command and "python3 -m pip" not in command


def test_the_readme_has_exactly_two_set_up_commands():
    """A fresh machine needs two commands, the main job's and the tests' (the guide's rule): found,
    the quick start had a third, its own install line, before either."""
    import re

    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```\n(.+?)\n```", readme, re.S)
    set_up = [line for block in blocks for line in block.splitlines() if "python3 -m venv" in line]
    assert len(set_up) == 2, set_up
    assert readme.index(set_up[0]) < readme.index("## Quick start"), "the set-up commands come first"


def test_the_quick_start_names_only_what_exists():
    """Every command of the README's quick start names a real subcommand and files that exist."""
    import re

    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start\n\n.*?```\n(.+?)\n```", readme, re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    assert len(lines) == 4
    from benchmark.cli import COMMANDS

    commands = {command.name for command in COMMANDS}
    for line in lines:
        assert line.startswith(".venv/bin/python -m benchmark "), line
        assert line.split()[3] in commands, line
        for path in re.findall(r"(docs/\S+\.py)", line):
            assert (REPO / path).is_file(), path


def test_every_test_the_docs_cite_exists():
    """Found: docs/guarantees.md cited two tests that had been renamed or removed; a guarantee whose
    test is gone is a claim nobody checks."""
    import re

    defined = {name for path in (REPO / "tests").rglob("test_*.py")
               for name in re.findall(r"^def (test_\w+)", path.read_text(), re.M)}
    modules = {path.stem for path in (REPO / "tests").rglob("test_*.py")}
    cited = {name for path in [REPO / "README.md", *(REPO / "docs").glob("*.md")]
             for name in re.findall(r"`(test_\w+)`", path.read_text())}
    assert not cited - defined - modules, sorted(cited - defined - modules)
