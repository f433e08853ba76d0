"""Which commit of the suite produced something: one git query, used by synth and the harness."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def git_state() -> dict[str, Any]:
    """Commit of the suite's checkout and whether its code had uncommitted changes.

    Changes under results/ do not count: runs write there, and "dirty" is meant to say
    whether the code that produced a result differs from the commit. Both values are None
    outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"commit": commit or None, "dirty": bool(status) if status is not None else None}
