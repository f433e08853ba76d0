"""Which commit of the suite produced something: one git query, used by synth and the harness."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

#: The repository root (this file is datasets/common/gitinfo.py): the whole suite's code, not
#: only datasets/, decides what a result is.
REPO = Path(__file__).resolve().parents[2]


def git_state(repo: Path = REPO) -> dict[str, Any]:
    """Commit of the suite's checkout and whether its code had uncommitted changes.

    Every tracked file of the repository counts (methods/, benchmark/, datasets/, docs'
    examples, the project files), except under results/: runs write there, and "dirty" is
    meant to say whether the code that produced a result differs from the commit. Untracked
    files do not count (generated stores, scratch). Both values are None outside a git
    checkout."""

    commit = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results")
    return {"commit": commit or None, "dirty": bool(status) if status is not None else None}


def tracked_folders(folder: Path) -> set[str] | None:
    """The names of ``folder``'s sub-folders that hold a file git tracks (committed or staged);
    None outside a git checkout."""
    out = _git(folder, "ls-files", "-z", "--", ".")
    if out is None:
        return None
    return {path.split("/", 1)[0] for path in out.split("\0") if "/" in path}


def _git(where: Path, *args: str) -> str | None:
    """A git command's output in ``where`` (stripped); None outside a checkout or without git."""
    try:
        out = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()
