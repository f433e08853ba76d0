"""Which tables a run's methods come from: torch-free, so that the command line's help starts fast."""

from __future__ import annotations

#: What ``--suite`` runs when no ``--methods`` are named: the method suites it includes.
SUITES: dict[str, tuple[str, ...]] = {"paper": ("paper",), "extended": ("paper", "extended")}
