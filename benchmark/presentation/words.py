"""The words for a paired difference: one rule, used by every sentence the suite generates.

A comparison of two rows is a paired interval of A minus B (95%, bootstrap over the same videos:
benchmark/measurement/bootstrap.py). Eyeballed words drift ("level with" on an interval twice as
wide as the effect it dismisses), so every generated sentence says it through ``verdict``:

* "more accurate" when the interval lies above zero, "less accurate" when it lies below;
* "no difference detected" when it spans zero: a wide interval detects nothing, it does not show
  two rows the same;
* "equivalent" only against a margin stated beside it: when the interval lies inside (-margin,
  +margin) (two one-sided tests at 2.5% each, read off the 95% interval; conservative).
"""

from __future__ import annotations

MORE, LESS, UNDETECTED, EQUIVALENT = "more accurate", "less accurate", "no difference detected", "equivalent"


def verdict(low: float, high: float, margin: float | None = None) -> str:
    """The words for the interval [low, high] of A minus B (module docstring). ``margin``: the
    equivalence margin, in the interval's units; None: equivalence is never claimed."""
    if low > high:
        raise ValueError(f"an interval runs from low to high, got [{low}, {high}]")
    if margin is not None and -margin < low and high < margin:
        return EQUIVALENT
    if low > 0:
        return MORE
    if high < 0:
        return LESS
    return UNDETECTED


def interval(estimate: float, low: float, high: float, digits: int = 2) -> str:
    """``+6.24 [+4.98, +7.49]``: an estimate and its interval, signed."""
    return f"{estimate:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def sentence(a: str, b: str, estimate: float, low: float, high: float, *, margin: float | None = None,
             unit: str = "mAP", digits: int = 2) -> str:
    """One comparison in words: "LiteEval is more accurate than Uniform (+6.24 [+4.98, +7.49] mAP)"."""
    said = verdict(low, high, margin)
    numbers = f"{interval(estimate, low, high, digits)} {unit}".strip()
    if said in (MORE, LESS):
        return f"{a} is {said} than {b} ({numbers})"
    if said == EQUIVALENT:
        return f"{a} is equivalent to {b} within ±{margin:g} {unit} ({numbers})".replace("  ", " ")
    return f"{a} against {b}: {said} ({numbers})"
